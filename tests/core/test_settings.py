"""Settings: defaults, YAML file, conf.d order, environment, wazo key names, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisor.errors import InvalidInput
from provisor.settings import load_settings


def test_defaults_run_without_a_file(tmp_path: Path) -> None:
    s = load_settings(None, environ={"HOME": str(tmp_path)})
    assert s.rest_api.ip == "127.0.0.1" and s.rest_api.port == 8666
    assert s.phone_http_port == 8667 and s.tftp_port == 6969
    assert s.database_url.startswith("sqlite+aiosqlite:///")
    assert s.advertised_http_url == "http://127.0.0.1:8667"
    assert s.general.http_auth_strategy is None and s.auth.backend == "builtin"


def test_file_conf_d_env_precedence(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yml"
    cfg.write_text(
        "general:\n  http_auth_strategy: url_key\n  advertised_http_url: http://pbx:8667\n"
        "rest_api:\n  port: 9000\nauth:\n  backend: wazo-auth\n"
    )
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "10-a.yml").write_text("rest_api:\n  port: 9001\n")
    (tmp_path / "conf.d" / "20-b.yml").write_text(
        "rest_api:\n  port: 9002\ngeneral:\n  tftp_port: 69\n"
    )
    s = load_settings(cfg, environ={})
    assert s.rest_api.port == 9002 and s.tftp_port == 69
    assert s.general.http_auth_strategy == "url_key"
    assert s.advertised_http_url == "http://pbx:8667"
    s = load_settings(
        cfg,
        environ={
            "PROVISOR_REST_API__PORT": "9100",
            "PROVISOR_HTTP_AUTH_STRATEGY": "device_token",
            "PROVISOR_AUTH_BACKEND": "builtin",
            "PROVISOR_WAZO_AUTH_URL": "http://127.0.0.1:9497",
            "PROVISOR_DATABASE_URL": "postgresql://u@h/db",
        },
    )
    assert s.rest_api.port == 9100 and s.general.http_auth_strategy == "device_token"
    assert s.auth.backend == "builtin" and s.auth.server_url() == "http://127.0.0.1:9497"
    assert s.database_url == "postgresql+asyncpg://u@h/db"
    s = load_settings(cfg, environ={}, overrides={"rest_api.port": 9200})
    assert s.rest_api.port == 9200


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("rest_api:\n  port: lots\n", "rest_api.port"),
        ("general:\n  http_auth_strategy: maybe\n", "general.http_auth_strategy"),
        ("- a list\n", "mapping"),
        ("rest_api: [\n", "cannot read"),
        ("provisioning:\n  nonsense: 1\n", "provisioning.nonsense"),
    ],
)
def test_bad_settings_name_the_key(tmp_path: Path, content: str, fragment: str) -> None:
    cfg = tmp_path / "config.yml"
    cfg.write_text(content)
    with pytest.raises(InvalidInput) as err:
        load_settings(cfg, environ={})
    assert fragment in err.value.message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="does not exist"):
        load_settings(tmp_path / "nope.yml", environ={})
