"""PKCE verifier/challenge and the random values of an authorization request.

Implements RFC 7636 (§4.1 verifier, §4.2 S256 challenge) as used by Alibaba's RAM OAuth
authorize endpoint (docs/oauth.md): the gateway always sends ``code_challenge`` with
``code_challenge_method=S256`` — the original demo's camelCase ``codeChallenge`` without a
method was a bug. ``state`` and ``nonce`` come from the same CSPRNG.

Randomness is injectable (``randbytes``) so callers' tests can be deterministic.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable

__all__ = [
    "MAX_VERIFIER_BYTES",
    "MIN_VERIFIER_BYTES",
    "b64url_encode",
    "new_nonce",
    "new_state",
    "new_verifier",
    "s256_challenge",
]

RandBytes = Callable[[int], bytes]

# RFC 7636 §4.1: the verifier is 43..128 characters; base64url of 32..96 bytes spans exactly that.
MIN_VERIFIER_BYTES = 32
MAX_VERIFIER_BYTES = 96
# 256 bits: far beyond guessing for values that live a few minutes.
_STATE_BYTES = 32
_NONCE_BYTES = 32


def b64url_encode(data: bytes) -> str:
    """Base64url without padding (RFC 7636 Appendix A, RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_verifier(nbytes: int = 32, *, randbytes: RandBytes = secrets.token_bytes) -> str:
    """Return a fresh code verifier: base64url of ``nbytes`` random bytes (43+ characters)."""
    if not MIN_VERIFIER_BYTES <= nbytes <= MAX_VERIFIER_BYTES:
        raise ValueError(
            f"nbytes must be in {MIN_VERIFIER_BYTES}..{MAX_VERIFIER_BYTES} (RFC 7636 §4.1)"
        )
    return b64url_encode(_take(randbytes, nbytes))


def s256_challenge(verifier: str) -> str:
    """Return ``BASE64URL(SHA256(ASCII(verifier)))`` (RFC 7636 §4.2)."""
    # encode("ascii") rejects non-ASCII verifiers, which RFC 7636 forbids anyway.
    return b64url_encode(hashlib.sha256(verifier.encode("ascii")).digest())


def new_state(*, randbytes: RandBytes = secrets.token_bytes) -> str:
    """Return a fresh OAuth ``state`` value (URL-safe, 256 bits)."""
    return b64url_encode(_take(randbytes, _STATE_BYTES))


def new_nonce(*, randbytes: RandBytes = secrets.token_bytes) -> str:
    """Return a fresh OIDC ``nonce`` value (URL-safe, 256 bits)."""
    return b64url_encode(_take(randbytes, _NONCE_BYTES))


def _take(randbytes: RandBytes, n: int) -> bytes:
    # A faulty injected source must not silently shorten a security value.
    data = randbytes(n)
    if len(data) != n:
        raise ValueError("random source returned the wrong number of bytes")
    return data
