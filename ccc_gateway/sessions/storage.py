"""Where a sign-in is kept between requests: in the browser's cookie, or in Redis.

`SessionManager` (manager.py) owns the rules (lifetimes, CRM binding, refresh, revocation);
a store only keeps and finds sign-ins. Two stores exist:

- `CookieStore` (the default): the whole sign-in, encrypted, in the chunked `__Host-` cookie.
  Stateless: any replica sharing the session keys serves any request. Revocation is per
  process (a copy of the cookie taken before sign-out is refused only where it was revoked,
  until it expires), and a refresh is single-flight per process.
- `RedisStore` (redis_storage.py, `session.store: redis://…`): the cookie carries only an opaque
  handle; the sign-in lives in Redis, encrypted with the same key ring. A sign-out deletes it
  everywhere at once, and a refresh is single-flight across replicas (a Redis lock).

Writes to the server side happen in `save`/`delete` (awaited inside the handler, so a store
failure is a clean 503); the cookie part is composed at `on_response_prepare` time by
`write_cookie`/`clear_cookie`, on whatever response the handler produced.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Final, Protocol

from aiohttp import web

from ccc_gateway.sessions.cookie_storage import CookieSession
from ccc_gateway.sessions.signin import SignIn

STORE_UNAVAILABLE: Final = "session store unavailable"


class StorageError(Exception):
    """Base of the session stores' failures (auth/views.py `as_http` answers them)."""


class StoreUnavailable(StorageError):
    """The session store cannot be reached: a 503 for sign-in and API routes only."""

    def __init__(self, message: str = STORE_UNAVAILABLE) -> None:
        super().__init__(message)
        self.message = message


class RefreshLockTimeout(StoreUnavailable):
    """Another replica held this sign-in's refresh lock for longer than we wait: a 504."""


class SessionStore(Protocol):
    """What SessionManager needs from a store. Every async method may raise StoreUnavailable."""

    @property
    def name(self) -> str:
        """`cookie` or `redis`, for logs and the readiness answer."""
        ...

    async def load(self, request: web.Request, *, now: float) -> SignIn | None:
        """The sign-in the request refers to, unchecked for lifetimes; None when there is none."""
        ...

    def needs_rewrite(self, request: web.Request) -> bool:
        """True when what `load` read was sealed with an older key of the ring."""
        ...

    async def save(self, request: web.Request, signin: SignIn, *, now: float) -> None:
        """Keep `signin` server-side (a no-op for the cookie store)."""
        ...

    async def delete(self, request: web.Request, signin: SignIn) -> None:
        """Forget `signin` server-side, so no replica finds it again."""
        ...

    async def current(self, request: web.Request, signin: SignIn, *, now: float) -> SignIn | None:
        """The newest stored copy of `signin` (None once it is gone), read again."""
        ...

    def refresh_lock(self, signin: SignIn) -> AbstractAsyncContextManager[None]:
        """Held around a refresh of `signin`: across replicas where the store can."""
        ...

    def write_cookie(
        self, response: web.StreamResponse, request: web.Request, signin: SignIn, *, now: float
    ) -> None:
        """Set whatever cookie `signin` needs after a save (possibly none)."""
        ...

    def clear_cookie(self, response: web.StreamResponse, request: web.Request) -> None:
        """Expire the session cookie."""
        ...

    async def check(self) -> str | None:
        """Readiness: None when the store answers, else why not."""
        ...


class CookieStore:
    """The sign-in itself travels in the encrypted cookie; nothing is kept server-side."""

    name = "cookie"

    def __init__(self, cookies: CookieSession) -> None:
        self._cookies = cookies

    async def load(self, request: web.Request, *, now: float) -> SignIn | None:
        # SignIn is frozen, so the one built from a cookie value is shared by every request
        # carrying that value (no decrypting, copying or parsing again); lifetimes and
        # revocation are SessionManager's checks, made on every request all the same.
        return self._cookies.load_as(request, now=now, build=SignIn.from_payload, owner=_sid)

    def needs_rewrite(self, request: web.Request) -> bool:
        return self._cookies.needs_reencrypt(request)

    async def save(self, request: web.Request, signin: SignIn, *, now: float) -> None:
        return None  # the cookie written at response time is the whole store

    async def delete(self, request: web.Request, signin: SignIn) -> None:
        return None  # nothing server-side; SessionManager's revocation list covers copies

    async def current(self, request: web.Request, signin: SignIn, *, now: float) -> SignIn | None:
        return signin  # no shared copy to re-read: the request's is the only one

    def refresh_lock(self, signin: SignIn) -> AbstractAsyncContextManager[None]:
        # Nothing is shared between processes; the manager's in-process lock is the lock.
        return _no_lock()

    def write_cookie(
        self, response: web.StreamResponse, request: web.Request, signin: SignIn, *, now: float
    ) -> None:
        self._cookies.save(response, request, signin.to_payload(), now=now)

    def clear_cookie(self, response: web.StreamResponse, request: web.Request) -> None:
        self._cookies.clear(response, request)

    async def check(self) -> str | None:
        return None  # the browser holds the sessions: nothing to be down


def _sid(signin: SignIn) -> str:
    return signin.sid


@contextlib.asynccontextmanager
async def _no_lock() -> AsyncIterator[None]:
    yield


__all__ = [
    "STORE_UNAVAILABLE",
    "CookieStore",
    "RefreshLockTimeout",
    "SessionStore",
    "StorageError",
    "StoreUnavailable",
]
