"""A MAC scanner is banned within ``ban_threshold`` guesses; 200 phones behind one NAT are not.

Real plugins (Yealink, Poly), a real server, real HTTP; addresses come from X-Forwarded-For
behind one trusted proxy, as in the NAT tests of tests/provisioning. Each scenario runs with the
``null`` strategy and with ``url_key`` where the scanner holds the tenant's own key (every phone
of the tenant carries it in its URL, so it is not a secret from a scanner on that network).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_PLUGINS, Server, make_settings, start_server
from tests.provisioning.test_http_pipeline import configure

STRATEGIES = ["null", "url_key"]
THRESHOLD = 30
CREATION_CAP = 100
KEY = "site-key-Scan-01"
VICTIM_PASSWORD = "Victim-Sip-Secret-77"
VICTIM_INDEX = 150  # the scanner would reach it after 150 guesses
FAIL2BAN_LINE = re.compile(
    r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\] "
    r"(?:(?P<refused>Provisioning request refused from) (?P<ip>[0-9.]+): (?P<reason>.+)"
    r"|(?P<banned>Address banned) (?P<bip>[0-9.]+): .+"
    r"|New device created automatically from (?P<cip>[0-9.]+): [0-9a-f]{32}"
    r"|Sensitive file requested from [0-9.]+: \S+)$"
)


@dataclass
class Site:
    srv: Server
    prefix: str  # "" or "/<tenant key>"
    tenant: str | None

    def security_lines(self) -> list[str]:
        return self.srv.prov.settings.security_log.read_text().splitlines()


@contextlib.asynccontextmanager
async def open_site(
    strategy: str, tmp_path: Path, database_url: str, creation_cap: int = CREATION_CAP
) -> AsyncIterator[Site]:
    """A server with the real plugins; under url_key, a tenant with its key."""
    overrides: dict[str, object] = {
        "general.plugin_dirs": [str(REPO_PLUGINS)],
        "general.http_proxied_trusted_proxies_count": 1,
        "provisioning.ban_threshold": THRESHOLD,
        "provisioning.auto_create_per_source": creation_cap,
    }
    if strategy == "url_key":
        overrides["general.http_auth_strategy"] = "url_key"
    srv = await start_server(make_settings(tmp_path, database_url, **overrides))
    try:
        tenant = None
        prefix = ""
        if strategy == "url_key":
            tenant = str((await srv.prov.tenants.create("site")).uuid)
            await srv.prov.tenants.set_key(tenant, KEY)
            prefix = f"/{KEY}"
        yield Site(srv, prefix, tenant)
    finally:
        await srv.close()


@pytest.fixture(params=STRATEGIES)
async def site(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str
) -> AsyncIterator[Site]:
    async with open_site(request.param, tmp_path, database_url) as opened:
        yield opened


def yealink_mac(n: int) -> str:
    return f"00:15:65:5c:{n // 256:02x}:{n % 256:02x}"


def poly_mac(n: int) -> str:
    return f"00:04:f2:5c:{n // 256:02x}:{n % 256:02x}"


def bare(mac: str) -> str:
    return mac.replace(":", "")


async def victim(site: Site, mac: str, plugin: str, model: str) -> str:
    """A configured device with a SIP password, in the site's tenant; returns its id."""
    headers = {"Wazo-Tenant": site.tenant} if site.tenant else {}
    body = {"device": {"mac": mac, "plugin": plugin, "model": model}}
    r = await site.srv.api.post("/0.2/dev_mgr/devices", json=body, headers=headers)
    assert r.status_code == 201, r.text
    device_id = str(r.json()["id"])
    await configure(site.srv, device_id, password=VICTIM_PASSWORD, tenant=site.tenant)
    return device_id


async def count_devices(site: Site) -> int:
    r = await site.srv.api.get("/0.2/dev_mgr/devices", params={"recurse": "true"})
    return len(r.json()["devices"])


async def walk(site: Site, ip: str, paths: list[str], user_agent: str | None) -> tuple[int, bytes]:
    """Fetch each path from ``ip``; returns how many were asked before the ban, and every body."""
    headers = {"X-Forwarded-For": ip, **({"User-Agent": user_agent} if user_agent else {})}
    before_ban = 0
    bodies = b""
    for path in paths:
        if not site.srv.pipeline.failures.is_banned(ip):
            before_ban += 1
        r = await site.srv.phone.get(site.prefix + path, headers=headers)
        assert r.status_code in (200, 404), (path, r.status_code)
        bodies += r.content
    return before_ban, bodies


def check_log(site: Site, ip: str) -> tuple[int, int]:
    """Every line is in the fail2ban format and names no key; returns (counted refusals,
    creations) logged for ``ip`` before its ban, after asserting the ban and its refusals."""
    lines = site.security_lines()
    refusals = creations = 0
    banned = False
    banned_refusals = 0
    for line in lines:
        assert KEY not in line and VICTIM_PASSWORD not in line, line
        m = FAIL2BAN_LINE.match(line)
        assert m, f"not in the fail2ban format: {line!r}"
        if m["bip"] == ip:
            banned = True
        elif m["ip"] == ip and m["reason"].startswith("address banned"):
            assert banned
            banned_refusals += 1
        elif m["ip"] == ip:
            assert not banned, line
            refusals += 1
        elif m["cip"] == ip:
            assert not banned, line
            creations += 1
    assert banned, f"no 'Address banned {ip}' line"
    assert banned_refusals >= 1  # refusals after the ban are logged too (throttled, counted)
    return refusals, creations


async def test_scanner_of_unknown_macs_is_banned(site: Site) -> None:
    """The issue's scanner: `<mac>.cfg` for 300 Yealink MACs without a User-Agent. Before, the
    first 100 created devices, the next ones (creation refused) passed as Poly's expected
    `<mac>.cfg` miss, and the 150th got the victim's SIP password."""
    await victim(site, yealink_mac(VICTIM_INDEX), "yealink", "T46S")
    # the victim's file does carry the password to whoever names its MAC: what is at stake
    r = await site.srv.phone.get(f"{site.prefix}/{bare(yealink_mac(VICTIM_INDEX))}.cfg")
    assert r.status_code == 200 and VICTIM_PASSWORD.encode() in r.content
    before = await count_devices(site)
    ip = "198.51.100.20"
    paths = [f"/{bare(yealink_mac(n))}.cfg" for n in range(300)]
    asked, bodies = await walk(site, ip, paths, None)
    assert site.srv.pipeline.failures.is_banned(ip)
    assert asked <= THRESHOLD
    assert VICTIM_PASSWORD.encode() not in bodies
    created = await count_devices(site) - before
    assert created <= min(THRESHOLD, CREATION_CAP)
    refusals, creations = check_log(site, ip)
    assert creations == created and refusals + creations == asked


@pytest.mark.parametrize(
    "user_agent",
    [None, "FileTransport PolycomVVX-VVX_450-UA/6.4.6.1234 Type/Application"],
    ids=["no-user-agent", "poly-user-agent"],
)
async def test_scanner_of_expected_miss_pattern_is_banned(
    site: Site, user_agent: str | None
) -> None:
    """`<mac>.cfg` of Poly MACs: a miss Poly declares normal for its own phones, and no plugin
    identifies a device from it alone. Every guess counts, with or without Poly's User-Agent."""
    await victim(site, poly_mac(VICTIM_INDEX), "poly", "VVX450")
    before = await count_devices(site)
    ip = "198.51.100.21"
    paths = [f"/{bare(poly_mac(n))}.cfg" for n in range(300)]
    asked, bodies = await walk(site, ip, paths, user_agent)
    assert site.srv.pipeline.failures.is_banned(ip)
    assert asked <= THRESHOLD
    assert VICTIM_PASSWORD.encode() not in bodies
    created = await count_devices(site) - before
    assert created <= min(THRESHOLD, CREATION_CAP)
    refusals, creations = check_log(site, ip)
    assert refusals + creations == asked
    if user_agent is None:
        assert created == 0  # nothing identifies a device: pure failures


async def test_secret_file_walk_is_banned(site: Site) -> None:
    """Poly's credentials file named directly for each MAC (path-identified: each guess creates a
    device): banned at the threshold, far below the per-address creation cap."""
    await victim(site, poly_mac(VICTIM_INDEX), "poly", "VVX450")
    before = await count_devices(site)
    ip = "198.51.100.22"
    paths = [f"/{bare(poly_mac(n))}-user.cfg" for n in range(300)]
    asked, bodies = await walk(site, ip, paths, None)
    assert site.srv.pipeline.failures.is_banned(ip)
    assert asked <= THRESHOLD and VICTIM_PASSWORD.encode() not in bodies
    assert await count_devices(site) - before <= THRESHOLD


YEALINK_BOOT = ["y000000000028.cfg", "{mac}.cfg", "{mac}-local.cfg", "{mac}-contact.xml"]


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_nat_site_of_200_phones_booting_twice_is_never_banned(
    strategy: str, tmp_path: Path, database_url: str
) -> None:
    """200 new Yealink T46S behind one address, each booting twice in the T4x order (model
    file, its own file, two optional misses), ten phones at a time. A site deploying 200 new
    phones at once behind one address raises the per-address creation cap (docs)."""
    async with open_site(strategy, tmp_path, database_url, creation_cap=1000) as site:
        await nat_site_boots(site)


async def nat_site_boots(site: Site) -> None:
    ip = "203.0.113.50"
    statuses: dict[str, list[int]] = {name: [] for name in YEALINK_BOOT}

    async def boot(n: int) -> None:
        mac = yealink_mac(1000 + n)
        headers = {
            "User-Agent": f"Yealink SIP-T46S 66.86.0.15 {mac}",
            "X-Forwarded-For": ip,
        }
        for name in YEALINK_BOOT:
            r = await site.srv.phone.get(
                f"{site.prefix}/{name.format(mac=bare(mac))}", headers=headers
            )
            statuses[name].append(r.status_code)

    for _round in range(2):
        for start in range(0, 200, 10):
            await asyncio.gather(*(boot(n) for n in range(start, start + 10)))
        assert not site.srv.pipeline.failures.is_banned(ip)
    assert statuses["{mac}.cfg"] == [200] * 400
    assert set(statuses["y000000000028.cfg"]) == {404}  # expected misses of their own plugin
    assert not site.srv.pipeline.failures.failures.count(ip)
    lines = site.security_lines()
    assert not [line for line in lines if f"refused from {ip}:" in line]
    assert sum(f"created automatically from {ip}:" in line for line in lines) == 200
    assert await count_devices(site) == 200


POLY_BOOT = [
    "000000000000.cfg",
    "{mac}.cfg",
    "sip.ld",
    "{mac}-user.cfg",
    "common.cfg",
    "{mac}-phone.cfg",
    "{mac}-directory.xml",
]


async def test_nat_site_of_poly_phones_is_never_banned(tmp_path: Path, database_url: str) -> None:
    """Poly's User-Agent has no MAC: behind NAT its site-wide files cannot be tied to one
    phone. Those misses are not guesses; its `<mac>.cfg` names its MAC and so identifies it."""
    async with open_site("url_key", tmp_path, database_url, creation_cap=1000) as site:
        ip = "203.0.113.51"
        headers = {
            "User-Agent": "FileTransport PolycomVVX-VVX_450-UA/6.4.6.1234 Type/Application",
            "X-Forwarded-For": ip,
        }
        user_files: list[int] = []
        for _round in range(2):
            for n in range(2 * THRESHOLD):
                mac = bare(poly_mac(2000 + n))
                for name in POLY_BOOT:
                    path = f"{site.prefix}/{name.format(mac=mac)}"
                    r = await site.srv.phone.get(path, headers=headers)
                    if name == "{mac}-user.cfg":
                        user_files.append(r.status_code)
        assert not site.srv.pipeline.failures.is_banned(ip)
        assert not site.srv.pipeline.failures.failures.count(ip)
        assert user_files == [200] * 4 * THRESHOLD
        assert await count_devices(site) == 2 * THRESHOLD


def test_creation_counts_until_the_device_returns() -> None:
    """The tracker alone, on a clock the test moves: a creation is a failure until the device
    returns; one that never returns stays counted until the window forgets it."""
    from provisor.provisioning.defence import FailureTracker

    now = [0.0]
    tracker = FailureTracker(3, 60.0, 600.0, clock=lambda: now[0])
    for n in range(10):  # ten phones, each back for its second file at once
        now[0] += 1
        assert not tracker.created("192.0.2.1", f"phone-{n}")
        tracker.returned(f"phone-{n}")
    assert tracker.failures.count("192.0.2.1") == 0
    tracker.created("192.0.2.1", "guess-1")
    tracker.created("192.0.2.1", "guess-2")
    tracker.returned("never-created")  # nothing to withdraw
    assert tracker.created("192.0.2.1", "guess-3")  # the third unreturned creation bans
    assert tracker.is_banned("192.0.2.1")
    now[0] += 61
    assert tracker.failures.count("192.0.2.1") == 0
    assert tracker.is_banned("192.0.2.1")  # the ban outlives the window
    now[0] += 600
    assert not tracker.is_banned("192.0.2.1")
