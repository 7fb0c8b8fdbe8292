"""Request and response bodies of the proxy: the upload limit, and content decoding.

The upload is counted while it streams (a chunked body declares no length), so that an
oversized one is cut off at the limit instead of being forwarded to the CRM whole. Decoding is
only for the response filter, which needs the page's text: gzip and deflate with the standard
library, capped against decompression bombs. A rewritten body then gets headers that are
true of it (`describe_new_body`).
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import hdrs
from multidict import CIMultiDict

from .errors import PayloadTooLarge

# Headers about the exact bytes the CRM sent, untrue of a rewritten body.
_OLD_BYTES_HEADERS = (hdrs.CONTENT_MD5, hdrs.ACCEPT_RANGES)


class RequestBody:
    """The client's request body as an async iterator that stops past `limit` bytes."""

    __slots__ = ("client_failed", "content", "limit", "too_large")

    def __init__(self, content: aiohttp.StreamReader, limit: int) -> None:
        self.content = content
        self.limit = limit
        self.too_large = False
        self.client_failed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        size = 0
        try:
            async for chunk in self.content.iter_any():
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
    coding = coding.strip().lower()
    if coding in ("", "identity"):
        return body
    if coding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif coding == "deflate":
        # "deflate" is meant to be zlib-wrapped, but some servers send raw deflate.
        wbits = zlib.MAX_WBITS if _has_zlib_header(body) else -zlib.MAX_WBITS
    else:
        return None
    decompressor = zlib.decompressobj(wbits)
    try:
        decoded = decompressor.decompress(body, limit)
    except zlib.error:
        return None
    if not decompressor.eof or decompressor.unconsumed_tail or decompressor.unused_data:
        return None
    return decoded


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
