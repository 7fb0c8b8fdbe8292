"""`python -m bench.calls --baseline-tree REV`: Python calls per request, this tree beside REV's.

CPU per request moves by up to ±9 % from run to run on this shared 2-core machine, which is
as much as the +10 % a refactoring is allowed (bench/RESULTS.md, T). The number of Python
function calls a request makes does not move: it is what the interpreter is asked to do,
and where it grows is where a tree does more work per request. Each tree's gateway runs
(`python -m ccc_gateway run`, the tree its only PYTHONPATH entry, as for T) under cProfile
three times: idle (start-up and shutdown only), under the signed-in page fetch (wrk, the
session cookie) and under the API call (C's fixed rate). The idle run's calls are taken
from each loaded run's, per function, and the rest divided by the requests the middleware
saw (its `_log_access`, called once per request in every tree since the access line exists).
Calls of built-in functions (`len`, `str.lower`, a regex's `fullmatch`) are counted for the
module that made them, so each module's row is the work its own lines ask for.

A count is not a cost (a regex call that scans 2 KB counts one, as does `len`), and
cProfile's own overhead makes its timings useless here; read the rows as "where a tree does
more", then time those functions alone (timeit) to see what it costs.

    python -m bench.calls --baseline-tree edfa90b --seconds 5
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from bench import trees
from bench.api import api_headers
from bench.fixtures import API_ACTION, PAGE_PATH, api_form
from bench.load import measure
from bench.procs import free_port, raise_on_sigterm, wait_port
from bench.rate import fixed_rate
from bench.scenarios import PLAIN_HEADERS
from bench.stack import REPO, Server, Stack, env

# pstats' table: (file, line, function) -> (primitive calls, calls, tottime, cumtime, callers)
Stats = Mapping[tuple[str, int, str], tuple[Any, ...]]
LOADS = ("idle", "page", "api")
REQUEST_MARKER = "_log_access"  # called once per request by the middleware of every tree
LIBRARIES = ("aiohttp", "aiohttp_session", "logging", "multidict", "yarl", "asyncio", "re", "json")


def module_of(file: str) -> str:
    """A short name for a profiled file: the path inside ccc_gateway, a library, or the file."""
    parts = file.split("/")
    if "ccc_gateway" in parts:
        return "/".join(parts[parts.index("ccc_gateway") :])
    for library in LIBRARIES:
        if library in parts[:-1]:
            return f"{library}/{parts[-1]}"
    return parts[-1]


def requests_seen(stats: Stats) -> int:
    return sum(row[1] for (_, _, name), row in stats.items() if name == REQUEST_MARKER)


def function_of(key: tuple[str, int, str]) -> str:
    """A profiled function as `module:name` (`--functions`' rows)."""
    return f"{module_of(key[0])}:{key[2]}"


def calls_by_module(
    loaded: Stats,
    idle: Stats,
    requests: int,
    name: Callable[[tuple[str, int, str]], str] = lambda key: module_of(key[0]),
) -> Counter[str]:
    """Calls per request by module (or by function, with `name=function_of`): `loaded` less
    `idle`, per function; a built-in's calls (file "~") go to the modules (functions) that
    called it, each caller's calls less its calls in `idle` (else the start-up's callers, a
    regex compiler's `len()`, would take a share of the requests' calls)."""
    out: Counter[str] = Counter()
    for key, row in loaded.items():
        calls = row[1] - (idle[key][1] if key in idle else 0)
        if calls <= 0:
            continue
        if key[0] != "~":
            out[name(key)] += calls / requests
            continue
        before = idle[key][4] if key in idle else {}
        for caller, value in row[4].items():
            count = _count(value) - (_count(before[caller]) if caller in before else 0)
            if count > 0:
                out[name(caller)] += count / requests
    return out


def _count(value: Any) -> int:
    # pstats keeps a caller's entry as a 4-tuple (calls, calls, time, time), or a bare count.
    return int(value[1]) if isinstance(value, tuple) else int(value)


def _profiled(stack: Stack, name: str, tree: Path, load: str, seconds: float) -> Stats:
    """Run `tree`'s gateway under cProfile with `load`; its stats once it has stopped."""
    import pstats

    port = free_port()
    config = stack.gateway_config(f"calls-{name}-{load}", port)
    output = stack.workdir / f"calls-{name}-{load}.prof"
    argv = [sys.executable, "-m", "cProfile", "-o", str(output), "-m", "ccc_gateway"]
    log = open(stack.workdir / "logs" / f"calls-{name}-{load}.log", "wb")
    proc = subprocess.Popen(
        [*argv, "run", "--config", str(config)], cwd=tree, env=env(tree), stdout=log, stderr=log
    )
    try:
        wait_port(port, proc, timeout=60)
        server = Server(name, port, proc.pid)
        if load == "page":
            headers = {**PLAIN_HEADERS, "Cookie": stack.session.cookie}
            measure(
                server.url(PAGE_PATH),
                proc.pid,
                connections=16,
                seconds=seconds,
                warmup=0,
                headers=headers,
                workdir=stack.workdir,
            )
        elif load == "api":
            fixed_rate(
                server.url(f"/aliyun/ccc/api?action={API_ACTION}"),
                rate=200,
                seconds=seconds,
                body=api_form(),
                headers=api_headers(server, stack.session.cookie),
            )
        else:
            time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)  # a graceful stop: cProfile writes its file
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    return pstats.Stats(str(output)).stats  # type: ignore[attr-defined, no-any-return]


def table(before: dict[str, Counter[str]], after: dict[str, Counter[str]], top: int = 25) -> str:
    lines = []
    for load in ("page", "api"):
        old, new = before[load], after[load]
        lines.append(f"\n{load}: {sum(old.values()):.0f} -> {sum(new.values()):.0f} calls/request")
        names = sorted(set(old) | set(new), key=lambda m: -max(old[m], new[m]))
        for name in [n for n in names if max(old[n], new[n]) >= 2.0][:top]:
            lines.append(f"  {old[name]:7.1f} {new[name]:7.1f}  {name}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.calls", description=__doc__)
    parser.add_argument("--baseline-tree", metavar="REV", required=True)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--functions",
        metavar="PREFIX",
        help="rows by function instead of by module, for modules whose name starts with "
        "PREFIX (e.g. ccc_gateway/ccc)",
    )
    parser.add_argument(
        "--keep",
        metavar="DIR",
        type=Path,
        help="copy the cProfile files (calls-TREE-LOAD.prof) into DIR, for pstats' callers",
    )
    args = parser.parse_args(argv)
    row_of = function_of if args.functions is not None else (lambda key: module_of(key[0]))
    raise_on_sigterm()
    workdir = Path(tempfile.mkdtemp(prefix="ccc-bench-calls-"))
    stack = Stack.create(workdir)
    results: dict[str, dict[str, Counter[str]]] = {}
    try:
        stack.start_upstream()
        stack.start_pop()
        with trees.worktree(args.baseline_tree) as tree:
            for name, path in (("before", tree), ("current", REPO)):
                stats = {load: _profiled(stack, name, path, load, args.seconds) for load in LOADS}
                results[name] = {
                    load: calls_by_module(
                        stats[load], stats["idle"], requests_seen(stats[load]), row_of
                    )
                    for load in ("page", "api")
                }
    finally:
        stack.close()
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=True)
            for prof in workdir.glob("*.prof"):
                shutil.copy(prof, args.keep / prof.name)
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"Python calls per request, {trees.describe(args.baseline_tree)} -> this tree")
    if args.functions is not None:
        for tree in results.values():
            for load, counts in tree.items():
                tree[load] = Counter(
                    {k: v for k, v in counts.items() if k.startswith(args.functions)}
                )
    print(
        table(results["before"], results["current"], top=60 if args.functions is not None else 25)
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
