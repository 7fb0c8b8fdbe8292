"""A CRM websocket that carries the agent's identity ends when the agent's sign-in ends.

The whole stack on loopback (stack.py: gateway, Alibaba emulator) in front of a small CRM
that knows users by a `crm` cookie and serves an echo websocket, telling the test what its
handshake carried and how it was closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer
from stack import Browser, Stack
from test_session_store import REDIS_SERVER, RedisServer
from test_signin_security import set_cookies
from yarl import URL

from ccc_gateway.config.load import Secret
from ccc_gateway.keys import SESSIONS
from ccc_gateway.sessions import identity as session_module
from ccc_gateway.sessions.redis_storage import SESSION_PREFIX, connect
from ccc_gateway.sessions.storage import StoreUnavailable

WAIT = 10.0  # bounds every wait, so a failure is an error rather than a hung suite
EVENTS = web.AppKey("events", "asyncio.Queue[tuple[str, Any]]")
USERS = {"s-edward": "edward"}

MakeStack = Callable[..., Awaitable[Stack]]


async def whoami(request: web.Request) -> web.Response:
    user = USERS.get(request.cookies.get("crm", ""))
    if user is None:
        return web.json_response({}, status=401)
    return web.json_response({"user": user})


async def echo_socket(request: web.Request) -> web.WebSocketResponse:
    """Echoes text frames; reports the handshake's agent header and the close code."""
    events = request.app[EVENTS]
    await events.put(("open", request.headers.get("X-Ccc-Agent-Upn")))
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for msg in ws:
        if msg.type is WSMsgType.TEXT:
            await ws.send_str(msg.data)
    await events.put(("closed", ws.close_code))
    return ws


@pytest.fixture
async def crm() -> AsyncIterator[TestServer]:
    app = web.Application()
    app[EVENTS] = asyncio.Queue()
    app.router.add_get("/api/me", whoami)
    app.router.add_get("/ws", echo_socket)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
def interval(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Sets the watch's check interval (a module constant) for this test."""

    def set_interval(seconds: float) -> None:
        monkeypatch.setattr(session_module, "WATCH_INTERVAL", seconds)

    return set_interval


async def start(
    make_stack: MakeStack, crm: TestServer, *, identity_headers: bool = True, **sections: Any
) -> tuple[Stack, Browser]:
    url = URL(f"http://127.0.0.1:{crm.port}")
    stack = await make_stack(
        upstream={"url": url, "identity_headers": identity_headers}, **sections
    )
    browser = stack.browser()
    set_cookies(browser, {"crm": "s-edward"})
    return stack, browser


async def sign_in(browser: Browser) -> None:
    assert (await browser.sign_in()).status == 303


async def sign_out(browser: Browser) -> None:
    async with await browser.post("/aliyun/revoke") as response:
        assert response.status == 200


async def open_socket(
    browser: Browser, crm: TestServer
) -> tuple[aiohttp.ClientWebSocketResponse, str | None]:
    """The browser's socket through the gateway, and the agent the CRM's handshake named."""
    ws = await browser.client.ws_connect(browser.url("/ws"), autoclose=False)
    event, agent = await asyncio.wait_for(crm.app[EVENTS].get(), WAIT)
    assert event == "open"
    await assert_relays(ws)
    return ws, agent


async def assert_relays(ws: aiohttp.ClientWebSocketResponse) -> None:
    await ws.send_str("ping?")
    msg = await ws.receive(timeout=WAIT)
    assert (msg.type, msg.data) == (WSMsgType.TEXT, "ping?")


async def assert_closed_by_gateway(
    ws: aiohttp.ClientWebSocketResponse, crm: TestServer, reason: str
) -> None:
    """The browser got 1008 with `reason`; the CRM a normal close."""
    msg = await ws.receive(timeout=WAIT)
    assert msg.type is WSMsgType.CLOSE
    assert (msg.data, msg.extra) == (1008, reason)
    await ws.close()
    assert await asyncio.wait_for(crm.app[EVENTS].get(), WAIT) == ("closed", 1000)


async def until_unwatched(stack: Stack) -> None:
    """Wait (bounded) for the gateway to let go of every websocket registration."""
    sessions = stack.app[SESSIONS]
    for _ in range(int(WAIT / 0.01)):
        if not sessions.identity.watches:
            return
        await asyncio.sleep(0.01)  # the relay's last steps run after the CRM saw the close
    raise AssertionError(f"registrations left: {sessions.identity.watches}")


async def test_sign_out_closes_the_identity_carrying_socket_at_once(
    make_stack: MakeStack, crm: TestServer, interval: Callable[[float], None]
) -> None:
    """POST /aliyun/revoke ends the agent's CRM socket: 1008 "signed out" to the browser, a
    normal close to the CRM; at once, not at the next check (which never comes here)."""
    interval(3600.0)
    stack, browser = await start(make_stack, crm)
    try:
        await sign_in(browser)
        ws, agent = await open_socket(browser, crm)
        assert agent == "agent1@ccc-demo.onaliyun.com"
        assert stack.app[SESSIONS].identity.watches  # this socket's registration
        await sign_out(browser)
        await assert_closed_by_gateway(ws, crm, "signed out")
        await until_unwatched(stack)
    finally:
        await browser.close()


@pytest.mark.parametrize("identity_headers", [True, False], ids=["opened-signed-out", "off"])
async def test_socket_without_identity_survives_sign_in_and_sign_out(
    make_stack: MakeStack,
    crm: TestServer,
    interval: Callable[[float], None],
    identity_headers: bool,
) -> None:
    """A socket that told the CRM no identity (opened before sign-in, or identity headers
    off) is none of the sign-in's business: it outlives a sign-in, a sign-out and checks."""
    interval(0.02)
    stack, browser = await start(make_stack, crm, identity_headers=identity_headers)
    try:
        if identity_headers:
            ws, agent = await open_socket(browser, crm)  # before the sign-in
            await sign_in(browser)
        else:
            await sign_in(browser)
            ws, agent = await open_socket(browser, crm)
        assert agent is None
        assert not stack.app[SESSIONS].identity.watches
        await sign_out(browser)
        await asyncio.sleep(0.2)  # several check intervals
        await assert_relays(ws)
        await ws.close()
        # The browser's own close, passed on.
        assert await asyncio.wait_for(crm.app[EVENTS].get(), WAIT) == ("closed", 1000)
    finally:
        await browser.close()


async def test_periodic_check_closes_a_socket_revoked_outside_this_socket(
    make_stack: MakeStack, crm: TestServer, interval: Callable[[float], None]
) -> None:
    """A revocation nobody wakes the watch for (entered in the revoked set directly) is
    found by the periodic check; a refresh before it (newer cookie) closed nothing."""
    interval(0.02)
    stack, browser = await start(make_stack, crm)
    try:
        await sign_in(browser)
        ws, _ = await open_socket(browser, crm)
        stack.clock.advance(3600 - 30)  # the access token is due: a refresh, a new cookie
        async with await browser.post("/aliyun/refresh") as response:
            assert response.status == 200
        await asyncio.sleep(0.1)  # several checks, with the handshake's cookie now stale
        await assert_relays(ws)
        sessions = stack.app[SESSIONS]
        (sid,) = sessions.identity.watches
        sessions._revoked[sid] = stack.clock() + 3600
        await assert_closed_by_gateway(ws, crm, "signed out")
        await until_unwatched(stack)
    finally:
        await browser.close()


async def test_sign_out_on_another_replica_closes_the_socket(
    make_stack: MakeStack,
    crm: TestServer,
    interval: Callable[[float], None],
    tmp_path: Any,
    unused_tcp_port_factory: Callable[[], int],
) -> None:
    """With a shared store, a sign-in deleted there (another replica's sign-out) ends the
    socket at this replica's next check."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (scripts/install-system-packages.sh)")
    redis_server = RedisServer(unused_tcp_port_factory(), tmp_path / "redis")
    redis_server.start()
    redis = connect(redis_server.url)
    try:
        interval(0.02)
        stack, browser = await start(make_stack, crm, session={"store": Secret(redis_server.url)})
        try:
            await sign_in(browser)
            ws, agent = await open_socket(browser, crm)
            assert agent is not None
            await asyncio.sleep(0.1)  # several checks: the stored sign-in keeps it open
            await assert_relays(ws)
            keys = await redis.keys(SESSION_PREFIX + "*")
            assert len(keys) == 1
            await redis.delete(*keys)  # what a sign-out on another replica does
            await assert_closed_by_gateway(ws, crm, "signed out")
            await until_unwatched(stack)
        finally:
            await browser.close()
    finally:
        await redis.aclose()
        redis_server.stop()


async def test_the_sign_ins_absolute_end_closes_the_socket(
    make_stack: MakeStack, crm: TestServer, interval: Callable[[float], None]
) -> None:
    """created_at + session.max_age ends the socket, whatever the browser did since."""
    interval(0.02)
    stack, browser = await start(make_stack, crm)
    try:
        await sign_in(browser)
        ws, _ = await open_socket(browser, crm)
        stack.clock.advance(stack.config.session.max_age)
        await assert_closed_by_gateway(ws, crm, "sign-in expired")
        await until_unwatched(stack)
    finally:
        await browser.close()


async def test_registration_goes_with_the_socket(
    make_stack: MakeStack, crm: TestServer, interval: Callable[[float], None]
) -> None:
    """A socket closed by the browser (or the CRM) leaves no registration behind, and the
    sign-in goes on; sign-out afterwards has nothing left to close."""
    interval(3600.0)
    stack, browser = await start(make_stack, crm)
    try:
        await sign_in(browser)
        ws, _ = await open_socket(browser, crm)
        second, _ = await open_socket(browser, crm)
        sessions = stack.app[SESSIONS]
        (wakes,) = sessions.identity.watches.values()
        assert len(wakes) == 2  # one per socket of the same sign-in
        await ws.close()
        assert (await asyncio.wait_for(crm.app[EVENTS].get(), WAIT))[0] == "closed"
        await second.close()
        assert (await asyncio.wait_for(crm.app[EVENTS].get(), WAIT))[0] == "closed"
        await until_unwatched(stack)
        assert (await browser.session())["signedIn"] is True
        await sign_out(browser)
        assert not sessions.identity.watches
    finally:
        await browser.close()


async def test_store_outage_keeps_the_socket_and_a_failing_check_ends_it(
    make_stack: MakeStack,
    crm: TestServer,
    interval: Callable[[float], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A store that cannot answer is not a sign-out (the socket stays); a check that fails
    for any other reason cannot vouch for the sign-in: 1011 to the browser, 1000 to the CRM."""
    interval(0.02)
    stack, browser = await start(make_stack, crm)
    try:
        await sign_in(browser)
        ws, _ = await open_socket(browser, crm)
        store = stack.app[SESSIONS].store

        async def store_down(*args: Any, **kwargs: Any) -> None:
            raise StoreUnavailable()

        monkeypatch.setattr(store, "current", store_down)
        await asyncio.sleep(0.1)  # several checks against the down store
        await assert_relays(ws)

        async def broken(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr(store, "current", broken)
        msg = await ws.receive(timeout=WAIT)
        assert (msg.type, msg.data, msg.extra) == (WSMsgType.CLOSE, 1011, "sign-in check failed")
        await ws.close()
        assert await asyncio.wait_for(crm.app[EVENTS].get(), WAIT) == ("closed", 1000)
        await until_unwatched(stack)
    finally:
        await browser.close()
