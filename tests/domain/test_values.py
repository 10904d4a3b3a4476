"""MAC, IP, id, key and NAT rules."""

from __future__ import annotations

import pytest

from provisor.domain.values import (
    format_mac,
    normalize_ip,
    normalize_mac,
    parse_nat,
    validate_id,
    validate_provisioning_key,
)
from provisor.errors import InvalidInput


@pytest.mark.parametrize(
    "spelling",
    [
        "AA:BB:CC:DD:EE:FF",
        "aa-bb-cc-dd-ee-ff",
        "aabb.ccdd.eeff",
        "AABBCCDDEEFF",
        "aA:Bb:cC:dD:eE:Ff",
        " aabbccddeeff ",
    ],
)
def test_mac_spellings(spelling: str) -> None:
    assert normalize_mac(spelling) == "aa:bb:cc:dd:ee:ff"


@pytest.mark.parametrize(
    "bad", ["", "aa:bb:cc:dd:ee", "aa:bb:cc:dd:ee:gg", "aabbccddeeff00", "aa:bbc:cd:de:ef:f", 12]
)
def test_bad_macs(bad: object) -> None:
    with pytest.raises(InvalidInput, match="MAC"):
        normalize_mac(bad)  # type: ignore[arg-type]


def test_format_mac() -> None:
    assert format_mac("00:15:65:aa:bb:cc", "-", upper=True) == "00-15-65-AA-BB-CC"


@pytest.mark.parametrize(
    ("raw", "norm"), [("10.0.0.1", "10.0.0.1"), ("2001:DB8::0:1", "2001:db8::1")]
)
def test_ips(raw: str, norm: str) -> None:
    assert normalize_ip(raw) == norm


@pytest.mark.parametrize("bad", ["10.0.1.xx", "010.0.0.1", "300.1.1.1", "", None])
def test_bad_ips(bad: object) -> None:
    with pytest.raises(InvalidInput):
        normalize_ip(bad)


@pytest.mark.parametrize("good", ["dev1", "a.b-c_d:e@f+g", "x" * 128, "abc123"])
def test_ids(good: str) -> None:
    assert validate_id(good) == good


@pytest.mark.parametrize(
    "bad", ['*&!"/invalid _', "../etc", "a/b", ".hidden", "-x", "a..b", "", "x" * 129, None, 5]
)
def test_bad_ids(bad: object) -> None:
    with pytest.raises(InvalidInput):
        validate_id(bad)


def test_provisioning_keys() -> None:
    assert validate_provisioning_key(None) is None and validate_provisioning_key("") is None
    assert validate_provisioning_key("abc-$~.12") == "abc-$~.12"
    for bad in ("a" * 7, "a" * 257, "bad key 1", "bad%key12", 12345678):
        with pytest.raises(InvalidInput):
            validate_provisioning_key(bad)


def test_nat() -> None:
    assert [parse_nat(v) for v in ("0", "1", None, 0, 1, True, False)] == [0, 1, 0, 0, 1, 1, 0]
    for bad in ("2", "yes", 2, [1]):
        with pytest.raises(InvalidInput):
            parse_nat(bad)


def test_mac_groups_without_leading_zeros() -> None:
    assert normalize_mac("0:11:2:a:b:c") == "00:11:02:0a:0b:0c"
