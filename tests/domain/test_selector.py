"""The q/q64 selector language, projection, paging and numeric sort."""

from __future__ import annotations

import base64

import pytest

from provisor.domain.selector import (
    MISSING,
    Selector,
    get_path,
    parse_fields,
    parse_paging,
    parse_selector,
    parse_sort,
    project,
    sort_key,
)
from provisor.errors import InvalidInput

DOC = {
    "id": "d1",
    "mac": "00:11:22:33:44:55",
    "n": 5,
    "tags": ["a", "b"],
    "options": {"switchboard": True},
    "lines": [{"user": "u1"}, {"user": "u2"}],
    "desc": "front desk",
}


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ('{"mac": "00:11:22:33:44:55"}', True),
        ('{"mac": "00:11:22:33:44:56"}', False),
        ('{"n": {"$gt": 4, "$lt": 6}}', True),
        ('{"n": {"$ge": 5, "$le": 5}}', True),
        ('{"n": {"$gt": 5}}', False),
        ('{"n": {"$in": [1, 5]}}', True),
        ('{"n": {"$nin": [1, 5]}}', False),
        ('{"n": {"$ne": 5}}', False),
        ('{"missing": {"$ne": 5}}', True),
        ('{"missing": {"$exists": false}}', True),
        ('{"mac": {"$exists": true}}', True),
        ('{"tags": {"$contains": "a"}}', True),
        ('{"desc": {"$contains": "desk"}}', True),
        ('{"options.switchboard": true}', True),
        ('{"lines.user": "u2"}', True),
        ('{"lines.user": "u3"}', False),
        ('{"tags": "a"}', False),
        ('{"n": {"$gt": "x"}}', False),
        ('{"n": true}', False),
    ],
)
def test_matches(q: str, expected: bool) -> None:
    assert parse_selector(q).matches(DOC) is expected


@pytest.mark.parametrize(
    ("q", "fragment"),
    [
        ("not json", "invalid JSON"),
        ('"00:15:65:11:22:33"', "object"),
        ("[1]", "object"),
        ('{"n": {"$regex": "x"}}', "unknown operator"),
        ('{"n": {"$in": 5}}', "needs a list"),
        ('{"n": {"$exists": "yes"}}', "true or false"),
    ],
)
def test_invalid_selectors(q: str, fragment: str) -> None:
    with pytest.raises(InvalidInput) as err:
        parse_selector(q)
    assert fragment in err.value.message


def test_q64_and_both() -> None:
    q64 = base64.urlsafe_b64encode(b'{"n": 5}').decode().rstrip("=")
    assert parse_selector(None, q64).matches(DOC)
    assert not parse_selector('{"mac": "x"}', q64).matches(DOC)
    with pytest.raises(InvalidInput):
        parse_selector(None, "!!!")


def test_index_hints() -> None:
    sel = parse_selector('{"mac": "m", "ip": {"$in": ["a", "b"]}, "n": {"$gt": 1}}')
    assert sel.index_hints({"mac", "ip", "n"}) == {"mac": ["m"], "ip": ["a", "b"]}
    assert not sel.fully_indexed({"mac", "ip", "n"})
    assert parse_selector('{"mac": "m"}').fully_indexed({"mac"})


def test_projection_paging_sort() -> None:
    assert parse_fields("mac, options.switchboard,") == ["mac", "options.switchboard"]
    assert project(DOC, ["mac", "options.switchboard"]) == {
        "id": "d1",
        "mac": DOC["mac"],
        "options": {"switchboard": True},
    }
    assert get_path(DOC, "nope") is MISSING
    assert parse_paging("5", "0") == (5, None)
    assert parse_paging(None, "10") == (0, 10)
    for bad in (("-1", None), ("x", None), (None, "1.5")):
        with pytest.raises(InvalidInput):
            parse_paging(*bad)
    assert parse_sort("n", "desc") == ("n", True)
    with pytest.raises(InvalidInput):
        parse_sort("n", "sideways")
    values = [10, "b", None, 9, "a", 2.5, MISSING]
    assert sorted(values, key=sort_key) == [None, MISSING, 2.5, 9, 10, "a", "b"]


def test_eq_and_empty() -> None:
    assert Selector().is_empty and not Selector.eq(id="d1").is_empty
    assert Selector.eq(id="d1").matches(DOC)
