"""A minimal fake CCC OpenAPI endpoint: every request gets the canned ListSkillGroupsOfUser.

Plain asyncio, no HTTP framework: it reads a request head, skips a Content-Length body and
answers from bytes prepared once, so the POP side costs as little CPU as possible and the
gateway is what scenario C measures. HTTP/1.1 keep-alive, no chunked request bodies (neither
the gateway's PopClient nor the bench's own client sends one).

Run: python -m bench.popfake --port N
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal

from bench.fixtures import pop_answer

MAX_HEAD = 64 * 1024


def _response(body: bytes) -> bytes:
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json;charset=utf-8\r\n"
        f"Content-Length: {len(body)}\r\nConnection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


class PopProtocol(asyncio.Protocol):
    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.buffer = b""
        self.skip = 0  # body bytes of the current request still to discard
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.skip:
                taken = min(self.skip, len(self.buffer))
                self.buffer, self.skip = self.buffer[taken:], self.skip - taken
                if self.skip:
                    return
                assert self.transport is not None
                self.transport.write(self.answer)
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > MAX_HEAD and self.transport is not None:
                    self.transport.close()
                return
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                self.skip = length
                continue  # the answer goes out once the body has been read
            assert self.transport is not None
            self.transport.write(self.answer)


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    answer = _response(pop_answer())
    server = await loop.create_server(
        lambda: PopProtocol(answer), "127.0.0.1", port, reuse_address=True, backlog=1024
    )
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
