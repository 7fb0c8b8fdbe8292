"""CRM binding without a CRM endpoint: `session.crm_binding: cookie` (issue 17, point 5).

The sign-in is bound to a keyed hash of the CRM's own session cookie (the sample CRM's
`crm_session`); a CRM logout or another user's login changes it, and the sign-in stops
working as a whoami mismatch does (403 CrmUserMismatch, the softphone asks to sign in again).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, make_mocked_request
from stack import AGENT2, Browser, Stack
from yarl import URL

from ccc_gateway.keys import SESSIONS
from ccc_gateway.sessions.crm_binding import CrmSessionCookie

COOKIE_MODE = {"crm_binding": "cookie", "crm_session_cookie": "crm_session"}


async def _cookie_stack(make_stack: Callable[..., Awaitable[Stack]]) -> Stack:
    # No whoami endpoint is used: the sample CRM's /api/me is never asked.
    return await make_stack(upstream={"whoami_path": None}, session=COOKIE_MODE)


async def _refresh(browser: Browser) -> tuple[int, dict[str, Any]]:
    async with await browser.post("/aliyun/refresh") as response:
        return response.status, await response.json()


async def test_cookie_binding_signs_in_and_shows_no_hash(
    make_stack: Callable[..., Awaitable[Stack]],
) -> None:
    """With a CRM login the sign-in works; the session names no CRM user (it has none)."""
    stack = await _cookie_stack(make_stack)
    assert isinstance(stack.app[SESSIONS].crm, CrmSessionCookie)
    browser = stack.browser()
    try:
        await browser.login_crm()
        assert (await browser.sign_in()).status == 303
        session = await browser.session()
        assert session["signedIn"] is True and session["crmUser"] is None
        assert (await _refresh(browser))[0] == 200
    finally:
        await browser.close()


async def test_crm_logout_and_login_break_the_cookie_binding(
    make_stack: Callable[..., Awaitable[Stack]],
) -> None:
    """A CRM logout and a new login (a new cookie value) make the sign-in unusable: 403."""
    stack = await _cookie_stack(make_stack)
    browser = stack.browser()
    try:
        await browser.login_crm("edward", "1234")
        await browser.sign_in(AGENT2)
        await browser.logout_crm()
        await browser.login_crm("sissi", "5678")
        assert (await browser.session())["signedIn"] is False
        status, body = await _refresh(browser)
        assert status == 403 and body["errorCode"] == "CrmUserMismatch"
        assert body["login"] == "/aliyun/auth"
    finally:
        await browser.close()


async def test_same_user_logging_in_again_also_breaks_it(
    make_stack: Callable[..., Awaitable[Stack]],
) -> None:
    """Even the same CRM user's new login is a new CRM session: the binding is to the session."""
    stack = await _cookie_stack(make_stack)
    browser = stack.browser()
    try:
        await browser.login_crm()
        await browser.sign_in()
        await browser.logout_crm()
        await browser.login_crm()
        assert (await _refresh(browser))[0] == 403
    finally:
        await browser.close()


async def test_sign_in_without_the_crm_cookie_goes_to_the_crm_login(
    make_stack: Callable[..., Awaitable[Stack]],
) -> None:
    """No CRM session cookie: /aliyun/auth sends the browser to upstream.login_path first."""
    stack = await _cookie_stack(make_stack)
    browser = stack.browser()
    try:
        async with browser.client.get(
            browser.url("/aliyun/auth"), allow_redirects=False
        ) as response:
            assert response.status == 302
            assert response.headers["Location"].startswith("/login?next=")
    finally:
        await browser.close()


async def test_the_crm_cookie_value_never_reaches_a_log(
    make_stack: Callable[..., Awaitable[Stack]], caplog: pytest.LogCaptureFixture
) -> None:
    """The CRM's session cookie is neither logged nor stored: only its keyed hash exists."""
    caplog.set_level(logging.DEBUG)
    stack = await _cookie_stack(make_stack)
    browser = stack.browser()
    try:
        await browser.login_crm()
        crm_cookie = browser.cookie("crm_session")
        assert crm_cookie
        await browser.sign_in()
        await _refresh(browser)
        async with await browser.post("/aliyun/revoke") as response:
            assert response.status == 200
    finally:
        await browser.close()
    logged = "\n".join(f"{r.getMessage()} {r.__dict__.get('fields')}" for r in caplog.records)
    assert "signed in" in logged
    assert crm_cookie not in logged


async def test_cookie_hash_is_keyed_and_stable() -> None:
    """The same cookie gives the same value under one key, another under another key, and the
    value never contains the cookie."""
    request = make_mocked_request("GET", "/", headers={"Cookie": "sessionid=abc123secret"})
    first = await CrmSessionCookie("sessionid", "k" * 44).current_user(request)
    again = await CrmSessionCookie("sessionid", "k" * 44).current_user(request)
    other = await CrmSessionCookie("sessionid", "j" * 44).current_user(request)
    assert first is not None and first == again and first != other
    assert "abc123secret" not in first
    missing = make_mocked_request("GET", "/", headers={"Cookie": "other=1"})
    assert await CrmSessionCookie("sessionid", "k" * 44).current_user(missing) is None


async def test_whoami_gets_the_public_host_with_preserve_host(
    make_stack: Callable[..., Awaitable[Stack]],
) -> None:
    """With preserve_host the whoami lookup carries the public Host too, as the pages do (a
    CRM that refuses unknown Hosts, like Django's ALLOWED_HOSTS, answers both)."""
    hosts: list[str] = []

    async def whoami(request: web.Request) -> web.Response:
        hosts.append(request.host)
        return web.json_response({"user": "edward"})

    app = web.Application()
    app.router.add_get("/api/me", whoami)
    crm = TestServer(app, host="127.0.0.1")
    await crm.start_server()
    try:
        url = URL(f"http://127.0.0.1:{crm.port}")
        stack = await make_stack(upstream={"url": url, "preserve_host": True})
        browser = stack.browser()
        try:
            browser.client.cookie_jar.update_cookies({"crm": "s-edward"}, browser.url("/"))
            assert (await browser.session())["crmUser"] == "edward"
        finally:
            await browser.close()
    finally:
        await crm.close()
    assert hosts == [f"127.0.0.1:{stack.gateway.port}"]
