"""``provisor import wazo-provd DIR``: move a wazo-provd installation to provisor.

Reads wazo-provd's storage directory (``jsondb/devices/<id>``, ``jsondb/configs/<id>``, one
JSON document per file, and ``app.json`` with the parameters and the tenants' provisioning
keys), and writes devices, configs, parameters, tenants and keys. Running it again updates
what it wrote (idempotent). A device keeps its wazo plugin when that plugin is installed in
provisor (wazo-format plugins run in workers); other plugin ids are mapped to provisor's
plugins where a mapping exists; everything it could not import is reported with the reason, and nothing else stops.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisor.domain.raw_config import validate_raw_config
from provisor.domain.values import validate_id, validate_provisioning_key
from provisor.errors import InvalidInput
from provisor.service import Provisor, system_configs
from provisor.services.devices import validate_device

__all__ = ["PLUGIN_MAP", "ImportReport", "import_wazo_provd", "map_plugin"]

#: wazo-provd plugin id patterns → provisor plugin ids.
PLUGIN_MAP: tuple[tuple[str, str], ...] = (
    (r"^wazo-yealink-", "yealink"),
    (r"^wazo-polycom-", "poly"),
    (r"^wazo-cisco-spa", "cisco-spa"),
    (r"^wazo-cisco-ata", "cisco-spa"),
    (r"^wazo-cisco-sip-(?:11|12)", "cisco-mpp"),
    (r"^wazo-snom-(?:8|10)", "snom"),
    (r"^wazo-grandstream-", "grandstream"),
    (r"^wazo-fanvil-", "fanvil"),
    (r"^wazo-aastra-", "mitel"),
    (r"^wazo-htek-", "htek"),
    (r"^wazo-avaya-4\.1\.3", "avaya"),
    (r"^wazo-patton-", "patton"),
    (r"^null$", "null"),
    (r"^zero$", "zero"),
)

_PARAMS = ("http_proxy", "https_proxy", "ftp_proxy", "locale", "NAT")


def map_plugin(wazo_id: str | None) -> str | None:
    """provisor's plugin for a wazo-provd plugin id, or None when there is none."""
    if not wazo_id:
        return None
    for pattern, target in PLUGIN_MAP:
        if re.search(pattern, wazo_id):
            return target
    return None


@dataclass
class ImportReport:
    """What the import did and what it could not do."""

    devices: int = 0
    configs: int = 0
    tenants: int = 0
    keys: int = 0
    params: int = 0
    skipped: list[str] = field(default_factory=list)
    unmapped_plugins: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        """A readable summary."""
        out = [
            f"devices: {self.devices}, configs: {self.configs}, tenants: {self.tenants}, "
            f"provisioning keys: {self.keys}, parameters: {self.params}"
        ]
        for plugin, count in sorted(self.unmapped_plugins.items()):
            out.append(
                f"no provisor plugin for {plugin!r}: {count} device(s) imported without a plugin"
            )
        out.extend(f"skipped {reason}" for reason in self.skipped)
        return out


def _documents(folder: Path, report: ImportReport, kind: str) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    if not folder.is_dir():
        report.skipped.append(f"{kind}: no folder {folder}")
        return docs
    for path in sorted(folder.iterdir()):
        if not path.is_file():
            continue
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            report.skipped.append(f"{kind} {path.name}: unreadable JSON ({exc})")
            continue
        if not isinstance(doc, dict):
            report.skipped.append(f"{kind} {path.name}: not a JSON object")
            continue
        doc.setdefault("id", path.name)
        docs.append(doc)
    return docs


async def import_wazo_provd(prov: Provisor, root: Path) -> ImportReport:
    """Import a wazo-provd storage directory into a running store."""
    report = ImportReport()
    if not (root / "jsondb").is_dir():
        raise InvalidInput(f"{root}: no jsondb/ folder, not a wazo-provd storage directory")
    master = prov.devices.master_uuid
    devices = _documents(root / "jsondb" / "devices", report, "device")
    configs = _documents(root / "jsondb" / "configs", report, "config")
    app: dict[str, Any] = {}
    if (root / "app.json").is_file():
        try:
            app = json.loads((root / "app.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            report.skipped.append(f"app.json: unreadable ({exc})")

    # tenants first: devices and keys refer to them
    tenant_ids = {d.get("tenant_uuid") for d in devices if isinstance(d.get("tenant_uuid"), str)}
    tenant_ids |= (
        set((app.get("tenants") or {}).keys()) if isinstance(app.get("tenants"), dict) else set()
    )
    for uuid in sorted(t for t in tenant_ids if t):
        if prov.tenants.get(uuid) is None:
            await prov.tenants.ensure(uuid, master if uuid != master else None)
            report.tenants += 1

    # a config used by the devices of one sub-tenant belongs to that tenant; the system
    # configs stay shared; every other config is the master's (sub-tenants' devices may use
    # their ancestors' configs, but never read them)
    owner: dict[str, set[str]] = {}
    shared_ids = set(system_configs(prov.settings))
    for d in devices:
        if d.get("config") and d.get("tenant_uuid"):
            owner.setdefault(str(d["config"]), set()).add(str(d["tenant_uuid"]))

    for doc in configs:
        try:
            cid = validate_id(doc["id"], "config.id")
            if not isinstance(doc.get("parent_ids"), list) or not isinstance(
                doc.get("raw_config"), dict
            ):
                raise InvalidInput("parent_ids or raw_config missing")
            raw = {k: v for k, v in doc["raw_config"].items() if not k.startswith("XX_")}
            doc["raw_config"] = validate_raw_config(_drop_none(raw), complete=False)
        except (InvalidInput, KeyError) as exc:
            report.skipped.append(f"config {doc.get('id')!r}: {getattr(exc, 'message', exc)}")
            continue
        tenants = owner.get(cid, set())
        if cid in shared_ids or doc.get("role") == "autocreate":
            tenant = None
        elif len(tenants) == 1 and master not in tenants:
            tenant = next(iter(tenants))
        else:
            tenant = master
        existing = await prov.configs.store.get(cid)
        doc = {k: v for k, v in doc.items() if k != "tenant_uuid"}
        if existing is None:
            await prov.configs.store.insert(doc, tenant)
        else:
            if cid == "base":  # keep provisor's URL keys: they come from its settings
                doc["raw_config"] = {**doc["raw_config"], **existing.get("raw_config", {})}
            await prov.configs.store.replace(
                doc, existing.get("tenant_uuid") if cid == "base" else tenant
            )
        report.configs += 1
    prov.configs.invalidate()

    for doc in devices:
        try:
            wazo_plugin = doc.get("plugin")
            # the same wazo plugin installed here (provisor runs wazo-format plugins) is kept
            mapped = wazo_plugin if wazo_plugin in prov.plugins else map_plugin(wazo_plugin)
            if wazo_plugin and mapped is None:
                report.unmapped_plugins[wazo_plugin] = (
                    report.unmapped_plugins.get(wazo_plugin, 0) + 1
                )
            doc = {**doc, "plugin": mapped}
            if mapped is None:
                doc.pop("plugin")
            clean = validate_device(doc)
        except InvalidInput as exc:
            report.skipped.append(f"device {doc.get('id')!r}: {exc.message}")
            continue
        clean["tenant_uuid"] = doc.get("tenant_uuid") or master
        clean["is_new"] = clean["tenant_uuid"] == master
        clean["configured"] = await prov.devices.is_configured(clean)
        if await prov.devices.store.get(clean["id"]) is None:
            import secrets

            await prov.devices.store.insert(clean, prov_token=secrets.token_urlsafe(24))
        else:
            await prov.devices.store.replace(clean)
        report.devices += 1

    nested = app.get("params")
    params: dict[str, Any] = nested if isinstance(nested, dict) else app
    for name in _PARAMS:
        if name in params and params[name] is not None:
            try:
                value = str(params[name]) if name == "NAT" else params[name]
                await prov.params.set(name, value, "")
                report.params += 1
            except InvalidInput as exc:
                report.skipped.append(f"parameter {name}: {exc.message}")
    if params.get("plugin_server"):
        report.skipped.append(
            "parameter plugin_server: not imported (it points at wazo-provd's plugin repository)"
        )
    for uuid, tenant in (
        (app.get("tenants") or {}).items() if isinstance(app.get("tenants"), dict) else []
    ):
        key = tenant.get("provisioning_key") if isinstance(tenant, dict) else None
        if not key:
            continue
        try:
            await prov.tenants.set_key(uuid, validate_provisioning_key(key))
            report.keys += 1
        except InvalidInput as exc:
            report.skipped.append(f"provisioning key of tenant {uuid}: {exc.message}")
    return report


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value
