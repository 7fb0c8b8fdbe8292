"""Relaying one proxied websocket: browser ⇄ gateway ⇄ CRM, frame by frame.

Both ends run with autoping and autoclose off, so pings, pongs and close frames are the
peers' own and travel end to end: the CRM sees the browser's close code and the browser the
CRM's. A side that vanishes without a close frame is reported to the other with 1001 (the
browser went away) or 1014 (the CRM failed: "bad gateway", RFC 6455 §11.7).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

log = logging.getLogger(__name__)

AnyWebSocket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse

# Codes a peer may not put in a close frame (RFC 6455 §7.4.1): they only describe one.
_RESERVED_CODES = frozenset({1004, 1005, 1006, 1015})


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


async def relay(browser: web.WebSocketResponse, crm: aiohttp.ClientWebSocketResponse) -> None:
    """Relay until either side closes; both sockets are closed on return."""
    pumps = (
        asyncio.create_task(_pump(browser, crm, WSCloseCode.GOING_AWAY)),
        asyncio.create_task(_pump(crm, browser, WSCloseCode.BAD_GATEWAY)),
    )
    try:
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # The first pump to finish has closed both sides, which ends the other one's
        # receive(); cancelling is only the backstop (and the path when we are cancelled).
        for pump in pumps:
            pump.cancel()
        for pump in pumps:
            with contextlib.suppress(asyncio.CancelledError):
                exc = await asyncio.gather(pump, return_exceptions=True)
                if exc and isinstance(exc[0], Exception):
                    log.warning("websocket relay failed: %s", type(exc[0]).__name__)
        await crm.close()
        await browser.close()
