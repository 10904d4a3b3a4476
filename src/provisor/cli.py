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

from provisor.cli_output import Column, JsonOpt, print_json, print_record, print_rows
from provisor.cli_tenants import tenant_app, token_app
from provisor.errors import ProvisorError
from provisor.settings import Settings, load_settings

__all__ = ["app", "main"]

T = TypeVar("T")

app = typer.Typer(help="provisor: phone auto-provisioning server", no_args_is_help=True)
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


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"provisor {version('provisor')}")
        except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
            from provisor import __version__

            print(f"provisor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    _show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit"
        ),
    ] = False,
) -> None:
    """provisor: phone auto-provisioning server."""


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

    observe = settings.observability
    setup_logging(
        verbose or settings.general.verbose, observe.log_format, observe.log_file, observe.log_level
    )
    from provisor.server import serve as run_server

    with contextlib.suppress(KeyboardInterrupt):
        try:
            import uvloop
        except ImportError:  # pragma: no cover - uvicorn[standard] brings it
            runner: Callable[[Any], Any] = asyncio.run
        else:
            runner = uvloop.run
        try:
            runner(run_server(settings))
        except ProvisorError as exc:  # one line naming the setting or listener, no traceback
            typer.echo(f"provisor: cannot start: {exc.message}", err=True)
            raise typer.Exit(1) from None


DEVICE_FIELDS = (
    "id",
    "tenant_uuid",
    "mac",
    "ip",
    "sn",
    "uuid",
    "vendor",
    "model",
    "version",
    "plugin",
    "config",
    "configured",
    "is_new",
)
DEVICE_COLUMNS = (
    Column("id", "id"),
    Column("mac", "mac"),
    Column("ip", "ip"),
    Column("vendor", "vendor", ident=False),
    Column("model", "model", ident=False),
    Column("plugin", "plugin"),
    Column("config", "config"),
    Column("configured", "configured"),
    Column("tenant", "tenant_uuid"),
)
CONFIG_FIELDS = ("id", "tenant_uuid", "parent_ids", "role", "deletable", "label", "X_type")
CONFIG_COLUMNS = (
    Column("id", "id"),
    Column("parents", "parent_ids"),
    Column("role", "role"),
    Column("deletable", "deletable"),
    Column("tenant", "tenant_uuid"),
    Column("label", "label", ident=False),
)


def _device_summary(doc: dict[str, Any]) -> dict[str, Any]:
    out = {key: doc.get(key) for key in DEVICE_FIELDS}
    out["configured"] = bool(doc.get("configured"))
    out["is_new"] = bool(doc.get("is_new"))
    return out


def _config_summary(doc: dict[str, Any]) -> dict[str, Any]:
    out = {key: doc.get(key) for key in CONFIG_FIELDS}
    out["parent_ids"] = list(doc.get("parent_ids") or [])
    out["deletable"] = doc.get("deletable") is not False
    return out


@device_app.command("list")
def device_list(
    json_out: JsonOpt = False, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """List devices (every tenant)."""
    from provisor.domain.selector import Selector

    async def work(prov: Any) -> list[dict[str, Any]]:
        docs = await prov.devices.list(Selector.eq(), None, None)
        return [_device_summary(d) for d in sorted(docs, key=lambda d: str(d["id"]))]

    rows = _run(_settings(config, data_dir), work)
    print_json(rows) if json_out else print_rows(DEVICE_COLUMNS, rows)


@device_app.command("show")
def device_show(
    device_id: str, json_out: JsonOpt = False, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """One device: its whole document, as the REST API returns it."""

    async def work(prov: Any) -> dict[str, Any]:
        doc = await prov.devices.store.get(device_id)
        if doc is None:
            raise ProvisorError(f"device {device_id!r} does not exist")
        return dict(doc)

    doc = _run(_settings(config, data_dir), work)
    print_json(doc) if json_out else print_record(doc)


@config_app.command("list")
def config_list(
    json_out: JsonOpt = False, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """List configs (every tenant; tenant_uuid null = shared)."""
    from provisor.domain.selector import Selector

    async def work(prov: Any) -> list[dict[str, Any]]:
        docs = await prov.configs.store.query(Selector.eq())
        return [_config_summary(c) for c in sorted(docs, key=lambda c: str(c["id"]))]

    rows = _run(_settings(config, data_dir), work)
    print_json(rows) if json_out else print_rows(CONFIG_COLUMNS, rows)


@config_app.command("show")
def config_show(
    config_id: str, json_out: JsonOpt = False, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """One config: its whole document (raw_config holds its SIP passwords, as stored)."""

    async def work(prov: Any) -> dict[str, Any]:
        doc = await prov.configs.store.get(config_id)
        if doc is None:
            raise ProvisorError(f"config {config_id!r} does not exist")
        return dict(doc)

    doc = _run(_settings(config, data_dir), work)
    print_json(doc) if json_out else print_record(doc)


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
    from provisor.cli_bans import register as register_bans
    from provisor.cli_dhcp import dhcp_app
    from provisor.cli_init import register as register_init

    app.add_typer(dhcp_app, name="dhcp")
    register_init(app)
    register_bans(app)
    try:
        from provisor.cli_plugins import register

        register(app)
    except ImportError:
        pass
    app()


if __name__ == "__main__":
    main()
