"""End-to-end sign-in against the emulator: start, callback, session, refresh, revoke."""

from __future__ import annotations

import asyncio

from stack import AGENT1, AGENT2, Browser, Stack


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
