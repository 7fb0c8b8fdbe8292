"""`python -m bench` (or `make bench`): the gateway's benchmark on loopback.

Starts an nginx upstream serving a 20 KB CRM page, a fake CCC POP endpoint, the gateway
(`ccc-gateway run --config …` via bench/gateway_proc.py) and the baselines; runs the
scenarios A–F with bounded wrk / fixed-rate loads; stops everything it started (also on
Ctrl-C, SIGTERM and errors); prints the table and rewrites the generated block of
bench/RESULTS.md. Figures are ratios against baselines measured in the same run: the machine
is small, shared and noisy.

    python -m bench                      # everything, ~10 s per measurement
    python -m bench --only AB --seconds 5
    python -m bench --only F             # the gateway beside Apache + mod_auth_openidc
    python -m bench --only T --baseline-tree main   # this tree's gateway beside main's
    python -m bench --profile            # + py-spy profiles into bench/profiles/
    python -m bench --whatif uvloop,no-access-log   # + proposed changes, side by side
    python -m bench.calls --baseline-tree main       # Python calls per request, by module
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import apache, nginx, profile, trees
from bench.api import api_headers, scenario_c
from bench.load import LoadResult, measure, wrk_binary
from bench.peer import scenario_f
from bench.procs import raise_on_sigterm, wait_port
from bench.report import Row, Run, text_table, write_results
from bench.scenarios import (
    PLAIN_HEADERS,
    Options,
    Outcome,
    scenario_ab,
    scenario_d,
    scenario_e,
)
from bench.stack import Server, Stack, env

HERE = Path(__file__).resolve().parent
WHATIFS = (
    "uvloop",
    "no-access-log",
    "plain-access-log",
    "tls-buffer",
    "inject",
    "lean-record",
    "unchecked-head",
    "header-memo",
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="per measurement (10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="before each (2)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating A/B rounds (2)")
    parser.add_argument(
        "--only",
        default="ABCDEF",
        help="scenarios to run (ABCDEF; T: only --baseline-tree); A runs with any of A–E",
    )
    parser.add_argument(
        "--baseline-tree",
        metavar="REV",
        help="also run REV's gateway (a temporary git worktree) beside this tree's: "
        "signed-in page and API call, alternating, ratio current/before (rows T)",
    )
    parser.add_argument("--profile", action="store_true", help="py-spy the gateway under load")
    parser.add_argument("--whatif", default="", help=f"comma list of {', '.join(WHATIFS)}")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--no-results", action="store_true", help="do not touch RESULTS.md")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, configs)")
    return parser


def ensure_tools(peer: bool) -> None:
    """wrk, nginx (and for F Apache + mod_auth_openidc) come from Debian: bench/setup.sh
    installs them when missing."""

    def present() -> bool:
        return bool(wrk_binary() and nginx.nginx_binary()) and (apache.available() or not peer)

    if present():
        return
    print("bench: wrk, nginx or apache2 missing; running bench/setup.sh", file=sys.stderr)
    subprocess.run(["sh", str(HERE / "setup.sh")], check=True)
    if not present():
        raise SystemExit(
            "bench: wrk, nginx (and for F apache2 + mod_auth_openidc) are needed "
            "(bench/setup.sh, as root)"
        )


def run_whatifs(
    stack: Stack, names: list[str], opts: Options, out: Outcome, rounds: int = 3
) -> None:
    """Each proposed change next to a fresh unchanged gateway, A's load, in alternating rounds.

    The machine is noisy: one 10 s run apiece can differ by ±20 %. Alternating the subjects
    round by round and taking each one's median keeps drift from landing on one side.
    """
    import statistics

    from bench.scenarios import _load

    subjects = [stack.start_gateway()]
    subjects += [
        stack.start_gateway(flags=tuple(f"--{n}" for n in name.split("+"))) for name in names
    ]
    results: dict[str, list[LoadResult]] = {s.name: [] for s in subjects}
    try:
        for _ in range(rounds):
            for server in subjects:
                results[server.name].append(_load(stack, server, opts, PLAIN_HEADERS))
    finally:
        for server in subjects:
            stack.stop(server)
    base = statistics.median(r.rps for r in results[subjects[0].name])
    base_cpu = statistics.median(r.cpu_us_per_request for r in results[subjects[0].name])
    for server in subjects:
        runs = results[server.name]
        middle = sorted(runs, key=lambda r: r.rps)[len(runs) // 2]
        cpu = statistics.median(r.cpu_us_per_request for r in runs)
        row = Row.of("W", f"{server.name} (A load)", middle, ratio=middle.rps / base)
        row.cpu_us = cpu
        row.note = f"median of {rounds}; CPU {cpu / base_cpu:.2f}× unchanged" + (
            f"; {row.note}" if row.note else ""
        )
        out.rows.append(row)


def run_profiles(stack: Stack, opts: Options, flags: tuple[str, ...]) -> list[str]:
    """A, B and C loads against a gateway started under py-spy; summaries as text."""
    from bench.fixtures import API_ACTION, NAVIGATION_HEADERS, PAGE_PATH, api_form
    from bench.rate import fixed_rate

    out_dir = HERE / "profiles"
    out_dir.mkdir(exist_ok=True)
    loads = {
        "A-plain-page": {**PLAIN_HEADERS},
        "B-signed-in-page": {**NAVIGATION_HEADERS, "Cookie": stack.session.cookie},
        "C-api-calls": None,
    }
    summaries = []
    for label, headers in loads.items():
        port, argv = stack.gateway_argv(flags=flags)
        raw = out_dir / "raw" / f"{label}.txt"  # collapsed stacks, for flamegraph.pl
        raw.parent.mkdir(exist_ok=True)
        spy = profile.start_profiled(argv, raw, env(), stack.workdir / "logs" / f"{label}.log")
        try:
            child = profile.python_child(spy)
            server = Server("profiled gateway", port, child)
            wait_port(port, spy, timeout=30)
            if headers is not None:
                measure(
                    server.url(PAGE_PATH),
                    child,
                    connections=opts.connections,
                    seconds=opts.seconds,
                    warmup=0,
                    headers=headers,
                    workdir=stack.workdir,
                )
            else:
                fixed_rate(
                    server.url(f"/aliyun/ccc/api?action={API_ACTION}"),
                    rate=opts.rate,
                    seconds=opts.seconds,
                    body=api_form(),
                    headers=api_headers(server, stack.session.cookie),
                )
        finally:
            profile.finish(spy, child)
        text = profile.summarise(raw, f"{label} ({' '.join(flags) or 'as shipped'})")
        (out_dir / f"{label}.txt").write_text(text)
        summaries.append(text)
    return summaries


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    raise_on_sigterm()
    only = args.only.upper()
    ensure_tools(peer="F" in only)
    opts = Options(seconds=args.seconds, warmup=args.warmup, rounds=args.rounds)
    whatifs = [w for w in args.whatif.split(",") if w]
    for name in whatifs:
        if any(part not in WHATIFS for part in name.split("+")):
            raise SystemExit(f"bench: unknown --whatif {name!r} (known: {', '.join(WHATIFS)})")
    if "T" in only and not args.baseline_tree:
        raise SystemExit("bench: T is the --baseline-tree REV comparison: name REV")
    if args.baseline_tree:
        try:
            print(f"bench: baseline tree {trees.describe(args.baseline_tree)}", file=sys.stderr)
        except RuntimeError as exc:
            raise SystemExit(f"bench: --baseline-tree: {exc}") from None
    workdir = Path(tempfile.mkdtemp(prefix="ccc-bench-"))
    stack = Stack.create(workdir)
    out = Outcome()
    try:
        stack.start_upstream()
        stack.start_pop()
        gateway = stack.start_gateway()
        idle = gateway.rss()
        # A is the reference of B–E, so it runs with any of them; F and T stand alone.
        if any(s in only for s in "ABCDE"):
            floor = stack.start_floor()
            scenario_ab(stack, gateway, opts, out, with_b="B" in only, floor=floor)
            if "C" in only:
                scenario_c(stack, gateway, opts, out, floor=floor)
            stack.stop(floor)
        if "E" in only:
            scenario_e(stack, gateway, idle, opts, out)
        if "D" in only:
            scenario_d(stack, gateway, opts, out)
        if "F" in only:
            scenario_f(stack, gateway, opts, out)
        stack.stop(gateway)
        if args.baseline_tree:
            trees.compare_trees(stack, args.baseline_tree, opts, out)
        if whatifs:
            run_whatifs(stack, whatifs, opts, out)
        if args.profile:
            for text in run_profiles(stack, opts, ()):
                print(text)
    except KeyboardInterrupt:
        print("bench: interrupted; stopping what was started", file=sys.stderr)
        return 130
    finally:
        stack.close()
        if args.keep:
            print(f"bench: work dir kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    settings = (
        f"wrk -t1, {opts.connections} connections, {opts.seconds:g} s per measurement "
        f"after {opts.warmup:g} s warm-up; C at {opts.rate:g} calls/s open-loop"
    )
    run = Run(out.rows, out.targets, out.notes, settings)
    print(text_table(run))
    if not args.no_results:
        write_results(args.results, run)
        print(f"\nwritten: {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
