"""The emulator's own RS256 signing keys, JWKS and JWS encoder.

Written here rather than shared with the gateway on purpose: the gateway verifies id_tokens
with its own code, and a bug common to signer and verifier would pass every test unseen.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

KEY_BITS = 2048
MAX_PUBLISHED_KEYS = 3  # enough for "old kid still verifies"; stops an unbounded JWKS


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint_b64(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKey:
    """One RSA key pair and its key id (the RFC 7638 thumbprint of its public JWK)."""

    private_key: rsa.RSAPrivateKey
    kid: str

    @classmethod
    def generate(cls) -> SigningKey:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
        numbers = private_key.public_key().public_numbers()
        # RFC 7638: the members required for RSA, in lexicographic order, no whitespace.
        canonical = json.dumps(
            {"e": _uint_b64(numbers.e), "kty": "RSA", "n": _uint_b64(numbers.n)},
            separators=(",", ":"),
            sort_keys=True,
        )
        return cls(private_key, b64url(hashlib.sha256(canonical.encode()).digest()))

    def public_jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "kid": self.kid,
            "use": "sig",
            "alg": "RS256",
            "n": _uint_b64(numbers.n),
            "e": _uint_b64(numbers.e),
        }


@dataclass
class KeyRing:
    """Signing keys, newest first; the newest signs, all of them are published."""

    keys: list[SigningKey] = field(default_factory=lambda: [SigningKey.generate()])

    @property
    def current(self) -> SigningKey:
        return self.keys[0]

    def rotate(self) -> SigningKey:
        """Start signing with a fresh key, keeping the old ones published for verification."""
        key = SigningKey.generate()
        self.keys = [key, *self.keys][:MAX_PUBLISHED_KEYS]
        return key

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [key.public_jwk() for key in self.keys]}


def encode_rs256(claims: dict[str, Any], key: SigningKey) -> str:
    """A compact JWS (RFC 7515 §7.1) over the JSON claims, signed RS256 with `key`."""
    header = {"alg": "RS256", "kid": key.kid, "typ": "JWT"}
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = key.private_key.sign(
        signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256()
    )
    return f"{signing_input}.{b64url(signature)}"
