"""The emulated Alibaba OAuth/OIDC endpoints, driven the way a browser and a gateway would."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from html.parser import HTMLParser
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from yarl import URL

from ccc_gateway.emulator.app import create_emulator_app
from ccc_gateway.emulator.keys import STORE_KEY
from ccc_gateway.emulator.settings import EmulatorSettings, OAuthClient

PUBLIC_URL = "https://emulator.test"
REDIRECT = "https://crm.example.test/aliyun/auth/callback"
OTHER_REDIRECT = "https://crm.example.test/other/callback"
CLIENT = OAuthClient("client-1", "secret-1", (REDIRECT, OTHER_REDIRECT))
OTHER_CLIENT = OAuthClient("client-2", "secret-2", (REDIRECT,))
UPN = "agent1@ccc-demo.onaliyun.com"
PASSWORD = "agent1-pass"

Client = TestClient[Any, Any]


class Clock:
    """A settable clock for expiry tests."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class FormParser(HTMLParser):
    """Collects the first form's action, method and input name/value pairs."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.method: str | None = None
        self.fields: dict[str, str] = {}
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form" and self.action is None:
            self.action, self.method = a.get("action"), a.get("method")
        if tag == "input" and a.get("name"):
            self.fields[a["name"] or ""] = a.get("value") or ""
        self._in_title = tag == "title"

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False


def parse_form(html: str) -> FormParser:
    parser = FormParser()
    parser.feed(html)
    return parser


def new_verifier() -> str:
    return secrets.token_urlsafe(48)  # 64 characters of the allowed alphabet


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def basic_auth(client_id: str, secret: str) -> dict[str, str]:
    pair = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {pair}"}


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def settings(clock: Clock) -> EmulatorSettings:
    return EmulatorSettings(public_url=PUBLIC_URL, clients=(CLIENT, OTHER_CLIENT), clock=clock)


@pytest.fixture
async def client(aiohttp_client: Any, settings: EmulatorSettings) -> Client:
    return await aiohttp_client(create_emulator_app(settings))  # type: ignore[no-any-return]


def auth_params(**overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "client_id": CLIENT.client_id,
        "redirect_uri": REDIRECT,
        "response_type": "code",
        "state": "state-123",
        "access_type": "offline",
        **overrides,
    }
    return {k: v for k, v in params.items() if v is not None}


async def sign_in(
    client: Client, params: dict[str, str], password: str = PASSWORD, action: str = "signin"
) -> ClientResponse:
    """GET the sign-in page, then submit its form as a browser would (no redirect following)."""
    page = await client.get("/oauth2/v1/auth", params=params)
    assert page.status == 200
    form = parse_form(await page.text())
    data = {**form.fields, "username": UPN, "password": password, "action": action}
    return await client.post(form.action or "", data=data, allow_redirects=False)


async def get_code(client: Client, **overrides: str | None) -> str:
    resp = await sign_in(client, auth_params(**overrides))
    assert resp.status == 302
    location = URL(resp.headers["Location"])
    assert str(location.with_query(None)) == REDIRECT
    return location.query["code"]


async def token(client: Client, **form: str | None) -> ClientResponse:
    data = {
        "client_id": CLIENT.client_id,
        "client_secret": CLIENT.client_secret,
        **form,
    }
    return await client.post("/v1/token", data={k: v for k, v in data.items() if v is not None})


async def exchange(client: Client, code: str, verifier: str | None = None, **form: str) -> Any:
    resp = await token(
        client,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
        code_verifier=verifier,
        **form,
    )
    return resp.status, await resp.json()


async def full_flow(client: Client, **overrides: str | None) -> dict[str, Any]:
    verifier = new_verifier()
    code = await get_code(
        client, code_challenge=s256(verifier), code_challenge_method="S256", **overrides
    )
    status, body = await exchange(client, code, verifier)
    assert status == 200, body
    return body  # type: ignore[no-any-return]


async def userinfo_status(client: Client, access_token: str) -> int:
    resp = await client.get("/v1/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    return resp.status


def verify_jws(jwt: str, jwks: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Check an RS256 signature against the JWKS key of its kid; return header and claims."""
    head_b64, claims_b64, sig_b64 = jwt.split(".")
    header = json.loads(b64url_decode(head_b64))
    jwk = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    numbers = rsa.RSAPublicNumbers(
        int.from_bytes(b64url_decode(jwk["e"]), "big"),
        int.from_bytes(b64url_decode(jwk["n"]), "big"),
    )
    numbers.public_key().verify(
        b64url_decode(sig_b64),
        f"{head_b64}.{claims_b64}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    return header, json.loads(b64url_decode(claims_b64))


# --- the happy paths ---------------------------------------------------------------------


async def test_s256_code_flow_issues_all_tokens(client: Client) -> None:
    """An S256 PKCE code flow with offline access yields access, refresh and id tokens."""
    verifier = new_verifier()
    resp = await sign_in(
        client, auth_params(code_challenge=s256(verifier), code_challenge_method="S256")
    )
    location = URL(resp.headers["Location"])
    assert location.query["state"] == "state-123"
    status, body = await exchange(client, location.query["code"], verifier)
    assert status == 200
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert body["refresh_token"] and body["id_token"]
    assert uuid.UUID(body["request_id"])


async def test_plain_pkce_code_flow(client: Client) -> None:
    """A plain PKCE challenge (the default method) is answered by the identical verifier."""
    verifier = new_verifier()
    code = await get_code(client, code_challenge=verifier)
    status, body = await exchange(client, code, verifier)
    assert status == 200
    assert body["access_token"]


async def test_token_endpoint_accepts_http_basic(client: Client) -> None:
    """Client credentials may come as HTTP Basic instead of form fields."""
    code = await get_code(client)
    resp = await client.post(
        "/v1/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT},
        headers=basic_auth(CLIENT.client_id, CLIENT.client_secret),
    )
    assert resp.status == 200


async def test_state_is_omitted_when_none_was_sent(client: Client) -> None:
    """Without a state in the request the redirect carries none."""
    resp = await sign_in(client, auth_params(state=None))
    assert "state" not in URL(resp.headers["Location"]).query


async def test_form_post_mode_answers_with_auto_submitting_form(client: Client) -> None:
    """response_mode=form_post returns a self-submitting POST form carrying code and state."""
    resp = await sign_in(client, auth_params(response_mode="form_post"))
    assert resp.status == 200
    html = await resp.text()
    form = parse_form(html)
    assert (form.action, form.method) == (REDIRECT, "post")
    assert form.fields["state"] == "state-123"
    assert form.fields["code"] in client.app[STORE_KEY].codes
    assert "submit()" in html and "<button" in html


async def test_sts_token_format(client: Client, settings: EmulatorSettings) -> None:
    """token_format sts issues an AliyunSTS token: base64url JSON STS credentials."""
    settings.token_format = "sts"
    body = await full_flow(client)
    assert body["token_type"] == "AliyunSTS"
    assert "=" not in body["access_token"]
    creds = json.loads(b64url_decode(body["access_token"]))
    assert creds["AccessKeyId"].startswith("STS.")
    assert set(creds) == {"AccessKeyId", "AccessKeySecret", "SecurityToken"}
    stored = client.app[STORE_KEY].sts_token(creds["AccessKeyId"])
    assert stored is not None and stored.sts is not None
    assert stored.sts.access_key_secret == creds["AccessKeySecret"]
    assert await userinfo_status(client, body["access_token"]) == 200


async def test_expires_in_as_string(client: Client, settings: EmulatorSettings) -> None:
    """expires_in_as_string makes expires_in a JSON string, as the seed's sample shows."""
    settings.expires_in_as_string = True
    assert (await full_flow(client))["expires_in"] == "3600"


async def test_online_access_gets_no_refresh_token(client: Client) -> None:
    """Without access_type=offline the response has no refresh_token."""
    body = await full_flow(client, access_type=None)
    assert "refresh_token" not in body


async def test_scope_without_openid_gets_no_id_token(client: Client) -> None:
    """An id_token is issued only when the scope includes openid."""
    body = await full_flow(client, scope="aliuid /acs/ccc")
    assert "id_token" not in body


# --- the authorize endpoint --------------------------------------------------------------


async def test_sign_in_page_has_form_fields(client: Client) -> None:
    """The sign-in page posts username and password plus the request's parameters."""
    resp = await client.get("/oauth2/v1/auth", params=auth_params(nonce="n-1"))
    form = parse_form(await resp.text())
    assert form.title == "Alibaba Cloud – RAM user sign-in (emulator)"
    assert form.method == "post"
    assert {"username", "password"} <= set(form.fields)
    assert form.fields["nonce"] == "n-1"


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": "nobody"},
        {"client_id": None},
        {"redirect_uri": "https://evil.example/callback"},
        {"redirect_uri": None},
        {"redirect_uri": REDIRECT + "/"},
    ],
)
async def test_bad_client_or_redirect_uri_shows_page_not_redirect(
    client: Client, overrides: dict[str, str | None]
) -> None:
    """An unknown client_id or unregistered redirect_uri gets an HTML page, never a redirect."""
    resp = await client.get(
        "/oauth2/v1/auth", params=auth_params(**overrides), allow_redirects=False
    )
    assert resp.status == 400
    assert "Location" not in resp.headers
    assert resp.content_type == "text/html"


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"code_challenge": "x" * 43, "code_challenge_method": "S512"}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_mode": "fragment"}, "invalid_request"),
    ],
)
async def test_bad_authorize_parameters_redirect_with_error(
    client: Client, overrides: dict[str, str], error: str
) -> None:
    """Other bad parameters go back to redirect_uri as error, description and state."""
    resp = await client.get(
        "/oauth2/v1/auth", params=auth_params(**overrides), allow_redirects=False
    )
    assert resp.status == 302
    query = URL(resp.headers["Location"]).query
    assert query["error"] == error
    assert query["error_description"]
    assert query["state"] == "state-123"


async def test_camel_case_code_challenge_is_not_pkce(client: Client) -> None:
    """The seed's codeChallenge is ignored, so a later code_verifier is refused."""
    verifier = new_verifier()
    code = await get_code(client, codeChallenge=s256(verifier))
    status, body = await exchange(client, code, verifier)
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_wrong_password_shows_form_again(client: Client) -> None:
    """Wrong credentials redisplay the sign-in form with a message and 401."""
    resp = await sign_in(client, auth_params(), password="wrong")
    assert resp.status == 401
    html = await resp.text()
    assert "Wrong user name or password" in html
    assert parse_form(html).fields["username"] == UPN


async def test_cancel_redirects_with_access_denied(client: Client) -> None:
    """The Cancel button returns error=access_denied with the state."""
    resp = await sign_in(client, auth_params(), password="", action="cancel")
    query = URL(resp.headers["Location"]).query
    assert (query["error"], query["state"]) == ("access_denied", "state-123")
    assert "code" not in query


# --- the token endpoint's refusals -------------------------------------------------------


@pytest.mark.parametrize(
    "creds", [{"client_secret": "wrong"}, {"client_secret": None}, {"client_id": "nobody"}]
)
async def test_bad_client_credentials_are_invalid_client(
    client: Client, creds: dict[str, str | None]
) -> None:
    """A wrong or missing client secret or unknown client is 401 invalid_client."""
    code = await get_code(client)
    resp = await token(
        client, grant_type="authorization_code", code=code, redirect_uri=REDIRECT, **creds
    )
    assert resp.status == 401
    assert (await resp.json())["error"] == "invalid_client"


async def test_wrong_basic_credentials_get_a_challenge(client: Client) -> None:
    """Failed HTTP Basic client authentication answers 401 with WWW-Authenticate."""
    resp = await client.post(
        "/v1/token", data={"grant_type": "refresh_token"}, headers=basic_auth(CLIENT.client_id, "x")
    )
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Basic")


async def test_token_endpoint_requires_form_body(client: Client) -> None:
    """JSON bodies and query-string parameters are invalid_request."""
    as_json = await client.post("/v1/token", json={"grant_type": "refresh_token"})
    in_query = await client.post(
        "/v1/token", params={"grant_type": "refresh_token"}, data={"client_id": "client-1"}
    )
    for resp in (as_json, in_query):
        assert resp.status == 400
        assert (await resp.json())["error"] == "invalid_request"


async def test_unsupported_grant_type(client: Client) -> None:
    """An unknown grant_type is unsupported_grant_type."""
    resp = await token(client, grant_type="password")
    assert (resp.status, (await resp.json())["error"]) == (400, "unsupported_grant_type")


@pytest.mark.parametrize("verifier", ["wrong-" + "v" * 50, None, "too-short"])
async def test_wrong_or_missing_verifier_is_invalid_grant(
    client: Client, verifier: str | None
) -> None:
    """A PKCE code needs the matching code_verifier."""
    code = await get_code(client, code_challenge=s256(new_verifier()), code_challenge_method="S256")
    status, body = await exchange(client, code, verifier)
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_reused_code_is_refused_and_revokes_its_tokens(client: Client) -> None:
    """A code used twice is invalid_grant and the tokens from its first use die."""
    code = await get_code(client)
    _, first = await exchange(client, code)
    status, body = await exchange(client, code)
    assert (status, body["error"]) == (400, "invalid_grant")
    assert await userinfo_status(client, first["access_token"]) == 401
    resp = await token(client, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert (await resp.json())["error"] == "invalid_grant"


async def test_expired_code_is_refused(client: Client, clock: Clock) -> None:
    """A code older than code_ttl is invalid_grant."""
    code = await get_code(client)
    clock.now += 61
    status, body = await exchange(client, code)
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_mismatched_redirect_uri_is_refused(client: Client) -> None:
    """The token request's redirect_uri must equal the authorize request's."""
    code = await get_code(client)
    resp = await token(
        client, grant_type="authorization_code", code=code, redirect_uri=OTHER_REDIRECT
    )
    assert (resp.status, (await resp.json())["error"]) == (400, "invalid_grant")


async def test_code_of_another_client_is_refused(client: Client) -> None:
    """A code is bound to the client it was issued to."""
    code = await get_code(client)
    resp = await token(
        client,
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT,
        client_id=OTHER_CLIENT.client_id,
        client_secret=OTHER_CLIENT.client_secret,
    )
    assert (resp.status, (await resp.json())["error"]) == (400, "invalid_grant")


# --- refresh and revoke ------------------------------------------------------------------


async def test_refresh_without_rotation(client: Client) -> None:
    """A refresh returns a new access token only; the refresh token stays usable."""
    first = await full_flow(client)
    for _ in range(2):
        resp = await token(client, grant_type="refresh_token", refresh_token=first["refresh_token"])
        body = await resp.json()
        assert resp.status == 200
        assert body["access_token"] != first["access_token"]
        assert "refresh_token" not in body and "id_token" not in body


async def test_refresh_with_rotation(client: Client, settings: EmulatorSettings) -> None:
    """With rotation each refresh returns a new refresh token and the old one dies at once."""
    settings.rotate_refresh_tokens = True
    first = await full_flow(client)
    resp = await token(client, grant_type="refresh_token", refresh_token=first["refresh_token"])
    body = await resp.json()
    assert body["refresh_token"] != first["refresh_token"]
    again = await token(client, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert (again.status, (await again.json())["error"]) == (400, "invalid_grant")
    newer = await token(client, grant_type="refresh_token", refresh_token=body["refresh_token"])
    assert newer.status == 200


async def test_expired_refresh_token_is_refused(client: Client, clock: Clock) -> None:
    """A refresh token past refresh_token_ttl is invalid_grant."""
    first = await full_flow(client)
    clock.now += 31 * 86400
    resp = await token(client, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert (await resp.json())["error"] == "invalid_grant"


async def test_revoking_refresh_token_kills_its_access_tokens(client: Client) -> None:
    """Revoking the refresh token ends refreshes and every access token issued under it."""
    first = await full_flow(client)
    resp = await client.post(
        "/v1/revoke",
        data={
            "token": first["refresh_token"],
            "client_id": CLIENT.client_id,
            "client_secret": CLIENT.client_secret,
        },
    )
    assert resp.status == 200
    assert uuid.UUID((await resp.json())["request_id"])
    assert await userinfo_status(client, first["access_token"]) == 401
    again = await token(client, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert (await again.json())["error"] == "invalid_grant"


async def test_revoking_access_token_keeps_refresh_token(client: Client) -> None:
    """Revoking an access token kills only that token."""
    first = await full_flow(client)
    creds = {"client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret}
    await client.post("/v1/revoke", data={"token": first["access_token"], **creds})
    assert await userinfo_status(client, first["access_token"]) == 401
    resp = await token(client, grant_type="refresh_token", refresh_token=first["refresh_token"])
    assert resp.status == 200


async def test_revoke_unknown_token_is_ok_but_bad_client_is_not(client: Client) -> None:
    """Revoking an unknown token is 200 (RFC 7009); wrong client credentials are 401."""
    good = await client.post(
        "/v1/revoke",
        data={"token": "nope", "client_id": CLIENT.client_id, "client_secret": "secret-1"},
    )
    bad = await client.post(
        "/v1/revoke", data={"token": "nope", "client_id": CLIENT.client_id, "client_secret": "x"}
    )
    assert good.status == 200
    assert (bad.status, (await bad.json())["error"]) == (401, "invalid_client")


# --- OIDC ----------------------------------------------------------------------------------


async def test_userinfo_describes_the_agent(client: Client, clock: Clock) -> None:
    """userinfo answers a live token with the agent's identity and 401 once it expired."""
    body = await full_flow(client)
    resp = await client.get(
        "/v1/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    info = await resp.json()
    assert info["upn"] == UPN
    assert info["sub"] == info["uid"] == "246564030753828051"
    assert info["aid"] == "1075807536267325"
    clock.now += 3601
    assert await userinfo_status(client, body["access_token"]) == 401
    missing = await client.get("/v1/userinfo")
    assert (missing.status, (await missing.json())["error"]) == (401, "invalid_token")


async def test_jwks_verifies_id_token(client: Client, clock: Clock) -> None:
    """The id_token is RS256-signed by a JWKS key and carries Alibaba's claims."""
    body = await full_flow(client, nonce="nonce-42")
    jwks = await (await client.get("/v1/keys")).json()
    assert {k["alg"] for k in jwks["keys"]} == {"RS256"}
    header, claims = verify_jws(body["id_token"], jwks)
    assert header == {"alg": "RS256", "kid": jwks["keys"][0]["kid"], "typ": "JWT"}
    assert claims["iss"] == PUBLIC_URL
    assert claims["aud"] == CLIENT.client_id
    assert claims["upn"] == claims["name"] == UPN
    assert claims["nonce"] == "nonce-42"
    assert claims["iat"] == int(clock.now)
    assert claims["exp"] == claims["iat"] + 3600


async def test_tampered_id_token_fails_verification(client: Client) -> None:
    """The test's verifier really checks the signature (a changed claim fails)."""
    body = await full_flow(client)
    jwks = await (await client.get("/v1/keys")).json()
    head, claims, sig = body["id_token"].split(".")
    forged = json.loads(b64url_decode(claims)) | {"upn": "agent2@ccc-demo.onaliyun.com"}
    forged_b64 = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidSignature):
        verify_jws(f"{head}.{forged_b64}.{sig}", jwks)


async def test_key_rotation_publishes_new_kid_first(client: Client) -> None:
    """After rotation new id_tokens use the new kid; the JWKS lists it first and keeps the old."""
    old_jwks = await (await client.get("/v1/keys")).json()
    rotated = await (await client.post("/_emulator/keys/rotate")).json()
    jwks = await (await client.get("/v1/keys")).json()
    assert [k["kid"] for k in jwks["keys"]] == [rotated["kid"], old_jwks["keys"][0]["kid"]]
    header, _ = verify_jws((await full_flow(client))["id_token"], jwks)
    assert header["kid"] == rotated["kid"]


async def test_discovery_document_names_the_endpoints(client: Client) -> None:
    """Discovery points at this emulator's Alibaba paths and advertises PKCE methods."""
    doc = await (await client.get("/.well-known/openid-configuration")).json()
    assert doc["authorization_endpoint"] == f"{PUBLIC_URL}/oauth2/v1/auth"
    assert doc["token_endpoint"] == f"{PUBLIC_URL}/v1/token"
    assert doc["jwks_uri"] == f"{PUBLIC_URL}/v1/keys"
    assert doc["code_challenge_methods_supported"] == ["plain", "S256"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
