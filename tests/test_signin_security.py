"""Sign-in hardening end to end: start, state, callbacks, PKCE, id_token, return_to, cookies."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from cryptography.fernet import Fernet
from stack import AGENT1, CLIENT_ID, CLIENT_SECRET, Browser, Stack, parse_form
from yarl import URL

from ccc_gateway.app import create_app
from ccc_gateway.auth.login_state import COOKIE_NAME as LOGIN_COOKIE
from ccc_gateway.config.load import Config, Secret
from ccc_gateway.runtime.tls import server_context
from ccc_gateway.sessions.manager import SESSION_COOKIE

# Helpers


async def callback_url(browser: Browser, *, return_to: str | None = None) -> URL:
    """Start a sign-in and sign in at the emulator; the callback URL, not yet visited."""
    answer = await browser.authorize(await browser.start_sign_in(return_to))
    assert answer.status == 302, await answer.text()
    return URL(answer.headers["Location"])


async def visit(browser: Browser, url: URL | str) -> aiohttp.ClientResponse:
    response = await browser.client.get(url, allow_redirects=False)
    await response.read()
    return response


def set_cookies(browser: Browser, cookies: dict[str, str]) -> None:
    browser.client.cookie_jar.update_cookies(cookies, response_url=browser.stack.url)


def jar(browser: Browser) -> dict[str, str]:
    return {c.key: c.value for c in browser.client.cookie_jar}


async def restart_gateway(stack: Stack, config: Config, **runner: Any) -> None:
    """Replace the running gateway by a new process-alike on the same port (same clock)."""
    port = stack.gateway.port  # the emulator knows this redirect_uri; keep it
    await stack.gateway.close()
    app = create_app(config, clock=stack.clock)
    server = TestServer(app, host="127.0.0.1", port=port, scheme="https")
    tls = stack.config.tls
    assert tls is not None
    await server.start_server(ssl=server_context(tls.cert, tls.key), **runner)
    stack.gateway, stack.app, stack.config = server, app, config


def with_keys(config: Config, *keys: str) -> Config:
    session = dataclasses.replace(config.session, keys=tuple(Secret(k) for k in keys))
    return dataclasses.replace(config, session=session)


def assert_retry_page(response: aiohttp.ClientResponse, body: str) -> None:
    assert response.status == 400
    assert response.content_type == "text/html"
    assert 'href="/aliyun/auth"' in body
    assert "Traceback" not in body


# Sign-in start


async def test_crm_login_first_then_the_sign_in_proceeds(browser: Browser):
    """Without a CRM login: CRM login page, then back to /aliyun/auth, then on to Alibaba."""
    first = await visit(browser, browser.url("/aliyun/auth?return_to=/customers"))
    assert first.status == 302
    login = URL(first.headers["Location"])
    assert login.path == "/login"
    assert URL(login.query["next"]).path == "/aliyun/auth"
    assert URL(login.query["next"]).query["return_to"] == "/customers"
    async with browser.client.get(browser.url(str(login))) as page:
        _, fields = parse_form(await page.text())
    fields.update(username="edward", password="1234")
    posted = await browser.client.post(browser.url("/login"), data=fields, allow_redirects=False)
    assert posted.status == 303
    back = posted.headers["Location"]
    assert URL(back).path == "/aliyun/auth"
    onward = await visit(browser, browser.url(back))
    # A page that moves on by meta refresh, not a 302: after the CRM's login form a browser
    # applies the CRM's CSP form-action to redirects, and 'self' would block Alibaba's page.
    assert onward.status == 200
    refresh = (await onward.text()).split('http-equiv="refresh" content="0;url=', 1)[1]
    authorize = URL(refresh.split('"', 1)[0].replace("&amp;", "&"))
    assert authorize.path == "/oauth2/v1/auth"
    answer = await browser.authorize(authorize)
    done = await visit(browser, URL(answer.headers["Location"]))
    assert done.status == 303 and done.headers["Location"] == "/customers"


async def test_authorize_request_carries_every_parameter(browser: Browser):
    """client_id, redirect_uri, code, state, S256 challenge, offline, scope and nonce."""
    await browser.login_crm()
    query = (await browser.start_sign_in()).query
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == str(browser.url("/aliyun/auth/callback"))
    assert query["response_type"] == "code"
    assert query["code_challenge_method"] == "S256"
    assert query["access_type"] == "offline"
    assert query["scope"] == "openid aliuid profile"
    assert len(query["nonce"]) >= 16 and len(query["state"]) >= 20
    assert len(query["code_challenge"]) == 43


async def test_no_scope_parameter_when_scope_is_none(make_stack: Callable[..., Any]):
    """With aliyun.scope None the authorize request carries no scope at all."""
    stack = await make_stack(aliyun={"scope": None})
    browser = stack.browser()
    try:
        await browser.login_crm()
        assert "scope" not in (await browser.start_sign_in()).query
    finally:
        await browser.close()


async def test_login_cookie_is_samesite_none_and_secure(browser: Browser):
    """The login-state cookie survives a cross-site form_post: SameSite=None; Secure; HttpOnly."""
    await browser.login_crm()
    response = await visit(browser, browser.url("/aliyun/auth"))
    (header,) = [h for h in response.headers.getall("Set-Cookie") if h.startswith(LOGIN_COOKIE)]
    assert "SameSite=None" in header and "Secure" in header and "HttpOnly" in header
    assert "Path=/" in header and "Domain" not in header


async def test_several_tabs_finish_in_reverse_order(browser: Browser):
    """Three sign-ins started at once all finish, newest first."""
    await browser.login_crm()
    callbacks = [await callback_url(browser, return_to=f"/p{n}") for n in range(3)]
    for n, url in reversed(list(enumerate(callbacks))):
        done = await visit(browser, url)
        assert done.status == 303 and done.headers["Location"] == f"/p{n}"
    assert LOGIN_COOKIE not in jar(browser)


async def test_sixth_sign_in_evicts_the_oldest(browser: Browser):
    """At most five sign-ins are kept: the first of six can no longer finish."""
    await browser.login_crm()
    callbacks = [await callback_url(browser) for _ in range(6)]
    oldest = await visit(browser, callbacks[0])
    assert_retry_page(oldest, await oldest.text())
    for url in callbacks[1:]:
        assert (await visit(browser, url)).status == 303


# Callback: state


async def test_replayed_callback_is_refused(browser: Browser):
    """The same callback URL works once; a replay, even with the old login cookie, is 400."""
    await browser.login_crm()
    url = await callback_url(browser)
    saved = jar(browser)[LOGIN_COOKIE]
    assert (await visit(browser, url)).status == 303
    again = await visit(browser, url)
    assert_retry_page(again, await again.text())
    set_cookies(browser, {LOGIN_COOKIE: saved})
    replay = await visit(browser, url)
    assert_retry_page(replay, await replay.text())


async def test_state_expires_after_the_ttl(stack: Stack, browser: Browser):
    """A callback later than session.login_state_ttl is refused."""
    await browser.login_crm()
    url = await callback_url(browser)
    stack.clock.advance(stack.config.session.login_state_ttl + 1)
    late = await visit(browser, url)
    assert_retry_page(late, await late.text())


async def test_unknown_state_is_refused(browser: Browser):
    """A state no sign-in of this browser carries is refused, as is a missing one."""
    await browser.login_crm()
    await browser.start_sign_in()
    for query in ("code=abc&state=not-ours", "code=abc"):
        response = await visit(browser, browser.url(f"/aliyun/auth/callback?{query}"))
        assert_retry_page(response, await response.text())


async def test_callback_url_of_another_browser_is_refused(stack: Stack, browser: Browser):
    """Browser B cannot finish A's sign-in (no login cookie); A still can afterwards."""
    await browser.login_crm()
    url = await callback_url(browser)
    other = stack.browser()
    try:
        await other.login_crm()
        stolen = await visit(other, url)
        assert_retry_page(stolen, await stolen.text())
        assert (await other.session())["signedIn"] is False
    finally:
        await other.close()
    assert (await visit(browser, url)).status == 303


async def test_tampered_login_cookie_is_refused(browser: Browser):
    """The login cookie is encrypted: a modified one yields no state, so no code exchange."""
    await browser.login_crm()
    url = await callback_url(browser)
    value = jar(browser)[LOGIN_COOKIE]
    flipped = value[:30] + ("A" if value[30] != "A" else "B") + value[31:]
    set_cookies(browser, {LOGIN_COOKIE: flipped})
    response = await visit(browser, url)
    assert_retry_page(response, await response.text())


# Callback: answers from Alibaba


async def test_access_denied_is_a_readable_page(browser: Browser):
    """Cancelling at Alibaba shows a 400 page with a retry link, no traceback."""
    await browser.login_crm()
    authorize = await browser.start_sign_in()
    async with browser.client.get(authorize) as page:
        _, fields = parse_form(await page.text())
    fields["action"] = "cancel"
    answer = await browser.client.post(
        browser.stack.emulator_url / "oauth2/v1/auth", data=fields, allow_redirects=False
    )
    callback = URL(answer.headers["Location"])
    assert callback.query["error"] == "access_denied"
    response = await visit(browser, callback)
    body = await response.text()
    assert_retry_page(response, body)
    assert "cancelled" in body


async def test_other_provider_errors_are_readable_pages(browser: Browser):
    """Any other error reply is a 400 page naming the error, escaped, with a retry link."""
    await browser.login_crm()
    state = (await browser.start_sign_in()).query["state"]
    query = {"error": "server_error", "error_description": "<script>x</script>", "state": state}
    response = await visit(browser, browser.url("/aliyun/auth/callback").with_query(query))
    body = await response.text()
    assert_retry_page(response, body)
    assert "server_error" in body and "<script>" not in body


async def test_form_post_callback_works_cross_site(stack: Stack, browser: Browser):
    """A form_post callback carrying only the SameSite=None login cookie signs in."""
    await browser.login_crm()
    authorize = (await browser.start_sign_in()).update_query(response_mode="form_post")
    answer = await browser.authorize(authorize)
    assert answer.status == 200
    action, fields = parse_form(await answer.text())
    assert action == str(browser.url("/aliyun/auth/callback"))
    assert set(fields) == {"code", "state"}
    # A cross-site POST: the browser sends the SameSite=None login cookie, not the CRM's Lax one.
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=browser.ssl_context),
        cookie_jar=aiohttp.CookieJar(unsafe=True),
    ) as cross_site:
        cross_site.cookie_jar.update_cookies(
            {LOGIN_COOKIE: jar(browser)[LOGIN_COOKIE]}, response_url=stack.url
        )
        posted = await cross_site.post(action, data=fields, allow_redirects=False)
        assert posted.status == 303, await posted.text()
        session_cookies = {c.key: c.value for c in cross_site.cookie_jar if c.key != LOGIN_COOKIE}
    assert SESSION_COOKIE in session_cookies
    set_cookies(browser, session_cookies)
    session = await browser.session()
    assert session["signedIn"] is True and session["crmUser"] == "edward"


async def test_code_exchange_needs_the_right_verifier(stack: Stack, browser: Browser):
    """The emulator refuses the code with a wrong PKCE verifier; the gateway's own works."""
    await browser.login_crm()
    url = await callback_url(browser)
    form = {
        "grant_type": "authorization_code",
        "code": url.query["code"],
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uri": str(browser.url("/aliyun/auth/callback")),
        "code_verifier": "x" * 43,
    }
    async with aiohttp.ClientSession() as client:
        async with client.post(stack.emulator_url / "v1/token", data=form) as response:
            assert response.status == 400
            assert (await response.json())["error"] == "invalid_grant"


async def test_code_exchange_sends_secret_and_verifier(stack: Stack, browser: Browser):
    """The token request carries client_secret, the redirect_uri and a 43+ char verifier."""
    await browser.login_crm()
    await browser.sign_in()
    (call,) = await stack.emulator_requests("/v1/token")
    form = call["form"]
    assert form["client_secret"] == CLIENT_SECRET and form["client_id"] == CLIENT_ID
    assert form["redirect_uri"] == str(browser.url("/aliyun/auth/callback"))
    assert 43 <= len(form["code_verifier"]) <= 128


async def test_expires_in_as_a_string_works(make_stack: Callable[..., Any]):
    """A token answer with expires_in "3600" (a string) signs in with the right expiry."""
    stack = await make_stack(emulator_changes={"expires_in_as_string": True})
    browser = stack.browser()
    try:
        await browser.login_crm()
        assert (await browser.sign_in()).status == 303
        session = await browser.session()
        assert session["signedIn"] is True and session["expiresAt"].endswith("Z")
    finally:
        await browser.close()


async def test_key_rotation_at_alibaba_refetches_the_jwks_once(stack: Stack, browser: Browser):
    """Alibaba rotates keys between authorize and callback: one JWKS re-fetch, then success."""
    await browser.login_crm()
    await browser.sign_in()
    url = await callback_url(browser)  # no wait: a rotation right after a fetch is picked up
    await stack.emulator_knob("POST", "_emulator/keys/rotate")
    assert (await visit(browser, url)).status == 303
    assert len(await stack.emulator_requests("/v1/keys")) == 2


async def test_userinfo_gives_the_agent_without_an_id_token(make_stack: Callable[..., Any]):
    """Without the openid scope there is no id_token; the agent comes from /v1/userinfo."""
    stack = await make_stack(aliyun={"scope": "aliuid profile"})
    browser = stack.browser()
    try:
        await browser.login_crm()
        assert (await browser.sign_in()).status == 303
        assert (await browser.session())["agent"]["upn"] == AGENT1[0]
        assert len(await stack.emulator_requests("/v1/userinfo")) == 1
        assert await stack.emulator_requests("/v1/keys") == []
    finally:
        await browser.close()


# return_to through the whole flow

RETURN_TO = {
    "//evil.example": "/",
    "/\\evil.example": "/",
    "https://evil.example": "/",
    "/%2F%2Fevil.example": "/",
    "/.//evil.example": "/",
    "/\t/evil.example": "/",
    "javascript:alert(1)": "/",
    "/x%0d%0aSet-Cookie:a=b": "/",
    "/x?next=//evil": "/x?next=//evil",
    "/customers": "/customers",
}


async def test_return_to_is_honoured_only_as_a_same_origin_path(browser: Browser):
    """The final redirect goes to the safe path, never to `//` or a scheme."""
    await browser.login_crm()
    for value, expected in RETURN_TO.items():
        done = await visit(browser, await callback_url(browser, return_to=value))
        location = done.headers["Location"]
        assert location == expected, value
        assert not location.startswith("//") and URL(location).scheme == ""


# The session cookie


async def test_session_cookie_attributes_on_the_wire(browser: Browser):
    """__Host-ccc-session is Secure, HttpOnly, SameSite=Lax, Path=/, without Domain."""
    await browser.login_crm()
    done = await visit(browser, await callback_url(browser))
    headers = [h for h in done.headers.getall("Set-Cookie") if h.startswith(SESSION_COOKIE)]
    assert headers
    for header in headers:
        parts = [p.strip() for p in header.split(";")]
        assert {"Secure", "HttpOnly", "SameSite=Lax", "Path=/"} <= set(parts)
        assert not any(p.lower().startswith("domain") for p in parts)


async def test_signing_out_deletes_with_the_same_attributes(browser: Browser):
    """The deletion cookies of sign-out carry Secure, HttpOnly, SameSite=Lax and Path=/."""
    await browser.login_crm()
    await browser.sign_in()
    async with await browser.post("/aliyun/revoke") as response:
        deletions = [
            h for h in response.headers.getall("Set-Cookie") if h.startswith(SESSION_COOKIE)
        ]
    assert deletions
    for header in deletions:
        assert "Max-Age=0" in header and "Secure" in header and "HttpOnly" in header
        assert "SameSite=Lax" in header and "Path=/" in header and "Domain" not in header


@pytest.mark.parametrize("value", ["garbage", "", "gAAAAA", "%00%ff", "x" * 3000])
async def test_broken_session_cookie_is_signed_out_not_500(browser: Browser, value: str):
    """A garbage session cookie means signed out: 200 on /aliyun/session, 401 on refresh."""
    await browser.login_crm()
    set_cookies(browser, {SESSION_COOKIE: value})
    assert (await browser.session())["signedIn"] is False
    async with await browser.post("/aliyun/refresh") as response:
        assert response.status == 401
        assert (await response.json())["errorCode"] == "NotAuthenticated"


async def test_tampered_and_truncated_session_cookie(browser: Browser):
    """Flipping one character or cutting the real cookie signs the browser out."""
    await browser.login_crm()
    await browser.sign_in()
    value = jar(browser)[SESSION_COOKIE]
    for broken in (value[:-8], value[:50] + ("A" if value[50] != "A" else "B") + value[51:]):
        set_cookies(browser, {SESSION_COOKIE: broken})
        assert (await browser.session())["signedIn"] is False


async def test_session_key_rotation(make_stack: Callable[..., Any]):
    """Keys [A] → [B, A]: still signed in and re-encrypted under B; [B] refuses the A cookie."""
    key_a, key_b = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    stack = await make_stack(session={"keys": (Secret(key_a),)})
    browser = stack.browser()
    try:
        await browser.login_crm()
        await browser.sign_in()
        under_a = jar(browser)[SESSION_COOKIE]
        await restart_gateway(stack, with_keys(stack.config, key_b, key_a))
        assert (await browser.session())["signedIn"] is True
        under_b = jar(browser)[SESSION_COOKIE]
        assert under_b != under_a
        await restart_gateway(stack, with_keys(stack.config, key_b))
        assert (await browser.session())["signedIn"] is True
        set_cookies(browser, {SESSION_COOKIE: under_a})
        assert (await browser.session())["signedIn"] is False
    finally:
        await browser.close()


async def test_idle_timeout_and_absolute_lifetime(make_stack: Callable[..., Any]):
    """Unused past idle_timeout, or older than max_age however used: signed out."""
    stack = await make_stack(session={"idle_timeout": 1800.0, "max_age": 5000.0})
    browser = stack.browser()
    try:
        await browser.login_crm()
        await browser.sign_in()
        stack.clock.advance(1801)
        assert (await browser.session())["signedIn"] is False
        await browser.sign_in()
        for _ in range(4):  # used every 20 minutes: the idle timeout never strikes
            stack.clock.advance(1200)
            async with await browser.post("/aliyun/refresh") as response:
                assert response.status == 200
        stack.clock.advance(250)  # 5050 s after the sign-in
        assert (await browser.session())["signedIn"] is False
    finally:
        await browser.close()
