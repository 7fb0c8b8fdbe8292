"""CCC 2.0 business actions the workbench reads at start-up and in its panels, on demo data.

Shapes follow the official 2020-07-01 models. The caller is the token's RAM user mapped to its
agent (`agent1@ccc-demo.onaliyun.com` → `agent1@ccc-demo`); agent-scoped reads refuse another
agent's `UserId` as `Permission.User` (403), an unknown one as `NotExists.UserId` (404).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from . import ccc_data as data
from .ccc2_common import (
    Ctx,
    boolean,
    integer,
    json_list,
    json_object,
    own_desk,
    page,
    paged,
    required,
    text,
)
from .ccc2_state import CccError

_CHAT_SECRET = b"ccc-emulator-chat-secret"
_PRIVILEGES = ("Workbench:Call", "Workbench:Chat", "Workbench:CallHistory", "Report:MyWork")
_CRITERIA = ("phoneNumber", "callingNumber", "calledNumber")  # ListRecentCallDetailRecords
_LOCATIONS = {"135": ("Shanghai", "Shanghai"), "138": ("Beijing", "Beijing")}


def get_login_details(ctx: Ctx) -> dict[str, Any]:
    desk = own_desk(ctx)
    settings, agent = ctx.settings, desk.agent
    token = data.login_token(settings, agent, ctx.now, settings.instance_id_v2)
    host = urlsplit(settings.public_url).netloc
    chat = hmac.new(_CHAT_SECRET, f"{desk.user_id}:{int(ctx.now)}".encode(), hashlib.sha256)
    details = {
        # The stand-in SDK registers on this websocket with UserKey + Signature (docs/emulator.md).
        "AgentServerUrl": f"{data.websocket_base(settings)}/webrtc",
        "AvatarUrl": "",
        "ChatAppId": "ccc-emulator",
        "ChatAppKey": "ccc-emulator-app-key",
        "ChatDeviceId": text(ctx, "ChatDeviceId") or "",
        "ChatLoginToken": base64.urlsafe_b64encode(chat.digest()).decode("ascii"),
        "ChatServerUrl": f"{data.websocket_base(settings)}/chat",
        "ChatUserId": desk.user_id,
        "DeviceExt": agent.extension,
        "DeviceId": desk.device_id,
        "DeviceState": "ONLINE" if desk.base != "OFFLINE" else "OFFLINE",
        "DisplayName": agent.display_name,
        "Extension": agent.extension,
        "Nickname": agent.display_name,
        "Signature": token["Signature"],
        "Signature2": token["Signature"],
        "SipServerUrl": host,
        "UserId": desk.user_id,
        "UserKey": token["SignData"],
        "UserKey2": token["SignData"],
        "WorkMode": "ON_SITE",
    }
    return {"Data": details}


def list_skill_levels_of_user(ctx: Ctx) -> dict[str, Any]:
    desk = own_desk(ctx)
    number, size = page(ctx)
    boolean(ctx, "IsMember")
    pattern = (text(ctx, "SearchPattern") or "").lower()
    levels = [
        {
            "MediaType": "AUDIO",
            "SkillGroupId": data.skill_group_id_v2(ctx.settings, g),
            "SkillGroupName": g.name,
            "SkillLevel": str(g.level),
        }
        for g in data.skill_groups(ctx.settings, desk.agent)
        if pattern in g.name.lower()
    ]
    return {"Data": paged(levels, number, size)}


def _number_wire(number: data.PhoneNumber) -> dict[str, Any]:
    return {
        "City": number.city,
        "Number": number.number,
        "Province": number.province,
        "Provider": "China Telecom",
        "ProviderCode": "CT",
        "ProviderDisplayName": "China Telecom",
        "ProviderShortName": "CT",
        "ProviderType": "TELECOM",
    }


def list_outbound_numbers_of_user(ctx: Ctx) -> dict[str, Any]:
    desk = own_desk(ctx)
    number, size = page(ctx)
    wanted = json_list(ctx, "SkillGroupIdList")
    groups = [
        g
        for g in data.skill_groups(ctx.settings, desk.agent)
        if wanted is None or data.skill_group_id_v2(ctx.settings, g) in wanted
    ]
    unique = {n.number: n for g in groups for n in g.numbers}
    return {"Data": paged([_number_wire(n) for n in unique.values()], number, size)}


def list_config_items(ctx: Ctx) -> dict[str, Any]:
    object_type, object_id = required(ctx, "ObjectType"), required(ctx, "ObjectId")
    known = data.config_items(ctx.settings, ctx.agent)
    items = [
        {
            "InstanceId": ctx.settings.instance_id_v2,
            "Name": name,
            "ObjectId": object_id,
            "ObjectType": object_type,
            "Value": value,
        }
        for name, value in known.items()
    ]
    return {"Data": items}


def get_turn_server_list(ctx: Ctx) -> dict[str, Any]:
    # The model types Data as a string: JSON text of the TURN access points.
    host = urlsplit(ctx.settings.public_url).hostname or "127.0.0.1"
    points = [{"region": "shanghai", "name": "Shanghai", "domain": host, "cidr": ""}]
    return {"Data": json.dumps(points, separators=(",", ":"))}


def get_turn_credentials(ctx: Ctx) -> dict[str, Any]:
    desk = own_desk(ctx)
    credentials = data.turn_credentials(desk.user_id, ctx.now)
    return {"Data": {"UserName": credentials["Username"], "Password": credentials["Password"]}}


def list_privileges_of_user(ctx: Ctx) -> dict[str, Any]:
    instance = ctx.settings.instance_id_v2
    return {
        "Data": [{"InstanceId": instance, "Name": n, "Scope": "SELF_ONLY"} for n in _PRIVILEGES]
    }


def list_devices(ctx: Ctx) -> dict[str, Any]:
    desk = own_desk(ctx)
    if desk.base == "OFFLINE" or not desk.device_id:
        return {"Data": []}
    device = {
        "CallId": "",
        "Contact": f"sip:{desk.agent.extension}@{urlsplit(ctx.settings.public_url).netloc}",
        "DeviceId": desk.device_id,
        "DeviceType": "WEBRTC",
        "Expires": int((ctx.now + 3600) * 1000),
        "Extension": desk.agent.extension,
        "InstanceId": ctx.settings.instance_id_v2,
        "UserId": desk.user_id,
    }
    return {"Data": [device]}


def _location(number: str) -> dict[str, str]:
    province, city = _LOCATIONS.get(number[:3], ("", ""))
    return {"City": city, "Number": number, "Province": province}


def pick_outbound_numbers(ctx: Ctx) -> dict[str, Any]:
    called = required(ctx, "CalledNumber")
    wanted = json_list(ctx, "SkillGroupIdList")
    if not wanted:
        raise CccError(400, "Parameter.Blank", "The parameter SkillGroupIdList may not be empty.")
    count = integer(ctx, "Count", 1, 100, 1) or 1
    groups = [
        g
        for g in data.skill_groups(ctx.settings, ctx.agent)
        if data.skill_group_id_v2(ctx.settings, g) in wanted
    ]
    unique = list({n.number: n for g in groups for n in g.numbers}.values())[:count]
    pairs = [
        {
            "Callee": _location(called),
            "Caller": {"City": n.city, "Number": n.number, "Province": n.province},
        }
        for n in unique
    ]
    return {"Data": pairs}


def get_number_location(ctx: Ctx) -> dict[str, Any]:
    return {"Data": _location(required(ctx, "Number"))}


def _agents_in_view(ctx: Ctx, ids: list[str] | None) -> list[Any]:
    desks = [ctx.desks.of(a) for a in ctx.settings.agents]
    return [d for d in desks if ids is None or d.user_id in ids]


def list_realtime_agent_states(ctx: Ctx) -> dict[str, Any]:
    number, size = page(ctx)
    states = json_list(ctx, "StateList")
    json_list(ctx, "CallTypeList")  # validated; every demo call is a plain audio call
    json_list(ctx, "WorkModeList")
    rows = []
    for desk in _agents_in_view(ctx, json_list(ctx, "AgentIdList")):
        call = ctx.desks.call_of(desk)
        state = ctx.desks.user_state(desk)
        if states is not None and state.capitalize() not in states and state not in states:
            continue
        groups = list(desk.groups)
        rows.append(
            {
                "AgentId": desk.user_id,
                "AgentName": desk.agent.display_name,
                "BreakCode": desk.break_code,
                "CallType": "" if call is None else call.direction.upper(),
                "CounterParty": "" if call is None else call.number,
                "Duration": 0,
                "Extension": desk.agent.extension,
                "InstanceId": ctx.settings.instance_id_v2,
                "Mobile": "",
                "OutboundScenario": desk.outbound_scenario,
                "SkillGroupIdList": groups,
                "SkillGroupNameList": [g.split("@", 1)[0] for g in groups],
                "State": state.capitalize(),
                "StateCode": state.capitalize(),
                "StateTime": int(ctx.now * 1000),
                "WorkMode": "ON_SITE",
            }
        )
    return {"Data": paged(rows, number, size)}


def list_agent_states(ctx: Ctx) -> dict[str, Any]:
    number, size = page(ctx)
    boolean(ctx, "ExcludeOfflineUsers")
    ids_text = text(ctx, "AgentIds")
    ids = None if ids_text is None else [i.strip() for i in ids_text.split(",") if i.strip()]
    rows = [
        {
            "AgentId": desk.user_id,
            "AgentName": desk.agent.display_name,
            "BreakCode": desk.break_code,
            "Dn": desk.agent.extension,
            "InstanceId": ctx.settings.instance_id_v2,
            "LoginName": data.user_name(desk.agent),
            "OutboundScenario": desk.outbound_scenario,
            "State": ctx.desks.user_state(desk),
            "StateDuration": "0",
        }
        for desk in _agents_in_view(ctx, ids)
    ]
    return {"Data": paged(rows, number, size), "Success": True}


def list_recent_call_detail_records(ctx: Ctx) -> dict[str, Any]:
    desk = own_desk(ctx)
    number, size = page(ctx)
    integer(ctx, "StartTime", 0, 10**13)
    integer(ctx, "EndTime", 0, 10**13)
    criteria = json_object(ctx, "Criteria") or {}
    wanted = {k: str(v) for k, v in criteria.items() if k in _CRITERIA and v}
    rows = [
        {
            "AgentIds": desk.user_id,
            "CallDuration": str(r["Duration"]),
            "CalledNumber": r["CalledNumber"],
            "CallingNumber": r["CallingNumber"],
            "ContactDisposition": r["ContactDisposition"],
            "ContactId": r["ContactId"].replace(desk.agent.user_id, "job"),
            "ContactType": r["ContactType"].capitalize(),
            "Duration": r["Duration"],
            "InstanceId": ctx.settings.instance_id_v2,
            "SkillGroupIds": ",".join(desk.groups),
            "StartTime": r["StartTime"],
        }
        for r in [
            *_records_of_calls(ctx),
            *data.recent_call_records(ctx.settings, desk.agent, ctx.now),
        ]
        if _matches(r, wanted)
    ]
    return {"Data": paged(rows, number, size)}


def _records_of_calls(ctx: Ctx) -> list[dict[str, Any]]:
    """The agent's calls in this emulator, newest first, as call detail records (Duration: talk
    time in seconds; StartTime in milliseconds, as the canned records)."""
    records = []
    for call in reversed(ctx.desks.calls.ended_of(ctx.agent.upn)):
        talked = call.answered_at is not None
        records.append(
            {
                "ContactId": call.id,
                "ContactType": call.direction.upper(),
                "ContactDisposition": "Success" if talked else "NoAnswer",
                "CallingNumber": call.caller,
                "CalledNumber": call.callee,
                "StartTime": int(call.started_at * 1000),
                "Duration": round((call.ended_at or ctx.now) - (call.answered_at or ctx.now))
                if talked
                else 0,
            }
        )
    return records


def _matches(record: dict[str, Any], wanted: dict[str, str]) -> bool:
    numbers = {"callingNumber": record["CallingNumber"], "calledNumber": record["CalledNumber"]}
    for key, value in wanted.items():
        if key == "phoneNumber" and value not in numbers.values():
            return False
        if key in numbers and numbers[key] != value:
            return False
    return True


def list_skill_groups(ctx: Ctx) -> dict[str, Any]:
    number, size = page(ctx)
    pattern = (text(ctx, "SearchPattern") or "").lower()
    groups = {g.key: g for a in ctx.settings.agents for g in data.skill_groups(ctx.settings, a)}
    rows = [
        {
            "Description": g.description,
            "DisplayName": g.name,
            "InstanceId": ctx.settings.instance_id_v2,
            "MediaType": "AUDIO",
            "PhoneNumberCount": len(g.numbers),
            "SkillGroupId": data.skill_group_id_v2(ctx.settings, g),
            "SkillGroupName": g.key,
            "UserCount": sum(g in data.skill_groups(ctx.settings, a) for a in ctx.settings.agents),
        }
        for g in groups.values()
        if pattern in g.name.lower()
    ]
    return {"Data": paged(rows, number, size)}


def list_historical_agent_report(ctx: Ctx) -> dict[str, Any]:
    number, size = page(ctx)
    integer(ctx, "StartTime", 0, 10**13)
    integer(ctx, "StopTime", 0, 10**13)
    rows = [
        {
            "AgentId": desk.user_id,
            "AgentName": desk.agent.display_name,
            "DisplayId": desk.agent.extension,
            "SkillGroupIds": ",".join(desk.groups),
            "SkillGroupNames": ",".join(g.split("@", 1)[0] for g in desk.groups),
            "Inbound": {
                "AccessChannelTypeDetails": [],
                "CallsOffered": 1,
                "CallsHandled": 1,
                "TotalTalkTime": 65,
            },
            "Outbound": {"CallsDialed": 1, "CallsAnswered": 1, "TotalTalkTime": 65},
            "Internal": {"CallsDialed": 0, "CallsAnswered": 0},
            "Back2Back": {"CallsDialed": "0", "CallsAnswered": "0"},  # strings in the model
            "Overall": {"TotalCalls": 2, "TotalTalkTime": 130, "BreakCodeDetailList": []},
        }
        for desk in _agents_in_view(ctx, json_list(ctx, "AgentIdList"))
    ]
    return {"Data": paged(rows, number, size)}


def save_terminal_log(ctx: Ctx) -> dict[str, Any]:
    integer(ctx, "DataType", 0, 100)
    return {"Success": True, "TimeStamp": int(ctx.now * 1000)}


LIST_ACTIONS: dict[str, Callable[[Ctx], dict[str, Any]]] = {
    "GetLoginDetails": get_login_details,
    "ListSkillLevelsOfUser": list_skill_levels_of_user,
    "ListOutboundNumbersOfUser": list_outbound_numbers_of_user,
    "ListConfigItems": list_config_items,
    "GetTurnServerList": get_turn_server_list,
    "GetTurnCredentials": get_turn_credentials,
    "ListPrivilegesOfUser": list_privileges_of_user,
    "ListDevices": list_devices,
    "PickOutboundNumbers": pick_outbound_numbers,
    "GetNumberLocation": get_number_location,
    "ListRealtimeAgentStates": list_realtime_agent_states,
    "ListAgentStates": list_agent_states,
    "ListRecentCallDetailRecords": list_recent_call_detail_records,
    "ListSkillGroups": list_skill_groups,
    "ListBriefSkillGroups": list_skill_groups,
    "ListHistoricalAgentReport": list_historical_agent_report,
    "SaveTerminalLog": save_terminal_log,
}
