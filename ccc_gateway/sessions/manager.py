"""The signed-in agent of a request: load, bind to the CRM user, refresh, save, forget.

Every `/aliyun/*` use goes through `SessionManager.require`:
1. the sign-in from the store (session_store.py: the encrypted cookie, or Redis shared by the
   replicas), checked for absolute lifetime, idle timeout and the revocation list;
2. the CRM binding: the CRM user logged in now must be the one who signed in;
3. a refresh when the access token is within `refresh_leeway` of expiry — one per sign-in at a
   time in this process: concurrent requests wait for it and reuse its result, and requests
   still carrying the previous cookie within a grace window reuse it too (a provider that
   rotates refresh tokens would otherwise sign the loser out); with Redis the store's lock
   extends this across replicas, and the stored sign-in is read again under it;
4. the updated sign-in is saved to the store at once, and its cookie written by an
   `on_response_prepare` hook, so it reaches the browser whatever response the handler made.

A store that cannot be reached raises `StoreUnavailable` (503) for sign-in and API routes;
proxied CRM pages go on without identity headers.

A CRM websocket whose handshake carried the agent's identity headers is watched for as long as
it is open (`identity_watch`): a sign-out in this process ends it at once; a sign-out on
another replica (the shared store no longer knows the sign-in) and the sign-in's absolute end
are found by a check every `WATCH_INTERVAL` seconds.

Only `invalid_grant`/`invalid_client` end a sign-in; a network error or a 5xx keeps it and
answers 502/504 (proxy-pitfalls.md, "Refresh").
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Coroutine, Mapping
from types import MappingProxyType
from typing import Any, Final, TypeVar
from urllib.parse import quote

from aiohttp import hdrs, web

from ccc_gateway.auth.oauth.client import AlibabaOAuthClient
from ccc_gateway.auth.oauth.errors import (
    OAuthError,
    OAuthProviderError,
    OAuthUnavailable,
    outcome_label,
)
from ccc_gateway.config.load import SessionConfig
from ccc_gateway.http.errors import (
    BadGateway,
    Forbidden,
    GatewayError,
    GatewayTimeout,
    NotAuthenticated,
)
from ccc_gateway.ops.metrics import record
from ccc_gateway.sessions.cookie_storage import CookieSession
from ccc_gateway.sessions.crm_binding import CrmIdentity
from ccc_gateway.sessions.signin import SignIn
from ccc_gateway.sessions.storage import CookieStore, SessionStore

log = logging.getLogger(__name__)

LOGIN_URL: Final = "/aliyun/auth"
SESSION_COOKIE: Final = "__Host-ccc-session"
REFRESH_GRACE = 60.0  # how long a refresh result serves requests still carrying the old cookie
_CLEAR: Final = "clear"
# The sign-in to write into the response's cookie, or _CLEAR to delete it.
_UPDATE = web.RequestKey("signin_update", object)
_IDENTITY = web.RequestKey("agent_identity", dict)
AGENT_UPN_HEADER: Final = "X-Ccc-Agent-Upn"
AGENT_NAME_HEADER: Final = "X-Ccc-Agent-Name"
_T = TypeVar("_T")
_NO_IDENTITY: Mapping[str, str] = MappingProxyType({})  # one for every request without one
# How often an identity-carrying CRM websocket checks that its sign-in still stands, for the
# ends nobody in this process is told about: a sign-out on another replica, the absolute end.
WATCH_INTERVAL = 5.0
SIGNED_OUT: Final = "signed out"  # close reasons for the browser (with code 1008)
SIGN_IN_EXPIRED: Final = "sign-in expired"


class SessionManager:
    def __init__(
        self,
        config: SessionConfig,
        cookies: CookieSession,
        oauth: AlibabaOAuthClient,
        crm: CrmIdentity | None,
        *,
        clock: Callable[[], float],
        store: SessionStore | None = None,
    ) -> None:
        self._config = config
        # Every store keeps the sign-in, or a handle to it, in this cookie.
        self._cookies = cookies
        self._store: SessionStore = store if store is not None else CookieStore(cookies)
        self._oauth = oauth
        self.crm = crm  # None: CRM binding is off
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        self._refreshed: dict[str, tuple[float, SignIn]] = {}  # sid -> (until, newer sign-in)
        # Requests that waited for a refresh which failed share its failure instead of each
        # trying again in turn (N waiters would otherwise take N timeouts): sid -> the last
        # failure and how many failures there have been, so a waiter can tell one happened.
        self._failures: dict[str, int] = {}
        self._users: dict[str, int] = {}  # requests using or waiting for each sign-in's lock
        self._failed: dict[str, tuple[int, GatewayError]] = {}
        self._revoked: dict[str, float] = {}  # sid -> until
        # sid -> wake-ups of the watches of websockets speaking for that sign-in (forget sets
        # them); an entry lives exactly as long as one of its sockets is open.
        self._watches: dict[str, set[asyncio.Event]] = {}

    # Reading

    @property
    def store(self) -> SessionStore:
        return self._store

    async def load(self, request: web.Request) -> SignIn | None:
        """The usable sign-in of this request (after any update earlier in the same request)."""
        pending = _item(request, _UPDATE)
        if isinstance(pending, SignIn):
            return pending
        if pending == _CLEAR:
            return None
        return await self._load_stored(request)

    async def _load_stored(self, request: web.Request) -> SignIn | None:
        """The live sign-in the store has for this request."""
        now = self._clock()
        signin = await self._store.load(request, now=now)
        if signin is None or not self._alive(signin, now):
            return None
        if self._store.needs_rewrite(request):
            # Sealed with an older key of the ring: write it again under the current key, so
            # that key can leave the ring without signing anyone out.
            await self.save(request, signin)
        return signin

    def _alive(self, signin: SignIn, now: float) -> bool:
        return (
            now - signin.created_at < self._config.max_age
            and now - signin.last_used < self._config.idle_timeout
            and signin.sid not in self._revoked
        )

    async def current_crm_user(self, request: web.Request) -> str | None:
        return await self.crm.current_user(request) if self.crm is not None else None

    async def require(self, request: web.Request) -> SignIn:
        """The sign-in, bound and fresh, or 401 NotAuthenticated / 403 CrmUserMismatch."""
        signin = await self.load(request)
        if signin is None:
            raise NotAuthenticated(login=LOGIN_URL)
        await self.check_binding(request, signin)
        now = self._clock()
        if signin.tokens.expires_within(now, self._config.refresh_leeway):
            signin = await self.refresh(request, signin)
        elif now - signin.last_used > min(self._config.idle_timeout / 20, 3600.0):
            await self.save(request, signin.touched(now))
        return signin

    async def check_binding(self, request: web.Request, signin: SignIn) -> None:
        if self.crm is None:
            return
        crm_user = await self.crm.current_user(request)
        if crm_user is None or crm_user != signin.crm_user:
            raise Forbidden(
                "This Alibaba sign-in belongs to another CRM user; sign in to Alibaba again.",
                error_code="CrmUserMismatch",
                login=LOGIN_URL,
            )

    # Identity headers for the CRM

    def may_be_signed_in(self, request: web.Request) -> bool:
        """Whether the request may carry a sign-in: the session cookie's name is in its Cookie
        header. Most CRM traffic has none (scripts, assets, agents not signed in), and this
        one substring test spares those requests `note_identity`'s coroutine."""
        return self._cookies.carried(request)

    async def note_identity(self, request: web.Request) -> None:
        """Before a page is proxied: remember the agent headers this browser may send the CRM.

        Only for a live sign-in whose CRM user is the one logged in now. The whoami answer comes
        from CrmIdentity's per-cookie cache, so at most one CRM lookup per browser per
        `whoami_cache_ttl`; when the CRM cannot say, no headers are sent (fail closed).
        """
        # Called before anything else of a proxied request, so no update of this request can
        # be pending: the store's sign-in is the one (`load` would look for an update first).
        if not self._cookies.carried(request):
            # Most CRM traffic has no gateway session (scripts, assets, agents not signed in):
            # one substring test instead of the store's lookup.
            return
        try:
            signin = await self._load_stored(request)
        except GatewayError:
            return  # the store is down: the page is served, only without identity headers
        if signin is None:
            return
        if self.crm is not None:
            try:
                crm_user = await self.crm.current_user(request)
            except GatewayError:
                return
            if crm_user is None or crm_user != signin.crm_user:
                return
        request[_IDENTITY] = {
            AGENT_UPN_HEADER: _header_text(signin.agent.upn),
            AGENT_NAME_HEADER: _header_text(signin.agent.name),
        }

    def identity_headers(self, request: web.Request) -> Mapping[str, str]:
        """CrmProxy's `identity_headers` hook: what `note_identity` found (no I/O here)."""
        return _item(request, _IDENTITY) or _NO_IDENTITY

    def identity_watch(self, request: web.Request) -> Coroutine[Any, Any, str] | None:
        """CrmProxy's hook for an open websocket: a watch that returns (the close reason) when
        the sign-in whose identity the handshake carried ends; None when it carried none.

        A socket without identity is none of the sign-in's business: the CRM's own realtime
        features go on whoever signs in or out of Alibaba.
        """
        if _item(request, _IDENTITY) is None:
            return None
        return self._watch(request)

    async def _watch(self, request: web.Request) -> str:
        # The sign-in is read again here rather than kept by note_identity: pages never pay
        # for websockets. The handshake's cookie is judged only now, at the handshake; the
        # browser goes on with newer cookies (refreshes, last_used), so later checks look
        # only at revocation and the absolute end, never at idle or token expiry.
        signin = None
        while signin is None:
            try:
                signin = await self._store.load(request, now=self._clock())
            except GatewayError:
                await asyncio.sleep(WATCH_INTERVAL)  # the store is down: try again
                continue
            if signin is None or not self._alive(signin, self._clock()):
                return SIGNED_OUT  # ended between note_identity and now
        wake = asyncio.Event()
        self._watches.setdefault(signin.sid, set()).add(wake)
        try:
            while True:
                reason = await self._ended(request, signin)
                if reason is not None:
                    log.info(
                        "closing a CRM websocket: %s",
                        reason,
                        extra={"fields": {"agent": signin.agent.upn}},
                    )
                    return reason
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(WATCH_INTERVAL):
                        await wake.wait()
                wake.clear()
        finally:
            watches = self._watches.get(signin.sid)
            if watches is not None:
                watches.discard(wake)
                if not watches:
                    del self._watches[signin.sid]

    async def _ended(self, request: web.Request, signin: SignIn) -> str | None:
        """Why `signin` is over, or None while it stands."""
        if signin.sid in self._revoked:
            return SIGNED_OUT
        now = self._clock()
        if now - signin.created_at >= self._config.max_age:
            return SIGN_IN_EXPIRED
        try:
            # A shared store forgets a sign-in signed out on any replica (and one it let
            # expire, its record's lifetime following the newest last_used); the cookie store
            # keeps nothing to ask and answers the sign-in itself.
            stored = await self._store.current(request, signin, now=now)
        except GatewayError:
            # A store outage is not a sign-out: the CRM's socket stays, and the next check
            # asks again (pages are served meanwhile too, without identity headers).
            return None
        return SIGNED_OUT if stored is None else None

    # Refreshing

    async def refresh(self, request: web.Request, signin: SignIn) -> SignIn:
        """Refresh once per sign-in at a time; a waiter reuses the result it waited for.

        The in-process lock comes first, so a replica's own concurrent requests queue here
        rather than each polling the store's lock; the result is saved before either lock is
        let go, so whoever takes it next finds the new tokens.
        """
        sid = signin.sid
        lock = self._locks.setdefault(sid, asyncio.Lock())
        self._users[sid] = self._users.get(sid, 0) + 1
        failures_seen = self._failures.get(sid, 0)
        try:
            async with lock:
                self._raise_failure_since(signin, failures_seen)
                newer = self._recent_refresh(signin)
                if newer is None:
                    async with self._store.refresh_lock(signin):
                        newer = await self._refresh_shared(request, signin)
                        await self.save(request, newer)
                else:
                    await self.save(request, newer)
        finally:
            # The per-sign-in state lives exactly as long as someone is using or awaiting it.
            self._users[sid] -= 1
            if not self._users[sid]:
                for table in (self._users, self._locks, self._failures, self._failed):
                    table.pop(sid, None)
        return newer

    async def _refresh_shared(self, request: web.Request, signin: SignIn) -> SignIn:
        # Re-check under the store's lock: another replica may have refreshed (reuse its newer
        # token) or signed out (then there is nothing left to refresh).
        stored = await self._store.current(request, signin, now=self._clock())
        if stored is None:
            self.clear(request)
            raise NotAuthenticated("The Alibaba sign-in has ended; sign in again.", login=LOGIN_URL)
        if _newer(stored, signin):
            return stored
        return await self._refresh_now(request, signin)

    def _raise_failure_since(self, signin: SignIn, failures_seen: int) -> None:
        """Fail like the refresh attempt that failed while this request waited for the lock."""
        entry = self._failed.get(signin.sid)
        if entry is not None and entry[0] > failures_seen:
            failure = entry[1]
            raise type(failure)(failure.message)

    def _recent_refresh(self, signin: SignIn) -> SignIn | None:
        now = self._clock()
        for sid in [s for s, (until, _) in self._refreshed.items() if until <= now]:
            del self._refreshed[sid]
        entry = self._refreshed.get(signin.sid)
        if entry is not None and entry[1].tokens.expires_at > signin.tokens.expires_at:
            return entry[1]
        return None

    async def _refresh_now(self, request: web.Request, signin: SignIn) -> SignIn:
        now = self._clock()
        refresh_token = signin.tokens.refresh_token
        if refresh_token is None:
            if signin.tokens.expires_within(now):
                self.clear(request)
                raise NotAuthenticated("The Alibaba sign-in has expired.", login=LOGIN_URL)
            return signin  # nothing to refresh with; the token is still valid for now
        try:
            tokens = await self._oauth.refresh(refresh_token)
        except OAuthError as error:
            record(request, "refresh", outcome_label(error))
            failure = await self._refresh_failure(request, signin, error)
            if not isinstance(failure, NotAuthenticated):
                count = self._failures[signin.sid] = self._failures.get(signin.sid, 0) + 1
                self._failed[signin.sid] = (count, failure)
            raise failure from None
        self._failed.pop(signin.sid, None)
        newer = signin.with_tokens(tokens, now)
        self._refreshed[signin.sid] = (now + REFRESH_GRACE, newer)
        record(request, "refresh", "ok")
        log.info("refreshed the Alibaba token", extra={"fields": {"agent": signin.agent.upn}})
        return newer

    async def _refresh_failure(
        self, request: web.Request, signin: SignIn, error: OAuthError
    ) -> GatewayError:
        agent = {"fields": {"agent": signin.agent.upn, "error": type(error).__name__}}
        if isinstance(error, OAuthProviderError) and error.fatal:
            log.info("refresh refused by Alibaba (%s): signing out", error.error, extra=agent)
            await self.forget(request, signin)
            return NotAuthenticated(
                "The Alibaba sign-in has ended; sign in again.", login=LOGIN_URL
            )
        log.warning("refresh failed, keeping the sign-in", extra=agent)
        if isinstance(error, OAuthUnavailable) and error.timeout:
            return GatewayTimeout("Alibaba Cloud did not answer the token refresh in time.")
        return BadGateway("Alibaba Cloud could not refresh the token right now; try again.")

    # Writing

    async def save(self, request: web.Request, signin: SignIn) -> None:
        """Keep `signin` in the store now; its cookie goes out with the response."""
        await self._store.save(request, signin, now=self._clock())
        request[_UPDATE] = signin

    def clear(self, request: web.Request) -> None:
        request[_UPDATE] = _CLEAR

    async def forget(self, request: web.Request, signin: SignIn) -> None:
        """Sign out: the cookie goes, this process refuses copies of it from now on, and a
        shared store forgets it for every replica."""
        now = self._clock()
        for sid in [s for s, until in self._revoked.items() if until <= now]:
            del self._revoked[sid]
        self._revoked[signin.sid] = signin.created_at + self._config.max_age
        self._refreshed.pop(signin.sid, None)
        self.clear(request)  # first: the cookie goes even when the store is down
        for wake in self._watches.get(signin.sid, ()):
            wake.set()  # this sign-in's websockets end now, not at their next check
        await self._store.delete(request, signin)

    def cookie_pending(self, request: web.Request) -> bool:
        """Whether `write_cookie` has anything to write: rarely, as few requests change a
        sign-in, so the hook asks this first rather than start a coroutine per response."""
        return _item(request, _UPDATE) is not None

    async def write_cookie(self, request: web.Request, response: web.StreamResponse) -> None:
        """on_response_prepare: put a pending update into Set-Cookie headers.

        aiohttp has already turned `response.cookies` into headers when this hook runs, so the
        cookies are composed on a scratch response and their headers appended.
        """
        pending = _item(request, _UPDATE)
        if pending is None:
            return
        scratch = web.StreamResponse()
        if isinstance(pending, SignIn):
            self._store.write_cookie(scratch, request, pending, now=self._clock())
        else:
            self._store.clear_cookie(scratch, request)
        for morsel in scratch.cookies.values():
            response.headers.add(hdrs.SET_COOKIE, morsel.output(header="")[1:])


def _item(request: web.Request, key: web.RequestKey[_T]) -> _T | None:
    # What request.get(key) answers, without its cost when the key is absent (as the pending
    # update is on nearly every request): request.get is Mapping.get, which raises and catches
    # a KeyError on a miss, several times the cost of the lookup. A request's items live in
    # its `_state` dict (test_session_cache checks that this agrees with request.get).
    return request._state.get(key)


def _newer(stored: SignIn, held: SignIn) -> bool:
    # Another token, expiring later: a refresh happened since `held` was read. A forced
    # refresh holds the same token with expiry 0, so it is not mistaken for one.
    return (
        stored.tokens.access_token != held.tokens.access_token
        and stored.tokens.expires_at > held.tokens.expires_at
    )


@functools.lru_cache(maxsize=1024)
def _header_text(value: str) -> str:
    # Header values are ASCII on the wire; names may be Chinese. Percent-encoding (UTF-8) of
    # everything outside printable ASCII, and of '%' itself, lets the CRM always unquote.
    # Cached: with identity headers on, every page of a signed-in agent quotes the same two
    # values again, and `quote` was most of the cost of noting the identity.
    return quote(value, safe=" !\"#$&'()*+,-./:;<=>?@[]^_`{|}~")
