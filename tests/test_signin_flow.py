"""End-to-end sign-in against the emulator: start, callback, session, refresh, revoke."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from stack import AGENT1, AGENT2, CLIENT_SECRET, Browser, Stack
from test_signin_security import jar, restart_gateway, set_cookies
from yarl import URL

from ccc_gateway.keys import OAUTH, SESSIONS


async def test_sign_in_through_the_emulator(stack: Stack, browser: Browser):
    """A CRM user signs in as a RAM user and the session names the agent and the CRM user."""
    await browser.login_crm("edward", "1234")
    answer = await browser.sign_in(AGENT1, return_to="/customers")
    assert answer.status == 303
    assert answer.headers["Location"] == "/customers"
    session = await browser.session()
    assert session["signedIn"] is True
    assert session["agent"]["upn"] == AGENT1[0]
    assert session["crmUser"] == "edward"
    assert session["expiresAt"].endswith("Z")
    token_calls = await stack.emulator_requests("/v1/token")
    assert len(token_calls) == 1
    sent = token_calls[0]["form"]
    assert sent["grant_type"] == "authorization_code"
    assert sent["client_secret"] == "test-client-secret-xyz"
    assert len(sent["code_verifier"]) >= 43


async def test_authorize_request_carries_pkce_s256_and_offline(browser: Browser):
    """The gateway asks Alibaba for a code with S256 PKCE, a state and offline access."""
    await browser.login_crm()
    authorize = await browser.start_sign_in()
    query = authorize.query
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    assert query["access_type"] == "offline"
    assert query["client_id"] == "test-client-id"
    assert len(query["state"]) >= 20 and len(query["code_challenge"]) == 43
    assert "codeChallenge" not in query


async def test_signed_out_session_answers_200(browser: Browser):
    """/aliyun/session says signedIn false (200) before any sign-in."""
    await browser.login_crm()
    assert await browser.session() == {
        "signedIn": False,
        "agent": None,
        "expiresAt": None,
        "crmUser": "edward",
    }


async def test_sign_in_without_crm_login_goes_to_crm_login_first(browser: Browser):
    """/aliyun/auth without a CRM login sends the person to the CRM's login page and back."""
    async with browser.client.get(
        browser.url("/aliyun/auth?return_to=/customers"), allow_redirects=False
    ) as r:
        assert r.status == 302
        assert r.headers["Location"].startswith("/login?next=")
        assert "return_to" in r.headers["Location"]


async def test_refresh_on_expiry_is_transparent(stack: Stack, browser: Browser):
    """When the access token nears expiry, the next /aliyun use refreshes it silently."""
    await browser.login_crm()
    await browser.sign_in()
    before = await browser.session()
    stack.clock.advance(3600 - 30)  # inside the 60 s leeway
    async with await browser.post("/aliyun/refresh") as response:
        assert response.status == 200
    after = await browser.session()
    assert after["signedIn"] is True and after["expiresAt"] != before["expiresAt"]
    grants = [r["form"]["grant_type"] for r in await stack.emulator_requests("/v1/token")]
    assert grants == ["authorization_code", "refresh_token"]


async def test_revoke_revokes_at_alibaba_and_clears(stack: Stack, browser: Browser):
    """Sign-out revokes the refresh token at Alibaba and the session is gone."""
    await browser.login_crm()
    await browser.sign_in()
    async with await browser.post("/aliyun/revoke") as response:
        assert response.status == 200
        assert (await response.json())["revoked"] is True
    assert (await browser.session())["signedIn"] is False
    revoked = [r["form"]["token"] for r in await stack.emulator_requests("/v1/revoke")]
    assert len(revoked) == 2  # the refresh token first, then the access token


async def test_crm_user_switch_makes_the_sign_in_unusable(stack: Stack, browser: Browser):
    """After edward logs out and sissi logs in on the same browser, edward's agent is not hers."""
    await browser.login_crm("edward", "1234")
    await browser.sign_in(AGENT2)
    await browser.logout_crm()
    await browser.login_crm("sissi", "5678")
    session = await browser.session()
    assert session["signedIn"] is False and session["crmUser"] == "sissi"
    async with await browser.post("/aliyun/refresh") as response:
        assert response.status == 403
        assert (await response.json())["errorCode"] == "CrmUserMismatch"


async def test_concurrent_refreshes_reach_alibaba_once(stack: Stack, browser: Browser):
    """Twenty parallel uses at expiry cause exactly one refresh at the emulator."""
    await browser.login_crm()
    await browser.sign_in()
    stack.clock.advance(3600)

    async def use() -> int:
        async with await browser.post("/aliyun/refresh") as response:
            return response.status

    assert await asyncio.gather(*(use() for _ in range(20))) == [200] * 20
    grants = [r["form"]["grant_type"] for r in await stack.emulator_requests("/v1/token")]
    assert grants.count("refresh_token") == 1


# Refresh


async def _refresh(browser: Browser) -> tuple[int, dict[str, Any]]:
    async with await browser.post("/aliyun/refresh") as response:
        return response.status, await response.json()


async def _refresh_tokens_sent(stack: Stack) -> list[str]:
    calls = await stack.emulator_requests("/v1/token")
    return [c["form"]["refresh_token"] for c in calls if c["form"]["grant_type"] == "refresh_token"]


async def test_old_refresh_token_is_kept_when_none_is_returned(stack: Stack, browser: Browser):
    """Alibaba returns no new refresh token: the next refresh uses the original one again."""
    await browser.login_crm()
    await browser.sign_in()
    for _ in range(2):
        stack.clock.advance(3600)
        assert (await _refresh(browser))[0] == 200
    first, second = await _refresh_tokens_sent(stack)
    assert first == second


async def test_rotated_refresh_tokens_work_across_refreshes(make_stack: Callable[..., Any]):
    """With rotation each refresh uses the token the previous one returned, and both succeed."""
    stack = await make_stack(emulator_changes={"rotate_refresh_tokens": True})
    browser = stack.browser()
    try:
        await browser.login_crm()
        await browser.sign_in()
        for _ in range(3):
            stack.clock.advance(3600)
            assert (await _refresh(browser))[0] == 200
        sent = await _refresh_tokens_sent(stack)
        assert len(set(sent)) == 3
    finally:
        await browser.close()


async def test_invalid_grant_ends_the_sign_in(stack: Stack, browser: Browser):
    """invalid_grant on refresh: 401 NotAuthenticated with a login link; old copies refused."""
    await browser.login_crm()
    await browser.sign_in()
    saved = jar(browser)
    await stack.emulator_knob(
        "POST", "_emulator/faults", {"endpoint": "token", "error": "invalid_grant"}
    )
    status, body = await _refresh(browser)
    assert status == 401
    assert body["errorCode"] == "NotAuthenticated" and body["login"] == "/aliyun/auth"
    assert (await browser.session())["signedIn"] is False
    set_cookies(browser, saved)
    assert (await browser.session())["signedIn"] is False


async def test_token_endpoint_500_keeps_the_session(stack: Stack, browser: Browser):
    """A 500 from the token endpoint is a 502; the sign-in stays and a later refresh works."""
    await browser.login_crm()
    await browser.sign_in()
    await stack.emulator_knob("POST", "_emulator/faults", {"endpoint": "token", "status": 500})
    status, body = await _refresh(browser)
    assert status == 502 and body["errorCode"]
    assert (await browser.session())["signedIn"] is True
    assert (await _refresh(browser))[0] == 200


async def test_slow_token_endpoint_is_a_504_and_keeps_the_session(make_stack: Callable[..., Any]):
    """A refresh slower than aliyun.timeout is a 504; the sign-in stays usable."""
    stack = await make_stack(aliyun={"timeout": 0.3})
    browser = stack.browser()
    try:
        await browser.login_crm()
        await browser.sign_in()
        await stack.emulator_knob("POST", "_emulator/faults", {"endpoint": "token", "delay": 1.0})
        assert (await _refresh(browser))[0] == 504
        assert (await browser.session())["signedIn"] is True
        assert (await _refresh(browser))[0] == 200
    finally:
        await browser.close()


async def test_refresh_on_demand_answers_the_session(stack: Stack, browser: Browser):
    """POST /aliyun/refresh refreshes a still-valid token at once and answers the session."""
    await browser.login_crm()
    await browser.sign_in()
    status, body = await _refresh(browser)
    assert status == 200
    assert body["signedIn"] is True and body["agent"]["upn"] == AGENT1[0]
    assert len(await _refresh_tokens_sent(stack)) == 1


async def test_refresh_without_sign_in_is_401_json(browser: Browser):
    """An API call without a sign-in gets 401 JSON with the login URL, never a redirect."""
    await browser.login_crm()
    status, body = await _refresh(browser)
    assert status == 401
    assert set(body) == {"requestId", "errorCode", "message", "login"}


# Sign-out


async def test_sign_out_when_alibaba_fails_still_clears(stack: Stack, browser: Browser):
    """Revocation failing at Alibaba: the session is cleared and revoked is false."""
    await browser.login_crm()
    await browser.sign_in()
    await stack.emulator_knob(
        "POST", "_emulator/faults", {"endpoint": "revoke", "status": 500, "count": 2}
    )
    async with await browser.post("/aliyun/revoke") as response:
        assert response.status == 200
        body = await response.json()
    assert body["revoked"] is False and body["signedIn"] is False
    assert "could not confirm" in body["message"]
    assert (await browser.session())["signedIn"] is False


async def test_sign_out_when_alibaba_is_down_still_clears(stack: Stack, browser: Browser):
    """With the emulator stopped, sign-out still clears the session (revoked false)."""
    await browser.login_crm()
    await browser.sign_in()
    await stack.emulator.close()
    async with await browser.post("/aliyun/revoke") as response:
        assert response.status == 200
        assert (await response.json())["revoked"] is False
    assert (await browser.session())["signedIn"] is False


async def test_old_cookie_copy_is_refused_after_sign_out(stack: Stack, browser: Browser):
    """A copy of the session cookie taken before sign-out is refused afterwards."""
    await browser.login_crm()
    await browser.sign_in()
    saved = jar(browser)
    async with await browser.post("/aliyun/revoke") as response:
        assert (await response.json())["revoked"] is True
    thief = stack.browser()
    try:
        set_cookies(thief, saved)
        assert (await thief.session())["signedIn"] is False
        async with await thief.post("/aliyun/refresh") as response:
            assert response.status == 401
    finally:
        await thief.close()


async def test_revoked_tokens_are_the_refresh_then_the_access_token(stack: Stack, browser: Browser):
    """Sign-out revokes the refresh token first, then the access token, with the secret."""
    await browser.login_crm()
    await browser.sign_in()
    await _refresh(browser)
    async with await browser.post("/aliyun/revoke") as response:
        assert response.status == 200
    forms = [r["form"] for r in await stack.emulator_requests("/v1/revoke")]
    assert [f["client_secret"] for f in forms] == [CLIENT_SECRET] * 2
    assert forms[0]["token"] == (await _refresh_tokens_sent(stack))[0]


# /aliyun/session


async def test_signed_in_session_has_exactly_the_contract_keys(browser: Browser):
    """Signed in: signedIn, agent{upn, name}, expiresAt, crmUser, nothing else."""
    await browser.login_crm()
    await browser.sign_in()
    session = await browser.session()
    assert set(session) == {"signedIn", "agent", "expiresAt", "crmUser"}
    assert set(session["agent"]) == {"upn", "name"}
    assert session["crmUser"] == "edward"


# CRM binding


async def test_crm_logout_ends_the_softphone_access(browser: Browser):
    """After a CRM logout the sign-in is unusable: 403 CrmUserMismatch on the API."""
    await browser.login_crm()
    await browser.sign_in()
    await browser.logout_crm()
    session = await browser.session()
    assert session["signedIn"] is False and session["crmUser"] is None
    status, body = await _refresh(browser)
    assert status == 403 and body["errorCode"] == "CrmUserMismatch"


@pytest.mark.parametrize(
    "changes",
    [{"session": {"crm_binding": False}}, {"upstream": {"whoami_path": None}}],
    ids=["crm_binding-off", "no-whoami"],
)
async def test_sign_in_without_crm_binding(make_stack: Callable[..., Any], changes: dict[str, Any]):
    """Binding off: no whoami calls, and a browser without a CRM login can sign in."""
    stack = await make_stack(**changes)
    assert stack.app[SESSIONS].crm is None
    browser = stack.browser()
    try:
        answer = await browser.sign_in()
        assert answer.status == 303
        session = await browser.session()
        assert session["signedIn"] is True and session["crmUser"] is None
        assert (await _refresh(browser))[0] == 200
    finally:
        await browser.close()


# Identity headers to the CRM


class EchoCrm:
    """A CRM that knows users by a `crm` cookie and echoes the headers it receives."""

    users: ClassVar[dict[str, str]] = {"s-edward": "edward", "s-sissi": "sissi"}

    async def whoami(self, request: web.Request) -> web.Response:
        user = self.users.get(request.cookies.get("crm", ""))
        if user is None:
            return web.json_response({}, status=401)
        return web.json_response({"user": user})

    async def echo(self, request: web.Request) -> web.Response:
        return web.json_response({k.lower(): v for k, v in request.headers.items()})


@pytest.fixture
async def echo_crm() -> AsyncIterator[TestServer]:
    crm = EchoCrm()
    app = web.Application()
    app.router.add_get("/api/me", crm.whoami)
    app.router.add_get("/echo", crm.echo)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def _echoed(browser: Browser) -> dict[str, str]:
    forged = {"X-Ccc-Agent-Upn": "forged@evil", "X-Ccc-Agent-Name": "Forged"}
    async with browser.client.get(browser.url("/echo"), headers=forged) as response:
        assert response.status == 200
        body: dict[str, str] = await response.json()
        return body


async def test_identity_headers_reach_the_crm_only_when_bound(
    make_stack: Callable[..., Any], echo_crm: TestServer
):
    """X-Ccc-Agent-* go to the CRM for a bound sign-in; forged copies never do."""
    url = URL(f"http://127.0.0.1:{echo_crm.port}")
    stack = await make_stack(upstream={"url": url, "identity_headers": True})
    browser = stack.browser()
    try:
        set_cookies(browser, {"crm": "s-edward"})
        before = await _echoed(browser)
        assert "x-ccc-agent-upn" not in before and "x-ccc-agent-name" not in before
        assert (await browser.sign_in()).status == 303
        signed_in = await _echoed(browser)
        assert signed_in["x-ccc-agent-upn"] == AGENT1[0]
        assert signed_in["x-ccc-agent-name"] == AGENT1[0]  # the emulator names agents by upn
        set_cookies(browser, {"crm": "s-sissi"})  # another CRM user on the same browser
        other = await _echoed(browser)
        assert "x-ccc-agent-upn" not in other and "x-ccc-agent-name" not in other
    finally:
        await browser.close()


async def test_no_identity_headers_unless_configured(stack: Stack, browser: Browser):
    """With identity_headers off (the default) the proxy gets no identity hook at all."""
    from ccc_gateway.app import PROXY

    assert stack.app[PROXY]._identity is None


# Logs


async def test_no_secret_ever_reaches_the_logs(
    stack: Stack, browser: Browser, caplog: pytest.LogCaptureFixture
):
    """A whole sign-in, refresh and sign-out log no token, code, verifier, secret or cookie."""
    await restart_gateway(stack, stack.config, access_log=None)  # as serve.py runs it
    caplog.set_level(logging.DEBUG)
    id_tokens: list[str] = []
    oauth = stack.app[OAUTH]
    verify = oauth.verify_id_token

    async def spy(id_token: str, *, nonce: str | None) -> dict[str, Any]:
        id_tokens.append(id_token)
        return await verify(id_token, nonce=nonce)

    oauth.verify_id_token = spy  # type: ignore[method-assign]
    cookies: set[str] = set()
    await browser.login_crm()
    await browser.start_sign_in()
    cookies.update(v for k, v in jar(browser).items() if k.startswith("__Host-"))
    await browser.sign_in()
    cookies.update(v for k, v in jar(browser).items() if k.startswith("__Host-"))
    stack.clock.advance(3600)
    assert (await _refresh(browser))[0] == 200
    cookies.update(v for k, v in jar(browser).items() if k.startswith("__Host-"))
    async with await browser.post("/aliyun/revoke") as response:
        assert (await response.json())["revoked"] is True
    secrets = {CLIENT_SECRET, *id_tokens, *cookies}
    for call in await stack.emulator_requests():
        form = call["form"]
        for name in ("code", "code_verifier", "refresh_token", "token", "client_secret"):
            if name in form:
                secrets.add(form[name])
    assert len(id_tokens) == 1 and len(secrets) >= 8
    logged = "\n".join(
        f"{r.name} {r.getMessage()} {r.__dict__.get('fields')} {r.exc_text}" for r in caplog.records
    )
    assert "signed in" in logged and "refreshed" in logged and "signed out" in logged
    leaked = [s for s in secrets if s and s in logged]
    assert leaked == []
