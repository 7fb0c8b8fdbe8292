"""Framing and resource hardening between the client, the gateway and the CRM (THREAT_MODEL.md, HU).

Most tests run the gateway exactly as `ccc-gateway run` does (`workers.gateway_listeners` and
`serve.start`: the same aiohttp server settings) in front of `RawCrm`, a CRM on a bare socket
that parses each request itself and writes down which connection it came on, so a request
the gateway smuggled onto a keep-alive connection shows up as a request nobody sent.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import hashlib
import json
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from stack import Browser, Stack, gateway_config
from yarl import URL

from ccc_gateway.config.load import Config
from ccc_gateway.runtime.serve import start
from ccc_gateway.runtime.tls import client_context, ensure_self_signed
from ccc_gateway.runtime.workers import gateway_listeners

MakeStack = Callable[..., Awaitable[Stack]]
OK_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"


# ---------------------------------------------------------------- a CRM on a raw socket


@dataclass
class Seen:
    connection: int
    method: str
    target: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RawCrm:
    """Parses requests by hand (Content-Length or chunked) and records each with its connection.

    `answers` maps a path to the raw bytes answered for it (default: `200 ok`, keep-alive), or
    to parts sent a moment apart; a websocket handshake gets them before its 101.
    """

    answers: dict[str, bytes | tuple[bytes, ...]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    connections: int = 0
    server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = self.connections
        self.connections += 1
        try:
            for _ in range(1000):  # bounded: a test sends far fewer requests per connection
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                line, *lines = head[:-4].split("\r\n")
                method, target, _ = line.split(" ", 2)
                headers: dict[str, str] = {}
                for text in lines:
                    name, _, value = text.partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await _read_body(reader, headers)
                self.seen.append(Seen(number, method, target, headers, body))
                if headers.get("upgrade", "").lower() == "websocket":
                    writer.write(self.answers.get(target, b"") + _switch(headers))
                    await reader.read()  # frames are not this CRM's business: wait for the end
                    return
                answer = self.answers.get(target, OK_ANSWER)
                for part in (answer,) if isinstance(answer, bytes) else answer:
                    writer.write(part)
                    await writer.drain()
                    await asyncio.sleep(0.1)  # parts arrive apart: a pause between them
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        except ValueError:  # not HTTP: what a desynchronised connection looks like
            self.seen.append(Seen(number, "GARBAGE", "", {}, b""))
        finally:
            writer.close()


def _switch(headers: dict[str, str]) -> bytes:
    key = headers["sec-websocket-key"] + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    accept = base64.b64encode(hashlib.sha1(key.encode()).digest())  # noqa: S324 - RFC 6455
    return (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
    )


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        for _ in range(100_000):
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                return body
            body += data[:-2]
        raise ValueError("too many chunks")
    return await reader.readexactly(int(headers.get("content-length", "0")))


@pytest.fixture
async def raw_crm() -> AsyncIterator[RawCrm]:
    crm = RawCrm()
    await crm.start()
    yield crm
    await crm.close()


# ---------------------------------------------------------------- the gateway as in production


@dataclass
class Gateway:
    url: URL
    config: Config
    cert: Path

    def client(self, **kwargs: Any) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=client_context(self.cert), **kwargs),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=10),  # bounded, whatever the gateway does
        )


@pytest.fixture
async def make_gateway(
    tmp_path: Path, unused_tcp_port_factory: Callable[[], int]
) -> AsyncIterator[Callable[..., Awaitable[Gateway]]]:
    """Start the gateway the way `ccc-gateway run` does, in front of a CRM on `crm_port`."""
    runners: list[web.AppRunner] = []

    async def make(crm_port: int, **sections: Any) -> Gateway:
        cert, key = ensure_self_signed(tmp_path / "tls")
        port = unused_tcp_port_factory()
        config = gateway_config(
            port=port,
            crm_port=crm_port,
            emulator_url=URL("http://127.0.0.1:9"),  # never reached by these tests
            cert=cert,
            key=key,
            **sections,
        )
        listener = gateway_listeners(config)[0]
        runners.append(await start(listener))
        return Gateway(URL(f"https://127.0.0.1:{port}"), config, cert)

    yield make
    for runner in runners:
        await runner.cleanup()


# ---------------------------------------------------------------- 1: compressed request bodies


def _smuggling_body(compress: Callable[[bytes], bytes]) -> bytes:
    """A compressed body whose first len(body) inflated bytes are padding and whose rest is a
    whole request: what a CRM would read as a second request if the gateway inflated the body
    but kept the client's Content-Length."""
    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: crm\r\nContent-Length: 0\r\n\r\n"
    for padding in range(1, 400):  # bounded search for the fixed point
        body = compress(b"a" * padding + smuggled)
        if len(body) == padding:
            return body
    raise AssertionError("no fixed point")


def _bomb(compress: Callable[[bytes], bytes]) -> bytes:
    return compress(b"\0" * (2 * 1024 * 1024))  # about 2 KiB that inflate 1000-fold


# A request written plainly into the body: what a CRM reading past the body would run.
PLAIN_SMUGGLE = b"GET /smuggled HTTP/1.1\r\nHost: crm\r\nContent-Length: 0\r\n\r\n"
ENCODED_BODIES: dict[str, tuple[str, Callable[[], bytes]]] = {
    "gzip-smuggling": ("gzip", lambda: _smuggling_body(gzip.compress)),
    "deflate-smuggling": ("deflate", lambda: _smuggling_body(zlib.compress)),
    "gzip-bomb": ("gzip", lambda: _bomb(gzip.compress)),
    "deflate-bomb": ("deflate", lambda: _bomb(zlib.compress)),
    "br": ("br", lambda: b"\x0b\x02\x80" + PLAIN_SMUGGLE + b"\x03"),  # a stored brotli stream
    "unknown": ("x-unknown", lambda: PLAIN_SMUGGLE),
}


@pytest.mark.parametrize("case", list(ENCODED_BODIES))
async def test_compressed_request_bodies_reach_the_crm_exactly_as_sent(
    make_gateway: Callable[..., Awaitable[Gateway]], raw_crm: RawCrm, case: str
):
    """Encoded uploads (gzip, deflate, br, unknown, a 1000x bomb) reach the CRM byte for byte
    with their headers: one request each on the keep-alive connection, nothing smuggled."""
    coding, make_body = ENCODED_BODIES[case]
    body = make_body()
    gateway = await make_gateway(raw_crm.port)
    async with gateway.client(limit=1) as client:  # one connection: requests follow each other
        for _ in range(3):
            async with client.post(
                gateway.url / "upload",
                data=body,
                headers={"Content-Encoding": coding, "Content-Type": "application/json"},
            ) as response:
                assert response.status == 200, await response.text()
                assert await response.read() == b"ok"
    assert [(s.method, s.target) for s in raw_crm.seen] == [("POST", "/upload")] * 3
    for seen in raw_crm.seen:
        assert seen.body == body
        assert seen.headers["content-encoding"] == coding
        assert seen.headers.get("content-length") == str(len(body))


async def test_chunked_compressed_upload_reaches_the_crm_as_sent(
    make_gateway: Callable[..., Awaitable[Gateway]], raw_crm: RawCrm
):
    """A gzip body sent in chunks (no Content-Length) reaches the CRM still compressed."""
    body = _smuggling_body(gzip.compress)

    async def pieces() -> AsyncIterator[bytes]:
        yield body[:10]
        yield body[10:]

    gateway = await make_gateway(raw_crm.port)
    async with gateway.client() as client:
        async with client.post(
            gateway.url / "upload", data=pieces(), headers={"Content-Encoding": "gzip"}
        ) as response:
            assert response.status == 200
    assert [(s.target, s.body, s.headers["content-encoding"]) for s in raw_crm.seen] == [
        ("/upload", body, "gzip")
    ]


def api_body(action: str = "GetServiceExtensions") -> bytes:
    return json.dumps({"action": action, "request": {}}).encode()


@pytest.fixture
async def api_agent(make_stack: MakeStack) -> AsyncIterator[tuple[Stack, Browser]]:
    """A signed-in agent on a stack run with the production server settings."""
    stack = await make_stack()
    browser = stack.browser()
    await browser.login_crm()
    assert (await browser.sign_in()).status == 303
    yield stack, browser
    await browser.close()


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
async def test_gateway_api_decodes_compressed_json_itself(
    api_agent: tuple[Stack, Browser], coding: str
):
    """/aliyun/ccc/api still takes a gzip or deflate JSON body (decoded by the gateway)."""
    _, browser = api_agent
    compress = gzip.compress if coding == "gzip" else zlib.compress
    async with await browser.post(
        "/aliyun/ccc/api",
        data=compress(api_body()),
        headers={"Content-Type": "application/json", "Content-Encoding": coding},
    ) as response:
        assert response.status == 200, await response.text()


@pytest.mark.parametrize(
    ("coding", "body", "status", "code"),
    [
        ("gzip", gzip.compress(b'{"action": "' + b"a" * (1 << 20) + b'"}'), 413, "PayloadTooLarge"),
        ("deflate", zlib.compress(b" " * (1 << 20)), 413, "PayloadTooLarge"),
        ("gzip", gzip.compress(api_body())[:-6], 400, "BadRequest"),
        ("gzip", b"not gzip", 400, "BadRequest"),
        ("br", b"\x0b\x02\x80{}\x03", 415, "UnsupportedMediaType"),
        ("gzip, gzip", gzip.compress(gzip.compress(api_body())), 415, "UnsupportedMediaType"),
    ],
)
async def test_gateway_api_caps_and_checks_compressed_bodies(
    api_agent: tuple[Stack, Browser], coding: str, body: bytes, status: int, code: str
):
    """A bomb is 413 on its decompressed size, a corrupt body 400, an unknown coding 415:
    always the contract body, and Alibaba is never called."""
    stack, browser = api_agent
    before = len(await stack.emulator_requests("/"))
    async with await browser.post(
        "/aliyun/ccc/api",
        data=body,
        headers={"Content-Type": "application/json", "Content-Encoding": coding},
    ) as response:
        answer = await response.json()
        assert response.status == status, answer
    assert answer["errorCode"] == code and set(answer) >= {"requestId", "errorCode", "message"}
    assert len(await stack.emulator_requests("/")) == before


# ---------------------------------------------------------------- 7c: interim answers


def _final(body: bytes = b"ok") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


@pytest.mark.parametrize(
    "interim",
    [
        b"HTTP/1.1 100 Continue\r\n\r\n",
        b"HTTP/1.1 102 Processing\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
        b"HTTP/1.1 103 Early Hints\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n",
    ],
    ids=["100", "102", "103", "103+100"],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_interim_answers_are_consumed_and_the_final_one_relayed(
    make_gateway: Callable[..., Awaitable[Gateway]], raw_crm: RawCrm, interim: bytes, method: str
):
    """100/102/103 from the CRM are read and dropped; the client gets the final answer, and the
    connection stays in step for the next request."""
    raw_crm.answers["/interim"] = interim + _final(b"final")
    gateway = await make_gateway(raw_crm.port)
    async with gateway.client(limit=1) as client:
        for path, expected in (("/interim", b"final"), ("/next", b"ok"), ("/interim", b"final")):
            async with client.request(method, gateway.url.with_path(path), data=b"x") as response:
                assert response.status == 200
                assert await response.read() == expected
                assert "Link" not in response.headers
    assert raw_crm.connections == 1
    assert [s.target for s in raw_crm.seen] == ["/interim", "/next", "/interim"]


async def test_interim_answer_arriving_alone_waits_for_the_final_one(
    make_gateway: Callable[..., Awaitable[Gateway]], raw_crm: RawCrm
):
    """A 103 that arrives before the CRM has its final answer is not taken for the answer."""
    raw_crm.answers["/slow"] = (b"HTTP/1.1 103 Early Hints\r\n\r\n", _final(b"late"))
    gateway = await make_gateway(raw_crm.port)
    async with gateway.client() as client:
        async with client.get(gateway.url / "slow") as response:
            assert response.status == 200
            assert await response.read() == b"late"


async def test_unasked_switching_protocols_is_a_502(
    make_gateway: Callable[..., Awaitable[Gateway]], raw_crm: RawCrm
):
    """A 101 to a request that asked for no upgrade is a 502, not relayed."""
    raw_crm.answers["/switch"] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nbytes"
    gateway = await make_gateway(raw_crm.port)
    async with gateway.client() as client:
        async with client.get(gateway.url / "switch") as response:
            assert response.status == 502
            assert (await response.json())["errorCode"] == "BadGateway"
        async with client.get(gateway.url / "after") as response:
            assert response.status == 200


async def test_websocket_upgrade_after_an_early_hint_is_relayed(
    make_gateway: Callable[..., Awaitable[Gateway]], raw_crm: RawCrm
):
    """A websocket handshake answered 103 then 101 by the CRM opens (101 only for upgrades)."""
    raw_crm.answers["/ws"] = b"HTTP/1.1 103 Early Hints\r\n\r\n"  # the 101 follows (RawCrm)
    gateway = await make_gateway(raw_crm.port)
    async with gateway.client() as client:
        async with client.ws_connect(gateway.url / "ws") as ws:
            assert not ws.closed


# ---------------------------------------------------------------- 7i: the redirect listener


async def test_http_redirect_uses_the_public_origin_not_the_host_header(
    make_gateway: Callable[..., Awaitable[Gateway]],
    raw_crm: RawCrm,
    unused_tcp_port: int,
):
    """The plain-HTTP listener redirects to the configured origin whatever Host says."""
    gateway = await make_gateway(raw_crm.port, listen={"http_redirect_port": unused_tcp_port})
    redirect = gateway_listeners(gateway.config)[1]
    runner = await start(redirect)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", unused_tcp_port)
        writer.write(b"GET /customers?id=7 HTTP/1.1\r\nHost: evil.example\r\n\r\n")
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        writer.close()
    finally:
        await runner.cleanup()
    assert head.startswith("HTTP/1.1 308")
    assert f"Location: {gateway.url}/customers?id=7\r\n" in head
    assert "evil.example" not in head


# ---------------------------------------------------------------- 6: slow and idle clients


async def _open(gateway: Gateway) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    assert gateway.url.port is not None
    return await asyncio.open_connection(
        "127.0.0.1", gateway.url.port, ssl=client_context(gateway.cert)
    )


async def _closed_while_trickling(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, piece: Callable[[int], bytes]
) -> bytes | None:
    """Send `piece(i)` every 0.25 s for at most 10 s; what the gateway answered (b"" for a
    close without an answer), or None if it kept the connection open throughout."""
    for i in range(40):
        try:
            writer.write(piece(i))
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(4096), 0.25)
        except TimeoutError:
            continue
        except ConnectionError:
            return b""
        return answer
    return None


@pytest.mark.parametrize("after_a_request", [False, True], ids=["first", "later"])
async def test_a_trickled_request_head_is_cut_off(
    make_gateway: Callable[..., Awaitable[Gateway]], raw_crm: RawCrm, after_a_request: bool
):
    """A request head sent a header line at a time is cut off at listen.request_head_timeout,
    on a new connection and on a keep-alive one; nothing reaches the CRM."""
    gateway = await make_gateway(raw_crm.port, listen={"request_head_timeout": 1.0})
    reader, writer = await _open(gateway)
    try:
        if after_a_request:
            writer.write(b"GET /first HTTP/1.1\r\nHost: gw\r\n\r\n")
            assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
            assert await reader.readexactly(2) == b"ok"
        writer.write(b"GET /trickled HTTP/1.1\r\n")
        answer = await _closed_while_trickling(reader, writer, lambda i: b"X-Slow-%d: 1\r\n" % i)
    finally:
        writer.close()
    assert answer == b""
    assert [s.target for s in raw_crm.seen] == (["/first"] if after_a_request else [])


SMALL_BUDGETS = {
    "max_connections": 8,
    "max_websockets": 2,  # pages get 8 - 2 - 4 = 2 connections
    "connect_timeout": 4.0,  # also how long a request waits for a free connection
    "min_upload_rate_window": 0.5,
}


async def test_trickling_uploads_cannot_hold_every_crm_connection(
    make_gateway: Callable[..., Awaitable[Gateway]], raw_crm: RawCrm
):
    """Uploads that stall below upstream.min_upload_rate get 408 and free their CRM
    connection: a page asked for meanwhile is answered, not a 504."""
    gateway = await make_gateway(raw_crm.port, upstream=SMALL_BUDGETS)
    tricklers = [await _open(gateway) for _ in range(3)]  # more than the 2 page connections
    try:
        for _, writer in tricklers:
            writer.write(b"POST /upload HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000\r\n\r\na")
        for _ in range(50):  # until the uploads hold both page connections
            if raw_crm.connections >= 2:
                break
            await asyncio.sleep(0.1)
        async with gateway.client() as client:
            async with client.get(gateway.url / "page") as response:
                assert response.status == 200
        for reader, _ in tricklers:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 408"), head
    finally:
        for _, writer in tricklers:
            writer.close()
    assert all(s.target != "/upload" for s in raw_crm.seen)  # no cut-off body passed as whole


async def test_an_upload_past_upload_timeout_is_cut_off(
    make_gateway: Callable[..., Awaitable[Gateway]], raw_crm: RawCrm
):
    """An upload that keeps the minimum rate but not upstream.upload_timeout gets 408."""
    gateway = await make_gateway(raw_crm.port, upstream={"upload_timeout": 1.0})
    reader, writer = await _open(gateway)
    try:
        writer.write(b"POST /upload HTTP/1.1\r\nHost: gw\r\nContent-Length: 1000000\r\n\r\n")
        answer = await _closed_while_trickling(reader, writer, lambda i: b"u" * 2048)
    finally:
        writer.close()
    assert answer is not None and answer.startswith(b"HTTP/1.1 408"), answer
    assert raw_crm.seen == []


@pytest.fixture
async def ws_crm() -> AsyncIterator[int]:
    """A CRM with an idle websocket at /ws, whoami at /api/me and pages elsewhere; its port."""

    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:  # idle: nothing is sent, the socket just stays open
            pass
        return ws

    async def whoami(request: web.Request) -> web.Response:
        return web.json_response({"user": "edward"})

    async def page(request: web.Request) -> web.Response:
        return web.Response(text="page")

    app = web.Application()
    app.router.add_get("/ws", socket)
    app.router.add_get("/api/me", whoami)
    app.router.add_get("/{tail:.*}", page)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield runner.addresses[0][1]
    await runner.cleanup()


async def test_idle_websockets_cannot_starve_pages_whoami_or_readiness(
    make_gateway: Callable[..., Awaitable[Gateway]], ws_crm: int
):
    """Websockets beyond upstream.max_websockets are 503; with the rest open and idle, pages,
    /aliyun/session (its whoami) and the readiness check are still answered."""
    gateway = await make_gateway(ws_crm, upstream=SMALL_BUDGETS)
    async with gateway.client() as client:
        sockets: list[aiohttp.ClientWebSocketResponse] = []
        refused = 0
        try:
            for _ in range(SMALL_BUDGETS["max_connections"]):  # what one pool used to allow
                try:
                    sockets.append(await client.ws_connect(gateway.url / "ws"))
                except aiohttp.WSServerHandshakeError as exc:
                    assert exc.status == 503
                    refused += 1
            assert (len(sockets), refused) == (2, 6)
            async with client.get(
                gateway.url / "aliyun/session", headers={"Cookie": "crm=s-edward"}
            ) as response:
                assert response.status == 200
                assert (await response.json())["crmUser"] == "edward"
            async with client.get(gateway.url / "aliyun/readyz") as response:
                assert (await response.json())["checks"]["crm"] == "ok"
            for _ in range(3):  # more pages than the page pool has connections
                async with client.get(gateway.url / "page") as response:
                    assert response.status == 200
        finally:
            for ws in sockets:
                await ws.close()
