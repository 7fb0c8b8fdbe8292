"""Puts the softphone widget into the CRM's HTML pages (the proxy's `ResponseFilter`).

Only a person's page navigation gets the widget: a 200 `text/html` answer to a GET that is not
XHR/fetch, not a download and not a byte range, in an ASCII-compatible encoding.

Where the tags go is decided by a small HTML tokenizer (`scan_page`): before a real `</body>`
end tag, never inside a script, style, textarea, title, comment, attribute or `<template>`;
else in the `<head>` (the script is deferred); else at the end of a page that ends outside
any such region; else nowhere. A CRM page holds its users' text, and tags put inside a script
string would end that script and run the rest of it as HTML.

The CRM's Content-Security-Policy is kept and changed only where it would block the widget,
by the smallest grant: the page's own nonce on our tags where it has one, a fresh nonce of
ours where `'strict-dynamic'` makes URLs meaningless, else the widget's two exact URLs — never
a bare `'self'` for scripts or styles, which would admit every script the CRM's origin serves.
Frames get `'self'`: the softphone and the CRM's own pages are framed. `'unsafe-inline'` is
never added, because the widget has no inline code. The CSP helpers are pure functions over
header text (softphone/csp.py); the tokenizer is softphone/page_scan.py.

The widget's script tag also says whether the CRM lets its pages be framed by their own origin
(`data-ccc-frame="allowed"` or `"refused"`, from `X-Frame-Options` and CSP `frame-ancestors`):
the widget keeps a call alive across CRM navigations by showing the CRM in a same-origin
content frame, and falls back to ordinary navigation when the CRM forbids that (widget.js).

Not injected: the CRM's login page (`upstream.login_path`), where no agent works yet and
which the softphone's sign-in popup may show. On pages that get the widget, a
`Cross-Origin-Opener-Policy: same-origin` becomes `same-origin-allow-popups`: the strict value
cuts the softphone's sign-in popup off from its opener, so the popup could not report back
(the popup's own signal over BroadcastChannel covers sign-in pages that cut it themselves,
static/signed-in.js). A page that also sends `Cross-Origin-Embedder-Policy` keeps its COOP:
relaxing it would end the cross-origin isolation the CRM asked for.
"""

from __future__ import annotations

import logging
import re
import secrets

from aiohttp import hdrs, web
from multidict import CIMultiDict, CIMultiDictProxy, istr
from yarl import URL

from ccc_gateway.http.origin import request_origin
from ccc_gateway.softphone.csp import (
    CSP,
    WIDGET_SCRIPT,
    WIDGET_STYLE,
    X_FRAME_OPTIONS,
    allows_same_origin_framing,
    rewrite_policy,
    script_nonce,
    x_frame_options_allow_self,
)
from ccc_gateway.softphone.page_scan import (
    insert_at,
    is_ascii_compatible_label,
    is_ascii_compatible_page,
    scan_page,
)

log = logging.getLogger(__name__)

_NAVIGATION_DESTS = frozenset({"document", "iframe", "frame"})
# istr, as aiohttp's own header names are: a multidict lower-cases a plain str key per lookup.
_X_REQUESTED_WITH = istr("X-Requested-With")
_SEC_FETCH_DEST = istr("Sec-Fetch-Dest")
COOP = istr("Cross-Origin-Opener-Policy")
_COEP = istr("Cross-Origin-Embedder-Policy")
# What may stand for our origin in a CSP source expression (scheme, host, port; nothing else).
_CSP_ORIGIN = re.compile(r"https?://(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])(?::[0-9]+)?")
_CHARSET_PARAM = re.compile(r"charset\s*=\s*[\"']?([^\"';\s]*)", re.IGNORECASE)


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


def _is_ascii_html(content_type: str) -> bool:
    """`text/html` in an ASCII-compatible charset."""
    if content_type.split(";")[0].strip().lower() != "text/html":
        return False
    # The tags inserted are ASCII bytes; they would corrupt UTF-16 or UTF-32 text.
    charset = _CHARSET_PARAM.search(content_type)
    return charset is None or is_ascii_compatible_label(charset.group(1))


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


def relax_opener_policy(headers: CIMultiDict[str]) -> None:
    """`same-origin` COOP to `same-origin-allow-popups` (parameters kept), unless COEP is set."""
    values = headers.getall(COOP, [])
    if len(values) != 1 or _COEP in headers:
        return  # none, or several (browsers then ignore the header): nothing to relax
    value, sep, params = values[0].partition(";")
    if value.strip().lower() == "same-origin":
        headers[COOP] = "same-origin-allow-popups" + sep + params


class WidgetInjector:
    """The `ResponseFilter` the proxy calls for every CRM answer.

    The page stays bytes throughout: only ASCII-compatible encodings are touched, in which
    the ASCII markers searched for and the ASCII tags inserted mean what they say.
    `login_path`: the CRM's login page, which never gets the widget (any query items it has
    must be in the request's query too: PHP CRMs log in at `/index.php?...`).
    """

    def __init__(self, login_path: str | None = None) -> None:
        self._login = URL(login_path) if login_path else None

    def wants(self, request: web.Request, status: int, headers: CIMultiDictProxy[str]) -> bool:
        if self._is_login_page(request):
            return False
        return is_page_navigation(request) and is_injectable(status, headers)

    def _is_login_page(self, request: web.Request) -> bool:
        """The login path, with the query items it names (`/index.php?action=Login`, PHP)."""
        login = self._login
        if login is None or request.path != login.path:
            return False
        return all(request.query.getall(k, []).count(v) for k, v in login.query.items())

    def transform(self, request: web.Request, body: bytes, headers: CIMultiDict[str]) -> bytes:
        if not is_ascii_compatible_page(body):
            return body
        scan = scan_page(body)
        if scan.injected or scan.at < 0:
            return body  # already there (the CRM, or a second gateway), or nowhere safe
        relax_opener_policy(headers)
        policies = headers.getall(CSP, [])
        if not policies:
            # The usual page: nothing to rewrite, no nonce, and X-Frame-Options alone says
            # whether it may be framed (what allows_same_origin_framing finds without a CSP).
            frameable = x_frame_options_allow_self(headers.getall(X_FRAME_OPTIONS, []))
            return insert_at(body, scan.at, _PLAIN_TAGS[frameable])
        # Our origin names the widget's URLs in the policy and may match a frame-ancestors
        # host-source. Framing is read before the rewrite, which never touches frame-ancestors.
        origin = request_origin(request)
        if origin is None or not _CSP_ORIGIN.fullmatch(str(origin)):
            return body  # the widget could not be named in the policy
        frameable = allows_same_origin_framing(headers, origin)
        nonce, strict = None, False
        for text in policies:
            policy_nonce, policy_strict = script_nonce(text)
            nonce = nonce or policy_nonce
            strict = strict or policy_strict
        if strict and nonce is None:
            # 'strict-dynamic' with hashes only: a nonce of our own, new for every page (one
            # an attacker could learn would admit their script as well).
            nonce = secrets.token_urlsafe(18)
        rewritten = [rewrite_policy(text, str(origin), nonce) for text in policies]
        if rewritten != policies:
            headers.popall(CSP)
            for text in rewritten:
                headers.add(CSP, text)
        return insert_at(body, scan.at, widget_tags(nonce, frameable=frameable))
