"""Proxy bodies: content decoding for the response filter, and headers of a rewritten body."""

from __future__ import annotations

import gzip
import zlib

import pytest
from multidict import CIMultiDict

from ccc_gateway.proxy.body import decode_body, describe_new_body

PAGE = b"<html><body>" + b"customer " * 100 + b"</body></html>"


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("body", "coding"),
    [
        (PAGE, ""),
        (PAGE, "identity"),
        (gzip.compress(PAGE), "gzip"),
        (gzip.compress(PAGE), " GZIP "),
        (gzip.compress(PAGE), "x-gzip"),
        (zlib.compress(PAGE), "deflate"),
        (_raw_deflate(PAGE), "deflate"),
    ],
)
def test_decode_body(body: bytes, coding: str) -> None:
    """Identity, gzip and both flavours of deflate decode to the page."""
    assert decode_body(body, coding, 1 << 20) == PAGE


@pytest.mark.parametrize(
    ("body", "coding"),
    [
        (PAGE, "br"),
        (gzip.compress(PAGE), "gzip, gzip"),
        (gzip.compress(PAGE)[:-20], "gzip"),
        (b"not gzip at all", "gzip"),
        (gzip.compress(PAGE) + b"trailing", "gzip"),
        (gzip.compress(b" " * (2 << 20)), "gzip"),
    ],
)
def test_undecodable_bodies(body: bytes, coding: str) -> None:
    """Unknown codings, truncated, corrupt, padded or over-the-cap bodies give None."""
    assert decode_body(body, coding, 1 << 20) is None


@pytest.mark.parametrize(("etag", "kept"), [('"v1"', None), ('W/"v1"', 'W/"v1"'), (None, None)])
def test_describe_new_body(etag: str | None, kept: str | None) -> None:
    """A rewritten body gets its own length; strong ETag, ranges and digest go."""
    headers: CIMultiDict[str] = CIMultiDict(
        {"Content-Length": "10", "Accept-Ranges": "bytes", "Content-MD5": "x", "X-Other": "1"}
    )
    if etag is not None:
        headers["ETag"] = etag
    describe_new_body(headers, 42)
    assert headers.get("ETag") == kept
    assert headers["Content-Length"] == "42"
    assert "Accept-Ranges" not in headers and "Content-MD5" not in headers
    assert headers["X-Other"] == "1"
