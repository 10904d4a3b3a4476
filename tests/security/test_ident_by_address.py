"""A request that names no device is the device at its address only when that is safe.

A running provisor with the shipped plugins, HTTP behind one trusted proxy (so each request
says its phone's address in ``X-Forwarded-For``) and TFTP, driven by real clients (httpx,
tftp-hpa). Two tenants each have a Cisco SPA504G at its own address. A request naming no MAC,
serial or UUID (a firmware file without User-Agent, a TFTP request) is served as the device at
its address when the ``NAT`` parameter is off and exactly one device holds the address;
otherwise it is refused and the trace says why. Matching by address never serves another
device's file, nor a device of another tenant than the key's.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from provisor.provisioning.by_address import NAT_ON, NOT_IDENTIFIED, SEVERAL
from tests.conftest import REPO_PLUGINS, Server, make_settings, start_server
from tests.provisioning.tftp_client import TftpError, tftp_get

FIRMWARE = b"SPA50x firmware image " * 64


@dataclass
class Phone:
    """A tenant's phone: device id, MAC, address, its tenant's key and its line password."""

    tenant: str
    uuid: str
    device: str
    mac: str
    ip: str
    key: str
    password: str


@dataclass
class Site:
    """The server and the two tenants' phones."""

    srv: Server
    a: Phone
    b: Phone
    keyed: bool

    def path(self, phone: Phone | None, name: str) -> str:
        """``name`` under the phone's tenant key (url_key) or bare (null)."""
        return f"/{phone.key}/{name}" if self.keyed and phone else f"/{name}"

    async def get(self, ip: str, path: str, ua: str | None = None) -> Any:
        """A phone request from ``ip`` (through the trusted proxy)."""
        headers = {"X-Forwarded-For": ip}
        if ua:
            headers["User-Agent"] = ua
        return await self.srv.phone.get(path, headers=headers)

    def last(self, ip: str) -> dict[str, Any]:
        """The trace's newest entry for ``ip``."""
        [entry] = self.srv.pipeline.trace.query(client_ip=ip, limit=1)
        return entry

    async def nat(self, on: bool) -> None:
        """Set the NAT parameter."""
        r = await self.srv.api.put("/0.2/configure/NAT", json={"param": {"value": int(on)}})
        assert r.status_code == 204, r.text


async def _phone(srv: Server, name: str, index: int) -> Phone:
    uuid = (await srv.prov.tenants.create(f"tenant-{name}")).uuid
    api = srv.client(srv.token, **{"Wazo-Tenant": uuid})
    try:
        password, key = f"AddrPw-{name}-{index}x7", f"key-{name}-k3y-{index}0000"
        config = {
            "id": f"cfg-{name}",
            "parent_ids": ["base"],
            "raw_config": {"sip_lines": {"1": {"username": f"u-{name}", "password": password}}},
        }
        assert (await api.post("/0.2/cfg_mgr/configs", json={"config": config})).status_code == 201
        mac, ip = f"e0:5f:b9:0{index}:00:01", f"10.9.0.{index}"
        device = {
            "id": f"dev-{name}",
            "mac": mac,
            "ip": ip,
            "vendor": "Cisco",
            "model": "SPA504G",
            "version": "7.5.5",
            "plugin": "cisco-spa",
            "config": f"cfg-{name}",
        }
        assert (await api.post("/0.2/dev_mgr/devices", json={"device": device})).status_code == 201
        r = await api.put("/0.2/configure/provisioning_key", json={"param": {"value": key}})
        assert r.status_code == 204, r.text
    finally:
        await api.aclose()
    return Phone(name, uuid, f"dev-{name}", mac, ip, key, password)


@pytest.fixture(params=[None, "url_key"], ids=["null", "url_key"])
async def site(
    request: pytest.FixtureRequest, tmp_path: Path, database_url: str
) -> AsyncIterator[Site]:
    """Two tenants' SPA504G phones at 10.9.0.1 and 10.9.0.2; the firmware file in place."""
    settings = make_settings(
        tmp_path,
        database_url,
        **{
            "general.plugin_dirs": [str(REPO_PLUGINS)],
            "general.http_auth_strategy": request.param,
            "general.http_proxied_trusted_proxies_count": 1,
            "provisioning.tftp_enabled": True,
        },
    )
    firmware = settings.data_dir / "firmware" / "cisco-spa" / "firmware"  # the route's own path
    firmware.mkdir(parents=True)
    (firmware / "spa50x.bin").write_bytes(FIRMWARE)
    srv = await start_server(settings)
    try:
        built = Site(srv, await _phone(srv, "a", 1), await _phone(srv, "b", 2), bool(request.param))
        yield built
    finally:
        await srv.close()


async def test_a_request_naming_no_device_is_the_device_at_its_address(site: Site) -> None:
    a = site.a
    r = await site.get(a.ip, site.path(a, "firmware/spa50x.bin"))  # no User-Agent
    assert r.status_code == 200 and r.content == FIRMWARE
    entry = site.last(a.ip)
    assert entry["device_id"] == a.device and entry["identified"] == {}
    r = await site.get(a.ip, site.path(a, "spa504G.cfg"))  # names a model, not the device
    assert r.status_code == 200 and site.last(a.ip)["device_id"] == a.device
    # a request without the application's version leaves the device's version alone
    r = await site.srv.api.get(f"/0.2/dev_mgr/devices/{a.device}")
    assert r.json()["device"]["version"] == "7.5.5"
    # from an address no device holds: refused, and nothing is created
    r = await site.get("10.9.0.77", site.path(a, "firmware/spa50x.bin"))
    assert r.status_code == 404 and site.last("10.9.0.77")["reason"] == NOT_IDENTIFIED
    assert len((await site.srv.api.get("/0.2/dev_mgr/devices?recurse=true")).json()["devices"]) == 2


async def test_nat_on_means_an_address_names_nobody(site: Site) -> None:
    a = site.a
    await site.nat(True)
    for name in ("firmware/spa50x.bin", "spa504G.cfg"):
        r = await site.get(a.ip, site.path(a, name))
        assert r.status_code == 404
        entry = site.last(a.ip)
        assert entry["reason"] == NAT_ON and entry["device_id"] is None
    await site.nat(False)
    r = await site.get(a.ip, site.path(a, "firmware/spa50x.bin"))
    assert r.status_code == 200


async def test_two_devices_at_one_address_are_refused_as_ambiguous(site: Site) -> None:
    a, b = site.a, site.b
    # the API may put a device at an address another one holds (phones' requests never do)
    r = await site.srv.api.get(f"/0.2/dev_mgr/devices/{b.device}")
    moved = dict(r.json()["device"], ip=a.ip)
    assert (
        await site.srv.api.put(f"/0.2/dev_mgr/devices/{b.device}", json={"device": moved})
    ).status_code == 204
    for phone in (a, b):
        r = await site.get(a.ip, site.path(phone, "firmware/spa50x.bin"))
        if site.keyed:  # under a tenant's key only that tenant's devices are candidates
            assert r.status_code == 200 and site.last(a.ip)["device_id"] == phone.device
        else:
            assert r.status_code == 404 and site.last(a.ip)["reason"] == SEVERAL
    # two devices of one tenant at one address are ambiguous under its key too
    device = {"id": "dev-a2", "ip": "10.9.0.50", "plugin": "cisco-spa", "vendor": "Cisco"}
    r = await site.srv.api.post(
        "/0.2/dev_mgr/devices", json={"device": device}, headers={"Wazo-Tenant": a.uuid}
    )
    assert r.status_code == 201, r.text
    r = await site.srv.api.get(f"/0.2/dev_mgr/devices/{a.device}")
    moved = dict(r.json()["device"], ip="10.9.0.50")
    r = await site.srv.api.put(f"/0.2/dev_mgr/devices/{a.device}", json={"device": moved})
    assert r.status_code == 204
    r = await site.get("10.9.0.50", site.path(a, "firmware/spa50x.bin"))
    assert r.status_code == 404 and site.last("10.9.0.50")["reason"] == SEVERAL


async def test_an_address_never_serves_another_tenants_device(site: Site) -> None:
    """A phone of tenant B behind A's phone's address (a shared NAT the operator did not
    declare): under B's key it is refused, never given A's files."""
    a, b = site.a, site.b
    r = await site.get(a.ip, site.path(b, "spa504G.cfg"))
    if site.keyed:  # under B's key only B's devices are candidates: A's is not one
        assert r.status_code == 404 and site.last(a.ip)["reason"] == NOT_IDENTIFIED
        assert site.last(a.ip)["device_id"] is None
    else:  # null mode: the operator said addresses are unique (NAT off): it is A's phone
        assert r.status_code == 200 and site.last(a.ip)["device_id"] == a.device


async def test_an_address_never_serves_another_macs_file(site: Site) -> None:
    """Matching by address gives common and firmware files, never a device file it does not
    name: a MAC of no known vendor, asked from A's address, is not A's file."""
    a = site.a
    r = await site.get(a.ip, site.path(a, "a0b1c2001122.xml"))
    assert r.status_code == 404 and a.password.encode() not in r.content
    assert site.last(a.ip)["reason"] == "path names another device's file"
    r = await site.get(a.ip, site.path(a, f"{a.mac.replace(':', '')}.xml"))
    assert r.status_code == 200 and a.password.encode() in r.content  # its own, by its MAC


async def test_tftp_requests_are_the_device_at_their_address(site: Site) -> None:
    """Over TFTP (no User-Agent ever): a Cisco SPA's <mac>.xml names the device by the MAC in
    its name; its common and firmware files are the device at the address; NAT on refuses."""
    port = site.srv.running.ports["tftp"]
    key = f"{site.b.key}/" if site.keyed else ""
    mac = "e0:5f:b9:0e:00:09"
    data = await tftp_get("127.0.0.1", port, f"{key}{mac.replace(':', '')}.xml")
    assert b"<flat-profile" in data or data
    r = await site.srv.api.get(
        "/0.2/dev_mgr/devices", params={"q": f'{{"mac": "{mac}"}}', "recurse": "true"}
    )
    [device] = r.json()["devices"]
    assert (device["vendor"], device["plugin"], device["ip"]) == ("Cisco", "cisco-spa", "127.0.0.1")
    out = Path(site.srv.prov.settings.data_dir) / "fw.bin"
    if shutil.which("tftp"):  # tftp-hpa, the client phones' firmware loaders resemble
        done = await asyncio.to_thread(
            subprocess.run,
            [
                "tftp",
                "127.0.0.1",
                str(port),
                "-m",
                "binary",
                "-c",
                "get",
                f"{key}firmware/spa50x.bin",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert "Error" not in done.stdout, done.stdout  # tftp-hpa exits 0 on a TFTP error
        assert out.read_bytes() == FIRMWARE
    else:
        assert await tftp_get("127.0.0.1", port, f"{key}firmware/spa50x.bin") == FIRMWARE
    assert site.last("127.0.0.1")["device_id"] == device["id"]
    await site.nat(True)
    with pytest.raises(TftpError) as err:
        await tftp_get("127.0.0.1", port, f"{key}firmware/spa50x.bin")
    assert err.value.code == 1 and site.last("127.0.0.1")["reason"] == NAT_ON
