"""Posting call events to the CRM: signed, retried with backoff, never blocking a request.

`submit` only schedules: each event gets its own task, which posts it and, on a failure that
may pass (no answer, a 5xx, 408 or 429), waits and tries again, doubling the wait, until
`max_attempts`. One task per event rather than one worker over a queue, so a receiver that
is down for one event's retries does not hold up the next call's events. The number of events
waiting is bounded by `queue_size`: when it is full the oldest waiting event is given up
(counted as dropped). Nothing here is persistent: events still waiting when the process stops
are lost (counted as dropped), which docs/crm/call-events.md says.

Logs name the event id, type and outcome only: never a phone number or notes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import orjson

from ccc_gateway.crm_events.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, signature

log = logging.getLogger(__name__)

# Posts (url, body, headers) and answers the HTTP status; raises OSError/TimeoutError when
# there is no answer.
Post = Callable[[str, bytes, Mapping[str, str]], Awaitable[int]]
Outcome = Callable[[str], None]  # "delivered", "retried", "failed", "dropped"
RETRY_STATUSES: Final = frozenset({408, 425, 429})  # and every 5xx


class Delivery:
    def __init__(
        self,
        url: str,
        secret: str,
        post: Post,
        *,
        max_attempts: int,
        queue_size: int,
        count: Outcome = lambda outcome: None,
        clock: Callable[[], float] = time.time,
        first_delay: float = 1.0,
        max_delay: float = 300.0,
    ) -> None:
        self._url, self._secret, self._post = url, secret, post
        self._max_attempts, self._queue_size = max_attempts, queue_size
        self._count, self._clock = count, clock
        self._first_delay, self._max_delay = first_delay, max_delay
        self._pending: dict[str, asyncio.Task[None]] = {}  # event id -> task, oldest first

    @property
    def pending(self) -> int:
        return len(self._pending)

    def submit(self, event: Mapping[str, Any]) -> bool:
        """Schedule `event`; False when the same event id is already waiting (a repeat)."""
        event_id = str(event["id"])
        if event_id in self._pending:
            return False
        if len(self._pending) >= self._queue_size:
            oldest = next(iter(self._pending))
            self._pending.pop(oldest).cancel()
            self._count("dropped")
            log.warning("call event %s dropped: %d events waiting", oldest, self._queue_size)
        body = orjson.dumps(event)
        task = asyncio.create_task(self._deliver(event_id, str(event["type"]), body))
        self._pending[event_id] = task
        task.add_done_callback(lambda _: self._forget(event_id, task))
        return True

    def _forget(self, event_id: str, task: asyncio.Task[None]) -> None:
        if self._pending.get(event_id) is task:
            del self._pending[event_id]

    async def _deliver(self, event_id: str, kind: str, body: bytes) -> None:
        delay = self._first_delay
        for attempt in range(1, self._max_attempts + 1):
            outcome = await self._attempt(event_id, body)
            if outcome == "delivered":
                self._count("delivered")
                log.info("call event %s (%s) delivered, attempt %d", event_id, kind, attempt)
                return
            if outcome != "retry" or attempt == self._max_attempts:
                break
            self._count("retried")
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_delay)
        self._count("failed")
        log.warning("call event %s (%s) not delivered: %s", event_id, kind, outcome)

    async def _attempt(self, event_id: str, body: bytes) -> str:
        """'delivered', 'retry', or why the receiver refused it for good."""
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(self._secret, int(self._clock()), body),
            EVENT_ID_HEADER: event_id,
        }
        try:
            status = await self._post(self._url, body, headers)
        except (OSError, TimeoutError) as error:
            log.info(
                "call event %s: no answer from the receiver (%s)", event_id, type(error).__name__
            )
            return "retry"
        if 200 <= status < 300:
            return "delivered"
        if status >= 500 or status in RETRY_STATUSES:
            log.info("call event %s: the receiver answered %d", event_id, status)
            return "retry"
        return f"the receiver refused it ({status})"

    async def close(self) -> None:
        """Give up the events still waiting (the process is stopping): counted as dropped."""
        tasks = list(self._pending.values())
        self._pending.clear()
        for task in tasks:
            task.cancel()
            self._count("dropped")
        if tasks:
            log.warning("%d call events not delivered: the gateway is stopping", len(tasks))
            await asyncio.gather(*tasks, return_exceptions=True)
