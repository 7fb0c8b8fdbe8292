"""Fault injection end to end: the CRM, Alibaba's token endpoint, JWKS and the CCC OpenAPI
failing in every way we know, plus clock skew; each with its expected answer, and the gateway
healthy afterwards (`/aliyun/healthz` 200 and a normal CRM page 200).

Alibaba's failures come from the emulator's `/_emulator/faults` knob (status, delay, count)
or from `FaultFront`, a relay in front of the emulator that can answer garbage, an HTML page,
reset the connection, or be switched off.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from stack import Browser, Stack
from test_signin_security import restart_gateway
from yarl import URL

from ccc_gateway.runtime.tls import client_context
from sample_crm.app import create_app as create_crm_app

MakeStack = Callable[..., Awaitable[Stack]]
API = "/aliyun/ccc/api"
NAVIGATE = {"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}
XHR = {"Accept": "application/json", "X-Requested-With": "XMLHttpRequest"}


# ---------------------------------------------------------------- helpers


async def signed_in(stack: Stack) -> Browser:
    browser = stack.browser()
    try:
        await browser.login_crm()
        assert (await browser.sign_in()).status == 303
    except BaseException:
        await browser.close()
        raise
    return browser


async def api_call(browser: Browser, action: str = "GetServiceExtensions") -> tuple[int, Any]:
    async with await browser.post(
        API, params={"action": action}, data={"request": "{}"}
    ) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


async def refresh(browser: Browser) -> tuple[int, Any]:
    async with await browser.post("/aliyun/refresh") as response:
        return response.status, await response.json()


async def assert_healthy(stack: Stack, crm_path: str = "/login") -> None:
    """The gateway still answers its own health check and serves a CRM page."""
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=client_context(stack.cert))
    ) as client:
        async with client.get(stack.url / "aliyun/healthz") as health:
            assert health.status == 200
        async with client.get(stack.url.join(URL(crm_path)), headers=NAVIGATE) as page:
            assert page.status == 200


async def fault(stack: Stack, **body: Any) -> None:
    await stack.emulator_knob("POST", "_emulator/faults", body)


def assert_contract(body: dict[str, Any], code: str | None = None) -> None:
    assert set(body) >= {"requestId", "errorCode", "message"} and body["requestId"]
    if code is not None:
        assert body["errorCode"] == code, body


# ---------------------------------------------------------------- a relay that misbehaves


class FaultFront:
    """Relays to the emulator; `mode` makes it answer garbage, HTML, or reset instead."""

    def __init__(self) -> None:
        self.mode = "pass"
        self.target: URL | None = None
        self.server: TestServer | None = None
        self.port: int | None = None
        self._client: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.mode == "garbage":
            return web.Response(body=b'{"access_token": "x", ', content_type="application/json")
        if self.mode == "html":
            return web.Response(
                text="<html><body>Service busy</body></html>", content_type="text/html"
            )
        if self.mode == "reset":
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        assert self.target is not None and self._client is not None
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in ("content-type", "authorization")
        }
        async with self._client.request(
            request.method,
            self.target.join(URL(request.path_qs)),
            data=await request.read(),
            headers=headers,
        ) as answer:
            return web.Response(
                status=answer.status,
                body=await answer.read(),
                headers={"Content-Type": answer.headers.get("Content-Type", "application/json")},
            )

    async def start(self) -> None:
        self._client = self._client or aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.server = TestServer(app, host="127.0.0.1", port=self.port)
        await self.server.start_server()
        self.port = self.server.port

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.close()
            self.server = None

    async def close(self) -> None:
        await self.stop()
        if self._client is not None:
            await self._client.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
async def fronted(make_stack: MakeStack) -> AsyncIterator[tuple[Stack, FaultFront]]:
    """A stack whose token endpoint and CCC OpenAPI are reached through a FaultFront."""
    front = FaultFront()
    await front.start()
    stack = await make_stack(aliyun={"timeout": 1.0}, ccc={"timeout": 1.0})
    front.target = stack.emulator_url
    endpoints = dataclasses.replace(
        stack.config.aliyun.endpoints, token_url=f"{front.url}/v1/token"
    )
    config = dataclasses.replace(
        stack.config,
        aliyun=dataclasses.replace(stack.config.aliyun, endpoints=endpoints),
        ccc=dataclasses.replace(stack.config.ccc, endpoint=URL(f"{front.url}/")),
    )
    await restart_gateway(stack, config)
    yield stack, front
    await front.close()


# ---------------------------------------------------------------- the CRM failing


async def test_crm_down_is_a_502_page_for_a_person_and_json_for_xhr(stack: Stack):
    """CRM unreachable: a readable 502 page for navigation, 502 JSON for XHR; fine once back."""
    port = stack.crm.port
    await stack.crm.close()
    browser = stack.browser()
    try:
        async with browser.client.get(browser.url("/customers"), headers=NAVIGATE) as page:
            assert page.status == 502 and page.content_type == "text/html"
            assert "not reachable" in await page.text()
        async with browser.client.get(browser.url("/customers"), headers=XHR) as xhr:
            assert xhr.status == 502 and xhr.content_type == "application/json"
            assert_contract(await xhr.json(), "BadGateway")
        async with browser.client.get(browser.url("/aliyun/healthz")) as health:
            assert health.status == 200  # alive; readiness is what says the CRM is gone
        async with browser.client.get(browser.url("/aliyun/readyz")) as ready:
            assert ready.status == 503
    finally:
        await browser.close()
    crm = TestServer(
        create_crm_app(stack.cert.parent.parent / "crm2.sqlite3"), host="127.0.0.1", port=port
    )
    await crm.start_server()
    stack.crm = crm
    await assert_healthy(stack)


class FaultyCrm:
    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def page(self, request: web.Request) -> web.Response:
        return web.Response(text="<html><body>customers</body></html>", content_type="text/html")

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.wait_for(self.release.wait(), 30)
        return web.Response(text="late")

    async def reset(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100000"})
        await response.prepare(request)
        await response.write(b"x" * 1000)
        assert request.transport is not None
        request.transport.abort()
        return response


@pytest.fixture
async def faulty_crm_stack(make_stack: MakeStack) -> AsyncIterator[Stack]:
    crm = FaultyCrm()
    app = web.Application()
    app.router.add_get("/login", crm.page)
    app.router.add_get("/slow", crm.slow)
    app.router.add_get("/reset", crm.reset)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    url = URL(f"http://127.0.0.1:{server.port}")
    yield await make_stack(upstream={"url": url, "whoami_path": None, "read_timeout": 0.5})
    crm.release.set()
    await server.close()


async def test_slow_crm_is_a_504(faulty_crm_stack: Stack):
    """A CRM slower than upstream.read_timeout: 504 page for a person, 504 JSON for XHR."""
    browser = faulty_crm_stack.browser()
    try:
        async with browser.client.get(browser.url("/slow"), headers=NAVIGATE) as page:
            assert page.status == 504 and page.content_type == "text/html"
        async with browser.client.get(browser.url("/slow"), headers=XHR) as xhr:
            assert xhr.status == 504
            assert_contract(await xhr.json(), "GatewayTimeout")
    finally:
        await browser.close()
    await assert_healthy(faulty_crm_stack)


async def test_crm_reset_mid_stream_truncates_and_the_next_request_is_fine(
    faulty_crm_stack: Stack,
):
    """The CRM dies mid-body: the browser sees a cut-off body, and the next request is fine."""
    browser = faulty_crm_stack.browser()
    try:
        async with browser.client.get(browser.url("/reset")) as response:
            assert response.status == 200  # the status line had already gone out
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()
    finally:
        await browser.close()
    await assert_healthy(faulty_crm_stack)


# ---------------------------------------------------------------- Alibaba's token endpoint


@pytest.mark.parametrize(
    ("how", "status"),
    [("5xx", 502), ("slow", 504), ("down", 502), ("garbage", 502), ("html", 502), ("reset", 502)],
)
async def test_token_endpoint_failure_on_refresh_keeps_the_session(
    fronted: tuple[Stack, FaultFront], how: str, status: int
):
    """Refresh while the token endpoint fails: 502/504 JSON, still signed in, then it works."""
    stack, front = fronted
    browser = await signed_in(stack)
    try:
        if how == "5xx":
            await fault(stack, endpoint="token", status=500)
        elif how == "slow":
            await fault(stack, endpoint="token", delay=3.0)
        elif how == "down":
            await front.stop()
        else:
            front.mode = how
        got, body = await refresh(browser)
        assert got == status, body
        assert_contract(body)
        assert (await browser.session())["signedIn"] is True
        front.mode = "pass"
        if how == "down":
            await front.start()
        assert (await refresh(browser))[0] == 200
    finally:
        await browser.close()
    await assert_healthy(stack)


async def test_jwks_down_at_sign_in_is_a_502_page_and_saves_nothing(stack: Stack):
    """JWKS unreachable during the callback: readable 502 page, no session cookie written."""
    await fault(stack, endpoint="jwks", status=503, count=10)
    browser = stack.browser()
    try:
        await browser.login_crm()
        done = await browser.sign_in()
        body = await done.text()
        assert done.status == 502 and done.content_type == "text/html"
        assert "Nothing was saved" in body and 'href="/aliyun/auth"' in body
        assert "Traceback" not in body
        assert not any(
            h.startswith("__Host-ccc-session=") and "Max-Age=0" not in h
            for h in done.headers.getall("Set-Cookie", [])
        )
        assert (await browser.session())["signedIn"] is False
        await stack.emulator_knob("DELETE", "_emulator/faults")
        assert (await browser.sign_in()).status == 303
    finally:
        await browser.close()
    await assert_healthy(stack)


# ---------------------------------------------------------------- the CCC OpenAPI


@pytest.mark.parametrize(
    ("how", "status", "code"),
    [
        ("5xx", 503, "ServiceUnavailable"),
        ("slow", 504, "GatewayTimeout"),
        ("down", 502, "BadGateway"),
        ("garbage", 502, "BadGateway"),
        ("html", 502, "BadGateway"),
        ("reset", 502, "BadGateway"),
    ],
)
async def test_ccc_api_failure_is_an_honest_error_and_the_session_survives(
    fronted: tuple[Stack, FaultFront], how: str, status: int, code: str
):
    """CCC OpenAPI failing: the contract body with 502/504 (or the POP's own 5xx and Code)."""
    stack, front = fronted
    browser = await signed_in(stack)
    try:
        if how == "5xx":
            await fault(stack, endpoint="pop", status=503)
        elif how == "slow":
            await fault(stack, endpoint="pop", delay=3.0)
        elif how == "down":
            await front.stop()
        else:
            front.mode = how
        got, body = await api_call(browser)
        assert got == status, body
        assert_contract(body, code)
        front.mode = "pass"
        if how == "down":
            await front.start()
        assert (await browser.session())["signedIn"] is True
        assert (await api_call(browser))[0] == 200
    finally:
        await browser.close()
    await assert_healthy(stack)


# ---------------------------------------------------------------- clock skew


def skew(stack: Stack, seconds: float) -> None:
    """Alibaba's clock runs `seconds` ahead of the gateway's (behind when negative)."""
    stack.emulator_settings.clock = lambda: stack.clock() + seconds


@pytest.mark.parametrize(
    ("seconds", "ok"), [(600, True), (-600, True), (1200, False), (-1200, False)]
)
async def test_pop_timestamp_skew_is_passed_on_honestly(stack: Stack, seconds: int, ok: bool):
    """10 min off is inside Alibaba's 15 min window; 20 min gives its own InvalidTimeStamp error."""
    browser = await signed_in(stack)
    try:
        skew(stack, seconds)
        status, body = await api_call(browser)
        if ok:
            assert status == 200, body
        else:
            assert status == 400
            assert_contract(body, "InvalidTimeStamp.Expired")
            assert body["requestId"] != ""
        skew(stack, 0)
        assert (await api_call(browser))[0] == 200
    finally:
        await browser.close()
    await assert_healthy(stack)


@pytest.mark.parametrize(
    ("seconds", "token_ttl", "ok"),
    [(600, 3600, False), (1200, 3600, False), (-600, 900, True), (-1200, 900, False)],
    ids=["iat-10min-ahead", "iat-20min-ahead", "exp-10min-behind", "exp-20min-behind"],
)
async def test_id_token_clock_skew_beyond_leeway_is_a_readable_page(
    stack: Stack, seconds: int, token_ttl: int, ok: bool
):
    """An id_token issued in our future, or already expired by our clock, fails with a page."""
    await stack.emulator_knob("POST", "_emulator/settings", {"access_token_ttl": token_ttl})
    skew(stack, seconds)
    browser = stack.browser()
    try:
        await browser.login_crm()
        done = await browser.sign_in()
        if ok:
            assert done.status == 303
        else:
            body = await done.text()
            assert done.status == 502 and done.content_type == "text/html"
            assert "did not verify" in body and 'href="/aliyun/auth"' in body
            assert (await browser.session())["signedIn"] is False
        skew(stack, 0)
        assert (await browser.sign_in()).status == 303
    finally:
        await browser.close()
    await assert_healthy(stack)


# ---------------------------------------------------------------- refresh failing mid-burst


async def test_refresh_failing_mid_burst_keeps_the_session(stack: Stack):
    """A burst of API calls needing a refresh while it fails: all 502, session kept, then fine."""
    burst = 6
    browser = await signed_in(stack)
    try:
        stack.clock.advance(3600)  # the access token is due for refresh
        await fault(stack, endpoint="token", status=503, count=burst)
        results = await asyncio.gather(*(api_call(browser) for _ in range(burst)))
        assert [status for status, _ in results] == [502] * burst
        for _, body in results:
            assert_contract(body, "BadGateway")
        # Requests that waited for a failing refresh share its failure instead of each trying
        # again in turn; only one arriving after a failure had finished tries anew.
        refreshes = len(await stack.emulator_requests("/v1/token"))
        assert 1 <= refreshes - 1 < burst  # minus the sign-in's code exchange
        await stack.emulator_knob("DELETE", "_emulator/faults")
        assert (await browser.session())["signedIn"] is True
        assert (await api_call(browser))[0] == 200
        assert len(await stack.emulator_requests("/v1/token")) == refreshes + 1
    finally:
        await browser.close()
    await assert_healthy(stack)
