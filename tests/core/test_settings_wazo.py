"""A wazo-provd config.yml and conf.d start provisor: every wazo key moved or dropped aloud."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from provisor.errors import InvalidInput
from provisor.settings import load_settings
from tests.conftest import make_settings, start_server

# Every key wazo-provd's configuration knows, with the values an installed Wazo host carries.
WAZO_CONFIG = """\
config_file: /etc/wazo-provd/config.yml
extra_config_files: /etc/wazo-provd/conf.d
general:
  advertised_http_url: http://10.0.0.5:8667
  base_raw_config_file: {base_file}
  request_config_dir: /etc/wazo-provd
  cache_dir: /var/cache/wazo-provd
  cache_plugin: true
  check_compat_min: true
  check_compat_max: true
  base_storage_dir: /var/lib/wazo-provd
  plugin_server: http://plugins.example/2/stable/
  info_extractor: default
  retriever: default
  updater: default
  tftp_port: 69
  http_proxied_listen_interface: 127.0.0.1
  http_proxied_listen_port: 18667
  http_proxied_trusted_proxies_count: 1
  verbose: false
  sync_service_type: asterisk_ami
  http_auth_strategy: url_key
rest_api:
  ip: 127.0.0.1
  port: 8666
  ssl: false
  ssl_certfile: null
  ssl_keyfile: null
auth:
  host: localhost
  port: 9497
  prefix: null
  https: false
  key_file: /var/lib/wazo-auth-keys/wazo-provd-key.yml
database:
  type: json
  generator: default
  ensure_common_indexes: true
  json_db_dir: jsondb
  uri: postgresql://asterisk:secret@localhost/asterisk
  pool_size: 16
amid:
  host: localhost
  port: 9491
  prefix: null
  https: false
bus:
  username: guest
  password: guest
  host: localhost
  port: 5672
  exchange_name: wazo-headers
  exchange_type: headers
plugin_config: {{}}
proxy:
  http: http://proxy.example:3128
tenants: {{}}
"""


def _wazo_files(tmp_path: Path) -> Path:
    base = tmp_path / "base_raw_config.json"
    base.write_text(json.dumps({"ntp_enabled": True, "ntp_ip": "10.0.0.1"}))
    cfg = tmp_path / "config.yml"
    cfg.write_text(WAZO_CONFIG.format(base_file=base))
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "50-syncdb.yml").write_text(
        "general:\n  syncdb:\n    start_sec: 5\n    interval_sec: 600\n"
    )
    return cfg


def test_every_wazo_key_is_accepted_and_means_the_same(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = _wazo_files(tmp_path)
    with caplog.at_level(logging.WARNING, logger="provisor.settings"):
        s = load_settings(cfg, environ={})
    assert s.syncdb.start_sec == 5 and s.syncdb.interval_sec == 600
    assert s.general.plugin_server == "http://plugins.example/2/stable/"
    assert s.phone_http_port == 18667 and s.tftp_port == 69
    assert s.general.http_auth_strategy == "url_key"
    assert s.general.base_raw_config == {"ntp_enabled": True, "ntp_ip": "10.0.0.1"}
    assert s.proxy == {"http": "http://proxy.example:3128"}
    assert s.general.sync_service_type == "asterisk_ami"
    logged = caplog.text
    for key in ("database.uri", "amid", "general.request_config_dir", "tenants"):
        assert f"{key}: accepted and not used" in logged
    assert "asterisk:secret" not in logged  # the database URI's password is never echoed


def test_provisor_keys_still_refused_by_name(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yml"
    cfg.write_text("general:\n  syncdb:\n    start_sec: 5\n  advertized_http_url: http://x\n")
    with pytest.raises(InvalidInput, match="general.advertized_http_url"):
        load_settings(cfg, environ={})
    cfg.write_text("provisionning:\n  http_port: 80\n")
    with pytest.raises(InvalidInput, match="provisionning"):
        load_settings(cfg, environ={})
    cfg.write_text("general:\n  syncdb:\n    start_secs: 5\n")
    with pytest.raises(InvalidInput, match="syncdb.start_secs"):
        load_settings(cfg, environ={})


def test_provisor_own_key_wins_over_wazo_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = tmp_path / "config.yml"
    cfg.write_text("general:\n  syncdb:\n    start_sec: 5\nsyncdb:\n  start_sec: 7\n")
    with caplog.at_level(logging.WARNING, logger="provisor.settings"):
        s = load_settings(cfg, environ={})
    assert s.syncdb.start_sec == 7
    assert "general.syncdb.start_sec: ignored, syncdb.start_sec is set" in caplog.text


async def test_wazo_proxy_is_the_initial_parameter(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(tmp_path, database_url, **{"proxy.http": "http://proxy.example:3128"})
    srv = await start_server(settings)
    try:
        r = await srv.api.get("/0.2/configure/http_proxy")
        assert r.status_code == 200 and r.json() == {
            "param": {"value": "http://proxy.example:3128"}
        }
        r = await srv.api.put("/0.2/configure/http_proxy", json={"param": {"value": None}})
        assert r.status_code == 204
    finally:
        await srv.close()


def test_wazo_syncdb_timers_are_read_in_whole_seconds(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """wazo-provd reads ``general.syncdb`` with int(): 0.1 is 0 there (a pass right after the
    previous one), so it is here too; provisor's own key keeps its fraction."""
    cfg = tmp_path / "config.yml"
    cfg.write_text("general: {syncdb: {start_sec: 0, interval_sec: 0.1}}\n")
    with caplog.at_level(logging.WARNING, logger="provisor.settings"):
        s = load_settings(cfg, environ={})
    assert s.syncdb.start_sec == 0 and s.syncdb.interval_sec == 0
    assert "general.syncdb.interval_sec: 0.1 read as 0 s" in caplog.text
    cfg.write_text("syncdb: {start_sec: 0.5, interval_sec: 0.25}\n")
    s = load_settings(cfg, environ={})
    assert s.syncdb.start_sec == 0.5 and s.syncdb.interval_sec == 0.25
    cfg.write_text("general: {syncdb: {interval_sec: -1}}\n")
    with pytest.raises(InvalidInput, match="syncdb.interval_sec"):
        load_settings(cfg, environ={})
