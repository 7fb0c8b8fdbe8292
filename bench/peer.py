"""Scenario F: the signed-in page through the gateway vs through a real peer, Apache httpd +
mod_auth_openidc (bench/apache.py), each with a session cookie of its own.

The gateway's cookie is B's (sealed by its SessionCodec from a realistic sign-in); Apache's is
the one mod_auth_openidc set when a script signed in through the emulator's form. Both are
loaded as a script's fetch of the page (B's "session cookie" request: no widget, which Apache
does not inject), in alternating rounds like A and B, each subject's runs pooled.
"""

from __future__ import annotations

import subprocess

from bench.apache import THREADS, apache_binary
from bench.fixtures import CRM_COOKIES, PAGE_BYTES
from bench.load import LoadResult
from bench.report import Row, Target
from bench.scenarios import PLAIN_HEADERS, Options, Outcome, _check_page, _load, pooled
from bench.stack import Server, Stack

CPU_TARGET = 0.8  # gateway CPU per page ≤ 0.8× Apache's
RPS_TARGET = 0.9  # gateway req/s ≥ 0.9× Apache's


def _check_pages(result: LoadResult, server: Server) -> None:
    """Every answer wrk counted was the page, not a redirect to the sign-in (which wrk, which
    counts 3xx as success, would have counted as a fast request)."""
    if result.requests and result.bytes_read / result.requests < PAGE_BYTES:
        raise RuntimeError(
            f"F: {server.name} answered {result.bytes_read / result.requests:.0f} B per "
            f"request, less than the {PAGE_BYTES} B page: its session did not hold"
        )


def scenario_f(stack: Stack, gateway: Server, opts: Options, out: Outcome) -> None:
    apache, apache_cookie = stack.start_apache()
    try:
        subjects = [
            (apache, {**PLAIN_HEADERS, "Cookie": f"{CRM_COOKIES}; {apache_cookie}"}),
            (gateway, {**PLAIN_HEADERS, "Cookie": stack.session.cookie}),
        ]
        for server, headers in subjects:
            _check_page(server, headers)
        runs: list[list[LoadResult]] = [[] for _ in subjects]
        for _ in range(opts.rounds):
            for i, (server, headers) in enumerate(subjects):
                result = _load(stack, server, opts, headers)
                _check_pages(result, server)
                runs[i].append(result)
        _check_page(apache, subjects[0][1])  # still signed in after the last round
    finally:
        stack.stop(apache)
        if stack.emulator is not None:
            stack.stop(stack.emulator)
            stack.emulator = None
    peer, ours = pooled(runs[0]), pooled(runs[1])
    rps = ours.rps / peer.rps
    cpu = ours.cpu_us_per_request / peer.cpu_us_per_request
    apache_cookie_bytes = len(apache_cookie) - apache_cookie.index("=") - 1
    out.rows += [
        Row.of(
            "F",
            "Apache + mod_auth_openidc (peer)",
            peer,
            ratio=1.0,
            note=f"{apache_cookie_bytes} B client-cookie session; "
            f"{peer.cpu_s / peer.seconds:.2f} cores busy",
        ),
        Row.of(
            "F",
            "gateway, session cookie",
            ours,
            ratio=rps,
            note=f"CPU/req {cpu:.2f}× Apache's; {stack.session.token_chars} B sealed session",
        ),
    ]
    out.targets += [
        Target(
            "F",
            f"gateway CPU/req ≤ {CPU_TARGET}× Apache's (signed-in page)",
            f"{cpu:.2f}× ({ours.cpu_us_per_request:.0f} vs {peer.cpu_us_per_request:.0f} µs)",
            cpu <= CPU_TARGET,
        ),
        Target(
            "F",
            f"gateway req/s ≥ {RPS_TARGET}× Apache's (signed-in page)",
            f"{rps:.2f}× ({ours.rps:,.0f} vs {peer.rps:,.0f})",
            rps >= RPS_TARGET,
        ),
    ]
    out.notes.append(
        f"F: Apache {apache_version()} + mod_auth_openidc (client-cookie session, OIDC "
        "against the emulator), one server process (mpm_event, ServerLimit 1, "
        f"{THREADS} threads); its threads may use both cores where the gateway's loop "
        "uses one, so CPU per request is the fairer of the two figures."
    )


def apache_version() -> str:
    binary = apache_binary()
    done = subprocess.run([binary or "apache2", "-v"], capture_output=True, text=True, check=False)
    words = done.stdout.split()
    return next((w.split("/", 1)[1] for w in words if w.startswith("Apache/")), "?")
