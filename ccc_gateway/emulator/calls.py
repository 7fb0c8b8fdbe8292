"""Calls of the emulated call centre: who talks to whom, and the far party's behaviour.

The far party is simulated: an outbound callee answers after `answer_after` seconds and hangs
up `hangup_after` seconds later; an inbound caller gives up after `ring_timeout` seconds if
nobody answers, and otherwise stays until the agent hangs up. Each call belongs to one softphone
connection (a "line"): when that connection goes away its calls end with it, and events of a
call are only ever sent to the line that carries it.

Nothing here knows HTTP: the websocket side passes a `notify` coroutine that delivers an event
to a line, and a `clock` for the wall-clock `startedAt`.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeGuard

MAX_CALLS = 500  # finished calls are forgotten oldest first beyond this; memory stays bounded
# Digits plus the signs a dial string may carry; no letters, so nothing odd ends up in the UI.
_NUMBER = re.compile(r"\+?[0-9*#]{1,32}")
_DTMF = re.compile(r"[0-9*#A-D]{1,32}")

Direction = Literal["outbound", "inbound"]
State = Literal["ringing", "talking", "ended"]


def valid_number(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _NUMBER.fullmatch(value) is not None


def valid_dtmf(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and _DTMF.fullmatch(value) is not None


@dataclass
class CallTimings:
    """How the simulated far party behaves, in seconds; tests shorten them."""

    answer_after: float = 1.0
    hangup_after: float = 5.0
    ring_timeout: float = 45.0


@dataclass
class Call:
    id: str  # `job-<digits>` as CCC's JobId; also the classic SDK's `connid` and `contactId`
    direction: Direction
    agent: str  # the agent's upn
    line: int  # the softphone connection that carries it
    caller: str
    callee: str
    skill_group_id: str
    started_at: float
    state: State = "ringing"
    ended_by_far_party: str = ""  # "remote" or "noanswer" when the simulated party ended it
    answered_at: float | None = None
    ended_at: float | None = None

    @property
    def number(self) -> str:
        """The far party's number."""
        return self.callee if self.direction == "outbound" else self.caller

    def wire(self) -> dict[str, Any]:
        """The `/_emulator/calls` shape."""
        started = datetime.fromtimestamp(self.started_at, UTC)
        return {
            "id": self.id,
            "direction": self.direction,
            "agent": self.agent,
            "number": self.number,
            "state": self.state,
            "startedAt": started.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        }

    def event(self, kind: str, **extra: Any) -> dict[str, Any]:
        """A softphone event about this call, with the fields the SDK's callbacks take."""
        return {
            "type": kind,
            "connid": self.id,
            "contactId": self.id,
            "caller": self.caller,
            "callee": self.callee,
            "skillgroupId": self.skill_group_id,
            "direction": self.direction,
            **extra,
        }


def new_job_id() -> str:
    """A fresh call id in CCC's JobId form (`job-` and a long number)."""
    return f"job-{10**17 + secrets.randbelow(9 * 10**17)}"


# Delivers an event to the call's line if it is still connected; must never raise, since timer
# tasks call it and nobody awaits them.
Notify = Callable[[Call, dict[str, Any]], Awaitable[None]]


class CallBook:
    """Every call since the last clear, oldest first, and the timers of the live ones."""

    def __init__(
        self, clock: Callable[[], float], notify: Notify, timings: CallTimings | None = None
    ) -> None:
        self._clock = clock
        self._notify = notify
        self.timings = timings or CallTimings()
        # Replaceable so tests can step the far party deterministically instead of waiting.
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._calls: OrderedDict[str, Call] = OrderedDict()
        self._timers: dict[str, asyncio.Task[None]] = {}

    def snapshot(self) -> list[dict[str, Any]]:
        """Every call in the `/_emulator/calls` shape, oldest first."""
        return [call.wire() for call in self._calls.values()]

    def get(self, call_id: str) -> Call | None:
        return self._calls.get(call_id)

    def start_outbound(self, agent: str, line: int, caller: str, callee: str) -> Call:
        """The agent dialled: the callee's phone rings, and answers by itself shortly."""
        call = self._add("outbound", agent, line, caller, callee, "")
        self._timers[call.id] = asyncio.create_task(self._far_callee(call))
        return call

    def start_inbound(
        self, agent: str, line: int, caller: str, callee: str, skill_group_id: str
    ) -> Call:
        """Someone calls the agent; the caller gives up if nobody answers in time."""
        call = self._add("inbound", agent, line, caller, callee, skill_group_id)
        self._timers[call.id] = asyncio.create_task(self._far_caller(call))
        return call

    def answer(self, line: int, call_id: str) -> Call | None:
        """The agent picks up a ringing inbound call on this line; None if there is none."""
        call = self._calls.get(call_id)
        if call is None or call.line != line or call.direction != "inbound":
            return None
        if call.state != "ringing":
            return None
        self._cancel_timer(call.id)  # the caller stays on the line until the agent hangs up
        call.state, call.answered_at = "talking", self._clock()
        return call

    def hang_up(self, line: int, call_id: str) -> Call | None:
        """The agent ends (or rejects) a live call on this line; None if there is none."""
        call = self._calls.get(call_id)
        if call is None or call.line != line or call.state == "ended":
            return None
        self._end(call)
        return call

    def ringing_inbound(self, agent: str) -> list[Call]:
        """The agent's inbound calls still ringing, oldest first."""
        return [
            c
            for c in self._calls.values()
            if c.agent == agent and c.direction == "inbound" and c.state == "ringing"
        ]

    def live_on(self, line: int) -> list[Call]:
        return [c for c in self._calls.values() if c.line == line and c.state != "ended"]

    def drop_line(self, line: int) -> None:
        """The softphone connection is gone: its calls end, with nobody left to tell."""
        for call in self.live_on(line):
            self._end(call)

    async def clear(self) -> None:
        """Forget every call; live ones are released first so their softphones know."""
        live = [c for c in self._calls.values() if c.state != "ended"]
        for call in live:
            self._end(call)
        for call in live:
            await self._notify(call, call.event("released", reason="cleared"))
        self._calls.clear()

    async def close(self) -> None:
        """Stop every timer (app shutdown): no task may outlive the loop."""
        timers = list(self._timers.values())
        self._timers.clear()
        for task in timers:
            task.cancel()
        await asyncio.gather(*timers, return_exceptions=True)

    def _add(
        self,
        direction: Direction,
        agent: str,
        line: int,
        caller: str,
        callee: str,
        skill_group_id: str,
    ) -> Call:
        call = Call(
            id=new_job_id(),
            direction=direction,
            agent=agent,
            line=line,
            caller=caller,
            callee=callee,
            skill_group_id=skill_group_id,
            started_at=self._clock(),
        )
        self._calls[call.id] = call
        self._forget_old()
        return call

    def _forget_old(self) -> None:
        excess = len(self._calls) - MAX_CALLS
        for call_id in [i for i, c in self._calls.items() if c.state == "ended"][: max(excess, 0)]:
            del self._calls[call_id]

    def ended_of(self, agent: str) -> list[Call]:
        """The agent's finished calls, oldest first (their call detail records)."""
        return [c for c in self._calls.values() if c.agent == agent and c.state == "ended"]

    def _end(self, call: Call) -> None:
        call.state, call.ended_at = "ended", self._clock()
        self._cancel_timer(call.id)

    def _cancel_timer(self, call_id: str) -> None:
        task = self._timers.pop(call_id, None)
        # A timer that ends its own call must not cancel itself mid-way through notifying.
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _far_callee(self, call: Call) -> None:
        await self.sleep(self.timings.answer_after)
        call.state, call.answered_at = "talking", self._clock()
        await self._notify(call, call.event("established"))
        await self.sleep(self.timings.hangup_after)
        await self._far_end_hangs_up(call, "remote")

    async def _far_caller(self, call: Call) -> None:
        await self.sleep(self.timings.ring_timeout)
        await self._far_end_hangs_up(call, "noanswer")

    async def _far_end_hangs_up(self, call: Call, reason: str) -> None:
        call.ended_by_far_party = reason
        self._end(call)
        await self._notify(call, call.event("released", reason=reason))
