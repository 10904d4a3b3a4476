"""No key, token or password in any log line, at DEBUG, ours or a library's.

Each test drives one path that handles a secret (wazo-auth token checks, TFTP busy and
refusals, HTTP refusals with a key and a device token in the path, REST errors with a token)
with every logger at DEBUG, and reads back every line written: the records as formatted by a
handler on the root logger (after the loggers' own filters, as any operator's handler sees
them) and the fail2ban security log. tests/conftest.py does the same over the whole session.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from provisor.provisioning.security import hide_secrets, redact_path
from provisor.provisioning.tftp import TftpLimits, TftpReply, TftpRequest, TftpServer
from tests.conftest import Server, make_settings, start_server
from tests.provisioning.test_http_pipeline import UA, configure
from tests.provisioning.tftp_client import TftpError, tftp_get
from tests.support.fake_wazo_auth import FakeWazoAuth, start_fake_wazo_auth

KEY = "Tenant-Key-0f9e8d7c"
PASSWORD = "Line-Pw-Zq8x1"
WAZO_TOKEN = "wazo-token-5b1c9e77d2"
TOKEN_SHAPED = "A" * 16 + "b" * 16  # a device token that does not exist (32 characters)


class Tap(logging.Handler):
    """Every record any logger emits, formatted as an operator's handler would."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextmanager
def tap() -> Iterator[Tap]:
    """Every logger at DEBUG (SQLAlchemy's included) into one Tap."""
    handler = Tap()
    root, sa, security = (
        logging.getLogger(),
        logging.getLogger("sqlalchemy"),
        logging.getLogger("provisor.security"),
    )
    levels = (root.level, sa.level)
    root.addHandler(handler)
    security.addHandler(handler)
    root.setLevel(logging.DEBUG)
    sa.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        security.removeHandler(handler)
        root.setLevel(levels[0])
        sa.setLevel(levels[1])


def assert_clean(lines: list[str], secrets: list[str]) -> None:
    assert lines, "nothing was logged: the test drove no log path"
    for line in lines:
        for secret in secrets:
            assert secret not in line, f"secret {secret!r} logged: {line}"


# -- the helper every log site uses ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"{KEY}/{TOKEN_SHAPED}/001565112233.cfg", "*/*/001565112233.cfg"),
        (f"{KEY}/001565112233.cfg", "*/001565112233.cfg"),
        ("Aastra/00085D237429.cfg", "Aastra/00085D237429.cfg"),
        ("Grandstream/cfgc074ad2bd859", "*/cfgc074ad2bd859"),
        ("y000000000028.cfg", "y000000000028.cfg"),
        (KEY, "*"),
        (TOKEN_SHAPED, "*"),
        ("0.1/token/some-long-token", "0.1/token/*"),
    ],
)
def test_redact_path(path: str, expected: str) -> None:
    assert redact_path(path) == expected


def test_redact_path_hides_a_known_key_even_shaped_as_a_file() -> None:
    assert redact_path("acme.corp.key", lambda s: s == "acme.corp.key") == "*"
    assert redact_path("acme.corp.cfg", lambda s: False) == "acme.corp.cfg"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("prov/acme.corp.key/001565aabbcc.cfg", "prov/*/001565aabbcc.cfg"),
        (f"prov/{TOKEN_SHAPED}/001565aabbcc.cfg", "prov/*/001565aabbcc.cfg"),
        ("Yealink/firmware/T46S-66.86.0.15.rom", "Yealink/firmware/T46S-66.86.0.15.rom"),
        ("001565aabbcc.cfg", "001565aabbcc.cfg"),
    ],
)
def test_hide_secrets_anywhere_in_an_accepted_path(path: str, expected: str) -> None:
    """A key or token past the leading segments (not read as credentials) is still hidden;
    the plugin's own folders stay readable."""
    assert hide_secrets(path, lambda s: s == "acme.corp.key") == expected


# -- wazo-auth --------------------------------------------------------------------------------------


@pytest.fixture
async def wazo(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[Server, FakeWazoAuth]]:
    fake = await start_fake_wazo_auth()
    fake.add_token(WAZO_TOKEN, fake.master, ["provd.#"])
    key = tmp_path / "key.yml"
    key.write_text(f"service_id: {fake.service[0]}\nservice_key: {fake.service[1]}\n")
    srv = await start_server(
        make_settings(
            tmp_path,
            database_url,
            **{"auth.backend": "wazo-auth", "auth.url": fake.url, "auth.key_file": str(key)},
        )
    )
    try:
        yield srv, fake
    finally:
        await srv.close()
        await fake.stop()


async def test_wazo_auth_token_checks_log_no_token(wazo: tuple[Server, FakeWazoAuth]) -> None:
    srv, fake = wazo
    wrong = "wazo-wrong-token-77aa"
    with tap() as logs:
        async with srv.client(WAZO_TOKEN) as api:
            assert (await api.get("/0.2/dev_mgr/devices")).status_code == 200
            assert (await api.get("/0.2/cfg_mgr/configs")).status_code == 200
        async with srv.client(wrong) as api:
            assert (await api.get("/0.2/dev_mgr/devices")).status_code == 401
        fake.delay = 5.0  # the auth server hangs: the timeout path logs too
        async with srv.client("wazo-slow-token-88bb") as api:
            assert (await api.get("/0.2/dev_mgr/devices")).status_code == 401
    assert any("httpx" in line and "/0.1/token/" in line for line in logs.lines)
    assert_clean(logs.lines, [WAZO_TOKEN, wrong, "wazo-slow-token-88bb", fake.service[1]])


# -- HTTP refusals ----------------------------------------------------------------------------------


async def test_http_refusals_log_no_key_nor_token(tmp_path: Path, database_url: str) -> None:
    srv = await start_server(
        make_settings(
            tmp_path,
            database_url,
            **{"general.http_auth_strategy": "device_token", "provisioning.ban_threshold": 5},
        )
    )
    try:
        tenant = str((await srv.prov.tenants.create("t")).uuid)
        await srv.prov.tenants.set_key(tenant, KEY)
        other = str((await srv.prov.tenants.create("o")).uuid)
        await srv.prov.tenants.set_key(other, KEY + "-other")
        with tap() as logs:
            r = await srv.phone.get(f"/{KEY}/tp/common.cfg", headers={"User-Agent": UA})
            assert r.status_code == 200
            [device] = (
                await srv.api.get("/0.2/dev_mgr/devices", params={"recurse": "true"})
            ).json()["devices"]
            await configure(srv, device["id"], password=PASSWORD, tenant=tenant)
            token = (
                await srv.api.get(f"/0.2/dev_mgr/devices/{device['id']}/provisioning_token")
            ).json()["provisioning_token"]
            ok = await srv.phone.get(f"/{KEY}/{token}/001122334455.cfg", headers={"User-Agent": UA})
            assert ok.status_code == 200 and PASSWORD.encode() in ok.content
            refused = [
                f"/{KEY}/{TOKEN_SHAPED}/001122334455.cfg",  # unknown token
                f"/{KEY}-other/{token}/001122334455.cfg",  # token of another tenant's device
                f"/{KEY}x/{token}/001122334455.cfg",  # a wrong key, one letter off
                f"/{KEY}/{token}/00112233445f.cfg",  # another device's file
                f"/{KEY}/{token}/..%2f..%2fetc/passwd",  # traversal
                f"/{KEY}/{token}/001122334455.cfg",  # banned by now
            ]
            for path in refused:
                assert (await srv.phone.get(path, headers={"User-Agent": UA})).status_code == 404
        security = srv.prov.settings.security_log.read_text().splitlines()
        assert any("refused" in line for line in security)
        assert any("Address banned" in line for line in security)
        assert_clean(logs.lines + security, [KEY, token, TOKEN_SHAPED, PASSWORD])
    finally:
        await srv.close()


# -- TFTP ---------------------------------------------------------------------------------------------


async def test_tftp_busy_and_failure_lines_log_no_key_nor_token() -> None:
    path = f"{KEY}/{TOKEN_SHAPED}/001565112233.cfg"

    async def slow(req: TftpRequest) -> TftpReply:
        if req.filename.endswith("boom.cfg"):
            raise RuntimeError("plugin exploded")
        await asyncio.sleep(0.5)
        return TftpReply(data=b"x" * 10)

    server = TftpServer(
        slow, host="127.0.0.1", port=0, limits=TftpLimits(max_transfers_per_client=1)
    )
    await server.start()
    try:
        with tap() as logs:
            results = await asyncio.gather(
                *(tftp_get("127.0.0.1", server.port, path) for _ in range(3)),
                return_exceptions=True,
            )
            with pytest.raises(TftpError):
                await tftp_get("127.0.0.1", server.port, f"{KEY}/{TOKEN_SHAPED}/boom.cfg")
        busy = [r for r in results if isinstance(r, TftpError)]
        assert busy and all("busy" in e.message for e in busy)
        # both lines name the client's address, never the requested path
        assert any("busy: " in line and "127.0.0.1" in line for line in logs.lines), logs.lines
        assert any("handler failed for a request from 127.0.0.1" in line for line in logs.lines)
        assert_clean(logs.lines, [KEY, TOKEN_SHAPED])
    finally:
        await server.stop()


async def test_tftp_refusals_through_the_pipeline_log_no_key(
    tmp_path: Path, database_url: str
) -> None:
    srv = await start_server(
        make_settings(
            tmp_path,
            database_url,
            **{
                "general.http_auth_strategy": "url_key",
                "provisioning.tftp_enabled": True,
                "provisioning.ban_threshold": 3,
            },
        )
    )
    try:
        tenant = str((await srv.prov.tenants.create("t")).uuid)
        await srv.prov.tenants.set_key(tenant, KEY)
        port = srv.running.ports["tftp"]
        with tap() as logs:
            for path in (f"{KEY}x/tp/common.cfg", f"{KEY}/{TOKEN_SHAPED}/x.cfg", f"{KEY}/nope.cfg"):
                for _ in range(2):
                    with pytest.raises(TftpError):
                        await tftp_get("127.0.0.1", port, path)
        security = srv.prov.settings.security_log.read_text().splitlines()
        assert any("Address banned 127.0.0.1" in line for line in security)
        assert any("refused from 127.0.0.1: address banned" in line for line in security)
        assert_clean(logs.lines + security, [KEY, TOKEN_SHAPED])
        # the trace (REST) shows what was asked without the wrong key either
        trace = (await srv.api.get("/0.2/dev_mgr/requests", params={"ip": "127.0.0.1"})).text
        assert KEY not in trace
    finally:
        await srv.close()


# -- REST ------------------------------------------------------------------------------------------


async def test_rest_errors_log_no_token(server: Server) -> None:
    bogus = "bogus-api-token-4f4f4f4f"
    with tap() as logs:
        async with server.client(bogus) as api:
            assert (await api.get("/0.2/dev_mgr/devices")).status_code == 401
            r = await api.get("/0.2/dev_mgr/devices", params={"token": bogus})
            assert r.status_code == 401
        async with httpx.AsyncClient(base_url=server.rest_url) as anonymous:
            r = await anonymous.get(f"/0.2/token/{bogus}", headers={"X-Auth-Token": bogus})
            assert r.status_code in (401, 404)
        # a valid token, bad input: errors are logged (or not) without it
        r = await server.api.post("/0.2/cfg_mgr/configs", content=b"{not json")
        assert 400 <= r.status_code < 500
        r = await server.api.get("/0.2/dev_mgr/devices/no-such-device")
        assert r.status_code == 404
    assert_clean(logs.lines, [bogus, server.token])


# -- SQL echo ----------------------------------------------------------------------------------------


async def test_sql_echo_logs_no_parameter_nor_row(tmp_path: Path, database_url: str) -> None:
    """``database.echo`` on, SQLAlchemy at DEBUG: statements are logged, their parameters (keys,
    tokens, config documents) and result rows are not."""
    srv = await start_server(
        make_settings(
            tmp_path,
            database_url,
            **{"database.echo": True, "general.http_auth_strategy": "url_key"},
        )
    )
    try:
        with tap() as logs:
            tenant = str((await srv.prov.tenants.create("t")).uuid)
            await srv.prov.tenants.set_key(tenant, KEY)
            r = await srv.phone.get(f"/{KEY}/tp/common.cfg", headers={"User-Agent": UA})
            assert r.status_code == 200
            [device] = (
                await srv.api.get("/0.2/dev_mgr/devices", params={"recurse": "true"})
            ).json()["devices"]
            await configure(srv, device["id"], password=PASSWORD, tenant=tenant)
            r = await srv.phone.get(f"/{KEY}/001122334455.cfg", headers={"User-Agent": UA})
            assert r.status_code == 200 and PASSWORD.encode() in r.content
        statements = [line for line in logs.lines if "sqlalchemy.engine" in line]
        assert any("INSERT INTO configs" in line for line in statements)
        assert_clean(logs.lines, [KEY, PASSWORD])
    finally:
        await srv.close()


def test_failed_operation_logs_no_url_credentials() -> None:
    """A plugin install that fails on a repository URL with credentials: httpx's exception names
    the URL, and the operation's failure line goes through the redacting filter."""
    from provisor.logs import protect_third_party_loggers

    protect_third_party_loggers()
    request = httpx.Request("GET", "https://repo-user:Repo-Pass-Secret-3@127.0.0.1:9/index.json")
    exc = httpx.HTTPStatusError(
        "Client error '404 Not Found' for url 'https://repo-user:Repo-Pass-Secret-3@127.0.0.1:9/index.json'",
        request=request,
        response=httpx.Response(404, request=request),
    )
    with tap() as logs:
        logging.getLogger("provisor.services.operations").info(
            "operation %s/%s failed: %s", "install", 7, exc
        )
    assert any("operation install/7 failed" in line for line in logs.lines)
    assert_clean(logs.lines, ["Repo-Pass-Secret-3", "repo-user"])
