"""CCC 2.0 agent-state and call-control actions, answered in the 2020-07-01 models' shapes.

State actions answer `Data` = the agent's UserContext; call actions answer
`Data{CallContext, UserContext}` (+ `ContextId` where the official model has it). Only the
fields every model of a kind shares are sent, so each action's model reads the whole answer.
A call has two channels (legs): the agent's and the customer's; `ChannelId`s name them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import ccc_data as data
from .calls import Call, valid_dtmf, valid_number
from .ccc2_common import (
    Ctx,
    agent_by_user_id,
    bad_format,
    boolean,
    integer,
    json_list,
    own_desk,
    required,
    text,
)
from .ccc2_state import AgentState, CccError, user_state_error

_CALL_TYPE = {"outbound": "OUTBOUND", "inbound": "INBOUND"}
_TRANSFEREE_TYPES = {"AGENT", "SKILL_GROUP", "IVR", "EXTERNAL_NUMBER", "EXTERNAL"}


def user_context(ctx: Ctx, desk: AgentState) -> dict[str, Any]:
    return {
        "BreakCode": desk.break_code,
        "DeviceId": desk.device_id,
        "Extension": desk.agent.extension,
        "InstanceId": ctx.settings.instance_id_v2,
        "JobId": desk.job_id,
        "OutboundScenario": desk.outbound_scenario,
        "SignedSkillGroupIdList": list(desk.groups),
        "UserId": desk.user_id,
        "UserState": ctx.desks.user_state(desk),
        "WorkMode": "ON_SITE",
    }


def channel_ids(call: Call, extension: str) -> tuple[str, str]:
    """(agent leg, customer leg) ids, in CCC's `ch:...:<timestamp>:<job>` style."""
    ts = int(call.started_at * 1000)
    return (
        f"ch:user:{call.number}->{extension}:{ts}:{call.id}",
        f"ch:customer:{call.caller}->{call.callee}:{ts}:{call.id}",
    )


def _leg_states(call: Call, held: bool) -> tuple[str, str]:
    if call.state == "ended":
        return "RELEASED", "RELEASED"
    if call.state == "ringing":
        # Outbound: the agent's leg is up, the customer's phone rings; inbound: the reverse.
        return ("ANSWERED", "DIALING") if call.direction == "outbound" else ("RINGING", "ANSWERED")
    return ("HELD" if held else "ANSWERED"), "ANSWERED"


def call_context(ctx: Ctx, desk: AgentState, call: Call) -> dict[str, Any]:
    call_type = _CALL_TYPE[call.direction]
    agent_ch, customer_ch = channel_ids(call, desk.agent.extension)
    agent_state, customer_state = _leg_states(call, desk.held and desk.job_id == call.id)
    ts = int(call.started_at * 1000)
    common = {"CallType": call_type, "JobId": call.id, "Originator": call.caller, "Timestamp": ts}
    released = call.state == "ended"
    legs = [
        {
            **common,
            "ChannelId": agent_ch,
            "ChannelState": agent_state,
            "Destination": desk.agent.extension,
            "ReleaseInitiator": desk.user_id if released else "",
            "ReleaseReason": "200 - Normal call clearing" if released else "",
            "UserExtension": desk.agent.extension,
            "UserId": desk.user_id,
        },
        {
            **common,
            "ChannelId": customer_ch,
            "ChannelState": customer_state,
            "Destination": call.callee,
            "ReleaseInitiator": "",
            "ReleaseReason": "",
            "UserExtension": "",
            "UserId": "",
        },
    ]
    return {
        "CallType": call_type,
        "ChannelContexts": legs,
        "InstanceId": ctx.settings.instance_id_v2,
        "JobId": call.id,
    }


def _call_data(
    ctx: Ctx, desk: AgentState, call: Call, *, context_id: bool, call_type: bool = True
) -> dict[str, Any]:
    context = call_context(ctx, desk, call)
    if not call_type:  # ReleaseCall's model has no CallContext.CallType
        del context["CallType"]
    answer: dict[str, Any] = {"CallContext": context, "UserContext": user_context(ctx, desk)}
    if context_id:
        answer["ContextId"] = int(ctx.now * 1000)
    return {"Data": answer}


def _state_data(ctx: Ctx, desk: AgentState) -> dict[str, Any]:
    return {"Data": user_context(ctx, desk)}


# ---- agent states ----


def sign_in_group(ctx: Ctx) -> dict[str, Any]:
    desk = own_desk(ctx)
    device = required(ctx, "DeviceId")
    groups = json_list(ctx, "SignedSkillGroupIdList")
    if not groups:
        raise CccError(
            400, "Parameter.Blank", "The parameter SignedSkillGroupIdList may not be empty."
        )
    mine = {
        data.skill_group_id_v2(ctx.settings, g) for g in data.skill_groups(ctx.settings, desk.agent)
    }
    for group in groups:
        if group not in mine:
            raise CccError(
                404, "NotExists.SkillGroupId", f"The skill group {group} does not exist."
            )
    ctx.desks.sign_in(desk, device, groups, bool(boolean(ctx, "Additivity")))
    answer = user_context(ctx, desk)
    answer["ChatDeviceId"] = text(ctx, "ChatDeviceId") or ""
    return {"Data": answer}


def sign_out_group(ctx: Ctx) -> dict[str, Any]:
    desk = own_desk(ctx)
    ctx.desks.sign_out(desk)
    return _state_data(ctx, desk)


def take_break(ctx: Ctx) -> dict[str, Any]:
    desk = own_desk(ctx)
    code = required(ctx, "Code")
    ctx.desks.take_break(desk, code)
    return _state_data(ctx, desk)


def ready_for_service(ctx: Ctx) -> dict[str, Any]:
    desk = own_desk(ctx)
    ctx.desks.ready(desk, bool(boolean(ctx, "OutboundScenario")))
    return _state_data(ctx, desk)


def reset_agent_state(ctx: Ctx) -> dict[str, Any]:
    desk = own_desk(ctx)
    ctx.desks.reset(desk)
    return _state_data(ctx, desk)


# ---- calls ----


def make_call(ctx: Ctx) -> dict[str, Any]:
    desk = own_desk(ctx)
    callee = required(ctx, "Callee")
    if not valid_number(callee):
        raise bad_format("Callee", "it must be a phone number or an extension.")
    integer(ctx, "TimeoutSeconds", 30, 300)
    numbers = [n.number for n in data.outbound_numbers(ctx.settings, desk.agent)]
    caller = text(ctx, "Caller") or numbers[0]
    if caller not in numbers:
        raise CccError(404, "NotExists.Number", f"The number {caller} does not exist.")
    call = ctx.desks.make_call(desk, ctx.line_of(desk.agent), caller, callee)
    return _call_data(ctx, desk, call, context_id=True)


def answer_call(ctx: Ctx) -> dict[str, Any]:
    desk = own_desk(ctx)
    call = ctx.desks.answer(desk, required(ctx, "JobId"))
    return _call_data(ctx, desk, call, context_id=True)


def _check_channel(desk: AgentState, call: Call, channel: str | None) -> None:
    if channel is not None and channel not in channel_ids(call, desk.agent.extension):
        raise CccError(404, "NotExists.ChannelId", f"The channel {channel} does not exist.")


def release_call(ctx: Ctx) -> dict[str, Any]:
    desk = own_desk(ctx)
    job = required(ctx, "JobId")
    _check_channel(desk, ctx.desks.live_job(desk, job), text(ctx, "ChannelId"))
    call = ctx.desks.release(desk, job)
    return _call_data(ctx, desk, call, context_id=True, call_type=False)


def _hold(ctx: Ctx, hold: bool) -> dict[str, Any]:
    desk = own_desk(ctx)
    job, channel = required(ctx, "JobId"), required(ctx, "ChannelId")
    _check_channel(desk, ctx.desks.live_job(desk, job), channel)
    call = ctx.desks.hold(desk, job, hold)
    return _call_data(ctx, desk, call, context_id=False)


def hold_call(ctx: Ctx) -> dict[str, Any]:
    return _hold(ctx, True)


def retrieve_call(ctx: Ctx) -> dict[str, Any]:
    return _hold(ctx, False)


def _transferee(ctx: Ctx) -> str:
    transferee = required(ctx, "Transferee")
    kind = text(ctx, "TransfereeType")
    if kind is not None and kind not in _TRANSFEREE_TYPES:
        raise CccError(
            400, "Parameter.Enumeration", f"The parameter TransfereeType ({kind}) is not valid."
        )
    if "@" in transferee and (kind in (None, "AGENT")):
        agent_by_user_id(ctx, transferee)  # an unknown agent is NotExists.UserId
    return transferee


def blind_transfer(ctx: Ctx) -> dict[str, Any]:
    desk = own_desk(ctx)
    job = required(ctx, "JobId")
    _transferee(ctx)
    call = ctx.desks.transfer_away(desk, job)
    return _call_data(ctx, desk, call, context_id=True)


def initiate_attended_transfer(ctx: Ctx) -> dict[str, Any]:
    desk = own_desk(ctx)
    job = required(ctx, "JobId")
    _transferee(ctx)
    call = ctx.desks.talking_job(desk, job)
    return _call_data(ctx, desk, call, context_id=True)


def complete_attended_transfer(ctx: Ctx) -> dict[str, Any]:
    desk = own_desk(ctx)
    call = ctx.desks.transfer_away(desk, required(ctx, "JobId"))
    return _call_data(ctx, desk, call, context_id=True)


def _in_call(ctx: Ctx, *, context_id: bool, channel_required: bool = False) -> dict[str, Any]:
    """Actions that act on the agent's established call and change no state we model."""
    desk = own_desk(ctx)
    job = required(ctx, "JobId")
    channel = required(ctx, "ChannelId") if channel_required else text(ctx, "ChannelId")
    call = ctx.desks.talking_job(desk, job)
    _check_channel(desk, call, channel)
    return _call_data(ctx, desk, call, context_id=context_id)


def cancel_attended_transfer(ctx: Ctx) -> dict[str, Any]:
    return _in_call(ctx, context_id=True)


def send_dtmf_signaling(ctx: Ctx) -> dict[str, Any]:
    if not valid_dtmf(required(ctx, "Dtmf")):
        raise bad_format("Dtmf", "it must be 0-9, * or #.")
    return _in_call(ctx, context_id=False, channel_required=True)


def _mute(ctx: Ctx, muted: bool) -> dict[str, Any]:
    answer = _in_call(ctx, context_id=False)
    ctx.desks.of(ctx.agent).muted = muted
    return answer


def mute_call(ctx: Ctx) -> dict[str, Any]:
    return _mute(ctx, True)


def unmute_call(ctx: Ctx) -> dict[str, Any]:
    return _mute(ctx, False)


def launch_survey(ctx: Ctx) -> dict[str, Any]:
    return _in_call(ctx, context_id=True)


# ---- supervisor actions: the target agent is named; UserId stays the caller ----


def _supervise(ctx: Ctx, target_param: str, *, needs_job: bool) -> dict[str, Any]:
    desk = own_desk(ctx)
    integer(ctx, "TimeoutSeconds", 1, 300)
    target = ctx.desks.of(agent_by_user_id(ctx, required(ctx, target_param)))
    call = ctx.desks.call_of(target)
    if call is None or call.state != "talking":
        raise user_state_error(ctx.desks.user_state(target), "TALKING")
    if needs_job and call.id != required(ctx, "JobId"):
        raise CccError(404, "NotExists.JobId", f"The job {text(ctx, 'JobId')} does not exist.")
    context = call_context(ctx, target, call)
    return {"Data": {"CallContext": context, "UserContext": user_context(ctx, desk)}}


def monitor_call(ctx: Ctx) -> dict[str, Any]:
    return _supervise(ctx, "MonitoredUserId", needs_job=False)


def barge_in_call(ctx: Ctx) -> dict[str, Any]:
    return _supervise(ctx, "BargedUserId", needs_job=True)


def intercept_call(ctx: Ctx) -> dict[str, Any]:
    return _supervise(ctx, "InterceptedUserId", needs_job=True)


def coach_call(ctx: Ctx) -> dict[str, Any]:
    return _supervise(ctx, "CoachedUserId", needs_job=True)


CALL_ACTIONS: dict[str, Callable[[Ctx], dict[str, Any]]] = {
    "SignInGroup": sign_in_group,
    "SignOutGroup": sign_out_group,
    "TakeBreak": take_break,
    "ReadyForService": ready_for_service,
    "ResetAgentState": reset_agent_state,
    "MakeCall": make_call,
    "AnswerCall": answer_call,
    "ReleaseCall": release_call,
    "HoldCall": hold_call,
    "RetrieveCall": retrieve_call,
    "BlindTransfer": blind_transfer,
    "InitiateAttendedTransfer": initiate_attended_transfer,
    "CompleteAttendedTransfer": complete_attended_transfer,
    "CancelAttendedTransfer": cancel_attended_transfer,
    "SendDtmfSignaling": send_dtmf_signaling,
    "MuteCall": mute_call,
    "UnmuteCall": unmute_call,
    "LaunchSurvey": launch_survey,
    "MonitorCall": monitor_call,
    "BargeInCall": barge_in_call,
    "InterceptCall": intercept_call,
    "CoachCall": coach_call,
}
