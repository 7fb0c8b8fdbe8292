"""The request id: one per request, the client's own when it is sane, else a new one.

The request-context middleware (http/middleware.py) sets it on every request before any
handler runs; everything else reads it with `of(request)`. It ties the access line, the
audit line, the CRM's logs (the proxy forwards it) and an error body together.
"""

from __future__ import annotations

import random
import re

from aiohttp import web
from multidict import istr

from ccc_gateway.keys import REQUEST_ID

# An istr, as aiohttp's own header names are: a plain str is case-folded on every use. Not
# hdrs.X_REQUEST_ID, which would spell it "X-Request-ID" on the wire.
X_REQUEST_ID = istr("X-Request-Id")
# What a client's id may be: short, and nothing a log line or a header would need to escape.
_SANE = re.compile(r"[A-Za-z0-9._-]{1,128}")


def new_request_id() -> str:
    """32 random hex digits, as wide as uuid4().hex.

    An id only ties log lines together; it is no secret, so the random module's generator
    (seeded from os.urandom, reseeded in a forked child) serves, without a getrandom()
    syscall per request.
    """
    return random.getrandbits(128).to_bytes(16, "little").hex()  # not used for security


def is_sane_request_id(value: str) -> bool:
    return _SANE.fullmatch(value) is not None


def from_client(request: web.Request) -> str:
    """The client's X-Request-Id when it is sane, else a new id (the middleware's choice)."""
    given = request.headers.get(X_REQUEST_ID)
    return given if given is not None and is_sane_request_id(given) else new_request_id()


def of(request: web.Request) -> str:
    """This request's id ("" outside the request-context middleware, e.g. a bare test app)."""
    return str(request.get(REQUEST_ID, ""))
