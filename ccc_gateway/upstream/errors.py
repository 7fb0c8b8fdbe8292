"""What can go wrong on a hop to an upstream, by kind (the callers map kinds to answers).

The classes also subclass aiohttp's `ClientError` family, so a caller that speaks to the same
upstream through aiohttp's client as well (the CRM's websockets) needs one except clause for
both; timeouts are `TimeoutError`s, by type rather than by a flag.
"""

from __future__ import annotations

import aiohttp


class UpstreamError(aiohttp.ClientError):
    """A request to the upstream failed."""


class InvalidRequestHead(UpstreamError, ValueError):
    """The request head cannot be written: a method, target, name or value is not valid
    HTTP/1.1 (a line break in a value would start a header, or a request, of its own)."""


class ConnectFailed(UpstreamError, aiohttp.ClientConnectionError):
    """The TCP (or TLS) connection to the upstream could not be made."""

    def __init__(self, where: str, os_error: OSError) -> None:
        super().__init__(f"cannot connect to {where}: {os_error.strerror or os_error}")
        self.os_error = os_error


class Disconnected(UpstreamError, aiohttp.ClientConnectionError):
    """The connection closed or broke before the answer's head came (nothing came back)."""


class BadResponse(UpstreamError):
    """The upstream's answer was not valid HTTP/1.1 (the parser's complaint, no headers)."""


class BodyBroken(UpstreamError):
    """The answer's body broke off or was not valid (bad chunking, cut short)."""


class UpstreamTimeout(UpstreamError, TimeoutError):
    """No connection, no answer or no more of the body within the pool's timeouts."""


class UploadTimeout(UpstreamTimeout):
    """The request body was not sent within the pool's `upload_timeout`."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"the request body was not sent within {timeout:g} s")
        self.timeout = timeout
