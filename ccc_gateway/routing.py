"""Which paths belong to the gateway, however a client spells them.

The gateway owns `/aliyun/…`. A request for `/ALIYUN/ccc/api`, `/aliyun%2fccc/api`,
`//aliyun/…` or `/x/../aliyun/…` must neither reach a gateway route by a side door nor be
handed to the CRM (where a CRM route of that name could be confused with ours), so the
catch-all proxy asks `is_gateway_path` first.
"""

from __future__ import annotations

import posixpath
from urllib.parse import unquote

from aiohttp import web

GATEWAY_PREFIX = "/aliyun/"


def normalise_path(raw_path: str) -> str:
    """Decode (twice, for double encoding), unify slashes, resolve dot segments, lower-case."""
    path = raw_path.split("?", 1)[0]
    for _ in range(2):
        path = unquote(path)
    path = path.replace("\\", "/")
    # `/aliyun;x/ccc/api` is `/aliyun/ccc/api` to Java servlet containers (path parameters).
    path = "/".join(segment.split(";", 1)[0] for segment in path.split("/"))
    path = posixpath.normpath("/" + path.lstrip("/"))
    return path.lower()


def is_gateway_path(request: web.Request) -> bool:
    """Whether the path the CRM would be sent is, however spelled, the gateway's own."""
    target = request.raw_path
    if not target.startswith("/"):
        # Absolute form (`GET http://host/ALIYUN/…`): the proxy sends the CRM its path part.
        target = request.rel_url.raw_path
    return is_gateway_target(target)


def is_gateway_target(target: str) -> bool:
    """Whether a raw origin-form target (path, maybe a query) names the gateway's prefix."""
    path = target.partition("?")[0]
    # Fast path for the CRM's own pages. Normalising never makes letters: it decodes `%XX`,
    # turns `\` into `/`, cuts `;…` off a segment's end and drops whole segments, so each
    # segment it returns is a prefix of one the client sent. Without `%`, a path that does
    # not contain "aliyun" (in any case) cannot normalise to the gateway's prefix.
    if "%" not in path and "aliyun" not in path.lower():
        return False
    path = normalise_path(path)
    return path == GATEWAY_PREFIX.rstrip("/") or path.startswith(GATEWAY_PREFIX)
