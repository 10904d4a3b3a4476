"""``/0.2/dev_mgr`` through real HTTP, as wazo-provd's clients call it (§2, §6, §9)."""

from __future__ import annotations

import json

import pytest

from provisor.api.http import MIME
from tests.conftest import Server


async def tenants(server: Server) -> tuple[str, str, str]:
    """MAIN (master) with SUB1 and SUB2 under it."""
    sub1 = await server.prov.tenants.create("sub1")
    sub2 = await server.prov.tenants.create("sub2")
    return server.master, sub1.uuid, sub2.uuid


async def test_index_links(server: Server) -> None:
    r = await server.api.get("/0.2/dev_mgr")
    assert r.status_code == 200
    rels = {link["rel"] for link in r.json()["links"]}
    assert rels == {"dev.synchronize", "dev.reconfigure", "dev.dhcpinfo", "dev.devices"}


async def test_create_get_list_delete(server: Server) -> None:
    body = {"device": {"id": "dev1", "mac": "00:15:65:11:22:33", "ip": "10.0.1.10"}}
    r = await server.api.post("/0.2/dev_mgr/devices", json=body)
    assert r.status_code == 201
    assert r.json() == {"id": "dev1"}
    assert r.headers["location"] == "/0.2/dev_mgr/devices/dev1"

    r = await server.api.get("/0.2/dev_mgr/devices/dev1")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith(MIME)
    device = r.json()["device"]
    assert device["mac"] == "00:15:65:11:22:33"
    assert device["is_new"] is True
    assert device["tenant_uuid"] == server.master
    assert device["configured"] is False

    r = await server.api.get(
        "/0.2/dev_mgr/devices", params={"q": json.dumps({"mac": "00:15:65:11:22:33"})}
    )
    assert [d["id"] for d in r.json()["devices"]] == ["dev1"]

    assert (await server.api.delete("/0.2/dev_mgr/devices/dev1")).status_code == 204
    assert (await server.api.get("/0.2/dev_mgr/devices/dev1")).status_code == 404


async def test_generated_id_is_uuid_hex(server: Server) -> None:
    r = await server.api.post("/0.2/dev_mgr/devices", json={"device": {"mac": "001565aabbcc"}})
    assert r.status_code == 201
    device_id = r.json()["id"]
    assert len(device_id) == 32 and int(device_id, 16) >= 0
    doc = (await server.api.get(f"/0.2/dev_mgr/devices/{device_id}")).json()["device"]
    assert doc["mac"] == "00:15:65:aa:bb:cc"  # any spelling, stored normalised


@pytest.mark.parametrize(
    ("device", "fragment"),
    [
        ({"ip": "10.0.1.xx"}, "10.0.1.xx"),
        ({"id": '*&!"/invalid _'}, "device.id"),
        ({"id": "../../etc"}, "device.id"),
        ({"mac": "00:15:65:11:22:xx"}, "MAC"),
        ({"vendor": 12}, "device.vendor"),
        ({"options": "x"}, "device.options"),
        ({"model": "T" * 129}, "device.model: longer than 128 characters"),
        ({"vendor": "Yea\nlink"}, "device.vendor: control characters"),
        ({"description": "d" * 1025}, "device.description: longer than 1024"),
        ({"options": {"x": "y" * 70_000}}, "device: larger than 65536 bytes"),
        ({"X_notes": ["z" * 1000] * 70}, "device: larger than 65536 bytes"),
    ],
)
async def test_create_bad_input_is_400(server: Server, device: dict, fragment: str) -> None:
    r = await server.api.post("/0.2/dev_mgr/devices", json={"device": device})
    assert r.status_code == 400
    assert fragment in r.text
    assert (await server.api.get("/0.2/dev_mgr/devices")).json()["devices"] == []


async def test_device_text_at_its_bounds_is_kept(server: Server) -> None:
    """The longest accepted values, and a description over several lines, are stored as sent."""
    device = {"id": "edge", "model": "M" * 128, "sn": "S" * 128, "description": "a\nb\tc"}
    assert (
        await server.api.post("/0.2/dev_mgr/devices", json={"device": device})
    ).status_code == 201
    stored = (await server.api.get("/0.2/dev_mgr/devices/edge")).json()["device"]
    assert {k: stored[k] for k in device} == device
    r = await server.api.put(
        "/0.2/dev_mgr/devices/edge", json={"device": {**device, "sn": "S" * 129}}
    )
    assert r.status_code == 400 and "device.sn: longer than 128" in r.text
    stored = (await server.api.get("/0.2/dev_mgr/devices/edge")).json()["device"]
    assert stored["sn"] == "S" * 128  # nothing half-written


async def test_bad_json_wrong_type_and_mime(server: Server) -> None:
    r = await server.api.post("/0.2/dev_mgr/devices", content=b"{nope")
    assert r.status_code == 400 and "Invalid JSON" in r.text
    r = await server.api.post("/0.2/dev_mgr/devices", json=["device"])
    assert r.status_code == 400
    r = await server.api.post(
        "/0.2/dev_mgr/devices", content=b"{}", headers={"Content-Type": "text/plain"}
    )
    assert r.status_code == 415
    r = await server.api.get("/0.2/dev_mgr/devices", headers={"Accept": "text/html"})
    assert r.status_code == 406


async def test_large_body_is_413(server: Server) -> None:
    big = b'{"device": {"description": "' + b"x" * (10 * 1024 * 1024) + b'"}}'
    r = await server.api.post("/0.2/dev_mgr/devices", content=big)
    assert r.status_code == 413
    assert (await server.api.get("/0.2/dev_mgr/devices")).json()["devices"] == []


async def test_duplicate_id_is_refused(server: Server) -> None:
    assert (
        await server.api.post("/0.2/dev_mgr/devices", json={"device": {"id": "d"}})
    ).status_code == 201
    r = await server.api.post(
        "/0.2/dev_mgr/devices", json={"device": {"id": "d", "mac": "00:11:22:33:44:55"}}
    )
    assert r.status_code in (400, 409)
    doc = (await server.api.get("/0.2/dev_mgr/devices/d")).json()["device"]
    assert "mac" not in doc


async def test_no_or_bad_token_is_401(server: Server) -> None:
    for headers in ({"X-Auth-Token": "nope"}, {"X-Auth-Token": ""}):
        r = await server.api.get("/0.2/dev_mgr/devices", headers=headers)
        assert r.status_code == 401
    async with server.client("") as anonymous:
        del anonymous.headers["X-Auth-Token"]
        assert (await anonymous.get("/0.2/dev_mgr/devices")).status_code == 401
    # the API spec is open
    async with server.client("x") as anonymous:
        r = await anonymous.get("/0.2/api/api.yml")
        assert r.status_code == 200 and b"swagger: '2.0'" in r.content


async def test_acl_is_checked_per_endpoint(server: Server) -> None:
    token = await server.token_for(server.master, ["provd.dev_mgr.devices.read"])
    async with server.client(token) as reader:
        assert (await reader.get("/0.2/dev_mgr/devices")).status_code == 200
        r = await reader.post("/0.2/dev_mgr/devices", json={"device": {}})
        assert r.status_code == 401


async def test_sub_tenant_create_and_visibility(server: Server) -> None:
    main, sub1, sub2 = await tenants(server)
    r = await server.api.post(
        "/0.2/dev_mgr/devices", json={"device": {"id": "s1"}}, headers={"Wazo-Tenant": sub1}
    )
    assert r.status_code == 201
    doc = (await server.api.get("/0.2/dev_mgr/devices/s1")).json()["device"]
    assert doc["tenant_uuid"] == sub1 and doc["is_new"] is False
    await server.api.post("/0.2/dev_mgr/devices", json={"device": {"id": "m1"}})

    sub1_token = await server.token_for(sub1)
    async with server.client(sub1_token) as c1:
        assert (await c1.get("/0.2/dev_mgr/devices/m1")).status_code == 404
        assert (await c1.delete("/0.2/dev_mgr/devices/m1")).status_code == 404
        ids = [d["id"] for d in (await c1.get("/0.2/dev_mgr/devices")).json()["devices"]]
        assert ids == ["s1"]
        # a token may not name a tenant outside its subtree
        r = await c1.get("/0.2/dev_mgr/devices", headers={"Wazo-Tenant": main})
        assert r.status_code == 401
        r = await c1.post("/0.2/dev_mgr/reconfigure", json={"id": "m1"})
        assert r.status_code == 400
    assert (await server.api.get("/0.2/dev_mgr/devices/m1")).status_code == 200

    ids = {d["id"] for d in (await server.api.get("/0.2/dev_mgr/devices")).json()["devices"]}
    assert ids == {"m1"}
    ids = {
        d["id"]
        for d in (await server.api.get("/0.2/dev_mgr/devices", params={"recurse": "true"})).json()[
            "devices"
        ]
    }
    assert ids == {"m1", "s1"}
    assert sub2


async def test_put_claims_new_device_and_moves_rules(server: Server) -> None:
    main, sub1, sub2 = await tenants(server)
    await server.api.post("/0.2/dev_mgr/devices", json={"device": {"id": "new1", "ip": "10.0.0.1"}})
    # PUT with Wazo-Tenant SUB1 claims a new MAIN device; body tenant_uuid/is_new ignored
    r = await server.api.put(
        "/0.2/dev_mgr/devices/new1",
        json={"device": {"ip": "10.0.0.2", "tenant_uuid": sub2, "is_new": True}},
        headers={"Wazo-Tenant": sub1},
    )
    assert r.status_code == 204
    doc = (await server.api.get("/0.2/dev_mgr/devices/new1")).json()["device"]
    assert doc["tenant_uuid"] == sub1 and doc["is_new"] is False and doc["ip"] == "10.0.0.2"

    # a SUB1 device PUT with MAIN's header stays in SUB1
    r = await server.api.put(
        "/0.2/dev_mgr/devices/new1", json={"device": {"ip": "10.0.0.3", "tenant_uuid": sub1}}
    )
    assert r.status_code == 204
    doc = (await server.api.get("/0.2/dev_mgr/devices/new1")).json()["device"]
    assert doc["tenant_uuid"] == sub1 and doc["ip"] == "10.0.0.3"

    # a SUB1 device PUT from SUB2 is 404
    r = await server.api.put(
        "/0.2/dev_mgr/devices/new1",
        json={"device": {"ip": "10.0.0.4"}},
        headers={"Wazo-Tenant": sub2},
    )
    assert r.status_code == 404
    # an unknown device is 404, a bad mac is 400 (upstream: 500)
    assert (await server.api.put("/0.2/dev_mgr/devices/zz", json={"device": {}})).status_code == 404
    r = await server.api.put("/0.2/dev_mgr/devices/new1", json={"device": {"mac": "xx"}})
    assert r.status_code == 400
    doc = (await server.api.get("/0.2/dev_mgr/devices/new1")).json()["device"]
    assert doc["ip"] == "10.0.0.3"
    assert main


async def test_put_new_device_keeps_is_new_in_master(server: Server) -> None:
    await server.api.post("/0.2/dev_mgr/devices", json={"device": {"id": "n"}})
    r = await server.api.put("/0.2/dev_mgr/devices/n", json={"device": {"ip": "10.1.1.1"}})
    assert r.status_code == 204
    doc = (await server.api.get("/0.2/dev_mgr/devices/n")).json()["device"]
    assert doc["is_new"] is True and doc["ip"] == "10.1.1.1"


async def test_list_paging_sort_fields_and_bad_q(server: Server) -> None:
    for n in (1, 2, 10, 20):
        await server.api.post(
            "/0.2/dev_mgr/devices", json={"device": {"id": f"d{n}", "description": "x", "rank": n}}
        )
    r = await server.api.get("/0.2/dev_mgr/devices", params={"sort": "rank", "sort_ord": "DESC"})
    assert [d["id"] for d in r.json()["devices"]] == [
        "d20",
        "d10",
        "d2",
        "d1",
    ]  # numbers as numbers
    r = await server.api.get(
        "/0.2/dev_mgr/devices", params={"sort": "rank", "skip": "1", "limit": "2"}
    )
    assert [d["id"] for d in r.json()["devices"]] == ["d2", "d10"]
    r = await server.api.get(
        "/0.2/dev_mgr/devices", params={"fields": "rank", "q": '{"rank": {"$ge": 10}}'}
    )
    assert sorted(r.json()["devices"], key=lambda d: d["rank"]) == [
        {"id": "d10", "rank": 10},
        {"id": "d20", "rank": 20},
    ]
    for bad in ('{"rank": {"$regex": "x"}}', "not json", '"00:15:65:11:22:33"', "[1]"):
        r = await server.api.get("/0.2/dev_mgr/devices", params={"q": bad})
        assert r.status_code == 400, bad
    r = await server.api.get("/0.2/dev_mgr/devices", params={"limit": "-1"})
    assert r.status_code == 400
    import base64

    q64 = base64.b64encode(b'{"id": "d2"}').decode()
    r = await server.api.get("/0.2/dev_mgr/devices", params={"q64": q64})
    assert [d["id"] for d in r.json()["devices"]] == ["d2"]


async def test_dhcpinfo_creates_device(server: Server) -> None:
    info = {
        "dhcp_info": {"op": "commit", "ip": "10.2.0.5", "mac": "00:11:22:aa:bb:cc", "options": []}
    }
    r = await server.api.post("/0.2/dev_mgr/dhcpinfo", json=info)
    assert r.status_code == 204
    devices = (await server.api.get("/0.2/dev_mgr/devices")).json()["devices"]
    assert len(devices) == 1
    assert devices[0]["ip"] == "10.2.0.5" and devices[0]["tenant_uuid"] == server.master
    r = await server.api.post(
        "/0.2/dev_mgr/dhcpinfo",
        json={"dhcp_info": {"op": "commit", "ip": "10.2.0.5", "mac": "00:11:22:aa:bb:cd"}},
    )
    assert r.status_code == 400
    r = await server.api.post(
        "/0.2/dev_mgr/dhcpinfo",
        json={
            "dhcp_info": {
                "op": "commit",
                "ip": "10.2.0.6",
                "mac": "00:11:22:aa:bb:ce",
                "options": ["06x.zz"],
            }
        },
    )
    assert r.status_code == 400


async def test_dhcpinfo_option60_identifies_vendor(server: Server) -> None:
    opt = "060." + ".".join(f"{b:02x}" for b in b"TestPhone-TP100")
    info = {
        "dhcp_info": {
            "op": "commit",
            "ip": "10.2.0.7",
            "mac": "00:11:22:00:00:07",
            "options": [opt],
        }
    }
    assert (await server.api.post("/0.2/dev_mgr/dhcpinfo", json=info)).status_code == 204
    device = (await server.api.get("/0.2/dev_mgr/devices")).json()["devices"][0]
    assert device["vendor"] == "TestVendor" and device["model"] == "TP100"
    assert device["plugin"] == "testphone"


async def test_synchronize_without_sync_service_fails_operation(server: Server) -> None:
    await server.api.post("/0.2/dev_mgr/devices", json={"device": {"id": "sy"}})
    r = await server.api.post("/0.2/dev_mgr/synchronize", json={"id": "sy"})
    assert r.status_code == 201
    location = r.headers["location"]
    assert location.startswith("/0.2/dev_mgr/synchronize/")
    status = (await server.api.get(location)).json()["status"]
    assert status.startswith("fail") or "fail" in status
    assert (await server.api.delete(location)).status_code == 204
    assert (await server.api.get(location)).status_code == 404
    assert (
        await server.api.post("/0.2/dev_mgr/synchronize", json={"id": "nope"})
    ).status_code == 404


async def test_provisioning_token_rotation(server: Server) -> None:
    await server.api.post("/0.2/dev_mgr/devices", json={"device": {"id": "tk"}})
    first = (await server.api.get("/0.2/dev_mgr/devices/tk/provisioning_token")).json()
    second = (await server.api.post("/0.2/dev_mgr/devices/tk/provisioning_token")).json()
    assert first["provisioning_token"] != second["provisioning_token"]
    again = (await server.api.get("/0.2/dev_mgr/devices/tk/provisioning_token")).json()
    assert again == second
