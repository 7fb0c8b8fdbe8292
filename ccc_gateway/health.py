"""Liveness and readiness.

`/aliyun/healthz` says the process answers. `/aliyun/readyz` says it can do its job: each
dependency is checked and named in the answer, so an operator sees *what* is not ready.
Further checks (JWKS loaded, session store) register themselves with `add_readiness_check`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp import web

from .keys import CONFIG, UPSTREAM_CLIENT

ReadinessCheck = Callable[[web.Application], Awaitable[str | None]]  # None = ok, else why not
READINESS_CHECKS = web.AppKey("readiness_checks", dict[str, ReadinessCheck])
CHECK_TIMEOUT = 3.0


def setup(app: web.Application) -> None:
    checks: dict[str, ReadinessCheck] = {"crm": _crm_reachable}
    app[READINESS_CHECKS] = checks
    app.router.add_get("/aliyun/healthz", healthz)
    app.router.add_get("/aliyun/readyz", readyz)


def add_readiness_check(app: web.Application, name: str, check: ReadinessCheck) -> None:
    app[READINESS_CHECKS][name] = check


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})


async def readyz(request: web.Request) -> web.Response:
    checks = request.app[READINESS_CHECKS]
    names = list(checks)
    results = await asyncio.gather(*(_run(checks[name], request.app) for name in names))
    report = {name: (problem or "ok") for name, problem in zip(names, results, strict=True)}
    ready = all(problem is None for problem in results)
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": report},
        status=200 if ready else 503,
        headers={"Cache-Control": "no-store"},
    )


async def _run(check: ReadinessCheck, app: web.Application) -> str | None:
    try:
        return await asyncio.wait_for(check(app), CHECK_TIMEOUT)
    except TimeoutError:
        return "timed out"


async def _crm_reachable(app: web.Application) -> str | None:
    """Any HTTP answer from the CRM counts: readiness is about reachability, not its pages."""
    upstream = app[CONFIG].upstream
    try:
        async with app[UPSTREAM_CLIENT].head(upstream.url, allow_redirects=False) as response:
            return None if response.status < 500 else f"answered {response.status}"
    except (aiohttp.ClientError, OSError) as exc:
        return f"unreachable: {type(exc).__name__}"
