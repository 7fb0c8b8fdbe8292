"""CrmIdentity: asks the CRM's whoami with the browser's CRM cookies, caches per cookie."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, make_mocked_request
from yarl import URL

from ccc_gateway.config.load import UpstreamConfig
from ccc_gateway.sessions.crm_binding import CrmIdentity
from ccc_gateway.sessions.errors import CrmIdentityUnavailable


class FakeCrm:
    """A whoami endpoint that answers from a table of cookie values and counts its calls."""

    def __init__(self) -> None:
        self.users = {"s-edward": "edward", "s-sissi": "sissi"}
        self.cookies_seen: list[str] = []
        self.status = 200

    async def whoami(self, request: web.Request) -> web.Response:
        self.cookies_seen.append(request.headers.get("Cookie", ""))
        if self.status != 200:
            return web.Response(status=self.status)
        user = self.users.get(request.cookies.get("crm", ""))
        if user is None:
            return web.json_response({"error": "login"}, status=401)
        return web.json_response({"user": user})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def crm() -> AsyncIterator[tuple[FakeCrm, TestServer]]:
    fake = FakeCrm()
    app = web.Application()
    app.router.add_get("/api/me", fake.whoami)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield fake, server
    await server.close()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def _identity(server: TestServer, client: aiohttp.ClientSession, clock: Callable[[], float]):
    upstream = UpstreamConfig(url=URL(f"http://127.0.0.1:{server.port}"))
    return CrmIdentity(
        client,
        upstream,
        is_gateway_cookie=lambda name: name.startswith("__Host-ccc-"),
        ttl=5.0,
        clock=clock,
    )


def _request(**cookies: str) -> Any:
    header = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return make_mocked_request("GET", "/", headers={"Cookie": header} if header else {})


async def test_answers_are_cached_per_cookie_for_the_ttl(crm, client):
    """A burst of lookups with one CRM cookie costs one whoami call until the TTL passes."""
    fake, server = crm
    clock = Clock()
    identity = _identity(server, client, clock)
    for _ in range(5):
        assert await identity.current_user(_request(crm="s-edward")) == "edward"
    assert len(fake.cookies_seen) == 1
    assert await identity.current_user(_request(crm="s-sissi")) == "sissi"
    assert len(fake.cookies_seen) == 2
    clock.now += 6
    assert await identity.current_user(_request(crm="s-edward")) == "edward"
    assert len(fake.cookies_seen) == 3


async def test_gateway_cookies_never_reach_the_crm(crm, client):
    """Only the CRM's cookies are forwarded to whoami; the gateway's own are stripped."""
    fake, server = crm
    identity = _identity(server, client, Clock())
    request = _request(**{"crm": "s-edward", "__Host-ccc-session": "secret-value"})
    assert await identity.current_user(request) == "edward"
    assert fake.cookies_seen == ["crm=s-edward"]


async def test_no_crm_cookie_means_nobody_without_asking(crm, client):
    """Without any CRM cookie nobody is logged in, and the CRM is not asked."""
    fake, server = crm
    identity = _identity(server, client, Clock())
    assert await identity.current_user(_request(**{"__Host-ccc-session": "x"})) is None
    assert fake.cookies_seen == []


async def test_401_means_logged_out_and_is_cached(crm, client):
    """A 401 from whoami means nobody is logged in; the answer is cached like any other."""
    fake, server = crm
    identity = _identity(server, client, Clock())
    assert await identity.current_user(_request(crm="stale")) is None
    assert await identity.current_user(_request(crm="stale")) is None
    assert len(fake.cookies_seen) == 1


async def test_forget_drops_the_cached_answer(crm, client):
    """After forget() the next lookup asks the CRM again (a logout is seen at once)."""
    fake, server = crm
    identity = _identity(server, client, Clock())
    request = _request(crm="s-edward")
    await identity.current_user(request)
    identity.forget(request)
    await identity.current_user(request)
    assert len(fake.cookies_seen) == 2


async def test_crm_failure_is_a_bad_gateway(crm, client):
    """A 500 from whoami raises CrmIdentityUnavailable (a 502 in the views), not None."""
    fake, server = crm
    fake.status = 500
    identity = _identity(server, client, Clock())
    with pytest.raises(CrmIdentityUnavailable):
        await identity.current_user(_request(crm="s-edward"))


def test_whoami_path_is_required():
    """CrmIdentity refuses a configuration without whoami_path."""
    with pytest.raises(ValueError, match="whoami_path"):
        CrmIdentity(
            None,  # type: ignore[arg-type]
            UpstreamConfig(whoami_path=None),
            is_gateway_cookie=lambda name: False,
            ttl=5.0,
        )
