"""Proxied websockets: browser ⇄ gateway ⇄ CRM, frame by frame.

`WebsocketProxy` admits an upgrade (a valid handshake, within `upstream.max_websockets`),
opens the CRM's side on aiohttp's client (its share of the CRM budget, proxy/pool.py) and
relays.

Both ends run with autoping and autoclose off, so pings, pongs and close frames are the
peers' own and travel end to end: the CRM sees the browser's close code and the browser the
CRM's. A side that vanishes without a close frame is reported to the other with 1001 (the
browser went away) or 1014 (the CRM failed: "bad gateway", RFC 6455 §11.7).

A socket whose handshake told the CRM who the agent is (identity headers) is relayed with a
watch of that sign-in (SessionManager.identity_watch): when the sign-in ends, the socket ends
too, with 1008 and the watch's reason to the browser and a normal close to the CRM, so the CRM
does not go on treating it as the signed-in agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, hdrs, web
from multidict import CIMultiDict
from yarl import URL

from ccc_gateway.http.errors import BadRequest, ServiceUnavailable
from ccc_gateway.http.request_id import X_REQUEST_ID

log = logging.getLogger(__name__)

IdentityWatch = Callable[[web.Request], Coroutine[Any, Any, str] | None]

AnyWebSocket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse

# Codes a peer may not put in a close frame (RFC 6455 §7.4.1): they only describe one.
_RESERVED_CODES = frozenset({1004, 1005, 1006, 1015})


class WebsocketProxy:
    """Websocket upgrades to the CRM, at most `max_websockets` open (or opening) at once.

    `identity_watch` (SessionManager.identity_watch): for a socket whose handshake carried
    identity headers, a coroutine that returns when that sign-in ends; the relay then ends
    the socket. Failures to reach the CRM are aiohttp's client errors and TimeoutError, left
    for the proxy's handler to answer.
    """

    def __init__(
        self,
        client: aiohttp.ClientSession,
        max_websockets: int,
        identity_watch: IdentityWatch | None = None,
    ) -> None:
        self._client = client
        self._max = max_websockets
        self._open = 0
        self._identity_watch = identity_watch

    async def handle(
        self, request: web.Request, url: URL, headers: list[tuple[str, str]], request_id: str
    ) -> web.StreamResponse:
        if not web.WebSocketResponse().can_prepare(request).ok:
            # Checked before the CRM is contacted: a broken handshake costs it nothing.
            raise BadRequest("This is not a valid websocket handshake.")
        if self._open >= self._max:
            # Refused rather than queued: an open websocket holds its connection for as long
            # as it lives, and the rest of the client's connections are whoami's and readiness'.
            raise ServiceUnavailable(
                f"All {self._max} websockets to the CRM are in use; try again later."
            )
        self._open += 1
        try:
            return await self._relayed(request, url, headers, request_id)
        finally:
            self._open -= 1

    async def _relayed(
        self, request: web.Request, url: URL, headers: list[tuple[str, str]], request_id: str
    ) -> web.StreamResponse:
        protocols = [
            p.strip() for p in request.headers.get(hdrs.SEC_WEBSOCKET_PROTOCOL, "").split(",")
        ]
        crm = await self._client.ws_connect(
            url,
            headers=CIMultiDict(headers),
            protocols=[p for p in protocols if p],
            autoclose=False,  # close frames are relayed, not answered by aiohttp
            autoping=False,  # pings too: the browser and the CRM keep their own liveness
            timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=10.0),
        )
        browser = web.WebSocketResponse(
            protocols=(crm.protocol,) if crm.protocol else (), autoclose=False, autoping=False
        )
        browser.headers[X_REQUEST_ID] = request_id
        try:
            await browser.prepare(request)
        except BaseException:
            await crm.close()
            raise
        # Asked after the handshake: the CRM has seen the identity headers now, if any.
        ended = self._identity_watch(request) if self._identity_watch is not None else None
        await relay(browser, crm, ended)
        return browser


def sendable_close_code(code: object) -> int:
    """The close code to pass on; 1000 when the peer sent none or one that can't be sent."""
    if isinstance(code, int) and 1000 <= code <= 4999 and code not in _RESERVED_CODES:
        return code
    return WSCloseCode.OK


async def _forward(msg: aiohttp.WSMessage, dst: AnyWebSocket) -> None:
    if msg.type is WSMsgType.TEXT:
        await dst.send_str(msg.data)
    elif msg.type is WSMsgType.BINARY:
        await dst.send_bytes(msg.data)
    elif msg.type is WSMsgType.PING:
        await dst.ping(msg.data)
    elif msg.type is WSMsgType.PONG:
        await dst.pong(msg.data)


async def _pump(src: AnyWebSocket, dst: AnyWebSocket, gone_code: int) -> None:
    """Copy `src`'s frames to `dst` until `src` closes; then close `dst` the same way."""
    try:
        while True:
            msg = await src.receive()
            if msg.type is WSMsgType.CLOSE:
                code = sendable_close_code(msg.data)
                reason = (msg.extra or "").encode()
                await dst.close(code=code, message=reason)
                await src.close(code=code, message=reason)  # answers src's close frame
                return
            if msg.type in (WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                # CLOSING: the other pump is closing `src` itself; nothing left to do here.
                if msg.type is not WSMsgType.CLOSING:
                    await dst.close(code=gone_code)
                return
            await _forward(msg, dst)
    except ConnectionError:
        # One side dropped while a frame was on its way: end the other side too.
        await dst.close(code=gone_code)
        await src.close(code=gone_code)


async def relay(
    browser: web.WebSocketResponse,
    crm: aiohttp.ClientWebSocketResponse,
    ended: Coroutine[Any, Any, str] | None = None,
) -> None:
    """Relay until either side closes, or until `ended` (the watch of the sign-in the socket
    speaks for) returns the reason it ended; both sockets are closed on return."""
    pumps = (
        asyncio.create_task(_pump(browser, crm, WSCloseCode.GOING_AWAY)),
        asyncio.create_task(_pump(crm, browser, WSCloseCode.BAD_GATEWAY)),
    )
    # One small task per identity-carrying socket, nothing per frame; cancelled with the relay.
    watch = asyncio.create_task(ended) if ended is not None else None
    try:
        await asyncio.wait(
            pumps if watch is None else (*pumps, watch), return_when=asyncio.FIRST_COMPLETED
        )
        if watch is not None and watch.done() and not watch.cancelled():
            # The pumps stop first: closing under a running pump would race its receive() and
            # let a late frame through after the close.
            await _stop(pumps)
            await _close_signed_out(browser, crm, watch)
    finally:
        # The first pump to finish has closed both sides, which ends the other one's
        # receive(); cancelling is only the backstop (and the path when we are cancelled).
        await _stop(pumps if watch is None else (*pumps, watch))
        await crm.close()
        await browser.close()


async def _stop(tasks: Iterable[asyncio.Task[Any]]) -> None:
    tasks = tuple(tasks)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            exc = await asyncio.gather(task, return_exceptions=True)
            if exc and isinstance(exc[0], Exception):
                log.warning("websocket relay failed: %s", type(exc[0]).__name__)


async def _close_signed_out(
    browser: web.WebSocketResponse, crm: aiohttp.ClientWebSocketResponse, watch: asyncio.Task[str]
) -> None:
    """End both sides because the sign-in ended: 1008 and the reason to the browser (it is
    the browser's sign-in that is over), a normal close to the CRM."""
    if watch.exception() is None:
        code, reason = WSCloseCode.POLICY_VIOLATION, watch.result()
    else:
        # A failing watch cannot vouch for the sign-in any more: the identity must not outlive
        # it unchecked, so the socket ends (the browser's script may reconnect).
        log.warning("websocket sign-in watch failed: %s", type(watch.exception()).__name__)
        code, reason = WSCloseCode.INTERNAL_ERROR, "sign-in check failed"
    message = reason.encode()
    # Together: neither side waits up to its close timeout for the other's answer.
    await asyncio.gather(
        browser.close(code=code, message=message),
        crm.close(code=WSCloseCode.OK, message=message),
        return_exceptions=True,
    )
