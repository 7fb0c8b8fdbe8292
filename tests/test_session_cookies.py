"""The session cookie on the wire: chunking, flags, stale chunks, clearing and loading."""

from __future__ import annotations

import secrets
from http.cookies import Morsel, SimpleCookie
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from cryptography.fernet import Fernet

from ccc_gateway.sessions.codec import SessionCodec, SessionTooLarge
from ccc_gateway.sessions.cookie_storage import CookieSession, gateway_cookie_names

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
NAME = "__Host-ccc"
NOW = 1_700_000_000.0
MAX_AGE = 30 * 86400.0
PAYLOAD: dict[str, Any] = {"sub": "agent@example", "access_token": "at-1"}


def _session(keys: list[str] | None = None, **kwargs: Any) -> CookieSession:
    return CookieSession(SessionCodec(keys or [KEY_A]), name=NAME, max_age=MAX_AGE, **kwargs)


def _request(cookies: dict[str, str] | None = None) -> web.Request:
    header = "; ".join(f"{name}={value}" for name, value in (cookies or {}).items())
    return make_mocked_request("GET", "/", headers={"Cookie": header} if header else {})


async def _set_cookie_headers(response: web.StreamResponse, request: web.Request) -> list[str]:
    await response.prepare(request)
    return response.headers.getall("Set-Cookie", [])


def _parse(header: str) -> Morsel[str]:
    """One Set-Cookie header value parsed strictly by the standard library."""
    jar: SimpleCookie = SimpleCookie()
    jar.load(header)
    assert len(jar) == 1, header
    return next(iter(jar.values()))


def _assert_flags(morsel: Morsel[str], *, max_age: str, samesite: str = "Lax") -> None:
    assert morsel["secure"] is True
    assert morsel["httponly"] is True
    assert morsel["samesite"] == samesite
    assert morsel["path"] == "/"
    assert morsel["domain"] == ""
    assert morsel["max-age"] == max_age


async def _saved(session: CookieSession, payload: dict[str, Any]) -> dict[str, Morsel[str]]:
    request = _request()
    response = web.StreamResponse()
    session.save(response, request, payload, now=NOW)
    morsels = [_parse(h) for h in await _set_cookie_headers(response, request)]
    return {m.key: m for m in morsels}


@pytest.mark.parametrize("name", ["ccc", "__Secure-ccc", "__host-ccc", "__Host-", "__Host-a b"])
def test_name_must_be_a_host_prefixed_cookie_name(name: str) -> None:
    """Only a well-formed `__Host-` name is accepted, so Secure/Path=/ are browser-enforced."""
    with pytest.raises(ValueError, match="__Host-"):
        CookieSession(SessionCodec([KEY_A]), name=name, max_age=MAX_AGE)


def test_bad_samesite_and_budget_are_rejected() -> None:
    """A misspelt SameSite or a budget with no room for a value fails at construction."""
    with pytest.raises(ValueError, match="samesite"):
        _session(samesite="lax")
    with pytest.raises(ValueError, match="max_cookie_bytes"):
        _session(max_cookie_bytes=200)


async def test_small_payload_is_one_cookie_with_all_flags() -> None:
    """A small session is one Secure, HttpOnly, SameSite=Lax, Path=/ cookie with Max-Age."""
    cookies = await _saved(_session(), PAYLOAD)
    assert list(cookies) == [NAME]
    _assert_flags(cookies[NAME], max_age="2592000")


async def test_samesite_strict_is_honoured() -> None:
    """The configured SameSite value is what goes on the wire."""
    cookies = await _saved(_session(samesite="Strict"), PAYLOAD)
    _assert_flags(cookies[NAME], max_age="2592000", samesite="Strict")


async def test_load_round_trip() -> None:
    """The cookie a response set loads back to the payload."""
    session = _session()
    cookies = await _saved(session, PAYLOAD)
    request = _request({name: m.value for name, m in cookies.items()})
    assert session.load(request, now=NOW + 60) == PAYLOAD


async def test_large_incompressible_payload_splits_into_bounded_chunks() -> None:
    """A 6 KB random token splits into ≥ 2 chunks, each whole header ≤ 4000 bytes, and loads."""
    session = _session()
    payload = {"access_token": secrets.token_urlsafe(4500), "sub": "agent@example"}
    assert len(payload["access_token"]) >= 6000
    request = _request()
    response = web.StreamResponse()
    session.save(response, request, payload, now=NOW)
    headers = await _set_cookie_headers(response, request)
    assert len(headers) >= 2
    for header in headers:
        assert len(header.encode("latin-1")) <= 4000
        _assert_flags(_parse(header), max_age="2592000")
    names = [_parse(h).key for h in headers]
    assert names == [NAME] + [f"{NAME}-{i}" for i in range(1, len(headers))]
    carried = _request({_parse(h).key: _parse(h).value for h in headers})
    assert session.load(carried, now=NOW) == payload


async def test_smaller_budget_makes_more_chunks_within_it() -> None:
    """max_cookie_bytes bounds every header, whatever the chunk count."""
    session = _session(max_cookie_bytes=1000)
    cookies = await _saved(session, {"t": secrets.token_urlsafe(3000)})
    assert len(cookies) >= 4
    assert all(len(m.OutputString()) <= 1000 for m in cookies.values())


async def test_shrinking_from_three_chunks_to_one_deletes_the_rest() -> None:
    """Chunks 1 and 2 the request carried are deleted with the same attributes."""
    session = _session()
    request = _request({NAME: "old0", f"{NAME}-1": "old1", f"{NAME}-2": "old2", "sid": "crm"})
    response = web.StreamResponse()
    session.save(response, request, PAYLOAD, now=NOW)
    cookies = {m.key: m for m in map(_parse, await _set_cookie_headers(response, request))}
    assert sorted(cookies) == [NAME, f"{NAME}-1", f"{NAME}-2"]
    _assert_flags(cookies[NAME], max_age="2592000")
    for stale in (f"{NAME}-1", f"{NAME}-2"):
        assert cookies[stale].value == ""
        assert cookies[stale]["expires"] == "Thu, 01 Jan 1970 00:00:00 GMT"
        _assert_flags(cookies[stale], max_age="0")


async def test_second_save_on_one_response_drops_its_own_extra_chunks() -> None:
    """Saving a big then a small payload on one response leaves no live stale chunk."""
    session = _session()
    request = _request()
    response = web.StreamResponse()
    session.save(response, request, {"t": secrets.token_urlsafe(4500)}, now=NOW)
    session.save(response, request, PAYLOAD, now=NOW)
    cookies = {m.key: m for m in map(_parse, await _set_cookie_headers(response, request))}
    assert cookies[NAME]["max-age"] == "2592000"
    assert cookies[f"{NAME}-1"]["max-age"] == "0"
    assert session.load(_request({NAME: cookies[NAME].value}), now=NOW) == PAYLOAD


async def test_clear_deletes_every_carried_chunk() -> None:
    """clear() expires each chunk the request carried, with all attributes, and nothing else."""
    request = _request({NAME: "a", f"{NAME}-1": "b", f"{NAME}-2": "c", "sid": "crm"})
    response = web.StreamResponse()
    _session().clear(response, request)
    cookies = {m.key: m for m in map(_parse, await _set_cookie_headers(response, request))}
    assert sorted(cookies) == [NAME, f"{NAME}-1", f"{NAME}-2"]
    for morsel in cookies.values():
        assert morsel.value == ""
        _assert_flags(morsel, max_age="0")


async def test_clear_without_cookies_still_deletes_the_base_name() -> None:
    """Signing out always sends a deletion for the base cookie."""
    request = _request()
    response = web.StreamResponse()
    _session().clear(response, request)
    cookies = [_parse(h) for h in await _set_cookie_headers(response, request)]
    assert [m.key for m in cookies] == [NAME]
    _assert_flags(cookies[0], max_age="0")


async def test_missing_middle_chunk_loads_nothing() -> None:
    """A request that lost a middle chunk gets None, not a spliced token."""
    session = _session(max_cookie_bytes=1000)
    cookies = await _saved(session, {"t": secrets.token_urlsafe(3000)})
    assert f"{NAME}-2" in cookies
    carried = {name: m.value for name, m in cookies.items() if name != f"{NAME}-1"}
    assert session.load(_request(carried), now=NOW) is None


@pytest.mark.parametrize(
    "cookies",
    [{}, {"sid": "crm"}, {NAME: "garbage"}, {NAME: ""}, {f"{NAME}-1": "orphan"}],
    ids=["none", "other", "garbage", "empty", "orphan-chunk"],
)
def test_load_without_a_valid_cookie_is_none(cookies: dict[str, str]) -> None:
    """Absent, empty, garbage or headless cookies load as None."""
    assert _session().load(_request(cookies), now=NOW) is None


async def test_load_of_an_expired_cookie_is_none() -> None:
    """A cookie older than max_age loads as None even if the browser still sends it."""
    session = _session()
    cookies = await _saved(session, PAYLOAD)
    request = _request({name: m.value for name, m in cookies.items()})
    assert session.load(request, now=NOW + MAX_AGE + 1) is None


async def test_save_fails_loudly_past_the_total_budget() -> None:
    """A session too big for the Cookie header budget raises instead of being set."""
    request = _request()
    response = web.StreamResponse()
    big = secrets.token_urlsafe(9000)
    with pytest.raises(SessionTooLarge) as info:
        _session().save(response, request, {"t": big}, now=NOW)
    assert big not in str(info.value)
    assert await _set_cookie_headers(response, request) == []


async def test_rotation_old_key_cookie_is_flagged_and_resaved() -> None:
    """A cookie sealed with an older key loads, asks for re-encryption, and a save fixes it."""
    cookies = await _saved(_session([KEY_A]), PAYLOAD)
    ring = _session([KEY_B, KEY_A])
    request = _request({name: m.value for name, m in cookies.items()})
    assert ring.load(request, now=NOW) == PAYLOAD
    assert ring.needs_reencrypt(request)
    resaved = await _saved(ring, PAYLOAD)
    fresh = _request({name: m.value for name, m in resaved.items()})
    assert not ring.needs_reencrypt(fresh)
    assert _session([KEY_B]).load(fresh, now=NOW) == PAYLOAD


def test_needs_reencrypt_without_a_cookie_is_false() -> None:
    """No cookie, nothing to re-encrypt."""
    assert not _session().needs_reencrypt(_request())


def test_gateway_cookie_names_lists_only_our_chunks_in_order() -> None:
    """Chunks of the session cookie are found in order; look-alikes and CRM cookies are not."""
    request = _request(
        {
            f"{NAME}-2": "c",
            "sid": "crm",
            NAME: "a",
            f"{NAME}-01": "x",
            f"{NAME}x": "y",
            f"{NAME}-1": "b",
            f"{NAME}-10": "d",
        }
    )
    assert gateway_cookie_names(request, NAME) == [NAME, f"{NAME}-1", f"{NAME}-2", f"{NAME}-10"]


def test_carried_is_false_only_when_the_cookie_cannot_be_there():
    """The cheap pre-check never misses a cookie that `load` would find."""
    session = _session()
    assert not session.carried(_request())
    assert not session.carried(_request({"crm": "1", "__Host-other": "x"}))
    assert session.carried(_request({"crm": "1", NAME: "broken"}))
    assert session.carried(_request({NAME + "-1": "chunk"}))
