"""Refreshing a sign-in's access token: once per sign-in at a time, and what to do on failure.

When the access token is within `refresh_leeway` of expiry, one request per sign-in refreshes
it in this process: concurrent requests wait for it and reuse its result, and requests still
carrying the previous cookie within `REFRESH_GRACE` reuse it too (a provider that rotates
refresh tokens would otherwise sign the loser out). With Redis the store's lock extends this
across replicas, and the stored sign-in is read again under it.

Only `invalid_grant`/`invalid_client` end a sign-in (`NotSignedIn`, 401); a network error or
a 5xx keeps it (`RefreshFailed`, `RefreshTimeout`: 502/504 in the views; docs/oauth.md,
"Refresh").
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from ccc_gateway.auth.oauth.client import AlibabaOAuthClient
from ccc_gateway.auth.oauth.errors import (
    OAuthError,
    OAuthProviderError,
    OAuthTimeout,
    outcome_label,
)
from ccc_gateway.ops.metrics import record
from ccc_gateway.sessions.errors import NotSignedIn, RefreshFailed, RefreshTimeout
from ccc_gateway.sessions.signin import SignIn

if TYPE_CHECKING:
    from ccc_gateway.sessions.manager import SessionManager

log = logging.getLogger(__name__)

REFRESH_GRACE = 60.0  # how long a refresh result serves requests still carrying the old cookie


class SingleFlightRefresher:
    """The per-sign-in refresh state of one process; every table is keyed by sid."""

    def __init__(self, manager: SessionManager, oauth: AlibabaOAuthClient) -> None:
        self._manager = manager
        self._oauth = oauth
        self._locks: dict[str, asyncio.Lock] = {}
        self.refreshed: dict[str, tuple[float, SignIn]] = {}  # sid -> (until, newer sign-in)
        # Requests that waited for a refresh which failed share its failure instead of each
        # trying again in turn (N waiters would otherwise take N timeouts): sid -> the last
        # failure and how many failures there have been, so a waiter can tell one happened.
        self._failures: dict[str, int] = {}
        self._users: dict[str, int] = {}  # requests using or waiting for each sign-in's lock
        self._failed: dict[str, tuple[int, RefreshFailed]] = {}

    async def refresh(self, request: web.Request, signin: SignIn) -> SignIn:
        """Refresh once per sign-in at a time; a waiter reuses the result it waited for.

        The in-process lock comes first, so a replica's own concurrent requests queue here
        rather than each polling the store's lock; the result is saved before either lock is
        let go, so whoever takes it next finds the new tokens.
        """
        sid, manager = signin.sid, self._manager
        lock = self._locks.setdefault(sid, asyncio.Lock())
        self._users[sid] = self._users.get(sid, 0) + 1
        failures_seen = self._failures.get(sid, 0)
        try:
            async with lock:
                self._raise_failure_since(signin, failures_seen)
                newer = self._recent_refresh(signin)
                if newer is None:
                    async with manager.store.refresh_lock(signin):
                        newer = await self._refresh_shared(request, signin)
                        await manager.save(request, newer)
                else:
                    await manager.save(request, newer)
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
        manager = self._manager
        stored = await manager.store.current(request, signin, now=manager.clock())
        if stored is None:
            manager.clear(request)
            raise NotSignedIn("The Alibaba sign-in has ended; sign in again.")
        if _newer(stored, signin):
            return stored
        return await self._refresh_now(request, signin)

    def _raise_failure_since(self, signin: SignIn, failures_seen: int) -> None:
        """Fail like the refresh attempt that failed while this request waited for the lock."""
        entry = self._failed.get(signin.sid)
        if entry is not None and entry[0] > failures_seen:
            failure = entry[1]
            raise type(failure)(*failure.args)

    def _recent_refresh(self, signin: SignIn) -> SignIn | None:
        now = self._manager.clock()
        for sid in [s for s, (until, _) in self.refreshed.items() if until <= now]:
            del self.refreshed[sid]
        entry = self.refreshed.get(signin.sid)
        if entry is not None and entry[1].tokens.expires_at > signin.tokens.expires_at:
            return entry[1]
        return None

    async def _refresh_now(self, request: web.Request, signin: SignIn) -> SignIn:
        manager = self._manager
        now = manager.clock()
        refresh_token = signin.tokens.refresh_token
        if refresh_token is None:
            if signin.tokens.expires_within(now):
                manager.clear(request)
                raise NotSignedIn("The Alibaba sign-in has expired.")
            return signin  # nothing to refresh with; the token is still valid for now
        try:
            tokens = await self._oauth.refresh(refresh_token)
        except OAuthError as error:
            record(request, "refresh", outcome_label(error))
            failure = await self._refresh_failure(request, signin, error)
            if isinstance(failure, RefreshFailed):
                count = self._failures[signin.sid] = self._failures.get(signin.sid, 0) + 1
                self._failed[signin.sid] = (count, failure)
            raise failure from None
        self._failed.pop(signin.sid, None)
        newer = signin.with_tokens(tokens, now)
        # The older cookies' cached entries hold the replaced tokens: they go now. Requests
        # still carrying an older cookie open it again and get `newer` from `refreshed`.
        manager.caches.drop_signin(signin.sid)
        self.refreshed[signin.sid] = (now + REFRESH_GRACE, newer)
        record(request, "refresh", "ok")
        log.info("refreshed the Alibaba token", extra={"fields": {"agent": signin.agent.upn}})
        return newer

    async def _refresh_failure(
        self, request: web.Request, signin: SignIn, error: OAuthError
    ) -> NotSignedIn | RefreshFailed:
        agent = {"fields": {"agent": signin.agent.upn, "error": type(error).__name__}}
        if isinstance(error, OAuthProviderError) and error.fatal:
            log.info("refresh refused by Alibaba (%s): signing out", error.error, extra=agent)
            await self._manager.forget(request, signin)
            return NotSignedIn("The Alibaba sign-in has ended; sign in again.")
        log.warning("refresh failed, keeping the sign-in", extra=agent)
        if isinstance(error, OAuthTimeout):
            return RefreshTimeout("Alibaba Cloud did not answer the token refresh in time.")
        return RefreshFailed("Alibaba Cloud could not refresh the token right now; try again.")


def _newer(stored: SignIn, held: SignIn) -> bool:
    # Another token, expiring later: a refresh happened since `held` was read. A forced
    # refresh holds the same token with expiry 0, so it is not mistaken for one.
    return (
        stored.tokens.access_token != held.tokens.access_token
        and stored.tokens.expires_at > held.tokens.expires_at
    )
