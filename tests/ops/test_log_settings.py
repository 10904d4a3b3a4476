"""``observability.log_format`` and ``log_file``, read by a real ``provisor serve``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

DEADLINE = 60.0


def test_serve_writes_json_lines_to_the_log_file(tmp_path: Path) -> None:
    log_file = tmp_path / "logs" / "provisor.log"
    env = {
        **os.environ,
        "PROVISOR_OBSERVABILITY__LOG_FORMAT": "json",
        "PROVISOR_OBSERVABILITY__LOG_FILE": str(log_file),
        "PROVISOR_PROVISIONING__TFTP_ENABLED": "false",
        "PROVISOR_GENERAL__INSTALL_BUNDLED_PLUGINS": "false",
    }
    cmd = [sys.executable, "-m", "provisor.cli", "serve", "--data-dir", str(tmp_path / "d")]
    cmd += ["--host", "127.0.0.1", "--rest-port", "0", "--http-port", "0"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end and proc.poll() is None:
            if log_file.exists() and "provisor listening" in log_file.read_text():
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert any(r["message"].startswith("provisor listening") for r in records), records
    for r in records:
        assert set(r) >= {"time", "level", "logger", "message"}
        assert r["time"].endswith("+00:00") and "T" in r["time"]  # ISO 8601, UTC
    assert b"provisor listening" not in err  # the file, not stderr


def test_log_level_setting_is_what_serve_logs_at(tmp_path: Path) -> None:
    """``observability.log_level: warning`` (here from the environment, as systemd's
    ``Environment=`` would set it): a real ``provisor serve`` first start writes no INFO line;
    the same first start at ``info`` does."""
    log_file = tmp_path / "provisor.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    env.update(
        PROVISOR_OBSERVABILITY__LOG_LEVEL="warning",
        PROVISOR_OBSERVABILITY__LOG_FILE=str(log_file),
        PROVISOR_PROVISIONING__TFTP_ENABLED="false",
    )
    # a first start (schema, bundled plugins: INFO lines) that stops at the HTTPS listener
    cfg = tmp_path / "config.yml"
    cfg.write_text(
        "provisioning:\n  tls_certfile: /nonexistent.pem\n  tls_keyfile: /nonexistent.key\n"
        "  https_port: 0\n  http_port: 0\nrest_api:\n  port: 0\n"
    )
    cmd = [sys.executable, "-m", "provisor.cli", "serve", "--config", str(cfg)]
    cmd += ["--https-port", "0", "--data-dir"]
    done = subprocess.run(
        [*cmd, str(tmp_path / "d1")], env=env, capture_output=True, text=True, timeout=DEADLINE
    )
    assert done.returncode == 1 and "cannot start" in done.stderr  # it did run, and stopped
    text = log_file.read_text() if log_file.exists() else ""
    assert " INFO " not in text, text  # first start: schema and plugin lines are INFO
    env["PROVISOR_OBSERVABILITY__LOG_LEVEL"] = "info"
    log_file.unlink(missing_ok=True)
    subprocess.run(
        [*cmd, str(tmp_path / "d2")], env=env, capture_output=True, text=True, timeout=DEADLINE
    )
    assert " INFO " in log_file.read_text()  # the same start-up at info does say them
