"""The aiohttp internals the gateway relies on still exist (ccc_gateway/upstream/__init__.py
lists them): an aiohttp bump that moves or renames one fails here, loudly, rather than as a
broken proxy hop. aiohttp is pinned to the minor these were read in (pyproject.toml)."""

from __future__ import annotations

import asyncio
import importlib
import inspect

import aiohttp
import pytest

# (module, name): imported by ccc_gateway/upstream/connection.py and response.py.
NAMES = [
    ("aiohttp.base_protocol", "BaseProtocol"),
    ("aiohttp.http", "HttpResponseParser"),
    ("aiohttp.http", "RawResponseMessage"),
    ("aiohttp.http_exceptions", "HttpProcessingError"),
    ("aiohttp.helpers", "set_exception"),
    ("aiohttp.helpers", "DEFAULT_CHUNK_SIZE"),
    ("aiohttp", "StreamReader"),
    ("aiohttp", "EMPTY_PAYLOAD"),
]


@pytest.mark.parametrize(("module", "name"), NAMES)
def test_listed_name_exists(module: str, name: str) -> None:
    assert hasattr(importlib.import_module(module), name), f"{module}.{name} is gone"


def test_base_protocol_members() -> None:
    from aiohttp.base_protocol import BaseProtocol

    protocol = BaseProtocol(asyncio.new_event_loop())
    try:
        # Read and written by upstream.connection.Connection.
        assert protocol._loop is not None
        assert protocol._reading_paused is False
        assert inspect.iscoroutinefunction(BaseProtocol._drain_helper)
        # Overridden by Connection: the signature it calls super() with.
        assert list(inspect.signature(BaseProtocol.resume_reading).parameters) == [
            "self",
            "resume_parser",
        ]
    finally:
        protocol._loop.close()


def test_response_parser_keywords() -> None:
    """The keyword arguments Connection builds its parser with, and what it calls on it."""
    from aiohttp.http import HttpResponseParser

    loop = asyncio.new_event_loop()
    try:
        from aiohttp.base_protocol import BaseProtocol

        parser = HttpResponseParser(
            BaseProtocol(loop),
            loop,
            2**16,
            payload_exception=aiohttp.ClientPayloadError,
            response_with_body=True,
            read_until_eof=True,
            auto_decompress=False,
            max_line_size=8190,
            max_field_size=32 * 1024,
        )
        messages, upgraded, _ = parser.feed_data(b"HTTP/1.1 204 No Content\r\n\r\n")
        assert messages[0][0].code == 204 and not upgraded
        assert callable(parser.feed_eof)
    finally:
        loop.close()


def test_set_exception_takes_a_cause() -> None:
    from aiohttp.helpers import set_exception

    assert len(inspect.signature(set_exception).parameters) == 3


def test_stream_reader_on_eof() -> None:
    assert callable(aiohttp.StreamReader.on_eof)


def test_request_handler_peername() -> None:
    """proxy/handler.py decides trust on `request.protocol.peername`."""
    from aiohttp.web_protocol import RequestHandler

    # A cached property (propcache's under_cached_property): read once per connection.
    assert hasattr(inspect.getattr_static(RequestHandler, "peername"), "__get__")
