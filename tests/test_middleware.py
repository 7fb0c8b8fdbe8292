"""The request-context middleware: the status it counts and logs for each way a handler ends."""

from __future__ import annotations

import logging

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from ccc_gateway.http.errors import Forbidden
from ccc_gateway.http.middleware import request_context, response_headers
from ccc_gateway.http.request_id import new_request_id
from ccc_gateway.ops.log import ACCESS_LOGGER
from ccc_gateway.ops.metrics import Metrics


async def ok(request: web.Request) -> web.Response:
    return web.Response(text="hello")


async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/elsewhere")


async def refused(request: web.Request) -> web.Response:
    raise Forbidden("no")


async def broken(request: web.Request) -> web.Response:
    raise RuntimeError("bug")


@pytest.mark.parametrize(
    ("path", "status"),
    [("/ok", 200), ("/redirect", 302), ("/refused", 403), ("/broken", 500), ("/nope", 404)],
)
async def test_status_counted_and_logged_is_the_one_sent(
    path: str, status: int, caplog: pytest.LogCaptureFixture
):
    """Answers, raised redirects, gateway errors, bugs and unknown routes alike."""
    metrics = Metrics(known_actions=frozenset())
    app = web.Application(middlewares=[request_context(metrics)])
    app.on_response_prepare.append(response_headers(hsts_max_age=0))
    for handler in (ok, redirect, refused, broken):
        app.router.add_get(f"/{handler.__name__}", handler)
    async with TestClient(TestServer(app)) as client:
        with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
            async with client.get(path, allow_redirects=False) as response:
                assert response.status == status
                request_id = response.headers["X-Request-Id"] if status != 500 else None
    lines = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [r.getMessage() for r in lines] == [f"GET {path} {status}"]
    if request_id is not None:
        assert lines[0].fields["request_id"] == request_id  # type: ignore[attr-defined]
    text = metrics.exposition().decode()
    assert f'method="GET",route="page",status="{status}"}} 1.0' in text
    assert "ccc_gateway_requests_in_flight 0.0" in text


def test_new_request_ids_are_32_hex_digits_and_distinct():
    ids = {new_request_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
