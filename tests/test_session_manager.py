"""SessionManager without the network: cookie round trips, lifetimes, keys, big tokens."""

from __future__ import annotations

import secrets
from http.cookies import SimpleCookie
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from cryptography.fernet import Fernet

from ccc_gateway.auth.oauth.tokens import TokenSet
from ccc_gateway.config.load import Secret, SessionConfig
from ccc_gateway.sessions.codec import SessionCodec
from ccc_gateway.sessions.cookie_storage import MAX_COOKIE_BYTES, CookieSession
from ccc_gateway.sessions.errors import NotSignedIn
from ccc_gateway.sessions.manager import SESSION_COOKIE, SessionManager
from ccc_gateway.sessions.signin import Agent, SignIn

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
DAY = 86400.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


def _manager(clock: Clock, keys: tuple[str, ...] = (KEY_A,), **config: Any) -> SessionManager:
    session_config = SessionConfig(keys=tuple(Secret(k) for k in keys), **config)
    cookies = CookieSession(
        SessionCodec(list(keys)), name=SESSION_COOKIE, max_age=session_config.max_age
    )
    return SessionManager(session_config, cookies, None, None, clock=clock)  # type: ignore[arg-type]


def _signin(clock: Clock, access_token: str = "at-1") -> SignIn:
    tokens = TokenSet(access_token, "Bearer", clock.now + 3600, refresh_token="rt-1")
    return SignIn.new(tokens, Agent("agent1@x", "Agent One", "42"), None, clock.now)


def _request(cookies: dict[str, str] | None = None) -> web.Request:
    header = "; ".join(f"{k}={v}" for k, v in (cookies or {}).items())
    return make_mocked_request(
        "GET", "/aliyun/session", headers={"Cookie": header} if header else {}
    )


async def _written(manager: SessionManager, request: web.Request) -> list[str]:
    response = web.Response()
    await manager.write_cookie(request, response)
    return response.headers.getall("Set-Cookie", [])


def _jar(headers: list[str]) -> dict[str, str]:
    jar: dict[str, str] = {}
    for header in headers:
        parsed = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            if morsel.value:
                jar[name] = morsel.value
    return jar


async def _saved(manager: SessionManager, signin: SignIn) -> dict[str, str]:
    request = _request()
    await manager.save(request, signin)
    return _jar(await _written(manager, request))


async def test_save_and_load_round_trip():
    """A saved sign-in loads back from the cookie it wrote."""
    clock = Clock()
    manager = _manager(clock)
    signin = _signin(clock)
    loaded = await manager.load(_request(await _saved(manager, signin)))
    assert loaded == signin


async def test_six_kilobyte_token_is_chunked_and_loads_back():
    """A 6 KB access token is split into several chunks, each Set-Cookie ≤ 4000 bytes."""
    clock = Clock()
    manager = _manager(clock)
    signin = _signin(clock, access_token=secrets.token_urlsafe(4608))  # 6144 characters
    request = _request()
    await manager.save(request, signin)
    headers = await _written(manager, request)
    assert len(headers) >= 2
    assert all(len(h.encode()) <= MAX_COOKIE_BYTES for h in headers)
    jar = _jar(headers)
    assert set(jar) >= {SESSION_COOKIE, f"{SESSION_COOKIE}-1"}
    loaded = await manager.load(_request(jar))
    assert loaded is not None and loaded.tokens.access_token == signin.tokens.access_token


async def test_set_cookie_attributes():
    """The session cookie is Secure, HttpOnly, SameSite=Lax, Path=/ and has no Domain."""
    clock = Clock()
    manager = _manager(clock)
    request = _request()
    await manager.save(request, _signin(clock))
    (header,) = await _written(manager, request)
    assert header.startswith(f"{SESSION_COOKIE}=")
    attributes = {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}
    assert {"secure", "httponly", "samesite", "path", "max-age"} <= attributes
    assert "domain" not in attributes
    assert "SameSite=Lax" in header and "Path=/" in header


async def test_clear_sends_deletions_with_the_same_attributes():
    """Clearing expires every chunk the browser carries, with Secure/SameSite/Path kept."""
    clock = Clock()
    manager = _manager(clock)
    jar = await _saved(manager, _signin(clock, access_token=secrets.token_urlsafe(4608)))
    request = _request(jar)
    manager.clear(request)
    headers = await _written(manager, request)
    assert {h.split("=", 1)[0] for h in headers} == set(jar)
    for header in headers:
        assert "Max-Age=0" in header and "Secure" in header and "HttpOnly" in header
        assert "SameSite=Lax" in header and "Path=/" in header and "Domain" not in header


@pytest.mark.parametrize(
    "mangle",
    [
        lambda v: v[:-10],
        lambda v: v[:20] + ("x" if v[20] != "x" else "y") + v[21:],
        lambda v: "garbage",
        lambda v: "",
        lambda v: v + v,
        lambda v: "%%%%",
    ],
    ids=["truncated", "tampered", "garbage", "empty", "doubled", "percent"],
)
async def test_broken_cookies_are_signed_out(mangle):
    """Truncated, tampered or garbage cookies load as signed out and never raise."""
    clock = Clock()
    manager = _manager(clock)
    jar = await _saved(manager, _signin(clock))
    request = _request({SESSION_COOKIE: mangle(jar[SESSION_COOKIE])})
    assert await manager.load(request) is None
    with pytest.raises(NotSignedIn):
        await manager.require(request)


async def test_missing_middle_chunk_is_signed_out():
    """A lost chunk is a broken cookie, not a partial one."""
    clock = Clock()
    manager = _manager(clock)
    jar = await _saved(manager, _signin(clock, access_token=secrets.token_urlsafe(4608)))
    del jar[SESSION_COOKIE]
    assert await manager.load(_request(jar)) is None


async def test_absolute_lifetime_ends_the_sign_in():
    """Past session.max_age the sign-in is gone, however recently it was used."""
    clock = Clock()
    manager = _manager(clock, max_age=2 * DAY, idle_timeout=7 * DAY)
    jar = await _saved(manager, _signin(clock))
    clock.now += 2 * DAY - 60
    assert await manager.load(_request(jar)) is not None
    clock.now += 120
    assert await manager.load(_request(jar)) is None


async def test_idle_timeout_ends_the_sign_in():
    """A sign-in unused for session.idle_timeout is gone."""
    clock = Clock()
    manager = _manager(clock, idle_timeout=3600.0)
    jar = await _saved(manager, _signin(clock))
    clock.now += 3599
    assert await manager.load(_request(jar)) is not None
    clock.now += 2
    assert await manager.load(_request(jar)) is None


async def test_use_slides_the_idle_timeout():
    """A use after a while rewrites last_used, so an active agent is not timed out."""
    clock = Clock()
    manager = _manager(clock, idle_timeout=3600.0)
    signin = _signin(clock)
    signin = signin.with_tokens(signin.tokens, clock.now)
    jar = await _saved(manager, signin)
    clock.now += 3000
    request = _request(jar)
    await manager.require(request)
    jar = _jar(await _written(manager, request))
    clock.now += 3000
    assert await manager.load(_request(jar)) is not None


async def test_old_key_cookie_is_reencrypted_with_the_new_key():
    """With keys [B, A] a cookie sealed with A loads and is written again under B."""
    clock = Clock()
    jar = await _saved(_manager(clock, (KEY_A,)), _signin(clock))
    rotated = _manager(clock, (KEY_B, KEY_A))
    request = _request(jar)
    assert await rotated.load(request) is not None
    new_jar = _jar(await _written(rotated, request))
    assert new_jar[SESSION_COOKIE] != jar[SESSION_COOKIE]
    only_b = _manager(clock, (KEY_B,))
    assert await only_b.load(_request(new_jar)) is not None
    assert await only_b.load(_request(jar)) is None


async def test_current_key_cookie_is_not_rewritten():
    """A cookie under the current key causes no Set-Cookie on a plain read."""
    clock = Clock()
    manager = _manager(clock)
    request = _request(await _saved(manager, _signin(clock)))
    assert await manager.load(request) is not None
    assert await _written(manager, request) == []


async def test_forgotten_sign_in_is_refused_from_an_old_copy():
    """After forget() (sign-out) a copy of the cookie is refused by this process."""
    clock = Clock()
    manager = _manager(clock)
    signin = _signin(clock)
    jar = await _saved(manager, signin)
    await manager.forget(_request(jar), signin)
    assert await manager.load(_request(jar)) is None


class _FailingOAuth:
    """An OAuth client whose refresh blocks until released, then fails (Alibaba 5xx)."""

    def __init__(self) -> None:
        import asyncio

        self.release = asyncio.Event()
        self.calls = 0

    async def refresh(self, refresh_token: str) -> TokenSet:
        from ccc_gateway.auth.oauth.errors import OAuthUnavailable

        self.calls += 1
        await self.release.wait()
        raise OAuthUnavailable("token: HTTP 503", status=503)


async def test_waiters_share_a_failed_refresh_instead_of_retrying_in_turn():
    """Five requests waiting on one failing refresh: one call to Alibaba, five RefreshFailed
    (502 in the views)."""
    import asyncio

    from ccc_gateway.sessions.errors import RefreshFailed

    clock = Clock()
    oauth = _FailingOAuth()
    session_config = SessionConfig(keys=(Secret(KEY_A),))
    cookies = CookieSession(SessionCodec([KEY_A]), name=SESSION_COOKIE, max_age=DAY)
    manager = SessionManager(session_config, cookies, oauth, None, clock=clock)  # type: ignore[arg-type]
    signin = _signin(clock)
    tasks = [asyncio.create_task(manager.refresh(_request(), signin)) for _ in range(5)]
    await asyncio.sleep(0)
    oauth.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert oauth.calls == 1
    assert all(isinstance(r, RefreshFailed) for r in results)
    # Once nobody waits, the next request tries again.
    with pytest.raises(RefreshFailed):
        await manager.refresh(_request(), signin)
    assert oauth.calls == 2
