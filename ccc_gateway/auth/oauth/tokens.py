"""Token endpoint responses and the STS credentials inside ``AliyunSTS`` access tokens.

Implements docs/oauth.md ("Token" and "Refresh"): ``expires_in`` arrives as a number
or a numeric string; ``token_type`` is ``Bearer`` (current docs) or ``AliyunSTS`` (the seed's
sample), compared case-insensitively; a refresh reply usually carries no ``refresh_token``,
so the previous one is kept unless a new one is returned (rotation). An ``AliyunSTS`` access
token is base64url JSON ``{"AccessKeyId", "AccessKeySecret", "SecurityToken"}`` used for POP
signature v1.0 (§3).

The reprs of the dataclasses mask every secret so tokens never reach logs by accident.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ccc_gateway.auth.oauth.errors import OAuthProtocolError

__all__ = [
    "DEFAULT_EXPIRES_IN",
    "TOKEN_TYPE_BEARER",
    "TOKEN_TYPE_STS",
    "StsCredentials",
    "TokenSet",
    "parse_token_response",
    "sts_credentials",
]

# Token type names, not secrets.
TOKEN_TYPE_BEARER = "Bearer"  # noqa: S105
TOKEN_TYPE_STS = "AliyunSTS"  # noqa: S105
_CANONICAL_TYPES = {t.lower(): t for t in (TOKEN_TYPE_BEARER, TOKEN_TYPE_STS)}

# Used when a reply omits expires_in. 900 s is the shortest lifetime an Alibaba OAuth app can
# configure (§1 "Lifetimes"): assuming less than the truth only costs an early refresh, while
# assuming more would send expired tokens to CCC in the middle of an agent's work.
DEFAULT_EXPIRES_IN = 900.0

_MASK = "***"
# Standard and URL-safe alphabets, optional padding: the seed's sample is unpadded base64url,
# but nothing documents that every Alibaba region encodes it the same way.
_B64_ANY = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


@dataclass(frozen=True, slots=True)
class StsCredentials:
    """Temporary STS credentials decoded from an ``AliyunSTS`` access token."""

    access_key_id: str
    access_key_secret: str
    security_token: str

    def __repr__(self) -> str:
        return (
            f"StsCredentials(access_key_id={self.access_key_id!r}, "
            f"access_key_secret={_MASK!r}, security_token={_MASK!r})"
        )


@dataclass(frozen=True, slots=True)
class TokenSet:
    """What the token endpoint granted; ``expires_at`` is a UNIX time from the injected clock."""

    access_token: str
    token_type: str
    expires_at: float
    refresh_token: str | None = None
    id_token: str | None = None
    scope: str | None = None
    # The STS credentials, decoded on first use: once per sign-in rather than once per API
    # call, since the session cache shares one TokenSet per cookie value. They live and die
    # with this TokenSet (and so with the sign-in's cache entry); `replace` starts afresh.
    _sts: StsCredentials | None = field(default=None, init=False, repr=False, compare=False)

    def __repr__(self) -> str:
        return (
            f"TokenSet(access_token={_MASK!r}, token_type={self.token_type!r}, "
            f"expires_at={self.expires_at!r}, refresh_token={_masked(self.refresh_token)!r}, "
            f"id_token={_masked(self.id_token)!r}, scope={self.scope!r})"
        )

    @property
    def is_sts(self) -> bool:
        """True for an ``AliyunSTS`` access token (sign POP calls instead of Bearer)."""
        return self.token_type == TOKEN_TYPE_STS

    def expires_within(self, now: float, leeway: float = 0.0) -> bool:
        """True when the access token is expired or will be within ``leeway`` seconds."""
        return self.expires_at - leeway <= now


def parse_token_response(
    body: Mapping[str, Any], *, now: float, previous_refresh_token: str | None = None
) -> TokenSet:
    """Build a :class:`TokenSet` from a 2xx token endpoint JSON body.

    ``now`` should be taken before the request was sent, so ``expires_at`` errs early.
    Raises :class:`OAuthProtocolError` when the body breaks the protocol.
    """
    if not isinstance(body, Mapping):
        raise OAuthProtocolError("token response is not a JSON object")
    access_token = body.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        raise OAuthProtocolError("token response has no access_token")
    return TokenSet(
        access_token=access_token,
        token_type=_token_type(body.get("token_type")),
        expires_at=now + _expires_in(body.get("expires_in")),
        refresh_token=_optional_str(body, "refresh_token") or previous_refresh_token,
        id_token=_optional_str(body, "id_token"),
        scope=_optional_str(body, "scope"),
    )


def sts_credentials(token: TokenSet) -> StsCredentials | None:
    """The STS credentials of an ``AliyunSTS`` token; ``None`` for any other type.

    Decoded once per :class:`TokenSet` (kept on it); a token that does not decode raises
    :class:`OAuthProtocolError` on every call.
    """
    if not token.is_sts:
        return None
    credentials = token._sts
    if credentials is None:
        data = _decode_sts_json(token.access_token)
        credentials = StsCredentials(
            access_key_id=_sts_field(data, "AccessKeyId"),
            access_key_secret=_sts_field(data, "AccessKeySecret"),
            security_token=_sts_field(data, "SecurityToken"),
        )
        object.__setattr__(token, "_sts", credentials)  # frozen: set once, on first use
    return credentials


def _sts_field(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise OAuthProtocolError(f"AliyunSTS access token lacks {name}")
    return value


def _decode_sts_json(access_token: str) -> dict[str, Any]:
    # Messages below never quote the token: it is the secret being decoded.
    text = access_token.strip()
    if not _B64_ANY.fullmatch(text):
        raise OAuthProtocolError("AliyunSTS access token is not base64")
    text = text.rstrip("=").replace("+", "-").replace("/", "_")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = json.loads(raw.decode("utf-8"))
    # ValueError covers UnicodeDecodeError and JSONDecodeError; RecursionError deep nesting.
    except (binascii.Error, ValueError, RecursionError):
        raise OAuthProtocolError("AliyunSTS access token is not base64 JSON") from None
    if not isinstance(data, dict):
        raise OAuthProtocolError("AliyunSTS access token is not a JSON object")
    return data


def _token_type(value: object) -> str:
    # RFC 6749 §7.1: token types are case-insensitive; keep one canonical spelling so callers
    # can compare with ==. A missing type is taken as Bearer (today's documented default).
    if value is None:
        return TOKEN_TYPE_BEARER
    if not isinstance(value, str) or not value.strip():
        raise OAuthProtocolError("token_type is not a string")
    value = value.strip()
    return _CANONICAL_TYPES.get(value.lower(), value)


def _expires_in(value: object) -> float:
    if value is None:
        return DEFAULT_EXPIRES_IN
    # bool is an int subclass; JSON true is garbage here, not 1 second.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise OAuthProtocolError("expires_in is not a number")
    try:
        seconds = float(value.strip()) if isinstance(value, str) else float(value)
    except ValueError:
        raise OAuthProtocolError("expires_in is not a number") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise OAuthProtocolError("expires_in must be a finite, non-negative number")
    return seconds


def _optional_str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise OAuthProtocolError(f"{key} is not a string")
    return value


def _masked(value: str | None) -> str | None:
    return None if value is None else _MASK
