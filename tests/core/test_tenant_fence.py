"""The tenant-deletion fence: requests on a tenant being deleted wait, but never for ever."""

from __future__ import annotations

import asyncio

import pytest

from provisor.errors import Unavailable
from provisor.tenant_fence import TenantFence


async def test_a_request_waits_for_the_deletion_and_only_on_its_tenants() -> None:
    fence = TenantFence()
    release = asyncio.Event()

    async def delete() -> None:
        async with fence.deleting("t1"):
            await release.wait()

    deletion = asyncio.create_task(delete())
    await asyncio.sleep(0)
    assert fence.fenced({"t1", "t2"}) and not fence.fenced({"t2"})
    await fence.wait({"t2"})  # another tenant: no wait
    waiter = asyncio.create_task(fence.wait({"t1"}))
    await asyncio.sleep(0.05)
    assert not waiter.done()
    release.set()
    await waiter
    await deletion
    assert not fence.fenced({"t1"})


async def test_a_stuck_deletion_answers_503_after_the_limit() -> None:
    fence = TenantFence(wait_limit=0.2)
    async with fence.deleting("t1"):
        with pytest.raises(Unavailable, match="being deleted"):
            await fence.wait({"t1"})
    await fence.wait({"t1"})  # the deletion ended: no wait


async def test_a_failed_deletion_lifts_its_fence() -> None:
    fence = TenantFence()
    with pytest.raises(RuntimeError):
        async with fence.deleting("t1"):
            raise RuntimeError("database gone")
    assert not fence.fenced({"t1"})
