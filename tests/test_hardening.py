"""Security properties of the whole gateway, end to end (THREAT_MODEL.md names each one).

Every test runs the real gateway (HTTPS) in front of either the sample CRM or `RecordingCrm`,
a fake CRM that writes down everything it receives, with the Alibaba emulator behind it: what
the CRM never saw is asserted from its record, what Alibaba never saw from the emulator's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any, ClassVar

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.fernet import Fernet
from stack import AGENT1, CLIENT_SECRET, Browser, Stack
from test_signin_security import callback_url, jar, restart_gateway, set_cookies, visit
from yarl import URL

import ccc_gateway.app as gateway_app
from ccc_gateway.auth.login_state import COOKIE_NAME as LOGIN_COOKIE
from ccc_gateway.emulator.keys import STORE_KEY
from ccc_gateway.keys import SESSION_CODEC as SESSION_CODEC_KEY
from ccc_gateway.runtime.tls import client_context
from ccc_gateway.sessions.codec import SessionCodec
from ccc_gateway.sessions.cookie_storage import CookieSession
from ccc_gateway.sessions.manager import SESSION_COOKIE

MakeStack = Callable[..., Awaitable[Stack]]
API = "/aliyun/ccc/api"
EVIL = "https://evil.example"


# ---------------------------------------------------------------- a CRM that records


class RecordingCrm:
    """A CRM that knows users by a `crm` cookie and records every request it receives."""

    users: ClassVar[dict[str, str]] = {"s-edward": "edward", "s-sissi": "sissi"}

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    async def _record(self, request: web.Request) -> dict[str, Any]:
        body = await request.read()  # recorded only once whole: a cut-off upload is not "seen"
        entry = {
            "method": request.method,
            "raw_path": request.raw_path,
            "headers": list(request.headers.items()),
            "body": body.decode("latin-1"),
        }
        self.seen.append(entry)
        return entry

    async def whoami(self, request: web.Request) -> web.Response:
        await self._record(request)
        user = self.users.get(request.cookies.get("crm", ""))
        if user is None:
            return web.json_response({}, status=401)
        return web.json_response({"user": user})

    async def forge_cookie(self, request: web.Request) -> web.Response:
        await self._record(request)
        response = web.Response(text="ok")
        response.headers.add("Set-Cookie", f"{SESSION_COOKIE}=forged; Path=/; Secure")
        response.headers.add("Set-Cookie", f"{LOGIN_COOKIE}=forged; Path=/; Secure")
        response.headers.add("Set-Cookie", "crm_pref=1; Path=/")
        return response

    async def echo(self, request: web.Request) -> web.Response:
        return web.json_response(await self._record(request))

    def text(self) -> str:
        """Everything the CRM received, as one string to search for secrets."""
        return json.dumps(self.seen)

    def headers(self, index: int = -1) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name, value in self.seen[index]["headers"]:
            out.setdefault(name.lower(), []).append(value)
        return out


@pytest.fixture
async def recording_crm() -> AsyncIterator[tuple[RecordingCrm, TestServer]]:
    crm = RecordingCrm()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/api/me", crm.whoami)
    app.router.add_get("/forge-cookie", crm.forge_cookie)
    app.router.add_route("*", "/{tail:.*}", crm.echo)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield crm, server
    await server.close()


@pytest.fixture
async def rec(
    make_stack: MakeStack, recording_crm: tuple[RecordingCrm, TestServer]
) -> tuple[Stack, RecordingCrm]:
    """A stack whose CRM is the recording one (identity headers on, to prove they are ours)."""
    _, server = recording_crm
    url = URL(f"http://127.0.0.1:{server.port}")
    stack = await make_stack(upstream={"url": url, "identity_headers": True, "max_body_size": 4096})
    return stack, recording_crm[0]


@pytest.fixture
async def rec_browser(rec: tuple[Stack, RecordingCrm]) -> AsyncIterator[Browser]:
    """A browser logged in to the recording CRM as edward (not yet signed in to Alibaba)."""
    browser = rec[0].browser()
    set_cookies(browser, {"crm": "s-edward"})
    yield browser
    await browser.close()


async def signed_in(stack: Stack, crm_cookie: str | None = None) -> Browser:
    """A browser logged in to the CRM (sample CRM, or the recording one via `crm_cookie`)."""
    browser = stack.browser()
    try:
        if crm_cookie is None:
            await browser.login_crm()
        else:
            set_cookies(browser, {"crm": crm_cookie})
        assert (await browser.sign_in()).status == 303
    except BaseException:
        await browser.close()
        raise
    return browser


@pytest.fixture
async def agent(stack: Stack) -> AsyncIterator[Browser]:
    browser = await signed_in(stack)
    yield browser
    await browser.close()


async def api_call(
    browser: Browser, action: str = "GetServiceExtensions", **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    async with await browser.post(
        API, params={"action": action}, data={"request": "{}"}, **kwargs
    ) as response:
        return response.status, await response.json()


async def pop_calls(stack: Stack) -> list[dict[str, Any]]:
    """Calls that reached the emulated CCC OpenAPI (its root path)."""
    return await stack.emulator_requests("/")


# ---------------------------------------------------------------- cookie flags


def _attributes(header: str) -> tuple[str, str, dict[str, str]]:
    name_value, *attrs = [part.strip() for part in header.split(";")]
    name, _, value = name_value.partition("=")
    parsed = {}
    for attr in attrs:
        key, _, val = attr.partition("=")
        parsed[key.lower()] = val
    return name, value, parsed


async def test_every_gateway_cookie_is_host_only_secure_httponly(
    make_stack: MakeStack, monkeypatch: pytest.MonkeyPatch
):
    """Every Set-Cookie the gateway sends (chunks, login state, deletions) carries all flags."""
    # A small per-cookie budget splits the session into chunks, as a large STS token does.
    monkeypatch.setattr(gateway_app, "CookieSession", partial(CookieSession, max_cookie_bytes=360))
    stack = await make_stack()
    browser = stack.browser()
    headers: list[str] = []
    try:
        await browser.login_crm()
        for step in range(2):  # the second round replaces a multi-chunk cookie
            start = await visit(browser, browser.url("/aliyun/auth"))
            headers += start.headers.getall("Set-Cookie", [])
            answer = await browser.authorize(URL(start.headers["Location"]))
            done = await visit(browser, URL(answer.headers["Location"]))
            assert done.status == 303, step
            headers += done.headers.getall("Set-Cookie", [])
        async with await browser.post("/aliyun/refresh") as refreshed:
            assert refreshed.status == 200
            headers += refreshed.headers.getall("Set-Cookie", [])
        async with await browser.post("/aliyun/revoke") as revoked:
            assert revoked.status == 200
            headers += revoked.headers.getall("Set-Cookie", [])
    finally:
        await browser.close()
    ours = [_attributes(h) for h in headers if h.startswith("__Host-ccc-")]
    kinds = {
        (
            name.rstrip("0123456789_-") + ("-chunk" if name[-1].isdigit() else ""),
            "delete" if attrs.get("max-age") == "0" else "set",
        )
        for name, _, attrs in ours
    }
    assert {
        (LOGIN_COOKIE, "set"),
        (LOGIN_COOKIE, "delete"),
        (SESSION_COOKIE, "set"),
        (SESSION_COOKIE, "delete"),
        (f"{SESSION_COOKIE}-chunk", "set"),
        (f"{SESSION_COOKIE}-chunk", "delete"),
    } <= kinds, kinds
    for name, _, attrs in ours:
        assert "secure" in attrs and "httponly" in attrs, name
        assert attrs.get("path") == "/" and "domain" not in attrs, name
        expected = "None" if name == LOGIN_COOKIE else "Lax"
        assert attrs.get("samesite") == expected, name
        assert len(name) + len(_) < 4096


async def test_crm_cannot_set_or_delete_gateway_cookies(
    rec: tuple[Stack, RecordingCrm], rec_browser: Browser
):
    """A CRM answer setting __Host-ccc-* cookies is stripped of them; its own cookie passes."""
    async with rec_browser.client.get(rec_browser.url("/forge-cookie")) as response:
        names = [h.split("=", 1)[0] for h in response.headers.getall("Set-Cookie", [])]
    assert names == ["crm_pref"]


# ---------------------------------------------------------------- forged, moved, replayed cookies


async def test_session_forged_with_another_key_is_refused(stack: Stack, agent: Browser):
    """A well-formed session sealed with a key the gateway does not hold is signed out."""
    codec = stack.app[SESSION_CODEC_KEY]  # the real payload, re-sealed
    payload = codec.decode(jar(agent)[SESSION_COOKIE], now=stack.clock(), max_age=1e9)
    assert payload is not None
    forged = SessionCodec([Fernet.generate_key().decode()]).encode(payload, now=stack.clock())
    set_cookies(agent, {SESSION_COOKIE: forged})
    assert (await agent.session())["signedIn"] is False
    status, body = await api_call(agent)
    assert status == 401 and body["errorCode"] == "NotAuthenticated"
    assert await pop_calls(stack) == []


async def test_login_state_and_session_cookies_are_not_interchangeable(
    stack: Stack, browser: Browser
):
    """One key ring seals both, yet a login-state value used as a session signs nobody in."""
    await browser.login_crm()
    await browser.start_sign_in()
    login_value = jar(browser)[LOGIN_COOKIE]
    set_cookies(browser, {SESSION_COOKIE: login_value})
    assert (await browser.session())["signedIn"] is False
    await browser.sign_in()
    session_value = jar(browser)[SESSION_COOKIE]
    url = await callback_url(browser)
    set_cookies(browser, {LOGIN_COOKIE: session_value})  # a session where the state should be
    response = await visit(browser, url)
    assert response.status == 400


async def test_session_cookie_carried_to_another_crm_user_is_useless(stack: Stack, agent: Browser):
    """Agent A's cookie in a browser where sissi is logged in: 403 on the API, nothing dialled."""
    other = stack.browser()
    try:
        await other.login_crm("sissi", "5678")
        set_cookies(other, {SESSION_COOKIE: jar(agent)[SESSION_COOKIE]})
        assert (await other.session())["signedIn"] is False
        status, body = await api_call(other, "PickGlobalOutboundNumbers")
        assert status == 403 and body["errorCode"] == "CrmUserMismatch"
        async with await other.post("/aliyun/refresh") as response:
            assert response.status == 403
    finally:
        await other.close()
    assert await pop_calls(stack) == []
    assert await stack.emulator_requests("/v1/token") != []  # the sign-in itself, only
    assert len(await stack.emulator_requests("/v1/token")) == 1


async def test_session_copy_replayed_after_sign_out_cannot_call_the_api(
    stack: Stack, agent: Browser
):
    """A copy of the session cookie kept from before sign-out gets 401 on every use."""
    saved = jar(agent)[SESSION_COOKIE]
    async with await agent.post("/aliyun/revoke") as response:
        assert (await response.json())["revoked"] is True
    set_cookies(agent, {SESSION_COOKIE: saved})
    status, body = await api_call(agent)
    assert status == 401 and body["login"] == "/aliyun/auth"
    async with await agent.post("/aliyun/refresh") as refreshed:
        assert refreshed.status == 401
    assert await pop_calls(stack) == []


# ---------------------------------------------------------------- login state


async def test_replay_after_a_gateway_restart_is_still_refused(stack: Stack, browser: Browser):
    """A restart forgets consumed states; Alibaba's single-use code still stops the replay."""
    await browser.login_crm()
    url = await callback_url(browser)
    saved = jar(browser)[LOGIN_COOKIE]
    assert (await visit(browser, url)).status == 303
    await restart_gateway(stack, stack.config)  # same keys: the old login cookie still opens
    set_cookies(browser, {LOGIN_COOKIE: saved})
    browser.client.cookie_jar.clear_domain("127.0.0.1")
    await browser.login_crm()
    set_cookies(browser, {LOGIN_COOKIE: saved})
    replay = await visit(browser, url)
    assert replay.status == 400 and "refused the sign-in" in await replay.text()
    assert (await browser.session())["signedIn"] is False


async def test_state_is_accepted_just_inside_the_ttl_and_refused_just_after(
    stack: Stack, browser: Browser
):
    """login_state_ttl is a hard edge: one second before it works, one second after it fails."""
    await stack.emulator_knob("POST", "_emulator/settings", {"code_ttl": 86400})  # not Alibaba's
    await browser.login_crm()
    ttl = stack.config.session.login_state_ttl
    early, late = await callback_url(browser), await callback_url(browser)
    stack.clock.advance(ttl - 1)
    assert (await visit(browser, early)).status == 303
    stack.clock.advance(2)
    assert (await visit(browser, late)).status == 400


async def test_stolen_login_cookie_and_callback_fail_for_another_crm_user(
    stack: Stack, browser: Browser
):
    """Edward's login cookie and callback replayed in sissi's browser: refused, nobody signed in."""
    await browser.login_crm()
    url = await callback_url(browser)
    thief = stack.browser()
    try:
        await thief.login_crm("sissi", "5678")
        set_cookies(thief, {LOGIN_COOKIE: jar(browser)[LOGIN_COOKIE]})
        response = await visit(thief, url)
        assert response.status == 403 and "CRM user changed" in await response.text()
        assert (await thief.session())["signedIn"] is False
    finally:
        await thief.close()


async def test_attackers_callback_cannot_sign_the_victim_in(stack: Stack, browser: Browser):
    """Login CSRF: the attacker's own callback URL opened in the victim's browser is refused."""
    attacker = stack.browser()
    try:
        await attacker.login_crm("sissi", "5678")
        planted = await callback_url(attacker)
    finally:
        await attacker.close()
    await browser.login_crm()
    own = await callback_url(browser)  # the victim has a sign-in of its own in progress
    response = await visit(browser, planted)
    assert response.status == 400
    assert (await browser.session())["signedIn"] is False
    assert (await visit(browser, own)).status == 303


# ---------------------------------------------------------------- open redirects, end to end

OPEN_REDIRECTS = [
    "//evil.example",
    "///evil.example",
    "////evil.example/x",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "https://evil.example",
    "HTTPS://evil.example",
    "http:evil.example",
    "https:/evil.example",
    "https:\\\\evil.example",
    "javascript:alert(document.cookie)",
    "data:text/html,<script>alert(1)</script>",
    "evil.example",
    " //evil.example",
    "/%2F%2Fevil.example",
    "/%2f/evil.example",
    "/%252F%252Fevil.example",
    "/%5Cevil.example",
    "/%5C%5Cevil.example",
    "/.//evil.example",
    "/./\\evil.example",
    "/x/..//evil.example",
    "/%2e%2e//evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/%09/evil.example",
    "/%0d%0aLocation:%20https://evil.example",
    "/x%0d%0aSet-Cookie:%20a=b",
    "/%E2%80%AE/evil.example",
    "/\u3002evil.example",
    "/%00/evil.example",
    "//evil.example@127.0.0.1",
    "/" + "a" * 3000,
]
KEPT = ["/customers", "/customer/phoneNumber/135012345678?tab=calls", "/x?next=//evil.example"]


async def test_open_redirect_forms_through_the_real_sign_in(stack: Stack, browser: Browser):
    """34 known bypass forms of return_to end on `/`; same-origin paths are kept, end to end."""
    await browser.login_crm()
    wrong = {}
    for value in OPEN_REDIRECTS + KEPT:
        done = await visit(browser, await callback_url(browser, return_to=value))
        location = done.headers["Location"]
        expected = value if value in KEPT else "/"
        resolved = stack.url.join(URL(location))
        if (
            done.status != 303
            or location != expected
            or resolved.origin() != stack.url.origin()
            or location.startswith("//")
        ):
            wrong[value] = (done.status, location)
    assert wrong == {}


async def test_return_to_is_cleaned_before_the_crm_login_detour(stack: Stack, browser: Browser):
    """Not logged in to the CRM: the `next` the CRM gets already carries the safe return_to."""
    response = await visit(browser, browser.url("/aliyun/auth?return_to=//evil.example"))
    assert response.status == 302
    back = URL(URL(response.headers["Location"]).query["next"])
    assert back.path == "/aliyun/auth" and back.query["return_to"] == "/"


# ---------------------------------------------------------------- cross-site requests


def _cross_site_variants(gateway: URL) -> dict[str, dict[str, str]]:
    own = str(gateway)
    return {
        "form-post-from-evil": {
            "Origin": EVIL,
            "Sec-Fetch-Site": "cross-site",
            "Sec-Fetch-Mode": "navigate",
        },
        "form-post-old-browser": {"Origin": EVIL},
        "fetch-with-credentials": {
            "Origin": EVIL,
            "Sec-Fetch-Site": "cross-site",
            "Sec-Fetch-Mode": "cors",
        },
        "null-origin-sandboxed": {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        "null-origin-alone": {"Origin": "null"},
        "no-origin-no-fetch-metadata": {},
        "sec-fetch-site-cross-site": {"Sec-Fetch-Site": "cross-site"},
        "same-site-sibling": {
            "Origin": "https://crm2.127.0.0.1.nip.io",
            "Sec-Fetch-Site": "same-site",
        },
        "other-port": {"Origin": f"https://127.0.0.1:{(gateway.port or 443) + 1}"},
        "http-downgrade": {"Origin": own.replace("https://", "http://")},
        "own-origin-but-cross-site": {"Origin": own, "Sec-Fetch-Site": "cross-site"},
        "typed-or-bookmarked": {"Sec-Fetch-Site": "none"},
    }


@pytest.mark.parametrize(
    "path", [API + "?action=GetServiceExtensions", "/aliyun/refresh", "/aliyun/revoke"]
)
async def test_cross_site_requests_are_refused_with_a_valid_session(
    stack: Stack, agent: Browser, path: str
):
    """12 cross-site shapes get 403 CrossSiteRequest; Alibaba sees nothing, the session stays."""
    token_calls = len(await stack.emulator_requests("/v1/token"))
    wrong = {}
    for name, headers in _cross_site_variants(stack.url).items():
        async with agent.client.post(
            agent.url(path), data={"request": "{}"}, headers=headers
        ) as response:
            body = await response.text()  # a navigation gets a page, a program JSON
            if response.status != 403 or not (
                '"CrossSiteRequest"' in body or "Cross-site request refused" in body
            ):
                wrong[name] = (response.status, body[:200])
            assert "Access-Control-Allow-Origin" not in response.headers
    assert wrong == {}
    assert await pop_calls(stack) == []
    assert len(await stack.emulator_requests("/v1/token")) == token_calls
    assert await stack.emulator_requests("/v1/revoke") == []
    assert (await agent.session())["signedIn"] is True
    async with await agent.post(path, data={"request": "{}"}) as same_origin:
        assert same_origin.status == 200  # the same call from the gateway's own page works


async def test_cross_site_get_of_the_api_and_preflight_are_refused(stack: Stack, agent: Browser):
    """A cross-site GET is 403 too, and no answer ever grants CORS to another origin."""
    async with agent.client.get(
        agent.url(API), params={"action": "GetServiceExtensions"}, headers={"Origin": EVIL}
    ) as response:
        assert response.status == 403
    preflight = {"Origin": EVIL, "Access-Control-Request-Method": "POST"}
    for path in (API, "/aliyun/session", "/aliyun/refresh"):
        async with agent.client.options(agent.url(path), headers=preflight) as response:
            assert response.status >= 400, path
            assert "Access-Control-Allow-Origin" not in response.headers
        async with agent.client.get(agent.url(path), headers={"Origin": EVIL}) as response:
            assert "Access-Control-Allow-Origin" not in response.headers
            assert "Access-Control-Allow-Credentials" not in response.headers
    assert await pop_calls(stack) == []


# ---------------------------------------------------------------- header spoofing

SPOOFED = {
    "X-Ccc-Agent-Upn": "boss@evil",
    "X-CCC-AGENT-NAME": "Boss",
    "X-Ccc-Role": "admin",
    "X_Ccc_Agent_Upn": "underscore@evil",  # CGI/WSGI servers read this as X-Ccc-Agent-Upn
    "X-Forwarded-For": "198.51.100.7",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Proto": "http",
    "X_Forwarded_For": "198.51.100.8",
    "Forwarded": "for=198.51.100.9;host=evil.example;proto=http",
    "X-Real-IP": "198.51.100.10",
}


def _spoofed_values_in(received: dict[str, list[str]]) -> list[str]:
    text = json.dumps(received)
    return [
        v
        for v in ("boss@evil", "Boss", "admin", "underscore@evil", "198.51.100", "evil.example")
        if v in text
    ]


@pytest.mark.parametrize("signed_in_first", [False, True], ids=["signed-out", "signed-in"])
async def test_spoofed_identity_and_forwarding_headers_never_reach_the_crm(
    rec: tuple[Stack, RecordingCrm], rec_browser: Browser, signed_in_first: bool
):
    """Client-sent X-Ccc-*, X-Forwarded-*, Forwarded, X-Real-IP (any spelling) are replaced."""
    _, crm = rec
    if signed_in_first:
        assert (await rec_browser.sign_in()).status == 303
    async with rec_browser.client.get(rec_browser.url("/page"), headers=SPOOFED) as response:
        assert response.status == 200
    received = crm.headers()
    assert _spoofed_values_in(received) == []
    assert received["x-forwarded-for"] == ["127.0.0.1"]
    assert received["x-forwarded-proto"] == ["https"]
    if signed_in_first:
        assert received["x-ccc-agent-upn"] == [AGENT1[0]]
    else:
        assert not any(name.replace("_", "-").startswith("x-ccc-") for name in received)


async def test_bogus_host_header_never_reaches_the_crm(
    rec: tuple[Stack, RecordingCrm], rec_browser: Browser
):
    """A made-up Host (password-reset poisoning) reaches the CRM as neither Host nor -Host."""
    stack, crm = rec
    async with rec_browser.client.get(
        rec_browser.url("/reset-password"), headers={"Host": "evil.example"}
    ) as response:
        assert response.status == 200
    received = crm.headers()
    assert "evil.example" not in json.dumps(received)
    assert received["x-forwarded-host"] == [f"127.0.0.1:{stack.gateway.port}"]


# ---------------------------------------------------------------- smuggling and malformed framing


async def _raw(stack: Stack, payload: bytes) -> bytes:
    """Send raw bytes over TLS; the status line of the first answer (or b'' if cut)."""
    context: ssl.SSLContext = client_context(stack.cert)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", stack.gateway.port, ssl=context, server_hostname="127.0.0.1"
    )
    try:
        writer.write(payload)
        await writer.drain()
        return await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()


_POST = b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\n"
_SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
SMUGGLING = {
    "cl-te": _POST
    + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    + _SMUGGLED,
    "te-cl": _POST
    + b"Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n"
    + _SMUGGLED,
    "duplicate-content-length": _POST
    + b"Content-Length: 4\r\nContent-Length: 40\r\n\r\nabcd"
    + _SMUGGLED,
    "content-length-list": _POST + b"Content-Length: 4, 40\r\n\r\nabcd" + _SMUGGLED,
    "content-length-plus": _POST + b"Content-Length: +4\r\n\r\nabcd" + _SMUGGLED,
    "te-not-chunked": _POST + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + _SMUGGLED,
    "te-space-before-colon": _POST + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + _SMUGGLED,
    "obs-fold": _POST + b"Content-Length: 0\r\nX-Folded: a\r\n b\r\n\r\n" + _SMUGGLED,
    "obs-fold-te": _POST + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + _SMUGGLED,
    "bare-lf": b"POST /upload HTTP/1.1\nHost: 127.0.0.1\nContent-Length: 0\n\n" + _SMUGGLED,
    "nul-in-header": _POST + b"Content-Length: 0\r\nX-Nul: a\x00b\r\n\r\n" + _SMUGGLED,
    "bad-chunk-size": _POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabcd\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("shape", sorted(SMUGGLING))
async def test_smuggling_shapes_are_400_and_never_forwarded(
    rec: tuple[Stack, RecordingCrm], shape: str
):
    """Ambiguous or malformed framing is answered 400 and nothing reaches the CRM."""
    stack, crm = rec
    status_line = await _raw(stack, SMUGGLING[shape])
    assert status_line.split(b" ")[1:2] == [b"400"], status_line
    assert crm.seen == []


async def test_absolute_form_target_is_not_an_open_proxy(rec: tuple[Stack, RecordingCrm]):
    """`GET http://evil.example/x` is served from the CRM's /x, never fetched from evil.example."""
    stack, crm = rec
    status_line = await _raw(
        stack, b"GET http://evil.example/x HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    assert status_line.split(b" ")[1] == b"200"
    assert [entry["raw_path"] for entry in crm.seen] == ["/x"]
    assert "evil.example" not in crm.headers()["host"][0]


async def test_absolute_form_cannot_disguise_the_gateway_prefix(rec: tuple[Stack, RecordingCrm]):
    """`GET http://host/ALIYUN/…` is judged by its path like `/ALIYUN/…`: 404, the CRM sees none."""
    stack, crm = rec
    for target in (b"http://evil.example/ALIYUN/ccc/api", b"http://evil.example/aliyun%2Fsession"):
        status_line = await _raw(
            stack, b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        assert status_line.split(b" ")[1] == b"404", target
    assert crm.seen == []


async def test_oversize_header_field_is_refused_before_the_crm(
    rec: tuple[Stack, RecordingCrm], rec_browser: Browser
):
    """A header field over 8 KiB (here a Cookie) is a 4xx and the CRM sees nothing."""
    _, crm = rec
    for name in ("X-Big", "Cookie"):
        async with rec_browser.client.get(
            rec_browser.url("/page"), headers={name: "a=" + "b" * 9000}
        ) as response:
            assert 400 <= response.status < 500, name
    assert crm.seen == []


async def test_oversize_bodies_are_413(rec: tuple[Stack, RecordingCrm], rec_browser: Browser):
    """A CRM upload over upstream.max_body_size (declared or streamed) is 413, never whole."""
    stack, crm = rec

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b"x" * 1024

    for data in (b"x" * 8192, chunks()):
        async with rec_browser.client.post(rec_browser.url("/upload"), data=data) as response:
            assert response.status == 413
    assert not any(len(entry["body"]) >= 4096 for entry in crm.seen)
    big_api = {"request": json.dumps({"x": "y" * (stack.config.ccc.max_request_size + 10)})}
    async with await rec_browser.post(API, params={"action": "GetConfig"}, data=big_api) as r:
        assert r.status == 413 and (await r.json())["errorCode"] == "PayloadTooLarge"


# ---------------------------------------------------------------- path tricks

PATH_TRICKS = [
    "/aliyun/../customers",
    "/aliyun/%2e%2e/customers",
    "/aliyun/%2E%2E/ccc/api",
    "/aliyun%2Fccc%2Fapi",
    "/aliyun%2fsession",
    "/aliyun%252Fccc%252Fapi",
    "/ALIYUN/ccc/api",
    "/Aliyun/session",
    "//aliyun/ccc/api",
    "/aliyun/ccc/api/",
    "/aliyun/./ccc/api",
    "/x/../aliyun/ccc/api",
    "/aliyun%5Cccc%5Capi",
    "/aliyun;/ccc/api",
    "/aliyun;jsessionid=1/session",
    "/aliyun",
]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_path_tricks_reach_neither_gateway_routes_nor_the_crm(
    rec: tuple[Stack, RecordingCrm], method: str
):
    """Disguised /aliyun/ paths are 404: no gateway route by a side door, nothing to the CRM."""
    stack, crm = rec
    browser = await signed_in(stack, "s-edward")
    crm.seen.clear()
    wrong = {}
    try:
        for target in PATH_TRICKS:
            url = URL(str(stack.url) + target + "?action=GetServiceExtensions", encoded=True)
            async with browser.client.request(
                method,
                url,
                data={"request": "{}"} if method == "POST" else None,
                headers=browser.origin_headers(),
                allow_redirects=False,
            ) as response:
                if response.status != 404:
                    wrong[target] = response.status
    finally:
        await browser.close()
    assert wrong == {}
    assert [e["raw_path"] for e in crm.seen if e["raw_path"] != "/api/me"] == []
    assert await pop_calls(stack) == []


# ---------------------------------------------------------------- what the CRM receives


async def test_crm_never_receives_gateway_cookies_or_tokens(
    rec: tuple[Stack, RecordingCrm], rec_browser: Browser
):
    """Sign-in, pages, API calls, refresh, revoke: the CRM sees no token or cookie of ours."""
    stack, crm = rec
    await rec_browser.start_sign_in()
    await rec_browser.sign_in()
    gateway_cookies = {v for k, v in jar(rec_browser).items() if k.startswith("__Host-")}
    for _ in range(2):
        async with rec_browser.client.get(rec_browser.url("/customers")) as page:
            assert page.status == 200
        status, _ = await api_call(rec_browser)
        assert status == 200
    async with await rec_browser.post("/aliyun/refresh") as refreshed:
        assert refreshed.status == 200
    gateway_cookies |= {v for k, v in jar(rec_browser).items() if k.startswith("__Host-")}
    async with rec_browser.client.get(rec_browser.url("/customers")) as page:
        assert page.status == 200
    async with await rec_browser.post("/aliyun/revoke") as revoked:
        assert revoked.status == 200
    store = stack.emulator.app[STORE_KEY]
    secrets = {*gateway_cookies, *store.access_tokens, *store.refresh_tokens, CLIENT_SECRET}
    for call in await stack.emulator_requests():
        secrets.update(v for k, v in call["form"].items() if k in ("code", "code_verifier"))
    assert len(secrets) >= 8
    received = crm.text()
    assert [s for s in secrets if s in received] == []
    assert "__Host-ccc" not in received and "authorization" not in received.lower()
    assert any(e["raw_path"] == "/customers" for e in crm.seen)


# ---------------------------------------------------------------- logs


@pytest.mark.parametrize("token_format", ["bearer", "sts"])
async def test_logs_hold_no_secret_through_a_whole_session_at_debug(
    make_stack: MakeStack, caplog: pytest.LogCaptureFixture, token_format: str
):
    """Sign-in, API calls, failing and good refreshes, revoke: no secret in any DEBUG record."""
    stack = await make_stack()
    await restart_gateway(stack, stack.config, access_log=None)  # as serve.py runs it
    await stack.emulator_knob("POST", "_emulator/settings", {"token_format": token_format})
    caplog.set_level(logging.DEBUG)
    browser = await signed_in(stack)
    cookies = {c.value for c in browser.client.cookie_jar if c.value}
    try:
        for action in ("GetServiceExtensions", "RequestLoginInfo", "GetTURNCredentials"):
            assert (await api_call(browser, action))[0] == 200
        await stack.emulator_knob("POST", "_emulator/faults", {"endpoint": "pop", "status": 500})
        assert (await api_call(browser))[0] >= 500
        await stack.emulator_knob("POST", "_emulator/faults", {"endpoint": "token", "status": 503})
        async with await browser.post("/aliyun/refresh") as failed:
            assert failed.status == 502
        stack.clock.advance(3600)
        assert (await api_call(browser))[0] == 200  # refreshed on the way
        cookies |= {c.value for c in browser.client.cookie_jar if c.value}
        async with await browser.post("/aliyun/revoke") as revoked:
            assert revoked.status == 200
    finally:
        await browser.close()
    store = stack.emulator.app[STORE_KEY]
    secrets = {CLIENT_SECRET, *cookies, *store.access_tokens, *store.refresh_tokens}
    for token in store.access_tokens.values():
        if token.sts is not None:
            secrets |= {token.sts.access_key_secret, token.sts.security_token}
    for call in await stack.emulator_requests():
        params = {**call["query"], **call["form"]}
        secrets.update(
            v
            for k, v in params.items()
            if k
            in (
                "code",
                "code_verifier",
                "client_secret",
                "refresh_token",
                "token",
                "BearerToken",
                "SecurityToken",
                "Signature",
            )
        )
    secrets = {s for s in secrets if len(s) >= 8}
    assert len(secrets) >= 8
    formatter = logging.Formatter()
    logged = "\n".join(
        f"{r.name} {r.getMessage()} {r.__dict__.get('fields')} "
        f"{formatter.formatException(r.exc_info) if r.exc_info else ''}"
        for r in caplog.records
        if r.name != "aiohttp.access"  # the emulator's and the CRM's test servers, not ours
    )
    assert "signed in" in logged and "ccc api" in logged and "signed out" in logged
    assert [s[:12] for s in secrets if s in logged] == []
    assert "13800000001" not in logged  # the agent's phone number, unmasked
