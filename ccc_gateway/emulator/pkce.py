"""PKCE as the emulated authorization server checks it (RFC 7636 §4.1, §4.2, §4.6).

The emulator's own implementation, deliberately not the gateway's: a bug shared by both sides
would pass every test unseen.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

METHODS = ("plain", "S256")
# RFC 7636 §4.1: 43–128 unreserved characters. A S256 challenge (43 chars) fits the same rule.
_PKCE_STRING = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def is_pkce_string(value: str) -> bool:
    return _PKCE_STRING.fullmatch(value) is not None


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verifier_matches(verifier: str, challenge: str, method: str) -> bool:
    """Whether the token request's verifier answers the authorize request's challenge."""
    if not is_pkce_string(verifier):
        return False
    expected = s256(verifier) if method == "S256" else verifier
    return secrets.compare_digest(expected, challenge)
