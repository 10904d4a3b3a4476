"""``provisor`` command line: serve, tenants, tokens, devices, configs, TLS, trace.

Every command takes ``--config``/``--data-dir`` so it acts on the same store as the server.
Commands that print one value (a tenant uuid, a token) print it alone, for scripts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from provisor.errors import ProvisorError
from provisor.settings import Settings, load_settings

__all__ = ["app", "main"]

T = TypeVar("T")

app = typer.Typer(help="provisor: phone auto-provisioning server", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants", no_args_is_help=True)
token_app = typer.Typer(help="API tokens (built-in auth backend)", no_args_is_help=True)
device_app = typer.Typer(help="Devices", no_args_is_help=True)
config_app = typer.Typer(help="Configs", no_args_is_help=True)
tls_app = typer.Typer(help="TLS certificates", no_args_is_help=True)
app.add_typer(tenant_app, name="tenant")
app.add_typer(token_app, name="token")
app.add_typer(device_app, name="device")
app.add_typer(config_app, name="config")
app.add_typer(tls_app, name="tls")
import_app = typer.Typer(help="Import from another provisioning server", no_args_is_help=True)
app.add_typer(import_app, name="import")

console = Console()

ConfigOpt = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML settings file (conf.d/ beside it)")
]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Data directory")]


def _settings(config: Path | None, data_dir: Path | None, **overrides: Any) -> Settings:
    dotted = {"general.data_dir": str(data_dir) if data_dir else None, **overrides}
    try:
        return load_settings(config, overrides=dotted)
    except ProvisorError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(2) from None


def _run(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    from provisor.service import Provisor

    async def main() -> T:
        prov = await Provisor.open(settings)
        try:
            return await work(prov)
        finally:
            await prov.close()

    try:
        return asyncio.run(main())
    except ProvisorError as exc:
        typer.echo(exc.message, err=True)
        raise typer.Exit(1) from None


@app.command()
def serve(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    host: Annotated[str | None, typer.Option(help="Address for every listener")] = None,
    rest_port: Annotated[int | None, typer.Option(help="REST API port")] = None,
    http_port: Annotated[int | None, typer.Option(help="Phone HTTP port")] = None,
    https_port: Annotated[int | None, typer.Option(help="Phone HTTPS port")] = None,
    tftp_port: Annotated[int | None, typer.Option(help="TFTP port")] = None,
    auth_strategy: Annotated[
        str | None, typer.Option(help="Phone URL auth: null, url_key or device_token")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the server (REST API, phone HTTP/HTTPS, TFTP) until interrupted."""
    overrides: dict[str, Any] = {
        "rest_api.ip": host,
        "provisioning.host": host,
        "rest_api.port": rest_port,
        "provisioning.http_port": http_port,
        "provisioning.https_port": https_port,
        "provisioning.tftp_port": tftp_port,
    }
    if https_port is not None:
        overrides["provisioning.https_enabled"] = True
    settings = _settings(config, data_dir, **overrides)
    if auth_strategy is not None:
        settings.general.http_auth_strategy = None if auth_strategy == "null" else auth_strategy  # type: ignore[assignment]
    from provisor.logs import setup_logging

    setup_logging(verbose or settings.general.verbose)
    from provisor.server import serve as run_server

    with contextlib.suppress(KeyboardInterrupt):
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvicorn[standard] brings it
            asyncio.run(run_server(settings))
        else:
            uvloop.run(run_server(settings))


@tenant_app.command("create")
def tenant_create(
    name: str,
    parent: Annotated[str | None, typer.Option("--parent", help="Parent tenant uuid")] = None,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Create a tenant; prints its uuid alone."""

    async def work(prov: Any) -> str:
        tenant = await prov.tenants.create(name, parent_uuid=parent)
        return str(tenant.uuid)

    print(_run(_settings(config, data_dir), work))


@tenant_app.command("list")
def tenant_list(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List tenants; the master tenant is marked."""

    async def work(prov: Any) -> list[Any]:
        return list(prov.tenants.all())

    table = Table("uuid", "name", "parent", "master", "provisioning key")
    for t in sorted(
        _run(_settings(config, data_dir), work), key=lambda t: (not t.is_master, t.name)
    ):
        table.add_row(
            t.uuid,
            t.name,
            t.parent_uuid or "",
            "*" if t.is_master else "",
            "set" if t.provisioning_key else "",
        )
    console.print(table)


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

    print(_run(_settings(config, data_dir), work))


@token_app.command("revoke")
def token_revoke(token: str, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Revoke a built-in API token (the server forgets it within its 5 s cache)."""

    async def work(prov: Any) -> bool:
        return bool(await prov.tokens.revoke(token))

    if not _run(_settings(config, data_dir), work):
        typer.echo("no such token", err=True)
        raise typer.Exit(1)
    print("revoked")


@device_app.command("list")
def device_list(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List devices."""
    from provisor.domain.selector import Selector

    async def work(prov: Any) -> list[dict[str, Any]]:
        return list(await prov.devices.list(Selector.eq(), None, None))

    table = Table("id", "mac", "ip", "vendor", "model", "plugin", "config", "configured", "tenant")
    for d in _run(_settings(config, data_dir), work):
        table.add_row(
            d["id"],
            d.get("mac") or "",
            d.get("ip") or "",
            d.get("vendor") or "",
            d.get("model") or "",
            d.get("plugin") or "",
            d.get("config") or "",
            "yes" if d.get("configured") else "no",
            d.get("tenant_uuid", ""),
        )
    console.print(table)


@config_app.command("list")
def config_list(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """List configs."""
    from provisor.domain.selector import Selector

    async def work(prov: Any) -> list[dict[str, Any]]:
        return list(await prov.configs.store.query(Selector.eq()))

    table = Table("id", "parents", "role", "deletable", "tenant")
    for c in _run(_settings(config, data_dir), work):
        table.add_row(
            c["id"],
            ",".join(c.get("parent_ids", [])),
            c.get("role") or "",
            "no" if c.get("deletable") is False else "yes",
            c.get("tenant_uuid") or "(shared)",
        )
    console.print(table)


@tls_app.command("self-signed")
def tls_self_signed(
    cert: Annotated[Path, typer.Option(help="Certificate file to write")] = Path("provisor.crt"),
    key: Annotated[Path, typer.Option(help="Private key file to write")] = Path("provisor.key"),
    host: Annotated[
        list[str] | None, typer.Option("--host", help="DNS name or IP (repeatable)")
    ] = None,
    days: int = 365,
) -> None:
    """Write a self-signed certificate and key for trials (not for production)."""
    from provisor.tls import write_self_signed

    write_self_signed(cert, key, host or ["localhost", "127.0.0.1"], days=days)
    print(f"wrote {cert} and {key}")


@import_app.command("wazo-provd")
def import_wazo(
    directory: Annotated[Path, typer.Argument(help="wazo-provd storage directory (with jsondb/)")],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Import devices, configs, parameters and provisioning keys from wazo-provd."""
    from provisor.migrate_wazo import import_wazo_provd

    async def work(prov: Any) -> list[str]:
        return (await import_wazo_provd(prov, directory)).lines()

    for line in _run(_settings(config, data_dir), work):
        print(line)


def main() -> None:
    """Entry point of the ``provisor`` command."""
    from provisor.cli_dhcp import dhcp_app

    app.add_typer(dhcp_app, name="dhcp")
    try:
        from provisor.cli_plugins import register

        register(app)
    except ImportError:
        pass
    app()


if __name__ == "__main__":
    main()
