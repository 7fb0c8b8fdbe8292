"""Security headers added to every response (pages, JSON, static files and errors)."""

from __future__ import annotations

from aiohttp import hdrs, web

# No inline script or style anywhere in the CRM, so 'self' is enough. The gateway's injected
# widget script and softphone frame are served from the same origin. frame-ancestors 'self'
# lets the gateway's same-origin pages frame the CRM but no other site (clickjacking).
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'self'"
)

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "SAMEORIGIN",  # for browsers that predate frame-ancestors
    "Referrer-Policy": "same-origin",  # customer URLs carry phone numbers and names
}


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: set the headers unless a handler chose its own."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith("/static/"):
        # Customer data and per-session CSRF tokens must not linger in shared caches.
        response.headers.setdefault(hdrs.CACHE_CONTROL, "no-store")
