"""The app factory's own behaviour: request ids, access log, error rendering, HSTS, redirects."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from stack import Stack

from ccc_gateway.log import ACCESS_LOGGER
from ccc_gateway.serve import https_redirect_app


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
    async with TestClient(TestServer(https_redirect_app(8443))) as client:
        response = await client.post("/customers?id=7", allow_redirects=False)
        assert response.status == 308
        assert response.headers["Location"] == "https://127.0.0.1:8443/customers?id=7"


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
    from ccc_gateway.tls import ensure_self_signed

    monkeypatch.delenv("SESSION_KEY", raising=False)
    cert, key = ensure_self_signed(tmp_path)
    config = gateway_config(
        port=1, crm_port=2, emulator_url=URL("http://127.0.0.1:3"), cert=cert, key=key
    )
    assert isinstance(create_app(config), web.Application)
