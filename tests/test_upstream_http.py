"""The lean keep-alive HTTP/1.1 client of the proxy hop (ccc_gateway/upstream/).

Against real servers on loopback: aiohttp's for ordinary HTTP, a raw asyncio server where the
test needs the upstream to misbehave (drop a kept-alive connection, answer early, send junk).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from yarl import URL

from ccc_gateway.runtime.tls import ensure_self_signed
from ccc_gateway.upstream.errors import (
    BadResponse,
    BodyBroken,
    ConnectFailed,
    Disconnected,
    InvalidRequestHead,
    UpstreamError,
    UpstreamTimeout,
)
from ccc_gateway.upstream.head import build_head
from ccc_gateway.upstream.pool import HttpPool

PoolFactory = Callable[..., HttpPool]
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def make_pool() -> AsyncIterator[PoolFactory]:
    pools: list[HttpPool] = []

    def make(origin: URL | str, **options: object) -> HttpPool:
        settings: dict = {"max_connections": 10, "connect_timeout": 2.0, "read_timeout": 2.0}
        pool = HttpPool(URL(str(origin)), **{**settings, **options})
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        await pool.close()


class Echo:
    """An aiohttp upstream that records what it got and counts its connections."""

    def __init__(self) -> None:
        self.seen: list[dict[str, object]] = []
        self.connections: set[object] = set()
        self.hold = asyncio.Event()  # /held sends the rest of its body once this is set

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.connections.add(request.transport)
        body = await request.read()
        self.seen.append(
            {
                "method": request.method,
                "target": request.raw_path,
                "body": body,
                "headers": dict(request.headers),
                "chunked": request.headers.get("Transfer-Encoding"),
            }
        )
        if request.path == "/chunked":
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            for part in (b"one,", b"two,", b"three"):
                await response.write(part)
            await response.write_eof()
            return response
        if request.path == "/held":
            response = web.StreamResponse()
            response.enable_chunked_encoding()
            await response.prepare(request)
            await response.write(b"part,")
            await self.hold.wait()
            await response.write(b"rest")
            await response.write_eof()
            return response
        if request.path == "/empty":
            return web.Response(status=204)
        if request.path == "/slow":
            await asyncio.sleep(5)
        return web.Response(body=b"hello " + body, headers={"X-Up": "yes"})


@pytest.fixture
async def echo(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> tuple[Echo, TestServer]:
    upstream = Echo()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", upstream.handle)
    return upstream, await aiohttp_server(app)


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[Handler], Awaitable[URL]]]:
    servers: list[asyncio.Server] = []
    writers: list[asyncio.StreamWriter] = []
    tasks: list[asyncio.Task[None]] = []

    async def start(handler: Handler) -> URL:
        async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writers.append(writer)
            tasks.append(asyncio.current_task())  # type: ignore[arg-type]
            try:
                await handler(reader, writer)
            except (ConnectionError, asyncio.IncompleteReadError):
                pass  # the client went away: what several tests do on purpose

        server = await asyncio.start_server(tracked, "127.0.0.1", 0)
        servers.append(server)
        port = server.sockets[0].getsockname()[1]
        return URL(f"http://127.0.0.1:{port}")

    yield start
    for server in servers:
        server.close()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for writer in writers:
        writer.close()
    for server in servers:
        await server.wait_closed()


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


# ---------------------------------------------------------------- requests and answers


async def test_get_reuses_one_keep_alive_connection(echo, make_pool) -> None:
    upstream, server = echo
    pool = make_pool(server.make_url("/"))
    for n in range(3):
        response = await pool.request("GET", f"/page?n={n}", [("Accept", "text/html")])
        assert (response.status, await response.read()) == (200, b"hello ")
        assert response.headers["X-Up"] == "yes"
    assert len(upstream.connections) == 1
    assert [s["target"] for s in upstream.seen] == ["/page?n=0", "/page?n=1", "/page?n=2"]
    assert upstream.seen[0]["headers"]["Host"] == f"127.0.0.1:{server.port}"
    assert upstream.seen[0]["headers"]["Accept"] == "text/html"


async def test_headers_are_sent_as_given_and_host_is_the_origins(echo, make_pool) -> None:
    upstream, server = echo
    pool = make_pool(server.make_url("/"))
    given = [("Host", "evil.example"), ("X-Two", "a"), ("X-Two", "b"), ("Transfer-Encoding", "x")]
    response = await pool.request("GET", "/%2Fraw", given)
    await response.read()
    seen = upstream.seen[0]
    assert seen["target"] == "/%2Fraw"  # the encoded target is not re-quoted or decoded
    assert seen["headers"]["Host"] == f"127.0.0.1:{server.port}"
    assert seen["chunked"] is None


async def test_chunked_answer_is_reassembled_and_the_connection_kept(echo, make_pool) -> None:
    upstream, server = echo
    pool = make_pool(server.make_url("/"))
    response = await pool.request("GET", "/chunked", [])
    assert response.content_length is None
    assert await response.read() == b"one,two,three"
    response = await pool.request("GET", "/", [])
    await response.read()
    assert len(upstream.connections) == 1


async def test_head_and_204_have_no_body_and_keep_the_connection(echo, make_pool) -> None:
    upstream, server = echo
    pool = make_pool(server.make_url("/"))
    head = await pool.request("HEAD", "/", [])
    assert head.status == 200 and head.content_length == len(b"hello ")
    assert await head.read() == b""
    empty = await pool.request("GET", "/empty", [])
    assert (empty.status, await empty.read()) == (204, b"")
    after = await pool.request("GET", "/", [])
    assert await after.read() == b"hello "
    assert len(upstream.connections) == 1


async def test_bytes_body_gets_its_content_length(echo, make_pool) -> None:
    upstream, server = echo
    pool = make_pool(server.make_url("/"))
    response = await pool.request("POST", "/", [("Content-Length", "999")], b"abc")
    assert await response.read() == b"hello abc"
    assert upstream.seen[0]["headers"]["Content-Length"] == "3"


async def test_post_without_body_says_content_length_zero(echo, make_pool) -> None:
    upstream, server = echo
    pool = make_pool(server.make_url("/"))
    await (await pool.request("POST", "/", [])).read()
    await (await pool.request("GET", "/", [])).read()
    assert upstream.seen[0]["headers"]["Content-Length"] == "0"
    assert "Content-Length" not in upstream.seen[1]["headers"]


async def test_streamed_body_without_length_goes_chunked(echo, make_pool) -> None:
    upstream, server = echo
    pool = make_pool(server.make_url("/"))
    response = await pool.request("PUT", "/", [], chunks(b"ab", b"", b"cd"))
    assert await response.read() == b"hello abcd"
    assert upstream.seen[0]["chunked"] == "chunked"


async def test_streamed_body_with_declared_length_is_sent_as_is(echo, make_pool) -> None:
    upstream, server = echo
    pool = make_pool(server.make_url("/"))
    response = await pool.request("PUT", "/", [("Content-Length", "4")], chunks(b"ab", b"cd"))
    assert await response.read() == b"hello abcd"
    assert upstream.seen[0]["chunked"] is None
    assert upstream.seen[0]["headers"]["Content-Length"] == "4"


async def test_a_line_break_in_a_header_is_refused_before_sending(echo, make_pool) -> None:
    upstream, server = echo
    pool = make_pool(server.make_url("/"))
    for headers in ([("X-A", "1\r\nX-Injected: 1")], [("X-A", "1\r")], [("X-A", "a\x00b")]):
        with pytest.raises(InvalidRequestHead, match="line break or NUL"):
            await pool.request("GET", "/", headers)
    with pytest.raises(InvalidRequestHead, match="not a token"):
        await pool.request("GET", "/", [("X-A\n", "1")])
    with pytest.raises(InvalidRequestHead, match="target"):
        await pool.request("GET", "/ HTTP/1.1\r\nX-Injected: 1\r\nX:", [("X-A", "1")])
    assert upstream.seen == [] and pool._free_slots == 10


@pytest.mark.parametrize(
    ("method", "target", "headers", "problem"),
    [
        ("GET\r\nX", "/", [], "method"),
        ("G ET", "/", [], "method"),
        ("", "/", [], "method"),
        ("GET", "", [], "target"),
        ("GET", "/a b", [], "target"),
        ("GET", "/a\tb", [], "target"),
        ("GET", "/a\x7fb", [], "target"),
        ("GET", "/", [("", "1")], "header name"),
        ("GET", "/", [("X A", "1")], "header name"),
        ("GET", "/", [("X:A", "1")], "header name"),
        ("GET", "/", [("X-A", "1\n")], "X-A"),
    ],
)
def test_build_head_checks_every_piece(
    method: str, target: str, headers: list[tuple[str, str]], problem: str
) -> None:
    with pytest.raises(InvalidRequestHead, match=problem):
        build_head(method, target, "crm:8080", headers, None)


def test_build_head_keeps_obs_text_and_states_the_framing() -> None:
    """Bytes >= 0x80 (decoded with surrogateescape by the server) go out as they came; a
    header value may hold tabs and any visible byte; framing headers are the pool's."""
    target = b"/caf\xe9?q=\xff".decode("utf-8", "surrogateescape")
    value = b"a\tb \xe9\xff".decode("utf-8", "surrogateescape")
    head, chunked = build_head(
        "POST", target, "crm", [("X-A", value), ("Host", "evil"), ("Content-Length", "9")], b"ab"
    )
    assert head == (
        b"POST /caf\xe9?q=\xff HTTP/1.1\r\nHost: crm\r\nX-A: a\tb \xe9\xff\r\n"
        b"Content-Length: 2\r\n\r\n"
    )
    assert chunked is False


async def test_https_origin(make_pool, tmp_path: Path) -> None:
    cert, key = ensure_self_signed(tmp_path, ("localhost", "127.0.0.1"))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"secure={request.secure}")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context)
    await site.start()
    try:
        port = runner.addresses[0][1]
        trusting = ssl.create_default_context(cafile=str(cert))
        pool = make_pool(f"https://localhost:{port}", ssl_context=trusting)
        response = await pool.request("GET", "/", [])
        assert await response.read() == b"secure=True"
        with pytest.raises(ConnectFailed):  # the system's CAs do not know this certificate
            await make_pool(f"https://localhost:{port}").request("GET", "/", [])
    finally:
        await runner.cleanup()


# ---------------------------------------------------------------- releasing connections


async def test_release_before_the_body_is_read_closes_the_connection(echo, make_pool) -> None:
    upstream, server = echo
    pool = make_pool(server.make_url("/"), max_connections=1)
    response = await pool.request("GET", "/held", [])
    response.release()  # the unread body cannot be skipped safely
    upstream.hold.set()
    response = await pool.request("GET", "/", [])
    assert await response.read() == b"hello "
    assert len(upstream.connections) == 2


async def test_pool_limit_makes_requests_wait_then_time_out(echo, make_pool) -> None:
    upstream, server = echo
    pool = make_pool(server.make_url("/"), max_connections=1, connect_timeout=0.3)
    first = await pool.request("GET", "/held", [])
    with pytest.raises(UpstreamTimeout, match="no free connection"):
        await pool.request("GET", "/", [])
    waiting = asyncio.ensure_future(pool.request("GET", "/", []))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    upstream.hold.set()
    assert await first.read() == b"part,rest"  # read out: the connection is free again
    assert await (await waiting).read() == b"hello "
    assert len(upstream.connections) == 1


# ---------------------------------------------------------------- failures


async def test_connection_refused_is_connect_failed(make_pool, unused_tcp_port: int) -> None:
    pool = make_pool(f"http://127.0.0.1:{unused_tcp_port}")
    with pytest.raises(ConnectFailed) as caught:
        await pool.request("GET", "/", [])
    assert isinstance(caught.value, UpstreamError)
    assert caught.value.os_error is not None


async def test_read_timeout(echo, make_pool) -> None:
    _, server = echo
    pool = make_pool(server.make_url("/"), read_timeout=0.2)
    with pytest.raises(UpstreamTimeout):
        await pool.request("GET", "/slow", [])


async def test_junk_answer_is_bad_response(raw_server, make_pool) -> None:
    async def junk(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n")
        await writer.drain()

    pool = make_pool(await raw_server(junk))
    with pytest.raises(BadResponse):
        await pool.request("GET", "/", [])


async def test_close_delimited_answer(raw_server, make_pool) -> None:
    async def old_style(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
        await writer.drain()
        writer.close()

    pool = make_pool(await raw_server(old_style))
    response = await pool.request("GET", "/", [])
    assert await response.read() == b"until the end"


async def test_a_connection_that_spoke_while_idle_is_not_reused(raw_server, make_pool) -> None:
    connections: list[int] = []

    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        number = len(connections)
        while True:
            await read_head(reader)
            body = b"conn%d" % number
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
            # An answer nobody asked for, sent while the connection is idle in the pool.
            await asyncio.sleep(0.02)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nforge")
            await writer.drain()

    pool = make_pool(await raw_server(chatty))
    assert await (await pool.request("GET", "/", [])).read() == b"conn1"
    await asyncio.sleep(0.05)  # the unsolicited answer arrives while the connection is idle
    assert await (await pool.request("GET", "/", [])).read() == b"conn2"


async def test_head_and_get_alternate_on_one_connection(echo, make_pool) -> None:
    upstream, server = echo
    pool = make_pool(server.make_url("/"))
    for method in ("GET", "HEAD", "HEAD", "GET", "GET", "HEAD", "GET"):
        response = await pool.request(method, "/", [])
        assert await response.read() == (b"" if method == "HEAD" else b"hello ")
    assert len(upstream.connections) == 1


def dropping_second_request(connections: list[int]) -> Handler:
    """Answers the first request of each connection, then drops it on the next one."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await read_head(reader)
        writer.transport.abort()  # as a server closing an idle connection at that moment

    return handle


async def test_idempotent_request_is_retried_once_on_a_dropped_kept_alive_connection(
    raw_server, make_pool
) -> None:
    connections: list[int] = []
    pool = make_pool(await raw_server(dropping_second_request(connections)))
    assert await (await pool.request("GET", "/", [])).read() == b"ok"
    assert await (await pool.request("GET", "/", [])).read() == b"ok"
    assert len(connections) == 2


async def test_post_is_not_retried_on_a_dropped_connection(raw_server, make_pool) -> None:
    connections: list[int] = []
    pool = make_pool(await raw_server(dropping_second_request(connections)))
    assert await (await pool.request("POST", "/", [], b"1")).read() == b"ok"
    with pytest.raises(Disconnected):
        await pool.request("POST", "/", [], b"2")
    assert len(connections) == 1


async def test_early_answer_during_an_upload_is_returned_and_the_connection_dropped(
    raw_server, make_pool
) -> None:
    connections: list[int] = []
    release_upload = asyncio.Event()

    async def early(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await read_head(reader)
        writer.write(b"HTTP/1.1 413 Too Large\r\nContent-Length: 3\r\n\r\nbig")
        await writer.drain()
        release_upload.set()
        await reader.read()  # keep the connection open, reading nothing meaningful

    async def slow_upload() -> AsyncIterator[bytes]:
        yield b"x" * 1024
        await release_upload.wait()
        await asyncio.sleep(0.05)
        yield b"y" * 1024

    pool = make_pool(await raw_server(early))
    response = await pool.request("PUT", "/", [], slow_upload())
    assert (response.status, await response.read()) == (413, b"big")
    pool_two = await pool.request("GET", "/", [])  # a new connection: the old one is spoilt
    assert pool_two.status == 413
    assert len(connections) == 2


async def test_failing_upload_raises_its_error_and_aborts_the_request(
    raw_server, make_pool
) -> None:
    received: list[bytes] = []

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        received.append(await reader.read())  # until the gateway cuts the connection

    class Gone(Exception):
        pass

    async def broken() -> AsyncIterator[bytes]:
        yield b"part"
        await asyncio.sleep(0.05)
        raise Gone()

    pool = make_pool(await raw_server(upstream))
    with pytest.raises(Gone):
        await pool.request("POST", "/", [], broken())
    await asyncio.sleep(0.1)
    assert received and not received[0].endswith(b"0\r\n\r\n")  # never looks complete


async def test_many_requests_share_a_small_pool_and_no_slot_leaks(echo, make_pool) -> None:
    upstream, server = echo
    pool = make_pool(server.make_url("/"), max_connections=2)

    async def one(n: int) -> bytes:
        return await (await pool.request("POST", "/", [], str(n).encode())).read()

    answers = await asyncio.gather(*(one(n) for n in range(30)))
    assert sorted(answers) == sorted(b"hello %d" % n for n in range(30))
    assert len(upstream.connections) <= 2
    # A waiter cancelled while queued gives nothing back twice and takes nothing away.
    held = [await pool.request("GET", "/held", []) for _ in range(2)]
    queued = asyncio.ensure_future(pool.request("GET", "/", []))
    await asyncio.sleep(0.05)
    queued.cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued
    upstream.hold.set()
    for response in held:
        assert await response.read() == b"part,rest"
    again = await asyncio.gather(*(one(n) for n in range(4)))
    assert len(again) == 4
    assert pool._free_slots == 2 and not pool._slot_waiters


# ---------------------------------------------------------------- bodies: timeouts, flow control


async def test_a_body_that_keeps_coming_is_not_cut_but_a_stall_is(raw_server, make_pool) -> None:
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(8):  # 0.8 s in all, four read timeouts, never 0.2 s without a byte
            await asyncio.sleep(0.1)
            writer.write(b"1\r\nx\r\n")
            await writer.drain()
        await asyncio.sleep(5)  # then silence

    pool = make_pool(await raw_server(trickle), read_timeout=0.2)
    response = await pool.request("GET", "/", [])
    received = b""
    with pytest.raises(UpstreamTimeout):
        async for chunk in response.content.iter_any():
            received += chunk
    assert received == b"x" * 8


async def test_a_body_read_slowly_holds_the_upstream_back_without_timing_out(
    raw_server, make_pool
) -> None:
    size = 32 * 1024 * 1024  # more than the socket buffers of both ends hold
    sent: list[float] = []

    async def big(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        for _ in range(size // 65536):
            writer.write(b"z" * 65536)
            await writer.drain()
        sent.append(asyncio.get_running_loop().time())

    pool = make_pool(await raw_server(big), read_timeout=0.2)
    response = await pool.request("GET", "/", [])
    await asyncio.sleep(0.5)  # longer than the read timeout, with the reader holding back
    assert not sent  # back-pressure: the upstream could not push the whole body yet
    assert response.content._size < 1024 * 1024  # nor the gateway buffer it
    received = 0
    async for chunk in response.content.iter_any():
        received += len(chunk)
    assert received == size
    # The connection went back to the pool and serves the next request.
    assert pool._idle and not pool._idle[-1].should_close


async def test_a_body_cut_short_is_a_payload_error(raw_server, make_pool) -> None:
    async def short(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        writer.close()

    pool = make_pool(await raw_server(short))
    response = await pool.request("GET", "/", [])
    with pytest.raises(BodyBroken):
        await response.read()
    assert not pool._idle


async def test_a_broken_chunked_body_is_a_payload_error(raw_server, make_pool) -> None:
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"zz\r\nnot a chunk\r\n")
        await writer.drain()
        await reader.read()

    pool = make_pool(await raw_server(broken))
    response = await pool.request("GET", "/", [])
    with pytest.raises(BodyBroken):
        await response.read()
    response.release()
    assert not pool._idle and pool._free_slots == 10


async def test_a_304_with_a_length_has_no_body_and_keeps_the_connection(
    raw_server, make_pool
) -> None:
    connections: list[int] = []

    async def cached(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        while True:
            await read_head(reader)
            writer.write(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n")
            await writer.drain()

    pool = make_pool(await raw_server(cached))
    for _ in range(3):
        response = await pool.request("GET", "/", [])
        assert (response.status, await response.read()) == (304, b"")
    assert len(connections) == 1


async def test_a_slow_upload_on_a_reused_connection_is_not_a_read_timeout(echo, make_pool) -> None:
    upstream, server = echo
    pool = make_pool(server.make_url("/"), read_timeout=0.2)
    assert await (await pool.request("GET", "/", [])).read() == b"hello "

    async def slow() -> AsyncIterator[bytes]:
        for part in (b"a", b"b", b"c"):
            await asyncio.sleep(0.15)  # 0.45 s of upload: the upstream is not the one late
            yield part

    response = await pool.request("PUT", "/", [], slow())
    assert await response.read() == b"hello abc"
    assert len(upstream.connections) == 1
