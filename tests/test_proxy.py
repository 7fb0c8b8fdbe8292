"""The CRM reverse proxy end to end: a real gateway app in front of a fake CRM, on loopback."""

from __future__ import annotations

import asyncio
import gzip
import ipaddress
import logging
import resource
import socket
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from ccc_gateway.config.load import UpstreamConfig
from ccc_gateway.http.errors import GatewayError
from ccc_gateway.http.middleware import request_context
from ccc_gateway.keys import REQUEST_ID
from ccc_gateway.proxy.handler import CrmProxy
from ccc_gateway.proxy.pool import create_upstream_client

KiB = 1024
MiB = 1024 * KiB
CHUNK = b"x" * (64 * KiB)
PAGE = b"<html><head><title>CRM</title></head><body><h1>Customers</h1></body></html>"
MARKER = b"<!--ccc-widget-->"

AiohttpServer = Callable[..., Awaitable[TestServer]]
AiohttpClient = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]
Gateway = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]

SEEN = web.AppKey("seen", list[dict[str, Any]])
EVENTS = web.AppKey("events", "asyncio.Queue[tuple[str, Any]]")
RELEASE = web.AppKey("release", asyncio.Event)


# ---------------------------------------------------------------- the fake CRM


def _record(request: web.Request, body: bytes = b"") -> dict[str, Any]:
    seen = {
        "method": request.method,
        "raw_path": request.raw_path,
        "headers": list(request.headers.items()),
        "body": body.decode("latin-1"),
        "peer": request.transport.get_extra_info("peername") if request.transport else None,
    }
    request.app[SEEN].append(seen)
    return seen


async def echo(request: web.Request) -> web.Response:
    return web.json_response(_record(request, await request.read()))


async def upload(request: web.Request) -> web.Response:
    _record(request)
    await request.app[EVENTS].put(("upload-started", None))
    size = 0
    try:
        async for chunk in request.content.iter_any():
            size += len(chunk)
    except (Exception, asyncio.CancelledError) as exc:  # cut off: tell the test how far it got
        await request.app[EVENTS].put(("upload-broken", (size, type(exc).__name__)))
        raise
    await request.app[EVENTS].put(("upload-done", size))
    return web.json_response({"size": size})


async def download(request: web.Request) -> web.StreamResponse:
    size = int(request.query["size"])
    response = web.StreamResponse()
    if "length" in request.query:
        response.content_length = size
    await response.prepare(request)
    sent = 0
    try:
        while sent < size:
            piece = CHUNK if size - sent >= len(CHUNK) else CHUNK[: size - sent]
            await response.write(piece)
            sent += len(piece)
    except (ConnectionError, asyncio.CancelledError):
        await request.app[EVENTS].put(("download-stopped", sent))
        raise
    await response.write_eof()
    return response


async def broken_download(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Length": "100000"})
    await response.prepare(request)
    await response.write(b"only a part")
    assert request.transport is not None
    request.transport.abort()
    return response


async def broken_small_page(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Length": "1000"})
    await response.prepare(request)
    await response.write(b"only a part")
    assert request.transport is not None
    request.transport.abort()
    return response


async def hop_by_hop(request: web.Request) -> web.Response:
    return web.Response(
        text="ok",
        headers={
            "Connection": "X-Drop",
            "X-Drop": "1",
            "Keep-Alive": "timeout=5",
            "Proxy-Authenticate": "Basic",
            "Trailer": "X-Sum",
            "X-Kept": "yes",
        },
    )


async def big_header(request: web.Request) -> web.Response:
    size = int(request.query.get("size", str(16 * KiB)))
    return web.Response(text="ok", headers={"Content-Security-Policy": "a" * size})


async def cookies(request: web.Request) -> web.Response:
    response = web.Response(text="ok")
    response.headers.add("Set-Cookie", "a=1; Path=/; HttpOnly")
    response.headers.add("Set-Cookie", "b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/")
    response.headers.add("Set-Cookie", "c=3")
    response.headers.add("Set-Cookie", "__Host-ccc-session=forged; Path=/; Secure")
    return response


async def redirect(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": request.query["to"]})


def _encode(body: bytes, coding: str) -> bytes:
    if coding == "gzip":
        return gzip.compress(body)
    if coding == "deflate":
        return zlib.compress(body)
    if coding == "raw-deflate":
        compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return compressor.compress(body) + compressor.flush()
    return body


async def html(request: web.Request) -> web.StreamResponse:
    _record(request)
    coding = request.query.get("coding", "identity")
    body = PAGE + b" " * int(request.query.get("pad", "0"))
    if "bomb" in request.query:
        body = PAGE + b" " * (2 * MiB)
    encoded = _encode(body, coding)
    headers = {
        "Content-Type": request.query.get("type", "text/html; charset=utf-8"),
        "ETag": request.query.get("etag", '"v1"'),
        "Accept-Ranges": "bytes",
    }
    if coding != "identity":
        headers["Content-Encoding"] = "deflate" if coding == "raw-deflate" else coding
    status = int(request.query.get("status", "200"))
    if "chunked" in request.query:
        response = web.StreamResponse(status=status, headers=headers)
        await response.prepare(request)
        for start in range(0, len(encoded), 1000):
            await response.write(encoded[start : start + 1000])
        await response.write_eof()
        return response
    return web.Response(status=status, body=encoded, headers=headers)


async def no_body(request: web.Request) -> web.Response:
    return web.Response(status=int(request.match_info["code"]), headers={"ETag": '"v1"'})


async def slow(request: web.Request) -> web.Response:
    await request.app[RELEASE].wait()
    return web.Response(text="late")


async def websocket(request: web.Request) -> web.WebSocketResponse:
    _record(request)
    ws = web.WebSocketResponse(protocols=("chat",))
    await ws.prepare(request)
    async for msg in ws:
        if msg.type is WSMsgType.TEXT and msg.data == "close-me":
            await ws.close(code=4001, message=b"bye")
        elif msg.type is WSMsgType.TEXT:
            await ws.send_str("echo:" + msg.data)
        elif msg.type is WSMsgType.BINARY:
            await ws.send_bytes(b"echo:" + msg.data)
    await request.app[EVENTS].put(("ws-closed", ws.close_code))
    return ws


async def refuse_websocket(request: web.Request) -> web.Response:
    return web.Response(status=403, text="no websockets here")


def crm_app() -> web.Application:
    app = web.Application()
    app[SEEN] = []
    app[EVENTS] = asyncio.Queue()
    app[RELEASE] = asyncio.Event()
    router = app.router
    router.add_route("*", "/echo/{tail:.*}", echo)
    router.add_post("/upload", upload)
    router.add_get("/download", download)
    router.add_get("/broken", broken_download)
    router.add_get("/broken-small", broken_small_page)
    router.add_get("/hop", hop_by_hop)
    router.add_get("/cookies", cookies)
    router.add_get("/big-header", big_header)
    router.add_get("/redirect", redirect)
    router.add_get("/html", html)
    router.add_get("/status/{code}", no_body)
    router.add_get("/slow", slow)
    router.add_get("/ws", websocket)
    router.add_get("/ws-refused", refuse_websocket)
    return app


# ---------------------------------------------------------------- the gateway under test


class MarkerFilter:
    """The simplest response filter: put a marker before </body> of HTML pages."""

    def wants(self, request: web.Request, status: int, headers: CIMultiDictProxy[str]) -> bool:
        return headers.get("Content-Type", "").startswith("text/html")

    def transform(self, request: web.Request, body: bytes, headers: CIMultiDict[str]) -> bytes:
        headers["X-Filtered"] = "1"
        return body.replace(b"</body>", MARKER + b"</body>")


@web.middleware
async def render_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except GatewayError as error:
        body = {"errorCode": error.error_code, "message": error.message}
        return web.json_response(body, status=error.status)


@web.middleware
async def preset_request_id(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if "preset" in request.query:
        request[REQUEST_ID] = "from-middleware"
    return await handler(request)


@pytest.fixture
async def crm(aiohttp_server: AiohttpServer) -> AsyncIterator[TestServer]:
    server = await aiohttp_server(crm_app())
    yield server
    server.app[RELEASE].set()  # let /slow finish so the server shuts down at once


class GatewayServer(TestServer):
    """Runs like production: a handler is not cancelled when its client goes away."""

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        kwargs["handler_cancellation"] = False
        return web.AppRunner(self.app, **kwargs)


@pytest.fixture
async def gateway(crm: TestServer, aiohttp_client: AiohttpClient) -> AsyncIterator[Gateway]:
    """A factory: a gateway app proxying to the fake CRM; `upstream` overrides its config."""
    clients: list[aiohttp.ClientSession] = []
    proxies: list[CrmProxy] = []

    async def make(
        *,
        upstream: dict[str, Any] | None = None,
        client_kwargs: dict[str, Any] | None = None,
        middlewares: tuple[Any, ...] = (),
        **options: Any,
    ) -> TestClient[web.Request, web.Application]:
        config = UpstreamConfig(**{"url": crm.make_url("/"), **(upstream or {})})
        session = create_upstream_client(config)
        clients.append(session)
        options.setdefault("is_gateway_cookie", lambda name: name.startswith("__Host-ccc-"))
        proxy = CrmProxy(config, session, **options)
        proxies.append(proxy)
        app = web.Application(
            middlewares=[request_context(), *middlewares, preset_request_id, render_errors]
        )
        app.router.add_route("*", "/{tail:.*}", proxy.handle)
        return await aiohttp_client(GatewayServer(app), **(client_kwargs or {}))

    yield make
    for proxy in proxies:
        await proxy.close()
    for session in clients:
        await session.close()


def seen_headers(crm: TestServer, index: int = -1) -> CIMultiDict[str]:
    return CIMultiDict(crm.app[SEEN][index]["headers"])


async def next_event(crm: TestServer, kind: str) -> Any:
    name, value = await asyncio.wait_for(crm.app[EVENTS].get(), 10)
    assert name == kind
    return value


def raw_url(client: TestClient[web.Request, web.Application], target: str) -> URL:
    return URL(str(client.make_url("/")).rstrip("/") + target, encoded=True)


# ---------------------------------------------------------------- methods, paths, bodies


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
async def test_methods_and_raw_target_forwarded(
    gateway: Gateway, crm: TestServer, method: str
) -> None:
    """Every method reaches the CRM with the path and query exactly as sent (%2F stays)."""
    client = await gateway()
    target = "/echo/a%2Fb/%7Euser/c;p?x=%2F&y=1+2&z=%20&&flag"
    body = b"payload" if method in {"POST", "PUT", "PATCH"} else None
    async with client.session.request(method, raw_url(client, target), data=body) as resp:
        assert resp.status == 200
    seen = crm.app[SEEN][-1]
    assert (seen["method"], seen["raw_path"]) == (method, target)
    if body is not None:
        assert seen["body"] == "payload"
        assert seen_headers(crm)["Content-Length"] == "7"


async def test_head_has_no_body(gateway: Gateway) -> None:
    """HEAD is forwarded as HEAD and answered with the GET's headers and no body."""
    client = await gateway()
    async with client.head("/html") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Length"] == str(len(PAGE))
        assert await resp.read() == b""


@pytest.mark.parametrize("code", [204, 304])
async def test_no_body_statuses(gateway: Gateway, code: int) -> None:
    """204 and 304 pass through with their headers and no body."""
    client = await gateway()
    async with client.get(f"/status/{code}") as resp:
        assert resp.status == code
        assert resp.headers["ETag"] == '"v1"'
        assert await resp.read() == b""


async def test_chunked_request_body_forwarded_chunked(gateway: Gateway, crm: TestServer) -> None:
    """A body without Content-Length is streamed to the CRM chunked, byte for byte."""
    client = await gateway()

    async def parts() -> AsyncIterator[bytes]:
        for part in (b"first,", b"second,", b"third"):
            yield part

    async with client.post("/echo/chunked", data=parts()) as resp:
        assert resp.status == 200
    assert crm.app[SEEN][-1]["body"] == "first,second,third"
    headers = seen_headers(crm)
    assert headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in headers


async def test_upstream_connections_reused(gateway: Gateway, crm: TestServer) -> None:
    """Requests share the pooled keep-alive connection to the CRM."""
    client = await gateway()
    for _ in range(3):
        await (await client.get("/echo/pool")).read()
    assert len({str(seen["peer"]) for seen in crm.app[SEEN]}) == 1


async def test_client_leaving_mid_upload_is_quiet(
    gateway: Gateway, crm: TestServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A browser that drops a half-sent upload ends the CRM request, without error logs."""
    client = await gateway()
    caplog.set_level(logging.DEBUG, logger="ccc_gateway")
    assert client.port is not None
    _reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(b"POST /upload HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n")
    writer.write(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK))
    await writer.drain()
    assert await next_event(crm, "upload-started") is None
    writer.close()
    await writer.wait_closed()
    size, _error = await next_event(crm, "upload-broken")
    assert size <= len(CHUNK)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_expect_continue_not_forwarded(gateway: Gateway, crm: TestServer) -> None:
    """The gateway answers 100-continue itself; the CRM sees the body, not the Expect."""
    client = await gateway()
    async with client.post("/echo/expect", data=b"body", expect100=True) as resp:
        assert resp.status == 200
    assert crm.app[SEEN][-1]["body"] == "body"
    assert "Expect" not in seen_headers(crm)


async def test_content_length_with_transfer_encoding_rejected(
    gateway: Gateway, crm: TestServer
) -> None:
    """A request with both Content-Length and Transfer-Encoding is a 400, never proxied."""
    client = await gateway()
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    writer.write(
        b"POST /echo/smuggle HTTP/1.1\r\nHost: gw\r\nContent-Length: 4\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    )
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), 10)
    writer.close()
    await writer.wait_closed()
    assert status_line.split(b" ")[1] == b"400"  # aiohttp answers parse errors as HTTP/1.0
    assert crm.app[SEEN] == []


# ---------------------------------------------------------------- streaming, memory


def _reset_peak_rss() -> int:
    # Linux resets the peak RSS on "5" (since 4.0), so the measurement is this test's own and
    # not an earlier test's peak; elsewhere the spec'd ru_maxrss growth check still applies.
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _peak_growth_mib(before: int) -> float:
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


@pytest.mark.slow
async def test_large_upload_streams(gateway: Gateway, crm: TestServer) -> None:
    """200 MB go up through the proxy while the process's peak RSS grows by < 64 MB."""
    client = await gateway(upstream={"max_body_size": 0})
    total = 200 * MiB

    async def body() -> AsyncIterator[bytes]:
        for _ in range(total // len(CHUNK)):
            yield CHUNK

    before = _reset_peak_rss()
    async with client.post("/upload", data=body()) as resp:
        assert resp.status == 200
        assert await resp.json() == {"size": total}
    assert _peak_growth_mib(before) < 64


@pytest.mark.slow
async def test_large_download_streams(gateway: Gateway) -> None:
    """200 MB come down through the proxy while the process's peak RSS grows by < 64 MB."""
    client = await gateway(response_filter=MarkerFilter())
    total = 200 * MiB
    before = _reset_peak_rss()
    received = 0
    async with client.get(f"/download?size={total}") as resp:
        assert resp.status == 200
        async for chunk in resp.content.iter_any():
            received += len(chunk)
    assert received == total
    assert _peak_growth_mib(before) < 64


async def test_content_length_kept_on_download(gateway: Gateway) -> None:
    """A response with Content-Length keeps it (no re-chunking) and arrives whole."""
    client = await gateway()
    async with client.get(f"/download?size={300 * KiB}&length=1") as resp:
        assert resp.headers["Content-Length"] == str(300 * KiB)
        assert "Transfer-Encoding" not in resp.headers
        assert len(await resp.read()) == 300 * KiB


async def test_client_leaving_mid_download_stops_upstream(
    gateway: Gateway, crm: TestServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A browser that goes away mid-download ends the CRM transfer, without error logs."""
    client = await gateway()
    caplog.set_level(logging.DEBUG, logger="ccc_gateway")
    resp = await client.get(f"/download?size={10 * 1024 * MiB}")
    await resp.content.readexactly(256 * KiB)
    resp.close()
    sent = await next_event(crm, "download-stopped")
    assert sent < 10 * 1024 * MiB
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_upstream_failing_mid_stream_aborts(gateway: Gateway) -> None:
    """A CRM dying after the headers leaves the client a visibly truncated body."""
    client = await gateway()
    async with client.get("/broken") as resp:
        assert resp.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()


async def test_small_body_is_sent_whole_with_its_length(gateway: Gateway) -> None:
    """A small page is relayed byte for byte, with the CRM's Content-Length."""
    client = await gateway()
    async with client.get("/status/200") as resp:
        body = await resp.read()
        assert resp.status == 200
        assert resp.headers.get("Content-Length") == str(len(body))


@pytest.mark.parametrize("filtered", [False, True], ids=["whole", "widget"])
async def test_sent_page_is_let_go(gateway: Gateway, filtered: bool) -> None:
    """aiohttp keeps a connection's last response until the next request on it: a page
    answered whole drops its body once sent, so idle keep-alive connections hold no pages."""
    sent: list[web.StreamResponse] = []

    @web.middleware
    async def keep(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        response = await handler(request)
        sent.append(response)
        return response

    options: dict[str, Any] = {"response_filter": MarkerFilter()} if filtered else {}
    client = await gateway(middlewares=(keep,), **options)
    async with client.get("/html") as resp:
        body = await resp.read()
    assert resp.status == 200
    assert (MARKER in body) is filtered
    assert body.startswith(b"<html>") and len(body) == int(resp.headers["Content-Length"])
    assert isinstance(sent[-1], web.Response) and sent[-1].body is None


async def test_upstream_failing_inside_a_small_body_is_a_502(gateway: Gateway) -> None:
    """A small page is read whole before anything is sent, so a CRM dying in it is a 502."""
    client = await gateway()
    async with client.get("/broken-small") as resp:
        assert resp.status == 502


# ---------------------------------------------------------------- headers


async def test_hop_by_hop_dropped_both_ways(gateway: Gateway, crm: TestServer) -> None:
    """Hop-by-hop headers and those Connection names stop at the gateway, both ways."""
    client = await gateway()
    sent = {
        "Connection": "keep-alive, X-Secret",
        "X-Secret": "s",
        "Keep-Alive": "timeout=5",
        "Proxy-Connection": "keep-alive",
        "Proxy-Authorization": "Basic eDp5",
        "TE": "trailers",
        "Trailer": "X-Sum",
        "X-Kept": "yes",
    }
    async with client.get("/echo/hop", headers=sent) as resp:
        assert resp.status == 200
    headers = seen_headers(crm)
    assert [name for name in sent if name in headers] == ["X-Kept"]
    assert headers["Host"] == f"127.0.0.1:{crm.port}"
    assert headers["X-Forwarded-Host"] == f"127.0.0.1:{client.port}"
    async with client.get("/hop") as resp:
        for name in ("X-Drop", "Keep-Alive", "Proxy-Authenticate", "Trailer"):
            assert name not in resp.headers
        assert resp.headers["X-Kept"] == "yes"


SPOOFED = {
    "X-Forwarded-For": "198.51.100.1",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "crm.example.com",
    "Forwarded": "for=198.51.100.1",
    "X-Real-IP": "198.51.100.1",
}


async def test_forwarded_headers_from_untrusted_client_replaced(
    gateway: Gateway, crm: TestServer
) -> None:
    """An untrusted client's forwarding headers are replaced with what the gateway saw."""
    client = await gateway()
    await (await client.get("/echo/xff", headers=SPOOFED)).read()
    headers = seen_headers(crm)
    assert headers["X-Forwarded-For"] == "127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "http"
    assert headers["X-Forwarded-Host"] == f"127.0.0.1:{client.port}"
    # Forwarded is the gateway's own (issue 17), saying the same; the client's is gone.
    assert headers.getall("Forwarded") == [
        f'for=127.0.0.1;proto=http;host="127.0.0.1:{client.port}"'
    ]
    assert "X-Real-IP" not in headers


async def test_forwarded_headers_from_trusted_proxy_extended(
    gateway: Gateway, crm: TestServer
) -> None:
    """A trusted proxy's chain is extended with its address and its -Proto/-Host kept."""
    client = await gateway(trusted_proxies=(ipaddress.ip_network("127.0.0.0/8"),))
    await (await client.get("/echo/xff", headers=SPOOFED)).read()
    headers = seen_headers(crm)
    assert headers["X-Forwarded-For"] == "198.51.100.1, 127.0.0.1"
    assert headers["X-Forwarded-Proto"] == "https"
    assert headers["X-Forwarded-Host"] == "crm.example.com"
    # Its Forwarded chain too (issue 17): its element first, then the gateway's for it.
    assert headers.getall("Forwarded") == [
        "for=198.51.100.1, for=127.0.0.1;proto=https;host=crm.example.com"
    ]


async def test_identity_headers_cannot_be_spoofed(gateway: Gateway, crm: TestServer) -> None:
    """Client-sent X-Ccc-* never reach the CRM; the gateway's identity headers do."""
    client = await gateway(identity_headers=lambda request: {"X-Ccc-Agent-Upn": "agent1@demo"})
    spoof = {"X-Ccc-Agent-Upn": "boss@demo", "X-Ccc-Agent-Name": "Boss", "X-CCC-Role": "admin"}
    await (await client.get("/echo/id", headers=spoof)).read()
    headers = seen_headers(crm)
    assert headers.getall("X-Ccc-Agent-Upn") == ["agent1@demo"]
    assert "X-Ccc-Agent-Name" not in headers and "X-Ccc-Role" not in headers


@pytest.mark.parametrize(
    ("target", "incoming", "expected"),
    [
        ("/echo/rid?preset=1", "client-id", "from-middleware"),
        ("/echo/rid", "client-id.1_x", "client-id.1_x"),
    ],
)
async def test_request_id_forwarded_and_returned(
    gateway: Gateway, crm: TestServer, target: str, incoming: str, expected: str
) -> None:
    """The middleware's request id wins, else a sane client one; CRM and client both see it."""
    client = await gateway()
    async with client.get(target, headers={"X-Request-Id": incoming}) as resp:
        assert resp.headers["X-Request-Id"] == expected
    assert seen_headers(crm)["X-Request-Id"] == expected


async def test_insane_request_id_replaced(gateway: Gateway, crm: TestServer) -> None:
    """A client request id with unsafe characters is replaced by a generated one."""
    client = await gateway()
    async with client.get("/echo/rid", headers={"X-Request-Id": "bad id<script>"}) as resp:
        generated = resp.headers["X-Request-Id"]
    assert generated != "bad id<script>" and len(generated) == 32
    assert seen_headers(crm)["X-Request-Id"] == generated


async def test_gateway_cookies_never_reach_crm(gateway: Gateway, crm: TestServer) -> None:
    """The gateway's cookies are cut from Cookie; the CRM's own stay byte-exact, in order."""
    client = await gateway()
    cookie = 'crm_sid=abc; __Host-ccc-session=SECRET; pref="a b"; __Host-ccc-login=x'
    await (await client.get("/echo/c", headers={"Cookie": cookie})).read()
    assert seen_headers(crm)["Cookie"] == 'crm_sid=abc; pref="a b"'
    await (await client.get("/echo/c", headers={"Cookie": "__Host-ccc-session=S"})).read()
    assert "Cookie" not in seen_headers(crm)


async def test_set_cookie_headers_kept_apart(gateway: Gateway) -> None:
    """Several Set-Cookie headers arrive separately and intact; a forged gateway one does not."""
    client = await gateway()
    async with client.get("/cookies") as resp:
        assert resp.headers.getall("Set-Cookie") == [
            "a=1; Path=/; HttpOnly",
            "b=2; Expires=Wed, 21 Oct 2037 07:28:00 GMT; Path=/",
            "c=3",
        ]


async def test_long_response_header_passes(gateway: Gateway) -> None:
    """A 16 KiB header line (a long CSP) is relayed, not turned into a 502."""
    client = await gateway(client_kwargs={"max_field_size": 32 * KiB})
    async with client.get("/big-header") as resp:
        assert resp.status == 200
        assert len(resp.headers["Content-Security-Policy"]) == 16 * KiB


async def test_bad_crm_answer_is_502_and_logs_no_cookie(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    """An answer the client can't parse is a 502, and the log line holds no cookie value."""
    client = await gateway()
    headers = {"Cookie": "crm_sid=SECRET-SESSION"}
    async with client.get("/big-header?size=65536", headers=headers) as resp:
        assert resp.status == 502
    assert "SECRET-SESSION" not in caplog.text
    assert any(r.name == "ccc_gateway.proxy.handler" for r in caplog.records)


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("{crm}/next?a=%2F", "/next?a=%2F"),
        ("{crm}", "/"),
        ("https://elsewhere.example/x", "https://elsewhere.example/x"),
        ("/relative", "/relative"),
    ],
)
async def test_location_rewritten_to_gateway(
    gateway: Gateway, crm: TestServer, location: str, expected: str
) -> None:
    """Redirects to the CRM's origin become paths; other Locations pass untouched."""
    client = await gateway()
    to = location.format(crm=str(crm.make_url("")).rstrip("/"))
    async with client.get("/redirect", params={"to": to}, allow_redirects=False) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == expected


# ---------------------------------------------------------------- websockets


async def test_websocket_relayed_both_ways(gateway: Gateway, crm: TestServer) -> None:
    """Text and binary frames go both ways, the subprotocol and the close code arrive."""
    client = await gateway()
    headers = {"Cookie": "crm=1; __Host-ccc-session=SECRET"}
    async with client.ws_connect("/ws", protocols=("chat",), headers=headers) as ws:
        assert ws.protocol == "chat"
        await ws.send_str("hello")
        assert await ws.receive_str() == "echo:hello"
        await ws.send_bytes(b"\x00\x01")
        assert await ws.receive_bytes() == b"echo:\x00\x01"
        await ws.close(code=4000, message=b"done")
    assert await next_event(crm, "ws-closed") == 4000
    assert seen_headers(crm)["Cookie"] == "crm=1"


async def test_preserve_host_gives_pages_and_websockets_the_public_host(
    gateway: Gateway, crm: TestServer
) -> None:
    """upstream.preserve_host: a page request and a websocket upgrade both reach the CRM with
    the gateway's public host as Host, once, never the client's."""
    client = await gateway(upstream={"preserve_host": True}, public_host="crm.example.com:8443")
    async with client.get("/echo/page", headers={"Host": "evil.example"}) as response:
        assert response.status == 200
    assert seen_headers(crm).getall("Host") == ["crm.example.com:8443"]
    async with client.ws_connect("/ws", protocols=("chat",)) as ws:
        await ws.send_str("hello")
        assert await ws.receive_str() == "echo:hello"
    assert seen_headers(crm).getall("Host") == ["crm.example.com:8443"]


async def test_websocket_ping_relayed(gateway: Gateway) -> None:
    """A browser's ping reaches the CRM, and the CRM's pong comes back with its payload."""
    client = await gateway()
    async with client.ws_connect("/ws", autoping=False) as ws:
        await ws.ping(b"are-you-there")
        msg = await ws.receive()
        assert (msg.type, msg.data) == (WSMsgType.PONG, b"are-you-there")


async def test_websocket_closed_by_crm(gateway: Gateway, crm: TestServer) -> None:
    """The CRM's close code reaches the browser."""
    client = await gateway()
    async with client.ws_connect("/ws", autoclose=False) as ws:
        await ws.send_str("close-me")
        msg = await ws.receive()
        assert (msg.type, msg.data, msg.extra) == (WSMsgType.CLOSE, 4001, "bye")
        await ws.close()
    assert await next_event(crm, "ws-closed") == 4001


async def test_websocket_refused_by_crm_is_502(gateway: Gateway) -> None:
    """A CRM that refuses the upgrade gives the browser a 502."""
    client = await gateway()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/ws-refused")
    assert refused.value.status == 502


async def test_invalid_websocket_handshake_is_400(gateway: Gateway, crm: TestServer) -> None:
    """An upgrade request without a key is refused before the CRM is contacted."""
    client = await gateway()
    headers = {"Connection": "Upgrade", "Upgrade": "websocket"}
    async with client.get("/ws", headers=headers) as resp:
        assert resp.status == 400
    assert crm.app[SEEN] == []


async def test_upgrade_without_connection_upgrade_is_plain_http(
    gateway: Gateway, crm: TestServer
) -> None:
    """Upgrade: websocket alone is not a websocket request: proxied as HTTP, header dropped."""
    client = await gateway()
    async with client.get("/echo/up", headers={"Upgrade": "websocket"}) as resp:
        assert resp.status == 200
    assert "Upgrade" not in seen_headers(crm)


# ---------------------------------------------------------------- failures


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_unreachable_crm_is_502(gateway: Gateway) -> None:
    """A refused connection is a 502 that names neither the CRM's address nor the error."""
    port = _closed_port()
    client = await gateway(upstream={"url": URL(f"http://127.0.0.1:{port}")})
    async with client.get("/anything") as resp:
        assert resp.status == 502
        body = await resp.json()
    assert body["errorCode"] == "BadGateway"
    assert body["message"] == "The CRM is not reachable."  # the log names host and port
    assert "Errno" not in body["message"] and "Connect call" not in body["message"]


async def test_slow_crm_is_504(gateway: Gateway) -> None:
    """No answer within the read timeout is a 504."""
    client = await gateway(upstream={"read_timeout": 0.5})
    async with client.get("/slow") as resp:
        assert resp.status == 504
        assert (await resp.json())["errorCode"] == "GatewayTimeout"


async def test_declared_body_over_limit_is_413(gateway: Gateway, crm: TestServer) -> None:
    """A Content-Length over max_body_size is refused before the CRM is contacted."""
    client = await gateway(upstream={"max_body_size": 1024})
    async with client.post("/upload", data=b"x" * 2048) as resp:
        assert resp.status == 413
        assert (await resp.json())["errorCode"] == "PayloadTooLarge"
    assert crm.app[SEEN] == []


async def test_streamed_body_over_limit_is_413(gateway: Gateway, crm: TestServer) -> None:
    """A chunked body is counted as it streams: past the limit, 413 and the upload is cut."""
    client = await gateway(upstream={"max_body_size": 100 * KiB})

    async def body() -> AsyncIterator[bytes]:
        yield CHUNK
        # Only once the CRM is reading the upload does the rest follow, so the limit is
        # crossed mid-stream rather than before the CRM request was even sent.
        assert await next_event(crm, "upload-started") is None
        for _ in range(3):
            yield CHUNK

    async with client.post("/upload", data=body()) as resp:
        assert resp.status == 413
    size, _error = await next_event(crm, "upload-broken")
    assert len(CHUNK) <= size <= 100 * KiB


# ---------------------------------------------------------------- response filter


@pytest.mark.parametrize("coding", ["identity", "gzip", "deflate", "raw-deflate"])
@pytest.mark.parametrize("chunked", [False, True])
async def test_filter_rewrites_html(gateway: Gateway, coding: str, chunked: bool) -> None:
    """HTML is decoded, transformed and sent identity-encoded with a correct length."""
    client = await gateway(response_filter=MarkerFilter(), client_kwargs={"auto_decompress": False})
    query = f"/html?coding={coding}" + ("&chunked=1" if chunked else "")
    async with client.get(query, headers={"Accept": "text/html"}) as resp:
        body = await resp.read()
        headers = resp.headers
    assert body == PAGE.replace(b"</body>", MARKER + b"</body>")
    assert headers["Content-Length"] == str(len(body))
    assert "Content-Encoding" not in headers and "Transfer-Encoding" not in headers
    assert "ETag" not in headers and "Accept-Ranges" not in headers
    assert headers["X-Filtered"] == "1"


async def test_filter_keeps_weak_etag(gateway: Gateway) -> None:
    """A weak ETag still describes the page after the widget went in."""
    client = await gateway(response_filter=MarkerFilter())
    async with client.get("/html", params={"etag": 'W/"v1"'}) as resp:
        assert resp.headers["ETag"] == 'W/"v1"'


@pytest.mark.parametrize(
    "query",
    [
        "/html?type=application/json",
        "/html?status=206",
        "/html?pad=4096",
        "/html?pad=4096&chunked=1",
        "/html?coding=gzip&bomb=1",
    ],
)
async def test_filter_leaves_other_responses_alone(
    gateway: Gateway, crm: TestServer, query: str
) -> None:
    """JSON, partial content and pages over the cap (raw or decoded) pass byte for byte."""
    client = await gateway(
        response_filter=MarkerFilter(),
        filter_max_body=2048,
        client_kwargs={"auto_decompress": False},
    )
    async with aiohttp.ClientSession(auto_decompress=False) as direct:
        async with direct.get(crm.make_url(query)) as expected_resp:
            expected = await expected_resp.read()
    async with client.get(query, headers={"Accept": "text/html"}) as resp:
        assert await resp.read() == expected
        assert "X-Filtered" not in resp.headers


async def test_filter_skips_head(gateway: Gateway) -> None:
    """HEAD keeps the CRM's headers: nothing was transformed."""
    client = await gateway(response_filter=MarkerFilter())
    async with client.head("/html", headers={"Accept": "text/html"}) as resp:
        assert resp.headers["Content-Length"] == str(len(PAGE))
        assert resp.headers["ETag"] == '"v1"'
        assert "X-Filtered" not in resp.headers


@pytest.mark.parametrize(
    ("with_filter", "expected"), [(True, "gzip;q=0.8"), (False, "br, gzip;q=0.8")]
)
async def test_brotli_not_requested_when_filter_may_apply(
    gateway: Gateway, crm: TestServer, with_filter: bool, expected: str
) -> None:
    """An HTML page request asks only for codings the filter can decode."""
    client = await gateway(response_filter=MarkerFilter() if with_filter else None)
    headers = {"Accept": "text/html,*/*", "Accept-Encoding": "br, gzip;q=0.8"}
    await (await client.get("/html", headers=headers)).read()
    assert seen_headers(crm)["Accept-Encoding"] == expected


async def test_failing_filter_passes_page_through(gateway: Gateway) -> None:
    """A filter that raises costs the widget, never the CRM page."""

    class Broken(MarkerFilter):
        def transform(self, request: web.Request, body: bytes, headers: CIMultiDict[str]) -> bytes:
            raise RuntimeError("boom")

    client = await gateway(response_filter=Broken())
    async with client.get("/html") as resp:
        assert resp.status == 200
        assert await resp.read() == PAGE


# ---------------------------------------------------------------- framing errors: 400 or 502


async def test_a_header_value_with_a_line_break_is_a_400_not_a_500(
    gateway: Gateway, crm: TestServer
) -> None:
    """An outgoing header value that would start a line of its own on the CRM connection is
    refused before anything is sent: the request's fault, a 400 (it was a 500)."""
    client = await gateway(
        identity_headers=lambda request: {"X-Ccc-Agent-Name": "a\r\nX-Injected: 1"}
    )
    async with client.get("/echo/x") as resp:
        assert resp.status == 400
        assert (await resp.json())["errorCode"] == "BadRequest"
    assert crm.app[SEEN] == []


async def _raw_crm(answer: bytes) -> tuple[asyncio.Server, URL]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, URL(f"http://127.0.0.1:{port}/")


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 999 Odd\r\nContent-Length: 2\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
        b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
    ],
)
async def test_an_answer_that_is_not_http_is_a_502_not_a_500(
    aiohttp_client: AiohttpClient, answer: bytes
) -> None:
    """Every framing or parse error on the CRM's side is a 502 (an abort once the status line
    is sent), never a 500."""
    server, url = await _raw_crm(answer)
    config = UpstreamConfig(url=url)
    session = create_upstream_client(config)
    proxy = CrmProxy(config, session)
    app = web.Application(middlewares=[request_context()])
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    client = await aiohttp_client(GatewayServer(app))
    try:
        async with client.get("/page") as resp:
            assert resp.status == 502
    except aiohttp.ClientPayloadError:
        pass  # a body that broke after the status line: the connection is aborted
    finally:
        await proxy.close()
        await session.close()
        server.close()
        await server.wait_closed()
