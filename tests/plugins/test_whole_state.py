"""Whole-state files: a removed line or key, or a reset to autoprov, is cleared on the phone.

Phones keep every parameter their file does not mention. For every shipped vendor plugin this
renders the device of its ``cases.json`` three times, as a phone moving to another user sees
it: with several lines and keys, with fewer (line 1 and key 1 only), and with the autoprov
config (an anonymous line 1, no key, none of the previous user's settings). It asserts:

- every account slot and key slot of the model that is not configured is cleared in the
  vendor's way (``whole_state.line_cleared`` / ``key_cleared`` / ``expkey_cleared`` regexes, with
  ``{n}`` the slot number, ``{m}``/``{k}`` an expansion module and its key, and arithmetic
  on them such as ``{n-1}`` or ``{5*n+22995}``; ``slots_cleared``: fixed patterns, for
  vendors whose slots are not numbered by a formula);
- nothing of the previous user is left: no user name, auth name, password, display name, key
  label, admin or user password, NTP/syslog/phonebook address;
- for a vendor whose file is a full configuration (Cisco's ``SEP<MAC>.cnf.xml``: what it does
  not list is blank on the phone), the slot is absent instead (``line_absent`` /
  ``key_absent`` / ``expkey_absent``, the same placeholders);
- the settings the autoprov config does not set are written with explicit values
  (``whole_state.settings_cleared``);
- no parameter written in the fuller file is missing from the later ones (``whole_state.param``
  extracts parameter names; counted, so a repeated element cannot vanish either), except the
  ones listed in ``whole_state.may_vanish`` (details of a slot or feature whose switch is written
  off, such as a DECT handset's registration once its account is cleared).
"""

from __future__ import annotations

import ast
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.plugins.conftest import plugin_by_id, render_path, sample_raw_config

HERE = Path(__file__).parent
VENDORS = sorted(
    p.name
    for p in HERE.iterdir()
    if (p / "cases.json").is_file() and "whole_state" in json.loads((p / "cases.json").read_text())
)
SHIPPED = sorted(
    p.name
    for p in (HERE.parents[1] / "plugins").iterdir()
    if (p / "manifest.toml").is_file() and p.name not in ("zero", "null")
)

#: What only the previous user's configuration holds (see _full_config).
PREVIOUS_USER = (
    "user1",
    "auth1",
    "LineSecret1",
    "Line 1",
    "AdminSecret9",
    "UserSecret8",
    "KeyLabel1",
    "10.0.0.2",
    "10.0.0.4",
    "5a1b2c3d-0000-4000-8000-000000000001",
)


def _case(plugin_id: str) -> dict[str, Any]:
    return dict(json.loads((HERE / plugin_id / "cases.json").read_text()))


def _specs() -> list[Any]:
    """(plugin, spec) pairs: ``whole_state`` is one spec or a list (one per device family)."""
    out = []
    for plugin_id in VENDORS:
        case = _case(plugin_id)
        specs = case["whole_state"]
        for i, spec in enumerate(specs if isinstance(specs, list) else [specs]):
            spec = {"device": case["device"], "file": case["secret_file"], **spec}
            out.append(pytest.param(plugin_id, spec, id=f"{plugin_id}-{i}"))
    return out


def _full_config(lines: int, keys: list[int]) -> dict[str, Any]:
    raw = sample_raw_config(lines=lines)
    raw["funckeys"] = {
        str(n): {
            "type": ("speeddial", "blf")[n % 2],
            "value": f"77{n:02d}",
            "label": f"KeyLabel{n}",
            "line": 1,
        }
        for n in keys
    }
    return raw


def _autoprov_config() -> dict[str, Any]:
    """The effective autoprov config: base + defaultconfigdevice + the anonymous line."""
    return {
        "http_base_url": "http://10.0.0.1:8667",
        "ip": "10.0.0.1",
        "http_port": 8667,
        "tftp_port": 69,
        "admin_username": "admin",
        "admin_password": "ApAdminPw",
        "user_username": "user",
        "user_password": "ApUserPw",
        "sip_dtmf_mode": "SIP-INFO",
        "sip_lines": {
            "1": {
                "display_name": "Autoprov",
                "number": "autoprov",
                "username": "anonymous",
                "password": "",
            }
        },
    }


def _params(spec: dict[str, Any], body: str) -> Counter[str]:
    found = re.findall(spec["param"], body, re.M)
    return Counter("|".join(f) if isinstance(f, tuple) else f for f in found)


def _missing(spec: dict[str, Any], before: Counter[str], after: Counter[str]) -> list[str]:
    allowed = [re.compile(p) for p in spec.get("may_vanish", [])]
    return sorted(
        name
        for name, count in before.items()
        if after[name] < count and not any(a.search(name) for a in allowed)
    )


#: ``{expr}`` in a cleared pattern: arithmetic on the slot numbers n, m, k (``{5*n+22995}``).
_ARITH = re.compile(r"\{((?=[^{}]*[nmk])[nmk0-9+\-* ()]+)\}")


def _arith(node: ast.AST, slot: dict[str, int]) -> int:
    if isinstance(node, ast.Expression):
        return _arith(node.body, slot)
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    if isinstance(node, ast.Name):
        return slot[node.id]
    if isinstance(node, ast.BinOp):
        left, right = _arith(node.left, slot), _arith(node.right, slot)
        ops = {ast.Add: left + right, ast.Sub: left - right, ast.Mult: left * right}
        return ops[type(node.op)]
    raise AssertionError(f"unsupported expression in a cleared pattern: {ast.dump(node)}")


def _fill(pattern: str, slot: dict[str, int]) -> str:
    def value(m: re.Match[str]) -> str:
        return str(_arith(ast.parse(m.group(1), mode="eval"), slot))

    return _ARITH.sub(value, pattern)


def _assert_cleared(
    spec: dict[str, Any], body: str, kind: str, slots: list[dict[str, int]]
) -> None:
    for pattern in spec.get(kind, []):
        for slot in slots:
            text = _fill(pattern, slot)
            assert re.search(text, body, re.M), f"{kind}: {text!r} not in file"


def _assert_absent(spec: dict[str, Any], body: str, kind: str, slots: list[dict[str, int]]) -> None:
    for pattern in spec.get(kind, []):
        for slot in slots:
            text = _fill(pattern, slot)
            assert not re.search(text, body, re.M), f"{kind}: {text!r} still in file"


def _assert_slots(spec: dict[str, Any], body: str, slots: dict[str, list[dict[str, int]]]) -> None:
    """Each kind of slot cleared (``<kind>_cleared``) or left out (``<kind>_absent``)."""
    for kind, numbers in slots.items():
        _assert_cleared(spec, body, f"{kind}_cleared", numbers)
        _assert_absent(spec, body, f"{kind}_absent", numbers)


def _slots(plugin_id: str, spec: dict[str, Any]) -> tuple[int, int, int, int]:
    model = plugin_by_id(plugin_id).manifest.models[spec["device"]["model"]]
    lines = int(spec.get("lines", model.lines))
    keys = int(spec.get("keys", model.function_keys))
    modules = int(spec.get("modules", model.expansion_modules))
    module_keys = int(model.extra.get("expansion_keys", 0))
    return lines, keys, modules, module_keys


def _render(plugin_id: str, spec: dict[str, Any], raw: dict[str, Any]) -> str:
    plugin = plugin_by_id(plugin_id)
    return render_path(plugin, spec["file"], device=spec["device"], raw_config=raw).decode()


def test_every_shipped_plugin_has_a_whole_state_case() -> None:
    assert [p for p in SHIPPED if p not in VENDORS] == []


@pytest.mark.parametrize(("plugin_id", "spec"), _specs())
def test_removed_lines_and_keys_are_cleared(plugin_id: str, spec: dict[str, Any]) -> None:
    lines, keys, modules, module_keys = _slots(plugin_id, spec)
    many = min(lines, 3)
    first = int(spec.get("first_key", 1))
    key_numbers = [n for n in (first, first + 1, first + 2) if n <= keys]
    if modules and module_keys:
        key_numbers.append(keys + 1)  # the first key of the first expansion module
    full = _render(plugin_id, spec, _full_config(many, key_numbers))
    for n in range(1, many + 1):
        assert f"user{n}" in full and f"LineSecret{n}" in full, n
    for n in key_numbers:
        assert f"77{n:02d}" in full, f"key {n} not written"

    fewer = _render(plugin_id, spec, _full_config(1, key_numbers[:1]))
    _assert_cleared(spec, fewer, "slots_cleared", [{}])
    _assert_slots(
        spec,
        fewer,
        {
            "line": [{"n": n} for n in range(2, lines + 1)],
            "key": [{"n": n} for n in range(first + 1, keys + 1)],
            "expkey": [
                {"m": m, "k": k} for m in range(1, modules + 1) for k in range(1, module_keys + 1)
            ],
        },
    )
    for n in range(2, many + 1):
        for text in (f"user{n}", f"auth{n}", f"LineSecret{n}", f"Line {n}"):
            assert text not in fewer, text
    for n in key_numbers[1:]:
        assert f"KeyLabel{n}" not in fewer and f"77{n:02d}" not in fewer, n
    assert "user1" in fewer
    if key_numbers:
        assert f"KeyLabel{key_numbers[0]}" in fewer
    assert _missing(spec, _params(spec, full), _params(spec, fewer)) == []


@pytest.mark.parametrize(("plugin_id", "spec"), _specs())
def test_reset_to_autoprov_clears_the_previous_user(plugin_id: str, spec: dict[str, Any]) -> None:
    lines, keys, modules, module_keys = _slots(plugin_id, spec)
    first = int(spec.get("first_key", 1))
    key_numbers = [n for n in (first, first + 1, first + 2) if n <= keys]
    full = _render(plugin_id, spec, _full_config(min(lines, 3), key_numbers))
    autoprov = _render(plugin_id, spec, _autoprov_config())
    for text in PREVIOUS_USER:
        assert text not in autoprov, text
    assert "anonymous" in autoprov
    _assert_cleared(spec, autoprov, "slots_cleared", [{}])
    _assert_slots(
        spec,
        autoprov,
        {
            "line": [{"n": n} for n in range(2, lines + 1)],
            "key": [{"n": n} for n in range(first, keys + 1)],
            "expkey": [
                {"m": m, "k": k} for m in range(1, modules + 1) for k in range(1, module_keys + 1)
            ],
        },
    )
    for pattern in spec.get("settings_cleared", []):
        assert re.search(pattern, autoprov, re.M), f"settings_cleared: {pattern!r} not in file"
    assert _missing(spec, _params(spec, full), _params(spec, autoprov)) == []
