"""The signed-in agent of a request: load, bind to the CRM user, refresh, save, forget.

Every `/aliyun/*` use goes through `SessionManager.require`:
1. the sign-in from the store (storage.py: the encrypted cookie, or Redis shared by the
   replicas), checked for absolute lifetime, idle timeout and the revocation list;
2. the CRM binding: the CRM user logged in now must be the one who signed in;
3. a refresh when the access token is within `refresh_leeway` of expiry (refresh.py: one per
   sign-in at a time);
4. the updated sign-in is saved to the store at once, and its cookie written by an
   `on_response_prepare` hook, so it reaches the browser whatever response the handler made.

A store that cannot be reached raises `StoreUnavailable` (503) for sign-in and API routes;
proxied CRM pages go on without identity headers (identity.py).

Ending a sign-in (sign-out, or Alibaba refusing its refresh) revokes it in this process, wakes
its websockets' watches, deletes it from a shared store and drops its cache entries
(caches.py), so no token of it stays in memory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from aiohttp import hdrs, web

from ccc_gateway.auth.oauth.client import AlibabaOAuthClient
from ccc_gateway.caches import CacheRegistry
from ccc_gateway.config.load import SessionConfig
from ccc_gateway.keys import SIGNIN_UPDATE
from ccc_gateway.sessions.cookie_storage import CookieSession
from ccc_gateway.sessions.crm_binding import CrmBinding
from ccc_gateway.sessions.errors import CrmUserMismatch, NotSignedIn
from ccc_gateway.sessions.identity import AgentIdentity
from ccc_gateway.sessions.refresh import SingleFlightRefresher
from ccc_gateway.sessions.signin import SignIn
from ccc_gateway.sessions.storage import CookieStore, SessionStore
from ccc_gateway.sessions.view import GatewaySession

LOGIN_URL: Final = "/aliyun/auth"
SESSION_COOKIE: Final = "__Host-ccc-session"
CLEAR: Final = "clear"  # the pending update that deletes the cookie


class SessionManager:
    def __init__(
        self,
        config: SessionConfig,
        cookies: CookieSession,
        oauth: AlibabaOAuthClient,
        crm: CrmBinding | None,
        *,
        clock: Callable[[], float],
        store: SessionStore | None = None,
        caches: CacheRegistry | None = None,
    ) -> None:
        self.config = config
        # Every store keeps the sign-in, or a handle to it, in this cookie.
        self._cookies = cookies
        self._store: SessionStore = store if store is not None else CookieStore(cookies)
        # aiohttp_session.get_session(request) answers with what `load` accepts (view.py).
        self._store.attach(self.session_view, clock)
        self.crm = crm  # None: CRM binding is off
        self.clock = clock
        # Every cache that may hold a sign-in's tokens or cookies (app.py lists them all; the
        # CRM binding's whoami cache holds no token and is dropped per browser by crm.forget).
        self.caches = caches if caches is not None else CacheRegistry(*cookies.caches)
        self._revoked: dict[str, float] = {}  # sid -> until
        self.refresher = SingleFlightRefresher(self, oauth)
        self.refresh = self.refresher.refresh
        # The proxy's hooks, bound here so a page pays no call through the manager.
        self.identity = AgentIdentity(self)
        self.note_identity = self.identity.note_identity
        self.identity_headers = self.identity.identity_headers
        self.identity_watch = self.identity.identity_watch

    # Reading

    @property
    def store(self) -> SessionStore:
        return self._store

    async def load(self, request: web.Request) -> SignIn | None:
        """The usable sign-in of this request (after any update earlier in the same request)."""
        pending = request.get(SIGNIN_UPDATE)
        if isinstance(pending, SignIn):
            return pending
        if pending == CLEAR:
            return None
        return await self.load_stored(request)

    async def load_stored(self, request: web.Request) -> SignIn | None:
        """The live sign-in the store has for this request."""
        now = self.clock()
        signin = await self._store.load(request, now=now)
        if signin is None or not self.alive(signin, now):
            return None
        if self._store.needs_rewrite(request):
            # Sealed with an older key of the ring: write it again under the current key, so
            # that key can leave the ring without signing anyone out.
            await self.save(request, signin)
        return signin

    async def session_view(self, request: web.Request) -> GatewaySession:
        """The request's sign-in as aiohttp-session shows it to extension code (view.py)."""
        signin = await self.load(request)
        if signin is None:
            return GatewaySession(None)
        return GatewaySession(signin, expires_at=self.expires_at(signin))

    def expires_at(self, signin: SignIn) -> float:
        """When `signin` ends unless used again: absolute lifetime or idle timeout."""
        config = self.config
        return min(signin.created_at + config.max_age, signin.last_used + config.idle_timeout)

    def alive(self, signin: SignIn, now: float) -> bool:
        return (
            now - signin.created_at < self.config.max_age
            and now - signin.last_used < self.config.idle_timeout
            and signin.sid not in self._revoked
        )

    async def current_crm_user(self, request: web.Request) -> str | None:
        return await self.crm.current_user(request) if self.crm is not None else None

    async def require(self, request: web.Request) -> SignIn:
        """The sign-in, bound and fresh; else NotSignedIn or CrmUserMismatch (401 and 403)."""
        signin = await self.load(request)
        if signin is None:
            raise NotSignedIn()
        await self.check_binding(request, signin)
        now = self.clock()
        if signin.tokens.expires_within(now, self.config.refresh_leeway):
            signin = await self.refresh(request, signin)
        elif now - signin.last_used > min(self.config.idle_timeout / 20, 3600.0):
            await self.save(request, signin.touched(now))
        return signin

    async def check_binding(self, request: web.Request, signin: SignIn) -> None:
        if self.crm is None:
            return
        crm_user = await self.crm.current_user(request)
        if crm_user is None or crm_user != signin.crm_user:
            raise CrmUserMismatch()

    def may_be_signed_in(self, request: web.Request) -> bool:
        """Whether the request may carry a sign-in: the session cookie's name is in its Cookie
        header. Most CRM traffic has none (scripts, assets, agents not signed in), and this
        one substring test spares those requests `note_identity`'s coroutine."""
        return self._cookies.carried(request)

    def revoked(self, sid: str) -> bool:
        return sid in self._revoked

    # Writing

    async def save(self, request: web.Request, signin: SignIn) -> None:
        """Keep `signin` in the store now; its cookie goes out with the response."""
        await self._store.save(request, signin, now=self.clock())
        request[SIGNIN_UPDATE] = signin

    def clear(self, request: web.Request) -> None:
        request[SIGNIN_UPDATE] = CLEAR

    async def forget(self, request: web.Request, signin: SignIn) -> None:
        """Sign out: the cookie goes, this process refuses copies of it from now on, and a
        shared store forgets it for every replica."""
        now = self.clock()
        for sid in [s for s, until in self._revoked.items() if until <= now]:
            del self._revoked[sid]
        self._revoked[signin.sid] = signin.created_at + self.config.max_age
        self.refresher.refreshed.pop(signin.sid, None)
        self.clear(request)  # first: the cookie goes even when the store is down
        self.identity.wake(signin.sid)
        # No token or cookie of it stays cached: its own entries, and this request's cookie
        # (with Redis, a handle whose owner the cache could not know).
        self.caches.drop_signin(signin.sid)
        self._cookies.forget(request)
        if self.crm is not None:
            self.crm.forget(request)
        await self._store.delete(request, signin)

    def cookie_pending(self, request: web.Request) -> bool:
        """Whether `write_cookie` has anything to write: rarely, as few requests change a
        sign-in, so the hook asks this first rather than start a coroutine per response."""
        return request.get(SIGNIN_UPDATE) is not None

    async def write_cookie(self, request: web.Request, response: web.StreamResponse) -> None:
        """on_response_prepare: put a pending update into Set-Cookie headers.

        aiohttp has already turned `response.cookies` into headers when this hook runs, so the
        cookies are composed on a scratch response and their headers appended.
        """
        pending = request.get(SIGNIN_UPDATE)
        if pending is None:
            return
        scratch = web.StreamResponse()
        # An empty session deletes the cookie (storage.py save_session).
        view = GatewaySession(pending if isinstance(pending, SignIn) else None)
        await self._store.save_session(request, scratch, view)
        for morsel in scratch.cookies.values():
            response.headers.add(hdrs.SET_COOKIE, morsel.output(header="")[1:])
