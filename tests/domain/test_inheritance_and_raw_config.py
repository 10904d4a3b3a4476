"""Config inheritance and the raw_config schema."""

from __future__ import annotations

import pytest

from provisor.domain.inheritance import (
    ConfigNode,
    ancestors,
    check_parents,
    descendants,
    effective_raw_config,
    merge,
)
from provisor.domain.raw_config import apply_defaults, validate_raw_config
from provisor.errors import InvalidInput

NODES = {
    "base": ConfigNode("base", (), {"X_k": "base", "X_b": 1, "sub": {"a": 1, "b": 1}}),
    "a": ConfigNode("a", ("base",), {"X_k": "a", "X_a": 1, "sub": {"a": 2}}),
    "b": ConfigNode("b", ("base",), {"X_k": "b", "sub": {"b": 3}}),
    "child": ConfigNode("child", ("a", "b", "ghost"), {"X_c": 1}),
}


def test_diamond_later_parent_wins_child_wins() -> None:
    raw = effective_raw_config("child", NODES.get, {"ip": "10.0.0.1", "X_k": "injected"})
    assert raw == {
        "ip": "10.0.0.1",
        "X_k": "b",
        "X_b": 1,
        "X_a": 1,
        "X_c": 1,
        "sub": {"a": 2, "b": 3},
    }
    assert ancestors("child", NODES.get) == ["base", "a", "b"]
    assert effective_raw_config("nope", NODES.get, {}) is None


def test_merge_does_not_mutate() -> None:
    base = {"d": {"x": 1}, "l": [1]}
    out = merge(base, {"d": {"y": 2}, "l": [2]})
    assert out == {"d": {"x": 1, "y": 2}, "l": [2]} and base == {"d": {"x": 1}, "l": [1]}


def test_check_parents() -> None:
    check_parents("new", ["a", "b"], NODES.get)
    for parents, fragment in (
        (["nope"], "unknown parent"),
        (["a", "a"], "duplicates"),
        (["new"], "own parent"),
    ):
        with pytest.raises(InvalidInput, match=fragment):
            check_parents("new", parents, NODES.get)
    with pytest.raises(InvalidInput, match="inherit from itself through a -> base"):
        check_parents("base", ["a"], NODES.get)


def test_descendants() -> None:
    children = {"base": ["a", "b"], "a": ["child"], "b": ["child"]}
    assert descendants("base", lambda c: children.get(c, [])) == {"a", "b", "child"}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"vlan_id": 5000}, "raw_config.vlan_id"),
        ({"sip_lines": {"1": {"username": 3}}}, "raw_config.sip_lines.1.username"),
        ({"sip_lines": {"one": {}}}, "must be a number"),
        ({"funckeys": {"1": {"type": "rocket"}}}, "raw_config.funckeys.1.type"),
        ({"timezone": "Mars/Base"}, "unknown time zone"),
        ({"locale": "french"}, "fr_FR"),
        ({"sip_transport": "sctp"}, "sip_transport"),
        ({"http_base_url": "ftp://x"}, "http(s) URL"),
        ({"unknown": 1}, "custom keys must start with X_"),
        ({"XX_mine": 1}, "reserved for plugins"),
        ({"sip_proxy_port": "5060"}, "sip_proxy_port"),
    ],
)
def test_raw_config_errors(raw: dict, fragment: str) -> None:
    with pytest.raises(InvalidInput) as err:
        validate_raw_config(raw, complete=False)
    assert fragment in err.value.message


def test_password_values_never_echoed() -> None:
    with pytest.raises(InvalidInput) as err:
        validate_raw_config({"admin_password": 123456789}, complete=False)
    assert "123456789" not in err.value.message


def test_complete_rules() -> None:
    ok = {"http_base_url": "http://x:8667", "ntp_enabled": True, "ntp_ip": "pool.ntp.org"}
    assert validate_raw_config(ok, complete=True) == ok
    for raw, fragment in (
        ({"ntp_enabled": True}, "ntp_ip"),
        ({"vlan_enabled": True, "http_base_url": "http://x"}, "vlan_id"),
        ({"sip_lines": {"1": {}}, "http_base_url": "http://x"}, "sip_lines.1.username"),
        ({"funckeys": {"1": {"type": "blf"}}, "http_base_url": "http://x"}, "funckeys.1.value"),
    ):
        with pytest.raises(InvalidInput, match=fragment):
            validate_raw_config(raw, complete=True)


def test_1024_lines_validate() -> None:
    lines = {str(n): {"username": f"u{n}", "password": "p"} for n in range(1, 1025)}
    out = validate_raw_config({"sip_lines": lines, "http_base_url": "http://x"}, complete=True)
    assert len(out["sip_lines"]) == 1024


def test_defaults() -> None:
    out = apply_defaults(
        {
            "sip_proxy_ip": "p",
            "sip_lines": {"1": {"username": "u"}, "2": {"username": "v", "proxy_ip": "q"}},
        }
    )
    assert out["syslog_port"] == 514 and out["syslog_level"] == "warning"
    assert out["sip_srtp_mode"] == "disabled" and out["sip_transport"] == "udp"
    assert (
        out["sip_registrar_ip"] == "p" and out["funckeys"] == {} and out["sccp_call_managers"] == {}
    )
    assert out["sip_lines"]["1"] == {
        "username": "u",
        "proxy_ip": "p",
        "registrar_ip": "p",
        "auth_username": "u",
    }
    assert out["sip_lines"]["2"]["registrar_ip"] == "q"
