"""``provisor dhcp config`` (DHCP server configuration out) and ``provisor dhcp notify``
(lease events in, from a Kea run_script hook or an ISC dhcpd ``on commit`` execute)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

__all__ = ["dhcp_app"]

dhcp_app = typer.Typer(help="DHCP server configuration and lease events", no_args_is_help=True)

MIME = "application/vnd.proformatique.provd+json"


@dhcp_app.command("config")
def config(
    server: Annotated[str, typer.Option("--server", help="isc or kea")] = "kea",
    tenant: Annotated[
        str | None, typer.Option(help="Put this tenant's provisioning key in the URL")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="File to write (default: standard output)")
    ] = None,
    config_file: Annotated[Path | None, typer.Option("--config", "-c")] = None,
    data_dir: Annotated[Path | None, typer.Option("--data-dir")] = None,
) -> None:
    """Write the DHCP classes that point each vendor's phones at provisor."""
    from provisor.cli import _run, _settings
    from provisor.dhcp.config import isc_config, kea_config, vendor_classes

    if server not in ("isc", "kea"):
        typer.echo("--server must be isc or kea", err=True)
        raise typer.Exit(2)

    async def work(prov: Any) -> str:
        url = prov.settings.advertised_http_url
        if tenant:
            found = prov.tenants.get(tenant)
            if found is None or not found.provisioning_key:
                raise typer.BadParameter(
                    f"tenant {tenant!r} does not exist or has no provisioning key"
                )
            url = f"{url}/{found.provisioning_key}"
        classes = vendor_classes(prov.plugins, url)
        return isc_config(classes) if server == "isc" else kea_config(classes)

    text = _run(_settings(config_file, data_dir), work)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n")


def _option_arg(value: str) -> str:
    """``60=TestPhone`` or ``060.54.65`` → wazo's ``NNN.hh.hh`` form."""
    if "=" in value:
        code, _, text = value.partition("=")
        return f"{int(code):03d}." + ".".join(f"{b:02x}" for b in text.encode("latin-1"))
    return value


#: Kea run_script hook points → the dhcpinfo operation they mean (others are ignored).
KEA_HOOKS = {
    "leases4_committed": "commit",
    "lease4_renew": "commit",
    "lease4_rebind": "commit",
    "lease4_release": "release",
    "lease4_decline": "release",
    "lease4_expire": "expiry",
}


def _kea_lease(hook: str | None) -> tuple[str | None, str | None, str | None]:
    """(op, ip, mac) from Kea's run_script variables; op None when there is nothing to send.

    ``leases4_committed`` lists its leases as ``LEASES4_AT0_*``; the single-lease hook points
    use ``LEASE4_*``. Kea 2.2's run_script exports no client option except 82, so the vendor
    class (option 60) cannot travel this way: provisor then names the vendor by MAC prefix.
    """
    env = os.environ
    if hook is not None and hook not in KEA_HOOKS:
        return None, None, None
    op = KEA_HOOKS.get(hook or "leases4_committed")
    if hook in (None, "leases4_committed") and "LEASES4_SIZE" in env:
        if env["LEASES4_SIZE"] == "0":
            return None, None, None
        return op, env.get("LEASES4_AT0_ADDRESS"), env.get("LEASES4_AT0_HWADDR")
    ip = env.get("LEASES4_AT0_ADDRESS") or env.get("LEASE4_ADDRESS")
    mac = env.get("LEASES4_AT0_HWADDR") or env.get("LEASE4_HWADDR")
    return op, ip, mac


@dhcp_app.command("notify")
def notify(
    url: Annotated[
        str, typer.Option(envvar="PROVISOR_URL", help="REST API base URL")
    ] = "http://127.0.0.1:8666",
    token: Annotated[
        str | None, typer.Option(envvar="PROVISOR_TOKEN", help="API token (dhcpinfo ACL)")
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option(envvar="PROVISOR_TOKEN_FILE", help="Read the token from this file"),
    ] = None,
    op: Annotated[str, typer.Option(help="commit, expiry or release")] = "commit",
    ip: Annotated[str | None, typer.Option(help="Leased address")] = None,
    mac: Annotated[str | None, typer.Option(help="Client MAC")] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", help="60=VendorClass or NNN.hh.hh")
    ] = None,
    kea_env: Annotated[
        bool, typer.Option("--kea-env", help="Read the lease from Kea run_script variables")
    ] = False,
    kea_hook: Annotated[
        str | None,
        typer.Option(help="Kea hook point (run_script's first argument); implies --kea-env"),
    ] = None,
) -> None:
    """Send one lease event to ``/0.2/dev_mgr/dhcpinfo``."""
    if kea_env or kea_hook:
        kea_op, kea_ip, kea_mac = _kea_lease(kea_hook)
        if kea_op is None:
            return  # a hook point or an empty commit that carries no lease
        op, ip, mac = kea_op, ip or kea_ip, mac or kea_mac
    if token is None and token_file is not None:
        try:
            token = token_file.read_text().strip()
        except OSError as exc:
            typer.echo(f"cannot read the token file: {exc.strerror}", err=True)
            raise typer.Exit(2) from None
    if not token or not ip or not mac:
        typer.echo("notify needs a token (--token or --token-file), --ip and --mac", err=True)
        raise typer.Exit(2)
    body = {
        "dhcp_info": {
            "op": op,
            "ip": ip,
            "mac": mac,
            "options": [_option_arg(o) for o in option or []],
        }
    }
    try:
        r = httpx.post(
            f"{url.rstrip('/')}/0.2/dev_mgr/dhcpinfo",
            json=body,
            headers={"X-Auth-Token": token, "Content-Type": MIME, "Accept": MIME},
            timeout=5,
        )
    except httpx.HTTPError as exc:
        typer.echo(f"provisor unreachable: {exc}", err=True)
        raise typer.Exit(1) from None
    if r.status_code != 204:
        typer.echo(f"provisor answered {r.status_code}: {r.text}", err=True)
        raise typer.Exit(1)
