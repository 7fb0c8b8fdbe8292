"""`aiohttp_session.get_session(request)` for code that extends the gateway (sessions/view.py).

A route added to the gateway's app reads the signed-in agent through the library's own
function: the sign-in the manager accepts (lifetimes, revocation), with no token in it, and
read-only.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp_session
import pytest
from aiohttp import web
from stack import Browser, Stack
from test_session_store import RedisServer, redis_server  # noqa: F401 (a fixture)

from ccc_gateway.config.load import Secret
from ccc_gateway.keys import SESSIONS
from ccc_gateway.sessions.view import READ_ONLY, GatewaySession

MakeStack = Callable[..., Awaitable[Stack]]
FIELDS = {"agent_upn", "agent_name", "agent_uid", "crm_user", "signed_in_at", "expires_at"}


async def agent(request: web.Request) -> web.Response:
    """An extension's handler: what get_session shows, and the sign-in's secrets to compare."""
    session = await aiohttp_session.get_session(request)
    signin = await request.app[SESSIONS].load(request)
    secrets = [] if signin is None else [signin.tokens.access_token, signin.sid]
    secrets += [signin.tokens.refresh_token] if signin and signin.tokens.refresh_token else []
    return web.json_response(
        {
            "new": session.new,
            "identity": session.identity,
            "fields": dict(session),
            "secrets": secrets,
        }
    )


async def write(request: web.Request) -> web.Response:
    session = await aiohttp_session.get_session(request)
    try:
        session["agent_upn"] = "mallory@example.com"
    except TypeError as exc:
        return web.json_response({"refused": str(exc)})
    return web.json_response({"refused": None})


def extend(app: web.Application) -> None:
    app.router.add_get("/ext/agent", agent)
    app.router.add_post("/ext/agent", write)


async def signed_in(make_stack: MakeStack, **sections: Any) -> tuple[Stack, Browser]:
    stack = await make_stack(extend=extend, **sections)
    browser = stack.browser()
    await browser.login_crm()
    assert (await browser.sign_in()).status == 303
    return stack, browser


async def shown(browser: Browser) -> dict[str, Any]:
    async with await browser.get("/ext/agent") as response:
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body


def assert_agent_without_secrets(body: dict[str, Any], stack: Stack) -> None:
    assert body["new"] is False and body["identity"] is None
    fields = body["fields"]
    assert set(fields) == FIELDS
    assert fields["agent_upn"] and fields["crm_user"] == "edward"
    config = stack.config.session
    assert fields["expires_at"] <= fields["signed_in_at"] + config.max_age
    text = repr(fields)
    assert body["secrets"] and not any(secret in text for secret in body["secrets"])


async def test_get_session_in_an_extension_route_shows_the_agent_and_no_token(
    make_stack: MakeStack,
) -> None:
    stack, browser = await signed_in(make_stack)
    try:
        assert_agent_without_secrets(await shown(browser), stack)
    finally:
        await browser.close()


async def test_get_session_with_the_redis_store(
    make_stack: MakeStack,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    stack, browser = await signed_in(make_stack, session={"store": Secret(redis_server.url)})
    try:
        assert_agent_without_secrets(await shown(browser), stack)
    finally:
        await browser.close()


async def test_nobody_signed_in_and_a_revoked_copy_show_an_empty_session(
    make_stack: MakeStack,
) -> None:
    _, browser = await signed_in(make_stack)
    try:
        copy = {c.key: c.value for c in browser.client.cookie_jar if c.key.startswith("__Host-")}
        async with await browser.post("/aliyun/revoke") as response:
            assert response.status == 200
        body = await shown(browser)
        assert body["new"] is True and body["fields"] == {}
        browser.client.cookie_jar.update_cookies(copy, browser.stack.url)
        body = await shown(browser)  # the manager's revocation list holds above the library
        assert body["new"] is True and body["fields"] == {}
    finally:
        await browser.close()


async def test_writing_to_the_session_is_refused_and_sets_no_cookie(
    make_stack: MakeStack,
) -> None:
    _, browser = await signed_in(make_stack)
    try:
        async with await browser.post("/ext/agent") as response:
            assert response.status == 200
            assert (await response.json())["refused"] == READ_ONLY
            assert "Set-Cookie" not in response.headers
        assert (await shown(browser))["fields"]["agent_upn"] != "mallory@example.com"
    finally:
        await browser.close()


async def test_an_empty_view_refuses_every_write_too() -> None:
    session = GatewaySession(None)
    assert session.new and session.empty
    with pytest.raises(TypeError):
        session.invalidate()
    with pytest.raises(TypeError):
        del session["agent_upn"]
