"""OIDC id_token verification against Alibaba's JWKS (docs/oauth.md "id_token").

Alibaba signs id_tokens with RS256 (RFC 7515 JWS compact serialisation, RFC 7518 §3.3) and
publishes the keys as a JWKS (RFC 7517) at ``/v1/keys``. Verification follows OpenID Connect
Core §3.1.3.7: signature by the key named by ``kid``, then ``iss``, ``aud``/``azp``, ``exp``,
``iat`` and ``nonce``. Only RS256 is accepted, whatever the header or the JWKS says, which
closes ``alg: none`` and the HS256-with-the-public-key confusion attack.

Every malformed input ends as :class:`IdTokenError` (with a reason); an unknown ``kid`` as
:class:`UnknownKeyId` so the caller can re-fetch the JWKS once.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ccc_gateway.auth.oauth.errors import IdTokenError, OAuthProtocolError, UnknownKeyId

__all__ = ["ALGORITHM", "Jwk", "JwkSet", "verify_id_token"]

ALGORITHM = "RS256"
# Weaker RSA keys are forgeable in practice; NIST has disallowed them for signatures since 2013.
MIN_RSA_BITS = 2048
_B64URL = re.compile(r"[A-Za-z0-9_-]*={0,2}")


@dataclass(frozen=True, slots=True)
class Jwk:
    """One RSA signing key of a JWKS."""

    kid: str | None
    public_key: rsa.RSAPublicKey = field(repr=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Jwk | None:
        """Build a key from a JWK object; ``None`` when it is not a usable RS256 signing key."""
        if data.get("kty") != "RSA" or data.get("use", "sig") != "sig":
            return None
        if data.get("alg", ALGORITHM) != ALGORITHM:
            return None
        kid = data.get("kid")
        n, e = data.get("n"), data.get("e")
        if not isinstance(n, str) or not isinstance(e, str) or not isinstance(kid, str | None):
            return None
        try:
            numbers = rsa.RSAPublicNumbers(_b64_int(e), _b64_int(n))
            key = numbers.public_key()
        except (IdTokenError, ValueError):
            return None
        return cls(kid, key) if key.key_size >= MIN_RSA_BITS else None


@dataclass(frozen=True, slots=True)
class JwkSet:
    """The usable RS256 keys of a JWKS, by ``kid``; unusable entries are skipped."""

    keys: tuple[Jwk, ...]

    @classmethod
    def from_json(cls, jwks: Mapping[str, Any]) -> JwkSet:
        """Parse a JWKS document; :class:`OAuthProtocolError` when it has no ``keys`` list."""
        entries = jwks.get("keys") if isinstance(jwks, Mapping) else None
        if not isinstance(entries, list):
            raise OAuthProtocolError("JWKS has no keys list")
        parsed = (Jwk.from_dict(e) for e in entries if isinstance(e, Mapping))
        return cls(tuple(k for k in parsed if k is not None))

    def find(self, kid: str | None) -> Jwk:
        """Return the key named ``kid``; a token without kid may use a JWKS of one key."""
        if kid is None:
            if len(self.keys) == 1:
                return self.keys[0]
            raise UnknownKeyId(None)
        for key in self.keys:
            if key.kid == kid:
                return key
        raise UnknownKeyId(kid)


def verify_id_token(
    id_token: str,
    jwks: Mapping[str, Any] | JwkSet,
    *,
    issuer: str,
    audience: str,
    now: float,
    nonce: str | None,
    leeway: float = 60,
) -> dict[str, Any]:
    """Verify an RS256 id_token and return its claims.

    Raises :class:`UnknownKeyId` when no key matches the ``kid`` and :class:`IdTokenError`
    for anything else wrong with the token.
    """
    keys = jwks if isinstance(jwks, JwkSet) else JwkSet.from_json(jwks)
    header_b64, payload_b64, signature = _split(id_token)
    header = _decode_object(header_b64, "header")
    _check_header(header)
    key = keys.find(_kid(header))
    _check_signature(key, f"{header_b64}.{payload_b64}".encode("ascii"), signature)
    claims = _decode_object(payload_b64, "claims")
    _check_claims(claims, issuer=issuer, audience=audience, now=now, leeway=leeway)
    _check_nonce(claims, nonce)
    return claims


def _split(id_token: object) -> tuple[str, str, bytes]:
    if not isinstance(id_token, str):
        raise IdTokenError("not a string")
    parts = id_token.split(".")
    if len(parts) != 3:
        raise IdTokenError("not a JWS compact serialisation (need 3 segments)")
    header_b64, payload_b64, signature_b64 = parts
    if not header_b64 or not payload_b64 or not signature_b64:
        raise IdTokenError("empty segment")
    return header_b64, payload_b64, _b64url_decode(signature_b64, "signature")


def _check_header(header: dict[str, Any]) -> None:
    if header.get("alg") != ALGORITHM:
        raise IdTokenError("unsupported alg (only RS256 is accepted)")
    # RFC 7515 §4.1.11: extensions we do not understand must make the JWS invalid.
    if "crit" in header:
        raise IdTokenError("unsupported critical header parameters")


def _kid(header: dict[str, Any]) -> str | None:
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise IdTokenError("kid is not a string")
    return kid


def _check_signature(key: Jwk, signing_input: bytes, signature: bytes) -> None:
    try:
        key.public_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise IdTokenError("bad signature") from None


def _check_claims(
    claims: dict[str, Any], *, issuer: str, audience: str, now: float, leeway: float
) -> None:
    if claims.get("iss") != issuer:
        raise IdTokenError("wrong issuer")
    _check_audience(claims, audience)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise IdTokenError("no subject")
    if _number(claims, "exp") <= now - leeway:
        raise IdTokenError("expired")
    if _number(claims, "iat") > now + leeway:
        raise IdTokenError("issued in the future")
    if "nbf" in claims and _number(claims, "nbf") > now + leeway:
        raise IdTokenError("not valid yet")


def _check_audience(claims: dict[str, Any], audience: str) -> None:
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise IdTokenError("aud is missing or malformed")
    if audience not in audiences:
        raise IdTokenError("wrong audience")
    # OIDC Core §3.1.3.7 items 4-5: azp, when present, must name us.
    azp = claims.get("azp")
    if azp is not None and azp != audience:
        raise IdTokenError("wrong authorized party (azp)")


def _check_nonce(claims: dict[str, Any], nonce: str | None) -> None:
    if nonce is None:
        return
    claimed = claims.get("nonce")
    if not isinstance(claimed, str):
        raise IdTokenError("nonce missing")
    # Constant time: the nonce binds the token to this browser's sign-in.
    # surrogatepass: JSON escapes may decode to lone surrogates, which must not raise here.
    if not hmac.compare_digest(_utf8(claimed), _utf8(nonce)):
        raise IdTokenError("nonce mismatch")


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def _number(claims: dict[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IdTokenError(f"{name} is missing or not a number")
    return float(value)


def _decode_object(segment: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64url_decode(segment, what).decode("utf-8"))
    # ValueError covers UnicodeDecodeError and JSONDecodeError; RecursionError deep nesting.
    except (ValueError, RecursionError):
        raise IdTokenError(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise IdTokenError(f"{what} is not a JSON object")
    return value


def _b64url_decode(segment: str, what: str) -> bytes:
    # RFC 7515 §2: base64url without padding; tolerate padding, reject any other character
    # (urlsafe_b64decode alone would silently skip them).
    if not _B64URL.fullmatch(segment):
        raise IdTokenError(f"{what} is not base64url")
    text = segment.rstrip("=")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise IdTokenError(f"{what} is not base64url") from None


def _b64_int(value: str) -> int:
    return int.from_bytes(_b64url_decode(value, "key"), "big")
