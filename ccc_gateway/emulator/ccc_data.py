"""What the emulated CCC instance knows about each agent, already in POP wire shapes.

Everything is derived from `settings` (instance id, region, public URL) and the agent, so two
agents see different data: the first agent of `settings.agents` is in two skill groups, every
other agent in one. Lists are wrapped the POP way (`{"Plural": {"Singular": [...]}}`) and
numbers are numbers where the official 2017-07-05 models say so.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .settings import Agent, EmulatorSettings

# Signs the workbench login data; the stand-in softphone only needs it to be stable and opaque.
_LOGIN_SIGNING_KEY = b"ccc-emulator-login-signing-key"
_TURN_SECRET = b"ccc-emulator-turn-secret"
TURN_CREDENTIAL_TTL = 86400  # seconds a TURN password stays valid (TURN REST API convention)
TURN_PORT = 3478
LOGIN_TOKEN_TTL = 600.0  # seconds a SignData/Signature pair may be used to register
LOGIN_TOKEN_SLACK = 60.0  # seconds a token may seem to come from the future (clock skew)


@dataclass(frozen=True)
class PhoneNumber:
    key: str
    number: str
    province: str
    city: str
    description: str


@dataclass(frozen=True)
class SkillGroup:
    key: str
    name: str
    description: str
    numbers: tuple[PhoneNumber, ...]
    level: int


_NUMBERS = (
    PhoneNumber("n1", "02160001001", "Shanghai", "Shanghai", "Shanghai hotline"),
    PhoneNumber("n2", "01060001002", "Beijing", "Beijing", "Beijing hotline"),
    PhoneNumber("n3", "057160001003", "Zhejiang", "Hangzhou", "Support line"),
)
_SALES = SkillGroup("sales", "Sales", "Outbound sales", _NUMBERS[:2], 5)
_SUPPORT = SkillGroup("support", "Support", "Customer support", _NUMBERS[2:], 3)
SERVICE_EXTENSIONS = (
    {"Name": "Satisfaction survey", "Number": "9001"},
    {"Name": "Voicemail", "Number": "9002"},
)


def user_name(agent: Agent) -> str:
    """The agent's login name: the RAM user name, i.e. the UPN before the `@`."""
    return agent.upn.split("@", 1)[0]


def skill_groups(settings: EmulatorSettings, agent: Agent) -> tuple[SkillGroup, ...]:
    first = settings.agents[0].upn if settings.agents else None
    return (_SALES, _SUPPORT) if agent.upn == first else (_SALES,)


def skill_group_id(settings: EmulatorSettings, group: SkillGroup) -> str:
    return f"{group.key}@{settings.instance_id}"


def skill_group_id_v2(settings: EmulatorSettings, group: SkillGroup) -> str:
    """The group's CCC 2.0 id, `<name>@<instance>`."""
    return f"{group.key}@{settings.instance_id_v2}"


def outbound_numbers(settings: EmulatorSettings, agent: Agent) -> list[PhoneNumber]:
    seen: dict[str, PhoneNumber] = {}
    for group in skill_groups(settings, agent):
        for number in group.numbers:
            seen.setdefault(number.number, number)
    return list(seen.values())


def phone_number_wire(settings: EmulatorSettings, number: PhoneNumber) -> dict[str, Any]:
    return {
        "PhoneNumberId": f"{number.key}@{settings.instance_id}",
        "InstanceId": settings.instance_id,
        "Number": number.number,
        "PhoneNumberDescription": number.description,
        "TestOnly": False,
        "RemainingTime": 0,
        "AllowOutbound": True,
        "Usage": "Bidirection",
        "Trunks": 10,
        "Province": number.province,
        "City": number.city,
    }


def skill_levels_wire(
    settings: EmulatorSettings, agent: Agent, *, with_numbers: bool
) -> dict[str, Any]:
    """`SkillLevels.SkillLevel[]` as ListSkillGroupsOfUser (with numbers) and GetUser send it."""
    levels = []
    for group in skill_groups(settings, agent):
        skill: dict[str, Any] = {
            "InstanceId": settings.instance_id,
            "SkillGroupId": skill_group_id(settings, group),
            "SkillGroupName": group.name,
            "SkillGroupDescription": group.description,
        }
        if with_numbers:
            skill["RoutingStrategy"] = "LongestIdle"
            numbers = [phone_number_wire(settings, n) for n in group.numbers]
            skill["OutboundPhoneNumbers"] = {"PhoneNumber": numbers}
        levels.append(
            {
                "SkillLevelId": f"{group.key}-{agent.user_id}",
                "Level": group.level,
                "Skill": skill,
            }
        )
    return {"SkillLevel": levels}


def roles_wire(settings: EmulatorSettings) -> dict[str, Any]:
    role = {
        "RoleId": f"Agent@{settings.instance_id}",
        "RoleName": "Agent",
        "RoleDescription": "Agent",
        "InstanceId": settings.instance_id,
    }
    return {"Role": [role]}


def config_items(settings: EmulatorSettings, agent: Agent) -> dict[str, str]:
    """The instance/user configuration the workbench reads with ListConfig and GetConfig."""
    return {
        "AutoAnswer": "false",
        "AfterCallWorkDuration": "15",
        "DefaultOutboundNumber": outbound_numbers(settings, agent)[0].number,
        "EnableWebRTC": "true",
        "Region": settings.region,
        "SkillGroupCount": str(len(skill_groups(settings, agent))),
    }


def websocket_base(settings: EmulatorSettings) -> str:
    """wss://host:port of the emulator (ws:// when it runs on plain http)."""
    parts = urlsplit(settings.public_url)
    scheme = "ws" if parts.scheme == "http" else "wss"
    return f"{scheme}://{parts.netloc}"


def login_token(
    settings: EmulatorSettings, agent: Agent, now: float, instance_id: str | None = None
) -> dict[str, str]:
    """`{Signature, SignData}` that lets the softphone register; fresh on every call.

    `instance_id` defaults to the classic instance; GetLoginDetails passes the 2.0 one.
    """
    data = json.dumps(
        {
            "tenantId": instance_id or settings.instance_id,
            "user": user_name(agent),
            "ts": int(now * 1000),
        },
        separators=(",", ":"),
    )
    digest = hmac.new(_LOGIN_SIGNING_KEY, data.encode(), hashlib.sha256).digest()
    return {"SignData": data, "Signature": base64.b64encode(digest).decode("ascii")}


def verify_login_token(
    settings: EmulatorSettings, sign_data: str, signature: str, now: float
) -> Agent | None:
    """The agent a `login_token` names, if it is ours, for this instance and fresh enough.

    Accepts tokens issued up to LOGIN_TOKEN_TTL seconds ago (a little clock slack ahead).
    """
    expected = hmac.new(_LOGIN_SIGNING_KEY, sign_data.encode(), hashlib.sha256).digest()
    try:
        given = base64.b64decode(signature.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        return None
    # Constant time, so a forger learns nothing from how fast a wrong signature is refused.
    if not hmac.compare_digest(expected, given):
        return None
    try:
        claims = json.loads(sign_data)
    except ValueError:
        return None
    tenants = (settings.instance_id, settings.instance_id_v2)
    if not isinstance(claims, dict) or claims.get("tenantId") not in tenants:
        return None
    issued = claims.get("ts")
    if isinstance(issued, bool) or not isinstance(issued, int):
        return None
    age = now - issued / 1000
    if age > LOGIN_TOKEN_TTL or age < -LOGIN_TOKEN_SLACK:
        return None
    return next((a for a in settings.agents if user_name(a) == claims.get("user")), None)


def turn_server_list(settings: EmulatorSettings) -> str:
    # The model types TurnServerListConfig as a string: JSON text of RTCIceServer entries.
    host = urlsplit(settings.public_url).hostname or "127.0.0.1"
    servers = [
        {
            "urls": [
                f"turn:{host}:{TURN_PORT}?transport=udp",
                f"turn:{host}:{TURN_PORT}?transport=tcp",
            ]
        }
    ]
    return json.dumps(servers, separators=(",", ":"))


def turn_credentials(name: str, now: float) -> dict[str, str]:
    """TURN REST API style credentials: `expiry:name` and its HMAC-SHA1."""
    username = f"{int(now) + TURN_CREDENTIAL_TTL}:{name}"
    digest = hmac.new(_TURN_SECRET, username.encode(), hashlib.sha1).digest()
    return {"Username": username, "Password": base64.b64encode(digest).decode("ascii")}


def recent_call_records(
    settings: EmulatorSettings, agent: Agent, now: float
) -> list[dict[str, Any]]:
    """Two finished calls per agent, an outbound one and an inbound one, ending before `now`."""
    number = outbound_numbers(settings, agent)[0].number
    calls = (("OUTBOUND", number, "135012345678", 3600), ("INBOUND", "135012345679", number, 7200))
    records = []
    for index, (kind, calling, called, ago) in enumerate(calls, start=1):
        records.append(
            {
                "ContactId": f"{agent.user_id}-contact-{index}",
                "ContactType": kind,
                "ContactDisposition": "Success",
                "CallingNumber": calling,
                "CalledNumber": called,
                "StartTime": int((now - ago) * 1000),
                "Duration": 65,
                "Satisfaction": 1,
                "SatisfactionDesc": "Satisfied",
                "Feedback": "",
                "ExtraAttr": "",
                "InstanceId": settings.instance_id,
                "AgentNames": agent.display_name,
                "SkillGroupNames": skill_groups(settings, agent)[0].name,
                "Agents": {"CallDetailAgent": []},
                "Recordings": {"Recording": []},
            }
        )
    return records


@dataclass
class Device:
    device_id: int
    ram_id: int
    browser_version: str
    client_ip: str
    client_port: str
    remark: str
    login_time: int
    is_login: int = 1


@dataclass
class DeviceBook:
    """Agent devices (browsers running the softphone) registered with AddAgentDevice."""

    devices: dict[int, Device] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1001))

    def add(self, device: Device) -> Device:
        device.device_id = next(self._ids)
        self.devices[device.device_id] = device
        return device

    def of(self, ram_id: int) -> list[Device]:
        return [d for d in self.devices.values() if d.ram_id == ram_id]


def device_wire(settings: EmulatorSettings, device: Device) -> dict[str, Any]:
    return {
        "InstanceId": settings.instance_id,
        "RamId": device.ram_id,
        "BrowserVersion": device.browser_version,
        "ClientIp": device.client_ip,
        "ClientPort": device.client_port,
        "Remark": device.remark,
        "LoginTime": device.login_time,
        "IsLogin": device.is_login,
    }
