"""Open-loop load at a fixed rate (scenario C): wrk2's method in a few lines of asyncio.

wrk is closed-loop (each connection waits for its answer before sending again), which hides
latency at a fixed rate (coordinated omission) and cannot hold 200 calls/s. Here request i
is *due* at start + i/rate whether or not earlier ones have finished, and its latency is
counted from when it was due, not from when it was sent, so a stall in the gateway shows up
in p99 instead of silently lowering the rate.

The client holds a fixed set of keep-alive connections, all opened and used before the
measured interval starts, like a browser tab that has been open a while (and like wrk2's
fixed connections). Otherwise the measurement measures itself: every burst of concurrency
opened new connections, whose TLS handshakes (a few ms of the gateway's CPU each) landed
in the calls' latency and in the gateway's CPU per call. A call finding every connection
busy waits for one, and that wait counts in its latency. The run is bounded: `seconds ×
rate` requests. The client runs on uvloop when it is installed (its own CPU per call is
then smaller and steadier), in its own process, apart from the server measured.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp


@dataclass
class RateResult:
    sent: int
    ok: int
    errors: int
    latencies_ms: list[float]  # sorted, successful calls only
    seconds: float
    sample: bytes  # one answer body, to check that the call did what it should
    cpu_seconds: float | None = None  # the `cpu` callable's growth over the measured interval

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        index = min(len(self.latencies_ms) - 1, round(p / 100 * (len(self.latencies_ms) - 1)))
        return self.latencies_ms[index]


class _Load:
    def __init__(
        self, client: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
    ):
        self.client = client
        self.url = url
        self.body = body
        self.headers = headers

    async def call(self) -> tuple[int, bytes]:
        async with self.client.post(self.url, data=self.body, headers=self.headers) as response:
            return response.status, await response.read()

    async def at_rate(self, rate: float, seconds: float) -> RateResult:
        latencies: list[float] = []
        sample = b""
        errors = 0

        async def one(due: float) -> None:
            nonlocal sample, errors
            try:
                status, answer = await self.call()
            except (aiohttp.ClientError, TimeoutError):
                errors += 1
                return
            if status != 200:
                errors += 1
            else:
                latencies.append((time.perf_counter() - due) * 1000)
            sample = sample or answer

        total = int(rate * seconds)
        tasks = []
        start = time.perf_counter() + 0.05
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
        latencies.sort()
        return RateResult(total, len(latencies), errors, latencies, elapsed, sample)


async def _run(
    url: str,
    *,
    rate: float,
    seconds: float,
    body: bytes,
    headers: dict[str, str],
    connections: int,
    warmup: float,
    cpu: Callable[[], float] | None,
) -> RateResult:
    context = ssl.create_default_context()
    context.check_hostname = False  # loopback, self-signed: the gateway is what is measured
    context.verify_mode = ssl.CERT_NONE
    connector = aiohttp.TCPConnector(limit=connections, ssl=context, keepalive_timeout=300)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
        load = _Load(client, url, body, headers)
        # Open every connection (as many calls at once as there are connections), then run at
        # the rate for a while: handshakes, first-call caches and pools are done before it counts.
        for _ in range(2):
            await asyncio.gather(*(load.call() for _ in range(connections)))
        if warmup > 0:
            await load.at_rate(rate, warmup)
        cpu0 = cpu() if cpu is not None else 0.0
        result = await load.at_rate(rate, seconds)
        if cpu is not None:
            result.cpu_seconds = cpu() - cpu0
    return result


def fixed_rate(
    url: str,
    *,
    rate: float,
    seconds: float,
    body: bytes,
    headers: dict[str, str],
    connections: int = 16,
    warmup: float = 1.0,
    cpu: Callable[[], float] | None = None,
) -> RateResult:
    """POST `body` to `url` at `rate` per second for `seconds`; latency from the due time.

    Before that: `connections` keep-alive connections opened and `warmup` seconds at the
    rate, not counted. `cpu` (e.g. a server's CPU seconds so far) is read just before and
    just after the measured interval.
    """
    main = _run(
        url,
        rate=rate,
        seconds=seconds,
        body=body,
        headers=headers,
        connections=connections,
        warmup=warmup,
        cpu=cpu,
    )
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)
