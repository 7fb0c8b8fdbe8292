"""Where the gateway's CPU goes under load: py-spy sampling, summarised as text.

py-spy cannot attach to a running process in this sandbox ("Failed to find python version"),
so the profiled gateway is started *under* py-spy (`py-spy record -- python -m
bench.gateway_proc …`) and stopped by a SIGTERM to the Python child alone, after which py-spy
writes its samples. Idle frames (the loop waiting in epoll) are not sampled, so percentages
are shares of busy CPU. The summary has the hottest leaf functions, the inclusive share of
each gateway function, and a breakdown by layer (TLS, event loop, HTTP server, client, …).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.procs import tree_pids

# Layers, by where the leaf frame's file lives; first match wins.
LAYERS = (
    ("TLS (ssl, sslproto)", ("ssl.py", "sslproto.py")),
    ("logging + redaction", ("logging/", "ccc_gateway/ops/log.py", "re/", "re.py")),
    ("session cookie", ("session", "signin.py", "cryptography/", "fernet.py", "zlib")),
    ("widget injection", ("ccc_gateway/softphone/inject.py", "proxy_body.py")),
    ("proxy header rules", ("proxy_headers.py",)),
    ("metrics (prometheus_client)", ("prometheus_client", "ccc_gateway/ops/metrics.py")),
    (
        "POP signing + reshaping",
        ("ccc_gateway/ccc/pop/", "ccc_gateway/ccc/client.py", "urllib/parse", "hmac"),
    ),
    ("JSON", ("json/",)),
    ("gateway, other", ("ccc_gateway/",)),
    ("aiohttp client (to upstream)", ("aiohttp/client", "aiohttp/connector", "aiohttp/streams")),
    ("aiohttp server + HTTP", ("aiohttp/",)),
    ("multidict/yarl/cookies", ("multidict", "yarl", "http/cookies", "propcache")),
    ("asyncio event loop + selectors", ("asyncio/", "uvloop", "selectors.py")),
)


def pyspy_binary() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def start_profiled(
    argv: list[str], output: Path, env: dict[str, str], log: Path, rate: int = 250
) -> subprocess.Popen[bytes]:
    binary = pyspy_binary()
    if binary is None:
        raise RuntimeError("py-spy is not installed: .venv/bin/pip install 'py-spy>=0.3.14'")
    with open(log, "ab") as sink:
        return subprocess.Popen(
            [
                binary,
                "record",
                "--format",
                "raw",
                "--nolineno",
                "--nonblocking",
                "--rate",
                str(rate),
                "--output",
                str(output),
                "--",
                *argv,
            ],
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def python_child(pyspy: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = [p for p in tree_pids(pyspy.pid) if p != pyspy.pid]
        if children:
            return children[0]
        time.sleep(0.05)
    raise RuntimeError("py-spy did not start the gateway")


def finish(pyspy: subprocess.Popen[bytes], child: int) -> None:
    """Stop the profiled process alone; py-spy then writes its samples and exits."""
    try:
        os.kill(child, signal.SIGTERM)
        pyspy.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    finally:
        if pyspy.poll() is None:
            os.killpg(pyspy.pid, signal.SIGKILL)
            pyspy.wait(5)


def _startup(frames: tuple[str, ...]) -> bool:
    """Import and start-up work (the profiled process is sampled from its first instruction)."""
    return any(
        "importlib" in f
        or (i > 3 and f.startswith("<module>"))
        or "create_app" in f
        or "gateway_listeners" in f
        or "_on_startup" in f
        or "AppRunner.setup" in f
        for i, f in enumerate(frames)
    )


def _stacks(path: Path) -> tuple[Counter[tuple[str, ...]], int]:
    """Steady-state stacks with their sample counts, and how many start-up samples were left out."""
    stacks: Counter[tuple[str, ...]] = Counter()
    skipped = 0
    for line in path.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        if not frames or not count.isdigit():
            continue
        stack = tuple(frames.split(";"))
        if _startup(stack):
            skipped += int(count)
        else:
            stacks[stack] += int(count)
    return stacks, skipped


def _layer(frame: str) -> str:
    for name, needles in LAYERS:
        if any(needle in frame for needle in needles):
            return name
    return "other"


def summarise(path: Path, title: str, top: int = 20) -> str:
    stacks, skipped = _stacks(path)
    total = sum(stacks.values())
    if not total:
        return f"## {title}\n\nno samples\n"
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    layers: Counter[str] = Counter()
    for frames, count in stacks.items():
        leaf[frames[-1]] += count
        layers[_layer(frames[-1])] += count
        for frame in set(frames):
            inclusive[frame] += count

    def pct(n: int) -> str:
        return f"{100 * n / total:5.1f} %"

    lines = [f"## {title}", "", f"{total} busy samples ({skipped} of start-up left out).", ""]
    lines += ["By layer (leaf frame):", ""]
    lines += [f"    {pct(n)}  {name}" for name, n in layers.most_common()]
    lines += ["", f"Hottest leaf functions (top {top}):", ""]
    lines += [f"    {pct(n)}  {frame}" for frame, n in leaf.most_common(top)]
    ours = [(f, n) for f, n in inclusive.most_common() if "ccc_gateway/" in f or "logging/" in f]
    lines += ["", "Inclusive share of gateway and logging functions:", ""]
    lines += [f"    {pct(n)}  {frame}" for frame, n in ours[:top]]
    return "\n".join(lines) + "\n"
