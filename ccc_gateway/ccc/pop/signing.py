"""How a CCC OpenAPI call authenticates, and its form body (docs/ccc-openapi.md,
"Authentication"), pure.

Two modes, one body each:

* Bearer: `form_body(bearer_params(base, access_token))`: the OAuth access token itself
  authenticates the call; nothing is signed.
* STS: `sts_signed_body(base, ...)`: the temporary key's fields are added and everything is
  signed with signature v1.0, base64(HMAC-SHA1(secret + "&", string to sign)), where the
  string to sign is `METHOD&%2F&` + the canonical query (every parameter sorted by name,
  percent-encoded, joined `k=v&…`) percent-encoded once more.

The reference signer written from the specification alone, checked against the official SDK,
is tests/oracles/pop_signing.py; tests/test_pop_properties.py checks this one against it.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote

__all__ = ["bearer_params", "form_body", "percent_encode", "sts_signed_body"]

_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")
# Base64 text (an STS SecurityToken, 1–2 KB) needs only "+", "/" and "=" encoded, and the
# Timestamp (2026-01-31T12:00:00Z) only ":": four replacements instead of quote()'s Python
# call per byte (20 of them for every Timestamp; bench/RESULTS.md, session 6, later).
_FEW_RESERVED = re.compile(r"[A-Za-z0-9_.~+/=:-]*")

_SIGNATURE_FIELDS = frozenset(
    {
        "AccessKeyId",
        "SecurityToken",
        "SignatureMethod",
        "SignatureVersion",
        "Signature",
        "SignatureType",
        "BearerToken",
    }
)


def percent_encode(s: str) -> str:
    """RFC 3986 encoding of UTF-8 as POP wants it: only `A-Z a-z 0-9 - _ . ~` stay as is."""
    if _UNRESERVED.fullmatch(s):  # ids, names, nonces: nothing to do
        return s
    if _FEW_RESERVED.fullmatch(s):
        return s.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D").replace(":", "%3A")
    # quote() always keeps letters, digits and "_.-~"; safe="" makes it encode "/" too.
    return quote(s, safe="", encoding="utf-8", errors="strict")


def form_body(params: Mapping[str, str]) -> bytes:
    """The parameters as an `application/x-www-form-urlencoded` body, POP's encoding."""
    return _query(params.items()).encode("ascii")


def _query(pairs: Iterable[tuple[str, str]]) -> str:
    """`k=v&…` with each name and value percent-encoded.

    Most pairs (the names, ids, the nonce) need no encoding: one check of name and value
    together (both are unreserved exactly when the two joined are) writes them as they are,
    in place of two `percent_encode` calls each (bench/RESULTS.md, session 6, later).
    """
    unreserved = _UNRESERVED.fullmatch
    return "&".join(
        [
            f"{k}={v}" if unreserved(k + v) else f"{percent_encode(k)}={percent_encode(v)}"
            for k, v in pairs
        ]
    )


def bearer_params(base: Mapping[str, str], access_token: str) -> dict[str, str]:
    """Bearer mode: the OAuth access token itself authenticates the call; nothing is signed."""
    params = {k: v for k, v in base.items() if k not in _SIGNATURE_FIELDS}
    params["BearerToken"] = access_token
    params["SignatureType"] = "BEARERTOKEN"
    return params


def sts_signed_body(
    base: Mapping[str, str],
    *,
    access_key_id: str,
    access_key_secret: str,
    security_token: str,
    method: str,
) -> bytes:
    """STS mode's signed form body: the canonical query, then `&Signature=…`.

    Its fields are the parameters of the reference signer's `sts_signed_params` (the
    oracle), in canonical order with the Signature last.
    """
    params = {k: v for k, v in base.items() if k not in _SIGNATURE_FIELDS}
    params["AccessKeyId"] = access_key_id
    params["SecurityToken"] = security_token
    params["SignatureMethod"] = "HMAC-SHA1"
    params["SignatureVersion"] = "1.0"
    query = _query(sorted(params.items()))  # names are unique: sorted by name
    key = (access_key_secret + "&").encode("utf-8")
    signature = base64.b64encode(hmac.digest(key, _string_to_sign(method, query), "sha1"))
    return f"{query}&Signature={percent_encode(signature.decode('ascii'))}".encode("ascii")


def _string_to_sign(method: str, query: str) -> bytes:
    # The canonical query holds only unreserved characters, %XX escapes, "&" and "=", so
    # encoding it once more takes three replacements ("%" first).
    encoded = query.replace("%", "%25").replace("&", "%26").replace("=", "%3D")
    return f"{method.upper()}&%2F&{encoded}".encode("ascii")
