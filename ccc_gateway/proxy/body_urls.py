"""Absolute links to the CRM's private origin in its HTML, turned into the gateway's own.

A CRM that builds absolute URLs from its own idea of where it lives (a `next` field holding
`http://127.0.0.1:8080/...`, an error page's link, a form action) sends the browser past the
gateway, to an address it cannot reach. The proper fix is to tell the CRM its public URL
(docs/crm/README.md); `upstream.rewrite_body_urls` is the opt-in fallback: in HTML answers to
GET requests, `http://crm-host:port` (also JSON-escaped, `http:\\/\\/…`, and percent-encoded,
`http%3A%2F%2F…`) becomes the gateway's public origin. Only the exact origin is replaced,
never a longer host or port that starts with it, and only in ASCII-compatible pages.

A `ResponseFilter` around the widget's: the links are rewritten first, then the widget is
inserted into the pages it wants.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from aiohttp import hdrs, web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ccc_gateway.keys import INNER_FILTER_WANTS
from ccc_gateway.proxy.body import ResponseFilter

# Charsets in which ASCII text is not ASCII bytes: nothing is touched in those.
_NOT_ASCII_COMPATIBLE = re.compile(r"utf-?(16|32|7)|ucs-?[24]|unicode", re.IGNORECASE)
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# What may continue a host or port: after the origin, it would make it another one.
_ORIGIN_END = rb"(?![A-Za-z0-9.:_~%-])"
_ENCODED_ORIGIN_END = rb"(?![A-Za-z0-9._~-]|%3[Aa])"  # a percent-encoded ":" starts a port


def origin_patterns(private: URL, public: str) -> list[tuple[re.Pattern[bytes], bytes]]:
    """The private origin's spellings in a page, each with its public replacement."""
    scheme = private.scheme.encode("ascii")
    authority = (private.raw_authority.rpartition("@")[2]).encode("ascii")
    target = public.encode("ascii")
    target_scheme, _, target_authority = target.partition(b"://")
    spellings = [
        (scheme + b"://", target_scheme + b"://"),
        (scheme + b":\\/\\/", target_scheme + b":\\/\\/"),  # JSON's escaped slashes
    ]
    result = [
        (
            re.compile(re.escape(prefix + authority) + _ORIGIN_END, re.IGNORECASE),
            new + target_authority,
        )
        for prefix, new in spellings
    ]
    encoded = quote(f"{private.scheme}://{private.raw_authority.rpartition('@')[2]}", safe="")
    result.append(
        (
            re.compile(re.escape(encoded.encode("ascii")) + _ENCODED_ORIGIN_END, re.IGNORECASE),
            quote(public, safe="").encode("ascii"),
        )
    )
    return result


def rewrite_origin(body: bytes, patterns: list[tuple[re.Pattern[bytes], bytes]]) -> bytes:
    """`body` with every spelling of the private origin replaced."""
    for pattern, replacement in patterns:
        body = pattern.sub(replacement, body)
    return body


def is_rewritable(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> bool:
    """An HTML body, shown rather than downloaded, in an ASCII-compatible charset."""
    content_type = headers.get(hdrs.CONTENT_TYPE, "")
    if content_type.split(";")[0].strip().lower() != "text/html":
        return False
    if _NOT_ASCII_COMPATIBLE.search(content_type):
        return False
    disposition = headers.get(hdrs.CONTENT_DISPOSITION, "")
    return not disposition.strip().lower().startswith("attachment")


class BodyUrlRewriter:
    """The proxy's `ResponseFilter` when `upstream.rewrite_body_urls` is on; `inner` (the
    widget injector, or None) then sees the rewritten page."""

    def __init__(self, private: URL, public: str, inner: ResponseFilter | None) -> None:
        self._patterns = origin_patterns(private, public)
        self._inner = inner

    def wants(self, request: web.Request, status: int, headers: CIMultiDictProxy[str]) -> bool:
        # Every HTML answer: error pages (404, 403) carry such links too, not only 200s.
        inner = self._inner is not None and self._inner.wants(request, status, headers)
        request[INNER_FILTER_WANTS] = inner
        return inner or is_rewritable(headers)

    def transform(self, request: web.Request, body: bytes, headers: CIMultiDict[str]) -> bytes:
        if is_rewritable(headers) and not body.startswith(_UTF16_BOMS):
            body = rewrite_origin(body, self._patterns)
        if self._inner is not None and request.get(INNER_FILTER_WANTS):
            body = self._inner.transform(request, body, headers)
        return body
