"""Login states: several tabs, at most five kept, single use, TTL, cookie attributes."""

from __future__ import annotations

from http.cookies import SimpleCookie

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from cryptography.fernet import Fernet

from ccc_gateway.auth.login_state import COOKIE_NAME, MAX_ENTRIES, LoginState, LoginStates
from ccc_gateway.sessions.codec import SessionCodec

KEY = Fernet.generate_key().decode()
NOW = 1_700_000_000.0
TTL = 600.0


def _states(key: str = KEY) -> LoginStates:
    return LoginStates(SessionCodec([key]), ttl=TTL)


def _entry(n: int, created: float = NOW) -> LoginState:
    return LoginState(f"state-{n}", f"verifier-{n}", f"nonce-{n}", f"/p{n}", "edward", created + n)


def _cookie_value(response: web.StreamResponse) -> str:
    return response.cookies[COOKIE_NAME].value


def _request(value: str | None) -> web.Request:
    headers = {"Cookie": f"{COOKIE_NAME}={value}"} if value is not None else {}
    return make_mocked_request("GET", "/aliyun/auth/callback", headers=headers)


def _written(states: LoginStates, entries: list[LoginState]) -> str:
    response = web.Response()
    states.write(response, entries, now=NOW)
    return _cookie_value(response)


def test_several_entries_round_trip():
    """Three tabs' sign-ins are all kept, each under its own state."""
    states = _states()
    token = _written(states, [_entry(1), _entry(2), _entry(3)])
    loaded = states.load(_request(token), now=NOW + 10)
    assert [e.state for e in loaded] == ["state-1", "state-2", "state-3"]


def test_sixth_entry_evicts_the_oldest():
    """At most MAX_ENTRIES are kept; the oldest goes first."""
    states = _states()
    token = _written(states, [_entry(n) for n in range(6)])
    loaded = states.load(_request(token), now=NOW + 10)
    assert len(loaded) == MAX_ENTRIES
    assert "state-0" not in {e.state for e in loaded}


async def test_take_is_single_use_even_with_an_old_cookie_copy():
    """A taken state is refused again, even when the browser replays the old cookie."""
    states = _states()
    entries = [_entry(1), _entry(2)]
    found, remaining = await states.take(entries, "state-1", now=NOW + 5)
    assert found == entries[0] and remaining == [entries[1]]
    again, left = await states.take(entries, "state-1", now=NOW + 6)
    assert again is None and left == entries


async def test_unknown_state_is_not_taken():
    """A state that no entry carries takes nothing."""
    states = _states()
    found, remaining = await states.take([_entry(1)], "state-9", now=NOW)
    assert found is None and remaining == [_entry(1)]


def test_entries_expire_after_the_ttl():
    """An entry older than login_state_ttl is gone."""
    states = _states()
    token = _written(states, [_entry(1)])
    assert states.load(_request(token), now=NOW + TTL + 2) == []


def test_bad_cookies_load_nothing():
    """A missing, garbage, tampered or foreign-key cookie loads no entries, without raising."""
    states = _states()
    token = _written(states, [_entry(1)])
    tampered = token[:-5] + ("A" if token[-5] != "A" else "B") + token[-4:]
    foreign = _written(_states(Fernet.generate_key().decode()), [_entry(1)])
    for value in (None, "", "garbage", tampered, token[:40], foreign, "é" * 10):
        assert states.load(_request(value), now=NOW + 1) == []


def test_cookie_is_samesite_none_secure_host_only():
    """The login cookie is SameSite=None (form_post), Secure, HttpOnly, Path=/, no Domain."""
    response = web.Response()
    _states().write(response, [_entry(1)], now=NOW)
    header = response.cookies[COOKIE_NAME].OutputString()
    parsed = SimpleCookie()
    parsed.load(header)
    morsel = parsed[COOKIE_NAME]
    assert morsel["samesite"] == "None" and morsel["secure"] and morsel["httponly"]
    assert morsel["path"] == "/" and not morsel["domain"]
    assert int(morsel["max-age"]) == int(TTL)


def test_deletion_carries_the_same_attributes():
    """With no entry left the cookie is deleted with Secure, SameSite=None and Path=/."""
    response = web.Response()
    _states().write(response, [], now=NOW)
    morsel = response.cookies[COOKIE_NAME]
    assert morsel.value == "" and str(morsel["max-age"]) == "0"
    assert morsel["secure"] and morsel["samesite"] == "None" and morsel["path"] == "/"
