"""The plugin base classes and helpers wazo plugins subclass and call.

A plugin's class (the one with a true ``IS_PLUGIN``) is built with
``(app, plugin_dir, gen_cfg, spec_cfg)``; it writes its device files into ``var/tftpboot``
when configured, and provisor serves them through its own pipeline. Templates are looked up
in ``var/templates`` (the administrator's overrides) before ``templates``, and, while a device
is configured, in its tenant's REST overrides before both (``_tenant_templates``).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from jinja2 import Environment, FileSystemLoader, Template, TemplateNotFound
from twisted.internet import defer

from wazo_provd import _tenant_templates

__all__ = [
    "FetchfwPluginHelper",
    "Plugin",
    "StandardPlugin",
    "TemplatePluginHelper",
    "add_wazo_phoned_user_service_url",
    "add_xivo_phonebook_url",
    "add_xivo_phonebook_url_from_format",
]

log = logging.getLogger(__name__)

_PLUGIN_INFO = "plugin-info"


class Plugin:
    """Base of every plugin; the hooks do nothing until a plugin overrides them."""

    id: str | None = None
    IS_PLUGIN = False

    dhcp_dev_info_extractor: Any = None
    http_dev_info_extractor: Any = None
    tftp_dev_info_extractor: Any = None
    http_service: Any = None
    tftp_service: Any = None
    pg_associator: Any = None

    def __init__(
        self, app: Any, plugin_dir: str, gen_cfg: dict[str, Any], spec_cfg: dict[str, Any]
    ) -> None:
        self._app = app
        self._plugin_dir = plugin_dir
        self._services: dict[str, Any] = {}

    @property
    def services(self) -> dict[str, Any]:
        """Extra services by name ('install' for firmware packages)."""
        return self._services

    @services.setter
    def services(self, value: dict[str, Any]) -> None:
        self._services = value

    @property
    def info(self) -> dict[str, Any]:
        """The plugin's ``plugin-info`` document."""
        with open(os.path.join(self._plugin_dir, _PLUGIN_INFO), encoding="utf-8") as f:
            data: dict[str, Any] = json.load(f)
        return data

    def load(self) -> None:
        """Nothing to do: the worker built the plugin already."""

    def close(self) -> None:
        """Called once before the worker stops."""

    def configure_common(self, raw_config: dict[str, Any]) -> None:
        """Write the files every device shares."""

    def configure(self, device: dict[str, Any], raw_config: dict[str, Any]) -> None:
        """Write the files of one device."""

    def deconfigure(self, device: dict[str, Any]) -> None:
        """Remove the files of one device."""

    def synchronize(self, device: dict[str, Any], raw_config: dict[str, Any]) -> Any:
        """Tell the device to fetch its configuration again."""
        return defer.fail(Exception("Re-synchronization is not supported"))

    def get_remote_state_trigger_filename(self, device: dict[str, Any]) -> str | None:
        """The file whose download means the device applied its configuration."""
        return None

    def is_sensitive_filename(self, filename: str) -> bool:
        """True for files that may hold passwords."""
        return False


class StandardPlugin(Plugin):
    """A plugin that serves files from ``<plugin_dir>/var/tftpboot``."""

    _TFTPBOOT_DIR = os.path.join("var", "tftpboot")

    def __init__(
        self, app: Any, plugin_dir: str, gen_cfg: dict[str, Any], spec_cfg: dict[str, Any]
    ) -> None:
        super().__init__(app, plugin_dir, gen_cfg, spec_cfg)
        self._tftpboot_dir = os.path.join(plugin_dir, self._TFTPBOOT_DIR)


class TemplatePluginHelper:
    """Jinja2 templates from ``var/templates`` (overrides) then ``templates``."""

    DEFAULT_TPL_DIR = "templates"
    CUSTOM_TPL_DIR = os.path.join("var", "templates")

    def __init__(self, plugin_dir: str) -> None:
        search = [
            os.path.join(plugin_dir, self.CUSTOM_TPL_DIR),
            os.path.join(plugin_dir, self.DEFAULT_TPL_DIR),
        ]
        # no template cache: an override dropped into var/templates applies at the next configure
        self._loader = FileSystemLoader(search)
        self._plain_env = Environment(loader=self._loader, cache_size=0)

    @property
    def _env(self) -> Environment:
        """The plugin's environment, or the sandbox with a tenant's REST overrides in front of
        it while the worker configures a device of that tenant (see ``_tenant_templates``)."""
        if _tenant_templates.active():
            return _tenant_templates.environment(self._loader)
        return self._plain_env

    def get_dev_template(self, filename: str | None, dev: dict[str, Any]) -> Template:
        """The first of ``<filename>.tpl``, ``<model>.tpl``, ``base.tpl`` that exists."""
        names = []
        if filename:
            names.append(f"{filename}.tpl")
        if dev.get("model"):
            names.append(f"{dev['model']}.tpl")
        names.append("base.tpl")
        for name in names:
            try:
                return self._env.get_template(name)
            except TemplateNotFound:
                continue
        raise TemplateNotFound(names[-1])

    def get_template(self, name: str) -> Template:
        """A template by name."""
        return self._env.get_template(name)

    def dump(
        self,
        template: Template,
        context: dict[str, Any],
        filename: str,
        encoding: str = "UTF-8",
        errors: str = "strict",
    ) -> None:
        """Render into ``filename`` atomically (a reader never sees half a file)."""
        tmp = f"{filename}.tmp"
        template.stream(context).dump(tmp, encoding, errors)
        os.replace(tmp, filename)

    def render(
        self,
        template: Template,
        context: dict[str, Any],
        encoding: str = "UTF-8",
        errors: str = "replace",
    ) -> bytes:
        """Render to bytes."""
        return template.render(context).encode(encoding, errors)


class FetchfwPluginHelper:
    """Firmware/language packages of a plugin (``pkgs/pkgs.db``).

    provisor does not install wazo packages yet: the service lists none, so the package
    endpoints show an empty list for wazo plugins.
    """

    PKG_DIR = "pkgs"
    TFTPBOOT_DIR = os.path.join("var", "tftpboot")

    def __init__(
        self, plugin_dir: str, downloaders: Any = None, filter_builder: Any = None
    ) -> None:
        self._plugin_dir = plugin_dir
        self.root_dir = os.path.join(plugin_dir, self.TFTPBOOT_DIR)

    @classmethod
    def new_handlers(cls, proxies: Any = None) -> list[Any]:
        """Download handlers (none in the worker: the server downloads)."""
        return []

    @classmethod
    def new_downloaders_from_handlers(cls, handlers: Any = None) -> dict[str, Any]:
        """Downloaders (none in the worker)."""
        return {}

    @classmethod
    def new_downloaders(cls, proxies: Any = None) -> dict[str, Any]:
        """Downloaders (none in the worker)."""
        return {}

    def services(self) -> dict[str, Any]:
        """The 'install' service."""
        return {"install": self}

    def list_installable(self) -> dict[str, Any]:
        """No package is offered (not supported yet)."""
        return {}

    def list_installed(self) -> dict[str, Any]:
        """No package is installed (not supported yet)."""
        return {}


def _directory_host(raw_config: dict[str, Any]) -> tuple[str, str, Any, str] | None:
    host = raw_config.get("X_xivo_phonebook_ip")
    if not host:
        return None
    user = raw_config.get("X_xivo_user_uuid")
    if not user:
        log.warning("no user uuid: the phonebook URL is left out")
        return None
    scheme = raw_config.get("X_xivo_phonebook_scheme", "http")
    return str(scheme), str(host), raw_config.get("X_xivo_phonebook_port", 9498), str(user)


def add_xivo_phonebook_url_from_format(raw_config: dict[str, Any], url_format: str) -> None:
    """Set ``XX_xivo_phonebook_url`` from a format with scheme/hostname/port/user_uuid."""
    found = _directory_host(raw_config)
    if found is None:
        return
    scheme, host, port, user = found
    raw_config["XX_xivo_phonebook_url"] = url_format.format(
        scheme=scheme, hostname=host, port=port, user_uuid=user, profile="default"
    )


def add_xivo_phonebook_url(
    raw_config: dict[str, Any],
    vendor: str,
    entry_point: str = "input",
    qs_prefix: str = "",
    qs_suffix: str = "",
) -> None:
    """Set ``XX_xivo_phonebook_url`` to the directory lookup URL of the user's profile."""
    query = "".join((f"{qs_prefix}&" if qs_prefix else "", "xivo_user_uuid={user_uuid}")) + (
        f"&{qs_suffix}" if qs_suffix else ""
    )
    path = f"/0.1/directories/{entry_point}/default/{vendor}?"
    add_xivo_phonebook_url_from_format(raw_config, "{scheme}://{hostname}:{port}" + path + query)


def add_wazo_phoned_user_service_url(
    raw_config: dict[str, Any], vendor: str, service_name: str
) -> None:
    """Set the enable/disable URLs of a user service (DND, forwards) on the phoned API."""
    found = _directory_host(raw_config)
    if found is None:
        return
    scheme, host, port, user = found
    for state in ("enable", "disable"):
        raw_config[f"XX_wazo_phoned_user_service_{service_name}_{state}d_url"] = (
            f"{scheme}://{host}:{port}/0.1/{vendor}/users/{user}/services/{service_name}/{state}"
        )
