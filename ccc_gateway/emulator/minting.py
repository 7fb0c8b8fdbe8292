"""Making tokens: opaque or `AliyunSTS` access tokens, refresh tokens, id_tokens, the reply.

Shapes follow docs/oauth.md (sections 3 and 6); which shape is chosen at call time from the
settings so `/_emulator/settings` can switch them between two requests.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from typing import Any

from .jws import KeyRing, encode_rs256
from .settings import Agent, EmulatorSettings
from .store import EmulatorStore, IssuedAccessToken, IssuedRefreshToken, StsCredentials


def _sts_credentials() -> StsCredentials:
    return StsCredentials(
        access_key_id="STS." + secrets.token_urlsafe(18),
        access_key_secret=secrets.token_urlsafe(30),
        # Real security tokens run to several hundred characters; clients must not truncate.
        security_token=base64.b64encode(secrets.token_bytes(300)).decode("ascii"),
    )


def _sts_access_token(sts: StsCredentials) -> str:
    document = {
        "AccessKeyId": sts.access_key_id,
        "AccessKeySecret": sts.access_key_secret,
        "SecurityToken": sts.security_token,
    }
    raw = json.dumps(document, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def mint_access_token(
    store: EmulatorStore, agent: Agent, client_id: str, scope: str, refresh_token: str | None
) -> IssuedAccessToken:
    """A new access token in the configured format, recorded in the store."""
    settings = store.settings
    sts = _sts_credentials() if settings.token_format == "sts" else None  # noqa: S105 - a mode
    token = IssuedAccessToken(
        value=_sts_access_token(sts) if sts else secrets.token_urlsafe(32),
        agent=agent,
        client_id=client_id,
        expires_at=settings.clock() + settings.access_token_ttl,
        refresh_token=refresh_token,
        sts=sts,
        scope=scope,
    )
    store.add_access_token(token)
    return token


def mint_refresh_token(
    store: EmulatorStore, agent: Agent, client_id: str, scope: str
) -> IssuedRefreshToken:
    settings = store.settings
    token = IssuedRefreshToken(
        value=secrets.token_urlsafe(24),
        agent=agent,
        client_id=client_id,
        scope=scope,
        expires_at=settings.clock() + settings.refresh_token_ttl,
    )
    store.refresh_tokens[token.value] = token
    return token


def id_token(
    settings: EmulatorSettings, keys: KeyRing, agent: Agent, client_id: str, nonce: str | None
) -> str:
    """An RS256 id_token with the claims Alibaba puts in one for a RAM user."""
    iat = int(settings.clock())
    claims: dict[str, Any] = {
        "iss": settings.iss,
        "aud": client_id,
        "sub": agent.uid,
        "upn": agent.upn,
        "name": agent.upn,  # Alibaba puts the upn here for RAM users, not a display name
        "aid": settings.account_id,
        "uid": agent.uid,
        "iat": iat,
        "exp": iat + int(settings.access_token_ttl),
    }
    if nonce is not None:
        claims["nonce"] = nonce
    return encode_rs256(claims, keys.current)


def token_response(
    settings: EmulatorSettings,
    access: IssuedAccessToken,
    refresh: IssuedRefreshToken | None,
    id_tok: str | None,
) -> dict[str, Any]:
    """The JSON body of a successful token response."""
    ttl = int(settings.access_token_ttl)
    body: dict[str, Any] = {
        "access_token": access.value,
        "token_type": "AliyunSTS" if access.sts else "Bearer",
        "expires_in": str(ttl) if settings.expires_in_as_string else ttl,
    }
    if refresh is not None:
        body["refresh_token"] = refresh.value
    if id_tok is not None:
        body["id_token"] = id_tok
    body["request_id"] = str(uuid.uuid4())
    return body
