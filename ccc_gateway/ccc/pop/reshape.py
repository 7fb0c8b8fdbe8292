"""POP answers → the shape the workbench SDK reads (docs/ccc-openapi.md, "Response reshaping").

The demo's `copyObject`, rules 1–3: member names are trimmed, empty ones dropped, the first
character lower-cased; a member whose value is a one-entry object holding a list becomes
that list. The collapse applies to object members only: never to the root, and not to list
items (they are entries, not wrappers). When two names meet after lower-casing, the later
member's value wins, in the earlier one's place.

One walker, `reshape`, does it for both parsers `loads_reshaped` uses. It is iterative, so
any depth the parser accepted is reshaped without a recursion limit. The test oracle written
from the rules alone is tests/oracles/pop_reshape.py.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["loads_reshaped", "reshape"]


class _NotAsJson(Exception):
    """orjson's parse may differ from json's: it holds a float, or nests deeper than json may
    parse (see loads_reshaped)."""


# POP answers nest a few levels; past this many the standard library decides (it refuses
# nesting near Python's recursion limit, which orjson accepts up to 1024).
_ORJSON_MAX_DEPTH = 100


def loads_reshaped(raw: bytes | str) -> Any:
    """`reshape(json.loads(raw))`, parsed with orjson when that gives the same result.

    orjson is much faster than the standard library (bench/RESULTS.md). What it refuses
    (NaN and Infinity, lone surrogates, other encodings than UTF-8, nesting past 1024) or may
    read otherwise than `json` (integers beyond 64 bits, which it reads as floats, so any
    float at all; nesting that json refuses) is parsed by `json` instead, so the result never
    depends on the parser (tests/test_pop_properties.py). Raises what json.loads raises
    (ValueError, RecursionError).
    """
    try:
        return reshape(orjson.loads(raw), orjson_parsed=True)
    except (orjson.JSONDecodeError, _NotAsJson):
        return reshape(json.loads(raw))


def reshape(parsed: Any, *, orjson_parsed: bool = False) -> Any:
    """A reshaped copy of a parsed JSON value (plain dicts, lists and scalars).

    With `orjson_parsed` a float anywhere, or nesting past `_ORJSON_MAX_DEPTH`, raises
    `_NotAsJson` (loads_reshaped's check).
    """
    kind = type(parsed)
    if kind is float and orjson_parsed:
        raise _NotAsJson
    if kind is not dict and kind is not list:
        return parsed
    root: Any = {} if kind is dict else []
    max_depth = _ORJSON_MAX_DEPTH if orjson_parsed else -1
    # An answer repeats a few member names (one per field of each list entry): each is
    # rewritten once per answer. The table lives only as long as this call.
    names: dict[str, str] = {}
    copy: Any
    stack = [(parsed, root, 0)]
    push, pop = stack.append, stack.pop
    # Containers are pushed empty and filled when popped; scalars are kept as they are.
    # (The type tests are written out in both loops: this is the API call's hot path.)
    while stack:
        src, dst, depth = pop()
        if depth == max_depth:
            raise _NotAsJson
        depth += 1
        if type(src) is dict:
            for name, value in src.items():
                key = names.get(name)
                if key is None:
                    key = name.strip()
                    key = names[name] = key[:1].lower() + key[1:]
                if not key:  # empty once trimmed: dropped
                    continue
                kind = type(value)
                if kind is dict and len(value) == 1:  # rule 3: {"X": [...]} → [...]
                    (inner,) = value.values()
                    if type(inner) is list:
                        value, kind = inner, list
                if kind is dict or kind is list:
                    dst[key] = copy = kind()
                    push((value, copy, depth))
                elif kind is float and orjson_parsed:
                    raise _NotAsJson
                else:
                    dst[key] = value
        else:
            for item in src:
                kind = type(item)
                if kind is dict or kind is list:
                    copy = kind()
                    dst.append(copy)
                    push((item, copy, depth))
                elif kind is float and orjson_parsed:
                    raise _NotAsJson
                else:
                    dst.append(item)
    return root
