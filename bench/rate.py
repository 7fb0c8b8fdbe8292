"""Open-loop load at a fixed rate (scenario C): wrk2's method in a few lines of asyncio.

wrk is closed-loop (each connection waits for its answer before sending again), which hides
latency at a fixed rate (coordinated omission) and cannot hold 200 calls/s. Here request i
is *due* at start + i/rate whether or not earlier ones have finished, and its latency is
counted from when it was due, not from when it was sent, so a stall in the gateway shows up
in p99 instead of silently lowering the rate. The run is bounded: `seconds × rate` requests,
at most `max_in_flight` at once (more would mean the server is far past saturation; those
are counted as late and still measured from their due time).
"""

from __future__ import annotations

import asyncio
import ssl
import time
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

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        index = min(len(self.latencies_ms) - 1, round(p / 100 * (len(self.latencies_ms) - 1)))
        return self.latencies_ms[index]


async def _run(
    url: str,
    *,
    rate: float,
    seconds: float,
    body: bytes,
    headers: dict[str, str],
    max_in_flight: int,
) -> RateResult:
    context = ssl.create_default_context()
    context.check_hostname = False  # loopback, self-signed: the gateway is what is measured
    context.verify_mode = ssl.CERT_NONE
    connector = aiohttp.TCPConnector(limit=max_in_flight, ssl=context)
    latencies: list[float] = []
    sample = b""
    errors = 0
    gate = asyncio.Semaphore(max_in_flight)

    async def one(client: aiohttp.ClientSession, due: float) -> None:
        nonlocal sample, errors
        try:
            async with gate, client.post(url, data=body, headers=headers) as response:
                answer = await response.read()
                if response.status != 200:
                    errors += 1
                    sample = sample or answer
                    return
            latencies.append((time.perf_counter() - due) * 1000)
            sample = sample or answer
        except (aiohttp.ClientError, TimeoutError):
            errors += 1

    total = int(rate * seconds)
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
        tasks = []
        start = time.perf_counter() + 0.05
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(client, due)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - start
    latencies.sort()
    return RateResult(total, len(latencies), errors, latencies, elapsed, sample)


def fixed_rate(
    url: str,
    *,
    rate: float,
    seconds: float,
    body: bytes,
    headers: dict[str, str],
    max_in_flight: int = 64,
) -> RateResult:
    """POST `body` to `url` at `rate` per second for `seconds`; latency from the due time."""
    return asyncio.run(
        _run(
            url, rate=rate, seconds=seconds, body=body, headers=headers, max_in_flight=max_in_flight
        )
    )
