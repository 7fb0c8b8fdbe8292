"""Cross-site request protection for the gateway's state-changing and API routes.

The softphone API is used only from the gateway's own pages. A browser says where a request
comes from in `Sec-Fetch-Site` (all current browsers) and `Origin` (every POST); a request
from another site is refused even with a valid session cookie, so a malicious page cannot
dial out on an agent's line. A request that carries neither header is not from a browser
page we can vouch for and is refused too.

Same origin is not enough for the API: script-free HTML inside a CRM record (`<img src>`, a
link, a form) is same-origin too. `check_script_request` therefore also wants the request to
come from script (the SDK's XHR): `Sec-Fetch-Mode: cors` or `same-origin` with
`Sec-Fetch-Dest: empty`, which browsers set themselves on fetch/XHR and never on images,
navigations or form submissions; or the `X-CCC-Softphone` header, which the softphone page
gives the SDK through its `ajaxHeaders` option (for browsers without Sec-Fetch-*): HTML
cannot set a header at all, and another site's script cannot set this one without a CORS
preflight, which the gateway never grants.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web
from yarl import URL

from ccc_gateway.http.errors import Forbidden

SCRIPT_HEADER: Final = "X-CCC-Softphone"  # its value is "1"; only its presence is checked
SCRIPT_HEADER_VALUE: Final = "1"
_SCRIPT_MODES: Final = ("cors", "same-origin")


def check_same_origin(request: web.Request, public_origin: str) -> None:
    """Raise 403 CrossSiteRequest unless the request comes from this gateway's own pages."""
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if site is not None and site != "same-origin":
        raise _cross_site(f"Sec-Fetch-Site is {site[:30]!r}")
    # The request's own origin is only worked out when the public one does not match.
    if origin is not None and origin != public_origin and origin != _text(request_origin(request)):
        raise _cross_site(f"Origin {origin[:100]!r} is not this gateway")
    if site is None and origin is None:
        raise _cross_site("the request does not say where it comes from (no Origin header)")


def check_script_request(request: web.Request) -> None:
    """Raise 403 CrossSiteRequest unless the request was made by script (fetch/XHR).

    An image, a navigation or a form submission is refused even from our own origin.
    """
    headers = request.headers
    if SCRIPT_HEADER in headers:
        return
    mode = headers.get("Sec-Fetch-Mode")
    if mode in _SCRIPT_MODES and headers.get("Sec-Fetch-Dest") == "empty":
        return
    if mode is None:
        why = f"the request is not from script (no Sec-Fetch-Mode, no {SCRIPT_HEADER} header)"
    else:
        dest = headers.get("Sec-Fetch-Dest", "")
        why = f"the request is not from script (Sec-Fetch-Mode {mode[:30]!r}, "
        why += f"Sec-Fetch-Dest {dest[:30]!r})"
    raise _cross_site(why)


def request_origin(request: web.Request) -> URL | None:
    """The origin the browser sees for this request (scheme and Host), if it can be told.

    The one spelling of "the request's own origin": the same-origin check above and the
    widget's CSP rewrite (softphone/inject.py) both use it. yarl normalises it as browsers
    write an Origin header: lower-case host, default port left out.
    """
    try:
        origin = request.url.origin()
    except ValueError:
        return None
    return origin if origin.host else None


def _text(origin: URL | None) -> str | None:
    return None if origin is None else str(origin)


def _cross_site(why: str) -> Forbidden:
    return Forbidden(f"Cross-site request refused: {why}.", error_code="CrossSiteRequest")
