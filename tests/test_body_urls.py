"""`upstream.rewrite_body_urls`: links to the CRM's private origin in its HTML (issue 17, 7)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from stack import Stack
from yarl import URL

from ccc_gateway.proxy.body_urls import origin_patterns, rewrite_origin

PRIVATE = URL("http://127.0.0.1:8080")
PUBLIC = "https://crm.example.com:8443"


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        (b'<a href="http://127.0.0.1:8080/x">', b'<a href="https://crm.example.com:8443/x">'),
        (b"HTTP://127.0.0.1:8080", b"https://crm.example.com:8443"),
        (b'{"u":"http:\\/\\/127.0.0.1:8080\\/a"}', b'{"u":"https:\\/\\/crm.example.com:8443\\/a"}'),
        (
            b"next=http%3A%2F%2F127.0.0.1%3A8080%2Fa",
            b"next=https%3A%2F%2Fcrm.example.com%3A8443%2Fa",
        ),
        # Another origin that merely starts like it: never touched.
        (b"http://127.0.0.1:80801/", b"http://127.0.0.1:80801/"),
        (b"http://127.0.0.1:8080.evil.example/", b"http://127.0.0.1:8080.evil.example/"),
        (b"http%3A%2F%2F127.0.0.1%3A80809", b"http%3A%2F%2F127.0.0.1%3A80809"),
        (b"https://127.0.0.1:8080/", b"https://127.0.0.1:8080/"),  # another scheme
    ],
)
def test_only_the_exact_private_origin_is_rewritten(page: bytes, expected: bytes) -> None:
    """Plain, JSON-escaped and percent-encoded spellings are rewritten; look-alikes are not."""
    assert rewrite_origin(page, origin_patterns(PRIVATE, PUBLIC)) == expected


# The CRM's own origin, as it believes it is reached (set once its port is known).
CRM_ORIGIN: dict[str, str] = {}


def _page() -> str:
    field = f'<input type="hidden" name="next" value="{CRM_ORIGIN["url"]}/done">'
    return f"<html><body><form>{field}</form></body></html>"


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text=_page(), content_type="text/html")


async def _missing(request: web.Request) -> web.Response:
    return web.Response(text=_page(), content_type="text/html", status=404)


async def _json(request: web.Request) -> web.Response:
    return web.json_response({"url": f"{CRM_ORIGIN['url']}/x"})


@pytest.fixture
async def linking_crm() -> AsyncIterator[TestServer]:
    """A CRM whose pages name its own private origin in absolute links."""
    app = web.Application()
    app.router.add_get("/page", _ok)
    app.router.add_get("/missing", _missing)
    app.router.add_get("/data", _json)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    CRM_ORIGIN["url"] = f"http://127.0.0.1:{server.port}"
    yield server
    await server.close()


async def _fetch(stack: Stack, path: str) -> tuple[int, str]:
    browser = stack.browser()
    try:
        async with browser.client.get(
            browser.url(path), headers={"Accept": "text/html", "Sec-Fetch-Dest": "document"}
        ) as response:
            return response.status, await response.text()
    finally:
        await browser.close()


async def test_rewrite_on_pages_and_error_pages(
    make_stack: Callable[..., Awaitable[Stack]], linking_crm: TestServer
) -> None:
    """On: HTML pages and HTML error pages name the gateway; JSON is left alone; the widget is
    still injected into the page."""
    private = f"http://127.0.0.1:{linking_crm.port}"
    stack = await make_stack(upstream={"url": URL(private), "rewrite_body_urls": True})
    status, html = await _fetch(stack, "/page")
    assert status == 200 and f"{stack.url}/done" in html and private not in html
    assert "/aliyun/softphone/widget.js" in html
    status, html = await _fetch(stack, "/missing")
    assert status == 404 and f"{stack.url}/done" in html
    status, text = await _fetch(stack, "/data")
    assert private in text


async def test_no_rewrite_unless_asked(
    make_stack: Callable[..., Awaitable[Stack]], linking_crm: TestServer
) -> None:
    """Off (the default): the CRM's page is passed as it made it, links and all."""
    private = f"http://127.0.0.1:{linking_crm.port}"
    stack = await make_stack(upstream={"url": URL(private)})
    _, html = await _fetch(stack, "/page")
    assert f"{private}/done" in html
