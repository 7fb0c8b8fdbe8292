"""Who is logged in to the CRM right now, asked of the CRM itself (`upstream.whoami_path`).

The Alibaba sign-in belongs to the CRM user who made it: on a shared call-centre PC, agent
A's phone line must never be handed to CRM user B. The gateway does not understand the CRM's
session; it forwards the browser's CRM cookies to the whoami endpoint and believes the answer
(`200 {"user": "edward"}` or 401). Answers are cached for a few seconds per CRM cookie so a
burst of softphone calls costs one lookup (caches.py, ``whoami``: keyed by a hash of the CRM
cookies, holding only the user name; sign-out drops the browser's entry).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import hdrs, web
from yarl import URL

from ccc_gateway.caches import BoundedCache
from ccc_gateway.config.load import UpstreamConfig
from ccc_gateway.http.errors import BadGateway, GatewayTimeout

MAX_CACHED = 10_000
WHOAMI_TIMEOUT = aiohttp.ClientTimeout(total=5)


class CrmIdentity:
    def __init__(
        self,
        client: aiohttp.ClientSession,
        upstream: UpstreamConfig,
        *,
        is_gateway_cookie: Callable[[str], bool],
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if upstream.whoami_path is None:
            raise ValueError("CrmIdentity needs upstream.whoami_path")
        self._client = client
        self._url = upstream.url.join(URL(upstream.whoami_path))
        self._is_gateway_cookie = is_gateway_cookie
        self._ttl = ttl
        self._clock = clock
        # sha256(CRM cookies) -> (until, user)
        self.cache: BoundedCache[str, tuple[float, str | None]] = BoundedCache("whoami", MAX_CACHED)

    async def current_user(self, request: web.Request) -> str | None:
        """The CRM user of this browser, or None when nobody is logged in to the CRM."""
        cookie = self._crm_cookie_header(request)
        if not cookie:
            return None
        key = _digest(cookie)
        now = self._clock()
        cached = self.cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        user = await self._ask(cookie)
        self.cache.put(key, (now + self._ttl, user))
        return user

    def forget(self, request: web.Request) -> None:
        """Drop the cached answer for this browser (its sign-out)."""
        cookie = self._crm_cookie_header(request)
        if cookie:
            self.cache.pop(_digest(cookie))

    def _crm_cookie_header(self, request: web.Request) -> str:
        return "; ".join(
            f"{name}={value}"
            for name, value in request.cookies.items()
            if not self._is_gateway_cookie(name)
        )

    async def _ask(self, cookie: str) -> str | None:
        headers = {hdrs.COOKIE: cookie, hdrs.ACCEPT: "application/json"}
        try:
            async with self._client.get(
                self._url, headers=headers, allow_redirects=False, timeout=WHOAMI_TIMEOUT
            ) as response:
                if response.status in (401, 403):
                    return None
                if response.status != 200:
                    raise BadGateway(f"The CRM's whoami answered {response.status}.")
                body: Any = await response.json(content_type=None)
        except TimeoutError:
            raise GatewayTimeout("The CRM did not say who is logged in in time.") from None
        except (aiohttp.ClientError, ValueError):
            raise BadGateway("The CRM could not say who is logged in.") from None
        user = body.get("user") if isinstance(body, dict) else None
        if not isinstance(user, str) or not user:
            raise BadGateway('The CRM\'s whoami answer has no "user".')
        return user


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode("utf-8", "surrogateescape")).hexdigest()
