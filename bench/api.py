"""Scenario C: softphone API calls through the gateway vs straight to the (fake) POP endpoint.

Both sides get the same open-loop 200 calls/s (bench/rate.py); the difference of their
latency percentiles is what the gateway adds, and its process CPU over the run divided by
the calls is its CPU per call. The gateway runs with `session.crm_binding: false` and
`upstream.whoami_path: null` (no CRM whoami in the bench), a real session cookie and the
same-origin headers a browser sends.
"""

from __future__ import annotations

from bench.fixtures import API_ACTION, api_form
from bench.procs import cpu_seconds, tree_pids
from bench.rate import RateResult, fixed_rate
from bench.report import Row, Target
from bench.scenarios import Options, Outcome
from bench.stack import Server, Stack


def api_headers(gateway: Server, cookie: str) -> dict[str, str]:
    origin = f"https://127.0.0.1:{gateway.port}"
    return {
        "Origin": origin,
        "Sec-Fetch-Site": "same-origin",
        "Sec-Fetch-Mode": "cors",  # the SDK's XHR, as a browser describes it
        "Sec-Fetch-Dest": "empty",
        "Cookie": cookie,
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Requested-With": "XMLHttpRequest",
    }


def scenario_c(
    stack: Stack, gateway: Server, opts: Options, out: Outcome, floor: Server | None = None
) -> None:
    assert stack.pop is not None
    seconds = opts.seconds
    direct_body = ("Action=" + API_ACTION + "&" + "x" * 1400).encode()  # ~ the signed form
    direct_headers = {"Content-Type": "application/x-www-form-urlencoded"}
    # Each run opens its connections and runs a second at the rate before it counts
    # (bench/rate.py); the gateway's CPU is read over the counted interval only.
    direct = fixed_rate(
        stack.pop.url("/"),
        rate=opts.rate,
        seconds=seconds,
        body=direct_body,
        headers=direct_headers,
    )
    url = gateway.url(f"/aliyun/ccc/api?action={API_ACTION}")
    headers = api_headers(gateway, stack.session.cookie)
    tree = tree_pids(gateway.pid)
    via = fixed_rate(
        url,
        rate=opts.rate,
        seconds=seconds,
        body=api_form(),
        headers=headers,
        cpu=lambda: cpu_seconds(tree),
    )
    if not via.ok or b"skillLevels" not in via.sample:
        raise RuntimeError(f"C: the API call failed: {via.sample[:300]!r}")
    assert via.cpu_seconds is not None
    cpu_us = via.cpu_seconds / max(via.ok, 1) * 1e6
    subjects: list[tuple[str, RateResult, float | None]] = [
        ("fake POP direct (baseline)", direct, None),
        (gateway.name + " → fake POP", via, cpu_us),
    ]
    if floor is not None:
        floor_tree = tree_pids(floor.pid)
        bare = fixed_rate(
            floor.url(f"/aliyun/ccc/api?action={API_ACTION}"),
            rate=opts.rate,
            seconds=seconds,
            body=api_form(),
            headers=api_headers(floor, stack.session.cookie),
            cpu=lambda: cpu_seconds(floor_tree),
        )
        assert bare.cpu_seconds is not None
        bare_cpu = bare.cpu_seconds / max(bare.ok, 1) * 1e6
        subjects.append((floor.name + " → fake POP", bare, bare_cpu))
        out.notes.append(
            f"C: the bare aiohttp relay (bench/floor.py) used {bare_cpu:.0f} µs of CPU per "
            "call and added what its row says: the framework's and the machine's share of "
            "C's targets."
        )
    for name, r, cpu in subjects:
        notes = [f"{r.errors} errors"] if r.errors else []
        if r is not direct:
            notes.append(_added(r, direct))
        out.rows.append(
            Row(
                "C",
                name,
                r.ok / r.seconds,
                r.percentile(50),
                r.percentile(99),
                cpu,
                note=", ".join(notes),
            )
        )
    add50 = via.percentile(50) - direct.percentile(50)
    add99 = via.percentile(99) - direct.percentile(99)
    out.targets += [
        Target("C", "added latency ≤ 1 ms p50 at 200/s", f"{add50:.2f} ms", add50 <= 1.0),
        Target("C", "added latency ≤ 5 ms p99 at 200/s", f"{add99:.2f} ms", add99 <= 5.0),
        Target("C", "gateway CPU ≤ 700 µs per call", f"{cpu_us:.0f} µs", cpu_us <= 700),
    ]


def _added(via: RateResult, direct: RateResult) -> str:
    """Latency a relay added to the direct calls, at the two percentiles of the targets."""
    return (
        f"+{via.percentile(50) - direct.percentile(50):.2f} ms p50, "
        f"+{via.percentile(99) - direct.percentile(99):.2f} ms p99"
    )
