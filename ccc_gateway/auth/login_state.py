"""Sign-ins in progress: what the callback needs to finish one, kept in the browser.

Each started sign-in is an entry {state, PKCE verifier, nonce, return_to, CRM user, created}
in one encrypted cookie, keyed by state, so several tabs may sign in at once (at most
`MAX_ENTRIES`; the oldest is dropped). An entry is used once: the callback takes it out, and
consumed states are remembered until they would have expired anyway, so a replayed callback
URL with an old copy of the cookie fails too: in this process by default (`MemoryConsumed`),
or in Redis with `session.store` (sessions/redis_storage.py `RedisConsumedStates`), so a
replay on another replica fails as well.

The cookie is `SameSite=None`: Alibaba's `response_mode=form_post` callback is a cross-site
POST, and a Lax cookie would not be sent with it. It is still `Secure`, `HttpOnly`, `__Host-`.
"""

from __future__ import annotations

import hmac
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from aiohttp import web

from ccc_gateway.sessions.codec import SessionCodec

COOKIE_NAME = "__Host-ccc-login"
MAX_ENTRIES = 5
MAX_CONSUMED = 10_000


@dataclass(frozen=True, slots=True)
class LoginState:
    state: str
    verifier: str
    nonce: str
    return_to: str
    crm_user: str | None
    created_at: float


class ConsumedStates(Protocol):
    async def first_use(self, state: str, *, until: float, now: float) -> bool:
        """Mark `state` used until `until`; False when it was used before."""
        ...


class MemoryConsumed:
    """Consumed states of this process (bounded; a single process or sticky sessions)."""

    def __init__(self) -> None:
        self._consumed: OrderedDict[str, float] = OrderedDict()

    async def first_use(self, state: str, *, until: float, now: float) -> bool:
        self._forget_expired(now)
        if state in self._consumed:
            return False
        self._consumed[state] = until
        while len(self._consumed) > MAX_CONSUMED:
            self._consumed.popitem(last=False)
        return True

    def _forget_expired(self, now: float) -> None:
        while self._consumed:
            state, expires = next(iter(self._consumed.items()))
            if expires > now:
                break
            del self._consumed[state]


class LoginStates:
    def __init__(
        self, codec: SessionCodec, *, ttl: float, consumed: ConsumedStates | None = None
    ) -> None:
        self._codec = codec
        self._ttl = ttl
        self._consumed: ConsumedStates = consumed if consumed is not None else MemoryConsumed()

    def load(self, request: web.Request, *, now: float) -> list[LoginState]:
        """The unexpired sign-ins this browser has in progress (none for a bad cookie)."""
        token = request.cookies.get(COOKIE_NAME)
        if not token:
            return []
        data = self._codec.decode(token, now=now, max_age=self._ttl)
        entries = data.get("e") if data else None
        if not isinstance(entries, list):
            return []
        states = [_entry(item) for item in entries]
        return [s for s in states if s is not None and now - s.created_at < self._ttl]

    async def take(
        self, entries: list[LoginState], state: str, *, now: float
    ) -> tuple[LoginState | None, list[LoginState]]:
        """The entry for `state` (compared in constant time) and the entries left.

        Raises StoreUnavailable when consumed states are kept in Redis and it is down.
        """
        found = None
        for entry in entries:
            if hmac.compare_digest(entry.state.encode(), state.encode()):
                found = entry
        if found is None:
            return None, entries
        until = found.created_at + self._ttl
        if not await self._consumed.first_use(found.state, until=until, now=now):
            return None, entries
        return found, [e for e in entries if e is not found]

    def write(self, response: web.StreamResponse, entries: list[LoginState], *, now: float) -> None:
        """Store the entries (newest `MAX_ENTRIES`), or delete the cookie when none are left."""
        entries = sorted(entries, key=lambda e: e.created_at)[-MAX_ENTRIES:]
        if not entries:
            # Deletion carries the same attributes, or a __Host- cookie may not be removed.
            response.set_cookie(
                COOKIE_NAME, "", max_age=0, path="/", secure=True, httponly=True, samesite="None"
            )
            return
        token = self._codec.encode({"e": [asdict(e) for e in entries]}, now=now)
        # SameSite=None so a form_post callback (a cross-site POST) still carries it.
        response.set_cookie(
            COOKIE_NAME,
            token,
            max_age=int(self._ttl),
            path="/",
            secure=True,
            httponly=True,
            samesite="None",
        )


def _entry(item: Any) -> LoginState | None:
    if not isinstance(item, dict):
        return None
    try:
        return LoginState(
            state=str(item["state"]),
            verifier=str(item["verifier"]),
            nonce=str(item["nonce"]),
            return_to=str(item["return_to"]),
            crm_user=None if item.get("crm_user") is None else str(item["crm_user"]),
            created_at=float(item["created_at"]),
        )
    except (KeyError, TypeError, ValueError):
        return None
