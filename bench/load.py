"""Closed-loop load with wrk, and what the server under test spent on it.

`measure()` runs a warm-up, then one duration-limited wrk run, reading the server's CPU time
(its whole process tree) before and after and sampling its RSS while wrk runs. wrk's Lua
`done` hook prints the numbers as one JSON line, so nothing is scraped from its prose.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.procs import cpu_seconds, rss_bytes, tree_pids

WRK_THREADS = 1  # one core for the load generator, the other for the server (2-core machine)

_REPORT_LUA = """\
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nBENCH {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, "read": %d, '
    .. '"write": %d, "status": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass
class LoadResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int  # socket errors and non-2xx/3xx answers
    cpu_s: float  # CPU seconds the server's processes used during the run
    rss_peak: int  # bytes, the highest sum over the server's processes seen during the run
    # CPU seconds of the rest of the hop during the run: wrk plus the processes passed as
    # `others` (the upstream); what the machine's cores spend besides the server measured.
    load_cpu_s: float = 0.0
    bytes_read: int = 0  # what wrk read, headers included: tells a page from a redirect

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_s / self.requests * 1e6 if self.requests else float("nan")


def wrk_binary() -> str | None:
    return shutil.which("wrk")


def _script(workdir: Path) -> Path:
    path = workdir / "report.lua"
    if not path.exists():
        path.write_text(_REPORT_LUA)
    return path


def run_wrk(
    url: str, *, connections: int, seconds: float, headers: dict[str, str], workdir: Path
) -> dict[str, int]:
    """One wrk run; its summary as a dict (raises if wrk failed or printed no summary)."""
    argv = [
        wrk_binary() or "wrk",
        f"-t{WRK_THREADS}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "5s",
        "-s",
        str(_script(workdir)),
    ]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    for line in done.stdout.splitlines():
        if line.startswith("BENCH "):
            return dict(json.loads(line[6:]))
    raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")


class _RssSampler(threading.Thread):
    def __init__(self, root: int, every: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.root, self.every, self.peak = root, every, 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.every):
            self.peak = max(self.peak, rss_bytes(tree_pids(self.root)))


def measure(
    url: str,
    server_pid: int,
    *,
    connections: int,
    seconds: float,
    warmup: float,
    headers: dict[str, str],
    workdir: Path,
    others: Iterable[int] = (),
) -> LoadResult:
    """Warm up, then load `url` for `seconds` and account the server tree's CPU and RSS.

    Also accounted: the CPU of wrk itself (a child reaped by the run, so the children's
    rusage grows by exactly its time) and of the `others` pids.
    """
    if warmup > 0:
        run_wrk(url, connections=connections, seconds=warmup, headers=headers, workdir=workdir)
    pids = tree_pids(server_pid)
    sampler = _RssSampler(server_pid)
    others = list(others)
    cpu_before = cpu_seconds(pids)
    load_before = _children_cpu() + cpu_seconds(others)
    sampler.start()
    started = time.monotonic()
    summary = run_wrk(
        url, connections=connections, seconds=seconds, headers=headers, workdir=workdir
    )
    sampler.stopped.set()
    sampler.join()
    # Workers are long-lived: the pid list taken before the run still covers them.
    cpu = cpu_seconds(pids) - cpu_before
    load_cpu = _children_cpu() + cpu_seconds(others) - load_before
    elapsed = summary["duration_us"] / 1e6 or (time.monotonic() - started)
    errors = sum(summary[k] for k in ("connect", "read", "write", "status", "timeout"))
    return LoadResult(
        requests=summary["requests"],
        seconds=elapsed,
        rps=summary["requests"] / elapsed,
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        errors=errors,
        cpu_s=cpu,
        rss_peak=max(sampler.peak, rss_bytes(tree_pids(server_pid))),
        load_cpu_s=load_cpu,
        bytes_read=summary["bytes"],
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
