"""The emulator's CCC 2.0 (2020-07-01) OpenAPI: official shapes, agent states, identity, lists.

Every answer is read with the official `alibabacloud-ccc20200701` models (tests/oracles/
ccc2_models.py). Calls are authenticated exactly as the classic ones (bearer token or an STS
signature made with `aliyunsdkcore`'s composer).
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient
from oracles.ccc2_models import request_parameter_names, round_trip, type_problems
from test_emulator_pop import Clock, common, issue_bearer, issue_sts, send, with_bearer
from test_emulator_pop import with_signature
from test_emulator_softphone import SteppedSleep

from ccc_gateway.emulator.app import create_emulator_app
from ccc_gateway.emulator.ccc2_actions import ACTIONS2
from ccc_gateway.emulator.keys import STORE_KEY
from ccc_gateway.emulator.settings import DEMO_AGENTS, Agent, EmulatorSettings, OAuthClient
from ccc_gateway.emulator.softphone_server import SOFTPHONE_KEY
from ccc_gateway.emulator.store import EmulatorStore

Client = TestClient[Any, Any]
AGENT1, AGENT2 = DEMO_AGENTS
USER1, USER2 = "agent1@ccc-demo", "agent2@ccc-demo"
INSTANCE2 = "ccc-demo"
CUSTOMER = "135012345678"
COMMON = {"Action", "Version", "Format", "RegionId", "Timestamp", "SignatureNonce"}
COMMON |= {"SignatureType", "BearerToken"}
# The contract's 2.0 default allow-list, verbatim.
ALLOW_LIST = """GetLoginDetails ListSkillLevelsOfUser ListOutboundNumbersOfUser ListConfigItems
GetTurnServerList GetTurnCredentials ListPrivilegesOfUser ListDevices PickOutboundNumbers
GetNumberLocation ListRealtimeAgentStates ListAgentStates ResetAgentState
ListRecentCallDetailRecords ListSkillGroups ListBriefSkillGroups ListHistoricalAgentReport
SaveTerminalLog SignInGroup SignOutGroup TakeBreak ReadyForService MakeCall AnswerCall ReleaseCall
HoldCall RetrieveCall BlindTransfer InitiateAttendedTransfer CompleteAttendedTransfer
CancelAttendedTransfer SendDtmfSignaling MonitorCall BargeInCall InterceptCall CoachCall MuteCall
UnmuteCall LaunchSurvey""".split()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sleeper() -> SteppedSleep:
    return SteppedSleep()


@pytest.fixture
async def client(aiohttp_client: Any, clock: Clock, sleeper: SteppedSleep) -> Client:
    oauth = OAuthClient("client-1", "secret-1", ("https://crm.test/cb",))
    settings = EmulatorSettings(public_url="http://127.0.0.1:9", clients=(oauth,), clock=clock)
    app = create_emulator_app(settings)
    app[SOFTPHONE_KEY].calls.sleep = sleeper
    return await aiohttp_client(app)  # type: ignore[no-any-return]


def store_of(client: Client) -> EmulatorStore:
    return client.app[STORE_KEY]  # type: ignore[index,no-any-return]


async def call2(
    client: Client, clock: Clock, action: str, agent: Agent = AGENT1, /, **extra: str | None
) -> tuple[int, dict[str, Any]]:
    """A 2.0 call with a bearer token of `agent`, on the 2.0 instance unless told otherwise."""
    params = common(clock, action, Version="2020-07-01", **{"InstanceId": INSTANCE2, **extra})
    return await send(client, with_bearer(params, issue_bearer(store_of(client), agent)))


async def ok2(
    client: Client, clock: Clock, action: str, agent: Agent = AGENT1, /, **extra: str | None
) -> dict[str, Any]:
    status, body = await call2(client, clock, action, agent, **extra)
    assert status == 200, body
    assert (body["Code"], body["HttpStatusCode"], body["Message"]) == ("OK", 200, "")
    return body


def assert_refused2(status: int, body: dict[str, Any], want_status: int, code: str) -> None:
    """A CCC 2.0 refusal: its own HTTP status, `{RequestId, Code, Message, HttpStatusCode}`."""
    assert (status, body["Code"]) == (want_status, code), body
    assert body["HttpStatusCode"] == want_status and body["Message"] and body["RequestId"]
    assert "Success" not in body and "Data" not in body


async def state_of(client: Client, clock: Clock, user: str = USER1) -> str:
    body = await ok2(client, clock, "ListAgentStates", AGENT1, PageNumber="1", PageSize="10")
    [row] = [r for r in body["Data"]["List"] if r["AgentId"] == user]
    return str(row["State"])


async def emulator_calls(client: Client) -> list[dict[str, Any]]:
    resp = await client.get("/_emulator/calls")
    assert resp.status == 200
    return (await resp.json())["calls"]  # type: ignore[no-any-return]


async def sign_in_ready(client: Client, clock: Clock, agent: Agent = AGENT1) -> None:
    groups = json.dumps(["sales@ccc-demo"])
    await ok2(client, clock, "SignInGroup", agent, DeviceId="dev-1", SignedSkillGroupIdList=groups)
    await ok2(client, clock, "ReadyForService", agent)


async def wake(sleeper: SteppedSleep) -> None:
    """Let the far party's next timer fire (the callee answers, or hangs up)."""
    _, future = await sleeper.next()
    future.set_result(None)


async def talking(
    client: Client, clock: Clock, sleeper: SteppedSleep, agent: Agent = AGENT1
) -> tuple[str, str]:
    """Agent signed in, ready, in an answered outbound call: (JobId, the agent's ChannelId)."""
    await sign_in_ready(client, clock, agent)
    body = await ok2(client, clock, "MakeCall", agent, Callee=CUSTOMER)
    await wake(sleeper)
    await _settled(client)
    context = body["Data"]["CallContext"]
    return context["JobId"], context["ChannelContexts"][0]["ChannelId"]


async def _settled(client: Client) -> None:
    """Wait until the far party's answer is on record (the timer task runs on its own)."""
    for _ in range(100):
        if all(c["state"] != "ringing" for c in await emulator_calls(client)):
            return
    raise AssertionError("the callee never answered")


async def softphone(client: Client, clock: Clock, agent: Agent = AGENT1) -> Any:
    """The 2.0 stand-in's event socket, registered with GetLoginDetails' UserKey + Signature."""
    details = (await ok2(client, clock, "GetLoginDetails", agent))["Data"]
    assert details["AgentServerUrl"].endswith("/webrtc")
    ws = await client.ws_connect("/webrtc")
    await ws.send_json(
        {"type": "register", "signData": details["UserKey"], "signature": details["Signature"]}
    )
    assert (await receive(ws))["type"] == "registered"
    return ws


async def receive(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    msg = await ws.receive(timeout=10)
    assert msg.type == WSMsgType.TEXT, msg
    return json.loads(msg.data)  # type: ignore[no-any-return]


async def ringing(client: Client, clock: Clock) -> tuple[Any, str]:
    """Agent 1 ready with its softphone connected and an inbound call ringing: (ws, JobId)."""
    await sign_in_ready(client, clock)
    ws = await softphone(client, clock)
    resp = await client.post("/_emulator/calls", json={"agent": AGENT1.upn, "caller": CUSTOMER})
    assert resp.status == 201
    incoming = await receive(ws)
    assert incoming["type"] == "incoming" and incoming["connid"] == (await resp.json())["id"]
    return ws, str(incoming["connid"])


# --- the action list and the official shapes ------------------------------------------------


def test_every_allow_list_action_is_served() -> None:
    """The emulator answers exactly the contract's 2.0 default allow-list."""
    assert sorted(ACTIONS2) == sorted(ALLOW_LIST)


def _scenarios(job: str, channel: str) -> dict[str, tuple[str, Agent, dict[str, str]]]:
    """Per action: the state to set up first, the caller, and the parameters to send."""
    groups = json.dumps(["sales@ccc-demo"])
    page = {"PageNumber": "1", "PageSize": "10"}
    in_call = {"JobId": job}
    return {
        "GetLoginDetails": ("offline", AGENT1, {"ChatDeviceId": "chat-1"}),
        "ListSkillLevelsOfUser": ("offline", AGENT1, page),
        "ListOutboundNumbersOfUser": ("offline", AGENT1, {**page, "SkillGroupIdList": groups}),
        "ListConfigItems": ("offline", AGENT1, {"ObjectType": "agent", "ObjectId": USER1}),
        "GetTurnServerList": ("offline", AGENT1, {}),
        "GetTurnCredentials": ("offline", AGENT1, {"UserId": USER1}),
        "ListPrivilegesOfUser": ("offline", AGENT1, {}),
        "ListDevices": ("ready", AGENT1, {}),
        "PickOutboundNumbers": (
            "offline", AGENT1, {"CalledNumber": CUSTOMER, "SkillGroupIdList": groups, "Count": "2"}
        ),
        "GetNumberLocation": ("offline", AGENT1, {"Number": CUSTOMER}),
        "ListRealtimeAgentStates": ("talking", AGENT1, {**page, "AgentIdList": json.dumps([USER1])}),
        "ListAgentStates": ("ready", AGENT1, page),
        "ResetAgentState": ("talking", AGENT1, {"DeviceId": "dev-1"}),
        "ListRecentCallDetailRecords": ("offline", AGENT1, page),
        "ListSkillGroups": ("offline", AGENT1, page),
        "ListBriefSkillGroups": ("offline", AGENT1, page),
        "ListHistoricalAgentReport": ("ready", AGENT1, {**page, "AgentIdList": json.dumps([USER1])}),
        "SaveTerminalLog": (
            "offline",
            AGENT1,
            {"AppName": "workbench", "CallId": "c1", "JobId": "job-1", "Content": "log",
             "DataType": "1", "Status": "ok", "UniqueRequestId": "u1"},
        ),
        "SignInGroup": ("offline", AGENT1, {"DeviceId": "dev-1", "SignedSkillGroupIdList": groups}),
        "SignOutGroup": ("ready", AGENT1, {}),
        "TakeBreak": ("ready", AGENT1, {"Code": "lunch"}),
        "ReadyForService": ("ready", AGENT1, {"OutboundScenario": "false"}),
        "MakeCall": ("ready", AGENT1, {"Callee": CUSTOMER, "TimeoutSeconds": "60"}),
        "AnswerCall": ("ringing", AGENT1, in_call),
        "ReleaseCall": ("talking", AGENT1, {**in_call, "ChannelId": channel}),
        "HoldCall": ("talking", AGENT1, {**in_call, "ChannelId": channel}),
        "RetrieveCall": ("held", AGENT1, {**in_call, "ChannelId": channel}),
        "BlindTransfer": ("talking", AGENT1, {**in_call, "Transferee": USER2, "TransfereeType": "AGENT"}),
        "InitiateAttendedTransfer": ("talking", AGENT1, {**in_call, "Transferee": "13900000000"}),
        "CompleteAttendedTransfer": ("talking", AGENT1, in_call),
        "CancelAttendedTransfer": ("talking", AGENT1, in_call),
        "SendDtmfSignaling": ("talking", AGENT1, {**in_call, "ChannelId": channel, "Dtmf": "1"}),
        "MonitorCall": ("talking", AGENT2, {"MonitoredUserId": USER1}),
        "BargeInCall": ("talking", AGENT2, {**in_call, "BargedUserId": USER1}),
        "InterceptCall": ("talking", AGENT2, {**in_call, "InterceptedUserId": USER1}),
        "CoachCall": ("talking", AGENT2, {**in_call, "CoachedUserId": USER1}),
        "MuteCall": ("talking", AGENT1, {**in_call, "ChannelId": channel}),
        "UnmuteCall": ("talking", AGENT1, in_call),
        "LaunchSurvey": ("talking", AGENT1, in_call),
    }


async def _set_up(client: Client, clock: Clock, sleeper: SteppedSleep, state: str) -> tuple[str, str]:
    if state == "offline":
        return "job-0", "ch-0"
    if state == "ready":
        await sign_in_ready(client, clock)
        return "job-0", "ch-0"
    if state == "ringing":
        _, job = await ringing(client, clock)
        return job, "ch-0"
    job, channel = await talking(client, clock, sleeper)
    if state == "held":
        await ok2(client, clock, "HoldCall", AGENT1, JobId=job, ChannelId=channel)
    return job, channel


@pytest.mark.parametrize("action", ALLOW_LIST)
async def test_answer_is_the_official_shape(
    client: Client, clock: Clock, sleeper: SteppedSleep, action: str
) -> None:
    """Each action's answer round-trips through the official model losslessly, typed right."""
    state = _scenarios("", "")[action][0]
    job, channel = await _set_up(client, clock, sleeper, state)
    _, agent, params = _scenarios(job, channel)[action]
    assert set(params) | {"InstanceId"} <= request_parameter_names(action)
    body = await ok2(client, clock, action, agent, **params)
    assert round_trip(action, body) == body
    assert type_problems(action, body) == []
