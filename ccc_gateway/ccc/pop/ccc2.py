"""CCC 2.0 (API 2020-07-01) request parameters and identity rules, pure (docs/ccc-openapi.md §6).

2.0 takes a list (and an object) as ONE parameter holding its JSON text, e.g.
`SignedSkillGroupIdList=["skg-a@ccc-test"]`; the classic `Key.1, Key.2` flattening is never
used. Names get their first letter upper-cased, as in classic (idempotent for the PascalCase
names the 2.x/3.x SDK may already send).

Its ids of users, skill groups and roles are `name@instance`; `ids_of_other_instances` finds
the parameters that name another instance, also inside JSON-text lists, and
`user_id_values` the `UserId` the gateway pins to the signed-in agent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, Final

from ccc_gateway.ccc.pop.errors import RequestShapeError
from ccc_gateway.ccc.pop.params import MAX_KEY_LENGTH, scalar_text

__all__ = [
    "USER_PARAM",
    "ids_of_other_instances",
    "json_text_params",
    "login_user_id",
    "user_id_values",
]

_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
# A whole value `name@instance`: what 2.0 ids look like (agent@ccc-test, skg-a@ccc-test).
# (No quotes, brackets, braces or commas: those make JSON text, searched item by item.)
_ID_RE = re.compile(r'[^\s@"\[\]{},]+@([^\s@"\[\]{},]+)')
USER_PARAM: Final = "UserId"  # pinned to the agent's own id (any spelling of the name counts)
_JSON: Final = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def json_text_params(params: Mapping[str, Any], *, max_items: int = 1000) -> dict[str, str]:
    """The softphone's JSON object as 2.0 POP parameters.

    A string passes unchanged (it may already be JSON text); a list or object becomes its
    compact JSON text; booleans and numbers are written as in classic; None is dropped.
    Raises RequestShapeError for a name outside the grammar (dotted `Key.N` names included),
    two spellings of one name, a value that is not finite or not valid Unicode.
    """
    if not isinstance(params, Mapping):
        raise RequestShapeError("the request must be a JSON object")
    out: dict[str, str] = {}
    for raw_key, value in params.items():
        key = _pop_name(raw_key)
        if not key or value is None:
            continue
        if key in out:
            raise RequestShapeError(f"two parameters both become {key!r}")
        if len(out) >= max_items:
            raise RequestShapeError(f"more than {max_items} parameters")
        out[key] = _value_text(key, value)
    return out


def _pop_name(raw: Any) -> str:
    if not isinstance(raw, str):
        raise RequestShapeError(f"parameter name {raw!r} is not a string")
    key = raw.strip()
    if not key:
        return ""
    if len(key) > MAX_KEY_LENGTH or not _NAME_RE.fullmatch(key):
        raise RequestShapeError(
            f"parameter name {key[:40]!r} is not allowed: use letters, digits, '_' and '-', "
            "starting with a letter (CCC 2.0 takes a list as one JSON parameter, never Key.N)"
        )
    return key[0].upper() + key[1:]


def _value_text(key: str, value: Any) -> str:
    if not isinstance(value, Mapping | list | tuple):
        return scalar_text(key, value)
    try:
        text = _JSON.encode(value)
        text.encode("utf-8")  # lone surrogates from "\ud800" escapes cannot be sent
    except ValueError:  # NaN / Infinity, or the UnicodeEncodeError above
        raise RequestShapeError(f"parameter {key!r} is not valid JSON text") from None
    return text


def ids_of_other_instances(params: Mapping[str, str], instance_id: str) -> list[str]:
    """The names of the parameters holding an id `name@instance` of another instance.

    A value counts when it is such an id as a whole, or is JSON text of a list holding one
    (at any depth of lists). Free text that merely contains an `@` is not an id.
    """
    return [
        key
        for key, text in params.items()
        if any(instance != instance_id for instance in _instances_named(text))
    ]


def _instances_named(text: str) -> Iterator[str]:
    stripped = text.strip()
    try:
        items = json.loads(stripped) if stripped.startswith("[") else stripped
    except (ValueError, RecursionError):
        items = stripped
    stack = [items]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            yield from _instance_of(item)


def _instance_of(value: str) -> Iterator[str]:
    match = _ID_RE.fullmatch(value.strip())
    if match:
        yield match.group(1)


def user_id_values(params: Mapping[str, str]) -> list[str]:
    """The non-empty values of `UserId`, its name spelt in any case (POP might read either)."""
    lower = USER_PARAM.lower()
    return [value for key, value in params.items() if key.lower() == lower and value != ""]


def login_user_id(body: Mapping[str, Any]) -> str | None:
    """The agent's CCC user id in a GetLoginDetails answer (`Data.UserId`), as POP sends it
    or reshaped (`data.userId`); None when absent."""
    data = body.get("Data", body.get("data"))
    if not isinstance(data, Mapping):
        return None
    user = data.get("UserId", data.get("userId"))
    return user if isinstance(user, str) and user else None
