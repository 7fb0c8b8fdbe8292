"""A log of every OAuth and POP request the emulator received, for tests to inspect."""

from __future__ import annotations

from collections import deque
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import MultiMapping

from .keys import REQUEST_LOG_KEY, STORE_KEY

MAX_ENTRIES = 1000
KNOB_PREFIX = "/_emulator/"
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


class RequestLog:
    """The last MAX_ENTRIES requests, oldest first."""

    def __init__(self) -> None:
        self._entries: deque[dict[str, Any]] = deque(maxlen=MAX_ENTRIES)

    def add(self, entry: dict[str, Any]) -> None:
        self._entries.append(entry)

    def clear(self) -> None:
        self._entries.clear()

    def entries(self) -> list[dict[str, Any]]:
        return list(self._entries)


def flatten(params: MultiMapping[Any]) -> dict[str, str | list[str]]:
    """A JSON-able dict; a name sent more than once keeps every value, as a list."""
    out: dict[str, str | list[str]] = {}
    for name in params:
        if name in out:
            continue
        values = [v if isinstance(v, str) else "<file>" for v in params.getall(name)]
        out[name] = values[0] if len(values) == 1 else values
    return out


async def _form_of(request: web.Request) -> dict[str, str | list[str]]:
    if request.content_type not in _FORM_TYPES:
        return {}
    try:
        # post() caches the parsed body, so the handler can still read it afterwards.
        return flatten(await request.post())
    except (ValueError, LookupError):
        return {}  # a malformed body is the handler's to reject, not the log's


@web.middleware
async def request_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Record the request (the knobs themselves excepted) before handling it."""
    if not request.path.startswith(KNOB_PREFIX):
        request.app[REQUEST_LOG_KEY].add(
            {
                "method": request.method,
                "path": request.path,
                "query": flatten(request.query),
                "form": await _form_of(request),
                "at": request.app[STORE_KEY].settings.clock(),
            }
        )
    return await handler(request)
