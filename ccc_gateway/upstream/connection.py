"""One keep-alive connection to the upstream, and the streaming of a request body over it.

aiohttp's client protocol (`ResponseHandler`) does more per read than a proxy hop needs: it
re-arms a timer on every read, queues answers for readers that never queue, and resumes a
transport that was never paused. `Connection` drives the same C parser
(`HttpResponseParser`: llhttp, chunked bodies, flow control through the body's
`StreamReader`) with only what the hop uses. The aiohttp internals it relies on are listed in
the package docstring (ccc_gateway/upstream/__init__.py).

Interim answers (100 Continue, 102 Processing, 103 Early Hints) are read and dropped: the
answer a request gets is its final one. A 101 is refused (`BadResponse`): the pool never asks
to switch protocols, and the bytes after it are not HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable

from aiohttp import EMPTY_PAYLOAD, StreamReader
from aiohttp.base_protocol import BaseProtocol
from aiohttp.helpers import DEFAULT_CHUNK_SIZE, set_exception
from aiohttp.http import HttpResponseParser, RawResponseMessage
from aiohttp.http_exceptions import HttpProcessingError

from ccc_gateway.upstream.errors import (
    BadResponse,
    BodyBroken,
    Disconnected,
    UploadTimeout,
    UpstreamError,
    UpstreamTimeout,
)
from ccc_gateway.upstream.head import Body

MAX_LINE_SIZE = 8190
# Answers that have no body, whatever their headers say (RFC 9110 §6.4.1).
EMPTY_BODY_STATUS_CODES = frozenset({*range(100, 200), 204, 304})

Answer = tuple[RawResponseMessage, StreamReader]


class Connection(BaseProtocol):
    """One keep-alive connection: llhttp parses what arrives, one answer at a time is awaited.

    The read timeout is one deadline that moves: every read stamps the time, and a timer
    that fires early (because data came meanwhile) is set again for the stamped time plus
    the timeout, so a connection that streams keeps one timer, not one per read. It runs
    from the moment the request is sent until the answer's body ends, and stops while the
    body's reader holds the transport paused (the peer is not the one waiting then).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        read_timeout: float,
        max_field_size: int,
        upload_timeout: float = 0.0,
    ) -> None:
        super().__init__(loop)
        self._read_timeout = read_timeout
        self._upload_timeout = upload_timeout
        self._max_field_size = max_field_size
        self._parser: HttpResponseParser | None = None
        self.parser_skips_payload: bool | None = None  # no parser yet
        # The answer awaited (its head), then its body as the parser fills it.
        self._answer: asyncio.Future[Answer] | None = None
        self._payload: StreamReader | None = None
        self._upload: asyncio.Task[None] | None = None  # a streamed request body being sent
        # Not to be reused: the upstream said so, spoke out of turn, failed, or left.
        self.should_close = False
        self.idle_since = 0.0
        self._clock = False  # the read timeout runs (from the request sent to the body's end)
        self._read_at = 0.0  # when the upstream last sent something (or the request went)
        self._timer: asyncio.TimerHandle | None = None

    def _use_parser(self, skip_payload: bool) -> None:
        """A parser for answers with a body, or without one (HEAD).

        A parser goes on to the next message of its connection on its own (aiohttp's server
        keeps one per connection), so one is kept for as long as requests on the connection
        expect the same kind of answer, rather than one built per request.
        """
        self._parser = HttpResponseParser(
            self,
            self._loop,
            DEFAULT_CHUNK_SIZE,  # the body's buffer: above twice this, reading pauses
            payload_exception=BodyBroken,
            response_with_body=not skip_payload,
            read_until_eof=True,  # an answer with neither length nor chunks ends at close
            auto_decompress=False,  # bodies pass through exactly as the upstream sent them
            max_line_size=MAX_LINE_SIZE,
            max_field_size=self._max_field_size,
        )
        self.parser_skips_payload = skip_payload

    def send(
        self, head: bytes, body: Body, *, chunked: bool, skip_payload: bool
    ) -> asyncio.Future[Answer]:
        """Send a request; the future of its answer's head and body (no body if
        `skip_payload`: the answer to HEAD)."""
        transport = self.transport
        if transport is None:
            raise Disconnected("the connection closed before the request was sent")
        if self.parser_skips_payload is not skip_payload:
            self._use_parser(skip_payload)
        self._payload = None
        answer = self._answer = self._loop.create_future()
        if body is None or isinstance(body, bytes):
            transport.write(head + body if body else head)  # one write, one segment
            self.start_clock()
        else:
            transport.write(head)
            self._clock = False  # an upload may take its time: the clock starts once it is sent
            self._upload = asyncio.ensure_future(
                send_body(self, body, chunked=chunked, deadline=self._upload_timeout)
            )
        return answer

    def give_up(self) -> BaseException | None:
        """The answer failed: cut the connection and stop the upload; the upload's own
        failure, if it had one, is the one to report (the answer's is its consequence)."""
        self.abort()
        upload, self._upload = self._upload, None
        if upload is None:
            return None
        upload.cancel()
        if upload.done() and not upload.cancelled():
            return upload.exception()
        return None

    def start_clock(self) -> None:
        """The request is sent: the read timeout runs from now."""
        if self._read_timeout:
            self._clock = True
            self._read_at = self._loop.time()
            if self._timer is None:
                self._timer = self._loop.call_at(self._read_at + self._read_timeout, self._tick)

    def close(self) -> None:
        self.should_close = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.should_close = True
        if self.transport is not None:
            self.transport.abort()

    # ------------------------------------------------------------ transport events

    def data_received(self, data: bytes) -> None:
        answer = self._answer
        if answer is None and (self._payload is None or self._payload.is_eof()):
            # Nothing was asked: bytes sent on an idle connection would be taken for the
            # answer to the next request, so the connection is not used again.
            self.should_close = True
            return
        if data and self._read_timeout:
            if self._clock:
                self._read_at = self._loop.time()
            else:
                self.start_clock()  # an early answer to an upload starts it too
        try:
            messages, upgraded, _ = self._parser.feed_data(data)  # type: ignore[union-attr]
        except Exception as exc:
            reason = exc.message if isinstance(exc, HttpProcessingError) else type(exc).__name__
            kind = BadResponse if answer is not None else BodyBroken  # the head, or the body
            self.fail(kind(f"invalid answer from the upstream: {reason}"))
            return
        if messages and 100 <= messages[0][0].code < 200:
            # Interim answers are not the answer (aiohttp's client skips them the same way);
            # the parser goes on to the next message of the connection by itself.
            messages = [m for m in messages if not 100 <= m[0].code < 200 or m[0].code == 101]
        if not messages:
            return
        message, payload = messages[0]
        # More than the one answer asked for, or a switch of protocols: not reusable.
        if message.should_close or upgraded or len(messages) > 1 or answer is None:
            self.should_close = True
        if answer is None:
            return
        if message.code == 101:
            self.fail(BadResponse("101 Switching Protocols was not asked for"))
            return
        if message.code > 599 or "\r" in message.reason or "\n" in message.reason:
            # An answer no HTTP response of the gateway's can carry on (RFC 9110 §15).
            self.fail(BadResponse(f"status {message.code} or its reason is not valid"))
            return
        self._answer = None
        self._payload = payload
        if self._upload is not None:
            if not self._upload.done():
                # The upstream answered before the upload ended (an early 4xx): the rest
                # is not wanted, and the connection can't carry another request.
                self._upload.cancel()
                self.should_close = True
            self._upload = None
        if payload is not EMPTY_PAYLOAD and message.code in EMPTY_BODY_STATUS_CODES:
            payload = EMPTY_PAYLOAD  # 1xx, 204, 304: no body, whatever the headers say
        answer.set_result((message, payload))

    def resume_reading(self, resume_parser: bool = True) -> None:
        # The body's reader calls this after every read and at its end; only a transport
        # it paused (a body arriving faster than it is read) has anything to resume.
        if self._reading_paused:
            super().resume_reading(resume_parser)
            if not self._reading_paused:
                self.start_clock()

    def eof_received(self) -> None:
        self.should_close = True  # the transport closes; a body that runs to the close ends

    def connection_lost(self, exc: BaseException | None) -> None:
        self.should_close = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        payload = self._payload
        if payload is not None and not payload.is_eof() and self._parser is not None:
            try:
                self._parser.feed_eof()  # the end of a body that runs to the close
            except Exception as underlying:
                reason = f"the body is not complete: {type(underlying).__name__}"
                set_exception(payload, BodyBroken(reason), underlying)
        answer = self._answer
        if answer is not None:
            self._answer = None
            error = Disconnected(f"the connection closed before the answer: {exc or 'EOF'}")
            error.__cause__ = exc
            set_exception(answer, error)
        self._parser = None
        self._payload = None
        super().connection_lost(exc)

    # ------------------------------------------------------------ failures

    def _tick(self) -> None:
        self._timer = None
        if not self._clock or self._reading_paused or not self._waiting():
            return  # the clock restarts with the next request, or when reading resumes
        due = self._read_at + self._read_timeout
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._tick)
        else:
            self.fail(UpstreamTimeout("timeout on reading data from the upstream"))

    def _waiting(self) -> bool:
        return self._answer is not None or (
            self._payload is not None and not self._payload.is_eof()
        )

    def fail(self, exc: BaseException) -> None:
        """Fail the answer awaited, or the body being read, and cut the connection."""
        self.should_close = True
        answer, self._answer = self._answer, None
        payload, self._payload = self._payload, None
        if answer is not None:
            set_exception(answer, exc)
        elif payload is not None and not payload.is_eof():
            if not isinstance(exc, UpstreamError):
                exc = BodyBroken(f"invalid answer body: {type(exc).__name__}")
            set_exception(payload, exc)
        self.abort()


async def send_body(
    proto: Connection, body: AsyncIterable[bytes], *, chunked: bool, deadline: float
) -> None:
    """Stream the request body, waiting whenever the socket's buffer is full; all of it
    within `deadline` seconds (0: no limit)."""
    try:
        timer = asyncio.timeout(deadline or None)
        try:
            async with timer:
                async for chunk in body:
                    transport = proto.transport
                    if transport is None:
                        return  # the connection is gone: the read side reports why
                    if not chunk:
                        continue
                    if chunked:
                        transport.writelines((b"%x\r\n" % len(chunk), chunk, b"\r\n"))
                    else:
                        transport.write(chunk)
                    try:
                        await proto._drain_helper()
                    except ConnectionError as exc:  # the upstream went while taking the body
                        raise Disconnected("the connection closed during the upload") from exc
        except TimeoutError:
            if not timer.expired():
                raise  # not the deadline's: the body's own failure
            raise UploadTimeout(deadline) from None
        if chunked and proto.transport is not None:
            proto.transport.write(b"0\r\n\r\n")
        proto.start_clock()  # like aiohttp's sock_read: the wait for the answer starts now
    except BaseException as exc:
        # The client's upload failed or was too large: the upstream must not take a
        # truncated body for a whole one, so the connection is cut; the exception (with the
        # reason) is raised by the exchange.
        if isinstance(exc, asyncio.CancelledError):
            proto.abort()
        else:
            proto.fail(exc)  # the exchange raises it
        raise
