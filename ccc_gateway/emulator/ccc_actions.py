"""The CCC 2017-07-05 actions the workbench calls, answered for the authenticated agent.

Each handler reads and validates its own parameters and returns the payload that goes next to
`RequestId/Success/Code/Message/HttpStatusCode`; it raises `PopError` (HTTP 400, bad input) or
`BusinessError` (HTTP 200, `Success: false`). Shapes follow the official 2017-07-05 models.
An agent may read only itself: another agent's UserId is `NoPermission.User`, an unknown one
`NotExist.User` (business codes as in docs/ccc-openapi.md, section 4; their messages are ours).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import ccc_data as data
from .pop_params import BusinessError, Params, invalid, missing
from .settings import Agent, EmulatorSettings

MAX_PAGE_SIZE = 100


@dataclass
class ActionContext:
    settings: EmulatorSettings
    agent: Agent  # whose token authenticated the call
    params: Params
    devices: data.DeviceBook
    now: float


Handler = Callable[[ActionContext], dict[str, Any]]


def run_action(action: str, ctx: ActionContext) -> dict[str, Any]:
    """Check the instance and the agent's membership, then answer `action`."""
    instance_id = ctx.params.required("InstanceId")
    if instance_id != ctx.settings.instance_id:
        raise BusinessError(
            "NotExist.Instance", f"The specified instance {instance_id} does not exist.", 404
        )
    if ctx.settings.agent_by_upn(ctx.agent.upn) is None:
        raise _no_permission()
    return ACTIONS[action](ctx)


def _no_permission() -> BusinessError:
    return BusinessError("NoPermission.User", "The user has no permission to do this.", 403)


def _subject(ctx: ActionContext, user_id: str | None) -> Agent:
    """The agent a `UserId` names; the caller when it is omitted."""
    if user_id is None or user_id == ctx.agent.user_id:
        return ctx.agent
    if any(a.user_id == user_id for a in ctx.settings.agents):
        raise _no_permission()
    raise BusinessError("NotExist.User", f"The specified user {user_id} does not exist.", 404)


def _page(ctx: ActionContext) -> tuple[int, int]:
    number = ctx.params.integer("PageNumber", low=1, high=100_000) or 1
    size = ctx.params.integer("PageSize", low=1, high=MAX_PAGE_SIZE) or 10
    return number, size


def list_skill_groups_of_user(ctx: ActionContext) -> dict[str, Any]:
    agent = _subject(ctx, ctx.params.get("UserId"))
    return {"SkillLevels": data.skill_levels_wire(ctx.settings, agent, with_numbers=True)}


def request_login_info(ctx: ActionContext) -> dict[str, Any]:
    agent = _subject(ctx, ctx.params.get("UserId"))
    base = data.websocket_base(ctx.settings)
    info: dict[str, Any] = {
        "UserName": data.user_name(agent),
        "DisplayName": agent.display_name,
        "PhoneNumber": agent.phone,
        "Region": ctx.settings.region,
        "WebRtcUrl": f"{base}/webrtc",
        "AgentServerUrl": f"{base}/agentserver",
        "Extension": agent.extension,
        "TenantId": ctx.settings.instance_id,
        "Roles": data.roles_wire(ctx.settings),
    }
    info.update(data.login_token(ctx.settings, agent, ctx.now))
    return {"LoginInfo": info}


def refresh_token(ctx: ActionContext) -> dict[str, Any]:
    return {"Token": data.login_token(ctx.settings, ctx.agent, ctx.now)}


def list_outbound_phone_number_of_user(ctx: ActionContext) -> dict[str, Any]:
    agent = _subject(ctx, ctx.params.get("UserId"))
    number, size = _page(ctx)
    numbers = data.outbound_numbers(ctx.settings, agent)[(number - 1) * size : number * size]
    return {
        "OutboundPhoneNumbers": {
            "PhoneNumber": [data.phone_number_wire(ctx.settings, n) for n in numbers]
        },
        "NumberList": {"Number": [n.number for n in numbers]},
    }


def list_config(ctx: ActionContext) -> dict[str, Any]:
    known = data.config_items(ctx.settings, ctx.agent)
    wanted = ctx.params.repeated("ConfigItem") or list(known)
    items = [{"Name": name, "Value": known[name]} for name in wanted if name in known]
    return {"ConfigItems": {"ConfigItem": items}}


def get_config(ctx: ActionContext) -> dict[str, Any]:
    # ObjectType/ObjectId scope the lookup at Alibaba; every demo item is per user, so unused.
    name = ctx.params.required("Name")
    value = data.config_items(ctx.settings, ctx.agent).get(name, "")
    return {"ConfigItem": {"Name": name, "Value": value}}


def get_user(ctx: ActionContext) -> dict[str, Any]:
    agent = _subject(ctx, ctx.params.required("UserId"))
    detail = {
        "LoginName": data.user_name(agent),
        "DisplayName": agent.display_name,
        "Phone": agent.phone,
        "Email": agent.email,
        "Department": "",
    }
    user = {
        "UserId": agent.user_id,
        "RamId": agent.uid,
        "InstanceId": ctx.settings.instance_id,
        "Detail": detail,
        "Roles": data.roles_wire(ctx.settings),
        "SkillLevels": data.skill_levels_wire(ctx.settings, agent, with_numbers=False),
    }
    return {"User": user}


def get_service_extensions(ctx: ActionContext) -> dict[str, Any]:
    # The optional ServiceType filter is ignored: the demo instance has one kind only.
    return {"ServiceExtensions": {"ServiceExtension": [dict(e) for e in data.SERVICE_EXTENSIONS]}}


def pick_global_outbound_numbers(ctx: ActionContext) -> dict[str, Any]:
    group_ids = ctx.params.repeated("SkillGroupId")
    if not group_ids:
        raise missing("SkillGroupId")
    callee = ctx.params.required("CalleeNumber")
    count = ctx.params.integer("Count", low=1, high=MAX_PAGE_SIZE) or 1
    ctx.params.boolean("IsVirtual")  # validated; the demo has no virtual numbers
    mine = {
        data.skill_group_id(ctx.settings, g): g for g in data.skill_groups(ctx.settings, ctx.agent)
    }
    # Groups the agent is not in contribute nothing, as at Alibaba (no error, fewer pairs).
    callers = [n for gid in group_ids if gid in mine for n in mine[gid].numbers]
    unique = list({n.number: n for n in callers}.values())[:count]
    pairs = [
        {
            "Caller": {"Number": n.number, "Province": n.province, "City": n.city},
            "Callee": {"Number": callee, "Province": "", "City": ""},
        }
        for n in unique
    ]
    return {"DialNumberPairs": {"DialNumberPair": pairs}}


def list_recent_call_records(ctx: ActionContext) -> dict[str, Any]:
    start = ctx.params.integer("StartTime", low=0)
    stop = ctx.params.integer("StopTime", low=0)
    number, size = _page(ctx)
    # The free-text Criteria is ignored: the demo has two records per agent.
    records = [
        r
        for r in data.recent_call_records(ctx.settings, ctx.agent, ctx.now)
        if (start is None or r["StartTime"] >= start) and (stop is None or r["StartTime"] <= stop)
    ]
    page = records[(number - 1) * size : number * size]
    return {
        "CallDetailRecords": {
            "TotalCount": len(records),
            "PageNumber": number,
            "PageSize": size,
            "List": {"CallDetailRecord": page},
        }
    }


def get_turn_server_list(ctx: ActionContext) -> dict[str, Any]:
    return {"TurnServerListConfig": data.turn_server_list(ctx.settings)}


def get_turn_credentials(ctx: ActionContext) -> dict[str, Any]:
    name = ctx.params.get("UserName") or data.user_name(ctx.agent)
    return data.turn_credentials(name, ctx.now)


def list_agent_devices(ctx: ActionContext) -> dict[str, Any]:
    ram_ids = _ram_ids(ctx.params.get("RamIds"))
    ctx.params.integer("StartTime", low=0)
    ctx.params.integer("StopTime", low=0)
    own = int(ctx.agent.uid)
    shown = ctx.devices.of(own) if ram_ids is None or own in ram_ids else []
    return {"AgentDeviceList": {"AgentDevice": [data.device_wire(ctx.settings, d) for d in shown]}}


def _ram_ids(text: str | None) -> set[int] | None:
    if text is None:
        return None
    try:
        return {int(part) for part in text.split(",") if part.strip()}
    except ValueError:
        raise invalid("RamIds", "It must be comma-separated numbers.") from None


def add_agent_device(ctx: ActionContext) -> dict[str, Any]:
    p = ctx.params
    device = ctx.devices.add(
        data.Device(
            device_id=0,
            ram_id=int(ctx.agent.uid),
            browser_version=p.get("BrowserVersion") or "",
            client_ip=p.get("ClientIp") or "",
            client_port=p.get("ClientPort") or "",
            remark=p.get("Remark") or "",
            login_time=int(ctx.now * 1000),
        )
    )
    return {"AgentDeviceId": device.device_id}


def modify_agent_device(ctx: ActionContext) -> dict[str, Any]:
    device_id = ctx.params.required_integer("AgentDeviceId", low=1)
    is_login = ctx.params.required_integer("IsLogin", low=0, high=1)
    device = ctx.devices.devices.get(device_id)
    # Another agent's device is reported as missing: its existence is not this agent's business.
    if device is None or device.ram_id != int(ctx.agent.uid):
        raise BusinessError(
            "NotExist.AgentDevice", f"The agent device {device_id} does not exist.", 404
        )
    device.is_login = is_login
    if is_login:
        device.login_time = int(ctx.now * 1000)
    return {}


def reset_user_status(ctx: ActionContext) -> dict[str, Any]:
    for text in ctx.params.repeated("RamIdList"):
        if not text.isdigit():
            raise invalid("RamIdList", "It must be a list of numbers.")
        agent = next((a for a in ctx.settings.agents if a.uid == text), None)
        if agent is None:
            raise BusinessError("NotExist.User", f"The specified user {text} does not exist.", 404)
        if agent.upn != ctx.agent.upn:
            raise _no_permission()
    return {}


ACTIONS: dict[str, Handler] = {
    "ListSkillGroupsOfUser": list_skill_groups_of_user,
    "RequestLoginInfo": request_login_info,
    "RefreshToken": refresh_token,
    "ListOutboundPhoneNumberOfUser": list_outbound_phone_number_of_user,
    "ListConfig": list_config,
    "GetConfig": get_config,
    "GetUser": get_user,
    "GetServiceExtensions": get_service_extensions,
    "PickGlobalOutboundNumbers": pick_global_outbound_numbers,
    "ListRecentCallRecords": list_recent_call_records,
    "GetTURNServerList": get_turn_server_list,
    "GetTURNCredentials": get_turn_credentials,
    "ListAgentDevices": list_agent_devices,
    "AddAgentDevice": add_agent_device,
    "ModifyAgentDevice": modify_agent_device,
    "ResetUserStatus": reset_user_status,
}
