"""Errors of the OAuth/OIDC client (docs/oauth.md, "Errors" and "Refresh")::

    OAuthError                      anything that went wrong talking OAuth/OIDC to Alibaba
    ├── OAuthProviderError          the token/revoke/userinfo endpoint answered an error
    │                               (``.fatal`` for invalid_grant / invalid_client: sign-in over)
    ├── OAuthUnavailable            network error, 5xx, 429, 3xx, garbage body: transient,
    │   │                           keep the session, answer 502/503
    │   └── OAuthTimeout            no answer in time: answer 504
    ├── OAuthProtocolError          a 2xx answer that breaks the protocol (no access_token, ...)
    └── IdTokenError                the id_token failed verification (``.reason``)
        └── UnknownKeyId            its ``kid`` is not in the JWKS (re-fetch JWKS once)

Messages never contain client secrets, tokens or codes: they carry endpoint names, HTTP
statuses, RFC error codes and the provider's description (already scrubbed by the client).
"""

from __future__ import annotations

import re

__all__ = [
    "FATAL_ERROR_CODES",
    "IdTokenError",
    "OAuthError",
    "OAuthProtocolError",
    "OAuthProviderError",
    "OAuthTimeout",
    "OAuthUnavailable",
    "UnknownKeyId",
]

# RFC 6749 §5.2 codes after which retrying with the same grant/client cannot succeed.
FATAL_ERROR_CODES = frozenset({"invalid_grant", "invalid_client"})


class OAuthError(Exception):
    """Base of every OAuth/OIDC failure."""


class OAuthProviderError(OAuthError):
    """An error reply from an Alibaba OAuth endpoint (RFC 6749 §5.2 or POP ``Code`` shape)."""

    def __init__(
        self, error: str, description: str, status: int, *, request_id: str | None = None
    ) -> None:
        self.error = error
        self.description = description
        self.status = status
        self.request_id = request_id
        text = f"{error} (HTTP {status})"
        if description:
            text += f": {description}"
        super().__init__(text)

    @property
    def fatal(self) -> bool:
        """True when the sign-in is over (invalid_grant / invalid_client)."""
        # POP-style codes may carry a dotted detail ("InvalidGrant.Expired"): same meaning.
        code = normalise_error_code(self.error)
        return any(code == f or code.startswith(f + "_") for f in FATAL_ERROR_CODES)


class OAuthUnavailable(OAuthError):
    """Alibaba could not be reached or answered nonsense; transient, keep the session."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class OAuthTimeout(OAuthUnavailable):
    """Alibaba did not answer in time (the caller answers 504)."""


class OAuthProtocolError(OAuthError):
    """A successful (2xx) answer whose content breaks the protocol."""


class IdTokenError(OAuthError):
    """The id_token is malformed or failed verification."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"id_token rejected: {reason}")


class UnknownKeyId(IdTokenError):
    """The id_token's ``kid`` names no usable key of the JWKS; re-fetch the JWKS once."""

    def __init__(self, kid: str | None) -> None:
        # A kid is a public key name, not a secret; keep it short in case it is hostile.
        self.kid = kid
        super().__init__(f"unknown key id {kid[:64]!r}" if kid is not None else "no key id")


def normalise_error_code(code: str) -> str:
    """Map ``invalid_grant``, ``InvalidGrant``, ``Invalid.Grant`` to ``invalid_grant``.

    The token endpoint's error shape is UNVERIFIED (docs/oauth.md): POP-style replies
    use CamelCase/dotted ``Code`` values, so compare on a normalised spelling.
    """
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", code.strip())
    return re.sub(r"[^a-z0-9]+", "_", snake.lower()).strip("_")


def outcome_label(error: OAuthError) -> str:
    """The bounded metrics label of a failed OAuth step (ops/metrics.py `record`)."""
    if isinstance(error, OAuthProviderError):
        return "refused"
    if isinstance(error, OAuthUnavailable):
        return "timeout" if isinstance(error, OAuthTimeout) else "unavailable"
    return "failed"
