"""Reference POP signature v1.0 (docs/ccc-openapi.md, "Authentication"), written plainly.

The oracle of `ccc_gateway.ccc.pop.signing`: it is itself checked against the official SDK
(aliyunsdkcore) and the published vector in tests/test_pop.py and
tests/test_pop_properties.py.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping
from urllib.parse import quote


def percent_encode(s: str) -> str:
    """RFC 3986 encoding of UTF-8: only `A-Z a-z 0-9 - _ . ~` stay as is."""
    return quote(s, safe="~", encoding="utf-8", errors="strict")


def canonical_query(params: Mapping[str, str]) -> str:
    """Every parameter but `Signature`, sorted by name, encoded and joined as `k=v&…`."""
    return "&".join(
        f"{percent_encode(k)}={percent_encode(params[k])}"
        for k in sorted(params)
        if k != "Signature"
    )


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """`METHOD&%2F&enc(canonical query)`."""
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def sign_v1(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    """Signature v1.0: base64(HMAC-SHA1(secret + "&", string_to_sign))."""
    key = (access_key_secret + "&").encode("utf-8")
    digest = hmac.new(key, string_to_sign(method, params).encode("utf-8"), "sha1").digest()
    return base64.b64encode(digest).decode("ascii")


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


def sts_signed_params(
    base: Mapping[str, str],
    *,
    access_key_id: str,
    access_key_secret: str,
    security_token: str,
    method: str,
) -> dict[str, str]:
    """STS mode: add the temporary key's fields and sign everything with signature v1.0."""
    params = {k: v for k, v in base.items() if k not in _SIGNATURE_FIELDS}
    params["AccessKeyId"] = access_key_id
    params["SecurityToken"] = security_token
    params["SignatureMethod"] = "HMAC-SHA1"
    params["SignatureVersion"] = "1.0"
    params["Signature"] = sign_v1(method, params, access_key_secret)
    return params
