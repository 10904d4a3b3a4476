"""``provisor tenant …`` and ``provisor token …``: tenants and built-in API tokens.

Every write goes through the store, which bumps the shared change counters: a running server
on the same database sees a new tenant or token at once (it reloads on a miss) and a rename,
a TFTP switch, a deletion or a revocation within its change poll (about a second).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from provisor.cli_output import Column, JsonOpt, print_json, print_record, print_rows
from provisor.errors import ProvisorError

__all__ = ["tenant_app", "token_app"]

tenant_app = typer.Typer(help="Tenants", no_args_is_help=True)
token_app = typer.Typer(help="API tokens (built-in auth backend)", no_args_is_help=True)

# declared again here, not imported from provisor.cli, which imports this module
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML settings file (conf.d/ beside it)")
]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Data directory")]

TENANT_COLUMNS = (
    Column("uuid", "uuid"),
    Column("name", "name", ident=False),
    Column("parent", "parent_uuid"),
    Column("master", "is_master"),
    Column("tftp", "tftp_enabled"),
    Column("provisioning key", "provisioning_key_set"),
)
TOKEN_COLUMNS = (
    Column("id", "id"),
    Column("tenant", "tenant_uuid"),
    Column("acl", "acl"),
    Column("created", "created_at"),
    Column("description", "description", ident=False),
)


class Switch(StrEnum):
    """on or off."""

    on = "on"
    off = "off"


def _utc(when: datetime | None) -> str | None:
    """ISO 8601 in UTC (SQLite hands back naive UTC times, PostgreSQL aware ones)."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat()


def _go(config: Path | None, data_dir: Path | None, work: Any) -> Any:
    from provisor.cli import _run, _settings

    return _run(_settings(config, data_dir), work)


@tenant_app.command("create")
def tenant_create(
    name: str,
    parent: Annotated[str | None, typer.Option("--parent", help="Parent tenant uuid")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create a tenant; prints its uuid alone."""
    from provisor.services.tenants import check_name

    async def work(prov: Any) -> str:
        tenant = await prov.tenants.create(check_name(name), parent_uuid=parent)
        return str(tenant.uuid)

    print(_go(config, data_dir, work))


@tenant_app.command("list")
def tenant_list(
    json_out: JsonOpt = False, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """List tenants, the master first."""
    from provisor.services.tenants import tenant_json

    async def work(prov: Any) -> list[dict[str, Any]]:
        found = sorted(prov.tenants.all(), key=lambda t: (not t.is_master, t.name, t.uuid))
        return [tenant_json(t) for t in found]

    rows = _go(config, data_dir, work)
    print_json(rows) if json_out else print_rows(TENANT_COLUMNS, rows)


@tenant_app.command("show")
def tenant_show(
    tenant: str, json_out: JsonOpt = False, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """One tenant, with how many devices, configs and sub-tenants it owns."""
    from provisor.services.tenants import TenantAdmin, tenant_json

    async def work(prov: Any) -> dict[str, Any]:
        admin = TenantAdmin(prov)
        contents = await admin.contents(admin.get(tenant).uuid)
        return {
            **tenant_json(admin.get(tenant)),
            "devices": contents.devices,
            "configs": contents.configs,
            "subtenants": contents.subtenants,
        }

    record = _go(config, data_dir, work)
    print_json(record) if json_out else print_record(record)


@tenant_app.command("rename")
def tenant_rename(
    tenant: str, name: str, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """Give a tenant a new name."""
    from provisor.services.tenants import TenantAdmin

    async def work(prov: Any) -> None:
        await TenantAdmin(prov).rename(tenant, name)

    _go(config, data_dir, work)
    print("renamed")


@tenant_app.command("tftp")
def tenant_tftp(
    tenant: str, state: Switch, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """Allow (on) or refuse (off) TFTP provisioning for a tenant's phones."""
    from provisor.services.tenants import TenantAdmin

    async def work(prov: Any) -> None:
        await TenantAdmin(prov).set_tftp(tenant, state is Switch.on)

    _go(config, data_dir, work)
    print(f"tftp {state.value}")


@tenant_app.command("delete")
def tenant_delete(
    tenant: str,
    force: Annotated[
        bool,
        typer.Option("--force", help="Also delete its sub-tenants, devices, configs and tokens"),
    ] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Delete a tenant; refused while it owns devices, configs or sub-tenants (see --force)."""
    from provisor.services.tenants import TenantAdmin

    async def work(prov: Any) -> dict[str, int]:
        result: dict[str, int] = await TenantAdmin(prov).delete(tenant, force=force)
        return result

    totals = _go(config, data_dir, work)
    print("deleted " + ", ".join(f"{v} {k}" for k, v in totals.items()))


@token_app.command("create")
def token_create(
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Tenant uuid (default master)")
    ] = None,
    acl: Annotated[list[str] | None, typer.Option("--acl", help="ACL (repeatable)")] = None,
    description: Annotated[str, typer.Option(help="What the token is for")] = "",
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create an API token; prints the token alone (it is stored hashed)."""

    async def work(prov: Any) -> str:
        from provisor.auth.builtin import BuiltinAuthBackend

        tenant_uuid = tenant or (prov.tenants.master.uuid)
        if prov.tenants.get(tenant_uuid) is None:
            raise ProvisorError(f"tenant {tenant_uuid!r} does not exist")
        backend = (
            prov.auth
            if isinstance(prov.auth, BuiltinAuthBackend)
            else BuiltinAuthBackend(prov.tokens, prov.tenants)
        )
        return await backend.create_token(tenant_uuid, list(acl or ["provd.#"]), description)

    print(_go(config, data_dir, work))


@token_app.command("list")
def token_list(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's")] = None,
    json_out: JsonOpt = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """List API tokens: id, tenant, ACL, description, creation time (never the token)."""

    async def work(prov: Any) -> list[dict[str, Any]]:
        rows = await prov.tokens.listing({tenant} if tenant else None)
        return [
            {
                "id": r.id,
                "tenant_uuid": r.tenant_uuid,
                "acl": list(r.acl),
                "description": r.description,
                "created_at": _utc(r.created_at),
            }
            for r in rows
        ]

    rows = _go(config, data_dir, work)
    print_json(rows) if json_out else print_rows(TOKEN_COLUMNS, rows)


@token_app.command("revoke")
def token_revoke(
    token: Annotated[str, typer.Argument(help="Token id (from token list) or the token itself")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Revoke a built-in API token by id or by its text; running servers drop it within ~1 s."""

    async def work(prov: Any) -> bool:
        if (
            token.isdigit()
        ):  # a generated token (43 url-safe characters) is all digits with odds ~1e-35
            return bool(await prov.tokens.revoke_id(int(token)))
        return bool(await prov.tokens.revoke(token))

    if not _go(config, data_dir, work):
        typer.echo("no such token", err=True)
        raise typer.Exit(1)
    print("revoked")
