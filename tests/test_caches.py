"""Caches that forget (caches.py): bounded, and holding no token or CRM cookie past the sign-in.

End to end against the emulator: a signed-in agent's pages and API calls fill every cache;
after sign-out, after Alibaba ends the sign-in (invalid_grant) and after a key reload, no cache
holds that sign-in's access or refresh token, its CRM cookie, or an entry owned by its sid.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from stack import Browser, Stack
from test_hardening import api_call

from ccc_gateway.app import reload_keys
from ccc_gateway.auth.login_state import COOKIE_NAME as LOGIN_COOKIE
from ccc_gateway.caches import BoundedCache, CacheRegistry
from ccc_gateway.emulator.keys import STORE_KEY
from ccc_gateway.keys import CACHES, CONFIG


def _texts(value: Any, depth: int = 0) -> Iterator[str]:
    """Every string reachable from a cached value (dicts, sequences, dataclasses, slots)."""
    if depth > 12:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict) or hasattr(value, "items"):
        for key, item in value.items():
            yield from _texts(key, depth + 1)
            yield from _texts(item, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _texts(item, depth + 1)
    elif dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            yield from _texts(getattr(value, field.name), depth + 1)
    elif hasattr(value, "__slots__"):
        for name in value.__slots__:
            yield from _texts(getattr(value, name, None), depth + 1)


def _cached_texts(caches: CacheRegistry) -> str:
    parts: list[str] = []
    for cache in caches:
        for key in cache._entries:  # the keys too: the Cookie→token cache is keyed by cookies
            parts.extend(_texts(key))
        for value in cache.values():
            parts.extend(_texts(value))
    return "\n".join(parts)


def _tokens(stack: Stack) -> set[str]:
    store = stack.emulator.app[STORE_KEY]
    return {*store.access_tokens, *store.refresh_tokens}


async def _fill(stack: Stack, browser: Browser) -> CacheRegistry:
    await browser.login_crm()
    await browser.sign_in()
    for _ in range(2):
        async with browser.client.get(browser.url("/customers")) as page:
            assert page.status == 200
        status, _ = await api_call(browser)
        assert status == 200
    caches = stack.app[CACHES]
    text = _cached_texts(caches)
    # The scan sees what it looks for: the caches hold the live sign-in's token now.
    assert any(token in text for token in _tokens(stack))
    return caches


def _crm_cookies(browser: Browser) -> set[str]:
    return {
        m.value
        for m in browser.client.cookie_jar
        if not m.key.startswith("__Host-") and len(m.value) > 8
    }


def _assert_forgotten(stack: Stack, browser: Browser, caches: CacheRegistry) -> None:
    text = _cached_texts(caches)
    for token in _tokens(stack):
        assert token not in text
    for cookie in _crm_cookies(browser):
        assert cookie not in text


async def test_sign_out_drops_the_sign_ins_entries(stack: Stack, browser: Browser) -> None:
    caches = await _fill(stack, browser)
    crm_cookies = _crm_cookies(browser)
    async with await browser.post("/aliyun/revoke") as response:
        assert response.status == 200
    _assert_forgotten(stack, browser, caches)
    assert crm_cookies  # the CRM session cookie was checked for, not vacuously absent
    assert caches.sizes()["sessions"] == 0 and caches.sizes()["cookie-tokens"] == 0


async def test_a_sign_in_ended_by_alibaba_drops_its_entries(stack: Stack, browser: Browser) -> None:
    caches = await _fill(stack, browser)
    await stack.emulator_knob(
        "POST", "_emulator/faults", {"endpoint": "token", "error": "invalid_grant"}
    )
    async with await browser.post("/aliyun/refresh") as response:
        assert response.status == 401
    _assert_forgotten(stack, browser, caches)


async def test_a_key_reload_drops_everything(stack: Stack, browser: Browser) -> None:
    caches = await _fill(stack, browser)
    keys = [key.reveal() for key in stack.app[CONFIG].session.keys]
    reload_keys(stack.app, keys)
    assert sum(caches.sizes().values()) == 0
    # The sign-in itself goes on: its cookie opens again under the same ring.
    assert (await browser.session())["signedIn"] is True


async def test_login_states_are_never_cached(stack: Stack, browser: Browser) -> None:
    await browser.login_crm()
    await browser.start_sign_in()
    login = {m.value for m in browser.client.cookie_jar if m.key == LOGIN_COOKIE}
    assert login
    await browser.sign_in()
    text = _cached_texts(stack.app[CACHES])
    assert not any(value in text for value in login)
    assert stack.app[CACHES].sizes()["sessions"] <= 1  # the session cookie only


@pytest.mark.parametrize("maxsize", [1, 3, 64])
def test_every_cache_is_bounded(maxsize: int) -> None:
    cache: BoundedCache[int, int] = BoundedCache("test", maxsize)
    for n in range(2 * maxsize):
        cache.put(n, n, owner=f"sid-{n % 2}")
    assert len(cache) == maxsize
    assert list(cache.values()) == list(range(maxsize, 2 * maxsize))
    cache.drop_owner("sid-0")
    assert all(value % 2 for value in cache.values())
    assert cache._owned.keys() <= {"sid-1"}  # evicted keys leave their owner's set too


async def test_the_apps_caches_are_the_listed_ones(stack: Stack) -> None:
    caches = stack.app[CACHES]
    assert set(caches.sizes()) <= {"sessions", "cookie-tokens", "whoami"}
    assert all(cache.maxsize <= 10_000 for cache in caches)
