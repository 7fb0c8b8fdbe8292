"""The CCC OpenAPI (POP, RPC style) wire format: reshaping and signature v1.0, pure.

Implements /work/shared/reference/aliyun-protocol.md §3:

* "Request reshaping" (browser → POP): `flatten_request` turns the softphone's lowerCamel JSON
  into flat POP parameters (`Key.1`, `Key.Sub`, …) the way `alibabacloud-tea-openapi` does;
  `unflatten` is its inverse (tests and diagnostics).
* "Response reshaping" (POP → browser): `reshape_response` is the demo's `copyObject`
  (rules 1–3); `loads_reshaped` parses a POP answer straight into that shape.
* "Authentication": `common_params`, then `bearer_params` (Bearer mode) or
  `sts_signed_params` (STS signature v1.0 over `canonical_query` / `string_to_sign`);
  `form_body` gives the encoded request body; `StsSignedForms` the signed one of a call,
  sorting, encoding and hashing once what repeats from call to call.

Parameter-name grammar accepted from the browser (after trimming), for top-level keys and
for the keys of nested objects alike::

    key     = name *( "." segment )
    segment = name / index
    name    = ALPHA *( ALPHA / DIGIT / "_" / "-" )
    index   = %x31-39 *DIGIT          ; 1-based, no leading zero

Every `name` segment gets its first letter upper-cased (`skillGroupId.1` → `SkillGroupId.1`,
`{"a": {"b": 1}}` and `{"a.b": 1}` both → `A.B`), so two spellings of one POP key collide
and are rejected instead of one silently winning. Only ASCII is allowed because these names
go, unescaped in meaning, into a signed canonical string that Alibaba parses.

No aiohttp here: everything is a pure function of its arguments (clock and nonce are passed
in), so it can be tested against fixed vectors and the official SDK's composer.
"""

from __future__ import annotations

import base64
import functools
import hmac
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import orjson

_NAME = r"[A-Za-z][A-Za-z0-9_-]*"
_INDEX = r"[1-9][0-9]*"
_KEY_RE = re.compile(rf"{_NAME}(?:\.(?:{_NAME}|{_INDEX}))*")
_INDEX_RE = re.compile(_INDEX)
# Longer names are never real POP parameters; the cap keeps error messages and bodies small.
MAX_KEY_LENGTH = 255

# Names the gateway alone sets: a browser that sends one is trying to steer authentication.
RESERVED_PARAMS = frozenset(
    {
        "Action",
        "Version",
        "Format",
        "Timestamp",
        "SignatureNonce",
        "AccessKeyId",
        "SecurityToken",
        "SignatureMethod",
        "SignatureVersion",
        "SignatureType",
        "Signature",
        "BearerToken",
    }
)


class RequestShapeError(ValueError):
    """The browser's parameters cannot be turned into POP parameters (answer 400)."""


@dataclass
class _Limits:
    max_depth: int
    max_items: int


def flatten_request(
    params: Mapping[str, Any], *, max_depth: int = 5, max_items: int = 1000
) -> dict[str, str]:
    """Flatten the softphone's JSON object into POP parameters (§3 "Request reshaping").

    `max_depth` counts the lists/objects nested below the top-level object; `max_items`
    caps the number of parameters produced. None values (also list items) are dropped; list
    items are numbered 1..n over the items that remain, as POP repeat lists have no gaps.
    """
    if not isinstance(params, Mapping):
        raise RequestShapeError("the request must be a JSON object")
    out: dict[str, str] = {}
    _flatten_mapping(params, "", 0, out, _Limits(max_depth, max_items))
    return out


def _flatten_mapping(
    obj: Mapping[Any, Any], prefix: str, depth: int, out: dict[str, str], limits: _Limits
) -> None:
    for raw_key, value in obj.items():
        key = _pop_key(raw_key)
        if key:
            _flatten_value(prefix + key, value, depth, out, limits)


def _flatten_value(key: str, value: Any, depth: int, out: dict[str, str], limits: _Limits) -> None:
    if len(key) > MAX_KEY_LENGTH:
        raise RequestShapeError(f"parameter name {key[:40]!r}… is longer than {MAX_KEY_LENGTH}")
    if value is None:
        return
    if isinstance(value, Mapping | list | tuple):
        if depth + 1 > limits.max_depth:
            raise RequestShapeError(f"parameter {key!r} nests deeper than {limits.max_depth}")
        if isinstance(value, Mapping):
            _flatten_mapping(value, key + ".", depth + 1, out, limits)
            return
        items = [item for item in value if item is not None]
        for index, item in enumerate(items, start=1):
            _flatten_value(f"{key}.{index}", item, depth + 1, out, limits)
        return
    if key in out:
        raise RequestShapeError(f"two parameters both become {key!r}")
    if len(out) >= limits.max_items:
        raise RequestShapeError(f"more than {limits.max_items} parameters")
    out[key] = _scalar_text(key, value)


def _pop_key(raw: Any) -> str:
    """Trimmed, checked, capitalised key; "" when the key is empty and must be dropped."""
    if not isinstance(raw, str):
        raise RequestShapeError(f"parameter name {raw!r} is not a string")
    key = raw.strip()
    if not key:
        return ""
    if len(key) > MAX_KEY_LENGTH or not _KEY_RE.fullmatch(key):
        raise RequestShapeError(
            f"parameter name {key[:40]!r} is not allowed: use letters, digits, '_' and '-', "
            "in '.'-separated segments that start with a letter or are indexes from 1"
        )
    if "." not in key:  # most keys: no segments to join
        return key[0].upper() + key[1:]
    return ".".join([part[0].upper() + part[1:] for part in key.split(".")])


def _scalar_text(key: str, value: Any) -> str:
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, int):
        try:
            return str(value)
        except ValueError:  # beyond Python's int-to-str digit limit
            raise RequestShapeError(f"parameter {key!r} is a number too long") from None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RequestShapeError(f"parameter {key!r} is not a finite number")
        # repr is the shortest round-tripping form; Decimal's "f" drops the exponent.
        return format(Decimal(repr(value)), "f")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates from "\ud800" escapes in the JSON
            raise RequestShapeError(f"parameter {key!r} is not valid Unicode text") from None
        return value
    raise RequestShapeError(f"parameter {key!r} has an unsupported type")


def unflatten(flat: Mapping[str, str]) -> dict[str, Any]:
    """Rebuild the nested structure from POP parameters (`Key.1.Sub` → lists and objects).

    Raises ValueError when the keys contradict each other (`A=1` with `A.B=2`, or
    `A.1` with `A.X`, or indexes that are not exactly 1..n).
    """
    root: dict[Any, Any] = {}
    for key, value in flat.items():
        parts = [int(p) if _INDEX_RE.fullmatch(p) else p for p in key.split(".")]
        if isinstance(parts[0], int):
            raise ValueError(f"parameter {key!r} starts with an index")
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ValueError(f"parameter {key!r} is below a plain value")
        if parts[-1] in node:
            raise ValueError(f"parameter {key!r} is given twice")
        node[parts[-1]] = value
    return {key: _listify(value) for key, value in root.items()}


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    keys = list(node)
    if keys and all(isinstance(k, int) for k in keys):
        if sorted(keys) != list(range(1, len(keys) + 1)):
            raise ValueError("list indexes are not exactly 1..n")
        return [_listify(node[i]) for i in range(1, len(keys) + 1)]
    if any(isinstance(k, int) for k in keys):
        raise ValueError("an object mixes list indexes and names")
    return {key: _listify(value) for key, value in node.items()}


def reshape_response(obj: Any) -> Any:
    """POP JSON → the shape the workbench SDK reads (§3 "Response reshaping", rules 1–3).

    Keys are trimmed, empty ones dropped, the first character lower-cased; a member whose
    value is a one-entry object holding a list becomes that list. The collapse applies to
    object members only: never to the root, and not to list items (they are entries, not
    wrappers). When two keys meet after lower-casing, the later one wins, as in the demo.
    Iterative, so any depth the JSON parser accepted is reshaped without recursion limits.
    """
    root = _empty_like(obj)
    stack: list[tuple[Any, Any]] = [(obj, root)] if root is not obj else []
    while stack:
        src, dst = stack.pop()
        if isinstance(src, dict):
            for raw_key, value in src.items():
                key = _BROWSER_KEYS[raw_key]
                if not key:
                    continue
                if isinstance(value, dict) and len(value) == 1:  # rule 3: unwrap {"X": [...]}
                    (inner,) = value.values()
                    if isinstance(inner, list):
                        value = inner
                dst[key] = copy = _empty_like(value)
                if copy is not value:
                    stack.append((value, copy))
        else:
            for item in src:
                copy = _empty_like(item)
                dst.append(copy)
                if copy is not item:
                    stack.append((item, copy))
    return root


def _empty_like(value: Any) -> Any:
    """A fresh container to fill, or the scalar itself (kept with its JSON type)."""
    if isinstance(value, dict):
        return {}
    if isinstance(value, list):
        return []
    return value


def loads_reshaped(raw: bytes | str) -> Any:
    """`reshape_response(json.loads(raw))`, the fast way.

    orjson parses a POP answer in a fifth of the standard library's time, and a recursive
    walk of plain dicts and lists reshapes it (together 21 µs for the benchmark's 2 KB answer
    against 35 µs). What orjson refuses (NaN and Infinity, lone surrogates, other encodings
    than UTF-8, nesting past 1024) or may read otherwise than `json` (it reads integers
    beyond 64 bits as floats: any float the walk meets) goes the standard library's way, so
    the result never depends on the parser (tests/test_pop_properties.py). Raises what
    json.loads raises (ValueError, RecursionError).
    """
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _loads_reshaped_stdlib(raw)
    try:
        kind = type(parsed)
        if kind is dict:
            return _reshaped_object(parsed)
        if kind is list:
            return _reshaped_list(parsed)
        if kind is float:
            raise _Inexact
        return parsed
    except _Inexact:
        # orjson reads an integer beyond 64 bits as a float, and its floats need not be
        # json's: an answer with any float (rare in POP answers) goes the exact way.
        return _loads_reshaped_stdlib(raw)
    except RecursionError:  # nesting near Python's recursion limit: answer as json would
        return _loads_reshaped_stdlib(raw)


class _Inexact(Exception):
    """orjson's parse holds a float: json's may differ (see loads_reshaped)."""


def _reshaped_object(src: dict[str, Any]) -> dict[str, Any]:
    # reshape_response's rules on the plain dicts and lists a JSON parser makes; a later
    # member whose name meets an earlier one's wins, in the earlier one's place, as there.
    # A float raises _Inexact (loads_reshaped).
    out: dict[str, Any] = {}
    for name, value in src.items():
        key = _BROWSER_KEYS[name]
        if not key:
            continue
        kind = type(value)
        if kind is dict:
            if len(value) == 1:  # rule 3: a member {"X": [...]} becomes the list
                (inner,) = value.values()
                if type(inner) is list:
                    out[key] = _reshaped_list(inner)
                    continue
            out[key] = _reshaped_object(value)
        elif kind is list:
            out[key] = _reshaped_list(value)
        elif kind is float:
            raise _Inexact
        else:
            out[key] = value
    return out


def _reshaped_list(src: list[Any]) -> list[Any]:
    return [
        _reshaped_object(item)
        if type(item) is dict
        else _reshaped_list(item)
        if type(item) is list
        else item
        if type(item) is not float
        else _inexact()
        for item in src
    ]


def _inexact() -> Any:
    raise _Inexact


def _loads_reshaped_stdlib(raw: bytes | str) -> Any:
    """loads_reshaped with the standard library's parser: each object reshaped as it is parsed.

    The parser hands each object's members to `_reshape_members` (bottom-up, so the parser's
    own depth limit is the only one).
    """
    if isinstance(raw, bytes | bytearray):  # as json.loads does it
        raw = raw.decode(json.detect_encoding(raw), "surrogatepass")
    root = _RESHAPING_DECODER.decode(raw)
    # Rule 3 never applies to the root: keep it an object (and a plain dict).
    return dict(root) if type(root) is _OneListObject else root


class _OneListObject(dict):  # type: ignore[type-arg]
    """A reshaped object that had exactly one member, holding a list (rule 3's wrapper).

    Its parent's member takes `the_list` instead; as the root or a list item (where rule 3
    does not apply) it stays what it is, an object, and JSON encodes it as one. (Not named
    `items`: the JSON encoder calls a dict's `items()`.)
    """

    __slots__ = ("the_list",)

    def __init__(self, members: dict[str, Any], the_list: list[Any]) -> None:
        super().__init__(members)
        self.the_list = the_list


def _reshape_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = {
        _BROWSER_KEYS[name]: value.the_list if type(value) is _OneListObject else value
        for name, value in pairs
    }
    if len(obj) != len(pairs) or "" in obj:
        # A repeated name, a name empty once trimmed, or two names that became one: redo it
        # as reshaping the parsed object does (first place, last value, in order).
        source = dict(pairs)
        obj = {}
        for name, value in source.items():
            if key := _BROWSER_KEYS[name]:
                obj[key] = value.the_list if type(value) is _OneListObject else value
        pairs = list(source.items())
    if len(pairs) == 1 and type(pairs[0][1]) is list:  # rule 3 looks at the object POP sent
        return _OneListObject(obj, pairs[0][1])
    return obj


class _BrowserKeys(dict[Any, str]):
    """Member name → the SDK's name: trimmed, first character lower-cased ("" = drop it).

    POP answers use a small vocabulary of member names, over and over: rewriting each name
    once, not at every occurrence, halves the cost of reshaping an answer. Past 1024 names
    (answers with arbitrary keys) it starts again, which bounds the memory.
    """

    def __missing__(self, raw: Any) -> str:
        if len(self) >= 1024:
            self.clear()
        key = raw.strip() if isinstance(raw, str) else ""
        self[raw] = key = key[:1].lower() + key[1:]
        return key


_BROWSER_KEYS = _BrowserKeys()
_RESHAPING_DECODER = json.JSONDecoder(object_pairs_hook=_reshape_members)


def percent_encode(s: str) -> str:
    """RFC 3986 encoding of UTF-8 as POP wants it: only `A-Z a-z 0-9 - _ . ~` stay as is."""
    if len(s) <= _SHORT_CHARS and _UNRESERVED.fullmatch(s):  # ids, nonces: nothing to do
        return s
    return _quote_cached(s) if len(s) <= _CACHED_MAX_CHARS else _quote(s)


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")
# quote() walks its input byte by byte in Python. The values that need it repeat: the
# SecurityToken (1–2 KB of base64 with "+/=", the same for an agent's whole sign-in) and the
# Timestamp (the same for a second), so their encoding is cached; long values go to the
# cache without even the regex check, which would scan them whole (a str caches its hash).
# 256 entries of at most 4 KB bound the memory.
_SHORT_CHARS = 64
_CACHED_MAX_CHARS = 4096


def _quote(s: str) -> str:
    if _UNRESERVED.fullmatch(s):
        return s
    # quote() always keeps letters, digits and "_.-~"; safe="" makes it encode "/" too.
    return quote(s, safe="", encoding="utf-8", errors="strict")


_quote_cached = functools.lru_cache(maxsize=256)(_quote)


class _Encodings(dict[str, str]):
    """Text → its encoding by `encode`, remembered: parameter names are a small vocabulary
    (the common parameters, an action's own) and most values repeat too (the instance, the
    key id and SecurityToken of an agent's sign-in, the Timestamp of this second), so they are
    looked up, not encoded, on every call. At most `size` entries of at most 4096 characters
    are kept (it starts again when full), which bounds the memory; longer text is not kept."""

    def __init__(self, encode: Callable[[str], str], size: int) -> None:
        super().__init__()
        self._encode = encode
        self._size = size

    def __missing__(self, text: str) -> str:
        encoded = self._encode(text)
        if len(text) <= _CACHED_MAX_CHARS:
            if len(self) >= self._size:
                self.clear()
            self[text] = encoded
        return encoded


def _encode_again(encoded: str) -> str:
    # Percent-encoded text holds only unreserved characters and %XX escapes: encoding it once
    # more (as the string to sign does) changes only the "%".
    return encoded.replace("%", "%25")


_ENCODED_NAMES = _Encodings(percent_encode, 1024)
_ENCODED_VALUES = _Encodings(percent_encode, 256)
_ENCODED_TWICE = _Encodings(_encode_again, 256)


def canonical_query(params: Mapping[str, str]) -> str:
    """Every parameter but `Signature`, sorted by name, encoded and joined as `k=v&…`."""
    names, values = _ENCODED_NAMES, _ENCODED_VALUES
    return "&".join([f"{names[k]}={values[params[k]]}" for k in sorted(params) if k != "Signature"])


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    """`METHOD&%2F&enc(canonical query)`."""
    return _string_to_sign(method, canonical_query(params))


def _string_to_sign(method: str, query: str) -> str:
    # The canonical query holds only unreserved characters, %XX escapes, "&" and "=", so
    # encoding it again needs just three replacements ("%" first); quote() would walk it byte
    # by byte, which was a fifth of a forwarded call's CPU time (bench/RESULTS.md).
    encoded = query.replace("%", "%25").replace("&", "%26").replace("=", "%3D")
    return f"{method.upper()}&%2F&{encoded}"


def sign_v1(method: str, params: Mapping[str, str], access_key_secret: str) -> str:
    """Signature v1.0: base64(HMAC-SHA1(secret + "&", string_to_sign))."""
    return _sign_query(method, canonical_query(params), access_key_secret)


def _sign_query(method: str, query: str, access_key_secret: str) -> str:
    key = (access_key_secret + "&").encode("utf-8")
    # hmac.digest: one call into OpenSSL, no HMAC object.
    digest = hmac.digest(key, _string_to_sign(method, query).encode("utf-8"), "sha1")
    return base64.b64encode(digest).decode("ascii")


def form_body(params: Mapping[str, str]) -> bytes:
    """The parameters as an `application/x-www-form-urlencoded` body, POP's encoding."""
    pairs = (f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items())
    return "&".join(pairs).encode("ascii")


def common_params(
    action: str, *, version: str, region_id: str, now: float, nonce: str
) -> dict[str, str]:
    """The parameters every RPC call carries, whichever way it authenticates."""
    return {
        "Action": action,
        "Version": version,
        "Format": "JSON",
        "RegionId": region_id,
        "Timestamp": _timestamp(int(now)),
        "SignatureNonce": nonce,
    }


def timestamp(now: float) -> str:
    """POP's Timestamp of the UNIX time `now`: UTC `YYYY-MM-DDThh:mm:ssZ`."""
    return _timestamp(int(now))


# Calls come many a second: the text of a second is made once (gmtime drops the fraction).
@functools.lru_cache(maxsize=2)
def _timestamp(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))


def merge_params(common: Mapping[str, str], business: Mapping[str, str]) -> dict[str, str]:
    """Business parameters plus the common ones; the gateway's values always win.

    A reserved name among the business parameters is refused (RequestShapeError); a
    `RegionId` from the browser is overridden, because the endpoint is pinned to one region.
    """
    clash = sorted(RESERVED_PARAMS.intersection(business))
    if clash:
        raise RequestShapeError(f"parameter {clash[0]!r} is set by the gateway only")
    return {**business, **common}


def bearer_params(base: Mapping[str, str], access_token: str) -> dict[str, str]:
    """Bearer mode: the OAuth access token itself authenticates the call; nothing is signed."""
    params = {k: v for k, v in base.items() if k not in _SIGNATURE_FIELDS}
    params["BearerToken"] = access_token
    params["SignatureType"] = "BEARERTOKEN"
    return params


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
    params = _sts_params(base, access_key_id, security_token)
    params["Signature"] = sign_v1(method, params, access_key_secret)
    return params


class StsSignedForms:
    """STS mode's signed form body (`form_body(sts_signed_params(...))` up to the order of
    its fields) for calls that differ only in their SignatureNonce and Timestamp.

    A softphone repeats the same few calls with the same parameters under the same STS key,
    and all of a call's canonical query but those two values is then the same text: it is
    sorted, encoded (once for the body, twice for the string to sign) and fed to HMAC-SHA1
    up to the nonce once, here. `body(nonce, timestamp)` then encodes two values, hashes
    the ~200 characters after the SecurityToken and joins three pieces; its bytes are
    the fields of `sts_signed_params` (tests/test_pop_properties.py), in canonical order with
    the Signature last. The string to sign encodes the query once more: built from the same
    encoded pairs, each encoded again through a cache, rather than by rewriting the whole
    query (1–2 KB with the SecurityToken).
    """

    __slots__ = ("_mac", "_once", "_twice")

    def __init__(
        self,
        base: Mapping[str, str],
        *,
        access_key_id: str,
        access_key_secret: str,
        security_token: str,
        method: str,
    ) -> None:
        params = _sts_params(base, access_key_id, security_token)
        for name in _PER_CALL:
            params[name] = _PLACEHOLDER
        names, values, twice = _ENCODED_NAMES, _ENCODED_VALUES, _ENCODED_TWICE
        # Sorted by name, as the canonical query is; encoded text never holds a NUL (it would
        # be %00), so one marks where the per-call values go.
        pairs = [
            (names[k], _PLACEHOLDER if k in _PER_CALL else values[params[k]])
            for k in sorted(params)
        ]
        once = "&".join([f"{name}={value}" for name, value in pairs]).split(_PLACEHOLDER)
        again = "%26".join(
            [
                f"{twice[name]}%3D{value if name in _PER_CALL else twice[value]}"
                for name, value in pairs
            ]
        )
        self._once: tuple[str, str, str] = (once[0], once[1], once[2] + "&Signature=")
        head, *rest = again.split(_PLACEHOLDER)
        self._twice: tuple[str, str] = (rest[0], rest[1])
        key = (access_key_secret + "&").encode("utf-8")
        self._mac = hmac.new(key, f"{method.upper()}&%2F&{head}".encode("ascii"), "sha1")

    def body(self, nonce: str, timestamp: str) -> bytes:
        """The signed form body of the call with this SignatureNonce and Timestamp."""
        nonce, timestamp = percent_encode(nonce), _ENCODED_VALUES[timestamp]
        mid, tail = self._twice
        mac = self._mac.copy()
        mac.update(f"{_encode_again(nonce)}{mid}{_ENCODED_TWICE[timestamp]}{tail}".encode("ascii"))
        signature = base64.b64encode(mac.digest()).decode("ascii")
        # Base64 needs only "+", "/" and "=" encoded; a fresh signature would miss quote()'s
        # cache.
        encoded = signature.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
        head, middle, end = self._once
        return f"{head}{nonce}{middle}{timestamp}{end}{encoded}".encode("ascii")


# The two parameters that change from call to call, in their sorted order (S < T).
_PER_CALL = ("SignatureNonce", "Timestamp")
_PLACEHOLDER = "\0"


def _sts_params(base: Mapping[str, str], access_key_id: str, security_token: str) -> dict[str, str]:
    params = {k: v for k, v in base.items() if k not in _SIGNATURE_FIELDS}
    params["AccessKeyId"] = access_key_id
    params["SecurityToken"] = security_token
    params["SignatureMethod"] = "HMAC-SHA1"
    params["SignatureVersion"] = "1.0"
    return params
