"""Turn every failure into a proper page: HTML for browsers, JSON under /api/.

aiohttp's own 404/405/413 answers are plain text; the CRM shows them in its layout instead,
and an unexpected exception becomes a logged 500 page without a traceback in the browser.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from .i18n import CATALOGS, language
from .layout import error_response

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _render(request: web.Request, exc: web.HTTPException) -> web.StreamResponse:
    if request.path.startswith("/api/"):
        error = exc.reason.lower().replace(" ", "_")
        response: web.StreamResponse = web.json_response({"error": error}, status=exc.status)
    else:
        catalog = CATALOGS[language(request)]
        status = str(exc.status) if f"error.{exc.status}" in catalog else "other"
        title = catalog[f"error.title.{status}"]
        response = error_response(request, exc.status, title, catalog[f"error.{status}"])
    if hdrs.ALLOW in exc.headers:  # 405 must still say which methods are allowed
        response.headers[hdrs.ALLOW] = exc.headers[hdrs.ALLOW]
    return response


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render 4xx/5xx HTTP exceptions and crashes as pages; let redirects through."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _render(request, exc)
    except Exception:
        log.exception("unhandled error for %s %s", request.method, request.path)
        return _render(request, web.HTTPInternalServerError())
