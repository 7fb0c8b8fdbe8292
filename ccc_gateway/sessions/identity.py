"""The agent's identity for the CRM: headers on proxied requests, and websockets that end with it.

Before a CRM page is proxied, `note_identity` finds the live sign-in of the browser whose CRM
user is the one logged in now, and remembers the two agent headers for the proxy's synchronous
`identity_headers` hook. When the CRM cannot say who is logged in, no headers are sent (fail
closed).

A CRM websocket whose handshake carried those headers is watched for as long as it is open
(`identity_watch`): a sign-out in this process ends it at once (SessionManager.forget wakes
the watch); a sign-out on another replica (the shared store no longer knows the sign-in) and
the sign-in's absolute end are found by a check every `WATCH_INTERVAL` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from aiohttp import web

from ccc_gateway.keys import AGENT_IDENTITY
from ccc_gateway.sessions.errors import CrmIdentityUnavailable
from ccc_gateway.sessions.signin import AGENT_NAME_HEADER, AGENT_UPN_HEADER, SignIn
from ccc_gateway.sessions.storage import StorageError

if TYPE_CHECKING:
    from ccc_gateway.sessions.manager import SessionManager

log = logging.getLogger(__name__)

__all__ = [
    "AGENT_NAME_HEADER",
    "AGENT_UPN_HEADER",
    "SIGNED_OUT",
    "SIGN_IN_EXPIRED",
    "AgentIdentity",
]

_NO_IDENTITY: Mapping[str, str] = MappingProxyType({})  # one for every request without one
# How often an identity-carrying CRM websocket checks that its sign-in still stands, for the
# ends nobody in this process is told about: a sign-out on another replica, the absolute end.
WATCH_INTERVAL = 5.0
SIGNED_OUT: Final = "signed out"  # close reasons for the browser (with code 1008)
SIGN_IN_EXPIRED: Final = "sign-in expired"


class AgentIdentity:
    """The proxy's identity hooks, over the manager's sign-ins and revocation list."""

    def __init__(self, manager: SessionManager) -> None:
        self._manager = manager
        # sid -> wake-ups of the watches of websockets speaking for that sign-in (forget sets
        # them); an entry lives exactly as long as one of its sockets is open.
        self.watches: dict[str, set[asyncio.Event]] = {}

    def wake(self, sid: str) -> None:
        """End the watches of `sid`'s websockets now, not at their next check."""
        for wake in self.watches.get(sid, ()):
            wake.set()

    async def note_identity(self, request: web.Request) -> None:
        """Before a page is proxied: remember the agent headers this browser may send the CRM.

        Only for a live sign-in whose CRM user is the one logged in now. The whoami answer comes
        from CrmIdentity's per-cookie cache, so at most one CRM lookup per browser per
        `whoami_cache_ttl`.
        """
        manager = self._manager
        # Most CRM traffic has no gateway session (scripts, assets, agents not signed in):
        # one substring test instead of the store's lookup.
        if not manager.may_be_signed_in(request):
            return
        try:
            # Nothing of this request can be pending yet: the stored sign-in is the one.
            signin = await manager.load_stored(request)
        except StorageError:
            return  # the store is down: the page is served, only without identity headers
        if signin is None:
            return
        if manager.crm is not None:
            try:
                crm_user = await manager.crm.current_user(request)
            except CrmIdentityUnavailable:
                return
            if crm_user is None or crm_user != signin.crm_user:
                return
        request[AGENT_IDENTITY] = signin.agent.headers

    def identity_headers(self, request: web.Request) -> Mapping[str, str]:
        """CrmProxy's `identity_headers` hook: what `note_identity` found (no I/O here)."""
        return request.get(AGENT_IDENTITY) or _NO_IDENTITY

    def identity_watch(self, request: web.Request) -> Coroutine[Any, Any, str] | None:
        """CrmProxy's hook for an open websocket: a watch that returns (the close reason) when
        the sign-in whose identity the handshake carried ends; None when it carried none.

        A socket without identity is none of the sign-in's business: the CRM's own realtime
        features go on whoever signs in or out of Alibaba.
        """
        if request.get(AGENT_IDENTITY) is None:
            return None
        return self._watch(request)

    async def _watch(self, request: web.Request) -> str:
        # The sign-in is read again here rather than kept by note_identity: pages never pay
        # for websockets. The handshake's cookie is judged only now, at the handshake; the
        # browser goes on with newer cookies (refreshes, last_used), so later checks look
        # only at revocation and the absolute end, never at idle or token expiry.
        signin = await self._handshake_signin(request)
        if signin is None:
            return SIGNED_OUT  # ended between note_identity and now
        wake = asyncio.Event()
        self.watches.setdefault(signin.sid, set()).add(wake)
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
            watches = self.watches.get(signin.sid)
            if watches is not None:
                watches.discard(wake)
                if not watches:
                    del self.watches[signin.sid]

    async def _handshake_signin(self, request: web.Request) -> SignIn | None:
        manager = self._manager
        while True:
            try:
                signin = await manager.store.load(request, now=manager.clock())
            except StorageError:
                await asyncio.sleep(WATCH_INTERVAL)  # the store is down: try again
                continue
            if signin is None or not manager.alive(signin, manager.clock()):
                return None
            return signin

    async def _ended(self, request: web.Request, signin: SignIn) -> str | None:
        """Why `signin` is over, or None while it stands."""
        manager = self._manager
        if manager.revoked(signin.sid):
            return SIGNED_OUT
        now = manager.clock()
        if now - signin.created_at >= manager.config.max_age:
            return SIGN_IN_EXPIRED
        try:
            # A shared store forgets a sign-in signed out on any replica (and one it let
            # expire, its record's lifetime following the newest last_used); the cookie store
            # keeps nothing to ask and answers the sign-in itself.
            stored = await manager.store.current(request, signin, now=now)
        except StorageError:
            # A store outage is not a sign-out: the CRM's socket stays, and the next check
            # asks again (pages are served meanwhile too, without identity headers).
            return None
        return SIGNED_OUT if stored is None else None
