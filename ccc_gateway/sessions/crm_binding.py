"""Who is logged in to the CRM right now: the CRM binding (`session.crm_binding`).

The Alibaba sign-in belongs to the CRM user who made it: on a shared call-centre PC, agent
A's phone line must never be handed to CRM user B. Two ways to tell, neither needing the
gateway to understand the CRM's session (docs/sessions.md, "CRM binding"):

- `whoami` (`CrmIdentity`): the browser's CRM cookies are forwarded to the CRM's whoami
  endpoint (`upstream.whoami_path`) and its answer believed (`200 {"user": "edward"}` or
  401). Answers are cached for a few seconds per CRM cookie so a burst of softphone calls
  costs one lookup (caches.py, ``whoami``: keyed by a hash of the CRM cookies, holding only
  the user name; sign-out drops the browser's entry).
- `cookie` (`CrmSessionCookie`): for CRMs without such an endpoint. The sign-in is bound to
  the CRM's session cookie (`session.crm_session_cookie`), kept only as a keyed hash: a CRM
  logout or another user's login gives a new cookie value, and the binding no longer holds.

Both raise the layer's own errors (sessions/errors.py), never HTTP ones.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any, Protocol

import aiohttp
from aiohttp import hdrs, web
from yarl import URL

from ccc_gateway.caches import BoundedCache
from ccc_gateway.config.load import UpstreamConfig
from ccc_gateway.sessions.errors import CrmIdentityTimeout, CrmIdentityUnavailable

MAX_CACHED = 10_000
WHOAMI_TIMEOUT = aiohttp.ClientTimeout(total=5)


class CrmBinding(Protocol):
    """What the sign-in is bound to, as the manager and the sign-in views use it."""

    # Whether `current_user` is a user name to show (whoami) or an opaque token (cookie).
    names_users: bool

    async def current_user(self, request: web.Request) -> str | None:
        """Who (or which CRM session) is logged in now; None when nobody is."""

    def forget(self, request: web.Request) -> None:
        """Drop what is cached for this browser (its sign-out)."""


class CrmIdentity:
    """`crm_binding: whoami`: the CRM says who is logged in."""

    names_users = True

    def __init__(
        self,
        client: aiohttp.ClientSession,
        upstream: UpstreamConfig,
        *,
        is_gateway_cookie: Callable[[str], bool],
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
        host: str | None = None,
    ) -> None:
        """`host`: the Host to send (upstream.preserve_host), else the CRM's own."""
        if upstream.whoami_path is None:
            raise ValueError("CrmIdentity needs upstream.whoami_path")
        self._client = client
        self._url = upstream.url.join(URL(upstream.whoami_path))
        self._is_gateway_cookie = is_gateway_cookie
        self._ttl = ttl
        self._clock = clock
        self._host = host
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
        if self._host is not None:
            headers[hdrs.HOST] = self._host
        try:
            async with self._client.get(
                self._url, headers=headers, allow_redirects=False, timeout=WHOAMI_TIMEOUT
            ) as response:
                if response.status in (401, 403):
                    return None
                if response.status != 200:
                    raise CrmIdentityUnavailable(f"The CRM's whoami answered {response.status}.")
                body: Any = await response.json(content_type=None)
        except TimeoutError:
            raise CrmIdentityTimeout("The CRM did not say who is logged in in time.") from None
        except (aiohttp.ClientError, ValueError):
            raise CrmIdentityUnavailable("The CRM could not say who is logged in.") from None
        user = body.get("user") if isinstance(body, dict) else None
        if not isinstance(user, str) or not user:
            raise CrmIdentityUnavailable('The CRM\'s whoami answer has no "user".')
        return user


def _digest(cookie: str) -> str:
    return hashlib.sha256(cookie.encode("utf-8", "surrogateescape")).hexdigest()


class CrmSessionCookie:
    """`crm_binding: cookie`: the sign-in is bound to the CRM's session cookie.

    `current_user` is an HMAC of the cookie's value under a key derived from the first
    session key, so neither the value nor anything that could be matched against stolen
    cookies is stored in the sign-in (or logged). A CRM logout/login changes the value and
    breaks the binding; so does replacing the first session key (agents sign in once more).
    """

    names_users = False
    PREFIX = "cookie:"  # a bound value, never mistaken for a whoami user name

    def __init__(self, cookie_name: str, session_key: str) -> None:
        self._name = cookie_name
        self._key = hmac.new(
            session_key.encode("ascii"), b"ccc-gateway crm-session-cookie", hashlib.sha256
        ).digest()

    async def current_user(self, request: web.Request) -> str | None:
        value = request.cookies.get(self._name)
        if not value:
            return None
        mac = hmac.new(self._key, value.encode("utf-8", "surrogateescape"), hashlib.sha256)
        return self.PREFIX + mac.hexdigest()[:32]

    def forget(self, request: web.Request) -> None:
        """Nothing is cached: a hash costs less than a lookup."""
