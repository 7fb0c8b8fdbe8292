"""How the emulated API gateway authenticates a POP (RPC) call: signature v1.0 or bearer token.

Written independently of the gateway's signer (a bug shared by both sides would pass every
test unseen); tests cross-check it against `aliyunsdkcore`'s composer.
Canonicalisation per docs/ccc-openapi.md, section 3: sort every parameter but `Signature` by
name, percent-encode names and values as UTF-8 keeping only RFC 3986 unreserved characters, join
`k=v` with `&`; StringToSign = METHOD & enc("/") & enc(canonical); HMAC-SHA1 keyed with
`secret + "&"`, base64.

Error codes are those of Alibaba's public error centre. The bearer-token codes could not be
confirmed from public material: `InvalidBearerToken.Invalid` / `.Expired` with HTTP 401.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from datetime import UTC, datetime
from urllib.parse import quote

from .pop_params import Params, PopError, missing
from .store import EmulatorStore, IssuedAccessToken

BEARER_SIGNATURE_TYPE = "BEARERTOKEN"
SIGNATURE_METHOD = "HMAC-SHA1"
SIGNATURE_VERSION = "1.0"
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")


def percent_encode(text: str) -> str:
    """RFC 3986 encoding of UTF-8: only A-Z a-z 0-9 - _ . ~ stay as they are."""
    return quote(text.encode("utf-8"), safe="-_.~")


def canonical_query(params: dict[str, str]) -> str:
    pairs = sorted((k, v) for k, v in params.items() if k != "Signature")
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in pairs)


def string_to_sign(method: str, params: dict[str, str]) -> str:
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical_query(params))}"


def sign(text: str, access_key_secret: str) -> str:
    key = (access_key_secret + "&").encode("utf-8")
    digest = hmac.new(key, text.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def signature_matches(given: str, expected: str) -> bool:
    # Constant time, so response timing does not leak how much of a forged signature was right.
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def parse_timestamp(text: str) -> float:
    """Seconds since the epoch of a `YYYY-MM-DDThh:mm:ssZ` UTC timestamp."""
    if not _TIMESTAMP.fullmatch(text):
        raise _bad_timestamp()
    try:
        moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:  # e.g. month 13 or February 30
        raise _bad_timestamp() from None
    return moment.timestamp()


def check_timestamp(params: Params, now: float, skew: float) -> None:
    moment = parse_timestamp(params.required("Timestamp"))
    if abs(moment - now) > skew:
        raise PopError(
            400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
        )


def _bad_timestamp() -> PopError:
    return PopError(
        400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted."
    )


class NonceLedger:
    """SignatureNonces seen recently; a repeat within the window is a replay."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def use(self, nonce: str, now: float, window: float) -> None:
        """Remember `nonce`, or refuse it if it was used within `window` seconds."""
        # A Timestamp is accepted up to `window` either side of now, so a signed request can
        # be replayed for up to 2 * window after it was first seen.
        self._seen = {n: t for n, t in self._seen.items() if now - t <= 2 * window}
        if nonce in self._seen:
            raise PopError(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
        self._seen[nonce] = now


def authenticate(params: Params, method: str, store: EmulatorStore) -> IssuedAccessToken:
    """The access token this call is made with, or PopError saying why it is refused."""
    if params.get("SignatureType") == BEARER_SIGNATURE_TYPE:
        return _bearer(params, store)
    if params.get("SignatureType") is not None:
        # The signature SDKs send it empty; anything else is a mode we do not know.
        raise PopError(400, "InvalidSignatureType", "Specified signature type is not valid.")
    return _signed(params, method, store)


def _bearer(params: Params, store: EmulatorStore) -> IssuedAccessToken:
    value = params.required("BearerToken")
    token = store.live_bearer(value)
    if token is not None:
        return token
    known = store.access_tokens.get(value)
    if known is not None and not known.revoked:
        raise PopError(401, "InvalidBearerToken.Expired", "Specified BearerToken is expired.")
    raise PopError(401, "InvalidBearerToken.Invalid", "Specified BearerToken is not valid.")


def _signed(params: Params, method: str, store: EmulatorStore) -> IssuedAccessToken:
    key_id = params.required("AccessKeyId")
    given = params.required("Signature")
    _check_signature_scheme(params)
    token = store.sts_token(key_id)
    if token is None or token.sts is None:
        raise PopError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    security_token = params.get("SecurityToken")
    if security_token is None:
        raise missing("SecurityToken")
    if not hmac.compare_digest(security_token.encode(), token.sts.security_token.encode()):
        raise PopError(
            400,
            "InvalidSecurityToken.MismatchWithAccessKey",
            "Specified SecurityToken mismatch with the AccessKey.",
        )
    if not store.is_live(token):
        raise PopError(400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired.")
    expected_text = string_to_sign(method, params.raw())
    if not signature_matches(given, sign(expected_text, token.sts.access_key_secret)):
        # Alibaba shows its string-to-sign so callers can debug; it holds no secret.
        raise PopError(
            400,
            "SignatureDoesNotMatch",
            "Specified signature is not matched with our calculation. "
            f"server string to sign is:{expected_text}",
        )
    return token


def _check_signature_scheme(params: Params) -> None:
    # Both default to the only supported value when omitted, as Alibaba documents.
    method = params.get("SignatureMethod") or SIGNATURE_METHOD
    if method != SIGNATURE_METHOD:
        raise PopError(400, "InvalidSignatureMethod", "Specified signature method is not valid.")
    version = params.get("SignatureVersion") or SIGNATURE_VERSION
    if version != SIGNATURE_VERSION:
        raise PopError(400, "InvalidSignatureVersion", "Specified signature version is not valid.")
