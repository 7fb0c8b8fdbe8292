"""The outbound CCC OpenAPI caller (docs/ccc-openapi.md, "Calling the CCC OpenAPI").

Builds the common parameters (`pop.params`), authenticates them (Bearer or STS signature
v1.0, `pop.signing`), POSTs them as an `application/x-www-form-urlencoded` body — what the
official Python SDKs do, and it keeps tokens and signatures out of URLs and so out of access
logs — and reads the JSON answer (`pop.reshape`) under a size cap.

The calls go over a keep-alive pool of its own (`upstream.pool.HttpPool`, the CRM proxy's
lean HTTP/1.1 client): every call is one POST to one URL, so aiohttp's ClientSession did
much per call (URL handling, cookie jar, request and response objects, timers) that it
needs nothing of.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from yarl import URL

from ccc_gateway.auth.oauth.tokens import StsCredentials
from ccc_gateway.ccc.pop.actions import is_read_only, valid_action_name
from ccc_gateway.ccc.pop.errors import PopTimeout, PopUnavailable, RequestShapeError
from ccc_gateway.ccc.pop.params import common_params, merge_params
from ccc_gateway.ccc.pop.reshape import loads_reshaped
from ccc_gateway.ccc.pop.signing import bearer_params, form_body, sts_signed_body
from ccc_gateway.upstream.pool import HttpPool
from ccc_gateway.upstream.response import HttpResponse

# PopUnavailable and PopTimeout live in pop.errors; named here too for the callers' imports.
__all__ = ["BearerCredentials", "PopClient", "PopResult", "PopTimeout", "PopUnavailable"]

log = logging.getLogger(__name__)

_HEADERS = (
    ("Content-Type", "application/x-www-form-urlencoded"),
    ("Accept", "application/json"),
)
_CHUNK = 64 * 1024
MAX_CONNECTIONS = 100


@dataclass(frozen=True)
class BearerCredentials:
    """An OAuth access token that authenticates POP calls by itself (Bearer mode)."""

    access_token: str = field(repr=False)

    def __repr__(self) -> str:
        return "BearerCredentials(access_token='***')"


@dataclass(frozen=True)
class PopResult:
    """A JSON answer from the CCC OpenAPI, whatever its HTTP status.

    `body` is the answer as POP sent it, or reshaped for the workbench SDK
    (`pop.reshape.loads_reshaped`) when the client reshapes and the status is below 400; error
    answers always keep POP's names (`Code`, `Message`).
    """

    status: int
    body: dict[str, Any]
    request_id: str | None
    code: str | None
    duration: float


class _ConnectFailed(Exception):
    """The connection failed before any response: a read-only call may be sent again."""


class PopClient:
    """Calls CCC OpenAPI actions for a signed-in agent, over connections kept open."""

    def __init__(
        self,
        *,
        endpoint: str | URL,
        version: str,
        region_id: str,
        timeout: float = 10.0,
        max_response_bytes: int = 2 * 1024 * 1024,
        reshape: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        max_connections: int = MAX_CONNECTIONS,
        clock: Callable[[], float] = time.time,
        nonce_factory: Callable[[], str] = lambda: os.urandom(16).hex(),  # as uuid4().hex, faster
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        url = URL(endpoint)
        self._target = url.raw_path_qs
        # `timeout` bounds the whole call with one timer (`_Deadline`); connecting is bounded
        # by it inside the pool too. No per-read timeout (0): the pool's would add a clock read
        # per read and a timer per connection, for a bound the deadline already gives.
        self._pool = HttpPool(
            url.origin(),
            max_connections=max_connections,
            connect_timeout=timeout,
            read_timeout=0,
            ssl_context=ssl_context,
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._version = version
        self._region_id = region_id
        self._timeout = timeout
        self._max_bytes = max_response_bytes
        self._reshape = reshape
        self._clock = clock
        self._nonce = nonce_factory
        self._monotonic = monotonic

    async def close(self) -> None:
        await self._pool.close()

    async def call(
        self,
        action: str,
        params: Mapping[str, str],
        credentials: BearerCredentials | StsCredentials,
    ) -> PopResult:
        """Call `action` with flat POP `params`; HTTP error answers come back as results.

        Raises RequestShapeError for a malformed action name or a reserved parameter name,
        PopUnavailable (PopTimeout past the timeout) when no JSON answer could be had.
        """
        if not valid_action_name(action):
            raise RequestShapeError("the action name is not valid")
        # Only reads are replayed: a write may have reached Alibaba before the failure.
        attempts = 2 if is_read_only(action) else 1
        for attempt in range(1, attempts + 1):
            try:
                return await self._send(action, self._form(action, params, credentials))
            except _ConnectFailed as exc:
                if attempt == attempts:
                    raise PopUnavailable(f"CCC OpenAPI unreachable ({action}): {exc}") from exc
                log.warning("CCC OpenAPI unreachable (%s), retrying once: %s", action, exc)
        raise AssertionError("unreachable")  # pragma: no cover

    def _form(
        self,
        action: str,
        params: Mapping[str, str],
        credentials: BearerCredentials | StsCredentials,
    ) -> bytes:
        """The authenticated form body; a fresh nonce and timestamp for every attempt."""
        base = self._base(action, params, self._clock(), self._nonce())
        if isinstance(credentials, BearerCredentials):
            return form_body(bearer_params(base, credentials.access_token))
        return sts_signed_body(
            base,
            access_key_id=credentials.access_key_id,
            access_key_secret=credentials.access_key_secret,
            security_token=credentials.security_token,
            method="POST",
        )

    def _base(
        self, action: str, params: Mapping[str, str], now: float, nonce: str
    ) -> dict[str, str]:
        """The business parameters and the common ones (RequestShapeError for a reserved name)."""
        common = common_params(
            action, version=self._version, region_id=self._region_id, now=now, nonce=nonce
        )
        return merge_params(common, params)

    async def _send(self, action: str, body: bytes) -> PopResult:
        started = self._monotonic()
        deadline = _Deadline(self._current_task(), self._timeout)
        try:
            try:
                response = await self._pool.request("POST", self._target, _HEADERS, body)
            except TimeoutError:  # first: aiohttp's timeouts are connection errors too
                raise
            except aiohttp.ClientConnectionError as exc:
                # Refused, reset or closed before an answer (a kept-alive connection the
                # server had just closed, too): nothing came back.
                raise _ConnectFailed(type(exc).__name__) from exc
            try:
                raw = await self._read_capped(action, response)
            finally:
                response.close()  # a no-op once the body was read: it went back to the pool
        except asyncio.CancelledError as exc:
            if deadline.close():
                raise self._timed_out(action) from exc
            raise
        except TimeoutError as exc:  # connecting, or waiting for a free connection
            raise self._timed_out(action) from exc
        except aiohttp.ClientError as exc:
            raise PopUnavailable(
                f"CCC OpenAPI call failed ({action}): {type(exc).__name__}"
            ) from exc
        finally:
            deadline.close()
        return self._result(action, response.status, raw, self._monotonic() - started)

    def _current_task(self) -> asyncio.Task[Any]:
        # The loop is remembered: looking it up anew each call is dearer (bench/RESULTS.md).
        # A loop that is not running (a client reused in another loop, in tests) has no
        # current task.
        task = asyncio.current_task(self._loop) if self._loop is not None else None
        if task is None:
            self._loop = asyncio.get_running_loop()
            task = asyncio.current_task(self._loop)
            assert task is not None, "PopClient.call runs in a task"
        return task

    def _timed_out(self, action: str) -> PopTimeout:
        return PopTimeout(f"CCC OpenAPI timed out after {self._timeout:g}s ({action})")

    async def _read_capped(self, action: str, response: HttpResponse) -> bytes:
        """The body, refusing it as soon as it exceeds the cap (never buffered whole)."""
        length = response.content_length
        if length is not None and length > self._max_bytes:
            raise PopUnavailable(self._too_big(action))
        try:
            if length is not None:
                return await response.read()
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_chunked(_CHUNK):
                size += len(chunk)
                if size > self._max_bytes:
                    raise PopUnavailable(self._too_big(action))
                chunks.append(chunk)
            return b"".join(chunks)
        except TimeoutError:  # the pool's read timeout (an aiohttp.ClientError as well)
            raise
        except aiohttp.ClientError as exc:
            # The request was sent and answered: never a connect failure, never replayed.
            raise PopUnavailable(
                f"CCC OpenAPI answer broken off ({action}): {type(exc).__name__}"
            ) from exc

    def _too_big(self, action: str) -> str:
        return f"CCC OpenAPI answer over {self._max_bytes} bytes ({action})"

    def _result(self, action: str, status: int, raw: bytes, duration: float) -> PopResult:
        reshaped = self._reshape and status < 400
        try:
            # Parsed once, straight into the SDK's shape when it is wanted.
            body = loads_reshaped(raw) if reshaped else json.loads(raw)
        except (ValueError, RecursionError):
            raise PopUnavailable(
                f"CCC OpenAPI answered HTTP {status} without JSON ({action})"
            ) from None
        if not isinstance(body, dict):
            raise PopUnavailable(f"CCC OpenAPI answered HTTP {status} with a non-object ({action})")
        request_id, code = ("requestId", "code") if reshaped else ("RequestId", "Code")
        result = PopResult(
            status=status,
            body=body,
            request_id=_text(body.get(request_id)),
            code=_text(body.get(code)),
            duration=max(duration, 0.0),
        )
        if log.isEnabledFor(logging.DEBUG):  # a call less on every answer when it is not
            log.debug(
                "CCC %s: HTTP %s code=%s requestId=%s in %.3fs",
                action,
                status,
                result.code,
                result.request_id,
                duration,
            )
        return result


class _Deadline:
    """`asyncio.timeout(seconds)` for one call: a timer that cancels the task when it fires.

    Unlike asyncio.timeout it takes the task it is given rather than finding the loop and the
    task again (cheaper on every call: bench/RESULTS.md). As there, a CancelledError it caused
    becomes a timeout, and only then: its cancellation is taken back, and one requested by
    someone else at the same time is still raised.
    """

    __slots__ = ("_cancelling", "_fired", "_handle", "_task")

    def __init__(self, task: asyncio.Task[Any], seconds: float) -> None:
        loop = task.get_loop()
        self._task = task
        self._cancelling = task.cancelling()
        self._fired = False
        self._handle = loop.call_at(loop.time() + seconds, self._expire)

    def _expire(self) -> None:
        self._fired = True
        self._task.cancel()

    def close(self) -> bool:
        """Stop the timer; True when it had fired and its cancellation was the only one."""
        self._handle.cancel()
        if not self._fired:
            return False
        self._fired = False  # its cancellation is taken back once
        return self._task.uncancel() <= self._cancelling


def _text(value: Any) -> str | None:
    """A POP string field (documented as a string; a bare number is tolerated, not relied on)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None
