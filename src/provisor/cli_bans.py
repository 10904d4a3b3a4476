"""``provisor ban …``: list the addresses every node refuses, and lift a ban everywhere."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any

import typer

from provisor.cli_output import Column, JsonOpt, print_json, print_rows

__all__ = ["register"]

ban_app = typer.Typer(help="Banned phone addresses (shared by every node)", no_args_is_help=True)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML settings file")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Data directory")]


def _address(value: str) -> str:
    """Refuse what is not an IP address (a usage error, exit code 2)."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an IP address") from None


def register(app: typer.Typer) -> None:
    """Add the ``ban`` command group to the main CLI."""
    app.add_typer(ban_app, name="ban")


@ban_app.command("list")
def list_bans(
    json_out: JsonOpt = False, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """Addresses refused by every node, with when their ban ends."""
    from provisor.cli import _run, _settings

    async def work(prov: Any) -> list[dict[str, Any]]:
        return [b.public() for b in prov.bans.listed()]

    rows = _run(_settings(config, data_dir), work)
    if json_out:
        print_json(rows)
        return
    print_rows(
        (
            Column("address", "address"),
            Column("until", "until"),
            Column("reason", "reason", ident=False),
        ),
        rows,
    )


@ban_app.command("remove")
def remove(
    address: Annotated[str, typer.Argument(callback=_address, show_default=False)],
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Lift a ban on every node (within about a second)."""
    from provisor.cli import _run, _settings

    async def work(prov: Any) -> bool:
        return bool(await prov.bans.remove(address))

    if not _run(_settings(config, data_dir), work):
        typer.echo(f"{address} is not banned", err=True)
        raise typer.Exit(1)
    print(f"unbanned {address}")
