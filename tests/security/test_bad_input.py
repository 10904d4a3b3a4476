"""Bad input on every REST endpoint that reads a body or a count: a 4xx naming it, nothing written.

Deeply nested JSON, NaN/Infinity, numbers out of range (bodies, ``skip``/``limit``, ``q``)
used to be 500s (RecursionError, OverflowError, PostgreSQL refusing NaN). Runs on SQLite, and
on PostgreSQL when PROVISOR_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from provisor.domain.strictjson import MAX_DEPTH, depth_exceeds, strict_loads
from tests.conftest import Server

MAC = "00:11:22:33:44:77"

# (method, path, body with @V@ where a bad value goes); the body is otherwise one that the
# endpoint accepts (or refuses for another reason only after parsing)
BODY_ENDPOINTS: list[tuple[str, str, str]] = [
    ("POST", "/0.2/dev_mgr/devices", '{"device": {"mac": "00:11:22:33:44:88", "X_v": @V@}}'),
    ("PUT", "/0.2/dev_mgr/devices/dev1", '{"device": {"id": "dev1", "X_v": @V@}}'),
    ("POST", "/0.2/dev_mgr/reconfigure", '{"id": "dev1", "X_v": @V@}'),
    ("POST", "/0.2/dev_mgr/synchronize", '{"id": "dev1", "X_v": @V@}'),
    (
        "POST",
        "/0.2/dev_mgr/dhcpinfo",
        '{"dhcp_info": {"op": "commit", "ip": "10.0.0.5", '
        '"mac": "00:11:22:33:44:99", "options": [], "X_v": @V@}}',
    ),  # fmt: skip
    ("POST", "/0.2/dev_mgr/provisioning_code", '{"code": "1234", "X_v": @V@}'),
    (
        "POST",
        "/0.2/cfg_mgr/configs",
        '{"config": {"id": "new", "parent_ids": ["base"], "raw_config": {"X_v": @V@}}}',
    ),  # fmt: skip
    (
        "PUT",
        "/0.2/cfg_mgr/configs/cfg1",
        '{"config": {"id": "cfg1", "parent_ids": ["base"], "raw_config": {"X_v": @V@}}}',
    ),  # fmt: skip
    ("POST", "/0.2/cfg_mgr/autocreate", '{"X_v": @V@}'),
    ("PUT", "/0.2/configure/locale", '{"param": {"value": @V@}}'),
    ("PUT", "/0.2/configure/NAT", '{"param": {"value": @V@}}'),
    ("POST", "/0.2/pg_mgr/install/install", '{"id": "testphone", "X_v": @V@}'),
    ("POST", "/0.2/pg_mgr/install/upgrade", '{"id": "testphone", "X_v": @V@}'),
    ("POST", "/0.2/pg_mgr/install/uninstall", '{"id": "nothing", "X_v": @V@}'),
    ("POST", "/0.2/pg_mgr/reload", '{"id": "testphone", "X_v": @V@}'),
    ("POST", "/0.2/pg_mgr/plugins/testphone/install/install", '{"id": "x", "X_v": @V@}'),
    ("POST", "/0.2/pg_mgr/plugins/testphone/install/uninstall", '{"id": "x", "X_v": @V@}'),
    (
        "PUT",
        "/0.2/pg_mgr/plugins/testphone/templates/tenant/common.cfg",
        '{"template": {"target": "", "source": "x", "X_v": @V@}}',
    ),  # fmt: skip
]

DEEP = "[" * 100_000 + "]" * 100_000
BAD_VALUES: dict[str, tuple[str, str]] = {
    # name: (value put at @V@, a word the error message must contain)
    "NaN": ("NaN", "NaN"),
    "Infinity": ("Infinity", "Infinity"),
    "-Infinity": ("-Infinity", "Infinity"),
    "float overflow": ("1e400", "out of range"),
    "integer over 64 bits": (str(10**30), "out of range"),
    "integer of 5000 digits": ("9" * 5000, "out of range"),
    "nested 65 deep": ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "nested"),
    "nested 100000 deep": (DEEP, "nested"),
    "objects nested 100000 deep": ('{"a":' * 100_000 + "1" + "}" * 100_000, "nested"),
    "NUL in a string": ('"a\\u0000b"', "u0000"),
}


@pytest.fixture
async def seeded(server: Server) -> AsyncIterator[Server]:
    """A server with one device (dev1) and one config (cfg1) for the PUTs to aim at."""
    r = await server.api.post("/0.2/dev_mgr/devices", json={"device": {"id": "dev1", "mac": MAC}})
    assert r.status_code == 201, r.text
    r = await server.api.post(
        "/0.2/cfg_mgr/configs",
        json={"config": {"id": "cfg1", "parent_ids": ["base"], "raw_config": {"X_v": 1}}},
    )
    assert r.status_code == 201, r.text
    yield server


async def _state(server: Server) -> dict[str, Any]:
    """Everything a write could change, as seen through the API."""
    devices = (await server.api.get("/0.2/dev_mgr/devices", params={"recurse": "true"})).json()
    configs = (await server.api.get("/0.2/cfg_mgr/configs", params={"recurse": "true"})).json()
    params = (await server.api.get("/0.2/configure")).json()
    overrides = (await server.api.get("/0.2/pg_mgr/plugins/testphone/templates")).json()
    return {"devices": devices, "configs": configs, "params": params, "overrides": overrides}


@pytest.mark.parametrize(
    ("method", "path", "template"), BODY_ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in BODY_ENDPOINTS]
)
async def test_bad_body_is_refused_and_nothing_written(
    seeded: Server, method: str, path: str, template: str
) -> None:
    before = await _state(seeded)
    for bad, (value, word) in BAD_VALUES.items():
        r = await seeded.api.request(method, path, content=template.replace("@V@", value))
        assert r.status_code == 400, (bad, r.status_code, r.text[:300])
        assert word in r.text and "JSON" in r.text, (bad, r.text[:300])
    r = await seeded.api.request(method, path, content=DEEP)  # the whole body, not one field
    assert r.status_code == 400 and "nested deeper than 64" in r.text, r.text[:300]
    assert await _state(seeded) == before


HUGE = str(10**30)
LIST_PATHS = ["/0.2/dev_mgr/devices", "/0.2/cfg_mgr/configs"]
BAD_COUNTS = [HUGE, "9" * 5000, "2147483648", "-1", "1.5", "²", "١٢", "0x10", " 1"]


@pytest.mark.parametrize("name", ["skip", "limit"])
@pytest.mark.parametrize("path", LIST_PATHS)
async def test_list_counts_out_of_range(seeded: Server, path: str, name: str) -> None:
    for text in BAD_COUNTS:
        r = await seeded.api.get(path, params={name: text})
        assert r.status_code == 400, (text, r.status_code, r.text[:300])
        assert name in r.text


@pytest.mark.parametrize("path", LIST_PATHS)
async def test_list_counts_at_the_bounds(seeded: Server, path: str) -> None:
    r = await seeded.api.get(path, params={"skip": "2147483647", "limit": "2147483647"})
    assert r.status_code == 200, r.text
    key = path.rsplit("/", 1)[1]
    assert r.json()[key] == []
    r = await seeded.api.get(path, params={"skip": "0", "limit": "1"})
    assert r.status_code == 200 and len(r.json()[key]) == 1


async def test_requests_limit_out_of_range(seeded: Server) -> None:
    for text in (HUGE, "9" * 5000, "²", "0", "10001"):
        r = await seeded.api.get("/0.2/dev_mgr/requests", params={"limit": text})
        assert r.status_code == 400 and "limit" in r.text, (text, r.text[:300])


BAD_SELECTORS = {
    "nested": '{"mac": ' + "[" * 1000 + "]" * 1000 + "}",
    "NaN": '{"X_v": NaN}',
    "Infinity": '{"X_v": {"$gt": Infinity}}',
    "float overflow": '{"X_v": {"$lt": 1e400}}',
    "huge integer": '{"X_v": ' + HUGE + "}",
}


@pytest.mark.parametrize("path", LIST_PATHS)
async def test_selector_json_is_strict(seeded: Server, path: str) -> None:
    for name, selector in BAD_SELECTORS.items():
        r = await seeded.api.get(path, params={"q": selector})
        assert r.status_code == 400 and "q:" in r.text, (name, r.text[:300])
        q64 = base64.urlsafe_b64encode(selector.encode()).decode()
        r = await seeded.api.get(path, params={"q64": q64})
        assert r.status_code == 400 and "q64:" in r.text, (name, r.text[:300])


async def test_operation_ids_out_of_range(seeded: Server) -> None:
    for path in (
        f"/0.2/dev_mgr/synchronize/{HUGE}",
        f"/0.2/pg_mgr/install/install/{HUGE}",
        f"/0.2/pg_mgr/plugins/testphone/install/install/{HUGE}",
    ):
        for method in ("GET", "DELETE"):
            r = await seeded.api.request(method, path)
            assert 400 <= r.status_code < 500 and r.text, (path, method, r.status_code)


async def test_values_within_range_still_accepted(seeded: Server) -> None:
    """The limits refuse only what they must: 64 levels, 64-bit integers, finite floats."""
    nested: Any = 1
    for _ in range(MAX_DEPTH - 4):  # the config document itself adds 4 levels
        nested = [nested]
    body = {
        "config": {
            "id": "edge",
            "parent_ids": ["base"],
            "raw_config": {"X_n": nested, "X_i": 2**63 - 1, "X_j": -(2**63) + 1, "X_f": 1e308},
        }
    }
    r = await seeded.api.post("/0.2/cfg_mgr/configs", content=json.dumps(body))
    assert r.status_code == 201, r.text
    raw = (await seeded.api.get("/0.2/cfg_mgr/configs/edge")).json()["config"]["raw_config"]
    assert raw == body["config"]["raw_config"]  # type: ignore[index]


def test_depth_is_measured_outside_strings() -> None:
    assert not depth_exceeds(b'["' + b"[" * 1000 + b'"]')
    assert depth_exceeds(b'["\\"", ' + b"[" * 70 + b"]" * 70 + b"]")
    assert strict_loads('{"a": "[[[[", "b": [1]}') == {"a": "[[[[", "b": [1]}


async def test_value_too_long_for_a_column_is_a_400_not_a_500(seeded: Server) -> None:
    """PostgreSQL refuses a config role longer than its column; SQLite stores it. A device's
    serial number is bounded before the database on both (128, its column's length)."""
    before = await _state(seeded)
    r = await seeded.api.post(
        "/0.2/dev_mgr/devices", json={"device": {"mac": "00:11:22:33:44:aa", "sn": "s" * 300}}
    )
    assert r.status_code == 400 and "device.sn: longer than 128" in r.text
    assert await _state(seeded) == before
    body = {"config": {"id": "long-role", "parent_ids": [], "role": "r" * 300, "raw_config": {}}}
    r = await seeded.api.post("/0.2/cfg_mgr/configs", json=body)
    if seeded.prov.engine.dialect.name == "postgresql":
        assert r.status_code == 400 and "database" in r.text, (r.status_code, r.text[:300])
        assert await _state(seeded) == before
    else:
        assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("where", "raw"),
    [
        ("sip_lines.1.display_name", {"sip_lines": {"1": {"username": "u", "display_name": "A\nsip.server = evil"}}}),
        ("sip_lines.1.password", {"sip_lines": {"1": {"username": "u", "password": 'p"\rX=1'}}}),
        ("funckeys.1.label", {"funckeys": {"1": {"type": "speeddial", "value": "1", "label": "a\u2028b"}}}),
        ("admin_password", {"admin_password": "x\x1by"}),
        ("ntp_ip", {"ntp_ip": "10.0.0.1\tx"}),
    ],
)  # fmt: skip
async def test_control_characters_in_values_are_refused(
    seeded: Server, where: str, raw: dict[str, Any]
) -> None:
    """A line break in a value would add a key or a line to the line-oriented files of most
    vendors (or a field to another tenant's port of a shared gateway): refused where it enters."""
    before = await _state(seeded)
    body = {"config": {"id": "ctl", "parent_ids": ["base"], "raw_config": raw}}
    r = await seeded.api.post("/0.2/cfg_mgr/configs", json=body)
    assert r.status_code == 400, r.text
    assert f"raw_config.{where}: control characters" in r.text
    assert "evil" not in r.text and "X=1" not in r.text
    body = {"config": {"id": "cfg1", "parent_ids": ["base"], "raw_config": raw}}
    assert (await seeded.api.put("/0.2/cfg_mgr/configs/cfg1", json=body)).status_code == 400
    assert await _state(seeded) == before


async def test_plugins_own_keys_may_hold_line_breaks(seeded: Server) -> None:
    """``X_`` keys are plugin-specific (a certificate, a script): plugins escape them."""
    raw = {"X_cert": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}
    body = {"config": {"id": "xcert", "parent_ids": ["base"], "raw_config": raw}}
    r = await seeded.api.post("/0.2/cfg_mgr/configs", json=body)
    assert r.status_code == 201, r.text
