"""The Redis store opens its cookie and its records through the codec's cache of authentic
tokens (`SessionCodec.decode_as`), while revocation, expiry and the record's own key are still
judged on every request."""

# The fixtures `redis` and `redis_server` come from the store's own tests, so their names are
# both imported and used as parameters here.
# ruff: noqa: F811

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis
from session_jar import request_with, saved

# The throw-away redis-server and the replicas of the store's own tests.
from test_session_store import (  # noqa: F401 (redis, redis_server: fixtures)
    DAY,
    KEY_A,
    Clock,
    make_manager,
    redis,
    redis_server,
    session_keys,
    signin_at,
)

from ccc_gateway.sessions import redis_storage as redis_store
from ccc_gateway.sessions.codec import SessionCodec
from ccc_gateway.sessions.manager import SESSION_COOKIE
from ccc_gateway.sessions.redis_storage import record_key
from ccc_gateway.sessions.signin import SignIn


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every SignIn the Redis store builds from a record."""
    made: list[Any] = []
    real = SignIn.from_payload

    def counting(data: Any) -> SignIn | None:
        made.append(data)
        return real(data)

    monkeypatch.setattr(redis_store.SignIn, "from_payload", counting)
    return made


async def test_a_record_is_opened_once_and_its_signin_shared(redis: Redis, builds: list[Any]):
    """Repeated requests with the same cookie and record share one SignIn, built once."""
    clock = Clock()
    manager = make_manager(clock, redis)
    signin = signin_at(clock)
    jar = await saved(manager, signin)
    first = await manager.load(request_with(jar))
    clock.now += 5
    second = await manager.load(request_with(jar))
    assert first == signin and second is first
    assert len(builds) == 1


async def test_a_cached_record_deleted_elsewhere_no_longer_loads(redis: Redis):
    """Redis is asked on every request: a sign-out on another replica ends the cached one."""
    clock = Clock()
    a, b = make_manager(clock, redis), make_manager(clock, redis)
    signin = signin_at(clock)
    jar = await saved(a, signin)
    assert await b.load(request_with(jar)) == signin  # cached on b now
    request = request_with(jar)
    await a.load(request)
    await a.forget(request, signin)
    assert await b.load(request_with(jar)) is None
    assert await redis.get(record_key(_handle(jar, clock))) is None


async def test_a_cached_record_past_its_fernet_age_no_longer_loads(redis: Redis):
    """The record's sealing time is compared on every request, cached or not."""
    clock = Clock()
    manager = make_manager(clock, redis, max_age=DAY, idle_timeout=7 * DAY)
    jar = await saved(manager, signin_at(clock))
    assert await manager.load(request_with(jar)) is not None
    clock.now += DAY + 1  # Redis still holds it (its TTL runs on the real clock)
    assert await session_keys(redis) != []
    assert await manager.load(request_with(jar)) is None


async def test_a_cached_record_copied_under_another_key_does_not_open(redis: Redis):
    """The record's own key is checked per request, also when its token is already cached."""
    clock = Clock()
    manager = make_manager(clock, redis)
    victim_signin = signin_at(clock, "victim-token")
    victim = await saved(manager, victim_signin)
    attacker = await saved(manager, signin_at(clock, "attacker-token"))
    assert await manager.load(request_with(victim)) == victim_signin  # the record is cached
    stolen = await redis.get(record_key(_handle(victim, clock)))
    await redis.set(record_key(_handle(attacker, clock)), stolen)
    assert await manager.load(request_with(attacker)) is None
    assert await manager.load(request_with(victim)) == victim_signin


async def test_a_new_record_after_a_save_is_opened_anew(redis: Redis, builds: list[Any]):
    """A save seals a new record; the next request reads that one, not the cached old one."""
    clock = Clock()
    manager = make_manager(clock, redis)
    signin = signin_at(clock)
    jar = await saved(manager, signin)
    request = request_with(jar)
    assert await manager.load(request) == signin
    clock.now += 60
    newer = signin.touched(clock.now)
    await manager.save(request, newer)
    assert await manager.load(request_with(jar)) == newer
    assert len(builds) == 2


def _handle(jar: dict[str, str], clock: Clock) -> str:
    payload = SessionCodec([KEY_A]).decode(jar[SESSION_COOKIE], now=clock.now, max_age=DAY)
    assert payload is not None
    handle: str = payload["h"]
    return handle
