"""Puts the softphone widget into the CRM's HTML pages (the proxy's `ResponseFilter`).

Only a person's page navigation gets the widget: a 200 `text/html` answer to a GET that is not
XHR/fetch, not a download and not a byte range. The CRM's Content-Security-Policy is kept and
changed only where it would block the widget: a same-origin script and stylesheet, and a
same-origin iframe (the softphone). Nothing else is loosened; `'unsafe-inline'` is never added,
because the widget has no inline code. The CSP helpers are pure functions over header text.

The widget's script tag also says whether the CRM lets its pages be framed by their own origin
(`data-ccc-frame="allowed"` or `"refused"`, from `X-Frame-Options` and CSP `frame-ancestors`):
the widget keeps a call alive across CRM navigations by showing the CRM in a same-origin
content frame, and falls back to ordinary navigation when the CRM forbids that (widget.js).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable

from aiohttp import hdrs, web
from multidict import CIMultiDict, CIMultiDictProxy, istr
from yarl import URL

log = logging.getLogger(__name__)

WIDGET_SCRIPT = "/aliyun/softphone/widget.js"
WIDGET_STYLE = "/aliyun/softphone/widget.css"
CSP = "Content-Security-Policy"
X_FRAME_OPTIONS = "X-Frame-Options"
SELF = "'self'"

# The fallback chains of CSP Level 3: the first directive present governs.
SCRIPT_CHAIN = ("script-src-elem", "script-src", "default-src")
STYLE_CHAIN = ("style-src-elem", "style-src", "default-src")
FRAME_CHAIN = ("frame-src", "child-src", "default-src")

# Distinct CSP header texts remembered (rewrites, frame-ancestors): a CRM sends a handful;
# one with a fresh nonce per page just misses, and the bound keeps that from growing.
_POLICY_CACHE_SIZE = 256

_NAVIGATION_DESTS = frozenset({"document", "iframe", "frame"})
# istr, as aiohttp's own header names are: a multidict lower-cases a plain str key per lookup.
_X_REQUESTED_WITH = istr("X-Requested-With")
_SEC_FETCH_DEST = istr("Sec-Fetch-Dest")
_SINGLE_BYTE_UNSAFE = re.compile(r"charset\s*=\s*\"?(utf-?16|utf-?32)", re.IGNORECASE)
_NONCE = re.compile(r"^'nonce-([A-Za-z0-9+/_=-]+)'$")

Policy = list[tuple[str, list[str]]]


# ---------------------------------------------------------------- CSP, pure functions


def parse_policy(text: str) -> Policy:
    """Directives in order, names lower-cased; a repeated directive is ignored (as browsers do)."""
    policy: Policy = []
    seen: set[str] = set()
    for part in text.split(";"):
        tokens = part.split()
        if not tokens:
            continue
        name = tokens[0].lower()
        if name in seen:
            continue
        seen.add(name)
        policy.append((name, tokens[1:]))
    return policy


def format_policy(policy: Policy) -> str:
    return "; ".join(" ".join([name, *sources]) for name, sources in policy)


def _governing(policy: Policy, chain: Iterable[str]) -> tuple[str, list[str]] | None:
    directives = dict(policy)
    for name in chain:
        if name in directives:
            return name, directives[name]
    return None


def allows_same_origin(sources: list[str], *, secure: bool = True) -> bool:
    """Whether a source list admits a same-origin URL (without a nonce or hash).

    With `'strict-dynamic'` host and `'self'` sources are ignored, so only a nonce would do.
    """
    lowered = [s.lower() for s in sources]
    if "'strict-dynamic'" in lowered:
        return False
    # `*` and `https:` match our own https origin too; `http:` does as well (it upgrades).
    return any(s in (SELF, "*", "https:") or (s == "http:" and not secure) for s in lowered)


def nonce_of(sources: list[str]) -> str | None:
    for source in sources:
        match = _NONCE.match(source)
        if match:
            return match.group(1)
    return None


def admit_self(policy: Policy, chain: tuple[str, ...], add_as: str) -> tuple[Policy, bool]:
    """Make the directive governing `chain[0]` admit same-origin; (new policy, changed).

    When a fallback that also governs other things (`default-src`, `child-src` for workers)
    decides, a new `add_as` directive is added as a copy of it plus `'self'` instead, so
    nothing else that falls back to it is loosened.
    """
    governing = _governing(policy, chain)
    if governing is None or allows_same_origin(governing[1]):
        return policy, False
    name, sources = governing
    if "'strict-dynamic'" in (s.lower() for s in sources):
        return policy, False  # 'self' would be ignored; the caller uses the nonce instead
    kept = [s for s in sources if s.lower() != "'none'"]  # 'none' next to a source is invalid
    widened = [*kept, SELF]
    if name in (chain[0], add_as):
        return [(n, widened if n == name else s) for n, s in policy], True
    return [*policy, (add_as, widened)], True


@functools.lru_cache(maxsize=_POLICY_CACHE_SIZE)
def rewrite_policy(text: str) -> tuple[str, str | None]:
    """The CRM policy made to admit the widget, and the nonce to put on its tags, if needed."""
    policy = parse_policy(text)
    nonce = None
    for chain in (SCRIPT_CHAIN, STYLE_CHAIN):
        governing = _governing(policy, chain)
        if governing is not None and "'strict-dynamic'" in (s.lower() for s in governing[1]):
            nonce = nonce or nonce_of(governing[1])
    changed = False
    for chain, add_as in (
        (SCRIPT_CHAIN, "script-src"),
        (STYLE_CHAIN, "style-src"),
        (FRAME_CHAIN, "frame-src"),
    ):
        policy, did = admit_self(policy, chain, add_as)
        changed = changed or did
    return (format_policy(policy) if changed else text), nonce


# ---------------------------------------------------------------- framing by our own origin

_DEFAULT_PORTS = {"http": 80, "https": 443}
_HOST_SOURCE = re.compile(
    r"^(?:(?P<scheme>[a-z][a-z0-9+.-]*)://)?(?P<host>\*|(?:\*\.)?[a-z0-9.-]+)"
    r"(?::(?P<port>\*|[0-9]+))?(?:/.*)?$"
)


def _source_matches_origin(source: str, origin: URL) -> bool:
    """Whether one CSP host-source (`crm.example.com`, `https://*.example.com:8443`) matches."""
    match = _HOST_SOURCE.match(source.lower())
    if match is None or origin.host is None or origin.scheme not in _DEFAULT_PORTS:
        return False
    scheme = match.group("scheme")
    # A scheme-less source takes the protected page's scheme; http: also matches https.
    upgraded = (scheme, origin.scheme) == ("http", "https")
    if scheme is not None and scheme != origin.scheme and not upgraded:
        return False
    host, own_host = match.group("host"), origin.host.lower()
    wildcard = host.startswith("*.") and own_host.endswith(host[1:])
    if host not in ("*", own_host) and not wildcard:
        return False
    port = match.group("port")
    own_port = origin.port or _DEFAULT_PORTS[origin.scheme]
    if port is None:  # CSP3 "port-part matches": empty means the page scheme's default port
        return own_port == _DEFAULT_PORTS[origin.scheme]
    return port == "*" or int(port) == own_port


def frame_ancestors_allow_self(sources: Iterable[str], origin: URL | None) -> bool:
    """Whether a `frame-ancestors` source list admits a page of `origin` framing it."""
    for source in (s.lower() for s in sources):
        # Our origin is https; an `http:` scheme source matches its https upgrade (CSP3).
        if source in (SELF, "*", "https:", "http:"):
            return True
        if source == "'none'" or source.startswith("'") or source.endswith(":"):
            continue  # keywords other than 'self' (and other schemes) do not name an origin
        if origin is not None and _source_matches_origin(source, origin):
            return True
    return False


def x_frame_options_allow_self(values: list[str]) -> bool:
    """Whether `X-Frame-Options` lets a same-origin page frame this one (HTML §7.1.6 steps).

    DENY refuses; SAMEORIGIN admits our own origin; conflicting values refuse; an unknown or
    obsolete value (ALLOW-FROM) is ignored, as browsers do.
    """
    if not values:
        return True  # the usual case: no header at all
    options = {v.strip().lower() for value in values for v in value.split(",") if v.strip()}
    if len(options) > 1:
        return not options & {"deny", "allowall", "sameorigin"}
    return options != {"deny"}


def allows_same_origin_framing(
    headers: CIMultiDictProxy[str] | CIMultiDict[str], origin: URL | None
) -> bool:
    """Whether a page with these response headers may be shown in a frame of its own origin.

    Every enforced CSP with `frame-ancestors` must admit it; a `frame-ancestors` anywhere makes
    browsers ignore `X-Frame-Options`. Report-only policies never block.
    """
    governed = False
    for text in headers.getall(CSP, []):
        sources = _frame_ancestors(text)
        if sources is not None:
            governed = True
            if not frame_ancestors_allow_self(sources, origin):
                return False
    if governed:
        return True
    return x_frame_options_allow_self(headers.getall(X_FRAME_OPTIONS, []))


@functools.lru_cache(maxsize=_POLICY_CACHE_SIZE)
def _frame_ancestors(text: str) -> tuple[str, ...] | None:
    """The `frame-ancestors` sources of one policy text, or None without that directive."""
    sources = dict(parse_policy(text)).get("frame-ancestors")
    return None if sources is None else tuple(sources)  # a tuple: the cache shares it


def request_origin(request: web.Request) -> URL | None:
    """The origin the browser sees for this page (the gateway's own), if it can be told."""
    try:
        origin = request.url.origin()
    except ValueError:
        return None
    return origin if origin.host else None


# ---------------------------------------------------------------- which answers


def is_page_navigation(request: web.Request) -> bool:
    """A browser loading a page (top-level or framed), not a script fetching data."""
    headers = request.headers
    if request.method != hdrs.METH_GET or _X_REQUESTED_WITH in headers:
        return False
    if hdrs.RANGE in headers:
        return False
    dest = headers.get(_SEC_FETCH_DEST)
    if dest is not None:
        return dest.strip().lower() in _NAVIGATION_DESTS
    return "text/html" in headers.get(hdrs.ACCEPT, "").lower()


def is_injectable(status: int, headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> bool:
    """A whole HTML page: 200, `text/html`, not an attachment, in an ASCII-compatible charset."""
    if status != 200 or not _is_ascii_html(headers.get(hdrs.CONTENT_TYPE, "")):
        return False
    disposition = headers.get(hdrs.CONTENT_DISPOSITION)
    return disposition is None or not disposition.strip().lower().startswith("attachment")


@functools.lru_cache(maxsize=_POLICY_CACHE_SIZE)
def _is_ascii_html(content_type: str) -> bool:
    """`text/html` in an ASCII-compatible charset. Remembered: a CRM sends one or two
    Content-Type values, and their parsing (a split, a regex) ran for every page."""
    if content_type.split(";")[0].strip().lower() != "text/html":
        return False
    # The tags inserted are ASCII bytes; they would corrupt UTF-16 or UTF-32 text.
    return _SINGLE_BYTE_UNSAFE.search(content_type) is None


def widget_tags(nonce: str | None = None, *, frameable: bool = True) -> bytes:
    if nonce is None:
        return _PLAIN_TAGS[frameable]
    return _tags(nonce, frameable)


def _tags(nonce: str | None, frameable: bool) -> bytes:
    attribute = f' nonce="{nonce}"' if nonce else ""
    frame = "allowed" if frameable else "refused"
    return (
        f'<link rel="stylesheet" href="{WIDGET_STYLE}"{attribute}>'
        f'<script src="{WIDGET_SCRIPT}" defer data-ccc-frame="{frame}"{attribute}></script>'
    ).encode("ascii")


# The tags of every page whose CSP needs no nonce: two byte strings, made once.
_PLAIN_TAGS = {frameable: _tags(None, frameable) for frameable in (True, False)}
_WIDGET_MARK = WIDGET_SCRIPT.encode("ascii")
_BODY_END = b"</body"
_BODY_END_SPELLINGS = (_BODY_END, _BODY_END.upper())


def find_body_end(body: bytes) -> int:
    """The offset of the last `</body` in any case, or -1 when there is none."""
    # Pages spell it in lower (or upper) case, near their end, where rfind starts looking:
    # a few bytes' work instead of lower-casing (copying) the whole page. Only a later one
    # in another case could be the last instead, so only what follows is lower-cased; with
    # neither spelling found, that is the whole page, as before.
    for spelling in _BODY_END_SPELLINGS:
        at = body.rfind(spelling)
        if at >= 0:
            break
    start = at + 1
    later = body[start:].lower().rfind(_BODY_END)
    return start + later if later >= 0 else at


def insert_before_body_end(body: bytes, tags: bytes) -> bytes:
    """`tags` before the last `</body>` (any case), or at the end when there is none."""
    at = find_body_end(body)
    if at < 0:
        return body + tags
    # memoryview slices are views: the page's bytes are copied once, by the join.
    view = memoryview(body)
    return b"".join((view[:at], tags, view[at:]))


class WidgetInjector:
    """The `ResponseFilter` the proxy calls for every CRM answer.

    The page stays bytes throughout: `is_injectable` admits only ASCII-compatible charsets,
    in which the ASCII markers searched for and the ASCII tags inserted mean what they say.
    """

    def wants(self, request: web.Request, status: int, headers: CIMultiDictProxy[str]) -> bool:
        return is_page_navigation(request) and is_injectable(status, headers)

    def transform(self, request: web.Request, body: bytes, headers: CIMultiDict[str]) -> bytes:
        if _WIDGET_MARK in body:
            return body  # the CRM (or a second gateway) already carries it
        policies = headers.getall(CSP, [])
        if not policies:
            # The usual page: nothing to rewrite, no nonce, and X-Frame-Options alone says
            # whether it may be framed (what allows_same_origin_framing finds without a CSP).
            frameable = x_frame_options_allow_self(headers.getall(X_FRAME_OPTIONS, []))
            return insert_before_body_end(body, _PLAIN_TAGS[frameable])
        # Our origin matters only to a CSP frame-ancestors host-source. Read before the
        # rewrite below, which never touches frame-ancestors anyway.
        origin = request_origin(request)
        frameable = allows_same_origin_framing(headers, origin)
        nonce = None
        rewritten = []
        for text in policies:
            new_text, policy_nonce = rewrite_policy(text)
            rewritten.append(new_text)
            nonce = nonce or policy_nonce
        if rewritten != policies:
            headers.popall(CSP)
            for text in rewritten:
                headers.add(CSP, text)
        return insert_before_body_end(body, widget_tags(nonce, frameable=frameable))
