"""The plugin base class: manifest-driven defaults for every hook.

A vendor plugin subclasses :class:`Plugin` in its ``plugin.py`` and overrides only what is
vendor logic (``variables`` for its ``XX_`` keys, sometimes ``extract`` or ``score``). Everything
else comes from the manifest: identification regexes, file routes, models, resync event.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisor.domain.values import normalize_mac
from provisor.errors import InvalidInput, PluginError
from provisor.plugins.budget import RenderLimitError, RenderLimits, template_failure
from provisor.plugins.contract import (
    COMPLETE,
    EXACT,
    NONE,
    PROBABLE,
    UNKNOWN,
    DeviceInfo,
    FileRoute,
    Manifest,
    ProbeRequest,
    RenderContext,
)
from provisor.plugins.sandbox import TemplateSet, render_template

__all__ = ["LINE_SECRET_KEYS", "SECRET_KEYS", "Plugin", "RenderJob", "redact_secrets"]

log = logging.getLogger(__name__)

#: raw_config keys that hold secrets, blanked when a file is served without device credentials.
SECRET_KEYS = frozenset({"admin_password", "user_password", "sip_local_key"})
LINE_SECRET_KEYS = frozenset({"password"})


def redact_secrets(raw: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``raw`` with every password and private key blanked."""
    out = {k: ("" if k in SECRET_KEYS and v else v) for k, v in raw.items()}
    lines = raw.get("sip_lines")
    if isinstance(lines, Mapping):
        out["sip_lines"] = {
            n: (
                {k: ("" if k in LINE_SECRET_KEYS else v) for k, v in line.items()}
                if isinstance(line, Mapping)
                else line
            )
            for n, line in lines.items()
        }
    return out


@dataclass(frozen=True, slots=True)
class RenderJob:
    """One template render, ready to run in this process or in a render worker."""

    plugin_id: str
    templates_root: str
    name: str
    """The template to render (after the route's parameters are filled in)."""
    overrides: tuple[tuple[str, str], ...]
    """Tenant overrides as (template name, source); empty for the shipped templates alone."""
    variables: dict[str, Any]


class Plugin:
    """A loaded plugin; subclass it in a vendor's ``plugin.py`` to add code hooks."""

    def __init__(self, manifest: Manifest, root: Path) -> None:
        self.manifest = manifest
        self.root = root
        self.templates = TemplateSet(root / "templates")

    @property
    def id(self) -> str:
        """The plugin id (its folder name)."""
        return self.manifest.id

    @property
    def version(self) -> str:
        """The plugin version, compared as a version."""
        return self.manifest.version

    # -- identification -------------------------------------------------------------------

    def extract(self, req: ProbeRequest) -> DeviceInfo | None:
        """Device info from the request, by the manifest's rules (first match per source)."""
        info: DeviceInfo = {}
        matched_sources: set[str] = set()
        for rule in self.manifest.identify:
            if req.protocol not in rule.protocols or rule.source in matched_sources:
                continue
            text = self._source_text(req, rule.source)
            if text is None:
                continue
            m = rule.regex.search(text)
            if m is None:
                continue
            matched_sources.add(rule.source)
            found = {k: v for k, v in m.groupdict().items() if v}
            if rule.vendor:
                found.setdefault("vendor", rule.vendor)
            if rule.model:
                found.setdefault("model", rule.model)
            if "mac" in found:
                try:
                    found["mac"] = normalize_mac(found["mac"])
                except InvalidInput:
                    log.info("plugin %s: ignoring malformed MAC in %s", self.id, rule.source)
                    del found["mac"]
            for key, value in found.items():
                if key in ("vendor", "model", "version", "mac", "sn", "uuid"):
                    info.setdefault(key, value)
        if not info:
            return None
        info.setdefault("vendor", self.manifest.vendor)
        return self.normalise_info(info)

    #: "upper" makes extracted model names upper case (firmware spellings vary).
    model_case: str | None = None

    def normalise_info(self, info: DeviceInfo) -> DeviceInfo:
        """Hook: tidy extracted values (model spelling…); the default applies model_case."""
        if self.model_case == "upper" and "model" in info:
            info["model"] = info["model"].upper()
        return info

    @staticmethod
    def _source_text(req: ProbeRequest, source: str) -> str | None:
        if source == "ua":
            return req.user_agent
        if source == "path":
            return req.path
        if source == "dhcp60":
            raw = req.dhcp_options.get(60)
            return raw.decode("latin-1").rstrip("\x00") if raw is not None else None
        if source.startswith("query:"):
            return req.query.get(source[6:])
        return None

    def score(self, info: Mapping[str, str]) -> int:
        """How well this plugin supports the device (0..600, PROBABLE=300 is the minimum)."""
        vendor = info.get("vendor")
        if not vendor:
            return UNKNOWN if info.get("mac", "")[:8] in self.manifest.ouis else NONE
        if vendor.lower() != self.manifest.vendor.lower():
            return NONE
        model = info.get("model")
        if not model:
            return PROBABLE
        known = self.manifest.models.get(model)
        if known is None:
            return PROBABLE
        version = info.get("version")
        if version and known.firmware_version and version.startswith(known.firmware_version):
            return EXACT
        return COMPLETE

    # -- files ----------------------------------------------------------------------------

    def route(self, path: str) -> FileRoute | None:
        """The file spec serving ``path``, or None when the plugin has no such file."""
        for spec in self.manifest.files:
            m = spec.pattern.fullmatch(path)
            if m is None:
                continue
            groups = {k: v for k, v in m.groupdict().items() if v is not None}
            mac = groups.pop("mac", None)
            if mac is not None:
                try:
                    mac = normalize_mac(mac)
                except InvalidInput:
                    continue
            return FileRoute(spec=spec, path=path, mac=mac, params=groups)
        return None

    def is_expected_miss(self, path: str) -> bool:
        """True for optional files a normal boot asks for and may not get (not a scan)."""
        return any(p.fullmatch(path) for p in self.manifest.expected_misses)

    def variables(self, ctx: RenderContext, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Hook: the vendor's ``XX_`` template variables derived from the raw config."""
        return {}

    def render(self, ctx: RenderContext, limits: RenderLimits | None = None) -> bytes:
        """The bytes of the routed file, rendered here under ``limits`` (default budget)."""
        spec = ctx.route.spec
        if spec.kind == "static":
            return self._read_static(spec.template or "", ctx.route)
        job = self.render_job(ctx)
        env = self.templates.environment(ctx.template_overrides)
        try:
            return render_template(env, job.name, job.variables, limits).encode("utf-8")
        except RenderLimitError:
            raise
        except Exception as exc:
            raise PluginError(
                f"plugin {self.id}: rendering {job.name} failed: {template_failure(exc)}"
            ) from exc

    def render_job(self, ctx: RenderContext) -> RenderJob:
        """The template and variables of a device/common file (the plugin's code runs here)."""
        spec = ctx.route.spec
        raw = ctx.raw_config if ctx.with_secrets else redact_secrets(ctx.raw_config)
        variables: dict[str, Any] = dict(raw)
        variables.update(
            device=dict(ctx.device),
            route=dict(ctx.route.params),
            model=ctx.device.get("model") or ctx.route.params.get("model"),
            plugin={"id": self.id, "version": self.version, "vendor": self.manifest.vendor},
        )
        variables.update(self.variables(ctx, raw))
        return RenderJob(
            plugin_id=self.id,
            templates_root=self.templates.root,
            name=(spec.template or "").format(**ctx.route.params),
            overrides=tuple(sorted(ctx.template_overrides.items())),
            variables=variables,
        )

    def _read_static(self, template: str, route: FileRoute) -> bytes:
        name = template.format(**route.params)
        base = (self.root / "static").resolve()
        target = (base / name).resolve()
        if not target.is_relative_to(base) or not target.is_file():
            raise PluginError(f"plugin {self.id}: static file {name!r} is missing")
        return target.read_bytes()

    def sync_event(self, device: Mapping[str, Any]) -> str:
        """The SIP NOTIFY event that tells this device to resync."""
        return self.manifest.sync_event
