"""The decoded-session cache: a repeated cookie is opened once, yet every check still holds.

A signed-in browser presents the same sealed cookie request after request, so the codec keeps
the `SignIn` built from it (`SessionCodec.decode_as`). These tests pin down what that cache
must not change: lifetimes, revocation, sign-out, key rotation and reloads, refresh and the
CRM binding are judged on every request, the cache stays bounded, and no request can alter
the session another request is handed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import pytest
from aiohttp import web
from cryptography.fernet import Fernet
from session_jar import cookies_of, request_with, saved

from ccc_gateway.app import reload_keys
from ccc_gateway.auth.oauth.tokens import TokenSet
from ccc_gateway.config.load import Secret, SessionConfig
from ccc_gateway.keys import CACHES, SESSION_CODEC
from ccc_gateway.sessions.codec import SessionCodec
from ccc_gateway.sessions.cookie_storage import CookieSession
from ccc_gateway.sessions.errors import CrmUserMismatch
from ccc_gateway.sessions.manager import SESSION_COOKIE, SessionManager
from ccc_gateway.sessions.signin import Agent, SignIn

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
NOW = 1_700_000_000.0
DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class _Counter:
    """Counts Fernet decryptions and SignIn builds: what a cache hit must skip."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.decrypts = 0
        self.builds = 0
        decrypt = Fernet.decrypt
        build = SignIn.from_payload.__func__  # type: ignore[attr-defined]

        def counting_decrypt(fernet: Fernet, token: bytes | str, ttl: int | None = None) -> bytes:
            self.decrypts += 1
            return decrypt(fernet, token, ttl)

        def counting_build(cls: type[SignIn], data: Mapping[str, Any]) -> SignIn | None:
            self.builds += 1
            result: SignIn | None = build(cls, data)
            return result

        monkeypatch.setattr(Fernet, "decrypt", counting_decrypt)
        monkeypatch.setattr(SignIn, "from_payload", classmethod(counting_build))


class _Crm:
    """A CrmIdentity stand-in: the CRM user logged in now."""

    def __init__(self, user: str | None) -> None:
        self.user = user

    async def current_user(self, request: web.Request) -> str | None:
        return self.user


class _OAuth:
    """An OAuth client whose refresh always grants a new access token."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.calls = 0

    async def refresh(self, refresh_token: str) -> TokenSet:
        self.calls += 1
        return TokenSet(
            f"at-{self.calls + 1}", "Bearer", self.clock.now + 3600, refresh_token=refresh_token
        )


def _manager(
    clock: Clock,
    keys: tuple[str, ...] = (KEY_A,),
    *,
    codec: SessionCodec | None = None,
    crm: _Crm | None = None,
    oauth: _OAuth | None = None,
    **config: Any,
) -> SessionManager:
    session_config = SessionConfig(keys=tuple(Secret(k) for k in keys), **config)
    cookies = CookieSession(
        codec or SessionCodec(list(keys)), name=SESSION_COOKIE, max_age=session_config.max_age
    )
    return SessionManager(session_config, cookies, oauth, crm, clock=clock)  # type: ignore[arg-type]


def _signin(clock: Clock, *, crm_user: str | None = None, expires_in: float = 3600) -> SignIn:
    tokens = TokenSet("at-1", "Bearer", clock.now + expires_in, refresh_token="rt-1")
    return SignIn.new(tokens, Agent("agent1@x", "Agent One", "42"), crm_user, clock.now)


# The codec's side: decode_as


def test_decode_as_builds_once_per_token_and_shares_the_result() -> None:
    """The second decode of a token returns the very object built the first time."""
    codec = SessionCodec([KEY_A])
    built: list[Mapping[str, Any]] = []

    def build(payload: Mapping[str, Any]) -> tuple[int, ...]:
        built.append(payload)
        return tuple(payload["n"])

    token = codec.encode({"n": [1, 2]}, now=NOW)
    first = codec.decode_as(token, now=NOW, max_age=DAY, build=build)
    second = codec.decode_as(token, now=NOW + 1, max_age=DAY, build=build)
    assert first == (1, 2) and second is first
    assert len(built) == 1
    # The builder only ever sees a read-only view: it cannot corrupt what `decode` copies out.
    with pytest.raises(TypeError):
        built[0]["n"] = "changed"  # type: ignore[index]
    assert codec.decode(token, now=NOW, max_age=DAY) == {"n": [1, 2]}


def test_decode_as_checks_expiry_on_every_hit() -> None:
    """A cached token still expires against its own Fernet timestamp."""
    codec = SessionCodec([KEY_A])
    token = codec.encode({"n": 1}, now=NOW)
    assert codec.decode_as(token, now=NOW, max_age=DAY, build=dict) == {"n": 1}
    assert codec.decode_as(token, now=NOW + 2 * DAY, max_age=DAY, build=dict) is None
    assert codec.decode_as(token, now=NOW - 2 * DAY, max_age=DAY, build=dict) is None
    assert codec.decode_as(token, now=NOW, max_age=DAY, build=dict) == {"n": 1}


def test_decode_as_rejects_what_decode_rejects() -> None:
    """Garbage, a flipped character and a foreign key's token never reach the builder."""
    codec = SessionCodec([KEY_A])
    token = codec.encode({"n": 1}, now=NOW)
    flipped = token[:40] + ("A" if token[40] != "A" else "B") + token[41:]
    foreign = SessionCodec([KEY_B]).encode({"n": 1}, now=NOW)
    built: list[object] = []
    for bad in ("", "garbage", flipped, foreign, token + "A"):
        assert codec.decode_as(bad, now=NOW, max_age=DAY, build=built.append) is None
    assert built == []
    assert len(codec.cache) == 0


def test_decode_as_with_another_builder_builds_again() -> None:
    """The cached object belongs to its builder: another builder gets its own result."""
    codec = SessionCodec([KEY_A])
    token = codec.encode({"n": 1}, now=NOW)
    assert codec.decode_as(token, now=NOW, max_age=DAY, build=dict) == {"n": 1}
    assert codec.decode_as(token, now=NOW, max_age=DAY, build=len) == 1


def test_decoded_sessions_stay_bounded() -> None:
    """However many sign-ins pass, the codec keeps at most `cache_size` of them."""
    clock = Clock()
    codec = SessionCodec([KEY_A], cache_size=8)
    cookies = CookieSession(codec, name=SESSION_COOKIE, max_age=DAY)
    tokens = [codec.encode(_signin(clock).to_payload(), now=NOW) for _ in range(50)]
    for token in tokens:
        request = request_with({SESSION_COOKIE: token})
        assert cookies.load_as(request, now=NOW, build=SignIn.from_payload) is not None
        assert len(codec.cache) <= 8
    assert len(codec.cache) == 8
    # An evicted cookie is simply opened again.
    first = cookies.load_as(
        request_with({SESSION_COOKIE: tokens[0]}), now=NOW, build=SignIn.from_payload
    )
    assert first is not None and len(codec.cache) == 8


# The session's side: every check still holds on a cached cookie


async def test_cache_hit_returns_an_equal_session_without_decrypting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Five requests with one cookie: one decryption, one build, five equal sign-ins."""
    clock = Clock()
    manager = _manager(clock)
    signin = _signin(clock)
    jar = await saved(manager, signin)
    counter = _Counter(monkeypatch)
    loaded = [await manager.load(request_with(jar)) for _ in range(5)]
    assert all(one == signin for one in loaded)
    assert counter.decrypts == 1 and counter.builds == 1


async def test_lifetimes_still_end_a_cached_session() -> None:
    """Idle timeout, absolute lifetime and the cookie's own max age apply to cached cookies."""
    clock = Clock()
    manager = _manager(clock, idle_timeout=3600.0)
    jar = await saved(manager, _signin(clock))
    assert await manager.load(request_with(jar)) is not None
    clock.now += 3601
    assert await manager.load(request_with(jar)) is None

    clock = Clock()
    manager = _manager(clock, max_age=2 * DAY, idle_timeout=7 * DAY)
    signin = _signin(clock)
    jar = await saved(manager, signin)
    assert await manager.load(request_with(jar)) is not None
    clock.now += 2 * DAY + 1
    assert await manager.load(request_with(jar)) is None
    # Rewritten a moment ago (so its Fernet stamp is fresh), the sign-in is still too old.
    clock.now -= 2
    fresh = await saved(manager, signin.touched(clock.now))
    assert await manager.load(request_with(fresh)) is not None
    clock.now += 2
    assert await manager.load(request_with(fresh)) is None


async def test_a_cached_cookie_expires_with_its_fernet_stamp() -> None:
    """Past the cookie layer's max age the token itself is refused, cached or not."""
    clock = Clock()
    codec = SessionCodec([KEY_A])
    manager = _manager(clock, codec=codec, max_age=DAY, idle_timeout=30 * DAY)
    # A sign-in that claims to be young, sealed a day ago: only the Fernet stamp can tell.
    jar = {SESSION_COOKIE: codec.encode(_signin(clock).to_payload(), now=clock.now - DAY + 5)}
    assert await manager.load(request_with(jar)) is not None
    clock.now += 10
    assert await manager.load(request_with(jar)) is None


async def test_sign_out_refuses_a_cached_cookie() -> None:
    """forget() (sign-out, revocation) refuses the cookie even though it sits in the cache."""
    clock = Clock()
    manager = _manager(clock)
    signin = _signin(clock)
    jar = await saved(manager, signin)
    request = request_with(jar)
    assert await manager.load(request) == signin
    await manager.forget(request, signin)
    assert await manager.load(request_with(jar)) is None
    # Another sign-in, cached alongside, is untouched by the revocation.
    other = await saved(manager, _signin(clock))
    assert await manager.load(request_with(other)) is not None


async def test_retired_key_cookie_is_rewritten_on_every_cached_read() -> None:
    """A cookie under an older key of the ring is re-sealed under the newest, hit or miss."""
    clock = Clock()
    old_jar = await saved(_manager(clock, (KEY_A,)), _signin(clock))
    rotated = _manager(clock, (KEY_B, KEY_A))
    for _ in range(2):
        request = request_with(old_jar)
        assert await rotated.load(request) is not None
        new_jar = await cookies_of(rotated, request)
        assert new_jar[SESSION_COOKIE] != old_jar[SESSION_COOKIE]
    assert await _manager(clock, (KEY_B,)).load(request_with(new_jar)) is not None


async def test_key_ring_reload_drops_cached_sessions() -> None:
    """SIGHUP's reload_keys: a cached cookie of a key no longer in the ring stops opening."""
    clock = Clock()
    codec = SessionCodec([KEY_A])
    app = web.Application()
    app[SESSION_CODEC] = codec
    manager = _manager(clock, codec=codec)
    app[CACHES] = manager.caches
    jar = await saved(manager, _signin(clock))
    assert await manager.load(request_with(jar)) is not None
    assert len(codec.cache) == 1

    reload_keys(app, [KEY_B, KEY_A])  # rotation: A still opens, and the cookie is re-sealed
    request = request_with(jar)
    assert await manager.load(request) is not None
    rotated_jar = await cookies_of(manager, request)
    assert rotated_jar

    reload_keys(app, [KEY_B])  # A retired
    assert await manager.load(request_with(jar)) is None
    assert await manager.load(request_with(rotated_jar)) is not None


async def test_refresh_takes_effect_over_a_cached_cookie() -> None:
    """A refresh writes a new cookie with the new token and drops the old cookie's cached entry
    (it held the replaced token); the old cookie still opens to the old sign-in, unchanged, and
    within the grace window is served the refreshed one."""
    clock = Clock()
    oauth = _OAuth(clock)
    manager = _manager(clock, oauth=oauth)
    signin = _signin(clock, expires_in=30)  # inside refresh_leeway (60 s)
    old_jar = await saved(manager, signin)
    cached = await manager.load(request_with(old_jar))
    assert cached is not None and cached.tokens.access_token == "at-1"

    request = request_with(old_jar)
    refreshed = await manager.require(request)
    assert refreshed.tokens.access_token == "at-2" and oauth.calls == 1
    new_jar = await cookies_of(manager, request)
    assert (await manager.load(request_with(new_jar))) == refreshed

    # The cached sign-in of the old cookie was not changed by the refresh...
    again = await manager.load(request_with(old_jar))
    assert again == cached and again.tokens.access_token == "at-1"
    assert again is not cached  # opened again: the refresh dropped the old entry
    # ...and a request still carrying it reuses the refresh instead of refreshing again.
    late = request_with(old_jar)
    assert (await manager.require(late)).tokens.access_token == "at-2"
    assert oauth.calls == 1


async def test_crm_binding_is_checked_on_every_cached_request() -> None:
    """A cached sign-in of CRM user alice is refused as soon as bob is the one logged in."""
    clock = Clock()
    crm = _Crm("alice")
    manager = _manager(clock, crm=crm)
    jar = await saved(manager, _signin(clock, crm_user="alice"))
    assert (await manager.require(request_with(jar))).crm_user == "alice"
    crm.user = "bob"
    with pytest.raises(CrmUserMismatch):
        await manager.require(request_with(jar))
    crm.user = None
    with pytest.raises(CrmUserMismatch):
        await manager.require(request_with(jar))


async def test_one_request_cannot_change_the_session_another_is_handed() -> None:
    """The cached sign-in is frozen; a request's update is a new object, so the next request
    with the same cookie sees the sign-in as the cookie holds it."""
    clock = Clock()
    manager = _manager(clock, idle_timeout=DAY)
    signin = _signin(clock, expires_in=DAY)
    jar = await saved(manager, signin)
    first = await manager.load(request_with(jar))
    assert first is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.last_used = 0.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.tokens.access_token = "stolen"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        first.agent.upn = "mallory@x"  # type: ignore[misc]

    clock.now += 2 * 3600  # old enough for require() to slide last_used
    sliding = request_with(jar)
    await manager.require(sliding)
    touched = await manager.load(sliding)  # this request's own update
    assert touched is not None and touched.last_used == clock.now
    assert await cookies_of(manager, sliding)  # the slid sign-in goes out in a new cookie
    other = await manager.load(request_with(jar))
    assert other == signin and other.last_used == signin.last_used


async def test_no_set_cookie_when_nothing_changed() -> None:
    """A plain signed-in read leaves the response without Set-Cookie."""
    clock = Clock()
    manager = _manager(clock)
    jar = await saved(manager, _signin(clock))
    for _ in range(2):
        request = request_with(jar)
        assert await manager.require(request) is not None
        assert await cookies_of(manager, request) == {}


async def test_a_one_key_ring_never_asks_for_a_rewrite() -> None:
    """With no older key in the ring nothing needs re-sealing; with one, its cookies do."""
    clock = Clock()
    jar = await saved(_manager(clock, (KEY_A,)), _signin(clock))
    one_key = _manager(clock, (KEY_A,))
    assert not one_key.store.needs_rewrite(request_with(jar))
    two_keys = _manager(clock, (KEY_B, KEY_A))
    assert two_keys.store.needs_rewrite(request_with(jar))
    assert not two_keys.store.needs_rewrite(request_with(await saved(two_keys, _signin(clock))))
