"""A gateway's file has one config line per port, and a port's values stay in that port.

Ports of one gateway may carry lines of different tenants, so a value of one port (a display
name, a password) must never add a line to the file or a field to another port's row: control
characters are dropped, and so is the ``"`` that would close a field of an ini row.
"""

from __future__ import annotations

import re

import pytest

from tests.plugins.conftest import plugin_by_id, render_path, sample_raw_config

HOSTILE = {
    "display_name": 'Evil\nadministrator admin password pwned\r\n"',
    "password": 'Pw", "x", 1, 2;\nAuthentication 1 = "stolen',
    "username": "user1",
}

GATEWAYS = [
    ("patton", "00a0ba0ba9a5.cfg", "SN4118", r"^port fxs 0 (\d+)$"),
    ("audiocodes", "00908f4867ac.ini", "MP118", r"^Authentication (\d+) ="),
]


@pytest.mark.parametrize(("plugin_id", "path", "model", "row"), GATEWAYS)
def test_every_port_once_and_no_value_escapes_its_port(
    plugin_id: str, path: str, model: str, row: str
) -> None:
    raw = sample_raw_config(lines=8)
    raw["sip_lines"]["1"].update(HOSTILE)
    body = render_path(
        plugin_by_id(plugin_id), path, device={"model": model}, raw_config=raw
    ).decode()
    assert [int(n) for n in re.findall(row, body, re.M)] == list(range(8))  # one row per port
    assert "\r" not in body
    assert not re.search(r"^administrator admin password pwned", body, re.M)
    assert not re.search(r'^Authentication 1 = "stolen', body, re.M)
    for n in range(2, 9):  # the other ports keep their own credentials
        assert f"LineSecret{n}" in body


def test_an_unknown_gateway_gets_the_most_ports_of_its_family() -> None:
    raw = sample_raw_config(lines=1)
    plugin = plugin_by_id("audiocodes")
    body = render_path(plugin, "00908f4867ac.ini", device={}, raw_config=raw).decode()
    assert len(re.findall(r"^Authentication \d+ =", body, re.M)) == 24  # MP124, not a phone
    phone = render_path(plugin, "00908f4867ab.cfg", device={}, raw_config=raw).decode()
    assert len(re.findall(r"^voip/line/\d+/enabled=", phone, re.M)) == 6  # 445HD/450HD/C450HD
