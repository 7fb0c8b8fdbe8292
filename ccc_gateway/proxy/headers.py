"""Header rules of the reverse proxy: pure functions, no aiohttp.web (docs/proxy.md).

What goes to the CRM and what comes back is decided here, so that every rule can be tested
from a table: hop-by-hop headers (RFC 9110 §7.6.1) never cross the gateway, forwarding
headers are only believed from trusted proxies, client-sent identity headers never reach the
CRM, the gateway's own cookies stay with the gateway, and redirects to the CRM's private
origin are turned back into paths on the gateway's origin.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping

from aiohttp import hdrs
from multidict import MultiMapping
from yarl import URL

from ccc_gateway.http.request_id import X_REQUEST_ID
from ccc_gateway.proxy.forwarding import FORWARDING_HEADERS, Peer, forwarding_headers

CookiePredicate = Callable[[str], bool]

IDENTITY_PREFIX = "x-ccc-"  # every X-Ccc-* header is the gateway's to set, never the client's


def _lower(*names: str) -> frozenset[str]:
    return frozenset(name.lower() for name in names)


# Hop-by-hop: meaningful for one connection only (RFC 9110 §7.6.1, RFC 9112 §9.6).
HOP_BY_HOP = _lower(
    hdrs.CONNECTION,
    hdrs.KEEP_ALIVE,
    hdrs.PROXY_AUTHENTICATE,
    hdrs.PROXY_AUTHORIZATION,
    "Proxy-Connection",
    hdrs.TE,
    hdrs.TRAILER,
    hdrs.TRANSFER_ENCODING,
    hdrs.UPGRADE,
)

# Request headers the proxy never copies: the hop-by-hop ones; Host (the client sets the
# upstream's); the forwarding headers (recomputed from the peer, see proxy/forwarding.py);
# Expect (aiohttp has already answered 100-continue to the client); our request id (set anew).
_REQUEST_DROP = HOP_BY_HOP | _lower(hdrs.HOST, *FORWARDING_HEADERS, hdrs.EXPECT, X_REQUEST_ID)

# The websocket handshake is redone by the client towards the CRM with its own key, version
# and extensions; the subprotocols are passed to ws_connect separately.
_WEBSOCKET_DROP = _REQUEST_DROP | _lower(
    hdrs.SEC_WEBSOCKET_KEY,
    hdrs.SEC_WEBSOCKET_KEY1,
    hdrs.SEC_WEBSOCKET_VERSION,
    hdrs.SEC_WEBSOCKET_EXTENSIONS,
    hdrs.SEC_WEBSOCKET_PROTOCOL,
    hdrs.SEC_WEBSOCKET_ACCEPT,
)

# Strict-Transport-Security: the gateway sets its own (listen.hsts_max_age); a CRM's would
# speak for the gateway's host, and `max-age=0` would switch HSTS off there.
_RESPONSE_DROP = HOP_BY_HOP | _lower(X_REQUEST_ID, hdrs.STRICT_TRANSPORT_SECURITY)

# Content codings the response filter can decode with the standard library.
DECODABLE_CODINGS = frozenset({"gzip", "x-gzip", "deflate", "identity"})


def _tokens(values: Iterable[str]) -> frozenset[str]:
    """Lower-cased tokens of comma-separated header values (several headers allowed)."""
    return frozenset(
        token.strip().lower() for value in values for token in value.split(",") if token.strip()
    )


_NO_TOKENS: frozenset[str] = frozenset()


def connection_tokens(headers: MultiMapping[str]) -> frozenset[str]:
    """Header names listed in `Connection`: hop-by-hop for this connection only."""
    values = headers.getall(hdrs.CONNECTION, ())
    return _tokens(values) if values else _NO_TOKENS


def is_websocket_upgrade(headers: MultiMapping[str]) -> bool:
    """Both `Connection: upgrade` and `Upgrade: websocket` are present (any case, any list)."""
    if hdrs.UPGRADE not in headers:  # nearly every request: no token parsing
        return False
    return "upgrade" in connection_tokens(headers) and "websocket" in _tokens(
        headers.getall(hdrs.UPGRADE, ())
    )


def strip_cookies(value: str, is_gateway_cookie: CookiePredicate) -> str | None:
    """The `Cookie` value without the gateway's cookies; the others stay byte-exact, in order.

    None when nothing is left, so that the caller drops the header.
    """
    pairs = value.split(";")
    kept = [pair for pair in pairs if not is_gateway_cookie(pair.split("=", 1)[0].strip())]
    if len(kept) == len(pairs):
        return value
    # Each kept pair carries its own leading space; only the first one may need trimming.
    joined = ";".join(kept).strip()
    return joined or None


def decodable_accept_encoding(value: str) -> str | None:
    """`Accept-Encoding` limited to codings the response filter can decode (no br, zstd).

    The client's own order and q-values are kept, so an answer the filter passes through
    untouched is still one the client accepted. None: ask for identity (drop the header).
    """
    kept = [
        item.strip()
        for item in value.split(",")
        if item.split(";", 1)[0].strip().lower() in DECODABLE_CODINGS
    ]
    return ", ".join(kept) or None


def request_header_pairs(
    incoming: MultiMapping[str],
    peer: Peer,
    *,
    request_id: str,
    is_gateway_cookie: CookiePredicate,
    identity: Mapping[str, str] | None = None,
    websocket: bool = False,
    decodable_only: bool = False,
    public_host: str | None = None,
    host: str | None = None,
) -> list[tuple[str, str]]:
    """The headers to send to the CRM for a client request with `incoming` headers, in order.

    `decodable_only` limits Accept-Encoding to what the response filter can decode;
    `public_host` is the X-Forwarded-Host of an untrusted peer (see `forwarding_headers`).
    `host`, when given, is sent as the Host (`upstream.preserve_host`); else the upstream
    client states the CRM's own.
    A plain list of pairs: what the upstream client writes out.
    """
    drop = _WEBSOCKET_DROP if websocket else _REQUEST_DROP
    named = connection_tokens(incoming)
    if not named <= drop:  # `Connection: keep-alive` names nothing new; others do
        drop = drop | named
    out: list[tuple[str, str]] = []
    for name, value in incoming.items():
        lower = name.lower()
        # CGI/WSGI and PHP servers read `X_Ccc_Agent_Upn` as X-Ccc-Agent-Upn (both become
        # HTTP_X_CCC_AGENT_UPN): an underscore spelling of a dropped header is dropped too.
        dashed = lower.replace("_", "-")
        if dashed in drop or dashed.startswith(IDENTITY_PREFIX):
            continue
        if lower == "cookie":
            stripped = strip_cookies(value, is_gateway_cookie)
            if stripped is not None:
                out.append((name, stripped))
        elif lower == "accept-encoding" and decodable_only:
            if (narrowed := decodable_accept_encoding(value)) is not None:
                out.append((name, narrowed))
        else:
            out.append((name, value))
    # Appended, not merged: the forwarding headers, the request id and every X-Ccc-* name
    # are in the drop set, so none of them can be in `out` already.
    out += forwarding_headers(incoming, peer, public_host=public_host).items()
    out.append((X_REQUEST_ID, request_id))
    if host is not None:  # upstream.preserve_host: the client's Host was dropped above
        out.append((hdrs.HOST, host))
    if identity:
        for name, value in identity.items():
            lower = name.lower()
            if not lower.startswith(IDENTITY_PREFIX):  # not ours alone: it replaces the client's
                out = [pair for pair in out if pair[0].lower() != lower]
            out.append((name, value))
    return out


# What browsers strip from a URL before parsing it (WHATWG URL): C0 controls and spaces at
# either end, tab and newlines anywhere.
_URL_EDGES = "".join(map(chr, range(0x21)))
_URL_STRIPPED = str.maketrans("", "", "\t\n\r")


def browser_url_text(value: str) -> str:
    """`value` as a browser's URL parser sees it before it starts (WHATWG URL, basic parser)."""
    return value.strip(_URL_EDGES).translate(_URL_STRIPPED)


class DisguisedLocation(ValueError):
    """A CRM `Location` that a browser reads as another site only after cleaning it up."""


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")


def check_location(value: str) -> str:
    """`value` unless it is disguised: it differs from what a browser parses (tabs, newlines,
    backslashes, edge spaces) and what the browser parses leaves the site (`//host`, or a
    scheme). A CRM redirecting elsewhere on purpose writes a plain URL; `/`, a tab, then
    `\\evil.example` is an open redirect in disguise, and the gateway must not emit it."""
    text = browser_url_text(value).replace("\\", "/")
    if text == value:
        return value
    if text.startswith("//") or _SCHEME.match(text):
        raise DisguisedLocation(value)
    return value


def rewrite_location(value: str, origin: URL) -> str:
    """A redirect to the CRM's own origin becomes a path, so it stays on the gateway.

    `origin` is the upstream's scheme://host:port. The value is read as a browser reads it
    (tabs and newlines dropped, `\\` a `/`, any number of slashes after `http:`): a path a
    browser would take for `//host`, another origin, is never made; such a Location stays as
    the CRM sent it (it names the CRM's private origin). `http:next`, relative on the CRM's
    http origin, would name the host `next` on the gateway's https one: it becomes `./next`.
    Other Locations are returned unchanged; the kept path and query are the CRM's characters
    (no re-encoding, no normalising).
    """
    text = browser_url_text(value)
    scheme = f"{origin.scheme}:"
    if text[: len(scheme)].lower() != scheme:
        return value  # relative already, another scheme, or protocol-relative
    rest = text[len(scheme) :]
    authority = rest.lstrip("/\\")
    if len(rest) - len(authority) < 2:
        return _relative(rest) or value  # `http:x` is relative on an http page
    # The authority ends at the first of these; for http(s) browsers read `\\` as `/`.
    ends = [i for i in map(authority.find, "/\\?#") if i != -1]
    end = min(ends) if ends else len(authority)
    try:
        url = URL(f"{scheme}//{authority[:end]}")
    except ValueError:
        return value
    if (url.host, url.port) != (origin.host, origin.port):
        return value
    tail = authority[end:]
    path = tail if tail[:1] in ("/", "\\") else "/" + tail  # an http URL's path is never empty
    return _relative(path) or value


def _relative(rest: str) -> str | None:
    """A reference with the same meaning as `rest` after `http:` on an http page, or None:
    an absolute path (not `//`), a query or fragment, or a relative path made to start `./`
    so that no `name:` in it reads as a scheme."""
    if not rest:
        return None
    if rest[0] in "/\\":
        # Relative, two slashes (either way round) name another host: an open redirect.
        return None if rest[1:2] in ("/", "\\") else rest
    return rest if rest[0] in "?#" else "./" + rest


def set_cookie_name(value: str) -> str:
    return value.split("=", 1)[0].strip()


CLEAR_SITE_DATA = "Clear-Site-Data"
# What `"*"` stands for, less cookies (Clear-Site-Data §3.1; browsers ignore unknown types).
_CLEARED_WITHOUT_COOKIES = ('"cache"', '"storage"', '"executionContexts"')


def clear_site_data(value: str) -> str | None:
    """A CRM's `Clear-Site-Data` without the cookie-clearing types; None when none is left.

    `"cookies"` would delete the gateway's session and login cookies along with the CRM's
    (the gateway's origin is the CRM's, to the browser), and `"*"` includes cookies: it
    becomes the other types, so a CRM's logout still clears cache and storage.
    """
    kept: list[str] = []
    for item in value.split(","):
        token = item.strip()
        kind = token.strip('"').strip().lower()
        if kind == "cookies":
            continue
        types = _CLEARED_WITHOUT_COOKIES if kind == "*" else (token,)
        kept += [t for t in types if t and t not in kept]
    return ", ".join(kept) or None


def response_header_pairs(
    upstream: MultiMapping[str],
    *,
    origin: URL,
    request_id: str,
    is_gateway_cookie: CookiePredicate,
) -> list[tuple[str, str]]:
    """The headers to send to the client for a CRM response with `upstream` headers, in order.

    Several Set-Cookie headers stay several. A CRM cookie named like one of the gateway's is
    dropped: the CRM must not be able to overwrite or delete the gateway's session, nor clear
    it with `Clear-Site-Data`, nor change the gateway's HSTS. A list
    of pairs: aiohttp's responses copy the headers they are given into a multidict of their
    own, so a multidict built here would be built twice.
    """
    drop = _RESPONSE_DROP
    named = connection_tokens(upstream)
    if not named <= drop:  # `Connection: keep-alive` names nothing new
        drop = drop | named
    out: list[tuple[str, str]] = []
    for name, value in upstream.items():
        lower = name.lower()
        if lower in drop:
            continue
        if lower == "location":
            out.append((name, check_location(rewrite_location(value, origin))))
        elif lower == "set-cookie":
            if not is_gateway_cookie(set_cookie_name(value)):
                out.append((name, value))
        elif lower == "clear-site-data":
            if (cleared := clear_site_data(value)) is not None:
                out.append((name, cleared))
        else:
            out.append((name, value))
    out.append((X_REQUEST_ID, request_id))  # the CRM's own was dropped above
    return out
