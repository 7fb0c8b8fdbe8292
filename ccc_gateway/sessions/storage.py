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

Both are `aiohttp_session.AbstractStorage` implementations, so code that extends the gateway
reads the signed-in agent with `aiohttp_session.get_session(request)` (view.py).

Writes to the server side happen in `save`/`delete` (awaited inside the handler, so a store
failure is a clean 503); the cookie part is composed at `on_response_prepare` time by
`save_session`, on whatever response the handler produced.
"""

from __future__ import annotations

import contextlib
import time
from abc import abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Final

from aiohttp import web
from aiohttp_session import AbstractStorage, Session

from ccc_gateway.sessions.cookie_storage import CookieSession
from ccc_gateway.sessions.signin import SignIn
from ccc_gateway.sessions.view import GatewaySession, signin_of

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


View = Callable[[web.Request], Awaitable[GatewaySession]]


class SessionStore(AbstractStorage):
    """A session store, and the `aiohttp_session.AbstractStorage` extension code reaches.

    Every async method may raise StoreUnavailable. `load_session` answers with what
    `SessionManager` accepts (attached by it: `attach`), as a read-only `GatewaySession`
    (view.py); `save_session` writes the cookie `session`'s sign-in needs, or deletes it when
    the session is empty. The cookie is chunked (cookie_storage.py), so the library's
    one-cookie `save_cookie` is refused; `load_cookie` gives the joined token.
    """

    name = ""  # `cookie` or `redis`, for logs and the readiness answer

    def __init__(self, cookies: CookieSession) -> None:
        # The library's cookie parameters, kept true to what cookie_storage.py sets on every
        # chunk and deletion: __Host- needs Secure and Path=/ without Domain.
        super().__init__(
            cookie_name=cookies.name,
            max_age=None,  # lifetimes are the manager's (absolute and idle), on its clock
            path="/",
            secure=True,
            httponly=True,
            samesite=cookies.samesite,
        )
        self._cookies = cookies
        self._view: View | None = None
        self._clock: Callable[[], float] = time.time

    def attach(self, view: View, clock: Callable[[], float]) -> None:
        """SessionManager's rules behind `load_session`, and its clock for `save_session`."""
        self._view, self._clock = view, clock

    # aiohttp_session.AbstractStorage

    async def load_session(self, request: web.Request) -> GatewaySession:
        if self._view is None:
            raise RuntimeError("no SessionManager attached to this session store")
        return await self._view(request)

    async def new_session(self) -> GatewaySession:
        return GatewaySession(None)  # sign-ins start at /aliyun/auth, not in a handler

    async def save_session(
        self, request: web.Request, response: web.StreamResponse, session: Session
    ) -> None:
        signin = signin_of(session)
        if signin is None:
            self.clear_cookie(response, request)
        else:
            self.write_cookie(response, request, signin, now=self._clock())

    def load_cookie(self, request: web.Request) -> str | None:
        return self._cookies.carried_token(request) or None

    def save_cookie(
        self, response: web.StreamResponse, cookie_data: str, *, max_age: int | None = None
    ) -> None:
        raise NotImplementedError("the session cookie is chunked: use save_session")

    # The gateway's own operations

    @abstractmethod
    async def load(self, request: web.Request, *, now: float) -> SignIn | None:
        """The sign-in the request refers to, unchecked for lifetimes; None when there is none."""

    @abstractmethod
    def needs_rewrite(self, request: web.Request) -> bool:
        """True when what `load` read was sealed with an older key of the ring."""

    @abstractmethod
    async def save(self, request: web.Request, signin: SignIn, *, now: float) -> None:
        """Keep `signin` server-side (a no-op for the cookie store)."""

    @abstractmethod
    async def delete(self, request: web.Request, signin: SignIn) -> None:
        """Forget `signin` server-side, so no replica finds it again."""

    @abstractmethod
    async def current(self, request: web.Request, signin: SignIn, *, now: float) -> SignIn | None:
        """The newest stored copy of `signin` (None once it is gone), read again."""

    @abstractmethod
    def refresh_lock(self, signin: SignIn) -> AbstractAsyncContextManager[None]:
        """Held around a refresh of `signin`: across replicas where the store can."""

    @abstractmethod
    def write_cookie(
        self, response: web.StreamResponse, request: web.Request, signin: SignIn, *, now: float
    ) -> None:
        """Set whatever cookie `signin` needs after a save (possibly none)."""

    def clear_cookie(self, response: web.StreamResponse, request: web.Request) -> None:
        """Expire every chunk of the session cookie, with all its attributes."""
        self._cookies.clear(response, request)

    @abstractmethod
    async def check(self) -> str | None:
        """Readiness: None when the store answers, else why not."""


class CookieStore(SessionStore):
    """The sign-in itself travels in the encrypted cookie; nothing is kept server-side."""

    name = "cookie"

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
