"""wazo's dotted ACL matching."""

from __future__ import annotations

import pytest

from provisor.auth.acl import acl_matches
from provisor.auth.base import format_acl, token_fingerprint


@pytest.mark.parametrize(
    ("granted", "required", "expected"),
    [
        (["provd.#"], "provd.dev_mgr.devices.read", True),
        (["provd.#"], "provd", True),
        (["provd.#"], "provdx.read", False),
        (["#"], "anything.at.all", True),
        (["provd.*.read"], "provd.status.read", True),
        (["provd.*.read"], "provd.dev_mgr.devices.read", False),
        (["provd.dev_mgr.devices.*.read"], "provd.dev_mgr.devices.abc_def.read", True),
        (["provd.dev_mgr.#.read"], "provd.dev_mgr.devices.x.read", True),
        (["provd.dev_mgr.#.read"], "provd.dev_mgr.devices.x.update", False),
        (["provd.#", "!provd.configure.#"], "provd.configure.t.provisioning_key.update", False),
        (["provd.#", "!provd.configure.#"], "provd.dev_mgr.read", True),
        ([], "provd.read", False),
        (["provd.read"], "provd.read", True),
        (["provd.read"], "provd.reads", False),
        (["provd.r*"], "provd.read", True),
    ],
)
def test_acl_matches(granted: list[str], required: str, expected: bool) -> None:
    assert acl_matches(granted, required) is expected


def test_format_acl_replaces_dots_in_values() -> None:
    assert (
        format_acl("provd.dev_mgr.devices.{device_id}.read", device_id="a.b")
        == "provd.dev_mgr.devices.a_b.read"
    )


def test_fingerprint_hides_token() -> None:
    fp = token_fingerprint("secret-token")
    assert len(fp) == 12 and "secret" not in fp
