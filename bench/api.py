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
from bench.rate import fixed_rate
from bench.report import Row, Target
from bench.scenarios import Options, Outcome
from bench.stack import Server, Stack


def api_headers(gateway: Server, cookie: str) -> dict[str, str]:
    origin = f"https://127.0.0.1:{gateway.port}"
    return {
        "Origin": origin,
        "Sec-Fetch-Site": "same-origin",
        "Cookie": cookie,
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Requested-With": "XMLHttpRequest",
    }


def scenario_c(stack: Stack, gateway: Server, opts: Options, out: Outcome) -> None:
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
    for name, r, cpu in (
        ("fake POP direct (baseline)", direct, None),
        (gateway.name + " → fake POP", via, cpu_us),
    ):
        out.rows.append(
            Row(
                "C",
                name,
                r.ok / r.seconds,
                r.percentile(50),
                r.percentile(99),
                cpu,
                note=f"{r.errors} errors" if r.errors else "",
            )
        )
    add50 = via.percentile(50) - direct.percentile(50)
    add99 = via.percentile(99) - direct.percentile(99)
    out.rows[-1].note = (out.rows[-1].note + f" +{add50:.2f} ms p50, +{add99:.2f} ms p99").strip()
    out.targets += [
        Target("C", "added latency ≤ 1 ms p50 at 200/s", f"{add50:.2f} ms", add50 <= 1.0),
        Target("C", "added latency ≤ 5 ms p99 at 200/s", f"{add99:.2f} ms", add99 <= 5.0),
        Target("C", "gateway CPU ≤ 700 µs per call", f"{cpu_us:.0f} µs", cpu_us <= 700),
    ]
