"""HTTP exchange with Alibaba's OAuth endpoints and the classification of their failures.

docs/oauth.md: the token endpoint's error shape is UNVERIFIED, so both
``{"error", "error_description"}`` (RFC 6749 §5.2) and the POP shape
``{"Code", "Message", "RequestId"}`` are understood; content types are undocumented, so a
body is judged by whether it parses as JSON, not by its ``Content-Type``.
docs/oauth.md "Refresh": network errors, timeouts, 5xx, 429, redirects and garbage are
:class:`OAuthUnavailable` (transient), never a reason to end a sign-in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from ccc_gateway.auth.oauth.errors import (
    OAuthError,
    OAuthProviderError,
    OAuthTimeout,
    OAuthUnavailable,
)

__all__ = ["MAX_BODY_BYTES", "Reply", "error_from_reply", "parse_json", "scrub", "send"]

# OAuth replies are a few KB; a cap keeps a misbehaving endpoint from filling memory.
MAX_BODY_BYTES = 1 << 20
_MAX_TEXT = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
# Transient by nature: retrying later can succeed, so the session must survive them.
_TRANSIENT_STATUSES = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class Reply:
    """Status and raw body of one answer."""

    status: int
    body: bytes

    @property
    def ok(self) -> bool:
        """True for 2xx."""
        return 200 <= self.status < 300


async def send(
    session: aiohttp.ClientSession,
    name: str,
    method: str,
    url: str,
    *,
    form: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    client_timeout: aiohttp.ClientTimeout,
) -> Reply:
    """Send one request; transport failures become :class:`OAuthUnavailable`."""
    all_headers = {"Accept": "application/json", **(headers or {})}
    try:
        # No redirects: a 3xx would turn the POST into a GET and drop or re-send credentials.
        async with session.request(
            method,
            url,
            data=dict(form) if form is not None else None,
            headers=all_headers,
            timeout=client_timeout,
            allow_redirects=False,
        ) as resp:
            return Reply(resp.status, await _read_capped(resp, name))
    except TimeoutError:
        raise OAuthTimeout(f"{name}: timed out") from None
    except aiohttp.ClientError as exc:
        # Only the class name: some aiohttp errors carry request headers (Authorization).
        raise OAuthUnavailable(f"{name}: {type(exc).__name__}") from None


async def _read_capped(resp: aiohttp.ClientResponse, name: str) -> bytes:
    body = bytearray()
    async for chunk in resp.content.iter_any():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise OAuthUnavailable(f"{name}: response body too large", status=resp.status)
    return bytes(body)


def parse_json(body: bytes) -> Any:
    """The decoded JSON value, or ``None`` when the body is not JSON."""
    try:
        return json.loads(body)
    # ValueError covers UnicodeDecodeError and JSONDecodeError; RecursionError deep nesting.
    except (ValueError, RecursionError):
        return None


def error_from_reply(name: str, reply: Reply, secrets: Iterable[str]) -> OAuthError:
    """Classify a failed (or error-carrying) reply; ``secrets`` are scrubbed from the text."""
    if reply.status >= 500 or reply.status in _TRANSIENT_STATUSES or 300 <= reply.status < 400:
        return OAuthUnavailable(f"{name}: HTTP {reply.status}", status=reply.status)
    data = parse_json(reply.body)
    if isinstance(data, dict):
        error = _provider_error(data, reply.status, tuple(secrets))
        if error is not None:
            return error
    return OAuthUnavailable(
        f"{name}: HTTP {reply.status} with an unrecognised body", status=reply.status
    )


def _provider_error(
    data: dict[str, Any], status: int, secrets: tuple[str, ...]
) -> OAuthProviderError | None:
    error, description = data.get("error"), data.get("error_description")
    if not isinstance(error, str) or not error:
        error, description = data.get("Code"), data.get("Message")
    if not isinstance(error, str) or not error:
        return None
    request_id = data.get("RequestId", data.get("request_id"))
    return OAuthProviderError(
        scrub(error, secrets),
        scrub(description, secrets),
        status,
        request_id=scrub(request_id, secrets) if isinstance(request_id, str) else None,
    )


def scrub(text: object, secrets: Iterable[str]) -> str:
    """Provider text made safe for messages: secrets masked, control chars gone, truncated."""
    if not isinstance(text, str):
        return ""
    # A provider might echo what we sent (a code, a refresh token); never pass that on.
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = _CONTROL.sub(" ", text).strip()
    return text if len(text) <= _MAX_TEXT else text[:_MAX_TEXT] + "…"
