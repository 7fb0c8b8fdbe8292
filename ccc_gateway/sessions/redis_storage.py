"""The Redis session store (`session.store: redis://…`): sign-ins shared by every replica.

The browser's `__Host-ccc-session` cookie carries only a random handle (256 bits), sealed
with the key ring like any session cookie, so it cannot be forged or altered. The sign-in
itself is kept at `ccc:session:<sha256(handle)>`, sealed with the same key ring (Redis never
sees a token in clear; a leaked dump opens nothing without the keys), and expires when the
sign-in would: at its absolute lifetime or its idle timeout, whichever comes first. Only the
hash of the handle is a key, so `KEYS ccc:session:*` does not hand out usable cookies.

A refresh takes `ccc:refresh:<sha256(sid)>` with SET NX PX (redis-py's `Lock`, released by a
compare-and-delete script), so one replica refreshes while the others wait (bounded) and then
reuse the stored result. A holder that dies leaves a lock that expires by itself.

Consumed login states are `ccc:login-state:<sha256(state)>` (SET NX with the state's remaining
lifetime), so a replayed callback fails on every replica, not just the one that took it.

Every Redis failure becomes `StoreUnavailable` (503 "session store unavailable"); a refresh
lock not had in time is `RefreshLockTimeout` (504).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from aiohttp import web
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import LockError, RedisError

from ccc_gateway.keys import REDIS_HANDLE
from ccc_gateway.sessions.codec import SessionCodec
from ccc_gateway.sessions.cookie_storage import CookieSession
from ccc_gateway.sessions.signin import SignIn
from ccc_gateway.sessions.storage import RefreshLockTimeout, SessionStore, StoreUnavailable

log = logging.getLogger(__name__)

SESSION_PREFIX: Final = "ccc:session:"
LOCK_PREFIX: Final = "ccc:refresh:"
STATE_PREFIX: Final = "ccc:login-state:"
HANDLE_BYTES = 32  # the cookie's session handle: 256 random bits
COOKIE_VERSION = 1
CONNECT_TIMEOUT = 2.0  # seconds; a down Redis must answer 503 quickly, not hang the softphone
COMMAND_TIMEOUT = 2.0
LOCK_POLL = 0.05  # how often a waiting replica retries the refresh lock

_T = TypeVar("_T")


def connect(url: str) -> Redis:
    """A lazily connecting client for `redis://` or `rediss://` (password in the URL)."""
    return Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT,
        socket_timeout=COMMAND_TIMEOUT,
        # One immediate retry heals a pooled connection Redis closed (restart, idle timeout);
        # the default exponential backoff would keep a request waiting for seconds instead.
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def record_key(handle: str) -> str:
    return SESSION_PREFIX + _digest(handle)


async def _call(operation: Awaitable[_T]) -> _T:
    try:
        return await operation
    except (RedisError, OSError) as exc:
        log.warning("session store unavailable: %s", type(exc).__name__)
        raise StoreUnavailable() from None


@dataclass(frozen=True, slots=True)
class Held:
    """The handle behind this request's sign-in, and whether the cookie must be written."""

    sid: str
    handle: str
    cookie_due: bool  # a new handle, or a cookie sealed with an older key
    record_stale: bool = False  # the record was sealed with an older key


class RedisStore(SessionStore):
    """Sign-ins in Redis, sealed with the key ring; the cookie holds a handle only."""

    name = "redis"

    def __init__(
        self,
        redis: Redis,
        cookies: CookieSession,
        codec: SessionCodec,
        *,
        max_age: float,
        idle_timeout: float,
        lock_ttl: float,
        lock_wait: float,
    ) -> None:
        super().__init__(cookies)
        self._redis = redis
        self._codec = codec
        self._lifetime = max_age
        self._idle_timeout = idle_timeout
        self._lock_ttl = lock_ttl  # a dead holder blocks refreshes of its sign-in this long
        self._lock_wait = lock_wait  # how long a request waits for another replica's refresh

    async def load(self, request: web.Request, *, now: float) -> SignIn | None:
        handle = self._handle(request, now)
        if handle is None:
            return None
        signin, stale = await self._read(handle, now)
        if signin is None:
            return None
        cookie_stale = self._cookies.needs_reencrypt(request)
        request[REDIS_HANDLE] = Held(signin.sid, handle, cookie_stale, stale)
        return signin

    def needs_rewrite(self, request: web.Request) -> bool:
        held = request.get(REDIS_HANDLE)
        return held is not None and (held.cookie_due or held.record_stale)

    async def save(self, request: web.Request, signin: SignIn, *, now: float) -> None:
        held = request.get(REDIS_HANDLE)
        if held is None or held.sid != signin.sid:
            # A new sign-in gets a new handle, never one the browser already had: a handle
            # planted before sign-in (session fixation) is worth nothing afterwards.
            await self._drop_carried(request, now)
            held = Held(signin.sid, secrets.token_urlsafe(HANDLE_BYTES), cookie_due=True)
        key = record_key(held.handle)
        ends = min(signin.created_at + self._lifetime, signin.last_used + self._idle_timeout)
        ttl_ms = int((ends - now) * 1000)
        if ttl_ms <= 0:
            await _call(self._redis.delete(key))
        else:
            record = self._codec.encode({"k": key, "s": signin.to_payload()}, now=now)
            await _call(self._redis.set(key, record, px=ttl_ms))
        request[REDIS_HANDLE] = Held(held.sid, held.handle, held.cookie_due)

    async def delete(self, request: web.Request, signin: SignIn) -> None:
        held = request.get(REDIS_HANDLE)
        if held is not None and held.sid == signin.sid:
            await _call(self._redis.delete(record_key(held.handle)))

    async def current(self, request: web.Request, signin: SignIn, *, now: float) -> SignIn | None:
        held = request.get(REDIS_HANDLE)
        if held is None or held.sid != signin.sid:
            return None
        stored, _ = await self._read(held.handle, now)
        return stored if stored is not None and stored.sid == signin.sid else None

    @contextlib.asynccontextmanager
    async def refresh_lock(self, signin: SignIn) -> AsyncIterator[None]:
        lock = self._redis.lock(
            LOCK_PREFIX + _digest(signin.sid),
            timeout=self._lock_ttl,
            sleep=LOCK_POLL,
            blocking_timeout=self._lock_wait,
            thread_local=False,
        )
        if not await _call(lock.acquire()):
            raise RefreshLockTimeout("Another gateway is still refreshing this sign-in; try again.")
        try:
            yield
        finally:
            try:
                await lock.release()
            except (LockError, RedisError, OSError) as exc:
                # Expired (it outlived lock_ttl) or Redis went away: either way it is gone or
                # will be at its expiry; the compare-and-delete never frees another's lock.
                log.warning("refresh lock not released: %s", type(exc).__name__)

    def write_cookie(
        self, response: web.StreamResponse, request: web.Request, signin: SignIn, *, now: float
    ) -> None:
        held = request.get(REDIS_HANDLE)
        if held is not None and held.sid == signin.sid and held.cookie_due:
            payload = {"v": COOKIE_VERSION, "h": held.handle}
            self._cookies.save(response, request, payload, now=now)

    async def check(self) -> str | None:
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            return f"unreachable: {type(exc).__name__}"
        return None

    async def close(self) -> None:
        await self._redis.aclose()

    # Both the cookie and the record are opened through the codec's cache of authentic
    # tokens (`decode_as`): the handle and the SignIn are made once per sealed value, not
    # decrypted, inflated and parsed on every request. What must be judged per request still
    # is: the record is read from Redis every time (a sign-out anywhere deletes it), both
    # tokens' Fernet expiry is compared, and the record must name the key it was read from.

    def _handle(self, request: web.Request, now: float) -> str | None:
        return self._cookies.load_as(request, now=now, build=_handle_in)

    async def _read(self, handle: str, now: float) -> tuple[SignIn | None, bool]:
        key = record_key(handle)
        raw: Any = await _call(self._redis.get(key))
        if not isinstance(raw, bytes):
            return None, False
        token = raw.decode("ascii", errors="replace")
        record = self._codec.decode_as(
            token, now=now, max_age=self._lifetime, build=_record_in, owner=_record_sid
        )
        # The record names its own key: a record copied under another key does not open.
        if record is None or record[0] != key:
            return None, False
        return record[1], self._codec.needs_reencrypt(token)

    async def _drop_carried(self, request: web.Request, now: float) -> None:
        # Signing in again replaces the browser's previous sign-in: its record goes now
        # rather than lingering, tokens and all, until its idle timeout.
        old = self._handle(request, now)
        if old is not None:
            await _call(self._redis.delete(record_key(old)))


def _record_sid(record: tuple[str, SignIn]) -> str:
    return record[1].sid


def _handle_in(payload: Mapping[str, Any]) -> str | None:
    """The handle a session cookie holds; None for anything else (such as a whole sign-in
    from the cookie store)."""
    if payload.get("v") != COOKIE_VERSION:
        return None
    handle = payload.get("h")
    return handle if isinstance(handle, str) and len(handle) >= HANDLE_BYTES else None


def _record_in(payload: Mapping[str, Any]) -> tuple[str, SignIn] | None:
    """The key a record names and the sign-in it holds; None when it holds none."""
    key, data = payload.get("k"), payload.get("s")
    if not isinstance(key, str) or not isinstance(data, dict):
        return None
    signin = SignIn.from_payload(data)
    return None if signin is None else (key, signin)


class RedisConsumedStates:
    """Login states already used, shared by every replica (SET NX per state)."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis

    async def first_use(self, state: str, *, until: float, now: float) -> bool:
        """Mark `state` used until `until`; False when some replica already used it."""
        ttl_ms = max(1, int((until - now) * 1000))
        key = STATE_PREFIX + _digest(state)
        return bool(await _call(self._redis.set(key, b"1", nx=True, px=ttl_ms)))


__all__ = ["RedisConsumedStates", "RedisStore", "connect", "record_key"]
