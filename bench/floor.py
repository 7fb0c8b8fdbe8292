"""The floor: a bare aiohttp relay, measured beside the gateway to show what aiohttp allows here.

The same server stack as the gateway (aiohttp's web server, uvloop, TLS with the bench's
certificate) doing only the relay: a page `GET` is passed to the upstream and its body
returned; an API `POST /aliyun/ccc/api` has its form read and a same-size form POSTed to the
fake POP, whose answer is returned. The upstream hop is a trivial keep-alive client
(Content-Length framing only, no header rules, no timeouts, no logging). Whatever the gateway
costs beyond this is its own work; what this costs is the framework, TLS and the machine,
which no change to the gateway can remove. It is a yardstick, never a product path.

Run: python -m bench.floor --port N --cert C --key K --upstream-port U --pop-port P
"""

from __future__ import annotations

import argparse
import asyncio
import ssl

from aiohttp import web

from ccc_gateway.runtime.loop import run_async

API_PATH = "/aliyun/ccc/api"
_FORWARDED = b"X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Proto: https\r\n"


class KeepAliveClient:
    """One origin, connections reused, answers framed by Content-Length (what nginx and the
    fake POP send for these requests)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def exchange(self, head: bytes, body: bytes = b"") -> tuple[bytes, bytes]:
        reader, writer = (
            self.idle.pop() if self.idle else await asyncio.open_connection("127.0.0.1", self.port)
        )
        writer.write(head + body)
        answer_head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in answer_head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        answer = await reader.readexactly(length)
        self.idle.append((reader, writer))
        return answer_head, answer


def floor_app(upstream_port: int, pop_port: int) -> web.Application:
    upstream, pop = KeepAliveClient(upstream_port), KeepAliveClient(pop_port)

    async def page(request: web.Request) -> web.Response:
        head = f"GET {request.raw_path} HTTP/1.1\r\nHost: crm\r\n".encode() + _FORWARDED + b"\r\n"
        _, body = await upstream.exchange(head)
        return web.Response(body=body, content_type="text/html")

    async def api(request: web.Request) -> web.Response:
        form = await request.post()
        body = b"x" * (len(str(dict(form))) + 600)  # about the size of the signed form
        head = (
            f"POST / HTTP/1.1\r\nHost: pop\r\nContent-Length: {len(body)}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n\r\n"
        ).encode()
        _, answer = await pop.exchange(head, body)
        return web.Response(body=answer, content_type="application/json")

    app = web.Application()
    app.router.add_post(API_PATH, api)
    app.router.add_get("/{tail:.*}", page)
    return app


async def _serve(args: argparse.Namespace) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    runner = web.AppRunner(floor_app(args.upstream_port, args.pop_port), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port, ssl_context=context).start()
    await asyncio.Event().wait()  # until the bench stops the process group


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--pop-port", type=int, required=True)
    run_async(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
