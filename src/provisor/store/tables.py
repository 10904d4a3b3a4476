"""The tables of the store (SQLAlchemy Core).

Devices and configs keep their whole wazo-provd document in a JSON column, so clients can
store the free-form keys they do today, and copy the fields that are looked up into indexed
columns (mac, ip, sn, uuid, tenant, config, plugin). A ``rev`` column counts writes: the render
cache keys on it, so a response is never stale and nothing is re-rendered up front.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)

__all__ = [
    "bans",
    "changes",
    "config_parents",
    "configs",
    "device_ports",
    "devices",
    "firmware_state",
    "metadata",
    "operations",
    "params",
    "plugin_state",
    "template_overrides",
    "tenants",
    "tokens",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

tenants = Table(
    "tenants",
    metadata,
    Column("uuid", String(64), primary_key=True),
    Column("name", String(255), nullable=False, default=""),
    Column("parent_uuid", String(64), nullable=True, index=True),
    Column("is_master", Boolean, nullable=False, default=False),
    Column("provisioning_key", String(256), nullable=True, unique=True),
    Column("tftp_enabled", Boolean, nullable=False, default=True),
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
)

tokens = Table(
    "tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("tenant_uuid", String(64), nullable=False, index=True),
    Column("acl", JSON, nullable=False),
    Column("description", String(255), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
)

devices = Table(
    "devices",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("tenant_uuid", String(64), nullable=False, index=True),
    Column("mac", String(17), nullable=True, index=True),
    Column("ip", String(45), nullable=True, index=True),
    Column("sn", String(128), nullable=True, index=True),
    Column("uuid", String(128), nullable=True, index=True),
    Column("plugin", String(128), nullable=True, index=True),
    Column("config", String(128), nullable=True, index=True),
    Column("is_new", Boolean, nullable=False, default=False),
    Column("prov_token", String(64), nullable=True, unique=True),
    Column("doc", JSON, nullable=False),
    Column("rev", Integer, nullable=False, default=1),
)

#: Ports (lines) of a device assigned to a tenant other than, or besides, the device's own: a
#: shared gateway. The port tenant's line comes from a config that tenant owns (docs/api.md,
#: "Devices shared by tenants").
device_ports = Table(
    "device_ports",
    metadata,
    Column(
        "device_id",
        String(128),
        ForeignKey("devices.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("port", Integer, primary_key=True),
    Column("tenant_uuid", String(64), nullable=False, index=True),
    Column("config", String(128), nullable=True, index=True),
)

configs = Table(
    "configs",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("tenant_uuid", String(64), nullable=True, index=True),
    Column("role", String(64), nullable=True, index=True),
    Column("provisioning_code", String(64), nullable=True),
    Column("doc", JSON, nullable=False),
    Column("rev", Integer, nullable=False, default=1),
    UniqueConstraint("tenant_uuid", "provisioning_code", name="uq_configs_tenant_code"),
)

config_parents = Table(
    "config_parents",
    metadata,
    Column(
        "child_id",
        String(128),
        ForeignKey("configs.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("position", Integer, primary_key=True),
    Column("parent_id", String(128), nullable=False),
    Index("ix_config_parents_parent_id", "parent_id"),
)

params = Table(
    "params",
    metadata,
    Column("tenant_uuid", String(64), primary_key=True),  # "" for global parameters
    Column("name", String(64), primary_key=True),
    Column("value", JSON, nullable=True),
)

operations = Table(
    "operations",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(64), nullable=False),
    Column("tenant_uuid", String(64), nullable=True),
    Column("status", Text, nullable=False),
    Column("updated_at", Float, nullable=False),
)

template_overrides = Table(
    "template_overrides",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("tenant_uuid", String(64), nullable=False),
    Column("plugin_id", String(128), nullable=False),
    Column("scope", String(16), nullable=False),  # tenant | model | device
    Column("target", String(128), nullable=False, default=""),
    Column("name", String(255), nullable=False),
    Column("source", Text, nullable=False),
    UniqueConstraint(
        "tenant_uuid", "plugin_id", "scope", "target", "name", name="uq_template_overrides_key"
    ),
)

changes = Table(
    "changes",
    metadata,
    Column("name", String(32), primary_key=True),  # configs | tenants | params
    Column("value", Integer, nullable=False, default=0),
)

# Addresses refused by every node (services/bans.py); times are wall-clock epoch seconds, so
# nodes share expiry (their clocks are kept by NTP). Capped, oldest first.
bans = Table(
    "bans",
    metadata,
    Column("address", String(45), primary_key=True),
    Column("until", Float, nullable=False, index=True),
    Column("created_at", Float, nullable=False, index=True),
    Column("reason", String(255), nullable=False, default=""),
)

# The plugins every node should have (plugins/cluster.py): installed rows name where the
# archive comes from (a repository URL, or the archive itself); removed rows are tombstones so
# a node that was away removes the plugin instead of bringing it back.
plugin_state = Table(
    "plugin_state",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("installed", Boolean, nullable=False),
    Column("version", String(64), nullable=False, default=""),
    Column("url", Text, nullable=True),  # a repository's archive URL (http/https)
    Column("archive", LargeBinary, nullable=True),  # or the archive itself (capped)
    Column("size", Integer, nullable=False, default=0),
    Column("algorithm", String(16), nullable=False, default="sha256"),
    Column("digest", String(128), nullable=False, default=""),
    Column("updated_at", Float, nullable=False),
)

# The firmware packages every node should have (store/firmware_state.py): each row names the
# package's version and its downloads (URL, size, digest) as the plugin declared them when an
# operator installed it; the files themselves are never kept here (hundreds of MB): each node
# fetches them from the vendor's URL. A removed row is a tombstone, as for plugins.
firmware_state = Table(
    "firmware_state",
    metadata,
    Column("plugin_id", String(128), primary_key=True),
    Column("package_id", String(128), primary_key=True),
    Column("installed", Boolean, nullable=False),
    Column("version", String(128), nullable=False, default=""),
    Column("size", BigInteger, nullable=False, default=0),  # all downloads together
    Column("downloads", JSON, nullable=False),  # [{name, url, size, algorithm, digest}]
    Column("updated_at", Float, nullable=False),
)

# Each device's last request as any node saw it (store/seen.py): the console's "last seen" and
# a phone's state, surviving restarts and shared by nodes. A table of its own, not columns of
# ``devices``: written in batches by every node's phone pipeline, it must not bump a device's
# ``rev`` nor take the device row's lock that API writes need; it goes with its device.
device_seen = Table(
    "device_seen",
    metadata,
    Column(
        "device_id",
        String(128),
        ForeignKey("devices.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("seen_at", Float, nullable=False),  # wall-clock epoch seconds
    Column("status", Integer, nullable=False, index=True),  # 0: no answer sent
    Column("file", String(200), nullable=False, default=""),
    Column("reason", String(255), nullable=False, default=""),
    Column("address", String(45), nullable=False, default=""),
)
