"""Request-wide concerns: request ids, the access log, error rendering, response headers.

Errors are rendered in one place so every route answers the same way: the contract's JSON
body `{"requestId", "errorCode", "message"}` for programs (the softphone SDK, XHR, curl) and a
readable page for a person's browser navigation. A client's mistake never becomes a 500.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from .errors import GatewayError
from .keys import REQUEST_ID
from .log import ACCESS_LOGGER
from .pages import page

log = logging.getLogger(__name__)
access_log = logging.getLogger(ACCESS_LOGGER)

_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def new_request_id() -> str:
    """32 random hex digits, as wide as uuid4().hex without building a UUID (7× cheaper)."""
    return os.urandom(16).hex()


def request_id_of(request: web.Request) -> str:
    return str(request.get(REQUEST_ID, ""))


def wants_html(request: web.Request) -> bool:
    """A person's page navigation (show a page) rather than a program (give JSON)."""
    if request.headers.get("Sec-Fetch-Mode") == "navigate":
        return True
    if request.headers.get("X-Requested-With", "").lower() == "xmlhttprequest":
        return False
    accept = request.headers.get(hdrs.ACCEPT, "")
    return "text/html" in accept


def error_response(request: web.Request, error: GatewayError) -> web.Response:
    if wants_html(request):
        detail = f"Request id {request_id_of(request)}" if request_id_of(request) else None
        link = error.extra.get("login")
        return page(
            _TITLES.get(error.status, "Something went wrong"),
            error.message,
            status=error.status,
            link=(str(link), "Sign in to Alibaba Cloud") if link else None,
            detail=detail,
        )
    body = {
        "requestId": getattr(error, "pop_request_id", None) or request_id_of(request),
        "errorCode": error.error_code,
        "message": error.message,
        **error.extra,
    }
    response = web.json_response(body, status=error.status)
    response.headers["Cache-Control"] = "no-store"
    return response


_TITLES = {
    400: "Bad request",
    401: "Sign-in needed",
    403: "Not allowed",
    404: "Not found",
    405: "Method not allowed",
    413: "Too large",
    502: "The service behind the gateway is not answering",
    503: "Temporarily unavailable",
    504: "The service behind the gateway is too slow",
}

_HTTP_CODES = {
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "PayloadTooLarge",
    400: "BadRequest",
}


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Assign the request id, render errors, write the access log line."""
    request_id = request.headers.get("X-Request-Id")
    if request_id is None or not _SANE_REQUEST_ID.match(request_id):
        request_id = new_request_id()
    request[REQUEST_ID] = request_id
    started = time.monotonic()
    response: web.StreamResponse | None = None
    try:
        response = await _render_errors(request, handler)
        return response
    finally:
        _log_access(request, response, time.monotonic() - started)


async def _render_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GatewayError as error:
        return error_response(request, error)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        http_error = GatewayError(exc.reason, error_code=_HTTP_CODES.get(exc.status, "HttpError"))
        http_error.status = exc.status
        response = error_response(request, http_error)
        if exc.status == 405 and hdrs.ALLOW in exc.headers:
            response.headers[hdrs.ALLOW] = exc.headers[hdrs.ALLOW]
        return response


def _log_access(request: web.Request, response: web.StreamResponse | None, duration: float) -> None:
    if not access_log.isEnabledFor(logging.INFO):
        return
    status = response.status if response is not None else 499
    # A plain Response is written after this middleware returns: its length is known already.
    size = 0
    if response is not None:
        size = response.body_length if response.prepared else (response.content_length or 0)
    access_log.info(
        "%s %s %d",
        request.method,
        request.path,
        status,
        extra={
            "fields": {
                "request_id": request_id_of(request),
                "duration_ms": round(duration * 1000, 1),
                "bytes": size,
                "remote": request.remote,
            }
        },
    )


def response_headers(
    hsts_max_age: float,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """An on_response_prepare hook: it runs for streamed and websocket answers too."""
    hsts = f"max-age={int(hsts_max_age)}; includeSubDomains" if hsts_max_age > 0 else ""

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        request_id = request_id_of(request)
        if request_id:
            response.headers["X-Request-Id"] = request_id
        if hsts and request.secure:
            response.headers.setdefault("Strict-Transport-Security", hsts)

    return add_headers
