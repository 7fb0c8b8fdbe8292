"""aioresponses made to work with aiohttp 3.14, for narrow unit tests of outbound clients.

aioresponses 0.7.9 (the newest release) builds `ClientResponse` without the `stream_writer`
argument aiohttp 3.14 requires; `CompatAioresponses` supplies a stand-in by default.
"""

from __future__ import annotations

import types
from typing import Any

import aiohttp
from aioresponses import aioresponses
from yarl import URL


class CompatResponse(aiohttp.ClientResponse):
    def __init__(self, method: str, url: URL, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", types.SimpleNamespace(output_size=0))
        super().__init__(method, url, **kwargs)


class CompatAioresponses(aioresponses):
    """aioresponses whose mocked replies default to :class:`CompatResponse`."""

    def add(self, url: Any, method: str = "GET", **kwargs: Any) -> None:  # type: ignore[override]
        kwargs.setdefault("response_class", CompatResponse)
        super().add(url, method, **kwargs)
