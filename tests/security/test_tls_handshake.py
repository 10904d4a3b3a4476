"""Every HTTPS handshake completes under ``provisor serve`` (uvloop).

The guard used to start TLS in a task after ``connection_made``; uvloop reads the socket in
between, so a ClientHello arriving then was taken for early application data and the handshake
waited for it until its deadline: 6 of 40 curl requests failed. The TLS layer is now put under
the protocol before the first read (``http_guard.GuardedHttpProtocol._start_tls``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from provisor.tls import write_self_signed
from tests.ops._serve import serve


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_every_https_handshake_completes_under_serve(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    write_self_signed(cert, key, ["127.0.0.1"])
    cfg = tmp_path / "provisor.yml"
    cfg.write_text(
        "general:\n  install_bundled_plugins: false\n  sync_service_type: none\n"
        "provisioning:\n  workers: 1\n  https_enabled: true\n  https_port: 0\n"
        f"  tls_certfile: {cert}\n  tls_keyfile: {key}\n"
    )
    cmd = [str(Path(sys.executable).parent / "provisor"), "serve", "--config", str(cfg)]
    cmd += ["--data-dir", str(tmp_path / "data"), "--host", "127.0.0.1"]
    cmd += ["--rest-port", "0", "--http-port", "0", "--tftp-port", "0"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROVISOR_")}
    served = serve(cmd, env=env, cwd=tmp_path, deadline=120)
    try:
        url = f"https://127.0.0.1:{served.ports['https']}/001122334455.cfg"
        codes = []
        for _ in range(60):  # a new connection, hence a new handshake, each time
            done = subprocess.run(
                ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30"]
                + ["--cacert", str(cert), url],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            codes.append(done.stdout)
        assert codes == ["404"] * 60, codes  # answered (no such device), never a dead handshake
    finally:
        assert served.stop() == 0
