"""Reference POP response reshaping and request unflattening (docs/ccc-openapi.md), plain.

`reshape_response` is the oracle of `ccc_gateway.ccc.pop.reshape`; `unflatten` is the
inverse of `ccc_gateway.ccc.pop.params.flatten_request`, for round-trip tests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_INDEX_RE = re.compile(r"[1-9][0-9]*")


def sdk_name(raw: Any) -> str:
    """A POP member name as the SDK reads it: trimmed, first character lower-cased."""
    key = raw.strip() if isinstance(raw, str) else ""
    return key[:1].lower() + key[1:]


def reshape_response(obj: Any) -> Any:
    """POP JSON → the shape the workbench SDK reads (rules 1–3).

    Names are trimmed, empty ones dropped, the first character lower-cased; a member whose
    value is a one-entry object holding a list becomes that list (object members only: not
    the root, not list items). When two names meet, the later one wins. Iterative, so any
    depth is reshaped.
    """
    root = _empty_like(obj)
    stack: list[tuple[Any, Any]] = [(obj, root)] if root is not obj else []
    while stack:
        src, dst = stack.pop()
        if isinstance(src, dict):
            for raw_key, value in src.items():
                key = sdk_name(raw_key)
                if not key:
                    continue
                if isinstance(value, dict) and len(value) == 1:
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
    if isinstance(value, dict):
        return {}
    if isinstance(value, list):
        return []
    return value


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
