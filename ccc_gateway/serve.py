"""Running aiohttp applications as servers until SIGINT/SIGTERM, with operator-friendly errors.

SIGTERM (or SIGINT) closes every listening socket at once, so a new connection is refused,
then lets in-flight requests finish for up to `shutdown_timeout` before the apps' cleanup
closes their outbound clients. SIGHUP calls `on_reload` (the gateway reloads its certificate
and session keys: see `workers.Reloader`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from .tls import server_context

log = logging.getLogger(__name__)


class StartupError(Exception):
    """A problem an operator can fix (busy port, bad certificate): shown as one line, exit 1."""


@dataclass
class Listener:
    name: str  # what it is, for messages: "gateway", "sample CRM", …
    app: web.Application
    host: str
    port: int
    ssl_context: ssl.SSLContext | None = None
    reuse_port: bool = False

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{self.host}:{self.port}"


async def start(listener: Listener, shutdown_timeout: float = 30.0) -> web.AppRunner:
    runner = web.AppRunner(
        listener.app, access_log=None, handle_signals=False, shutdown_timeout=shutdown_timeout
    )
    await runner.setup()
    site = web.TCPSite(
        runner,
        listener.host,
        listener.port,
        ssl_context=listener.ssl_context,
        reuse_port=listener.reuse_port or None,
    )
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise StartupError(_listen_error(listener, exc)) from None
    return runner


def _listen_error(listener: Listener, exc: OSError) -> str:
    where = f"{listener.host}:{listener.port}"
    if exc.errno == errno.EADDRINUSE:
        return (
            f"{listener.name}: port {listener.port} on {listener.host} is already in use; "
            "stop whatever is using it or choose another port"
        )
    if exc.errno == errno.EACCES:
        return (
            f"{listener.name}: not allowed to listen on {where}; ports below 1024 need "
            "CAP_NET_BIND_SERVICE (see deploy/ccc-gateway.service)"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{listener.name}: {listener.host} is not an address of this machine"
    return f"{listener.name}: cannot listen on {where}: {exc.strerror or exc}"


async def serve(
    listeners: Sequence[Listener],
    *,
    shutdown_timeout: float = 30.0,
    on_started: Callable[[], None] | None = None,
    on_reload: Callable[[], object] | None = None,
) -> None:
    """Start every listener, run until SIGINT/SIGTERM, then drain and stop them in reverse."""
    runners: list[web.AppRunner] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if on_reload is not None:
        loop.add_signal_handler(signal.SIGHUP, on_reload)
    try:
        for listener in listeners:
            runners.append(await start(listener, shutdown_timeout))
        if on_started is not None:
            on_started()
        await stop.wait()
        log.info("stopping: draining in-flight requests (up to %ss)", shutdown_timeout)
    finally:
        # Every listening socket closes first, so no listener takes new connections while
        # another drains; then each runner waits for its in-flight requests.
        for runner in runners:
            for site in list(runner.sites):
                await site.stop()
        for runner in reversed(runners):
            await runner.cleanup()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)


def reload_certificate(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    """Load a new certificate pair into the live server context (TlsError if unusable).

    The listening socket keeps the context object it was started with, so the pair is loaded
    into that same object: new handshakes get the new certificate, open connections keep the
    one they negotiated. The pair is first tried on a scratch context, because a failed
    `load_cert_chain` on the live one could leave it with a certificate but the old key.
    """
    server_context(cert, key)
    context.load_cert_chain(cert, key)


def https_redirect_app(https_port: int) -> web.Application:
    """The optional plain-HTTP listener: it only sends browsers to the HTTPS address."""

    async def redirect(request: web.Request) -> web.Response:
        target = request.url.with_scheme("https").with_port(https_port)
        raise web.HTTPPermanentRedirect(str(target))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    return app
