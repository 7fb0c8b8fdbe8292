"""CCC 2.0 agent states and call control, per agent, on top of the emulator's calls.

An agent is OFFLINE until `SignInGroup`, which leaves it on BREAK with the system break code
`Warm-up`; `ReadyForService` makes it READY, `TakeBreak` puts it on BREAK with the caller's
code, `SignOutGroup` makes it OFFLINE again. While it has a live call (its "job") the state
follows that call: DIALING (outbound, callee not answered yet), RINGING (inbound, not answered)
or TALKING; when the call ends the agent is back where it was before the call, except after
an inbound call it let ring out: then it is on BREAK with the system code `RingingTimeout`.

The calls themselves live in `calls.CallBook`, so `/_emulator/calls` lists them and the far
party's timers (the callee answers and hangs up by itself) drive them. The agent's job is read
back from the book on every request (`_sync`), so a call that ended by itself, or whose
softphone went away, never leaves the agent stuck in a call.

What an API request changes on a call is also told to the agent's softphone (the same
websocket events as the classic softphone: `established`, `released {reason}`, `held`,
`retrieved`): the requests queue them in `outbox`, and the POP endpoint delivers them before it
answers, so the stand-in SDK has one source of call events whoever changed the call.

Wrong-state requests are refused as CCC documents them (docs/emulator.md):
`InvalidOperation.UserState` / `InvalidOperation.ChannelState` (400), `NotExists.JobId` /
`NotExists.ChannelId` (404), `UserBusy` (400).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .calls import Call, CallBook
from .settings import Agent, EmulatorSettings

WARM_UP = "Warm-up"  # CCC's system break code right after sign-in
RINGING_TIMEOUT = "RingingTimeout"  # system break code: an inbound call rang unanswered


class CccError(Exception):
    """A CCC 2.0 business refusal: answered with its own HTTP status and `Code`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def user_state_error(actual: str, expected: str) -> CccError:
    return CccError(
        400,
        "InvalidOperation.UserState",
        f"The operation is not allowed. User state ({actual}) does not meet expectations "
        f"({expected}).",
    )


def channel_state_error(actual: str, expected: str) -> CccError:
    return CccError(
        400,
        "InvalidOperation.ChannelState",
        f"The operation is not allowed. Channel stats ({actual}) does not meet expectations "
        f"({expected}).",
    )


def no_job(job_id: str) -> CccError:
    return CccError(404, "NotExists.JobId", f"The specified job {job_id} does not exist.")


@dataclass
class AgentState:
    """One agent's desk: what it signed in with and the call it is handling."""

    agent: Agent
    user_id: str
    base: str = "OFFLINE"  # OFFLINE | READY | BREAK: where the agent is between calls
    break_code: str = ""
    device_id: str = ""
    groups: list[str] = field(default_factory=list)
    outbound_scenario: bool = False
    job_id: str = ""  # the live call, or ""
    held: bool = False
    muted: bool = False


class AgentDesks:
    """Every 2.0 agent's state; created on first use, OFFLINE."""

    def __init__(self, settings: EmulatorSettings, calls: CallBook) -> None:
        self.settings = settings
        self.calls = calls
        self._desks: dict[str, AgentState] = {}
        self.outbox: list[tuple[Call, dict[str, Any]]] = []  # events for the softphones

    def of(self, agent: Agent) -> AgentState:
        desk = self._desks.get(agent.upn)
        if desk is None:
            desk = AgentState(agent, self.settings.ccc2_user_id(agent))
            self._desks[agent.upn] = desk
        self._sync(desk)
        return desk

    def call_of(self, desk: AgentState) -> Call | None:
        return self.calls.get(desk.job_id) if desk.job_id else None

    def user_state(self, desk: AgentState) -> str:
        call = self.call_of(desk)
        if call is None:
            return desk.base
        if call.state == "talking":
            return "TALKING"
        return "DIALING" if call.direction == "outbound" else "RINGING"

    def _sync(self, desk: AgentState) -> None:
        call = self.call_of(desk)
        if call is not None and call.state != "ended":
            return
        if call is not None and call.ended_by_far_party == "noanswer" and desk.base != "OFFLINE":
            # CCC puts an agent who let a call ring out on break, so it is not offered the next.
            desk.base, desk.break_code = "BREAK", RINGING_TIMEOUT
        desk.job_id, desk.held, desk.muted = "", False, False
        waiting = self.calls.ringing_inbound(desk.agent.upn)
        if waiting:  # the next caller in line rings the agent
            desk.job_id = waiting[0].id

    # ---- agent states ----

    def sign_in(self, desk: AgentState, device_id: str, groups: list[str], add: bool) -> None:
        self._not_in_call(desk, "OFFLINE, READY or BREAK")
        desk.groups = sorted(set(desk.groups) | set(groups)) if add else list(groups)
        desk.device_id = device_id
        if desk.base == "OFFLINE":
            desk.base, desk.break_code = "BREAK", WARM_UP

    def sign_out(self, desk: AgentState) -> None:
        self._not_in_call(desk, "READY or BREAK")
        desk.base, desk.break_code, desk.groups = "OFFLINE", "", []

    def take_break(self, desk: AgentState, code: str) -> None:
        self._signed_in(desk, "READY or BREAK")
        desk.base, desk.break_code = "BREAK", code

    def ready(self, desk: AgentState, outbound_only: bool) -> None:
        self._signed_in(desk, "READY or BREAK")
        desk.base, desk.break_code, desk.outbound_scenario = "READY", "", outbound_only

    def reset(self, desk: AgentState) -> None:
        """ResetAgentState: drop the agent's call and put it back on break."""
        call = self.call_of(desk)
        if call is not None:
            self._end(call, "reset")
        self._sync(desk)
        if desk.base != "OFFLINE":
            desk.base, desk.break_code = "BREAK", WARM_UP

    def _signed_in(self, desk: AgentState, expected: str) -> None:
        self._not_in_call(desk, expected)
        if desk.base == "OFFLINE":
            raise user_state_error("OFFLINE", expected)

    def _not_in_call(self, desk: AgentState, expected: str) -> None:
        state = self.user_state(desk)
        if state in ("DIALING", "RINGING", "TALKING"):
            raise user_state_error(state, expected)

    # ---- calls ----

    def make_call(self, desk: AgentState, line: int, caller: str, callee: str) -> Call:
        state = self.user_state(desk)
        if state in ("DIALING", "RINGING", "TALKING"):
            raise CccError(400, "UserBusy", f"The user {desk.user_id} is busy.")
        if desk.base == "OFFLINE":
            raise user_state_error("OFFLINE", "READY or BREAK")
        call = self.calls.start_outbound(desk.agent.upn, line, caller, callee)
        desk.job_id = call.id
        return call

    def answer(self, desk: AgentState, job_id: str) -> Call:
        call = self.calls.get(job_id)
        if call is None or call.agent != desk.agent.upn or call.state == "ended":
            raise no_job(job_id)
        if call.direction != "inbound" or call.state != "ringing":
            raise channel_state_error(call.state.upper(), "RINGING")
        if desk.job_id != job_id:  # a waiting call while the agent is busy with another
            raise CccError(400, "UserBusy", f"The user {desk.user_id} is busy.")
        self.calls.answer(call.line, call.id)
        self.outbox.append((call, call.event("established")))
        return call

    def live_job(self, desk: AgentState, job_id: str) -> Call:
        """The agent's current call named by `job_id`, or NotExists.JobId."""
        call = self.call_of(desk)
        if call is None or call.id != job_id:
            raise no_job(job_id)
        return call

    def talking_job(self, desk: AgentState, job_id: str) -> Call:
        call = self.live_job(desk, job_id)
        if call.state != "talking":
            raise channel_state_error(call.state.upper(), "ANSWERED")
        return call

    def release(self, desk: AgentState, job_id: str) -> Call:
        call = self.live_job(desk, job_id)
        self._end(call, "agent")
        self._sync(desk)
        return call

    def hold(self, desk: AgentState, job_id: str, hold: bool) -> Call:
        call = self.talking_job(desk, job_id)
        if desk.held == hold:
            actual, expected = ("HELD", "ANSWERED") if hold else ("ANSWERED", "HELD")
            raise channel_state_error(actual, expected)
        desk.held = hold
        self.outbox.append((call, call.event("held" if hold else "retrieved")))
        return call

    def transfer_away(self, desk: AgentState, job_id: str) -> Call:
        """BlindTransfer: the call leaves this agent (its record ends here)."""
        call = self.talking_job(desk, job_id)
        self._end(call, "transferred")
        self._sync(desk)
        return call

    def _end(self, call: Call, reason: str) -> None:
        self.calls.hang_up(call.line, call.id)
        self.outbox.append((call, call.event("released", reason=reason)))
