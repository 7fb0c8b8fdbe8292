"""OAuth error responses (RFC 6749 §5.2) as the emulated oauth.aliyun.com sends them."""

from __future__ import annotations

import uuid

from aiohttp import web

# Token responses carry credentials: no cache may keep them (RFC 6749 §5.1).
NO_STORE_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(Exception):
    """A request the OAuth side refuses; handlers turn it into the JSON error response."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.headers: dict[str, str] = {}


def oauth_error_response(exc: OAuthError) -> web.Response:
    body = {
        "error": exc.error,
        "error_description": exc.description,
        "request_id": str(uuid.uuid4()),
    }
    return web.json_response(body, status=exc.status, headers={**NO_STORE_HEADERS, **exc.headers})


def invalid_client(description: str, *, basic: bool) -> OAuthError:
    """401 invalid_client; a client that tried HTTP Basic must get a challenge (§5.2)."""
    exc = OAuthError("invalid_client", description, status=401)
    if basic:
        exc.headers["WWW-Authenticate"] = 'Basic realm="oauth.aliyun.com"'
    return exc
