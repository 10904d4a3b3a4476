"""The plugin base class: manifest-driven defaults for every hook.

A vendor plugin subclasses :class:`Plugin` in its ``plugin.py`` and overrides only what is
vendor logic (``variables`` for its ``XX_`` keys, sometimes ``extract`` or ``score``). Everything
else comes from the manifest: identification regexes, file routes, models, resync event.
"""

from __future__ import annotations

import logging
import re
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
    SPECIFICITY,
    UNKNOWN,
    DeviceInfo,
    FileRoute,
    Manifest,
    ProbeRequest,
    RenderContext,
    clean_user_agent,
)
from provisor.plugins.sandbox import TemplateSet, render_template

__all__ = [
    "LINE_SECRET_KEYS",
    "SECRET_KEYS",
    "Plugin",
    "RenderJob",
    "inferred_specificity",
    "redact_secrets",
]

log = logging.getLogger(__name__)

_MAC_IN_PATH = re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{12}(?![0-9A-Fa-f])")

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


def inferred_specificity(req: ProbeRequest, info: DeviceInfo) -> int:
    """The rank of a match known only by what it found (a plugin without manifest rules)."""
    if req.user_agent is not None:
        full = "model" in info and "mac" in info
        return SPECIFICITY["ua-full" if full else "ua"]
    if req.path:
        return SPECIFICITY["path"]
    return SPECIFICITY["dhcp" if req.protocol == "dhcp" else "query"]


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
        found = self._match(req)
        return found[0] if found is not None else None

    def identify(self, req: ProbeRequest) -> tuple[DeviceInfo, int] | None:
        """Device info and how specific its best match is (:data:`SPECIFICITY`).

        Calls :meth:`extract` (so a plugin's override applies) and ranks by the manifest's
        rules; a plugin without rules (a wazo-format one) is ranked by what it found."""
        if type(self).extract is Plugin.extract:
            # no override: the one match gives both (every request is matched by every plugin)
            matched = self._match(req)
            info = matched[0] if matched is not None else None
        else:
            info = self.extract(req)
            matched = self._match(req) if info else None
        if not info:
            return None
        rank = matched[1] if matched is not None else 0
        return info, rank or inferred_specificity(req, info)

    def _match(self, req: ProbeRequest) -> tuple[DeviceInfo, int] | None:
        info: DeviceInfo = {}
        rank = 0
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
            if rule.version_unless is not None and rule.version_unless.search(text):
                found.pop("version", None)  # a boot loader's or updater's own version
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
            rank = max(rank, rule.rank(found))
            for key, value in found.items():
                if key in ("vendor", "model", "version", "mac", "sn", "uuid"):
                    info.setdefault(key, value)
        path = req.path or req.request_path or ""
        if "mac" not in info:
            mac = self._file_mac(path, identified=bool(info))
            if mac is not None:
                info["mac"] = mac
                rank = rank or SPECIFICITY["oui"]
        if not info:
            return None
        if "version" in info and any(p.fullmatch(path) for p in self.manifest.no_version_files):
            del info["version"]  # not a file the application fetches: not its version
        info.setdefault("vendor", self.manifest.vendor)
        return self.normalise_info(info), rank

    def _file_mac(self, path: str, *, identified: bool) -> str | None:
        """The MAC a path of this plugin names: a device file of the plugin when the request is
        already this vendor's or the MAC's prefix is one of its OUIs (no User-Agent), or an
        expected miss (Poly's ``<mac>.cfg``) when the request is already this vendor's."""
        if not path or not (identified or self.manifest.ouis):
            return None  # nothing could vouch for the MAC: the path is not even routed
        route = self.route(path)
        mac = route.mac if route is not None else None
        # an expected miss (Poly's <mac>.cfg) names the phone only for a request already this
        # vendor's: alone, it is what a scanner walks (tests/security/test_scan_defence.py)
        if mac is None and identified and self.is_expected_miss(path):
            found = _MAC_IN_PATH.search(path)
            mac = (
                normalize_mac(found.group()) if found and found.group() != "000000000000" else None
            )
        if mac is None or mac.startswith("00:00:00"):
            return None  # Yealink's y000000000025.cfg and the like are common files
        return mac if identified or mac[:8] in self.manifest.ouis else None

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
            return clean_user_agent(req.user_agent)
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

    def route_for(self, path: str, protocol: str) -> FileRoute | None:
        """The route of a request over ``protocol``; native plugins serve the same files over
        every protocol (wazo plugins choose per protocol)."""
        return self.route(path)

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
