"""`--baseline-tree REV` (rows "T"): this tree's gateway beside REV's, in one run.

REV is checked out into a temporary `git worktree` (detached, removed afterwards); each tree's
gateway runs as `python -m ccc_gateway run --config …` with that tree as its working directory
and only PYTHONPATH entry, both on the same config (the bench's, which both trees must accept:
`check-config` of REV's tree says so first), the same upstream, fake POP and session cookie.
They are measured in alternating rounds, the order flipped every round, on:

  B   the signed-in page as a fetch with the session cookie (session lookup only)
  B   the signed-in page as a navigation (session lookup + widget injection)
  C   the API call at C's fixed rate (CPU per call)

and the ratio current/before is printed for CPU per request and req/s: the refactoring's
check is "signed-in page and API call CPU per request within +10 % of before".
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bench.api import api_headers
from bench.fixtures import API_ACTION, NAVIGATION_HEADERS, api_form
from bench.load import LoadResult
from bench.procs import cpu_seconds, tree_pids
from bench.rate import fixed_rate
from bench.report import Row, Target
from bench.scenarios import PLAIN_HEADERS, WIDGET, Options, Outcome, _check_page, _load, pooled
from bench.stack import REPO, Server, Stack

CPU_LIMIT = 1.10  # current CPU per request ≤ 1.10× before


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(REPO), *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def describe(rev: str) -> str:
    """REV as `<short hash> <subject>` (raises with git's message when it names no commit)."""
    text = _git("log", "-1", "--format=%h %s", _git("rev-parse", "--verify", f"{rev}^{{commit}}"))
    return text if len(text) <= 72 else text[:71] + "…"


@contextlib.contextmanager
def worktree(rev: str) -> Iterator[Path]:
    """A detached temporary worktree of `rev`, removed on the way out."""
    commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
    parent = Path(tempfile.mkdtemp(prefix="ccc-bench-tree-"))
    path = parent / "tree"
    _git("worktree", "add", "--detach", "--quiet", str(path), commit)
    try:
        yield path
    finally:
        with contextlib.suppress(RuntimeError):
            _git("worktree", "remove", "--force", str(path))
        shutil.rmtree(parent, ignore_errors=True)


@dataclass
class _Calls:
    """C's open-loop runs of one subject, pooled: calls, seconds, CPU, latency samples."""

    ok: int = 0
    errors: int = 0
    seconds: float = 0.0
    cpu_s: float = 0.0
    p50s: list[float] = field(default_factory=list)
    p99s: list[float] = field(default_factory=list)

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / max(self.ok, 1) * 1e6


def _api_call(server: Server, stack: Stack, opts: Options, into: _Calls) -> None:
    tree = tree_pids(server.pid)
    result = fixed_rate(
        server.url(f"/aliyun/ccc/api?action={API_ACTION}"),
        rate=opts.rate,
        seconds=opts.seconds,
        body=api_form(),
        headers=api_headers(server, stack.session.cookie),
        cpu=lambda: cpu_seconds(tree),
    )
    if not result.ok or b"skillLevels" not in result.sample:
        raise RuntimeError(f"T: {server.name}'s API call failed: {result.sample[:300]!r}")
    assert result.cpu_seconds is not None
    into.ok += result.ok
    into.errors += result.errors
    into.seconds += result.seconds
    into.cpu_s += result.cpu_seconds
    into.p50s.append(result.percentile(50))
    into.p99s.append(result.percentile(99))


def compare_trees(stack: Stack, rev: str, opts: Options, out: Outcome) -> None:
    label = describe(rev)
    cookie = {**PLAIN_HEADERS, "Cookie": stack.session.cookie}
    navigation = {**NAVIGATION_HEADERS, "Cookie": stack.session.cookie}
    with worktree(rev) as tree:
        current = stack.start_tree_gateway("current", REPO)
        before = stack.start_tree_gateway(f"before, {label.split()[0]}", tree)
        subjects = [current, before]
        pages: dict[str, dict[int, list[LoadResult]]] = {"cookie": {}, "navigation": {}}
        calls: dict[int, _Calls] = {s.pid: _Calls() for s in subjects}
        loads: list[tuple[str, Callable[[Server], None]]] = [
            (kind, _page_load(stack, opts, headers, pages[kind]))
            for kind, headers in (("cookie", cookie), ("navigation", navigation))
        ]
        loads.append(("call", lambda s: _api_call(s, stack, opts, calls[s.pid])))
        try:
            for server in subjects:
                _check_page(server, cookie)
            injected = [WIDGET in _check_page(server, navigation) for server in subjects]
            if injected[0] != injected[1]:
                out.notes.append(
                    "T: only the "
                    + ("current" if injected[0] else "before")
                    + " tree put the widget into the navigated page: its rows compare unequal work."
                )
            for round_ in range(opts.rounds):
                for _, load in loads:
                    for server in subjects if round_ % 2 == 0 else subjects[::-1]:
                        load(server)
        finally:
            for server in subjects:
                stack.stop(server)
    _rows(out, label, current, before, pages, calls)


def _page_load(
    stack: Stack, opts: Options, headers: dict[str, str], into: dict[int, list[LoadResult]]
) -> Callable[[Server], None]:
    def load(server: Server) -> None:
        into.setdefault(server.pid, []).append(_load(stack, server, opts, headers))

    return load


def _rows(
    out: Outcome,
    label: str,
    current: Server,
    before: Server,
    pages: dict[str, dict[int, list[LoadResult]]],
    calls: dict[int, _Calls],
) -> None:
    summary = []
    for kind, subject in (("cookie", "session cookie"), ("navigation", "session + widget")):
        now, then = pooled(pages[kind][current.pid]), pooled(pages[kind][before.pid])
        cpu = now.cpu_us_per_request / then.cpu_us_per_request
        rps = now.rps / then.rps
        out.rows += [
            Row.of("T", f"{before.name}, {subject}", then, ratio=1.0),
            Row.of(
                "T",
                f"{current.name}, {subject}",
                now,
                ratio=rps,
                note=f"CPU/req {cpu:.2f}× before",
            ),
        ]
        out.targets.append(
            Target(
                "T",
                f"signed-in page ({subject}) CPU/req ≤ {CPU_LIMIT:.2f}× before",
                f"{cpu:.2f}× ({now.cpu_us_per_request:.0f} vs {then.cpu_us_per_request:.0f} µs)",
                cpu <= CPU_LIMIT,
            )
        )
        summary.append(f"page with {subject}: CPU {cpu:.2f}×, req/s {rps:.2f}×")
    now_c, then_c = calls[current.pid], calls[before.pid]
    for server, c in ((before, then_c), (current, now_c)):
        out.rows.append(
            Row(
                "T",
                f"{server.name}, API call",
                c.ok / c.seconds,
                sorted(c.p50s)[len(c.p50s) // 2],
                sorted(c.p99s)[len(c.p99s) // 2],
                c.cpu_us,
                note=(f"{c.errors} errors; " if c.errors else "")
                + ("" if server is before else f"CPU/call {now_c.cpu_us / then_c.cpu_us:.2f}×"),
            )
        )
    cpu_c = now_c.cpu_us / then_c.cpu_us
    out.targets.append(
        Target(
            "T",
            f"API call CPU/call ≤ {CPU_LIMIT:.2f}× before",
            f"{cpu_c:.2f}× ({now_c.cpu_us:.0f} vs {then_c.cpu_us:.0f} µs)",
            cpu_c <= CPU_LIMIT,
        )
    )
    summary.append(f"API call: CPU {cpu_c:.2f}×")
    out.notes.append(f"T: current/before ({label}): " + "; ".join(summary) + ".")
