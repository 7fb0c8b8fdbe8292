"""The CRM's Content-Security-Policy, read and minimally rewritten to admit the widget.

Pure functions over header text (no aiohttp): parse a policy, find the directive that
governs scripts, styles or frames (CSP Level 3 fallback chains), add the smallest grant the
widget needs (softphone/inject.py explains which), and tell whether a page may be framed by
its own origin (`frame-ancestors`, `X-Frame-Options`). See docs/softphone.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

# The widget's two files, which a rewritten policy names exactly.
WIDGET_SCRIPT = "/aliyun/softphone/widget.js"
WIDGET_STYLE = "/aliyun/softphone/widget.css"
CSP = "Content-Security-Policy"
X_FRAME_OPTIONS = "X-Frame-Options"
SELF = "'self'"

# The fallback chains of CSP Level 3: the first directive present governs.
SCRIPT_CHAIN = ("script-src-elem", "script-src", "default-src")
STYLE_CHAIN = ("style-src-elem", "style-src", "default-src")
FRAME_CHAIN = ("frame-src", "child-src", "default-src")

_NONCE = re.compile(r"^'(?i:nonce)-([A-Za-z0-9+/_=-]+)'$")

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


def _has(sources: list[str], keyword: str) -> bool:
    return any(s.lower() == keyword for s in sources)


def admit(policy: Policy, chain: tuple[str, ...], add_as: str, source: str) -> Policy:
    """`source` added to the directive governing `chain[0]`.

    When a fallback that also governs other things (`default-src`, `child-src` for workers)
    decides, a new `add_as` directive is added as a copy of it plus `source` instead, so
    nothing else that falls back to it is loosened.
    """
    governing = _governing(policy, chain)
    if governing is None:
        return policy
    name, sources = governing
    kept = [s for s in sources if s.lower() != "'none'"]  # 'none' next to a source is invalid
    widened = [*kept, source]
    if name in (chain[0], add_as):
        return [(n, widened if n == name else s) for n, s in policy]
    return [*policy, (add_as, widened)]


def script_nonce(text: str) -> tuple[str | None, bool]:
    """The nonce of the list governing scripts in one policy, and whether a nonce is the only
    way in (`'strict-dynamic'`: host sources and `'self'` are ignored, hashes need `integrity`).
    """
    governing = _governing(parse_policy(text), SCRIPT_CHAIN)
    if governing is None:
        return None, False
    return nonce_of(governing[1]), _has(governing[1], "'strict-dynamic'")


def rewrite_policy(text: str, origin: str, nonce: str | None) -> str:
    """The CRM policy made to admit the widget, whose tags carry `nonce` (if not None).

    `origin` is the gateway's public origin (`https://host[:port]`), for the widget's exact
    URLs. A list that already admits same-origin files, or holds `nonce`, is left alone;
    under `'strict-dynamic'` the nonce is added; else the widget's URL. Frames get `'self'`.
    The text comes back byte-identical when nothing had to change.
    """
    policy = parse_policy(text)
    changed = False
    for chain, add_as, path in (
        (SCRIPT_CHAIN, "script-src", WIDGET_SCRIPT),
        (STYLE_CHAIN, "style-src", WIDGET_STYLE),
    ):
        governing = _governing(policy, chain)
        if governing is None or allows_same_origin(governing[1]):
            continue
        sources = governing[1]
        if nonce is not None and nonce in (nonce_of([s]) for s in sources):
            continue
        if chain is SCRIPT_CHAIN and _has(sources, "'strict-dynamic'"):
            if nonce is None:
                continue  # nothing would admit it; the caller always passes a nonce here
            source = f"'nonce-{nonce}'"
        else:
            source = origin + path
        policy = admit(policy, chain, add_as, source)
        changed = True
    governing = _governing(policy, FRAME_CHAIN)
    if governing is not None and not allows_same_origin(governing[1]):
        # The softphone iframe and the CRM's own pages in the content frame: any same-origin
        # page, so 'self' is the grant here.
        policy = admit(policy, FRAME_CHAIN, "frame-src", SELF)
        changed = True
    return format_policy(policy) if changed else text


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


def _frame_ancestors(text: str) -> tuple[str, ...] | None:
    """The `frame-ancestors` sources of one policy text, or None without that directive."""
    sources = dict(parse_policy(text)).get("frame-ancestors")
    return None if sources is None else tuple(sources)
