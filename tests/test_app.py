"""The app factory's own behaviour: request ids, access log, error rendering, HSTS, redirects."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from stack import Stack
from yarl import URL

from ccc_gateway.ops.log import ACCESS_LOGGER
from ccc_gateway.runtime.serve import https_redirect_app


async def test_access_log_line_has_the_request_fields(
    stack: Stack, caplog: pytest.LogCaptureFixture
):
    """One access line per request: method, path (no query), status, duration, bytes, request id."""
    browser = stack.browser()
    try:
        with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
            async with await browser.get("/login?next=/secret-query") as response:
                assert response.status == 200
                request_id = response.headers["X-Request-Id"]
                length = len(await response.read())
    finally:
        await browser.close()
    lines = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(lines) == 1
    record = lines[0]
    assert record.getMessage() == "GET /login 200"
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["request_id"] == request_id
    assert fields["bytes"] >= length  # bytes on the wire, headers included
    assert fields["duration_ms"] >= 0


async def test_request_id_is_kept_when_sane_and_replaced_otherwise(stack: Stack):
    """A sane incoming X-Request-Id is kept; a hostile one is replaced by a fresh id."""
    browser = stack.browser()
    try:
        async with await browser.get("/aliyun/healthz", headers={"X-Request-Id": "abc-123"}) as r:
            assert r.headers["X-Request-Id"] == "abc-123"
        async with await browser.get("/aliyun/healthz", headers={"X-Request-Id": "a b\tc"}) as r:
            assert r.headers["X-Request-Id"] != "a b\tc" and len(r.headers["X-Request-Id"]) == 32
    finally:
        await browser.close()


async def test_unknown_gateway_route_is_json_for_programs_and_a_page_for_people(stack: Stack):
    """/aliyun/nope is the gateway's 404 (never proxied): JSON for XHR, HTML for navigation."""
    browser = stack.browser()
    try:
        async with await browser.get("/aliyun/nope", headers={"Accept": "application/json"}) as r:
            assert r.status == 404
            body = await r.json()
            assert (
                body["errorCode"] == "NotFound" and body["requestId"] == r.headers["X-Request-Id"]
            )
        async with await browser.get("/aliyun/nope", headers={"Sec-Fetch-Mode": "navigate"}) as r:
            assert r.status == 404
            assert r.content_type == "text/html"
            assert "Not found" in await r.text()
        async with await browser.post("/aliyun/healthz") as r:
            assert r.status == 405
            assert (await r.json())["errorCode"] == "MethodNotAllowed"
    finally:
        await browser.close()


async def test_hsts_header_follows_configuration(make_stack):
    """HTTPS answers carry Strict-Transport-Security; hsts_max_age 0 turns it off."""
    on = await make_stack()
    off = await make_stack(listen={"hsts_max_age": 0})
    for stack, expected in ((on, "max-age=31536000; includeSubDomains"), (off, None)):
        browser = stack.browser()
        try:
            async with await browser.get("/aliyun/healthz") as response:
                assert response.headers.get("Strict-Transport-Security") == expected
        finally:
            await browser.close()


async def test_plain_http_listener_only_redirects_to_https():
    """The optional HTTP listener answers every path with a permanent redirect to HTTPS."""
    public = URL("https://crm.example.com:8443/aliyun/auth/callback")
    async with TestClient(TestServer(https_redirect_app(str(public.origin())))) as client:
        response = await client.post("/customers?id=7", allow_redirects=False)
        assert response.status == 308
        assert response.headers["Location"] == "https://crm.example.com:8443/customers?id=7"


@pytest.mark.parametrize(
    "path",
    [
        "/ALIYUN/session",
        "/Aliyun/ccc/api",
        "/aliyun%2Fsession",
        "/aliyun%2fccc%2fapi",
        "//aliyun/session",
    ],
)
async def test_disguised_gateway_paths_never_reach_the_crm(stack: Stack, path: str):
    """Other spellings of /aliyun/ are the gateway's 404, not a page from the CRM."""
    browser = stack.browser()
    try:
        async with browser.client.get(
            f"{stack.url}{path}", headers={"Accept": "application/json"}
        ) as r:
            assert r.status == 404
            assert (await r.json())["errorCode"] == "NotFound"
    finally:
        await browser.close()


def test_app_factory_does_not_read_the_environment(monkeypatch, tmp_path):
    """create_app works from a Config alone (the CLI and the tests share it)."""
    from stack import gateway_config
    from yarl import URL

    from ccc_gateway.app import create_app
    from ccc_gateway.runtime.tls import ensure_self_signed

    monkeypatch.delenv("SESSION_KEY", raising=False)
    cert, key = ensure_self_signed(tmp_path)
    config = gateway_config(
        port=1, crm_port=2, emulator_url=URL("http://127.0.0.1:3"), cert=cert, key=key
    )
    assert isinstance(create_app(config), web.Application)


async def _small_page(request: web.Request) -> web.Response:
    return web.Response(text="<html><body>hi</body></html>", content_type="text/html")


async def _large_page(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()  # no Content-Length: the gateway streams it
    await response.prepare(request)
    await response.write(b"x" * (200 * 1024))
    await response.write_eof()
    return response


async def _crm_redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/small")


async def _crm_websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        await ws.send_str(message.data)
    return ws


async def test_every_kind_of_response_carries_the_request_id_and_hsts(make_stack, aiohttp_server):
    """The one on_response_prepare hook reaches every response: whole and streamed CRM pages,
    CRM redirects, the gateway's own pages, errors and redirects, and websocket handshakes."""
    crm = web.Application()
    crm.router.add_get("/small", _small_page)
    crm.router.add_get("/large", _large_page)
    crm.router.add_get("/moved", _crm_redirect)
    crm.router.add_get("/ws", _crm_websocket)
    crm_server = await aiohttp_server(crm)
    stack = await make_stack(upstream={"url": crm_server.make_url("/")})
    hsts = "max-age=31536000; includeSubDomains"
    browser = stack.browser()
    try:
        for path, status in [
            ("/small", 200),
            ("/large", 200),
            ("/moved", 302),
            ("/aliyun/healthz", 200),
            ("/aliyun/nope", 404),
            ("/aliyun/auth", 302),  # the gateway's own redirect to Alibaba's sign-in
        ]:
            async with await browser.get(
                path, allow_redirects=False, headers={"X-Request-Id": f"id-{status}"}
            ) as r:
                assert r.status == status, path
                assert r.headers.getall("X-Request-Id") == [f"id-{status}"], path
                assert r.headers["Strict-Transport-Security"] == hsts, path
                await r.read()
        async with browser.client.ws_connect(
            browser.url("/ws"), headers={"X-Request-Id": "id-ws"}
        ) as ws:
            assert ws._response.headers.getall("X-Request-Id") == ["id-ws"]
            assert ws._response.headers["Strict-Transport-Security"] == hsts
            await ws.send_str("ping")
            assert (await ws.receive_str()) == "ping"
    finally:
        await browser.close()
