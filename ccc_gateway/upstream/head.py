"""The request head: one block of bytes, every value checked before it is written.

Each piece that comes from outside (the method, the target, each header's name and value) is
checked on its own, so that no piece can start a line of its own on the upstream connection
(RFC 9112 §3, RFC 9110 §5.5; docs/proxy.md): a failure is `InvalidRequestHead`, which the
proxy answers with a 400.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterable, Iterable

from ccc_gateway.upstream.errors import InvalidRequestHead

Body = bytes | AsyncIterable[bytes] | None

# Requests with these methods and no body send no Content-Length (as aiohttp's client does).
_BODYLESS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "CONNECT", "DELETE"})
# Framing is the pool's to state (Host is the origin's); a streamed body's declared length is
# the one exception, see `build_head`.
_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "host"})

# tchar (RFC 9110 §5.6.2): methods and header names.
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# The target as the client sent it: visible ASCII, and the bytes >= 0x80 that the server's
# UTF-8 + surrogateescape decoding turned into text (obs-text; the CRM gets the same bytes).
_TARGET = re.compile(r"[!-~\x80-\U0010ffff]+")


def build_head(
    method: str, target: str, host: str, headers: Iterable[tuple[str, str]], body: Body
) -> tuple[bytes, bool]:
    """The request head for `host` (the Host value), and whether the body goes in chunks.

    Content-Length, Transfer-Encoding and Host in `headers` are dropped and stated anew for
    `body`, except the Content-Length of a streamed body (the client's declared length): it
    is kept, and the body then goes as it is rather than in chunks.
    """
    if _TOKEN.fullmatch(method) is None:
        raise InvalidRequestHead("the method is not a token")
    if _TARGET.fullmatch(target) is None:
        raise InvalidRequestHead("the target holds a space or a control character")
    parts = [method, " ", target, " HTTP/1.1\r\nHost: ", host, "\r\n"]
    streamed = body is not None and not isinstance(body, bytes)
    declared = False
    for name, value in headers:
        lower = name.lower()
        if lower in _FRAMING_HEADERS:
            if lower != "content-length" or not streamed:
                continue
            declared = True
        # A name is a token. Nearly every name is ASCII letters, digits and dashes: that much
        # is decided without the regex (a header at a time, on every request); anything else
        # is decided by it.
        if not ((name.isascii() and lower.replace("-", "").isalnum()) or _TOKEN.fullmatch(name)):
            raise InvalidRequestHead("a header name is not a token")
        # A field value may hold anything but CR, LF and NUL (RFC 9110 §5.5).
        if "\r" in value or "\n" in value or "\0" in value:
            raise InvalidRequestHead(f"the value of {name} holds a line break or NUL")
        parts += (name, ": ", value, "\r\n")
    chunked = streamed and not declared
    if isinstance(body, bytes):
        parts += ("Content-Length: ", str(len(body)), "\r\n")
    elif chunked:
        parts.append("Transfer-Encoding: chunked\r\n")
    elif body is None and method not in _BODYLESS_METHODS:
        parts.append("Content-Length: 0\r\n")
    parts.append("\r\n")
    # The server decoded the client's header bytes as UTF-8 with surrogateescape: this gives
    # the upstream the very same bytes.
    return "".join(parts).encode("utf-8", "surrogateescape"), chunked
