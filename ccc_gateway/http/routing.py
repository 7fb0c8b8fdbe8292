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
from aiohttp.typedefs import Handler

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


class CatchAllResource(web.DynamicResource):
    """The route `/{tail:.*}` (any method): every path no other route took.

    The same as `router.add_route("*", "/{tail:.*}", handler)`, minus the per-request work a
    DynamicResource does to match: its regular expression, then a dict of the unquoted
    groups. That pattern matches every path that starts with `/` and holds no line feed (the
    regex's `.` matches anything else), so those tests are all that is left; `match_info`
    is empty.
    """

    def __init__(self, handler: Handler) -> None:
        super().__init__("/{tail:.*}")
        self._route = self.add_route("*", handler)
        self._methods = {self._route.method}

    async def resolve(
        self, request: web.Request
    ) -> tuple[web.UrlMappingMatchInfo | None, set[str]]:
        path = request.rel_url.path_safe
        if not path.startswith("/") or "\n" in path:  # what the pattern refuses
            return None, set()
        return web.UrlMappingMatchInfo({}, self._route), self._methods
