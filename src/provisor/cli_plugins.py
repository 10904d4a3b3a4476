"""``provisor plugin …``: build a repository, update, list, install with a progress bar."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from provisor.domain import ids
from provisor.errors import InvalidInput, ProvisorError

__all__ = ["register"]

plugin_app = typer.Typer(
    help="Plugins: repository, install, upgrade, firmware", no_args_is_help=True
)

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="YAML settings file")]
DataDirOpt = Annotated[Path | None, typer.Option("--data-dir", help="Data directory")]


def _valid_plugin_id(value: str) -> str:
    """Refuse a bad plugin id before anything is opened (a usage error, exit code 2)."""
    try:
        return ids.plugin_id(value, "plugin_id")
    except InvalidInput as exc:  # typer names the argument itself
        raise typer.BadParameter(exc.message.removeprefix("plugin_id: ")) from None


PluginIdArg = Annotated[str, typer.Argument(callback=_valid_plugin_id, show_default=False)]


def register(app: typer.Typer) -> None:
    """Add the ``plugin`` command group to the main CLI."""
    app.add_typer(plugin_app, name="plugin")


def _with_manager(config: Path | None, data_dir: Path | None, work: Any) -> Any:
    from provisor.cli import _run, _settings
    from provisor.plugins.manager import get_manager

    async def run(prov: Any) -> Any:
        generation = prov.plugins.generation
        try:
            return await work(get_manager(prov), prov)
        finally:
            if prov.plugins.generation != generation:
                # a running server on this data directory loads or unloads the same folders
                await prov.feed.bump("plugins")

    return _run(_settings(config, data_dir), run)


async def _install(manager: Any, prov: Any, plugin_id: str, upgrade: bool, quiet: bool) -> None:
    op = prov.operations.start("pg.cli", lambda o: manager.install(plugin_id, o, upgrade=upgrade))
    columns = (TextColumn(f"{plugin_id}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    # the bar goes to stderr: stdout carries only the result line, for scripts
    with Progress(*columns, disable=quiet, transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task("download", total=None)
        while op.state in ("waiting", "progress"):
            if op.subs:
                bar.update(task, completed=op.subs[0].current or 0, total=op.subs[0].end)
            await asyncio.sleep(0.05)
    if op.state != "success":
        raise ProvisorError(f"{plugin_id}: {op.reason or 'failed'}")


@plugin_app.command("build")
def build(
    sources: Annotated[Path, typer.Option(help="Folder of plugin sources")] = Path("plugins"),
    out: Annotated[Path, typer.Option(help="Repository folder to write")] = Path("repository"),
) -> None:
    """Make a repository (index.json + archives) from plugin sources."""
    from provisor.plugins.build import build_repository

    index = build_repository(sources, out)
    for pid, entry in sorted(index["plugins"].items()):
        print(f"{pid} {entry['version']} {entry['file']} {entry['size']} {entry['sha256'][:12]}")
    for pid, message in index.get("errors", {}).items():
        print(f"SKIPPED {pid}: {message}")
    if index.get("errors"):
        raise typer.Exit(1)


@plugin_app.command("update")
def update(config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Fetch the repository index."""

    async def work(manager: Any, _prov: Any) -> int:
        return len(await manager.update())

    print(f"{_with_manager(config, data_dir, work)} plugins available")


@plugin_app.command("list")
def list_plugins(
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON document (fields: docs/cli.md)")
    ] = False,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Installed and available plugins, with their versions."""
    from provisor.cli_output import Column, print_json, print_rows

    async def work(manager: Any, _prov: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        if not manager.installable():
            await manager.update()
        return manager.installed(), manager.installable()

    installed, available = _with_manager(config, data_dir, work)
    rows = [
        {
            "id": pid,
            "installed_version": installed[pid]["version"] if pid in installed else None,
            "available_version": available[pid].version if pid in available else None,
            "description": (
                available[pid].description if pid in available else installed[pid]["description"]
            ),
        }
        for pid in sorted(set(installed) | set(available))
    ]
    if json_out:
        print_json(rows)
        return
    columns = (
        Column("plugin", "id"),
        Column("installed", "installed_version"),
        Column("available", "available_version"),
        Column("description", "description", ident=False),
    )
    print_rows(columns, rows)


@plugin_app.command("install")
def install(
    plugin_id: PluginIdArg,
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Install a plugin from the repository, with a progress bar."""

    async def work(manager: Any, prov: Any) -> None:
        if plugin_id not in manager.installable():
            await manager.update()
        await _install(manager, prov, plugin_id, False, quiet)

    _with_manager(config, data_dir, work)
    print(f"installed {plugin_id}")


@plugin_app.command("upgrade")
def upgrade(plugin_id: PluginIdArg, config: ConfigOpt = None, data_dir: DataDirOpt = None) -> None:
    """Upgrade an installed plugin to the repository's version."""

    async def work(manager: Any, prov: Any) -> None:
        await manager.update()
        await _install(manager, prov, plugin_id, True, False)

    _with_manager(config, data_dir, work)
    print(f"upgraded {plugin_id}")


@plugin_app.command("uninstall")
def uninstall(
    plugin_id: PluginIdArg, config: ConfigOpt = None, data_dir: DataDirOpt = None
) -> None:
    """Uninstall a plugin; its devices become unconfigured."""

    async def work(manager: Any, _prov: Any) -> None:
        await manager.uninstall(plugin_id)

    _with_manager(config, data_dir, work)
    print(f"uninstalled {plugin_id}")


@plugin_app.command("install-bundled")
def install_bundled(
    config: ConfigOpt = None,
    data_dir: DataDirOpt = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Install every plugin shipped with provisor that is not installed yet (offline)."""

    async def work(_manager: Any, prov: Any) -> list[str]:
        from provisor.plugins.bundled import install_bundled

        return await install_bundled(prov)

    done = _with_manager(config, data_dir, work)
    if not quiet:
        print("installed: " + (", ".join(done) if done else "nothing new"))
