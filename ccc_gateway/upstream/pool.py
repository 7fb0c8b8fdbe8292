"""Keep-alive HTTP/1.1 connections to one origin, at most `max_connections` in use.

A connection's slot is taken before the request is written and given back when the answer's
body has been read out (the connection then waits, idle, for the next request) or when the
exchange failed (the connection is closed).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Iterable

from yarl import URL

from ccc_gateway.upstream.connection import Connection
from ccc_gateway.upstream.errors import ConnectFailed, Disconnected, UpstreamTimeout
from ccc_gateway.upstream.head import Body, build_head
from ccc_gateway.upstream.response import HttpResponse

# An idle connection older than this is closed rather than reused: servers drop idle
# keep-alive connections after their own timeout (nginx 75 s, aiohttp 75 s), and a request
# written into a connection being closed fails. aiohttp's connector uses the same 15 s.
IDLE_TIMEOUT = 15.0
# The methods a failed write on a reused connection may be retried for (RFC 9110 §9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class HttpPool:
    """Keep-alive HTTP/1.1 connections to one origin, at most `max_connections` in use."""

    def __init__(
        self,
        origin: URL,
        *,
        max_connections: int,
        connect_timeout: float,
        read_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
        max_field_size: int = 32 * 1024,
        upload_timeout: float = 0.0,
        host_header: str | None = None,
    ) -> None:
        """`upload_timeout` (0: none) bounds the sending of a streamed request body as a
        whole, however the time is spent: a client trickling it, or an upstream not reading."""
        if origin.scheme not in ("http", "https") or not origin.raw_host:
            raise ValueError(f"not an http(s) origin: {origin}")
        self._host = origin.raw_host
        self._port = origin.port or (443 if origin.scheme == "https" else 80)
        self._ssl: ssl.SSLContext | None = None
        if origin.scheme == "https":
            self._ssl = ssl_context or ssl.create_default_context()
        # The Host header as a browser would send it for this origin (default port left out),
        # unless the caller names another (the proxy's upstream.preserve_host).
        self._host_header = host_header or origin.raw_authority.rpartition("@")[2]
        self._where = f"{origin.host_subcomponent}:{self._port}"
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._max_field_size = max_field_size
        self._upload_timeout = upload_timeout
        # Connections in use are counted here rather than with asyncio.Semaphore, whose
        # locked() scans its waiters on every call; a freed slot is handed to the first waiter.
        self._free_slots = max_connections
        self._slot_waiters: deque[asyncio.Future[None]] = deque()
        self._idle: deque[Connection] = deque()
        self._closed = False

    async def request(
        self, method: str, target: str, headers: Iterable[tuple[str, str]], body: Body = None
    ) -> HttpResponse:
        """Send one request (`target`: path and query, already encoded) and await the answer's
        head. Raises an `UpstreamError` (errors.py), or what a streamed `body` raised."""
        head, chunked = build_head(method, target, self._host_header, headers, body)
        if self._free_slots > 0 and not self._slot_waiters:
            self._free_slots -= 1
        else:
            await self._wait_for_slot()
        try:
            return await self._exchange(method, head, body, chunked)
        except BaseException:
            self._return_slot()
            raise

    async def _exchange(self, method: str, head: bytes, body: Body, chunked: bool) -> HttpResponse:
        proto = self._reusable()
        # A reused connection may have been closed by the server a moment ago; its request
        # then fails before any answer and is sent once more on a new one.
        retry = (
            proto is not None
            and method in IDEMPOTENT_METHODS
            and (body is None or isinstance(body, bytes))  # not streamed: it can be sent again
        )
        while True:
            if proto is None:
                proto = await self._connect()
            try:
                message, payload = await proto.send(
                    head, body, chunked=chunked, skip_payload=method == "HEAD"
                )
            except BaseException as exc:
                upload_error = proto.give_up()
                if upload_error is not None:
                    raise upload_error from None
                if retry and isinstance(exc, Disconnected):
                    retry, proto = False, None
                    continue
                raise
            return HttpResponse(self, proto, message, payload)

    async def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.popleft().close()

    # ------------------------------------------------------------ connections

    def _reusable(self) -> Connection | None:
        now = time.monotonic()
        while self._idle:
            proto = self._idle.pop()  # the most recently used: warm and least stale
            # Bytes the upstream sent while the connection sat idle would be read as the
            # answer to the next request: such a connection is not reused (should_close).
            if now - proto.idle_since < IDLE_TIMEOUT and not proto.should_close:
                return proto
            proto.close()
        return None

    async def _connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout):
                _, proto = await loop.create_connection(
                    lambda: Connection(
                        loop, self._read_timeout, self._max_field_size, self._upload_timeout
                    ),
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                )
        except TimeoutError:
            raise UpstreamTimeout(f"no connection to {self._where} in time") from None
        except OSError as exc:  # refused, unreachable, DNS, TLS (ssl.SSLError is an OSError)
            raise ConnectFailed(self._where, exc) from None
        # BaseProtocol.connection_made has set TCP_NODELAY: head and small body go out as
        # one segment, with no Nagle wait for the last bytes.
        return proto

    def give_back(self, proto: Connection, *, keep: bool) -> None:
        """An answer is done with its connection: idle for the next request, or closed."""
        if keep and not self._closed and not proto.should_close:
            proto.idle_since = time.monotonic()
            self._idle.append(proto)
        else:
            proto.close()
        self._return_slot()

    async def _wait_for_slot(self) -> None:
        """All connections are busy: wait for one (this counts as connecting)."""
        waiter = asyncio.get_running_loop().create_future()
        self._slot_waiters.append(waiter)
        try:
            async with asyncio.timeout(self._connect_timeout):
                await waiter
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                self._return_slot()  # handed over just as the time ran out
            raise UpstreamTimeout(f"no free connection to {self._where}") from None
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._return_slot()
            raise

    def _return_slot(self) -> None:
        while self._slot_waiters:
            waiter = self._slot_waiters.popleft()
            if not waiter.done():  # not a waiter that timed out or was cancelled
                waiter.set_result(None)
                return
        self._free_slots += 1
