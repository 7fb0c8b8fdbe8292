"""The emulated oauth.aliyun.com token and revocation endpoints (RFC 6749 §3.2, §4.1.3, §6;
RFC 7009; RFC 7636 §4.6).

Strict on purpose: the emulator exists so that a client which gets the protocol wrong (the
seed's parameters in the query string, a camelCase `codeChallenge`, a reused code) fails here
rather than at Alibaba.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import uuid
from typing import Any
from urllib.parse import unquote_plus

from aiohttp import hdrs, web
from multidict import MultiDict, MultiMapping

from . import pkce
from .faults import apply_fault
from .jws import KeyRing
from .keys import SIGNING_KEYS_KEY, STORE_KEY
from .minting import id_token, mint_access_token, mint_refresh_token, token_response
from .oauth_errors import NO_STORE_HEADERS, OAuthError, invalid_client, oauth_error_response
from .settings import EmulatorSettings, OAuthClient
from .store import EmulatorStore, IssuedCode

FORM_TYPE = "application/x-www-form-urlencoded"


def single(form: MultiMapping[str], name: str) -> str | None:
    """The one value of a parameter; RFC 6749 §3.2 forbids sending one twice."""
    values = form.getall(name, [])
    if len(values) > 1:
        raise OAuthError("invalid_request", f"parameter {name} sent more than once")
    return values[0] if values and values[0] != "" else None


def required(form: MultiMapping[str], name: str) -> str:
    value = single(form, name)
    if value is None:
        raise OAuthError("invalid_request", f"missing parameter {name}")
    return value


async def read_form(request: web.Request) -> MultiDict[str]:
    """The URL-encoded body; the parameters must not ride in the query string (RFC 6749 §3.2)."""
    if request.content_type != FORM_TYPE:
        raise OAuthError("invalid_request", f"Content-Type must be {FORM_TYPE}")
    if request.query:
        raise OAuthError("invalid_request", "parameters must be sent in the request body")
    try:
        form = await request.post()
    except (ValueError, LookupError) as exc:  # bad encoding or unknown charset
        raise OAuthError("invalid_request", "malformed form body") from exc
    return MultiDict((k, v) for k, v in form.items() if isinstance(v, str))


def _basic_credentials(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get(hdrs.AUTHORIZATION)
    if header is None:
        return None
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        raise invalid_client("unsupported Authorization scheme", basic=True)
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise invalid_client("malformed HTTP Basic credentials", basic=True) from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise invalid_client("malformed HTTP Basic credentials", basic=True)
    # RFC 6749 §2.3.1: both parts are form-urlencoded before being joined.
    return unquote_plus(client_id), unquote_plus(secret)


def authenticate_client(
    request: web.Request, form: MultiMapping[str], settings: EmulatorSettings
) -> OAuthClient:
    """client_secret_post or client_secret_basic, not both (RFC 6749 §2.3)."""
    basic = _basic_credentials(request)
    if basic is not None:
        if single(form, "client_secret") is not None:
            raise OAuthError("invalid_request", "use one client authentication method only")
        body_id = single(form, "client_id")
        if body_id is not None and body_id != basic[0]:
            raise OAuthError("invalid_request", "client_id differs from the Basic credentials")
        client_id, secret = basic
    else:
        client_id, secret = single(form, "client_id") or "", single(form, "client_secret") or ""
    client = settings.client_by_id(client_id)
    if (
        client is None
        or not secret
        or not secrets.compare_digest(secret.encode(), client.client_secret.encode())
    ):
        raise invalid_client("client authentication failed", basic=basic is not None)
    return client


def _checked_code(store: EmulatorStore, client: OAuthClient, form: MultiMapping[str]) -> IssuedCode:
    code = store.codes.get(required(form, "code"))
    if code is None:
        raise OAuthError("invalid_grant", "unknown authorization code")
    if code.used:
        store.revoke_code_tokens(code)
        raise OAuthError("invalid_grant", "code already used; its tokens are revoked")
    if code.client_id != client.client_id:
        raise OAuthError("invalid_grant", "code was issued to another client")
    if code.expires_at <= store.settings.clock():
        raise OAuthError("invalid_grant", "authorization code expired")
    if single(form, "redirect_uri") != code.redirect_uri:
        raise OAuthError("invalid_grant", "redirect_uri differs from the authorize request's")
    _check_verifier(code, single(form, "code_verifier"))
    return code


def _check_verifier(code: IssuedCode, verifier: str | None) -> None:
    if code.code_challenge is None or code.code_challenge_method is None:
        if verifier is not None:
            # A verifier without a challenge means the client thinks it used PKCE but the
            # challenge never arrived (e.g. sent as `codeChallenge`): refuse the downgrade.
            raise OAuthError("invalid_grant", "code_verifier sent but no code_challenge was")
        return
    if verifier is None:
        raise OAuthError("invalid_grant", "code_verifier required (PKCE)")
    if not pkce.verifier_matches(verifier, code.code_challenge, code.code_challenge_method):
        raise OAuthError("invalid_grant", "code_verifier does not match code_challenge")


def exchange_code(
    store: EmulatorStore, keys: KeyRing, client: OAuthClient, form: MultiMapping[str]
) -> dict[str, Any]:
    """grant_type=authorization_code (RFC 6749 §4.1.3)."""
    code = _checked_code(store, client, form)
    code.used = True
    refresh = None
    if code.access_type == "offline":
        refresh = mint_refresh_token(store, code.agent, client.client_id, code.scope)
        code.refresh_token = refresh.value
    access = mint_access_token(
        store, code.agent, client.client_id, code.scope, refresh.value if refresh else None
    )
    code.access_tokens.append(access.value)
    id_tok = None
    if "openid" in code.scope.split():
        id_tok = id_token(store.settings, keys, code.agent, client.client_id, code.nonce)
    return token_response(store.settings, access, refresh, id_tok)


def refresh_grant(
    store: EmulatorStore, client: OAuthClient, form: MultiMapping[str]
) -> dict[str, Any]:
    """grant_type=refresh_token (RFC 6749 §6): a new access token, never an id_token."""
    old = store.live_refresh(required(form, "refresh_token"))
    if old is None or old.client_id != client.client_id:
        raise OAuthError("invalid_grant", "refresh token unknown, expired or revoked")
    scope = single(form, "scope")
    if scope is not None and not set(scope.split()) <= set(old.scope.split()):
        raise OAuthError("invalid_scope", "scope exceeds the one originally granted")
    new = None
    if store.settings.rotate_refresh_tokens:
        new = mint_refresh_token(store, old.agent, client.client_id, old.scope)
        old.revoked = True  # only the refresh token: access tokens already out stay valid
    current = new or old
    access = mint_access_token(
        store, old.agent, client.client_id, scope or old.scope, current.value
    )
    return token_response(store.settings, access, new, None)


async def token_handler(request: web.Request) -> web.Response:
    """POST /v1/token."""
    fault = await apply_fault(request.app, "token")
    if fault is not None:
        return fault
    store = request.app[STORE_KEY]
    try:
        form = await read_form(request)
        client = authenticate_client(request, form, store.settings)
        grant_type = required(form, "grant_type")
        if grant_type == "authorization_code":
            body = exchange_code(store, request.app[SIGNING_KEYS_KEY], client, form)
        elif grant_type == "refresh_token":
            body = refresh_grant(store, client, form)
        else:
            raise OAuthError("unsupported_grant_type", f"grant_type {grant_type!r}")
    except OAuthError as exc:
        return oauth_error_response(exc)
    return web.json_response(body, headers=NO_STORE_HEADERS)


def revoke_token(store: EmulatorStore, client: OAuthClient, value: str) -> None:
    """Revoke a refresh token (and its access tokens) or an access token of this client."""
    refresh = store.refresh_tokens.get(value)
    if refresh is not None and refresh.client_id == client.client_id:
        store.revoke_refresh_token(value)
        return
    access = store.access_tokens.get(value)
    if access is not None and access.client_id == client.client_id:
        access.revoked = True
    # Unknown or someone else's token: nothing to do, and nothing to tell (RFC 7009 §2.2).


async def revoke_handler(request: web.Request) -> web.Response:
    """POST /v1/revoke."""
    fault = await apply_fault(request.app, "revoke")
    if fault is not None:
        return fault
    store = request.app[STORE_KEY]
    try:
        form = await read_form(request)
        client = authenticate_client(request, form, store.settings)
        revoke_token(store, client, required(form, "token"))
    except OAuthError as exc:
        return oauth_error_response(exc)
    return web.json_response({"request_id": str(uuid.uuid4())}, headers=NO_STORE_HEADERS)
