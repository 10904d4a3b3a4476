"""``--json`` on every list/show command, whole identifiers in pipes, --version, tenant and token
administration: the real ``provisor`` entry point in a subprocess (stdout is a pipe)."""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from provisor.service import Provisor
from provisor.settings import Settings
from provisor.store.tenancy import hash_token
from tests.cli._cli import run_cli
from tests.conftest import make_settings

MAC = "00:15:65:aa:bb:cc"
IP = "10.200.30.40"


@pytest.fixture
def cli_settings(tmp_path: Path, database_url: str) -> Settings:
    """A data directory and database shared by the test and the CLI runs (no test plugins)."""
    return make_settings(tmp_path, database_url, **{"general.plugin_dirs": []})


async def _seed(settings: Settings) -> dict[str, str]:
    """A tenant with a device and a config, made through the services."""
    prov = await Provisor.open(settings)
    try:
        tenant = await prov.tenants.create("acme")
        device = await prov.devices.create(
            {"mac": MAC, "ip": IP, "vendor": "Yealink", "model": "T46S"}, tenant.uuid
        )
        config_id = await prov.configs.create(
            {"id": "acme-line-1", "parent_ids": ["base"], "raw_config": {}}, tenant.uuid
        )
    finally:
        await prov.close()
    return {"tenant": tenant.uuid, "device": str(device["id"]), "config": config_id}


def _json(settings: Settings, *args: str) -> Any:
    r = run_cli(settings, *args, "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)  # the whole of stdout is one document


def _tsv(settings: Settings, *args: str) -> list[list[str]]:
    r = run_cli(settings, *args)
    assert r.returncode == 0, r.stderr
    assert "…" not in r.stdout and "\x1b[" not in r.stdout  # no ellipsis, no colours in a pipe
    return [line.split("\t") for line in r.stdout.splitlines()]


async def test_tenant_and_token_commands_print_json(
    cli_settings: Settings,
) -> None:
    ids = await _seed(cli_settings)
    token = run_cli(
        cli_settings, "token", "create", "--tenant", ids["tenant"], "--description", "ci"
    )
    assert token.returncode == 0, token.stderr
    plaintext = token.stdout.strip()

    tenants = _json(cli_settings, "tenant", "list")
    assert [t["name"] for t in tenants] == ["master", "acme"]
    for t in tenants:
        assert set(t) == {
            "uuid",
            "name",
            "parent_uuid",
            "is_master",
            "tftp_enabled",
            "provisioning_key_set",
        }
    assert tenants[0]["is_master"] is True and tenants[0]["parent_uuid"] is None
    assert tenants[1]["uuid"] == ids["tenant"] and tenants[1]["parent_uuid"] == tenants[0]["uuid"]

    shown = _json(cli_settings, "tenant", "show", ids["tenant"])
    assert shown["name"] == "acme" and shown["tftp_enabled"] is True
    assert (shown["devices"], shown["configs"], shown["subtenants"]) == (1, 1, 0)

    tokens = _json(cli_settings, "token", "list")
    assert len(tokens) == 1
    assert set(tokens[0]) == {"id", "tenant_uuid", "acl", "description", "created_at"}
    assert tokens[0]["tenant_uuid"] == ids["tenant"] and tokens[0]["acl"] == ["provd.#"]
    assert tokens[0]["description"] == "ci" and tokens[0]["created_at"].endswith("+00:00")
    listed = run_cli(cli_settings, "token", "list").stdout + json.dumps(tokens)
    assert plaintext not in listed and hash_token(plaintext) not in listed


async def test_device_and_config_commands_print_json(cli_settings: Settings) -> None:
    ids = await _seed(cli_settings)
    devices = _json(cli_settings, "device", "list")
    assert len(devices) == 1
    d = devices[0]
    assert (d["id"], d["mac"], d["ip"], d["tenant_uuid"]) == (ids["device"], MAC, IP, ids["tenant"])
    assert d["configured"] is False and d["plugin"] is None
    assert set(d) >= {"id", "mac", "ip", "vendor", "model", "plugin", "config", "configured"}
    device = _json(cli_settings, "device", "show", ids["device"])
    assert device["mac"] == MAC and device["model"] == "T46S"

    configs = {c["id"]: c for c in _json(cli_settings, "config", "list")}
    assert {"base", "default", "autoprov", "acme-line-1"} <= set(configs)
    assert configs["acme-line-1"]["tenant_uuid"] == ids["tenant"]
    assert configs["acme-line-1"]["parent_ids"] == ["base"]
    assert configs["base"]["tenant_uuid"] is None and configs["base"]["deletable"] is False
    config = _json(cli_settings, "config", "show", "autoprov")
    assert config["role"] == "autocreate" and "sip_lines" in config["raw_config"]


def test_plugin_list_prints_json(cli_settings: Settings) -> None:
    plugins = {p["id"]: p for p in _json(cli_settings, "plugin", "list")}
    assert "yealink" in plugins  # the bundled repository
    assert set(plugins["yealink"]) == {
        "id",
        "installed_version",
        "available_version",
        "description",
    }
    assert plugins["yealink"]["installed_version"] is None
    assert plugins["yealink"]["available_version"]
    installed = run_cli(cli_settings, "plugin", "install", "yealink")
    assert installed.stdout == "installed yealink\n", installed.stderr  # the bar is on stderr
    plugins = {p["id"]: p for p in _json(cli_settings, "plugin", "list")}
    assert plugins["yealink"]["installed_version"] == plugins["yealink"]["available_version"]


async def test_piped_tables_are_tab_separated_and_keep_identifiers_whole(
    cli_settings: Settings,
) -> None:
    ids = await _seed(cli_settings)
    assert run_cli(cli_settings, "token", "create", "--description", "x" * 200).returncode == 0

    rows = _tsv(cli_settings, "tenant", "list")
    assert rows[0] == ["uuid", "name", "parent", "master", "tftp", "provisioning key"]
    acme = next(r for r in rows if r[1] == "acme")
    assert acme[0] == ids["tenant"] and len(acme[2]) == 36

    rows = _tsv(cli_settings, "device", "list")
    assert rows[0][:3] == ["id", "mac", "ip"]
    assert rows[1][:3] == [ids["device"], MAC, IP] and rows[1][-1] == ids["tenant"]

    rows = _tsv(cli_settings, "config", "list")
    line = next(r for r in rows if r[0] == "acme-line-1")
    assert line[4] == ids["tenant"]

    rows = _tsv(cli_settings, "token", "list")
    assert rows[0] == ["id", "tenant", "acl", "created", "description"]
    assert rows[1][1] == _json(cli_settings, "tenant", "list")[0]["uuid"]
    assert rows[1][4] == "x" * 200

    record = dict(r for r in _tsv(cli_settings, "tenant", "show", ids["tenant"]) if len(r) == 2)
    assert record["uuid"] == ids["tenant"] and record["devices"] == "1"


def test_version_comes_from_the_package_metadata(cli_settings: Settings) -> None:
    r = run_cli(cli_settings, "--version")
    assert r.returncode == 0 and r.stdout == f"provisor {version('provisor')}\n"


async def test_tenant_rename_and_tftp(cli_settings: Settings) -> None:
    ids = await _seed(cli_settings)
    tenant = ids["tenant"]
    assert run_cli(cli_settings, "tenant", "rename", tenant, "acme corp").returncode == 0
    assert run_cli(cli_settings, "tenant", "tftp", tenant, "off").stdout == "tftp off\n"
    shown = _json(cli_settings, "tenant", "show", tenant)
    assert shown["name"] == "acme corp" and shown["tftp_enabled"] is False
    assert run_cli(cli_settings, "tenant", "tftp", tenant, "maybe").returncode == 2
    assert run_cli(cli_settings, "tenant", "rename", tenant, "").returncode == 1


async def test_tenant_delete_refused_then_forced(cli_settings: Settings) -> None:
    ids = await _seed(cli_settings)
    tenant = ids["tenant"]
    child = run_cli(cli_settings, "tenant", "create", "branch", "--parent", tenant).stdout.strip()
    assert run_cli(cli_settings, "token", "create", "--tenant", child).returncode == 0

    refused = run_cli(cli_settings, "tenant", "delete", tenant)
    assert refused.returncode == 1
    assert "still owns 1 device, 1 config, 1 sub-tenant" in refused.stderr
    assert "--force" not in refused.stdout and refused.stdout == ""
    assert len(_json(cli_settings, "tenant", "list")) == 3  # nothing was deleted

    master = _json(cli_settings, "tenant", "list")[0]["uuid"]
    r = run_cli(cli_settings, "tenant", "delete", master, "--force")
    assert r.returncode == 1 and "master tenant cannot be deleted" in r.stderr

    r = run_cli(cli_settings, "tenant", "delete", tenant, "--force")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "deleted 2 tenants, 1 devices, 1 configs, 1 tokens\n"
    assert [t["uuid"] for t in _json(cli_settings, "tenant", "list")] == [master]
    assert _json(cli_settings, "device", "list") == []
    assert _json(cli_settings, "token", "list") == []
    assert "acme-line-1" not in {c["id"] for c in _json(cli_settings, "config", "list")}


def test_tenant_delete_of_an_empty_tenant(cli_settings: Settings) -> None:
    empty = run_cli(cli_settings, "tenant", "create", "empty").stdout.strip()
    assert run_cli(cli_settings, "tenant", "delete", empty).stdout.startswith("deleted 1 tenants")
    r = run_cli(cli_settings, "tenant", "delete", empty)
    assert r.returncode == 1 and "does not exist" in r.stderr


async def test_token_revoke_by_id_and_by_plaintext(cli_settings: Settings) -> None:
    first = run_cli(cli_settings, "token", "create").stdout.strip()
    second = run_cli(cli_settings, "token", "create").stdout.strip()
    listed = _json(cli_settings, "token", "list")
    assert len(listed) == 2
    assert run_cli(cli_settings, "token", "revoke", str(listed[0]["id"])).stdout == "revoked\n"
    assert [t["id"] for t in _json(cli_settings, "token", "list")] == [listed[1]["id"]]
    assert run_cli(cli_settings, "token", "revoke", second).stdout == "revoked\n"
    assert _json(cli_settings, "token", "list") == []
    for gone in (first, str(listed[0]["id"])):
        r = run_cli(cli_settings, "token", "revoke", gone)
        assert r.returncode == 1 and r.stderr == "no such token\n"

    # a token made before tokens stopped starting with a dash: "--" ends the options
    prov = await Provisor.open(cli_settings)
    try:
        await prov.tokens.add("-old-token-with-a-dash", prov.tenants.master.uuid, ["provd.#"])
    finally:
        await prov.close()
    assert run_cli(cli_settings, "token", "revoke", "--", "-old-token-with-a-dash").returncode == 0
    assert _json(cli_settings, "token", "list") == []
