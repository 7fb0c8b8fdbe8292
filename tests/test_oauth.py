"""AlibabaOAuthClient: requests sent, replies classified, JWKS cached (aioresponses)."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.pytest_plugin import AiohttpServer
from aioresponses import aioresponses
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from mock_http import CompatAioresponses
from yarl import URL

from ccc_gateway.auth.oauth.client import (
    JWKS_MIN_REFETCH_INTERVAL,
    JWKS_TTL,
    AlibabaOAuthClient,
    Endpoints,
    IdTokenError,
    OAuthError,
    OAuthProtocolError,
    OAuthProviderError,
    OAuthUnavailable,
    UnknownKeyId,
    endpoints_for_site,
)
from ccc_gateway.auth.oauth.errors import OAuthTimeout
from ccc_gateway.auth.oauth.transport import MAX_BODY_BYTES

EP = Endpoints(
    authorize_url="https://signin.test/oauth2/v1/auth",
    token_url="https://oauth.test/v1/token",
    revoke_url="https://oauth.test/v1/revoke",
    userinfo_url="https://oauth.test/v1/userinfo",
    jwks_url="https://oauth.test/v1/keys",
    issuer="https://oauth.test",
)
CLIENT_ID = "4071151845732613353"
SECRET = "CLIENT-SECRET-xyz"
REDIRECT = "https://crm.example.com/aliyun/auth/callback"
T0 = 1_700_000_000.0
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
NEW_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def b64(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwks(*pairs: tuple[rsa.RSAPrivateKey, str]) -> dict[str, Any]:
    """A JWKS document with the public halves of ``pairs``."""
    keys = []
    for key, kid in pairs:
        n = key.public_key().public_numbers().n
        keys.append({"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "e": "AQAB",
                     "n": b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))})  # fmt: skip
    return {"keys": keys}


def id_token(key: rsa.RSAPrivateKey = KEY, kid: str = "k1", **extra: Any) -> str:
    """An RS256 id_token for CLIENT_ID issued at T0."""
    claims = {"iss": EP.issuer, "aud": CLIENT_ID, "sub": "2001", "iat": T0, "exp": T0 + 3600,
              "nonce": "n-1", **extra}  # fmt: skip
    head = b64(json.dumps({"alg": "RS256", "kid": kid}).encode())
    body = b64(json.dumps(claims).encode())
    sig = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{head}.{body}.{b64(sig)}"


@pytest.fixture
def clock() -> Clock:
    """The injected clock."""
    return Clock()


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    """aioresponses intercepting every outbound request."""
    with CompatAioresponses() as m:
        yield m


@pytest.fixture
async def client(clock: Clock) -> AsyncIterator[AlibabaOAuthClient]:
    """A client with the test endpoints and clock."""
    async with aiohttp.ClientSession() as session:
        yield AlibabaOAuthClient(
            session, EP, CLIENT_ID, SECRET, REDIRECT, scope="openid aliuid", clock=clock
        )


def sent(m: aioresponses, method: str, url: str) -> list[Any]:
    """The recorded calls to ``method url``."""
    return m.requests.get((method, URL(url)), [])


# -- endpoints and authorize URL --------------------------------------------------------------


def test_china_endpoints_follow_the_protocol_reference() -> None:
    """The China site uses signin.aliyun.com and oauth.aliyun.com."""
    ep = endpoints_for_site("china")
    assert ep.authorize_url == "https://signin.aliyun.com/oauth2/v1/auth"
    assert ep.token_url == "https://oauth.aliyun.com/v1/token"
    assert ep.revoke_url == "https://oauth.aliyun.com/v1/revoke"
    assert ep.userinfo_url == "https://oauth.aliyun.com/v1/userinfo"
    assert ep.jwks_url == "https://oauth.aliyun.com/v1/keys"
    assert ep.issuer == "https://oauth.aliyun.com"


def test_international_endpoints_use_alibabacloud_hosts() -> None:
    """The international site uses the alibabacloud.com hosts, site name case-insensitive."""
    ep = endpoints_for_site(" International ")
    assert ep.authorize_url == "https://signin.alibabacloud.com/oauth2/v1/auth"
    assert ep.token_url == "https://oauth.alibabacloud.com/v1/token"
    assert ep.issuer == "https://oauth.alibabacloud.com"
    assert all(url.startswith("https://") for url in vars_of(ep))


def vars_of(ep: Endpoints) -> list[str]:
    """Every URL of an Endpoints."""
    return [ep.authorize_url, ep.token_url, ep.revoke_url, ep.userinfo_url, ep.jwks_url]


def test_unknown_site_is_refused() -> None:
    """An unknown site name raises ValueError naming the choices."""
    with pytest.raises(ValueError, match="china"):
        endpoints_for_site("mars")


async def test_authorize_url_carries_standard_pkce_parameters(client: AlibabaOAuthClient) -> None:
    """The authorize URL has the standard names, S256, offline access, scope and nonce."""
    url = URL(client.authorize_url(state="st-1", code_challenge="ch-1", nonce="n-1"))
    assert url.with_query(None) == URL(EP.authorize_url)
    assert dict(url.query) == {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "state": "st-1",
        "code_challenge": "ch-1",
        "code_challenge_method": "S256",
        "access_type": "offline",
        "scope": "openid aliuid",
        "nonce": "n-1",
    }


async def test_authorize_url_keeps_configured_query_and_omits_unset_values() -> None:
    """A query already in the configured URL survives; no scope or nonce when unset."""
    ep = dataclasses.replace(EP, authorize_url=EP.authorize_url + "?prompt=admin_consent")
    async with aiohttp.ClientSession() as session:
        c = AlibabaOAuthClient(session, ep, CLIENT_ID, SECRET, REDIRECT)
        query = URL(c.authorize_url(state="s", code_challenge="c", nonce=None)).query
    assert query["prompt"] == "admin_consent"
    assert "scope" not in query and "nonce" not in query
    assert SECRET not in str(query)


# -- requests sent ------------------------------------------------------------------------------


async def test_exchange_code_posts_the_exact_form(
    client: AlibabaOAuthClient, mocked: aioresponses
) -> None:
    """Code exchange POSTs grant_type, code, client credentials, redirect_uri and verifier."""
    mocked.post(EP.token_url, payload={"access_token": "at", "token_type": "Bearer",
                                       "expires_in": "3599", "refresh_token": "rt",
                                       "id_token": "x.y.z"})  # fmt: skip
    tokens = await client.exchange_code("CODE-1", "VERIFIER-1")
    (call,) = sent(mocked, "POST", EP.token_url)
    assert call.kwargs["data"] == {
        "grant_type": "authorization_code",
        "code": "CODE-1",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "redirect_uri": REDIRECT,
        "code_verifier": "VERIFIER-1",
    }
    assert call.kwargs["allow_redirects"] is False
    assert (tokens.access_token, tokens.refresh_token, tokens.id_token) == ("at", "rt", "x.y.z")
    assert tokens.expires_at == T0 + 3599


async def test_refresh_posts_the_exact_form_and_keeps_the_refresh_token(
    client: AlibabaOAuthClient, mocked: aioresponses
) -> None:
    """Refresh POSTs grant_type, refresh_token and client credentials; keeps the old RT."""
    mocked.post(EP.token_url, payload={"access_token": "at2", "expires_in": 900})
    tokens = await client.refresh("RT-OLD")
    (call,) = sent(mocked, "POST", EP.token_url)
    assert call.kwargs["data"] == {
        "grant_type": "refresh_token",
        "refresh_token": "RT-OLD",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
    }
    assert (tokens.access_token, tokens.refresh_token) == ("at2", "RT-OLD")


async def test_refresh_prefers_a_rotated_refresh_token(
    client: AlibabaOAuthClient, mocked: aioresponses
) -> None:
    """A refresh reply with a new refresh token replaces the old one."""
    mocked.post(EP.token_url, payload={"access_token": "at2", "refresh_token": "RT-NEW"})
    assert (await client.refresh("RT-OLD")).refresh_token == "RT-NEW"


@pytest.mark.parametrize("body", ["", "<html>ok</html>", '{"result": true}'])
async def test_revoke_posts_the_exact_form_and_accepts_any_2xx(
    client: AlibabaOAuthClient, mocked: aioresponses, body: str
) -> None:
    """Revoke POSTs token and client credentials; any 2xx body means success."""
    mocked.post(EP.revoke_url, status=200, body=body, content_type="text/html")
    await client.revoke("RT-1")
    (call,) = sent(mocked, "POST", EP.revoke_url)
    assert call.kwargs["data"] == {"token": "RT-1", "client_id": CLIENT_ID, "client_secret": SECRET}


async def test_userinfo_sends_bearer_and_returns_claims(
    client: AlibabaOAuthClient, mocked: aioresponses
) -> None:
    """userinfo GETs with Authorization: Bearer and returns the JSON object."""
    mocked.get(EP.userinfo_url, payload={"sub": "2001", "upn": "agent1@x"})
    assert await client.userinfo("AT-1") == {"sub": "2001", "upn": "agent1@x"}
    (call,) = sent(mocked, "GET", EP.userinfo_url)
    assert call.kwargs["headers"]["Authorization"] == "Bearer AT-1"


async def test_userinfo_401_without_body_is_invalid_token(
    client: AlibabaOAuthClient, mocked: aioresponses
) -> None:
    """A bare 401 from userinfo is a non-fatal invalid_token provider error."""
    mocked.get(EP.userinfo_url, status=401, body="")
    with pytest.raises(OAuthProviderError) as info:
        await client.userinfo("AT-1")
    assert (info.value.error, info.value.status, info.value.fatal) == ("invalid_token", 401, False)


async def test_real_wire_encoding_is_form_urlencoded(aiohttp_server: AiohttpServer) -> None:
    """Against a real server the token request is an urlencoded form over POST."""
    seen: dict[str, Any] = {}

    async def token(request: web.Request) -> web.Response:
        seen["type"] = request.content_type
        seen["form"] = dict(await request.post())
        return web.Response(text='{"access_token": "at", "expires_in": 60}')  # text/plain

    app = web.Application()
    app.router.add_post("/v1/token", token)
    server = await aiohttp_server(app)
    ep = dataclasses.replace(EP, token_url=str(server.make_url("/v1/token")))
    async with aiohttp.ClientSession() as session:
        c = AlibabaOAuthClient(session, ep, CLIENT_ID, "s e&c=ret", REDIRECT, clock=lambda: T0)
        tokens = await c.refresh("r+t/=")
    assert seen["type"] == "application/x-www-form-urlencoded"
    assert seen["form"]["client_secret"] == "s e&c=ret"
    assert seen["form"]["refresh_token"] == "r+t/="
    assert tokens.expires_at == T0 + 60


async def test_oversized_reply_is_unavailable(aiohttp_server: AiohttpServer) -> None:
    """A reply body over the cap is refused as OAuthUnavailable instead of buffered."""

    async def huge(request: web.Request) -> web.Response:
        return web.Response(body=b" " * (MAX_BODY_BYTES + 1))

    app = web.Application()
    app.router.add_get("/v1/userinfo", huge)
    server = await aiohttp_server(app)
    ep = dataclasses.replace(EP, userinfo_url=str(server.make_url("/v1/userinfo")))
    async with aiohttp.ClientSession() as session:
        c = AlibabaOAuthClient(session, ep, CLIENT_ID, SECRET, REDIRECT)
        with pytest.raises(OAuthUnavailable, match="too large"):
            await c.userinfo("AT")


# -- error classification -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "payload", "error", "fatal"),
    [
        (400, {"error": "invalid_grant", "error_description": "code used"}, "invalid_grant", True),
        (400, {"error": "invalid_request"}, "invalid_request", False),
        (401, {"error": "invalid_client", "error_description": "bad"}, "invalid_client", True),
        (400, {"Code": "InvalidGrant", "Message": "expired", "RequestId": "R1"}, "InvalidGrant",
         True),
        (400, {"Code": "InvalidClient.NotFound", "Message": "x"}, "InvalidClient.NotFound", True),
        (403, {"Code": "Forbidden.RAM", "Message": "no"}, "Forbidden.RAM", False),
        (200, {"error": "invalid_grant"}, "invalid_grant", True),
    ],
)  # fmt: skip
async def test_provider_errors_are_classified(
    client: AlibabaOAuthClient,
    mocked: aioresponses,
    status: int,
    payload: dict[str, Any],
    error: str,
    fatal: bool,
) -> None:
    """RFC 6749 and POP Code/Message error replies become OAuthProviderError with .fatal."""
    mocked.post(EP.token_url, status=status, payload=payload)
    with pytest.raises(OAuthProviderError) as info:
        await client.refresh("RT")
    assert (info.value.error, info.value.status, info.value.fatal) == (error, status, fatal)


async def test_pop_error_shape_keeps_message_and_request_id(
    client: AlibabaOAuthClient, mocked: aioresponses
) -> None:
    """The Code/Message/RequestId shape fills description and request_id."""
    mocked.post(EP.token_url, status=400, payload={"Code": "X", "Message": "m", "RequestId": "R"})
    with pytest.raises(OAuthProviderError) as info:
        await client.exchange_code("c", "v")
    assert (info.value.description, info.value.request_id) == ("m", "R")


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, '{"error": "server_error"}'),
        (503, ""),
        (429, '{"error": "slow_down"}'),
        (302, ""),
        (400, "<html>Bad Request</html>"),
        (400, '{"unexpected": 1}'),
        (200, "<html>captive portal</html>"),
        (200, ""),
    ],
)
async def test_transient_failures_are_unavailable(
    client: AlibabaOAuthClient, mocked: aioresponses, status: int, body: str
) -> None:
    """5xx, 429, redirects and garbage bodies are OAuthUnavailable, not timeouts."""
    mocked.post(EP.token_url, status=status, body=body, content_type="text/html")
    with pytest.raises(OAuthUnavailable) as info:
        await client.refresh("RT")
    assert not isinstance(info.value, OAuthTimeout)
    assert info.value.status == status


async def test_timeout_is_oauth_timeout(client: AlibabaOAuthClient, mocked: aioresponses) -> None:
    """A timeout is OAuthTimeout, a kind of OAuthUnavailable (the caller answers 504)."""
    mocked.post(EP.token_url, exception=TimeoutError())
    with pytest.raises(OAuthUnavailable) as info:
        await client.refresh("RT")
    assert isinstance(info.value, OAuthTimeout)


async def test_connection_error_is_unavailable(
    client: AlibabaOAuthClient, mocked: aioresponses
) -> None:
    """A connection failure is OAuthUnavailable without the timeout flag."""
    mocked.post(EP.revoke_url, exception=aiohttp.ClientConnectionError("refused"))
    with pytest.raises(OAuthUnavailable) as info:
        await client.revoke("RT")
    assert not isinstance(info.value, OAuthTimeout) and info.value.status is None


@pytest.mark.parametrize(
    ("payload", "reason"),
    [([1, 2], "not a JSON object"), ({"token_type": "Bearer"}, "access_token"),
     ({"access_token": "at", "expires_in": "soon"}, "expires_in")],
)  # fmt: skip
async def test_broken_2xx_is_a_protocol_error(
    client: AlibabaOAuthClient, mocked: aioresponses, payload: Any, reason: str
) -> None:
    """A 2xx JSON body that breaks the protocol raises OAuthProtocolError."""
    mocked.post(EP.token_url, status=200, body=json.dumps(payload))
    with pytest.raises(OAuthProtocolError, match=reason):
        await client.exchange_code("c", "v")


async def test_json_with_other_content_type_is_accepted(
    client: AlibabaOAuthClient, mocked: aioresponses
) -> None:
    """A JSON body labelled text/plain is parsed: Alibaba's content types are undocumented."""
    mocked.post(EP.token_url, body='{"access_token": "at"}', content_type="text/plain")
    assert (await client.refresh("RT")).access_token == "at"


async def test_revoke_error_is_classified(client: AlibabaOAuthClient, mocked: aioresponses) -> None:
    """An error reply from revoke is an OAuthProviderError."""
    mocked.post(EP.revoke_url, status=400, payload={"error": "unsupported_token_type"})
    with pytest.raises(OAuthProviderError, match="unsupported_token_type"):
        await client.revoke("RT")


# -- secrets stay out ---------------------------------------------------------------------------


async def test_no_secret_in_errors_or_logs(
    client: AlibabaOAuthClient, mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    """Echoed secrets are scrubbed from errors; logs and reprs never show them."""
    echo = f"bad code CODE-SECRET verifier VERIFIER-SECRET with {SECRET}\n\x1b[31m"
    mocked.post(EP.token_url, status=400, payload={"error": "invalid_grant",
                                                   "error_description": echo})  # fmt: skip
    mocked.post(EP.token_url, exception=aiohttp.ClientConnectionError(f"x {SECRET}"))
    mocked.post(EP.token_url, payload={"access_token": "AT-SECRET", "refresh_token": "RT-SECRET",
                                       "id_token": "ID-SECRET"})  # fmt: skip
    errors: list[OAuthError] = []
    with caplog.at_level(logging.DEBUG):
        for _ in range(2):
            with pytest.raises(OAuthError) as info:
                await client.exchange_code("CODE-SECRET", "VERIFIER-SECRET")
            errors.append(info.value)
        tokens = await client.exchange_code("CODE-SECRET", "VERIFIER-SECRET")
    texts = [str(e) for e in errors] + [repr(e) for e in errors] + [repr(tokens), str(tokens)]
    texts += [caplog.text, repr(client)]
    for secret in ("CODE-SECRET", "VERIFIER-SECRET", SECRET, "AT-SECRET", "RT-SECRET", "ID-SECRET"):
        assert not any(secret in text for text in texts), secret
    assert "\x1b" not in str(errors[0])
    assert "oauth token: HTTP 400" in caplog.text


# -- id_token and JWKS --------------------------------------------------------------------------


async def test_verify_fetches_jwks_lazily_and_caches_it(
    client: AlibabaOAuthClient, mocked: aioresponses, clock: Clock
) -> None:
    """The JWKS is fetched on first use, then served from cache until its TTL."""
    mocked.get(EP.jwks_url, payload=jwks((KEY, "k1")), repeat=True)
    assert not client.jwks_loaded
    assert (await client.verify_id_token(id_token(), nonce="n-1"))["sub"] == "2001"
    clock.now += 600
    await client.verify_id_token(id_token(iat=clock.now), nonce="n-1")
    assert client.jwks_loaded
    assert len(sent(mocked, "GET", EP.jwks_url)) == 1
    clock.now = T0 + JWKS_TTL
    await client.verify_id_token(id_token(iat=clock.now, exp=clock.now + 60), nonce="n-1")
    assert len(sent(mocked, "GET", EP.jwks_url)) == 2


async def test_unknown_kid_refetches_jwks_once(
    client: AlibabaOAuthClient, mocked: aioresponses, clock: Clock
) -> None:
    """After a key rotation, an unknown kid triggers one re-fetch and then verifies."""
    mocked.get(EP.jwks_url, payload=jwks((KEY, "k1")))
    mocked.get(EP.jwks_url, payload=jwks((KEY, "k1"), (NEW_KEY, "k2")))
    await client.load_jwks()
    clock.now += JWKS_MIN_REFETCH_INTERVAL
    claims = await client.verify_id_token(id_token(NEW_KEY, "k2", iat=clock.now), nonce="n-1")
    assert claims["sub"] == "2001"
    assert len(sent(mocked, "GET", EP.jwks_url)) == 2


async def test_unknown_kid_refetch_is_rate_limited(
    client: AlibabaOAuthClient, mocked: aioresponses, clock: Clock
) -> None:
    """Forged kids cannot make the client hammer the JWKS endpoint: one re-fetch per interval."""
    mocked.get(EP.jwks_url, payload=jwks((KEY, "k1")), repeat=True)
    forged = id_token(NEW_KEY, "forged")
    for _ in range(5):
        with pytest.raises(UnknownKeyId):
            await client.verify_id_token(forged, nonce="n-1")
    assert len(sent(mocked, "GET", EP.jwks_url)) == 2  # the first load and one re-fetch
    clock.now += JWKS_MIN_REFETCH_INTERVAL
    for _ in range(3):
        with pytest.raises(UnknownKeyId):
            await client.verify_id_token(forged, nonce="n-1")
    assert len(sent(mocked, "GET", EP.jwks_url)) == 3


async def test_verification_failures_surface_as_id_token_errors(
    client: AlibabaOAuthClient, mocked: aioresponses
) -> None:
    """Wrong nonce or wrong audience in the token raise IdTokenError."""
    mocked.get(EP.jwks_url, payload=jwks((KEY, "k1")))
    with pytest.raises(IdTokenError, match="nonce"):
        await client.verify_id_token(id_token(), nonce="other")
    with pytest.raises(IdTokenError, match="audience"):
        await client.verify_id_token(id_token(aud="someone-else"), nonce="n-1")


async def test_jwks_failure_without_cache_is_unavailable(
    client: AlibabaOAuthClient, mocked: aioresponses
) -> None:
    """With no cached JWKS, a failing JWKS endpoint makes verification unavailable."""
    mocked.get(EP.jwks_url, status=500)
    with pytest.raises(OAuthUnavailable):
        await client.verify_id_token(id_token(), nonce="n-1")
    assert not client.jwks_loaded


async def test_stale_jwks_is_used_when_refresh_fails(
    client: AlibabaOAuthClient, mocked: aioresponses, clock: Clock
) -> None:
    """An expired JWKS cache still verifies while Alibaba's JWKS endpoint is down."""
    mocked.get(EP.jwks_url, payload=jwks((KEY, "k1")))
    mocked.get(EP.jwks_url, exception=TimeoutError())
    await client.load_jwks()
    clock.now += JWKS_TTL + 1
    claims = await client.verify_id_token(id_token(iat=clock.now), nonce="n-1")
    assert claims["sub"] == "2001"
    assert len(sent(mocked, "GET", EP.jwks_url)) == 2


async def test_load_jwks_skips_fresh_cache_and_reports_failures(
    client: AlibabaOAuthClient, mocked: aioresponses, clock: Clock
) -> None:
    """load_jwks fetches only when missing or stale, and raises when the fetch fails."""
    mocked.get(EP.jwks_url, payload=jwks((KEY, "k1")))
    mocked.get(EP.jwks_url, payload={"no": "keys"})
    await client.load_jwks()
    await client.load_jwks()
    assert len(sent(mocked, "GET", EP.jwks_url)) == 1
    clock.now += JWKS_TTL
    with pytest.raises(OAuthProtocolError, match="keys"):
        await client.load_jwks()
    assert client.jwks_loaded  # the previous keys stay usable


async def test_concurrent_cold_verifications_fetch_jwks_once(
    client: AlibabaOAuthClient, mocked: aioresponses
) -> None:
    """Parallel first verifications share one JWKS fetch."""
    mocked.get(EP.jwks_url, payload=jwks((KEY, "k1")), repeat=True)
    results = await asyncio.gather(
        *(client.verify_id_token(id_token(), nonce="n-1") for _ in range(5))
    )
    assert [r["sub"] for r in results] == ["2001"] * 5
    assert len(sent(mocked, "GET", EP.jwks_url)) == 1
