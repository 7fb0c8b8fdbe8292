"""Request-wide concerns: request ids, the access log, error rendering, response headers.

Errors are rendered in one place so every route answers the same way: the contract's JSON
body `{"requestId", "errorCode", "message"}` for programs (the softphone SDK, XHR, curl) and a
readable page for a person's browser navigation. A client's mistake never becomes a 500.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web, web_response
from aiohttp.typedefs import Middleware

from ccc_gateway.http.errors import GatewayError, MethodNotAllowed
from ccc_gateway.http.pages import error_page
from ccc_gateway.http.request_id import X_REQUEST_ID, from_client
from ccc_gateway.http.request_id import of as request_id_of
from ccc_gateway.keys import REQUEST_ID
from ccc_gateway.ops.log import ACCESS_LOGGER
from ccc_gateway.ops.metrics import Metrics

log = logging.getLogger(__name__)
access_log = logging.getLogger(ACCESS_LOGGER)

# What every answer aiohttp makes says in `Server` (unless it already has one, as a proxied
# CRM page may): no versions to look vulnerabilities up by. aiohttp's default is
# "Python/3.x aiohttp/3.y". Its module constant is replaced rather than a header set in a hook,
# because the parser's own 400s, the HTTP redirect and the metrics listeners pass through no
# application hook; the gateway's process imports this module before serving anything.
SERVER_NAME = "ccc-gateway"
web_response.SERVER_SOFTWARE = SERVER_NAME  # type: ignore[attr-defined]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
CLIENT_GONE = 499  # the status counted and logged for a client that left before the answer


def wants_html(request: web.Request) -> bool:
    """A person's page navigation (show a page) rather than a program (give JSON)."""
    if request.headers.get("Sec-Fetch-Mode") == "navigate":
        return True
    if request.headers.get("X-Requested-With", "").lower() == "xmlhttprequest":
        return False
    accept = request.headers.get(hdrs.ACCEPT, "")
    return "text/html" in accept


def error_response(request: web.Request, error: GatewayError) -> web.Response:
    response = _error_body(request, error)
    if isinstance(error, MethodNotAllowed):
        response.headers[hdrs.ALLOW] = error.allow
    return response


def _error_body(request: web.Request, error: GatewayError) -> web.Response:
    if wants_html(request):
        return error_page(request, error, request_id_of(request))
    body = {
        "requestId": getattr(error, "pop_request_id", None) or request_id_of(request),
        "errorCode": error.error_code,
        "message": error.message,
        **error.extra,
    }
    response = web.json_response(body, status=error.status)
    response.headers["Cache-Control"] = "no-store"
    return response


_HTTP_CODES = {
    404: "NotFound",
    405: "MethodNotAllowed",
    413: "PayloadTooLarge",
    400: "BadRequest",
}


def request_context(
    metrics: Metrics | None = None,
    *,
    translate: Callable[[Exception], GatewayError | None] | None = None,
    prepare: Callable[[web.Request], None] | None = None,
) -> Middleware:
    """The gateway's one middleware: request id, error rendering, request metrics, access line.

    `translate` answers the feature layers' own exceptions (storage, codec, OAuth) with the
    GatewayError to render, or None for an unexpected one (a 500); app.py passes the views'.
    `prepare` puts the feature layers' per-request state on the request before the handler
    (app.py: the session storage, where aiohttp_session.get_session finds it).

    One coroutine rather than one per concern: every middleware is another layer of calls
    and coroutine frames around every request, proxied pages included.
    """

    @web.middleware
    async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = request[REQUEST_ID] = from_client(request)
        if prepare is not None:
            prepare(request)
        started = time.monotonic()
        if metrics is not None:
            metrics.request_started()
        response: web.StreamResponse | None = None
        status = CLIENT_GONE  # unless an answer or an error says otherwise
        try:
            response = await handler(request)
        except GatewayError as error:
            response = error_response(request, error)
        except web.HTTPException as exc:
            if exc.status < 400:
                status = exc.status
                raise  # a redirect, raised: aiohttp sends it as it is
            response = _http_error_response(request, exc)
        except Exception as exc:
            answer = translate(exc) if translate is not None else None
            if answer is None:
                status = 500  # aiohttp's answer to an unhandled exception
                raise
            response = error_response(request, answer)
        finally:
            if response is not None:
                status = response.status
            duration = time.monotonic() - started
            if metrics is not None:
                metrics.request_done(request.path, request.method, status, duration)
            if access_log.isEnabledFor(logging.INFO):
                _log_access(request, request_id, response, status, duration)
        return response

    return request_context


def _http_error_response(request: web.Request, exc: web.HTTPException) -> web.Response:
    """aiohttp's own 4xx/5xx (no route, wrong method, body too large) in the gateway's form."""
    http_error: GatewayError
    if exc.status == 405 and hdrs.ALLOW in exc.headers:
        http_error = MethodNotAllowed(exc.reason, allow=exc.headers[hdrs.ALLOW])
    else:
        http_error = GatewayError(exc.reason, error_code=_HTTP_CODES.get(exc.status, "HttpError"))
        http_error.status = exc.status
    return error_response(request, http_error)


def _log_access(
    request: web.Request,
    request_id: str,
    response: web.StreamResponse | None,
    status: int,
    duration: float,
) -> None:
    # A plain Response is written after this middleware returns: its length is known already.
    size = 0
    if response is not None:
        size = response.body_length if response.prepared else (response.content_length or 0)
    # The path only: a query string may carry credentials.
    fields = {
        "request_id": request_id,
        "duration_ms": round(duration * 1000, 1),
        "bytes": size,
        "remote": request.remote,
    }
    access_log.info(f"{request.method} {request.path} {status}", extra={"fields": fields})


def gateway_headers(hsts_max_age: float) -> Callable[[web.Request, web.StreamResponse], None]:
    """What every response gets as it is prepared: the request id and, over TLS, HSTS.

    A plain function, for the app's one on_response_prepare hook to call (app.py): each hook
    is another coroutine and signal round on every response, so the app has one for all.
    """
    hsts = f"max-age={int(hsts_max_age)}; includeSubDomains" if hsts_max_age > 0 else ""

    def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        request_id = request.get(REQUEST_ID)
        if request_id:
            response.headers[X_REQUEST_ID] = request_id
        if hsts and request.secure:
            response.headers.setdefault(hdrs.STRICT_TRANSPORT_SECURITY, hsts)

    return add_headers


def response_headers(
    hsts_max_age: float,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """`gateway_headers` as an on_response_prepare hook of its own (apps without sessions)."""
    add_headers = gateway_headers(hsts_max_age)

    async def hook(request: web.Request, response: web.StreamResponse) -> None:
        add_headers(request, response)

    return hook
