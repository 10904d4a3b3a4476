"""Fixtures shared by the vendor plugin tests: load a plugin from plugins/, render its files."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from provisor.domain.raw_config import apply_defaults
from provisor.plugins.base import Plugin
from provisor.plugins.contract import ProbeRequest, RenderContext
from provisor.plugins.loader import load_plugin

PLUGINS_DIR = Path(__file__).resolve().parents[2] / "plugins"


def plugin_by_id(plugin_id: str) -> Plugin:
    """Load one of the plugins shipped in plugins/."""
    return load_plugin(PLUGINS_DIR / plugin_id)


def render_path(
    plugin: Plugin,
    path: str,
    *,
    device: Mapping[str, Any] | None = None,
    raw_config: Mapping[str, Any] | None = None,
    with_secrets: bool = True,
) -> bytes:
    """Route ``path`` in ``plugin`` and render it as the pipeline would."""
    route = plugin.route(path)
    assert route is not None, f"{plugin.id} does not serve {path!r}"
    ctx = RenderContext(
        route=route,
        device=dict(device or {}),
        raw_config=apply_defaults(raw_config or {}),
        with_secrets=with_secrets,
    )
    return plugin.render(ctx)


def http_probe(user_agent: str | None, path: str = "", **kw: Any) -> ProbeRequest:
    """A ProbeRequest as the HTTP front end builds it."""
    return ProbeRequest(protocol="http", path=path.lstrip("/"), user_agent=user_agent, **kw)


def sample_raw_config(lines: int = 2) -> dict[str, Any]:
    """A realistic effective raw config: servers, lines, function keys, tz, locale, vlan."""
    return {
        "http_base_url": "http://10.0.0.1:8667",
        "ip": "10.0.0.1",
        "http_port": 8667,
        "tftp_port": 69,
        "ntp_enabled": True,
        "ntp_ip": "10.0.0.2",
        "dns_enabled": True,
        "dns_ip": "10.0.0.3",
        "syslog_enabled": True,
        "syslog_ip": "10.0.0.4",
        "syslog_port": 514,
        "syslog_level": "info",
        "vlan_enabled": True,
        "vlan_id": 20,
        "vlan_priority": 5,
        "vlan_pc_port_id": 30,
        "admin_username": "admin",
        "admin_password": "AdminSecret9",
        "user_username": "user",
        "user_password": "UserSecret8",
        "timezone": "Europe/Paris",
        "locale": "fr_FR",
        "protocol": "SIP",
        "sip_proxy_ip": "10.0.0.10",
        "sip_proxy_port": 5060,
        "sip_backup_proxy_ip": "10.0.0.11",
        "sip_backup_proxy_port": 5060,
        "sip_registrar_ip": "10.0.0.10",
        "sip_outbound_proxy_ip": "10.0.0.12",
        "sip_outbound_proxy_port": 5060,
        "sip_dtmf_mode": "RTP-out-of-band",
        "sip_transport": "udp",
        "sip_srtp_mode": "disabled",
        "sip_subscribe_mwi": True,
        "exten_voicemail": "*98",
        "exten_pickup_call": "*8",
        "exten_dnd": "*25",
        "exten_fwd_unconditional": "*21",
        "X_xivo_phonebook_ip": "10.0.0.1",
        "X_xivo_phonebook_scheme": "https",
        "X_xivo_phonebook_port": 443,
        "X_xivo_user_uuid": "5a1b2c3d-0000-4000-8000-000000000001",
        "sip_lines": {
            str(n): {
                "username": f"user{n}",
                "auth_username": f"auth{n}",
                "password": f"LineSecret{n}",
                "display_name": f"Line {n}",
                "number": f"10{n:02d}",
                "proxy_ip": "10.0.0.10",
                "proxy_port": 5060,
                "registrar_ip": "10.0.0.10",
                "voicemail": "*98",
            }
            for n in range(1, lines + 1)
        },
        "funckeys": {
            "1": {"type": "speeddial", "value": "1234", "label": "Bob", "line": 1},
            "2": {"type": "blf", "value": "1002", "label": "Alice", "line": 1},
            "3": {"type": "park", "value": "700", "label": "Park", "line": 1},
        },
    }


@pytest.fixture
def raw_config() -> dict[str, Any]:
    """The sample effective raw config."""
    return sample_raw_config()


RenderFn = Callable[..., bytes]


def assert_golden(test_file: str, name: str, data: bytes) -> None:
    """Compare ``data`` with ``golden/<name>`` beside ``test_file``.

    Set PROVISOR_UPDATE_GOLDEN=1 to (re)write the golden file; review the diff before committing.
    """
    import os

    golden = Path(test_file).parent / "golden" / name
    if os.environ.get("PROVISOR_UPDATE_GOLDEN") == "1" or not golden.exists():
        if os.environ.get("PROVISOR_UPDATE_GOLDEN") != "1":
            raise AssertionError(f"missing golden file {golden}; run with PROVISOR_UPDATE_GOLDEN=1")
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_bytes(data)
    assert data == golden.read_bytes(), f"{name} differs from {golden}"
