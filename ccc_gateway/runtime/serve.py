"""Running aiohttp applications as servers until SIGINT/SIGTERM, with operator-friendly errors.

SIGTERM (or SIGINT) closes every listening socket at once, so a new connection is refused,
then lets in-flight requests finish for up to `shutdown_timeout` before the apps' cleanup
closes their outbound clients. SIGHUP calls `on_reload` (the gateway reloads its certificate
and session keys: see `workers.Reloader`).

The gateway's listeners run with `server_options`: request bodies are not decompressed by the
server (the proxy passes them on as received; the few gateway routes that read a body decode
it themselves, capped), and a connection gets `listen.request_head_timeout` to send each
request head.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ccc_gateway.runtime.tls import server_context

if TYPE_CHECKING:
    from ccc_gateway.config.model import ListenConfig

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
    # aiohttp server settings (RequestHandler keywords): `server_options` for the gateway's.
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context else "http"
        return f"{scheme}://{self.host}:{self.port}"


def server_options(listen: ListenConfig) -> dict[str, Any]:
    """The aiohttp server settings of every gateway listener (the tests' stack uses them too).

    `auto_decompress=False` (aiohttp ≥ 3.8): aiohttp would otherwise inflate a gzip or deflate
    request body while its `Content-Length` and `Content-Encoding` still describe the
    compressed bytes, and the proxy would stream the inflated bytes under those headers: the
    CRM reads the surplus as a second request on its keep-alive connection, one that skipped
    every gateway check. The proxy forwards bodies exactly as received instead.

    `keepalive_timeout` is the request-head timeout: aiohttp arms it after each answer and,
    from the 3.14 release after 3.14.3 on (aiohttp#13681), when a connection opens; when it
    fires while no complete request head has arrived the connection is closed, however
    slowly bytes trickle in. An idle keep-alive connection closes after the same time.
    """
    return {"auto_decompress": False, "keepalive_timeout": listen.request_head_timeout}


async def start(listener: Listener, shutdown_timeout: float = 30.0) -> web.AppRunner:
    runner = web.AppRunner(
        listener.app,
        access_log=None,
        handle_signals=False,
        shutdown_timeout=shutdown_timeout,
        **listener.options,
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


def https_redirect_app(public_origin: str) -> web.Application:
    """The optional plain-HTTP listener: it only sends browsers to the gateway's HTTPS origin.

    The target is the configured public origin plus the request's path: the request's own
    `Host` is the client's to make up, and a redirect built from it would send a browser
    (or a cache in between) wherever the client liked. `public_origin` is
    `config.aliyun.public_origin`.
    """

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPPermanentRedirect(public_origin + request.rel_url.raw_path_qs)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    return app
