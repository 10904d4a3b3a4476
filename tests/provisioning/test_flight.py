"""Single flight and batched loads (the storm helpers), with real asyncio tasks."""

from __future__ import annotations

import asyncio

import pytest

from provisor.flight import BatchLoader


async def test_keys_asked_together_share_one_load() -> None:
    calls: list[list[str]] = []

    async def load(keys: list[str]) -> dict[str, int]:
        calls.append(sorted(keys))
        return {k: len(k) for k in keys if k != "missing"}

    loader: BatchLoader[str, int | None] = BatchLoader(load, None)
    results = await asyncio.gather(*(loader.get(k) for k in ["a", "bb", "a", "missing", "ccc"]))
    assert results == [1, 2, 1, None, 3]
    assert calls == [["a", "bb", "ccc", "missing"]]
    assert await loader.get("dddd") == 4 and len(calls) == 2  # a later key: a new batch


async def test_batches_are_bounded() -> None:
    sizes: list[int] = []

    async def load(keys: list[int]) -> dict[int, int]:
        sizes.append(len(keys))
        return {k: k for k in keys}

    loader: BatchLoader[int, int] = BatchLoader(load, -1, max_batch=3)
    assert await asyncio.gather(*(loader.get(i) for i in range(7))) == list(range(7))
    assert sizes == [3, 3, 1]


async def test_a_failing_load_fails_its_callers_only() -> None:
    async def load(keys: list[str]) -> dict[str, str]:
        if "bad" in keys:
            raise RuntimeError("database gone")
        return {k: k.upper() for k in keys}

    loader: BatchLoader[str, str] = BatchLoader(load, "")
    results = await asyncio.gather(loader.get("x"), loader.get("bad"), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await loader.get("y") == "Y"


async def test_a_cancelled_caller_does_not_cancel_the_batch() -> None:
    release = asyncio.Event()

    async def load(keys: list[str]) -> dict[str, str]:
        await release.wait()
        return {k: "ok" for k in keys}

    loader: BatchLoader[str, str] = BatchLoader(load, "")
    first = asyncio.create_task(loader.get("k"))
    second = asyncio.create_task(loader.get("k"))
    await asyncio.sleep(0.01)
    first.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await second == "ok"
