"""An upstream's answer: status and headers now, the body as it arrives."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import StreamReader
from aiohttp.http import RawResponseMessage
from multidict import CIMultiDictProxy

if TYPE_CHECKING:
    from ccc_gateway.upstream.connection import Connection
    from ccc_gateway.upstream.pool import HttpPool


class HttpResponse:
    """An upstream answer: status and headers now, the body in `content` as it arrives.

    The connection returns to the pool when the body has been read to its end; `release()`
    before that closes it (the unread rest cannot be skipped safely), as does `close()`.
    Reading `content` raises `BodyBroken` or `UpstreamTimeout` (errors.py) when the body
    breaks off.
    """

    __slots__ = ("_pool", "_proto", "content", "headers", "reason", "status")

    def __init__(
        self, pool: HttpPool, proto: Connection, message: RawResponseMessage, content: StreamReader
    ) -> None:
        self._pool = pool
        self.status: int = message.code
        self.reason: str = message.reason
        self.headers: CIMultiDictProxy[str] = message.headers
        self.content = content
        if content.is_eof():  # an empty body, or one that came whole with the head
            self._proto: Connection | None = None
            pool.give_back(proto, keep=True)
        else:
            self._proto = proto
            content.on_eof(self._body_read)

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("Content-Length")
        if value is None or not value.isdigit():
            return None
        return int(value)

    async def read(self) -> bytes:
        """The whole body (then the connection is back in the pool)."""
        content = self.content
        if content.is_eof():
            # The body came whole with the head (a small page over loopback, usually): take
            # what is buffered, without read()'s loop of awaits down to an empty chunk.
            return content.read_nowait()
        return await content.read()

    def release(self) -> None:
        """Done with this answer: keep the connection if the body was read out, else close."""
        if self._proto is not None:
            self._finish(keep=self.content.is_eof())

    def close(self) -> None:
        """Drop the connection now, whatever is left unread."""
        self._finish(keep=False)

    def _body_read(self) -> None:
        self._finish(keep=True)

    def _finish(self, *, keep: bool) -> None:
        proto, self._proto = self._proto, None
        if proto is not None:
            self._pool.give_back(proto, keep=keep)
