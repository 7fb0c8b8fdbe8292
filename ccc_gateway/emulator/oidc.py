"""The emulated OIDC side of oauth.aliyun.com: userinfo, JWKS and discovery."""

from __future__ import annotations

from typing import Any

from aiohttp import hdrs, web

from .authorize import KNOWN_SCOPES
from .faults import apply_fault
from .keys import SIGNING_KEYS_KEY, STORE_KEY
from .settings import EmulatorSettings

CLAIMS = "iss aud sub exp iat nonce name upn aid uid".split()


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def userinfo_handler(request: web.Request) -> web.Response:
    """GET /v1/userinfo with `Authorization: Bearer <access_token>` (either token format)."""
    fault = await apply_fault(request.app, "userinfo")
    if fault is not None:
        return fault
    store = request.app[STORE_KEY]
    value = _bearer(request)
    token = store.live_bearer(value) if value else None
    if token is None:
        return web.json_response(
            {"error": "invalid_token", "error_description": "access token missing or not live"},
            status=401,
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    agent = token.agent
    return web.json_response(
        {
            "sub": agent.uid,
            "uid": agent.uid,
            "upn": agent.upn,
            "name": agent.upn,  # as in the id_token: Alibaba names RAM users by their upn
            "aid": store.settings.account_id,
        }
    )


async def jwks_handler(request: web.Request) -> web.Response:
    """GET /v1/keys: every published signing key, newest first."""
    fault = await apply_fault(request.app, "jwks")
    if fault is not None:
        return fault
    return web.json_response(request.app[SIGNING_KEYS_KEY].jwks())


def discovery_document(settings: EmulatorSettings) -> dict[str, Any]:
    base = settings.public_url.rstrip("/")
    return {
        "issuer": settings.iss,
        "authorization_endpoint": f"{base}/oauth2/v1/auth",
        "token_endpoint": f"{base}/v1/token",
        "revocation_endpoint": f"{base}/v1/revoke",
        "userinfo_endpoint": f"{base}/v1/userinfo",
        "jwks_uri": f"{base}/v1/keys",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "scopes_supported": list(KNOWN_SCOPES),
        "code_challenge_methods_supported": ["plain", "S256"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": CLAIMS,
    }


async def discovery_handler(request: web.Request) -> web.Response:
    """GET /.well-known/openid-configuration."""
    return web.json_response(discovery_document(request.app[STORE_KEY].settings))
