"""The event loop the servers run on: uvloop where it is installed, asyncio's otherwise.

uvloop cut the gateway's CPU per proxied request to about 0.8× and raised throughput about
1.3× in the benchmark (bench/RESULTS.md); nothing in the gateway depends on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_async(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
