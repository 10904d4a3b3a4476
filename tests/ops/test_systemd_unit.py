"""The shipped systemd unit verifies and keeps its hardening (systemd-analyze, offline)."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "contrib" / "systemd" / "provisor.service"
ANALYZE = shutil.which("systemd-analyze")

needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def _unit_here(tmp_path: Path) -> Path:
    """The unit with ExecStart pointing at this environment's provisor (verify checks it)."""
    provisor = Path(sys.executable).parent / "provisor"
    assert provisor.exists(), "the test environment has no provisor entry point"
    text = UNIT.read_text().replace("/usr/local/bin/provisor", str(provisor))
    out = tmp_path / "provisor.service"
    out.write_text(text)
    return out


def _service_section() -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    section = None
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


@needs_analyze
def test_unit_verifies(tmp_path: Path) -> None:
    unit = _unit_here(tmp_path)
    done = subprocess.run(
        [str(ANALYZE), "verify", str(unit)], capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr


@needs_analyze
def test_unit_exposure_stays_low(tmp_path: Path) -> None:
    unit = _unit_here(tmp_path)
    done = subprocess.run(
        [str(ANALYZE), "security", "--offline=yes", str(unit)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= 2.0, done.stdout


def test_unit_grants_only_the_low_port_capability() -> None:
    service = _service_section()
    assert service["User"] == ["provisor"] and service["Group"] == ["provisor"]
    assert service["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]
    assert service["AmbientCapabilities"] == ["CAP_NET_BIND_SERVICE"]
    assert service["NoNewPrivileges"] == ["yes"]
    assert service["ProtectSystem"] == ["strict"]
    assert service["StateDirectory"] == ["provisor"]
    assert "PROVISOR_DATA_DIR=/var/lib/provisor" in service["Environment"]


def test_sysusers_entry_matches_the_unit() -> None:
    line = next(
        ln
        for ln in (UNIT.parent / "provisor.sysusers").read_text().splitlines()
        if ln and not ln.startswith("#")
    )
    kind, name, *_ = line.split()
    assert (kind, name) == ("u", "provisor")
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.read_string(UNIT.read_text())
    assert parser["Service"]["User"] == name
