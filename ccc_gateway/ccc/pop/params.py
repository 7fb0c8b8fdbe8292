"""The parameters of a CCC OpenAPI (POP, RPC style) call, pure (docs/ccc-openapi.md).

`flatten_request` turns the softphone's lowerCamel JSON into flat POP parameters (`Key.1`,
`Key.Sub`, …) the way `alibabacloud-tea-openapi` does; `common_params` gives the parameters
every call carries and `merge_params` joins the two, the gateway's values winning.

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

Everything is a pure function of its arguments (the clock and the nonce are passed in).
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ccc_gateway.ccc.pop.errors import RequestShapeError

__all__ = [
    "MAX_KEY_LENGTH",
    "RESERVED_PARAMS",
    "RequestShapeError",
    "common_params",
    "flatten_request",
    "merge_params",
    "scalar_text",
    "timestamp",
]

_NAME = r"[A-Za-z][A-Za-z0-9_-]*"
_INDEX = r"[1-9][0-9]*"
_KEY_RE = re.compile(rf"{_NAME}(?:\.(?:{_NAME}|{_INDEX}))*")
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


@dataclass
class _Limits:
    max_depth: int
    max_items: int


def flatten_request(
    params: Mapping[str, Any], *, max_depth: int = 5, max_items: int = 1000
) -> dict[str, str]:
    """Flatten the softphone's JSON object into POP parameters.

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
    # Scalars first: nearly every value is one, and the test against Mapping (an ABC, a
    # Python-level isinstance check) is then skipped (bench/RESULTS.md, session 6, later).
    if not isinstance(value, str | int | float) and isinstance(value, Mapping | list | tuple):
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
    out[key] = scalar_text(key, value)


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
    return ".".join([part[0].upper() + part[1:] for part in key.split(".")])


def scalar_text(key: str, value: Any) -> str:
    """A JSON scalar as POP text: booleans lower-case, numbers in plain decimal."""
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


def common_params(
    action: str, *, version: str, region_id: str, now: float, nonce: str
) -> dict[str, str]:
    """The parameters every RPC call carries, whichever way it authenticates."""
    return {
        "Action": action,
        "Version": version,
        "Format": "JSON",
        "RegionId": region_id,
        "Timestamp": timestamp(now),
        "SignatureNonce": nonce,
    }


def timestamp(now: float) -> str:
    """POP's Timestamp of the UNIX time `now`: UTC `YYYY-MM-DDThh:mm:ssZ` (fraction dropped)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(now)))


def merge_params(common: Mapping[str, str], business: Mapping[str, str]) -> dict[str, str]:
    """Business parameters plus the common ones; the gateway's values always win.

    A reserved name among the business parameters is refused (RequestShapeError); a
    `RegionId` from the browser is overridden, because the endpoint is pinned to one region.
    """
    clash = sorted(RESERVED_PARAMS.intersection(business))
    if clash:
        raise RequestShapeError(f"parameter {clash[0]!r} is set by the gateway only")
    return {**business, **common}
