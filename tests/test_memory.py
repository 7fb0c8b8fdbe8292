"""Heap trimming: glibc's freed memory goes back to the system; elsewhere nothing happens."""

from __future__ import annotations

import asyncio
import gc
import sys
import weakref

import pytest

from ccc_gateway.runtime import memory as memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_trimmer_returns_freed_memory_only_when_worth_it():
    """After freeing many blocks inside the heap the trimmer trims; with little free it skips."""
    trim = memory.heap_trimmer()
    if trim is None:
        pytest.skip("not glibc ≥ 2.33")
    trim()  # start from a trimmed heap
    assert trim() is False
    blocks = [bytearray(64 * 1024) for _ in range(400)]  # below the mmap threshold: heap
    del blocks[:-1]  # keep the topmost, so the free memory is not at the heap's top
    assert trim() is True


async def test_periodic_trim_stops_when_cancelled(monkeypatch):
    """The background task runs until cancelled and never raises on its own."""
    calls: list[int] = []
    monkeypatch.setattr(memory, "heap_trimmer", lambda: lambda: calls.append(1) or False)
    task = asyncio.create_task(memory.trim_periodically(interval=0.01))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls


def test_settle_after_start_freezes_start_up_objects_and_raises_young_threshold():
    """Start-up objects leave the collector's reach; later garbage cycles are still collected."""
    threshold = gc.get_threshold()
    try:
        memory.settle_after_start()
        assert gc.get_freeze_count() > 1000  # at least the modules' objects of this process
        assert gc.get_threshold() == (memory.GC_YOUNG_THRESHOLD, *threshold[1:])

        class Node:
            pass

        node = Node()
        node.me = node  # a cycle created after the freeze: still collectable
        collected = [False]
        weakref.finalize(node, lambda: collected.__setitem__(0, True))
        del node
        gc.collect()
        assert collected[0]
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
