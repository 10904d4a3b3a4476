"""Red team, session 5: what an outsider or a hostile tenant found, each held by a test.

Every test drives a real provisor (real database, real sockets on 127.0.0.1) with real
clients, as tenants of tests.security.conftest (the master, sub-tenants A and B), and checks
the database after a refused write.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server, make_settings, start_server
from tests.console._console import csrf_of, signed_in
from tests.security.conftest import World, build_world

pytestmark = pytest.mark.asyncio


# -- ids and keys ending in a line break ------------------------------------------------------
# ``^…$`` matches before a final "\n": "evil\n" passed as a safe id, was written, and the 201's
# Location header then could not be sent (uvicorn dropped the connection, a traceback logged).


@pytest.mark.parametrize("bad", ["evil\n", "evil\r\n", "\nevil"])
async def test_config_id_with_a_line_break_is_refused_and_not_written(
    fresh_world: World, bad: str
) -> None:
    a = fresh_world.a
    body = {"config": {"id": bad, "parent_ids": ["base"], "raw_config": {}}}
    r = await a.api.post("/0.2/cfg_mgr/configs", json=body)
    assert r.status_code == 400, r.text
    assert "not a valid id" in r.text
    r = await a.api.get("/0.2/cfg_mgr/configs", params={"q": json.dumps({"id": bad})})
    assert r.status_code == 200 and r.json()["configs"] == []


async def test_device_id_with_a_line_break_is_refused_and_not_written(fresh_world: World) -> None:
    a = fresh_world.a
    r = await a.api.post("/0.2/dev_mgr/devices", json={"device": {"id": "devnl\n"}})
    assert r.status_code == 400, r.text
    assert "device" in r.text and "not a valid id" in r.text
    r = await a.api.get("/0.2/dev_mgr/devices", params={"q": json.dumps({"id": "devnl\n"})})
    assert r.status_code == 200 and r.json()["devices"] == []


async def test_provisioning_key_with_a_line_break_is_refused(fresh_world: World) -> None:
    a = fresh_world.a
    r = await a.api.put(
        "/0.2/configure/provisioning_key", json={"param": {"value": "abcdefgh12\n"}}
    )
    assert r.status_code == 400, r.text
    r = await a.api.get("/0.2/configure/provisioning_key")
    assert r.json()["param"]["value"] == a.key


async def test_port_config_with_a_line_break_is_refused_as_an_invalid_id(
    fresh_world: World,
) -> None:
    master, a = fresh_world.master, fresh_world.a
    r = await master.api.put(
        f"/0.2/dev_mgr/devices/{a.device}/ports/2", json={"port": {"tenant_uuid": a.uuid}}
    )
    assert r.status_code == 204, r.text
    r = await a.api.put(
        f"/0.2/dev_mgr/devices/{a.device}/ports/2", json={"port": {"config": f"{a.config}\n"}}
    )
    assert r.status_code == 400 and "not a valid id" in r.text, r.text
    r = await a.api.get(f"/0.2/dev_mgr/devices/{a.device}/ports/2")
    assert r.json()["port"]["config"] is None


# -- a key repeated in one JSON object -------------------------------------------------------
# The parser kept the last value: a proxy or audit log in front of provisor, reading the first,
# saw a port assigned to one tenant while provisor gave it to another.


async def test_duplicate_keys_are_refused_and_nothing_is_written(fresh_world: World) -> None:
    master, a, b = fresh_world.master, fresh_world.a, fresh_world.b
    url = f"/0.2/dev_mgr/devices/{a.device}/ports/2"
    body = f'{{"port": {{"tenant_uuid": "{a.uuid}", "tenant_uuid": "{b.uuid}"}}}}'
    r = await master.api.put(url, content=body)
    assert r.status_code == 400, r.text
    assert "duplicate key 'tenant_uuid'" in r.text
    outer = f'{{"port": {{"tenant_uuid": "{a.uuid}"}}, "port": {{"tenant_uuid": "{b.uuid}"}}}}'
    r = await master.api.put(url, content=outer)
    assert r.status_code == 400 and "duplicate key 'port'" in r.text, r.text
    r = await master.api.get(url)
    assert r.status_code == 404, r.text  # no port was assigned
    # in a query selector too
    q = f'{{"id": "{a.device}", "id": "{b.device}"}}'
    r = await master.api.get("/0.2/dev_mgr/devices", params={"q": q})
    assert r.status_code == 400 and "duplicate key 'id'" in r.text, r.text


# -- a huge bad value echoed back whole ------------------------------------------------------
# validate_id, MAC, IP, port tenants and synchronize put the whole value in the 400 (2 MB in,
# 2 MB out); provisor.domain.ids already cut its values to 80 characters.


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/0.2/cfg_mgr/configs", {"config": {"id": "BIG", "raw_config": {}}}),
        ("/0.2/dev_mgr/devices", {"device": {"mac": "BIG"}}),
        ("/0.2/dev_mgr/devices", {"device": {"ip": "BIG"}}),
        ("/0.2/dev_mgr/devices", {"device": {"plugin": "BIG"}}),
        ("/0.2/dev_mgr/synchronize", {"tenant_uuid": "BIG"}),
    ],
)
async def test_a_huge_bad_value_is_named_not_echoed(
    fresh_world: World, path: str, body: dict[str, dict[str, str] | str]
) -> None:
    big = "x" * 200_000
    text = json.dumps(body).replace("BIG", big)
    r = await fresh_world.a.api.post(path, content=text)
    assert r.status_code == 400, r.text[:200]
    assert "xxxx" in r.text and len(r.content) < 1000, len(r.content)


async def test_a_huge_port_tenant_is_named_not_echoed(fresh_world: World) -> None:
    a = fresh_world.a
    body = {"port": {"tenant_uuid": "x" * 200_000}}
    r = await fresh_world.master.api.put(f"/0.2/dev_mgr/devices/{a.device}/ports/4", json=body)
    assert r.status_code == 400 and "is not yours" in r.text and len(r.content) < 1000
    r = await fresh_world.master.api.get(f"/0.2/dev_mgr/devices/{a.device}/ports")
    assert r.json()["ports"] == []


# -- synchronize by a config or plugin id that is not an id ------------------------------------


@pytest.mark.parametrize(
    "body", [{"config": "../../etc/passwd"}, {"config": "c" * 5000}, {"plugin": "../x"}]
)
async def test_synchronize_refuses_an_invalid_id(fresh_world: World, body: dict[str, str]) -> None:
    r = await fresh_world.a.api.post("/0.2/dev_mgr/synchronize", json=body)
    assert r.status_code == 400, r.text[:200]
    assert next(iter(body)) in r.text and "not a valid" in r.text
    assert "location" not in r.headers  # no operation was started


# -- a key or token after the first segment never reaches the request trace -------------------
# Pipeline._handle used to set ``entry.path = creds.path`` and redact only when the credentials
# were refused; in ``null`` mode nothing is refused, so a path whose key or device token is not the
# leading segment (a phone told ``http://host/prov/<key>/`` behind a proxy the server has no
# prefix for) was recorded whole, and shown by GET /0.2/dev_mgr/requests and the console;
# now hidden wherever it stands (provisioning.security.hide_secrets).


async def test_a_key_after_the_first_segment_never_reaches_the_trace(fresh_world: World) -> None:
    a = fresh_world.a
    r = await a.api.get(f"/0.2/dev_mgr/devices/{a.device}/provisioning_token")
    token = r.json()["provisioning_token"]
    mac = a.mac.replace(":", "")
    ua = {"User-Agent": f"TestPhone-TP100/1.2.3 ({a.mac})"}
    server = fresh_world.server
    await server.phone.get(f"/prov/{a.key}/{mac}.cfg", headers=ua)
    await server.phone.get(f"/prov/{token}/{mac}.cfg", headers=ua)
    r = await a.api.get("/0.2/dev_mgr/requests", params={"device": a.device, "limit": "10"})
    paths = [e["path"] for e in r.json()["requests"]]
    assert any(p.startswith("prov/") for p in paths), paths  # both requests were recorded
    assert not [p for p in paths if a.key in p or token in p], paths


# -- one tenant signing in again and again ends everybody's console sessions ------------------
# Past console.max_sessions a sign-in ended the oldest session, whoever's: a sub-tenant with one
# token signed the master's operators out with max_sessions sign-ins (and kept them out).


@pytest.fixture
async def small_console(tmp_path: Path, database_url: str) -> AsyncIterator[World]:
    """A three-tenant world whose console holds at most 4 sessions."""
    server: Server = await start_server(
        make_settings(tmp_path, database_url, **{"console.max_sessions": 4})
    )
    world = await build_world(server)
    try:
        yield world
    finally:
        for t in (world.master, world.a, world.b):
            await t.api.aclose()
        await server.close()


async def test_a_tenant_signing_in_repeatedly_ends_only_its_own_sessions(
    small_console: World,
) -> None:
    world = small_console
    master = await signed_in(world.server, world.master.token)
    a = await signed_in(world.server, world.a.token)
    floods = [await signed_in(world.server, world.b.token) for _ in range(10)]
    try:
        for victim in (master, a):  # still signed in: their pages answer
            r = await victim.get("/console/phones")
            assert r.status_code == 200, r.status_code
        r = await floods[-1].get("/console/phones")
        assert r.status_code == 200  # the newest of B's sessions lives
        r = await floods[0].get("/console/phones")
        assert r.status_code == 303  # B's oldest made room: back to the sign-in page
    finally:
        for client in (master, a, *floods):
            await client.aclose()


# -- one tenant opening every live stream -----------------------------------------------------
# At most 20 live streams were open at once, whoever's: a sub-tenant opening 20 locked every
# other tenant, the master included, out of the Live page (429).


async def test_a_tenant_cannot_take_every_live_stream(fresh_world: World) -> None:
    world = fresh_world
    b = await signed_in(world.server, world.b.token)
    master = await signed_in(world.server, world.master.token)
    try:
        async with contextlib.AsyncExitStack() as open_streams:
            refused, readers = 0, []  # each reader kept: a dropped one closes its stream
            for _ in range(21):
                r = await open_streams.enter_async_context(b.stream("GET", "/console/live/stream"))
                if r.status_code == 429:
                    refused += 1
                    continue
                assert r.status_code == 200, r.status_code
                readers.append(r.aiter_bytes())
                await anext(readers[-1])  # the stream runs (its slot is taken)
            assert 0 < refused < 21  # B was stopped before it took every slot
            async with master.stream("GET", "/console/live/stream") as r:
                assert r.status_code == 200  # the master still watches
    finally:
        await b.aclose()
        await master.aclose()


# -- a model override's target: any string -----------------------------------------------------
# A ``model`` target was not checked: 129+ characters were stored on SQLite and refused by
# PostgreSQL's column (the same request meaning two things), and a line break was stored.


@pytest.mark.parametrize("target", ["M" * 129, "T46S\n", "T46S\rx", "T4\u20286S"])
async def test_a_model_override_target_is_checked_and_nothing_is_stored(
    fresh_world: World, target: str
) -> None:
    a = fresh_world.a
    url = "/0.2/pg_mgr/plugins/testphone/templates/model/common.cfg"
    body = {"template": {"target": target, "source": "# model\n"}}
    r = await a.api.put(url, json=body)
    assert r.status_code == 400, r.text[:300]
    assert "template.target" in r.text
    r = await a.api.get("/0.2/pg_mgr/plugins/testphone/templates")
    assert r.status_code == 200
    assert [t for t in r.json()["templates"] if t.get("scope") == "model"] == [], r.text


# -- the console showed a config the caller cannot read over REST ------------------------------
# A master may give a sub-tenant's phone a line config the master owns (authorization rule 4):
# the tenant cannot read it over REST (404), but its Phone page listed the config's values and
# "Reveal secrets" showed its SIP password.


async def test_console_shows_only_configs_the_caller_reads_over_rest(fresh_world: World) -> None:
    master, a = fresh_world.master, fresh_world.a
    secret = "MasterLinePw-" + a.uuid[:8]
    body = {
        "config": {
            "id": "m-line",
            "parent_ids": ["base"],
            "raw_config": {
                "sip_proxy_ip": "pbx.master.example",
                "sip_lines": {"1": {"username": "master-user-77", "password": secret}},
            },
        }
    }
    r = await master.api.post("/0.2/cfg_mgr/configs", json=body)  # the master's own config
    assert r.status_code == 201, r.text
    device = dict(a.snapshot, config="m-line")
    r = await master.api.put(f"/0.2/dev_mgr/devices/{a.device}", json={"device": device})
    assert r.status_code == 204, r.text
    assert (await a.api.get("/0.2/cfg_mgr/configs/m-line")).status_code == 404
    assert (await a.api.get("/0.2/cfg_mgr/configs/m-line/raw")).status_code == 404
    browser = await signed_in(fresh_world.server, a.token)
    try:
        page = await browser.get(f"/console/phones/{a.device}")
        assert page.status_code == 200
        config_rows = page.text.split("<pre", 1)[0]  # the file preview is the phone's own
        assert "master-user-77" not in config_rows and "pbx.master.example" not in config_rows
        csrf = csrf_of(page.text)
        r = await browser.post(
            f"/console/phones/{a.device}/reveal", data={"csrf": csrf}, headers=_origin(browser)
        )
        assert secret not in r.text
        assert r.status_code in (401, 403), r.status_code
    finally:
        await browser.aclose()


def _origin(client: httpx.AsyncClient) -> dict[str, str]:
    return {"Origin": str(client.base_url).rstrip("/")}


# -- a header or parameter given twice ----------------------------------------------------------
# The first of two Wazo-Tenant (X-Auth-Token, recurse) was used: a proxy or audit log reading
# the last one saw the caller act in another tenant.


async def test_auth_headers_and_recurse_given_twice_are_refused(fresh_world: World) -> None:
    a, b = fresh_world.a, fresh_world.b
    url = f"{fresh_world.server.rest_url}/0.2/dev_mgr/devices"
    accept = ("Accept", "application/vnd.proformatique.provd+json")
    cases = [
        [("X-Auth-Token", b.token), ("Wazo-Tenant", b.uuid), ("Wazo-Tenant", a.uuid), accept],
        [("X-Auth-Token", b.token), ("X-Auth-Token", a.token), accept],
    ]
    async with httpx.AsyncClient(timeout=10) as client:
        for headers in cases:
            r = await client.get(url, headers=httpx.Headers(headers))
            assert r.status_code == 400, r.text
            assert "given 2 times" in r.text
        r = await client.get(
            url + "?recurse=false&recurse=true",
            headers={"X-Auth-Token": b.token, accept[0]: accept[1]},
        )
        assert r.status_code == 400 and "recurse" in r.text, r.text
        r = await client.get(url, headers={"X-Auth-Token": b.token, accept[0]: accept[1]})
        assert r.status_code == 200  # once is fine


# -- a config with thousands of parents ---------------------------------------------------------
# parent_ids was not bounded nor checked as ids before each parent was looked up (a query
# each): 10 000 parents kept the server busy ~12 s for one request, an 8 MiB list for minutes.


@pytest.mark.parametrize(
    ("parents", "named"),
    [
        ([f"p{i}" for i in range(1000)], "at most 32 parents"),
        (["base", "../../etc/passwd"], "not a valid id"),
        (["base", "x" * 200_000], "not a valid id"),
    ],
)
async def test_config_parents_are_bounded_and_checked_before_lookup(
    fresh_world: World, parents: list[str], named: str
) -> None:
    a = fresh_world.a
    body = {"config": {"id": "many-parents", "parent_ids": parents, "raw_config": {}}}
    r = await a.api.post("/0.2/cfg_mgr/configs", json=body)
    assert r.status_code == 400 and named in r.text and len(r.content) < 1000, r.text[:200]
    assert "config.parent_ids" in r.text
    assert (await a.api.get("/0.2/cfg_mgr/configs/many-parents")).status_code == 404


# -- the request trace's filters ----------------------------------------------------------------
# GET /0.2/dev_mgr/requests took any ``ip`` and ``device``: "999.1.1.1", 1000 characters or an
# IPv6 address spelled otherwise than recorded all answered an empty list ("no requests").


async def test_request_trace_filters_are_checked(fresh_world: World) -> None:
    a = fresh_world.a
    for params, named in (
        ({"ip": "999.1.1.1"}, "ip: invalid IP address"),
        ({"ip": "x" * 1000}, "ip: invalid IP address"),
        ({"device": "../x"}, "device: "),
    ):
        r = await a.api.get("/0.2/dev_mgr/requests", params=params)
        assert r.status_code == 400 and named in r.text and len(r.content) < 1000, r.text[:200]
    r = await a.api.get("/0.2/dev_mgr/requests", params={"device": a.device, "ip": "127.0.0.1"})
    assert r.status_code == 200 and r.json()["requests"], r.text  # its fetch, from 127.0.0.1
    spelled = await a.api.get(
        "/0.2/dev_mgr/requests", params={"device": a.device, "ip": " 127.0.0.1"}
    )
    assert spelled.json() == r.json()


# -- provisioning codes of non-ASCII digits -----------------------------------------------------
# str.isdigit() accepted "١٢٣" (Arabic-Indic) and "²³" (superscripts) as a provisioning code:
# stored, never dialable, and distinct from "123" for the uniqueness check.


@pytest.mark.parametrize("code", ["\u0661\u0662\u0663", "\u00b2\u00b3", "\uff11\uff12"])
async def test_provisioning_code_is_ascii_digits(fresh_world: World, code: str) -> None:
    a = fresh_world.a
    body = {
        "config": {
            "id": "odd-code",
            "parent_ids": ["base"],
            "raw_config": {},
            "provisioning_code": code,
        }
    }
    r = await a.api.post("/0.2/cfg_mgr/configs", json=body)
    assert r.status_code == 400 and "provisioning_code" in r.text, r.text
    assert (await a.api.get("/0.2/cfg_mgr/configs/odd-code")).status_code == 404
