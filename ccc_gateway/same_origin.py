"""Cross-site request protection for the gateway's state-changing and API routes.

The softphone API is used only from the gateway's own pages. A browser says where a request
comes from in `Sec-Fetch-Site` (all current browsers) and `Origin` (every POST); a request
from another site is refused even with a valid session cookie, so a malicious page cannot
dial out on an agent's line. A request that carries neither header is not from a browser
page we can vouch for and is refused too.
"""

from __future__ import annotations

from aiohttp import web
from yarl import URL

from .errors import Forbidden


def origin_of(url: URL) -> str:
    return str(url.origin())


def check_same_origin(request: web.Request, public_origin: str) -> None:
    """Raise 403 CrossSiteRequest unless the request comes from this gateway's own pages."""
    site = request.headers.get("Sec-Fetch-Site")
    origin = request.headers.get("Origin")
    if site is not None and site != "same-origin":
        raise _cross_site(f"Sec-Fetch-Site is {site[:30]!r}")
    # The request's own origin is only worked out when the public one does not match.
    if origin is not None and origin != public_origin and origin != _request_origin(request):
        raise _cross_site(f"Origin {origin[:100]!r} is not this gateway")
    if site is None and origin is None:
        raise _cross_site("the request does not say where it comes from (no Origin header)")


def _request_origin(request: web.Request) -> str:
    host = request.headers.get("Host", "")
    return f"{request.scheme}://{host}" if host else ""


def _cross_site(why: str) -> Forbidden:
    return Forbidden(f"Cross-site request refused: {why}.", error_code="CrossSiteRequest")
