"""The contract between provisor and a vendor plugin.

A plugin is mostly data (``manifest.toml``: identification rules, the files it serves, its
models, its resync event) plus a few small code hooks in ``plugin.py`` where the logic is real
(function-key layout, time-zone formats, value maps). It never touches the store or the app:
the pipeline hands it a :class:`ProbeRequest` to identify a device, a path to route, and a
:class:`RenderContext` (the device document and its effective raw config) to render bytes.

Scores follow wazo-provd's scale so third-party authors can reason the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "COMPLETE",
    "EXACT",
    "IMPROBABLE",
    "INCOMPLETE",
    "NONE",
    "PROBABLE",
    "UNKNOWN",
    "DeviceInfo",
    "FileKind",
    "FileRoute",
    "FileSpec",
    "IdentifyRule",
    "Manifest",
    "ModelInfo",
    "ProbeRequest",
    "Protocol_",
    "SPECIFICITY",
    "RenderContext",
    "clean_user_agent",
    "default_specificity",
]

NONE = 0
IMPROBABLE = 100
UNKNOWN = 200
PROBABLE = 300
INCOMPLETE = 400
COMPLETE = 500
EXACT = 600

#: How specific a match is, by name: the most specific match across plugins wins. A UA naming
#: vendor, model and MAC outranks a UA naming less, which outranks a path pattern, which
#: outranks a query argument, a DHCP option-60 text or a MAC prefix (OUI).
SPECIFICITY: Mapping[str, int] = {
    "ua-full": 50,
    "ua": 40,
    "path": 30,
    "query": 20,
    "dhcp": 20,
    "oui": 10,
}

Protocol_ = Literal["http", "tftp", "dhcp"]
FileKind = Literal["device", "common", "static", "firmware"]

#: What an extractor returns: a subset of vendor, model, version, mac, sn, uuid.
DeviceInfo = dict[str, str]

INFO_KEYS = ("vendor", "model", "version", "mac", "sn", "uuid")


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    """One request from a device, as every plugin's extractors see it."""

    protocol: Protocol_
    path: str = ""
    """Requested path with the provisioning key/token stripped, without a leading '/'."""
    user_agent: str | None = None
    """HTTP User-Agent decoded as latin-1 (never fails on odd bytes)."""
    query: Mapping[str, str] = field(default_factory=dict)
    client_ip: str = ""
    dhcp_options: Mapping[int, bytes] = field(default_factory=dict)
    """DHCP lease options by code (60 = vendor class identifier)."""
    mac: str | None = None
    """A MAC known from the transport (DHCP lease), normalised."""
    request_path: str | None = None
    """On the User-Agent probe: the path requested with it (wazo extractors read both)."""
    has_user_agent: bool = False
    """On the path probe: the request also had a User-Agent (probed separately)."""


@dataclass(frozen=True, slots=True)
class IdentifyRule:
    """A regular expression over one request field, with named groups giving device info.

    Named groups among vendor/model/version/mac/sn fill the info; ``vendor`` and ``model`` set
    constant values when the group is absent. ``source`` is ``ua``, ``path``, ``dhcp60``
    (option 60 text) or ``query:<name>``; ``protocols`` limits where the rule applies.
    """

    source: str
    regex: re.Pattern[str]
    vendor: str | None = None
    model: str | None = None
    protocols: tuple[str, ...] = ("http", "tftp", "dhcp")
    specificity: int = 0
    """Rank of a match of this rule (:data:`SPECIFICITY`); 0 means derived from the rule."""
    version_unless: re.Pattern[str] | None = None
    """When this matches the source text, the version is not the application's: dropped."""

    def rank(self, found: Mapping[str, str]) -> int:
        """The declared specificity, else the one its source and what it found imply."""
        return self.specificity or default_specificity(self.source, found)


def default_specificity(source: str, found: Mapping[str, str]) -> int:
    """A UA match naming model and MAC is ``ua-full``; otherwise the source decides."""
    if source == "ua":
        return SPECIFICITY["ua-full" if "model" in found and "mac" in found else "ua"]
    if source == "path":
        return SPECIFICITY["path"]
    if source == "dhcp60":
        return SPECIFICITY["dhcp"]
    return SPECIFICITY["query"]


def clean_user_agent(ua: str | None) -> str | None:
    """The User-Agent without surrounding blanks or one pair of wrapping double quotes
    (a Gigaset base sends its whole value quoted)."""
    if ua is None:
        return None
    ua = ua.strip()
    if len(ua) >= 2 and ua[0] == '"' and ua[-1] == '"':
        ua = ua[1:-1].strip()
    return ua


@dataclass(frozen=True, slots=True)
class FileSpec:
    """A file (or a family of files) a plugin serves, matched by a regex on the path."""

    pattern: re.Pattern[str]
    """Full-match regex on the path; a ``mac`` named group names the device the file is for."""
    kind: FileKind
    template: str | None = None
    """Template name under ``templates/`` (device/common) or file under ``static/`` (static)."""
    sensitive: bool = False
    """The file carries secrets: served only under the device's own credentials."""
    trigger: bool = False
    """Fetching it means the phone applied its config (remote-state learning)."""
    content_type: str = "application/octet-stream"
    name: str = ""


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the plugin knows of one model: line count, keys, firmware."""

    name: str
    lines: int = 1
    function_keys: int = 0
    expansion_modules: int = 0
    type: str = "deskphone"
    firmware_version: str | None = None
    firmware_file: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Manifest:
    """A plugin's ``manifest.toml``, validated."""

    id: str
    version: str
    vendor: str
    description: str
    iface_version: int
    models: Mapping[str, ModelInfo]
    identify: tuple[IdentifyRule, ...]
    files: tuple[FileSpec, ...]
    expected_misses: tuple[re.Pattern[str], ...]
    sync_event: str
    ouis: tuple[str, ...]
    dhcp: Mapping[str, Any]
    firmware: Mapping[str, Any]
    capabilities: Mapping[str, Any]
    owners: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict)
    no_version_files: tuple[re.Pattern[str], ...] = ()
    """Files fetched by a boot loader/updater or uploaded: a version seen with them is not
    the application's and is not stored."""


@dataclass(frozen=True, slots=True)
class FileRoute:
    """A path routed to one of a plugin's files."""

    spec: FileSpec
    path: str
    mac: str | None = None
    """The normalised MAC the path names, if any."""
    params: Mapping[str, str] = field(default_factory=dict)
    """The other named groups of the path pattern (model, psn, …)."""


@dataclass(frozen=True, slots=True)
class RenderContext:
    """Everything a plugin may use to render one file."""

    route: FileRoute
    device: Mapping[str, Any]
    """The device document (id, mac, vendor, model, version, options, …); empty for a
    common file requested before the device is known."""
    raw_config: Mapping[str, Any]
    """The effective raw config with host defaults applied (base only for common files)."""
    with_secrets: bool = True
    """False in the bootstrap phase: passwords and keys must render blank."""
    template_overrides: Mapping[str, str] = field(default_factory=dict)
    """Administrator overrides of this plugin's templates (tenant, model, device), by name."""
    plugin_root: Path | None = None
