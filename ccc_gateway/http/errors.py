"""The gateway's errors, and how each one looks to a client.

    GatewayError                      status, errorCode, message (+ extra JSON fields)
     ├── BadRequest                   400 a client's mistake (bad parameter, bad JSON)
     ├── NotAuthenticated             401 no usable Alibaba sign-in; carries the login URL
     ├── Forbidden                    403 ActionNotAllowed, CrossSiteRequest, CrmUserMismatch, …
     ├── NotFound                     404 an unknown /aliyun/* route
     ├── MethodNotAllowed             405 with the methods allowed (Allow header)
     ├── PayloadTooLarge              413
     ├── ServiceUnavailable           503 a dependency of ours (session store, Alibaba) is down
     ├── BadGateway                   502 the CRM or Alibaba failed
     ├── GatewayTimeout               504 the CRM or Alibaba was too slow
     └── PopError                     any status: the CCC OpenAPI refused the call (its Code)

Handlers raise these; one middleware (`app.py`) renders them: the contract's JSON body
`{"requestId", "errorCode", "message"}` for API clients, a readable page for browsers.
"""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    status = 500
    error_code = "InternalError"

    def __init__(self, message: str, *, error_code: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        if error_code is not None:
            self.error_code = error_code
        self.extra = extra


class BadRequest(GatewayError):
    status = 400
    error_code = "BadRequest"


class NotAuthenticated(GatewayError):
    status = 401
    error_code = "NotAuthenticated"

    def __init__(self, message: str = "Sign in to Alibaba Cloud first.", *, login: str) -> None:
        super().__init__(message, login=login)


class Forbidden(GatewayError):
    status = 403
    error_code = "Forbidden"


class NotFound(GatewayError):
    status = 404
    error_code = "NotFound"


class MethodNotAllowed(GatewayError):
    status = 405
    error_code = "MethodNotAllowed"

    def __init__(self, message: str, *, allow: str) -> None:
        super().__init__(message)
        self.allow = allow  # the Allow header's value: a 405 must say what would do


class RequestTimeout(GatewayError):
    """A request body came too slowly (`upstream.min_upload_rate`, `upstream.upload_timeout`)."""

    status = 408
    error_code = "RequestTimeout"


class UnsupportedMediaType(GatewayError):
    status = 415
    error_code = "UnsupportedMediaType"


class PayloadTooLarge(GatewayError):
    status = 413
    error_code = "PayloadTooLarge"


class ServiceUnavailable(GatewayError):
    status = 503
    error_code = "ServiceUnavailable"


class BadGateway(GatewayError):
    status = 502
    error_code = "BadGateway"


class GatewayTimeout(GatewayError):
    status = 504
    error_code = "GatewayTimeout"


class PopError(GatewayError):
    """The CCC OpenAPI answered with an error status: pass its code and request id on."""

    def __init__(self, status: int, code: str, message: str, request_id: str | None) -> None:
        super().__init__(message, error_code=code)
        self.status = status
        self.pop_request_id = request_id
