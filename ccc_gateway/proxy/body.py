"""Request and response bodies: the upload limit and pace, and content decoding.

The upload is counted while it streams (a chunked body declares no length), so that an
oversized one is cut off at the limit instead of being forwarded to the CRM whole, and paced
(`Pace`), so that a client trickling its body cannot hold a connection to the CRM for ever.
Proxied bodies are never decoded: they reach the CRM exactly as the client sent them, bytes
and headers (the server runs with auto-decompression off, see runtime/serve.py `server_options`).

Decoding, gzip and deflate with the standard library, capped against decompression bombs, is
for the response filter, which needs the page's text (`decode_body`; a rewritten body then
gets headers that are true of it, `describe_new_body`), and for the gateway's own routes that
read a compressed request body (`read_request_body`).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from typing import Protocol

import aiohttp
from aiohttp import hdrs, web
from multidict import CIMultiDict, CIMultiDictProxy

from ccc_gateway.http.errors import (
    BadRequest,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
)

# Headers about the exact bytes the CRM sent, untrue of a rewritten body.
_OLD_BYTES_HEADERS = (hdrs.CONTENT_MD5, hdrs.ACCEPT_RANGES)


class Pace:
    """The minimum pace of a request body: `rate` bytes a second on average, behind by at
    most `window` seconds.

    A credit of waiting time: it starts at `window` (the grace for a slow start), each byte
    received adds 1/`rate` seconds, up to `window` again, and the time spent waiting for the
    client uses it up; at 0 the body is too slow. Only the waiting counts: while the CRM is
    slow to take what was read, the client is not the one holding things up. A body that
    keeps to `rate` never runs out; one that stops dead has at most `window` seconds, and a
    trickle a little longer (a cumulative average would instead let a fast start buy an
    hour-long stall). A `rate` of 0 imposes nothing.
    """

    __slots__ = ("credit", "rate", "window")

    def __init__(self, rate: int, window: float) -> None:
        self.rate = rate
        self.window = window
        self.credit = window

    async def read(self, content: aiohttp.StreamReader) -> bytes:
        """The next chunk of `content` (b"" at its end); RequestTimeout when the client lags."""
        # What has arrived already is taken without a timer: most bodies come with the head.
        chunk = content.read_nowait()
        if not chunk and not content.at_eof():
            if not self.rate:
                return await content.readany()
            loop = asyncio.get_running_loop()
            started = loop.time()
            try:
                async with asyncio.timeout(self.credit):
                    chunk = await content.readany()
            except TimeoutError:
                raise RequestTimeout(
                    f"The request body came in slower than {self.rate} bytes a second."
                ) from None
            self.credit -= loop.time() - started
        if self.rate:
            self.credit = min(self.credit + len(chunk) / self.rate, self.window)
        return chunk


class RequestBody:
    """The client's request body as an async iterator: paced, and stopping past `limit` bytes."""

    __slots__ = ("client_failed", "content", "limit", "pace", "too_large")

    def __init__(self, content: aiohttp.StreamReader, limit: int, pace: Pace) -> None:
        self.content = content
        self.limit = limit
        self.pace = pace
        self.too_large = False
        self.client_failed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        size = 0
        try:
            while chunk := await self.pace.read(self.content):
                size += len(chunk)
                if self.limit and size > self.limit:
                    self.too_large = True
                    # Raising inside the upload aborts the CRM request mid-body.
                    raise PayloadTooLarge(too_large_message(self.limit))
                yield chunk
        except (ConnectionError, aiohttp.ClientPayloadError):
            self.client_failed = True  # the browser went away mid-upload
            raise


def too_large_message(limit: int) -> str:
    return f"The request body is larger than the {limit} bytes the CRM accepts through the gateway."


def decode_body(body: bytes, coding: str, limit: int) -> bytes | None:
    """`body` without its content coding (gzip, deflate, identity); None when it can't be.

    None also for a body that decodes to more than `limit` bytes (a zip bomb or just a huge
    page) or is truncated or corrupt: the caller then passes the original bytes on unchanged.
    """
    try:
        return _decoded(body, coding, limit)
    except ValueError:
        return None


class _UnknownCoding(ValueError):
    pass


class _TooLarge(ValueError):
    pass


def _decoded(body: bytes, coding: str, limit: int) -> bytes:
    """`body` decoded: _UnknownCoding, _TooLarge (past `limit`), or ValueError if corrupt."""
    coding = coding.strip().lower()
    if coding in ("", "identity"):
        return body
    if coding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif coding == "deflate":
        # "deflate" is meant to be zlib-wrapped, but some servers send raw deflate.
        wbits = zlib.MAX_WBITS if _has_zlib_header(body) else -zlib.MAX_WBITS
    else:
        raise _UnknownCoding(coding)
    decompressor = zlib.decompressobj(wbits)
    try:
        # One byte past the cap tells a body over it from one that fills it exactly.
        decoded = decompressor.decompress(body, limit + 1)
    except zlib.error:
        raise ValueError("corrupt") from None
    if len(decoded) > limit:
        raise _TooLarge(coding)
    if not decompressor.eof or decompressor.unconsumed_tail or decompressor.unused_data:
        raise ValueError("truncated or followed by other bytes")
    return decoded


async def read_request_body(request: web.Request, limit: int, pace: Pace) -> bytes:
    """The body of a request to one of the gateway's own routes, decoded, at most `limit`
    bytes both as sent and decoded (413 past it).

    gzip and deflate are decoded here, since the server leaves bodies as they came; other
    codings are 415, a corrupt or truncated body 400.
    """
    chunks: list[bytes] = []
    size = 0
    while chunk := await pace.read(request.content):
        size += len(chunk)
        if size > limit:  # a chunked body declares no Content-Length up front
            raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
        chunks.append(chunk)
    raw = b"".join(chunks)
    coding = request.headers.get(hdrs.CONTENT_ENCODING)
    if coding is None:
        return raw
    try:
        return _decoded(raw, coding, limit)
    except _UnknownCoding:
        raise UnsupportedMediaType(
            "Send the request body unencoded, or with Content-Encoding gzip or deflate."
        ) from None
    except _TooLarge:
        raise PayloadTooLarge(
            f"The request body decompresses to more than {limit} bytes."
        ) from None
    except ValueError:
        raise BadRequest(f"The request body is not valid {coding.strip()} data.") from None


def _has_zlib_header(body: bytes) -> bool:
    return len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0


def describe_new_body(headers: CIMultiDict[str], length: int) -> None:
    """Make the headers true of the rewritten, identity-encoded body."""
    headers[hdrs.CONTENT_LENGTH] = str(length)
    etag = headers.get(hdrs.ETAG)
    if etag is not None and not etag.lstrip().startswith("W/"):
        del headers[hdrs.ETAG]  # a strong ETag promises these exact bytes, which changed
    for name in _OLD_BYTES_HEADERS:
        headers.popall(name, None)  # byte ranges and digests of the old bytes


class ResponseFilter(Protocol):
    """Rewrites whole response bodies (the softphone widget injection)."""

    def wants(self, request: web.Request, status: int, headers: CIMultiDictProxy[str]) -> bool:
        """Whether to transform this response, judged from its status and upstream headers."""

    def transform(self, request: web.Request, body: bytes, headers: CIMultiDict[str]) -> bytes:
        """The new body from the decoded one; `headers` (outgoing) may be edited, e.g. CSP."""
