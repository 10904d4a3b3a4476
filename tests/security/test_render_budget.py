"""Render budget: one tenant's template override cannot freeze or bloat the server.

A real provisor with two sub-tenants under ``url_key``. The attacker tenant stores template
overrides through the REST API with its own token; its phone fetches the file over HTTP (httpx)
and TFTP (tftp-hpa's ``tftp``). Every runaway template must fail that file only (500 / TFTP
error), be logged once without secrets, never reach the render cache, and leave the REST API
and the other tenant's phones answered while it is being stopped.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from provisor.errors import InvalidInput
from provisor.plugins.budget import RenderLimitError, RenderLimits
from provisor.plugins.sandbox import check_template
from provisor.provisioning.cache import RenderCache, Rendered
from tests.conftest import Server, make_settings, start_server

KEY_A, KEY_B = "attacker-key-0001", "victim-key-00002"
MAC_A, MAC_B = "00:11:22:aa:00:01", "00:11:22:bb:00:02"
#: each phone its own address (behind the trusted proxy): one address, one device
PHONE_A = {"User-Agent": f"TestPhone-TP100/1.2 ({MAC_A})", "X-Forwarded-For": "10.0.0.1"}
PHONE_B = {"User-Agent": f"TestPhone-TP100/1.2 ({MAC_B})", "X-Forwarded-For": "10.0.0.2"}
FILE_A, FILE_B = f"{KEY_A}/{MAC_A.replace(':', '')}.cfg", f"{KEY_B}/{MAC_B.replace(':', '')}.cfg"
OVERRIDE = "/0.2/pg_mgr/plugins/testphone/templates/tenant/device.cfg"
SECRET = "Victim-Sip-Secret-77"
MAX_BYTES = 1024 * 1024

#: Templates that burn CPU or memory; each must be stopped. The ones marked "kernel" escape the
#: counters (one long C-level call) and are stopped by the worker's CPU timer or memory limit.
RUNAWAYS: dict[str, str] = {
    "nested range loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    ),
    "nested loops with output": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}"
    ),
    "string multiplication": "{{ 'x' * 100000000 }}",
    "list multiplication": "{{ ([0] * 100000000)|length }}",
    "format filter width": "{{ '%09999999d'|format(1) }}",
    "percent width": "{{ '%0999999999d' % 1 }}",
    "str.format width": "{{ '{:>999999999}'.format(1) }}",
    "center": "{{ 'x'|center(100000000) }}",
    "indent": "{{ ('x\\n' * 1000)|indent(100000) }}",
    "wordwrap": "{{ ('x ' * 100000)|wordwrap(1, wrapstring='y' * 1000) }}",
    "join": "{{ range(100000)|join('x' * 10000) }}",
    "str.ljust": "{{ 'x'.ljust(999999999) }}",
    "replace": "{{ ('x' * 1000)|replace('', 'y' * 10000) }}",
    "range with a huge step count": (
        "{% for i in range(0, 10**12, 10**7) %}{% for j in range(0, 10**12, 10**7) %}"
        "{% endfor %}{% endfor %}"
    ),
    "power": "{{ 7 ** (10 ** 8) }}",
    "deep small loops": (
        "{% for a in range(100) %}{% for b in range(100) %}{% for c in range(100) %}"
        "{% for d in range(100) %}{{ '' }}{% endfor %}{% endfor %}{% endfor %}{% endfor %}"
    ),
    "macro recursion": (
        "{% macro f(n) %}{% if n > 0 %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
        "{{ f(60) }}"
    ),
    "recursive loop()": "{% for x in [1, 1] recursive %}{{ loop([1, 1]) }}{% endfor %}",
    "set accumulation": (
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}"
    ),
    "list doubling": "{% set l = [1] %}{% for i in range(64) %}{{ l.extend(l) }}{% endfor %}",
    "kernel: one long sort": "{{ ('x' * 1000000)|list|sort|sort|sort|sort|sort|length }}",
    "kernel: memory": (
        "{% set a = ('x' * 1000000)|list %}{% set ns = namespace(l=[]) %}"
        "{% for i in range(100) %}{{ ns.l.append(a|list) }}{% endfor %}"
    ),
}


async def _setup(srv: Server) -> dict[str, Any]:
    """Two sub-tenants with keys, tokens and one booted phone each (configs with a secret)."""
    prov = srv.prov
    a = (await prov.tenants.create("attacker")).uuid
    b = (await prov.tenants.create("victim")).uuid
    await prov.tenants.set_key(a, KEY_A)
    await prov.tenants.set_key(b, KEY_B)
    token_a, token_b = await srv.token_for(a), await srv.token_for(b)
    out: dict[str, Any] = {"a": srv.client(token_a), "b": srv.client(token_b)}
    pairs = ((out["a"], PHONE_A, FILE_A, "a"), (out["b"], PHONE_B, FILE_B, "b"))
    for client, headers, path, tag in pairs:
        r = await srv.phone.get(f"/{path}", headers=headers)
        assert r.status_code == 200, r.text
        [device] = (await client.get("/0.2/dev_mgr/devices")).json()["devices"]
        config = {
            "id": f"cfg-{tag}",
            "parent_ids": [],
            "raw_config": {
                "ip": "127.0.0.1",
                "http_port": 8667,
                "sip_lines": {"1": {"username": f"u{tag}", "password": f"{SECRET}-{tag}"}},
            },
        }
        r = await client.post("/0.2/cfg_mgr/configs", json={"config": config})
        assert r.status_code == 201, r.text
        r = await client.put(
            f"/0.2/dev_mgr/devices/{device['id']}",
            json={"device": {**device, "config": f"cfg-{tag}"}},
        )
        assert r.status_code == 204, r.text
        out[f"device_{tag}"] = device["id"]
    return out


async def _close(ctx: dict[str, Any]) -> None:
    await ctx["a"].aclose()
    await ctx["b"].aclose()


def _settings(tmp_path: Path, database_url: str, **extra: Any) -> Any:
    return make_settings(
        tmp_path,
        database_url,
        **{
            "general.http_auth_strategy": "url_key",
            "provisioning.tftp_enabled": True,
            "general.http_proxied_trusted_proxies_count": 1,
            "render.cpu_seconds": 0.5,
            "render.max_bytes": MAX_BYTES,
            "render.worker_memory_bytes": 256 * 1024 * 1024,
            **extra,
        },
    )


async def _tftp(srv: Server, path: str, out: Path) -> subprocess.CompletedProcess[str]:
    """tftp-hpa's client, with a total timeout long enough for a render being stopped."""
    port = srv.running.ports["tftp"]
    return await asyncio.to_thread(
        subprocess.run,
        ["tftp", "127.0.0.1", str(port)],
        input=f"binary\ntimeout 120\nget {path} {out}\nquit\n",
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


async def _slow_fetch(srv: Server, path: str, headers: dict[str, str]) -> httpx.Response:
    """A fetch that may wait for a render to be stopped (the machine may be loaded)."""
    async with httpx.AsyncClient(base_url=srv.http_url, timeout=120) as client:
        return await client.get(f"/{path}", headers=headers)


def _largest_cached(srv: Server) -> int:
    items = srv.pipeline.renders._items.values()
    return max((len(item.body) for item in items), default=0)


async def test_every_runaway_template_fails_its_file_only(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    srv = await start_server(_settings(tmp_path, database_url))
    ctx = await _setup(srv)
    try:
        caplog.set_level(logging.ERROR, logger="provisor")
        stopped: dict[str, int] = {}
        for name, source in RUNAWAYS.items():
            r = await ctx["a"].put(OVERRIDE, json={"template": {"source": source}})
            assert r.status_code == 204, (name, r.text)
            caplog.clear()
            bad = await srv.phone.get(f"/{FILE_A}", headers=PHONE_A)
            assert bad.status_code == 500, (name, bad.status_code, bad.content[:200])
            assert bad.content == b"Internal processing error"
            # the other tenant, the REST API: unaffected
            good = await srv.phone.get(f"/{FILE_B}", headers=PHONE_B)
            assert good.status_code == 200 and f"{SECRET}-b".encode() in good.content, name
            assert (await ctx["b"].get("/0.2/dev_mgr/devices")).status_code == 200
            # logged once, naming device, plugin, template and override scope, no secret
            again = await srv.phone.get(f"/{FILE_A}", headers=PHONE_A)
            assert again.status_code == 500
            lines = [r.getMessage() for r in caplog.records if "render refused" in r.getMessage()]
            assert len(lines) == 1, (name, lines)
            line = lines[0]
            assert ctx["device_a"] in line and "plugin testphone" in line, line
            assert "template device.cfg" in line and "device.cfg (tenant)" in line, line
            for secret in (SECRET, KEY_A, KEY_B, srv.token):
                assert secret not in line
            assert _largest_cached(srv) <= MAX_BYTES, name
            if name == "kernel: one long sort":
                assert "worker stopped by the kernel" in line, line
            if name == "kernel: memory":
                assert "memory limit of the render worker" in line, line
            stopped[name] = srv.pipeline.renderer.pool.spawned
        # the kernel cases really went through a worker that was stopped and replaced
        spawned = list(stopped.values())
        assert spawned[-1] > spawned[-3], stopped
        # and the attacker can fix its template: the file renders again
        r = await ctx["a"].put(OVERRIDE, json={"template": {"source": "ok {{ device.mac }}\n"}})
        assert r.status_code == 204
        fixed = await srv.phone.get(f"/{FILE_A}", headers=PHONE_A)
        assert fixed.status_code == 200 and fixed.content == f"ok {MAC_A}\n".encode()
    finally:
        await _close(ctx)
        await srv.close()


@pytest.mark.skipif(shutil.which("tftp") is None, reason="tftp-hpa's tftp client is missing")
async def test_others_are_answered_while_a_runaway_render_is_stopped(
    tmp_path: Path, database_url: str
) -> None:
    """Ordering, not timing: the REST API, the other tenant's file (HTTP and TFTP, rendered
    fresh through its own override) are answered while the bad render is still in progress;
    the bad one gets its error afterwards. Then the same after a restart (the override is
    stored)."""
    settings = _settings(tmp_path, database_url, **{"render.cpu_seconds": 3.0})
    srv = await start_server(settings)
    ctx = await _setup(srv)
    try:
        nested = RUNAWAYS["nested range loops"]
        assert (
            await ctx["a"].put(OVERRIDE, json={"template": {"source": nested}})
        ).status_code == 204
        victim = "victim {{ device.mac }} {{ sip_lines['1'].password }}\n"
        assert (
            await ctx["b"].put(OVERRIDE, json={"template": {"source": victim}})
        ).status_code == 204
        pool = srv.pipeline.renderer.pool
        bad = asyncio.create_task(_slow_fetch(srv, FILE_A, PHONE_A))
        for _ in range(3000):  # until the bad render is in a worker (bounded)
            if pool.busy:
                break
            await asyncio.sleep(0.01)
        assert pool.busy == 1 and not bad.done()
        rest = await ctx["b"].get("/0.2/dev_mgr/devices")
        assert rest.status_code == 200
        good = await srv.phone.get(f"/{FILE_B}", headers=PHONE_B)
        assert good.status_code == 200
        assert good.content == f"victim {MAC_B} {SECRET}-b\n".encode()
        tftp_good = await _tftp(srv, FILE_B, tmp_path / "good.cfg")
        assert (tmp_path / "good.cfg").read_bytes() == good.content, tftp_good
        assert not bad.done(), "the runaway render ended before the others were answered"
        answer = await bad
        assert answer.status_code == 500
        tftp_bad = await _tftp(srv, FILE_A, tmp_path / "bad.cfg")
        assert "Error code 0" in tftp_bad.stdout + tftp_bad.stderr, tftp_bad
    finally:
        await _close(ctx)
        await srv.close()
    # the override is stored: after a restart it fails its file again, nothing else
    srv = await start_server(settings)
    try:
        bad = asyncio.create_task(_slow_fetch(srv, FILE_A, PHONE_A))
        pool = srv.pipeline.renderer.pool
        for _ in range(3000):
            if pool.busy:
                break
            await asyncio.sleep(0.01)
        assert pool.busy == 1 and not bad.done()
        good = await srv.phone.get(f"/{FILE_B}", headers=PHONE_B)
        assert good.status_code == 200 and f"victim {MAC_B}".encode() in good.content
        assert not bad.done()
        assert (await bad).status_code == 500
    finally:
        await srv.close()


async def test_shipped_templates_have_the_budget_too(tmp_path: Path, database_url: str) -> None:
    """No override: rendered in-process, still capped (a tenant's huge config)."""
    srv = await start_server(_settings(tmp_path, database_url, **{"render.max_bytes": 4096}))
    ctx = await _setup(srv)
    try:
        lines = {str(n): {"username": f"u{n}", "password": "p" * 200} for n in range(1, 100)}
        raw = {"ip": "127.0.0.1", "http_port": 8667, "sip_lines": lines}
        r = await ctx["a"].put(
            "/0.2/cfg_mgr/configs/cfg-a",
            json={"config": {"id": "cfg-a", "parent_ids": [], "raw_config": raw}},
        )
        assert r.status_code == 204, r.text
        r = await srv.phone.get(f"/{FILE_A}", headers=PHONE_A)
        assert r.status_code == 500
        assert srv.pipeline.renderer.pool.spawned == 0  # never left the process
        assert _largest_cached(srv) <= 4096
        r = await srv.phone.get(f"/{FILE_B}", headers=PHONE_B)
        assert r.status_code == 200
    finally:
        await _close(ctx)
        await srv.close()


async def test_a_long_shipped_render_leaves_the_event_loop(
    tmp_path: Path, database_url: str
) -> None:
    """A shipped template over a huge config: the in-process attempt stops at
    inline_cpu_seconds, the worker renders it with the full budget, the phone gets its file."""
    srv = await start_server(
        _settings(tmp_path, database_url, **{"render.inline_cpu_seconds": 0.001})
    )
    ctx = await _setup(srv)
    try:
        lines = {str(n): {"username": f"u{n}", "password": f"pw{n}"} for n in range(1, 5001)}
        raw = {"ip": "127.0.0.1", "http_port": 8667, "sip_lines": lines}
        r = await ctx["a"].put(
            "/0.2/cfg_mgr/configs/cfg-a",
            json={"config": {"id": "cfg-a", "parent_ids": [], "raw_config": raw}},
        )
        assert r.status_code == 204, r.text
        assert srv.pipeline.renderer.pool.spawned == 0
        r = await srv.phone.get(f"/{FILE_A}", headers=PHONE_A)
        assert r.status_code == 200 and b"line5000.password = pw5000" in r.content
        assert srv.pipeline.renderer.pool.spawned == 1
    finally:
        await _close(ctx)
        await srv.close()


def test_the_render_cache_refuses_oversized_bodies() -> None:
    cache = RenderCache(max_item_bytes=1000)
    cache.put("small", Rendered(b"x" * 1000, '"a"', 0.0))
    cache.put("big", Rendered(b"x" * 1001, '"b"', 0.0))
    assert cache.get("small") is not None and cache.get("big") is None


def test_override_sources_are_bounded_at_upload() -> None:
    with pytest.raises(InvalidInput, match="template.source"):
        check_template("x" * (256 * 1024 + 1))
    with pytest.raises(InvalidInput, match="nested too deeply"):
        check_template("{{ " + "(" * 100_000 + "1" + ")" * 100_000 + " }}")


def test_in_process_budget_stops_loops_by_cpu_time() -> None:
    from jinja2 import DictLoader

    from provisor.plugins.sandbox import make_env, render_template

    env = make_env(DictLoader({"t": RUNAWAYS["nested range loops"]}))
    with pytest.raises(RenderLimitError) as err:
        render_template(env, "t", {}, RenderLimits(cpu_seconds=0.2, max_bytes=MAX_BYTES))
    assert err.value.kind == "cpu"
    # a normal template is unchanged by the budget
    env = make_env(
        DictLoader({"t": "{% for i in range(3) %}{{ i * 2 }}{{ 'a' ~ i }},{% endfor %}"})
    )
    assert render_template(env, "t", {}) == "0a0,2a1,4a2,"
