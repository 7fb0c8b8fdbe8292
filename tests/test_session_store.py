"""Session stores against a real redis-server: handle-only cookies, encryption at rest, TTLs,
the cross-replica refresh lock, shared consumed login states, and parity with the cookie store."""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from redis.asyncio import Redis
from session_jar import cookies_of, request_with, saved

from ccc_gateway.auth.login_state import LoginState, LoginStates
from ccc_gateway.auth.oauth.tokens import TokenSet
from ccc_gateway.config.load import ConfigError, Secret, SessionConfig, parse_config
from ccc_gateway.runtime.tls import ensure_self_signed
from ccc_gateway.sessions.codec import SessionCodec
from ccc_gateway.sessions.cookie_storage import CookieSession
from ccc_gateway.sessions.errors import NotSignedIn
from ccc_gateway.sessions.manager import SESSION_COOKIE, SessionManager
from ccc_gateway.sessions.redis_storage import (
    LOCK_PREFIX,
    SESSION_PREFIX,
    RedisConsumedStates,
    RedisStore,
    connect,
    record_key,
)
from ccc_gateway.sessions.signin import Agent, SignIn
from ccc_gateway.sessions.storage import RefreshLockTimeout, StoreUnavailable

REDIS_SERVER = shutil.which("redis-server")
NO_REDIS = "redis-server is not installed (scripts/install-system-packages.sh installs it)"
WAIT = 20.0
KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
DAY = 86400.0


class RedisServer:
    """A throw-away redis-server on a loopback port: no persistence, stopped by the test."""

    def __init__(self, port: int, directory: Path) -> None:
        self.port = port
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / "redis.log").open("ab") as log:
            self.process = subprocess.Popen(
                [
                    *(REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"),
                    *("--save", "", "--appendonly", "no", "--dir", str(self.directory)),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + WAIT
        while not self._pong():
            assert self.process.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not come up"
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=WAIT)
        self.process = None

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture
def redis_server(
    tmp_path: Path, unused_tcp_port_factory: Callable[[], int]
) -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.skip(NO_REDIS)
    server = RedisServer(unused_tcp_port_factory(), tmp_path / "redis")
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[Redis]:
    client = connect(redis_server.url)
    yield client
    await client.aclose()


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeOAuth:
    """Counts refreshes; each waits for `gate` so tests can line requests up."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()
        self.called = asyncio.Event()

    async def refresh(self, refresh_token: str) -> TokenSet:
        self.calls += 1
        self.called.set()
        await self.gate.wait()
        return TokenSet(f"at-{self.calls + 1}", "Bearer", self.clock.now + 3600, refresh_token)


def make_manager(
    clock: Clock,
    redis: Redis | None,
    keys: tuple[str, ...] = (KEY_A,),
    oauth: FakeOAuth | None = None,
    lock_ttl: float = 15.0,
    lock_wait: float = 16.0,
    **config: Any,
) -> SessionManager:
    """One replica's SessionManager: its own codec, the shared keys, the shared Redis."""
    session_config = SessionConfig(keys=tuple(Secret(k) for k in keys), **config)
    codec = SessionCodec(list(keys))
    cookies = CookieSession(codec, name=SESSION_COOKIE, max_age=session_config.max_age)
    store = None
    if redis is not None:
        store = RedisStore(
            redis,
            cookies,
            codec,
            max_age=session_config.max_age,
            idle_timeout=session_config.idle_timeout,
            lock_ttl=lock_ttl,
            lock_wait=lock_wait,
        )
    return SessionManager(session_config, cookies, oauth, None, clock=clock, store=store)  # type: ignore[arg-type]


def signin_at(clock: Clock, access_token: str = "at-1", expires_in: float = 3600) -> SignIn:
    tokens = TokenSet(access_token, "Bearer", clock.now + expires_in, refresh_token="rt-1")
    return SignIn.new(tokens, Agent("agent1@x", "Agent One", "42"), None, clock.now)


async def session_keys(redis: Redis) -> list[bytes]:
    return [key async for key in redis.scan_iter(match=SESSION_PREFIX + "*")]


# Both stores behave alike where they should


@pytest.fixture(params=["cookie", "redis"])
def store_redis(request: pytest.FixtureRequest) -> Redis | None:
    """None for the cookie store; the Redis client for the Redis store."""
    if request.param == "cookie":
        return None
    return request.getfixturevalue("redis")  # type: ignore[no-any-return]


async def test_round_trip_in_either_store(store_redis: Redis | None):
    """A saved sign-in loads back from the cookie it wrote, in both stores."""
    clock = Clock()
    manager = make_manager(clock, store_redis)
    signin = signin_at(clock)
    loaded = await make_manager(clock, store_redis).load(request_with(await saved(manager, signin)))
    assert loaded == signin


async def test_lifetimes_in_either_store(store_redis: Redis | None):
    """Absolute lifetime and idle timeout end a sign-in in both stores."""
    clock = Clock()
    manager = make_manager(clock, store_redis, max_age=2 * DAY, idle_timeout=3600)
    jar = await saved(manager, signin_at(clock))
    clock.now += 3599
    assert await manager.load(request_with(jar)) is not None
    clock.now += 2
    assert await manager.load(request_with(jar)) is None


async def test_sign_out_refuses_an_old_cookie_copy_in_either_store(store_redis: Redis | None):
    """After forget() a copy of the cookie no longer loads (on this replica, in both stores)."""
    clock = Clock()
    manager = make_manager(clock, store_redis)
    signin = signin_at(clock)
    jar = await saved(manager, signin)
    request = request_with(jar)
    assert await manager.load(request) == signin
    await manager.forget(request, signin)
    assert await manager.load(request_with(jar)) is None


async def test_two_replicas_with_shared_keys_serve_the_same_cookie(store_redis: Redis | None):
    """The cookie written by one replica loads on another with the same keys (either store)."""
    clock = Clock()
    jar = await saved(make_manager(clock, store_redis), signin_at(clock))
    assert (await make_manager(clock, store_redis).load(request_with(jar))) is not None
    assert (await make_manager(clock, store_redis, keys=(KEY_B,)).load(request_with(jar))) is None


# Redis only


async def test_cookie_holds_only_a_handle_and_redis_holds_ciphertext(redis: Redis):
    """The cookie opens to a 256-bit handle; the record is keyed by its hash and sealed."""
    clock = Clock()
    signin = signin_at(clock, access_token="secret-access-token-xyz")
    jar = await saved(make_manager(clock, redis), signin)
    payload = SessionCodec([KEY_A]).decode(jar[SESSION_COOKIE], now=clock.now, max_age=DAY)
    assert payload is not None and set(payload) == {"v", "h"}
    handle = payload["h"]
    assert len(handle) >= 43  # token_urlsafe(32): 256 bits
    keys = await session_keys(redis)
    assert keys == [(SESSION_PREFIX + hashlib.sha256(handle.encode()).hexdigest()).encode()]
    raw = await redis.get(keys[0])
    assert b"secret-access-token-xyz" not in raw and b"rt-1" not in raw
    assert handle.encode() not in raw and b"agent1@x" not in raw


async def test_record_ttl_is_the_remaining_lifetime(redis: Redis):
    """The record expires with the sign-in: the earlier of absolute lifetime and idle timeout."""
    clock = Clock()
    manager = make_manager(clock, redis, max_age=DAY, idle_timeout=7 * DAY)
    signin = signin_at(clock)
    clock.now += DAY - 100  # 100 s of absolute lifetime left; idle allows far more
    await saved(manager, signin.touched(clock.now))
    (key,) = await session_keys(redis)
    assert 0 < await redis.pttl(key) <= 100_000
    idle = make_manager(clock, redis, max_age=30 * DAY, idle_timeout=50)
    await redis.flushdb()
    await saved(idle, signin_at(clock))
    (key,) = await session_keys(redis)
    assert 0 < await redis.pttl(key) <= 50_000


async def test_save_after_the_lifetime_deletes_the_record(redis: Redis):
    """Saving a sign-in already past its lifetime leaves nothing in Redis."""
    clock = Clock()
    manager = make_manager(clock, redis, max_age=DAY)
    signin = signin_at(clock)
    request = request_with(await saved(manager, signin))
    assert await manager.load(request) == signin
    clock.now += DAY + 1
    await manager.save(request, signin)
    assert await session_keys(redis) == []


async def test_sign_out_on_one_replica_is_seen_by_another(redis: Redis):
    """forget() on replica A deletes the record: replica B finds no sign-in at once."""
    clock = Clock()
    a, b = make_manager(clock, redis), make_manager(clock, redis)
    signin = signin_at(clock)
    jar = await saved(a, signin)
    assert await b.load(request_with(jar)) == signin
    request = request_with(jar)
    await a.load(request)
    await a.forget(request, signin)
    assert await b.load(request_with(jar)) is None
    assert await session_keys(redis) == []


async def test_record_under_another_key_does_not_open(redis: Redis):
    """A record copied to another handle's key is refused (it names its own key)."""
    clock = Clock()
    manager = make_manager(clock, redis)
    victim = await saved(manager, signin_at(clock, "victim-token"))
    attacker = await saved(manager, signin_at(clock, "attacker-token"))
    handle = SessionCodec([KEY_A]).decode(victim[SESSION_COOKIE], now=clock.now, max_age=DAY)
    attacker_handle = SessionCodec([KEY_A]).decode(
        attacker[SESSION_COOKIE], now=clock.now, max_age=DAY
    )
    assert handle is not None and attacker_handle is not None
    stolen = await redis.get(record_key(handle["h"]))
    await redis.set(record_key(attacker_handle["h"]), stolen)
    assert await manager.load(request_with(attacker)) is None


async def test_new_sign_in_gets_a_new_handle_and_drops_the_old_record(redis: Redis):
    """Signing in again in the same browser replaces the handle; the old record is deleted."""
    clock = Clock()
    manager = make_manager(clock, redis)
    first = await saved(manager, signin_at(clock, "first"))
    request = request_with(first)
    await manager.save(request, signin_at(clock, "second"))
    second = await cookies_of(manager, request)
    assert second[SESSION_COOKIE] != first[SESSION_COOKIE]
    assert len(await session_keys(redis)) == 1
    loaded = await manager.load(request_with(second))
    assert loaded is not None and loaded.tokens.access_token == "second"


async def test_old_key_record_is_resealed_with_the_new_key(redis: Redis):
    """A record and cookie sealed with an older key are rewritten with the first key on use."""
    clock = Clock()
    jar = await saved(make_manager(clock, redis, keys=(KEY_A,)), signin_at(clock))
    rotated = make_manager(clock, redis, keys=(KEY_B, KEY_A))
    request = request_with(jar)
    assert await rotated.load(request) is not None
    new_jar = await cookies_of(rotated, request)
    only_b = make_manager(clock, redis, keys=(KEY_B,))
    assert await only_b.load(request_with(new_jar)) is not None
    assert await only_b.load(request_with(jar)) is None


async def test_concurrent_refreshes_on_two_replicas_reach_alibaba_once(redis: Redis):
    """Replicas A and B refresh the same expiring sign-in at once: one refresh, both get it."""
    clock = Clock()
    oauth = FakeOAuth(clock)
    a, b = make_manager(clock, redis, oauth=oauth), make_manager(clock, redis, oauth=oauth)
    jar = await saved(a, signin_at(clock, expires_in=30))
    oauth.gate.clear()
    req_a, req_b = request_with(jar), request_with(jar)
    first = asyncio.create_task(a.require(req_a))
    second = asyncio.create_task(b.require(req_b))
    await asyncio.wait_for(oauth.called.wait(), WAIT)
    await asyncio.sleep(0.1)  # let the other replica reach the lock (any order passes)
    oauth.gate.set()
    got_a, got_b = await asyncio.wait_for(asyncio.gather(first, second), WAIT)
    assert oauth.calls == 1
    assert got_a.tokens.access_token == got_b.tokens.access_token == "at-2"
    stored = await make_manager(clock, redis).load(request_with(jar))
    assert stored is not None and stored.tokens.access_token == "at-2"


async def test_forced_refresh_is_not_mistaken_for_one_done_elsewhere(redis: Redis):
    """A refresh of the stored token itself (expiry forced to 0) does reach Alibaba."""
    clock = Clock()
    oauth = FakeOAuth(clock)
    manager = make_manager(clock, redis, oauth=oauth)
    signin = signin_at(clock)
    request = request_with(await saved(manager, signin))
    held = await manager.load(request)
    assert held is not None
    forced = held.with_tokens(TokenSet("at-1", "Bearer", 0.0, "rt-1"), held.last_used)
    newer = await manager.refresh(request, forced)
    assert oauth.calls == 1 and newer.tokens.access_token == "at-2"


async def test_refresh_after_sign_out_elsewhere_is_401(redis: Redis):
    """A refresh that finds the record gone (signed out on another replica) is NotSignedIn
    (401 in the views), with no call to Alibaba."""
    clock = Clock()
    oauth = FakeOAuth(clock)
    manager = make_manager(clock, redis, oauth=oauth)
    jar = await saved(manager, signin_at(clock, expires_in=30))
    request = request_with(jar)
    held = await manager.load(request)
    assert held is not None
    await redis.flushdb()
    with pytest.raises(NotSignedIn):
        await manager.refresh(request, held)
    assert oauth.calls == 0


async def test_lock_of_a_dead_holder_expires(redis: Redis):
    """A refresh lock left by a replica that died expires; the next refresh then proceeds."""
    clock = Clock()
    signin = signin_at(clock)
    dead = LOCK_PREFIX + hashlib.sha256(signin.sid.encode()).hexdigest()
    await redis.set(dead, b"token-of-a-dead-replica", px=300)
    store = make_manager(clock, redis, lock_ttl=5, lock_wait=WAIT).store
    entered = False
    async with store.refresh_lock(signin):
        entered = True
        assert await redis.get(dead) != b"token-of-a-dead-replica"
    assert entered and await redis.get(dead) is None


async def test_lock_wait_is_bounded(redis: Redis):
    """A waiter gives up with 504 after lock_wait when the holder keeps the lock."""
    clock = Clock()
    signin = signin_at(clock)
    holder = make_manager(clock, redis, lock_ttl=60).store
    waiter = make_manager(clock, redis, lock_wait=0.2).store
    async with holder.refresh_lock(signin):
        with pytest.raises(RefreshLockTimeout):
            async with waiter.refresh_lock(signin):
                pytest.fail("entered a lock another replica holds")


async def test_consumed_login_state_is_shared_by_replicas(redis: Redis):
    """A state taken on one replica is refused on another, even with the same cookie."""
    codec = SessionCodec([KEY_A])
    a = LoginStates(codec, ttl=600, consumed=RedisConsumedStates(redis))
    b = LoginStates(codec, ttl=600, consumed=RedisConsumedStates(redis))
    entry = LoginState("state-1", "verifier", "nonce", "/", None, 1_700_000_000.0)
    found, _ = await a.take([entry], "state-1", now=entry.created_at + 5)
    assert found == entry
    again, left = await b.take([entry], "state-1", now=entry.created_at + 6)
    assert again is None and left == [entry]
    state_key = "ccc:login-state:" + hashlib.sha256(b"state-1").hexdigest()
    assert 0 < await redis.pttl(state_key) <= 595_000


async def test_redis_down_is_503_and_named_by_the_check(redis_server: RedisServer, redis: Redis):
    """With Redis stopped loading is StoreUnavailable (503) and check() says why."""
    clock = Clock()
    manager = make_manager(clock, redis)
    jar = await saved(manager, signin_at(clock))
    redis_server.stop()
    with pytest.raises(StoreUnavailable) as raised:
        await manager.load(request_with(jar))
    assert raised.value.message == "session store unavailable"  # auth/views.as_http: 503
    assert (await manager.store.check() or "").startswith("unreachable")
    states = LoginStates(SessionCodec([KEY_A]), ttl=600, consumed=RedisConsumedStates(redis))
    entry = LoginState("state-2", "v", "n", "/", None, clock.now)
    with pytest.raises(StoreUnavailable):
        await states.take([entry], "state-2", now=clock.now)
    await manager.note_identity(request_with(jar))  # a CRM page: no error, just no identity


# Configuration


def _config_text(tmp_path: Path, store: str) -> str:
    cert, key = ensure_self_signed(tmp_path / "tls")
    return (
        f"tls: {{cert: '{cert}', key: '{key}'}}\n"
        "upstream: {url: 'http://127.0.0.1:8080', whoami_path: null}\n"
        "aliyun: {client_id: c, client_secret: s,"
        " redirect_uri: 'https://crm.example/aliyun/auth/callback'}\n"
        "ccc: {instance_id: i}\n"
        f"session: {{keys: ['{KEY_A}'], store: '{store}'}}\n"
    )


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:6379/0", "rediss://:pw@redis.internal:6380/2", "redis://r"]
)
def test_store_urls_are_accepted_and_masked(tmp_path: Path, url: str):
    """redis:// and rediss:// URLs are accepted; the value is a Secret (masked in repr)."""
    config = parse_config(_config_text(tmp_path, url), {})
    assert config.session.store is not None and config.session.store.reveal() == url
    assert "pw" not in repr(config.session)


def test_store_url_from_the_environment(tmp_path: Path):
    """${REDIS_URL} supplies the URL (and its password) from the environment."""
    config = parse_config(
        _config_text(tmp_path, "${REDIS_URL}"), {"REDIS_URL": "redis://:s3cret@h:1/0"}
    )
    assert config.session.store == Secret("redis://:s3cret@h:1/0")


@pytest.mark.parametrize("url", ["http://h:6379/0", "redis://:hunter2@h:1/x", "redis://"])
def test_bad_store_urls_are_reported_without_the_password(tmp_path: Path, url: str):
    """A wrong scheme, a non-numeric database or no host is a problem at session.store."""
    with pytest.raises(ConfigError) as raised:
        parse_config(_config_text(tmp_path, url), {})
    assert any(p.startswith("session.store:") for p in raised.value.problems)
    assert "hunter2" not in str(raised.value)
