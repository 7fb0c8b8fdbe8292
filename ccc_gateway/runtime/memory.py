"""Giving freed heap memory back to the system (glibc), so a worker's RSS follows its load down.

A burst of TLS connections allocates and frees a lot of C memory (uvloop reads each TLS
connection through a 256 KiB buffer, OpenSSL keeps its records, aiohttp its parsers).
glibc's malloc keeps what was freed inside its heap for reuse and only returns the very top
of it: in the benchmark's E scenario RSS climbed 15–20 MiB with every 512-connection run
while Python's own object and block counts stayed flat (bench/RESULTS.md). `malloc_trim(0)`
returns the free pages anywhere in the heap; with it RSS went back to ~68 MiB after each run.

The trim runs in a worker thread (ctypes releases the GIL, and the event loop's small
objects come from Python's own allocator), at most once a second and only when enough memory
is free for it to matter. On other C libraries (musl, macOS) this does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import sys
from collections.abc import Callable

log = logging.getLogger(__name__)

# Allocations (less deallocations) of container objects between two young collections.
# Python's default of 700 runs one every ~170 proxied pages on the bench, and each one moves
# whatever requests are in flight at that moment into the older generations; ten times
# that still collects reference cycles within seconds under load.
GC_YOUNG_THRESHOLD = 7000
TRIM_INTERVAL = 1.0  # seconds between looks at the heap
TRIM_MIN_FREE = 4 * 1024 * 1024  # free bytes inside the heap worth a trim


class _MallInfo2(ctypes.Structure):
    # struct mallinfo2 (glibc ≥ 2.33): every field a size_t.
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd",
            "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def heap_trimmer() -> Callable[[], bool] | None:
    """A function that trims glibc's heap when it holds enough free memory; None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        mallinfo2, malloc_trim = libc.mallinfo2, libc.malloc_trim
    except (OSError, AttributeError):  # not glibc, or older than 2.33
        return None
    mallinfo2.restype = _MallInfo2
    mallinfo2.argtypes = []
    malloc_trim.restype = ctypes.c_int
    malloc_trim.argtypes = [ctypes.c_size_t]

    # Trimmed pages stay counted as free chunks, so what matters is how much was freed since
    # the last trim; the baseline follows the free memory down as it is reused.
    baseline = 0

    def trim() -> bool:
        nonlocal baseline
        free = _free_inside(mallinfo2())
        if free - baseline < TRIM_MIN_FREE:
            baseline = min(baseline, free)
            return False
        malloc_trim(0)
        baseline = _free_inside(mallinfo2())
        return True

    return trim


def _free_inside(info: _MallInfo2) -> int:
    # fordblks: free bytes in the heap; keepcost: those at its top, which free() returns.
    return int(info.fordblks - info.keepcost)


async def trim_periodically(interval: float = TRIM_INTERVAL) -> None:
    """Run until cancelled, trimming the heap in a thread whenever it is worth it."""
    trim = heap_trimmer()
    if trim is None:
        return
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval)
        await loop.run_in_executor(None, trim)


def settle_after_start() -> None:
    """Once the servers listen: keep start-up objects out of every later garbage collection.

    What exists at that point (modules, classes, the app, its configuration, key rings and
    caches' containers) lives as long as the process, yet a full collection walks all of it:
    on the bench a full collection of the gateway's ~55,000 objects stopped the event loop
    for 20–30 ms, which was the whole of some requests' p99. `gc.freeze` moves them to a
    generation the collector never visits (it only stops them being collected, which they
    never would be). The young generation's threshold is raised at the same time (see
    GC_YOUNG_THRESHOLD).
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)
