"""The emulator's CCC 2.0 (2020-07-01) OpenAPI: official shapes, agent states, identity, lists.

Every answer is read with the official `alibabacloud-ccc20200701` models (tests/oracles/
ccc2_models.py). Calls are authenticated exactly as the classic ones (bearer token or an STS
signature made with `aliyunsdkcore`'s composer).
"""

from __future__ import annotations

import json
import random
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient
from oracles.ccc2_models import request_parameter_names, round_trip, type_problems
from test_emulator_pop import (
    Clock,
    common,
    issue_bearer,
    issue_sts,
    send,
    with_bearer,
    with_signature,
)
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
            "offline",
            AGENT1,
            {"CalledNumber": CUSTOMER, "SkillGroupIdList": groups, "Count": "2"},
        ),
        "GetNumberLocation": ("offline", AGENT1, {"Number": CUSTOMER}),
        "ListRealtimeAgentStates": (
            "talking",
            AGENT1,
            {**page, "AgentIdList": json.dumps([USER1])},
        ),
        "ListAgentStates": ("ready", AGENT1, page),
        "ResetAgentState": ("talking", AGENT1, {"DeviceId": "dev-1"}),
        "ListRecentCallDetailRecords": ("offline", AGENT1, page),
        "ListSkillGroups": ("offline", AGENT1, page),
        "ListBriefSkillGroups": ("offline", AGENT1, page),
        "ListHistoricalAgentReport": (
            "ready",
            AGENT1,
            {**page, "AgentIdList": json.dumps([USER1])},
        ),
        "SaveTerminalLog": (
            "offline",
            AGENT1,
            {
                "AppName": "workbench",
                "CallId": "c1",
                "JobId": "job-1",
                "Content": "log",
                "DataType": "1",
                "Status": "ok",
                "UniqueRequestId": "u1",
            },
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
        "BlindTransfer": (
            "talking",
            AGENT1,
            {**in_call, "Transferee": USER2, "TransfereeType": "AGENT"},
        ),
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


async def _set_up(
    client: Client, clock: Clock, sleeper: SteppedSleep, state: str
) -> tuple[str, str]:
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


def test_oracle_notices_unknown_fields_and_wrong_types() -> None:
    """The model oracle is not vacuous: it drops unknown fields and reports wrong types."""
    body = {"Code": "OK", "Data": {"UserId": "a@b", "Extra": 1}, "HttpStatusCode": "200"}
    assert round_trip("SignOutGroup", body) != body
    assert type_problems("SignOutGroup", body) == [
        "SignOutGroup.http_status_code: want int, got str"
    ]
    assert "Callee" in request_parameter_names("MakeCall")
    assert "callee" not in request_parameter_names("MakeCall")


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


# --- the agent state machine ------------------------------------------------------------------


async def test_sign_in_ready_call_release(
    client: Client, clock: Clock, sleeper: SteppedSleep
) -> None:
    """OFFLINE → SignInGroup (BREAK Warm-up) → READY → MakeCall DIALING → TALKING → READY."""
    assert await state_of(client, clock) == "OFFLINE"
    groups = json.dumps(["sales@ccc-demo"])
    body = await ok2(client, clock, "SignInGroup", DeviceId="dev-1", SignedSkillGroupIdList=groups)
    assert (body["Data"]["UserState"], body["Data"]["BreakCode"]) == ("BREAK", "Warm-up")
    assert body["Data"]["SignedSkillGroupIdList"] == ["sales@ccc-demo"]
    assert (await ok2(client, clock, "ReadyForService"))["Data"]["UserState"] == "READY"
    made = (await ok2(client, clock, "MakeCall", Callee=CUSTOMER))["Data"]
    job = made["CallContext"]["JobId"]
    assert job.startswith("job-") and made["UserContext"]["JobId"] == job
    assert made["UserContext"]["UserState"] == "DIALING"
    [call] = await emulator_calls(client)
    assert (call["id"], call["direction"], call["agent"]) == (job, "outbound", AGENT1.upn)
    assert (call["number"], call["state"]) == (CUSTOMER, "ringing")
    await wake(sleeper)  # the callee answers by itself
    await _settled(client)
    assert await state_of(client, clock) == "TALKING"
    released = await ok2(client, clock, "ReleaseCall", JobId=job)
    assert released["Data"]["UserContext"]["UserState"] == "READY"
    assert released["Data"]["CallContext"]["ChannelContexts"][0]["ChannelState"] == "RELEASED"
    assert [c["state"] for c in await emulator_calls(client)] == ["ended"]


async def test_callee_hangs_up_by_itself(
    client: Client, clock: Clock, sleeper: SteppedSleep
) -> None:
    """An outbound call ends by itself after a while; the agent is back where it was."""
    await talking(client, clock, sleeper)
    await wake(sleeper)  # the callee hangs up
    for _ in range(100):
        if (await emulator_calls(client))[0]["state"] == "ended":
            break
    assert await state_of(client, clock) == "READY"


async def test_break_and_ready(client: Client, clock: Clock) -> None:
    """TakeBreak puts a signed-in agent on break with its code; ReadyForService ends it."""
    await sign_in_ready(client, clock)
    body = await ok2(client, clock, "TakeBreak", Code="lunch")
    assert (body["Data"]["UserState"], body["Data"]["BreakCode"]) == ("BREAK", "lunch")
    assert (await ok2(client, clock, "ReadyForService"))["Data"]["BreakCode"] == ""
    assert (await ok2(client, clock, "SignOutGroup"))["Data"]["UserState"] == "OFFLINE"


async def test_incoming_call_answered(client: Client, clock: Clock) -> None:
    """POST /_emulator/calls rings a 2.0 agent; AnswerCall: TALKING, told to its softphone."""
    ws, job = await ringing(client, clock)
    assert await state_of(client, clock) == "RINGING"
    [call] = await emulator_calls(client)
    assert (call["id"], call["direction"], call["state"]) == (job, "inbound", "ringing")
    body = await ok2(client, clock, "AnswerCall", JobId=job)
    assert body["Data"]["UserContext"]["UserState"] == "TALKING"
    assert body["Data"]["CallContext"]["CallType"] == "INBOUND"
    assert [c["state"] for c in await emulator_calls(client)] == ["talking"]
    established = await receive(ws)
    assert (established["type"], established["connid"]) == ("established", job)
    await ok2(client, clock, "ReleaseCall", JobId=job)
    released = await receive(ws)
    assert (released["type"], released["connid"]) == ("released", job)
    await ws.close()


async def test_hold_and_retrieve(client: Client, clock: Clock, sleeper: SteppedSleep) -> None:
    """HoldCall holds the agent's channel, RetrieveCall takes it back; twice is a state error."""
    job, channel = await talking(client, clock, sleeper)
    held = await ok2(client, clock, "HoldCall", JobId=job, ChannelId=channel)
    assert held["Data"]["CallContext"]["ChannelContexts"][0]["ChannelState"] == "HELD"
    status, body = await call2(client, clock, "HoldCall", JobId=job, ChannelId=channel)
    assert_refused2(status, body, 400, "InvalidOperation.ChannelState")
    back = await ok2(client, clock, "RetrieveCall", JobId=job, ChannelId=channel)
    assert back["Data"]["CallContext"]["ChannelContexts"][0]["ChannelState"] == "ANSWERED"
    status, body = await call2(client, clock, "RetrieveCall", JobId=job, ChannelId=channel)
    assert_refused2(status, body, 400, "InvalidOperation.ChannelState")


async def test_blind_transfer_ends_the_agents_call(
    client: Client, clock: Clock, sleeper: SteppedSleep
) -> None:
    """BlindTransfer hands the call on: the agent is free, its call record ended."""
    job, _ = await talking(client, clock, sleeper)
    body = await ok2(client, clock, "BlindTransfer", JobId=job, Transferee="13900000000")
    assert body["Data"]["UserContext"]["UserState"] == "READY"
    assert [c["state"] for c in await emulator_calls(client)] == ["ended"]


@pytest.mark.parametrize(
    ("action", "params", "status", "code"),
    [
        ("MakeCall", {"Callee": CUSTOMER}, 400, "InvalidOperation.UserState"),
        ("TakeBreak", {"Code": "lunch"}, 400, "InvalidOperation.UserState"),
        ("ReadyForService", {}, 400, "InvalidOperation.UserState"),
        ("AnswerCall", {"JobId": "job-1"}, 404, "NotExists.JobId"),
        ("ReleaseCall", {"JobId": "job-1"}, 404, "NotExists.JobId"),
        ("HoldCall", {"JobId": "job-1", "ChannelId": "ch"}, 404, "NotExists.JobId"),
        ("TakeBreak", {}, 400, "Parameter.Blank"),
        ("MakeCall", {}, 400, "Parameter.Blank"),
    ],
)
async def test_wrong_state_while_offline(
    client: Client, clock: Clock, action: str, params: dict[str, str], status: int, code: str
) -> None:
    """A signed-out agent's call-control requests get CCC's documented code and status."""
    assert_refused2(*await call2(client, clock, action, **params), status, code)


async def test_wrong_state_in_call(client: Client, clock: Clock, sleeper: SteppedSleep) -> None:
    """In a call: no second call (UserBusy), no break or sign-out, no foreign channel."""
    groups = json.dumps(["sales@ccc-demo"])
    await sign_in_ready(client, clock)
    job = (await ok2(client, clock, "MakeCall", Callee=CUSTOMER))["Data"]["CallContext"]["JobId"]
    status, body = await call2(client, clock, "HoldCall", JobId=job, ChannelId="x")
    assert_refused2(status, body, 404, "NotExists.ChannelId")
    await wake(sleeper)
    await _settled(client)
    assert_refused2(*await call2(client, clock, "MakeCall", Callee=CUSTOMER), 400, "UserBusy")
    for action, params in [
        ("TakeBreak", {"Code": "x"}),
        ("SignOutGroup", {}),
        ("ReadyForService", {}),
        ("SignInGroup", {"DeviceId": "d", "SignedSkillGroupIdList": groups}),
    ]:
        status, body = await call2(client, clock, action, **params)
        assert_refused2(status, body, 400, "InvalidOperation.UserState")
        assert "TALKING" in body["Message"]
    status, body = await call2(client, clock, "AnswerCall", JobId=job)
    assert_refused2(status, body, 400, "InvalidOperation.ChannelState")


async def test_hold_needs_an_answered_call(client: Client, clock: Clock) -> None:
    """HoldCall while the callee's phone still rings is a channel-state error."""
    await sign_in_ready(client, clock)
    made = (await ok2(client, clock, "MakeCall", Callee=CUSTOMER))["Data"]["CallContext"]
    channel = made["ChannelContexts"][0]["ChannelId"]
    status, body = await call2(client, clock, "HoldCall", JobId=made["JobId"], ChannelId=channel)
    assert_refused2(status, body, 400, "InvalidOperation.ChannelState")


async def test_unknown_skill_group_refused(client: Client, clock: Clock) -> None:
    """SignInGroup with a group the agent is not in (or of another instance) is 404."""
    for group in ["support@ccc-demo", "sales@ccc-demo-instance"]:
        status, body = await call2(
            client,
            clock,
            "SignInGroup",
            AGENT2,
            DeviceId="d",
            SignedSkillGroupIdList=json.dumps([group]),
        )
        assert_refused2(status, body, 404, "NotExists.SkillGroupId")


# --- identity and instance --------------------------------------------------------------------


async def test_user_id_must_be_the_callers(client: Client, clock: Clock) -> None:
    """Another agent's UserId is Permission.User (403); an unknown one NotExists.UserId (404)."""
    await ok2(client, clock, "GetLoginDetails", AGENT1, UserId=USER1)
    assert_refused2(
        *await call2(client, clock, "GetLoginDetails", UserId=USER2), 403, "Permission.User"
    )
    assert_refused2(
        *await call2(client, clock, "TakeBreak", Code="x", UserId=USER2), 403, "Permission.User"
    )
    status, body = await call2(client, clock, "GetLoginDetails", UserId="nobody@ccc-demo")
    assert_refused2(status, body, 404, "NotExists.UserId")


async def test_login_details_are_the_token_users(client: Client, clock: Clock) -> None:
    """The RAM user agent2@ccc-demo.onaliyun.com is the CCC user agent2@ccc-demo."""
    data = (await ok2(client, clock, "GetLoginDetails", AGENT2))["Data"]
    assert (data["UserId"], data["DisplayName"]) == (USER2, AGENT2.display_name)
    assert data["Signature"] and data["UserKey"] and data["ChatLoginToken"] and data["SipServerUrl"]


async def test_supervisor_names_another_agent(
    client: Client, clock: Clock, sleeper: SteppedSleep
) -> None:
    """MonitorCall's MonitoredUserId may name another agent; the target must be in a call."""
    assert_refused2(
        *await call2(client, clock, "MonitorCall", AGENT2, MonitoredUserId=USER1),
        400,
        "InvalidOperation.UserState",
    )
    job, _ = await talking(client, clock, sleeper)
    body = await ok2(client, clock, "MonitorCall", AGENT2, MonitoredUserId=USER1, UserId=USER2)
    assert body["Data"]["CallContext"]["JobId"] == job
    assert body["Data"]["UserContext"]["UserId"] == USER2
    status, body = await call2(
        client, clock, "MonitorCall", AGENT2, MonitoredUserId=USER1, UserId=USER1
    )
    assert_refused2(status, body, 403, "Permission.User")


async def test_generation_and_instance_must_match(client: Client, clock: Clock) -> None:
    """2.0 on the classic instance is NotExists.InstanceId; the reverse is NotExist.Instance."""
    status, body = await call2(client, clock, "GetLoginDetails", InstanceId="ccc-demo-instance")
    assert_refused2(status, body, 404, "NotExists.InstanceId")
    store = store_of(client)
    params = common(clock, "RequestLoginInfo", InstanceId=INSTANCE2)
    status, body = await send(client, with_bearer(params, issue_bearer(store)))
    assert (status, body["Success"], body["Code"]) == (200, False, "NotExist.Instance")


@pytest.mark.parametrize(
    ("version", "action"), [("2020-07-01", "RequestLoginInfo"), ("2017-07-05", "GetLoginDetails")]
)
async def test_action_of_the_other_generation_is_unknown(
    client: Client, clock: Clock, version: str, action: str
) -> None:
    """An action exists only in its own API version: InvalidAction.NotFound (404) otherwise."""
    params = common(clock, action, Version=version, InstanceId=INSTANCE2)
    status, body = await send(client, with_bearer(params, issue_bearer(store_of(client))))
    assert (status, body["Code"]) == (404, "InvalidAction.NotFound")


# --- authentication is the classic one --------------------------------------------------------


async def test_sts_signature_accepted_and_checked(client: Client, clock: Clock) -> None:
    """A 2.0 call signed with STS credentials works; a bad signature is refused."""
    token = issue_sts(store_of(client))
    params = common(clock, "GetLoginDetails", Version="2020-07-01", InstanceId=INSTANCE2)
    status, body = await send(client, with_signature(params, token))
    assert (status, body["Code"], body["Data"]["UserId"]) == (200, "OK", USER1)
    forged = common(clock, "GetLoginDetails", Version="2020-07-01", InstanceId=INSTANCE2)
    status, body = await send(client, with_signature(forged, token, secret="wrong"))
    assert (status, body["Code"]) == (400, "SignatureDoesNotMatch")


async def test_expired_bearer_refused(client: Client, clock: Clock) -> None:
    """A 2.0 call with an expired bearer token is refused before any action runs."""
    value = issue_bearer(store_of(client), AGENT1, ttl=10)
    clock.now += 60
    params = common(clock, "SignInGroup", Version="2020-07-01", InstanceId=INSTANCE2)
    status, body = await send(client, with_bearer(params, value))
    assert (status, body["Code"]) == (401, "InvalidBearerToken.Expired")
    assert await state_of(client, clock) == "OFFLINE"


# --- list parameters --------------------------------------------------------------------------


async def test_list_parameter_as_json_text(client: Client, clock: Clock) -> None:
    """A list parameter is one JSON-text value; it filters as asked."""
    body = await ok2(
        client,
        clock,
        "ListOutboundNumbersOfUser",
        PageNumber="1",
        PageSize="10",
        SkillGroupIdList=json.dumps(["support@ccc-demo"]),
    )
    assert [n["Number"] for n in body["Data"]["List"]] == ["057160001003"]


@pytest.mark.parametrize(
    "params",
    [
        {"SignedSkillGroupIdList.1": "sales@ccc-demo"},
        {"SignedSkillGroupIdList": "sales@ccc-demo"},
        {"SignedSkillGroupIdList": json.dumps({"a": 1})},
        {"SignedSkillGroupIdList": json.dumps(["sales@ccc-demo"]), "SignedSkillGroupIdList.1": "x"},
    ],
)
async def test_list_parameter_flattened_or_not_json_refused(
    client: Client, clock: Clock, params: dict[str, str]
) -> None:
    """`Name.N` flattening, or a value that is not JSON text of a list, is Parameter.Format."""
    status, body = await call2(client, clock, "SignInGroup", DeviceId="d", **params)
    assert_refused2(status, body, 400, "Parameter.Format")
    assert await state_of(client, clock) == "OFFLINE"


# --- /_emulator/calls ---------------------------------------------------------------------------


async def test_push_needs_a_connected_softphone(client: Client, clock: Clock) -> None:
    """A signed-in 2.0 agent without a connected softphone cannot be rung: 409."""
    await sign_in_ready(client, clock)
    resp = await client.post("/_emulator/calls", json={"agent": AGENT1.upn, "caller": CUSTOMER})
    assert resp.status == 409
    assert await state_of(client, clock) == "READY"


async def test_outbound_call_events_reach_the_softphone(
    client: Client, clock: Clock, sleeper: SteppedSleep
) -> None:
    """MakeCall's call is pushed to the agent's softphone: established, then released."""
    await sign_in_ready(client, clock)
    ws = await softphone(client, clock)
    job = (await ok2(client, clock, "MakeCall", Callee=CUSTOMER))["Data"]["CallContext"]["JobId"]
    await wake(sleeper)
    established = await receive(ws)
    assert (established["type"], established["connid"]) == ("established", job)
    await wake(sleeper)
    released = await receive(ws)
    assert (released["type"], released["connid"], released["reason"]) == ("released", job, "remote")
    await ws.close()


async def test_waiting_call_rings_after_the_current_one(client: Client, clock: Clock) -> None:
    """A second inbound call waits (UserBusy to answer it) and rings once the first ends."""
    ws, first = await ringing(client, clock)
    await ok2(client, clock, "AnswerCall", JobId=first)
    assert (await receive(ws))["type"] == "established"
    resp = await client.post(
        "/_emulator/calls", json={"agent": AGENT1.upn, "caller": "13900000009"}
    )
    assert resp.status == 201
    second = (await resp.json())["id"]
    assert (await receive(ws))["connid"] == second
    assert_refused2(*await call2(client, clock, "AnswerCall", JobId=second), 400, "UserBusy")
    released = await ok2(client, clock, "ReleaseCall", JobId=first)
    assert released["Data"]["UserContext"]["UserState"] == "RINGING"
    assert released["Data"]["UserContext"]["JobId"] == second
    await ok2(client, clock, "AnswerCall", JobId=second)
    await ws.close()


# --- the stand-in SDK files -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "generation", "global_name"),
    [("workbenchSdk2.js", "2.x", "window.WorkbenchSdk = Sdk"), ("cccWorkbenchSdk.js", "3.x", "")],
)
async def test_stand_in_sdk_files(
    client: Client, name: str, generation: str, global_name: str
) -> None:
    """The 2.x and 3.x stand-ins are served like the classic one, each naming its generation."""
    resp = await client.get(f"/_emulator/sdk/{name}")
    assert resp.status == 200 and resp.content_type == "text/javascript"
    text = await resp.text()
    assert f"const GENERATION = '{generation}';" in text
    assert "__GENERATION__" not in text and "getUserMedia(" not in text
    assert "window.CCCWorkbenchSDK = Sdk" in text and global_name in text
    again = await client.get(
        f"/_emulator/sdk/{name}", headers={"If-None-Match": resp.headers["ETag"]}
    )
    assert again.status == 304


async def test_object_parameter_as_json_text(client: Client, clock: Clock) -> None:
    """Criteria is JSON text of an object: it filters the call history; other forms are refused."""
    page = {"PageNumber": "1", "PageSize": "10"}
    all_rows = (await ok2(client, clock, "ListRecentCallDetailRecords", **page))["Data"]["List"]
    assert len(all_rows) == 2
    criteria = json.dumps({"phoneNumber": "135012345679"})
    body = await ok2(client, clock, "ListRecentCallDetailRecords", Criteria=criteria, **page)
    assert [r["CallingNumber"] for r in body["Data"]["List"]] == ["135012345679"]
    for bad in ({"Criteria": "[1]"}, {"Criteria": "{"}, {"Criteria.phoneNumber": "1"}):
        status, body = await call2(client, clock, "ListRecentCallDetailRecords", **page, **bad)
        assert_refused2(status, body, 400, "Parameter.Format")


async def test_ringing_out_puts_the_agent_on_break(
    client: Client, clock: Clock, sleeper: SteppedSleep
) -> None:
    """An inbound call nobody answers ends by itself; the agent is on break, RingingTimeout."""
    ws, job = await ringing(client, clock)
    await wake(sleeper)  # the caller gives up
    released = await receive(ws)
    assert (released["type"], released["connid"], released["reason"]) == (
        "released",
        job,
        "noanswer",
    )
    body = await ok2(client, clock, "ListAgentStates", PageNumber="1", PageSize="10")
    row = next(r for r in body["Data"]["List"] if r["AgentId"] == USER1)
    assert (row["State"], row["BreakCode"]) == ("BREAK", "RingingTimeout")
    await ws.close()


async def test_random_call_control_sequences_stay_well_formed(
    client: Client, clock: Clock, sleeper: SteppedSleep
) -> None:
    """Any order of call-control requests gets a model-shaped answer or a documented refusal."""
    rng = random.Random(16)
    ws = await softphone(client, clock)
    jobs, channels, succeeded = ["job-1"], ["ch-1"], set()
    for _ in range(3000):  # until every action has succeeded at least once
        if succeeded == set(RANDOM_ACTIONS):
            break
        action = rng.choice(RANDOM_ACTIONS)
        params = {
            "DeviceId": "d",
            "SignedSkillGroupIdList": json.dumps(["sales@ccc-demo"]),
            "Code": "lunch",
            "Callee": rng.choice([CUSTOMER, CUSTOMER, "x"]),
            # Mostly the latest call and the agent's leg of it, now and then a stale one.
            "JobId": jobs[-1] if rng.random() < 0.8 else rng.choice(jobs),
            "ChannelId": channels[-1] if rng.random() < 0.8 else rng.choice(channels),
            "Transferee": "13900000000",
            "Dtmf": "1",
        }
        if rng.random() < 0.08:
            pushed = {"agent": AGENT1.upn, "caller": CUSTOMER}
            jobs.append((await (await client.post("/_emulator/calls", json=pushed)).json())["id"])
        if rng.random() < 0.2 and not sleeper.pending.empty():
            _, timer = sleeper.pending.get_nowait()
            if not timer.done():  # a call released meanwhile cancelled its timer
                timer.set_result(None)  # the far party acts
        status, body = await call2(client, clock, action, **params)
        assert status in {200, 400, 403, 404}, body
        if status != 200:
            assert_refused2(status, body, status, body["Code"])
            continue
        succeeded.add(action)
        assert round_trip(action, body) == body
        context = body["Data"].get("CallContext")
        if context:
            jobs.append(context["JobId"])
            channels.append(context["ChannelContexts"][0]["ChannelId"])
    assert succeeded == set(RANDOM_ACTIONS)  # every path was reached
    await ws.close()


RANDOM_ACTIONS = [
    "SignInGroup",
    "SignOutGroup",
    "TakeBreak",
    "ReadyForService",
    "MakeCall",
    "AnswerCall",
    "ReleaseCall",
    "HoldCall",
    "RetrieveCall",
    "BlindTransfer",
    "ResetAgentState",
    "MuteCall",
    "SendDtmfSignaling",
]
