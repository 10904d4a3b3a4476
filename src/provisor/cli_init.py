"""``provisor init``: a commented settings file and the data directory, for a new install.

The file written is a starting point an operator reads top to bottom: every line that changes
behaviour is commented out and shows its default, except the data directory, so the server it
configures behaves exactly as the embedded defaults until someone edits it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["TEMPLATE", "register"]

TEMPLATE = """\
# provisor settings (docs/settings.md lists every key). Lines starting with '#' show the
# default. conf.d/*.yml beside this file are merged over it in name order; PROVISOR_<SECTION>__<KEY>
# environment variables come next, command-line options last.

general:
  data_dir: {data_dir}
  # The URL phones are given (files, DHCP options). Set it to the address or name phones use:
  # a wildcard or loopback address here stops start-up (general.check_advertised_url).
  # advertised_http_url: http://provisioning.example.com:8667
  # advertised_https_url: https://provisioning.example.com:8443
  # How phones prove who they are: null (any phone that names a MAC; closed LANs only),
  # url_key (the tenant's key in the URL), device_token (a per-device token too).
  # http_auth_strategy: url_key
  # X-Forwarded-For hops to trust when a reverse proxy is in front:
  # http_proxied_trusted_proxies_count: 0
  # install_bundled_plugins: true

rest_api:
  # ip: 127.0.0.1
  # port: 8666

provisioning:
  # host: 127.0.0.1        # the phone listeners' address (0.0.0.0: every interface)
  # http_port: 8667
  # https_enabled: false
  # https_port: 8443
  # tls_certfile: /etc/provisor/tls/cert.pem
  # tls_keyfile: /etc/provisor/tls/key.pem
  # tftp_enabled: true
  # tftp_port: 6969         # 69 is the standard port (the systemd unit may bind it)
  # ban_threshold: 30

database:
  # url: postgresql://provisor:secret@db.example.com/provisor   # default: SQLite in data_dir
  # sqlite_synchronous: FULL

auth:
  # backend: builtin        # or wazo-auth (host, port, key_file as in wazo-provd)
"""


def init(
    config: Annotated[Path, typer.Option("--config", "-c", help="Settings file to write")] = Path(
        "/etc/provisor/config.yml"
    ),
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Data directory to create")] = Path(
        "/var/lib/provisor"
    ),
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file")] = False,
) -> None:
    """Write a commented settings file and create the data directory."""
    if config.exists() and not force:
        typer.echo(f"{config} exists; --force overwrites it", err=True)
        raise typer.Exit(1)
    try:
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(TEMPLATE.format(data_dir=data_dir.resolve()), encoding="utf-8")
        data_dir.mkdir(parents=True, exist_ok=True)
        data_dir.chmod(0o750)  # keys, tokens and passwords live here
    except OSError as exc:
        typer.echo(f"cannot write {exc.filename}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {config}; data directory {data_dir}")
    typer.echo(f"next: provisor serve --config {config}")


def register(app: typer.Typer) -> None:
    """Add ``provisor init`` to the main CLI."""
    app.command("init")(init)
