"""Liveness and readiness, and who may see the details.

`/aliyun/healthz` says the process answers. `/aliyun/readyz` says it can do its job: each
dependency is checked, and an operator sees *what* is not ready. The checks (the CRM, JWKS
loaded, the session store) are registered by the composition root (app.py) with
`add_readiness_check`: this module knows none of the features.

On the public port the readiness answer is only the status (200 or 503): which check failed
and why (the CRM's state, a store outage) is for operators. The details, and
`/aliyun/metrics`, go to a client on this host (`shows_details`), to the private listener
(`listen.metrics_port`), or to everyone when `listen.public_metrics` says so.
"""

from __future__ import annotations

import asyncio
import ipaddress

from aiohttp import web

from ccc_gateway.keys import CONFIG, READINESS_CHECKS, ReadinessCheck

CHECK_TIMEOUT = 3.0
# A proxy on this host relaying someone else's request says so in one of these.
_FORWARDING = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def setup(app: web.Application) -> None:
    app[READINESS_CHECKS] = {}
    app.router.add_get("/aliyun/healthz", healthz)
    app.router.add_get("/aliyun/readyz", readyz)


def add_readiness_check(app: web.Application, name: str, check: ReadinessCheck) -> None:
    app[READINESS_CHECKS][name] = check


def shows_details(request: web.Request) -> bool:
    """Whether this client of the public port may see metrics and readiness details: one on
    this host (a loopback peer, not relaying anyone), or any when `listen.public_metrics`."""
    if request.app[CONFIG].listen.public_metrics:
        return True
    return _is_loopback(request.remote) and not any(h in request.headers for h in _FORWARDING)


def _is_loopback(remote: str | None) -> bool:
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return False  # no address (a Unix socket, a test transport): not known to be local
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})


async def readyz(request: web.Request) -> web.Response:
    return await readiness_response(request.app, details=shows_details(request))


async def readiness_response(app: web.Application, *, details: bool) -> web.Response:
    """200 `{"status": "ready"}` or 503 `{"status": "not ready"}`, with `checks` (each one's
    "ok" or why not) when `details`."""
    checks = app[READINESS_CHECKS]
    names = list(checks)
    results = await asyncio.gather(*(_run(checks[name], app) for name in names))
    ready = all(problem is None for problem in results)
    body: dict[str, object] = {"status": "ready" if ready else "not ready"}
    if details:
        body["checks"] = {
            name: (problem or "ok") for name, problem in zip(names, results, strict=True)
        }
    return web.json_response(
        body, status=200 if ready else 503, headers={"Cache-Control": "no-store"}
    )


async def _run(check: ReadinessCheck, app: web.Application) -> str | None:
    try:
        return await asyncio.wait_for(check(app), CHECK_TIMEOUT)
    except TimeoutError:
        return "timed out"
