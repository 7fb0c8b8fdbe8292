"""End-to-end: the CCC 2.0 (2020-07-01) forwarder through the real gateway to the emulated
CCC OpenAPI, in both token formats (Bearer, and STS signatures).

The parameter names the gateway sends are checked against the official client's
(`alibabacloud-ccc20200701`, tests/oracles/ccc2_models.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from oracles.ccc2_models import request_parameter_names
from stack import AGENT1, Browser, Stack

from ccc_gateway.ops.log import AUDIT_LOGGER

API = "/aliyun/ccc/api"
INSTANCE = "ccc-demo"
USER1, USER2 = "agent1@ccc-demo", "agent2@ccc-demo"
CUSTOMER = "135012345678"
GROUPS = ["sales@ccc-demo"]
# What the 2.x SDK puts in the query besides the action (never forwarded).
SDK_QUERY = {"product": "CloudCallCenter", "version": "2020-07-01", "region": "cn-shanghai"}
# The common and authentication parameters of every POP call (not the action's own).
COMMON = {"Action", "Version", "Format", "RegionId", "Timestamp", "SignatureNonce"}
AUTH = {"BearerToken", "SignatureType", "Signature", "SignatureMethod", "SignatureVersion"}
AUTH |= {"AccessKeyId", "SecurityToken"}
MakeStack = Callable[..., Awaitable[Stack]]
V2 = {"version": "2020-07-01", "instance_id": INSTANCE}


@pytest.fixture
async def v2_agent(
    make_stack: MakeStack, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Stack, Browser]]:
    """A 2.0 gateway (token format from the test's `token_format` parameter, default bearer)
    and a browser signed in to the CRM as edward and to Alibaba as agent1."""
    token_format = getattr(request, "param", "bearer")
    stack = await make_stack(ccc=V2, emulator_changes={"token_format": token_format})
    browser = stack.browser()
    try:
        await browser.login_crm()
        assert (await browser.sign_in(AGENT1)).status == 303
        yield stack, browser
    finally:
        await browser.close()


async def call(
    browser: Browser, action: str, request: Any = None, *, query: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """POST like the 2.x SDK: `?action=Name&product=…&version=…&region=…`, form `request`."""
    params = {"action": action, **(SDK_QUERY if query is None else query)}
    data = {"request": json.dumps(request if request is not None else {})}
    async with await browser.post(API, params=params, data=data) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        return response.status, await response.json()


async def sent(stack: Stack) -> list[dict[str, Any]]:
    """The POP parameters of each call the emulator received (query and form merged)."""
    return [{**e["query"], **e["form"]} for e in await stack.emulator_requests("/")]


def business(params: dict[str, Any]) -> set[str]:
    return set(params) - COMMON - AUTH


BOTH = pytest.mark.parametrize("v2_agent", ["bearer", "sts"], indirect=True)


@BOTH
async def test_softphone_sequence_passes_pop_answers_through(v2_agent: tuple[Stack, Browser]):
    """The SDK's calls (camelCase or PascalCase keys, lists as JSON) reach POP under the
    official names, lists as one JSON-text parameter, and POP's JSON comes back unchanged."""
    stack, browser = v2_agent
    status, details = await call(browser, "GetLoginDetails", {})
    assert status == 200 and details["Code"] == "OK" and details["HttpStatusCode"] == 200
    assert details["Data"]["UserId"] == USER1 and details["Data"]["Signature"]
    status, levels = await call(browser, "ListSkillLevelsOfUser", {"pageNumber": 1, "PageSize": 10})
    assert status == 200 and isinstance(levels["Data"]["List"], list)
    signin = {"deviceId": "dev-1", "signedSkillGroupIdList": GROUPS, "userId": USER1}
    status, body = await call(browser, "SignInGroup", signin)
    assert status == 200 and body["Data"]["UserId"] == USER1
    status, body = await call(browser, "ReadyForService", {"UserId": USER1})
    assert status == 200 and body["Data"]["UserState"] == "READY"
    status, body = await call(browser, "MakeCall", {"callee": CUSTOMER, "timeoutSeconds": 60})
    assert status == 200 and body["Data"]["CallContext"]["JobId"].startswith("job-")

    calls = await sent(stack)
    actions = [p["Action"] for p in calls]
    assert actions == [
        "GetLoginDetails",
        "ListSkillLevelsOfUser",
        "SignInGroup",
        "ReadyForService",
        "MakeCall",
    ]
    for params in calls:
        assert params["Version"] == "2020-07-01" and params["InstanceId"] == INSTANCE
        assert business(params) <= request_parameter_names(params["Action"]), params["Action"]
        assert not {"Product", "Region", "product", "version", "region"} & set(params)
    by_action = {p["Action"]: p for p in calls}
    assert by_action["SignInGroup"]["SignedSkillGroupIdList"] == '["sales@ccc-demo"]'
    assert not [k for k in by_action["SignInGroup"] if k.startswith("SignedSkillGroupIdList.")]
    assert by_action["MakeCall"]["TimeoutSeconds"] == "60"


@BOTH
async def test_business_error_keeps_pops_status_and_body(v2_agent: tuple[Stack, Browser]):
    """A 2.0 business error (HTTP 4xx) reaches the SDK with POP's status, Code and RequestId."""
    stack, browser = v2_agent
    status, body = await call(browser, "AnswerCall", {"JobId": "job-404"})
    assert status >= 400 and body["HttpStatusCode"] == status
    assert body["Code"] != "OK" and body["RequestId"]
    assert set(body) == {"RequestId", "Code", "Message", "HttpStatusCode"}
    assert [p["Action"] for p in await sent(stack)] == ["AnswerCall"]


@pytest.mark.parametrize(
    ("action", "request_", "code"),
    [
        ("GetLoginDetails", {"InstanceId": "other"}, "InstanceNotAllowed"),
        (
            "SignInGroup",
            {"DeviceId": "d", "SignedSkillGroupIdList": ["a@other"]},
            "InstanceNotAllowed",
        ),
        (
            "SignInGroup",
            {"DeviceId": "d", "SignedSkillGroupIdList": '["a@other"]'},
            "InstanceNotAllowed",
        ),
        ("BlindTransfer", {"JobId": "job-1", "Transferee": "agent2@other"}, "InstanceNotAllowed"),
        ("CreateUser", {"LoginName": "x"}, "ActionNotAllowed"),
        ("ListConfig", {}, "ActionNotAllowed"),
    ],
)
async def test_refusals_are_pop_shaped_and_nothing_is_forwarded(
    v2_agent: tuple[Stack, Browser], action: str, request_: dict[str, Any], code: str
):
    """The gateway's own 403s carry POP's shape; the emulator never sees the call."""
    stack, browser = v2_agent
    status, body = await call(browser, action, request_)
    assert status == 403
    assert body["Code"] == code and body["HttpStatusCode"] == 403
    assert set(body) == {"RequestId", "Code", "Message", "HttpStatusCode"} and body["RequestId"]
    assert await sent(stack) == []


async def test_version_of_the_other_generation_is_refused(v2_agent: tuple[Stack, Browser]):
    """`version=2017-07-05` from a classic SDK is 400 VersionMismatch, never forwarded."""
    stack, browser = v2_agent
    query = {**SDK_QUERY, "version": "2017-07-05"}
    status, body = await call(browser, "GetLoginDetails", {}, query=query)
    assert (status, body["Code"], body["HttpStatusCode"]) == (400, "VersionMismatch", 400)
    assert await sent(stack) == []
    status, _ = await call(browser, "GetLoginDetails", {}, query={})  # no version: ours
    assert status == 200


async def test_not_signed_in_is_pop_shaped_with_the_login_url(make_stack: MakeStack):
    """401 NotAuthenticated in POP's shape, plus `login` (the SDK shows it like any error)."""
    stack = await make_stack(ccc=V2)
    browser = stack.browser()
    try:
        await browser.login_crm()
        status, body = await call(browser, "GetLoginDetails", {})
    finally:
        await browser.close()
    assert status == 401
    assert body["Code"] == "NotAuthenticated" and body["HttpStatusCode"] == 401
    assert body["login"] == "/aliyun/auth" and body["RequestId"]


@BOTH
async def test_user_id_is_pinned_to_the_agent(v2_agent: tuple[Stack, Browser]):
    """A UserId other than the agent's own is 403 UserNotAllowed; the gateway asks
    GetLoginDetails itself once when the first call needs the agent's id."""
    stack, browser = v2_agent
    status, body = await call(browser, "ListDevices", {"UserId": USER2})
    assert (status, body["Code"]) == (403, "UserNotAllowed")
    assert [p["Action"] for p in await sent(stack)] == ["GetLoginDetails"]
    status, body = await call(browser, "ListDevices", {"userId": USER1})
    assert status == 200, body
    status, body = await call(browser, "GetTurnCredentials", {"UserId": USER1})
    assert status == 200, body
    assert [p["Action"] for p in await sent(stack)] == [
        "GetLoginDetails",
        "ListDevices",
        "GetTurnCredentials",
    ]


async def test_user_id_learned_from_the_softphones_own_call(v2_agent: tuple[Stack, Browser]):
    """After the softphone's GetLoginDetails passes through, no extra call is needed."""
    stack, browser = v2_agent
    assert (await call(browser, "GetLoginDetails", {}))[0] == 200
    assert (await call(browser, "ListDevices", {"UserId": USER1}))[0] == 200
    assert [p["Action"] for p in await sent(stack)] == ["GetLoginDetails", "ListDevices"]


async def test_supervisor_targets_may_name_another_agent(v2_agent: tuple[Stack, Browser]):
    """MonitorCall's MonitoredUserId names a colleague and is forwarded (CCC checks the
    role); its own UserId must still be the agent's."""
    stack, browser = v2_agent
    _, body = await call(browser, "MonitorCall", {"MonitoredUserId": USER2})
    assert body["Code"] not in {"UserNotAllowed", "InstanceNotAllowed", "ActionNotAllowed"}
    (params,) = await sent(stack)
    assert params["Action"] == "MonitorCall" and params["MonitoredUserId"] == USER2
    status, body = await call(browser, "MonitorCall", {"MonitoredUserId": USER1, "UserId": USER2})
    assert (status, body["Code"]) == (403, "UserNotAllowed")


@BOTH
async def test_login_details_secrets_reach_no_log_line(
    v2_agent: tuple[Stack, Browser], caplog: pytest.LogCaptureFixture
):
    """GetLoginDetails' Signature, UserKey, ChatLoginToken and the TURN password appear in
    no log record at any level; the audit line names action, agent, outcome and the call's
    number masked."""
    _, browser = v2_agent
    with caplog.at_level(logging.DEBUG):
        status, details = await call(browser, "GetLoginDetails", {})
        assert status == 200
        status, turn = await call(browser, "GetTurnCredentials", {})
        assert status == 200
        await call(browser, "MakeCall", {"Callee": CUSTOMER})
    data = details["Data"]
    secrets = [data[k] for k in ("Signature", "Signature2", "UserKey", "UserKey2") if data.get(k)]
    secrets += [v for v in (data.get("ChatLoginToken"), turn["Data"]["Password"]) if v]
    assert secrets
    logged = "\n".join(
        f"{r.getMessage()} {getattr(r, 'fields', '')} {r.args}" for r in caplog.records
    )
    assert [s for s in secrets if s in logged] == []
    assert CUSTOMER not in logged
    audit = [r.fields for r in caplog.records if r.name == AUDIT_LOGGER]  # type: ignore[attr-defined]
    assert [(f["action"], f["agent"], f["status"]) for f in audit][:2] == [
        ("GetLoginDetails", AGENT1[0], 200),
        ("GetTurnCredentials", AGENT1[0], 200),
    ]
    assert audit[0]["pop_code"] == "OK" and "number" not in audit[0]
    (dialled,) = [f for f in audit if f["action"] == "MakeCall"]
    masked = dialled["number"]
    assert masked != CUSTOMER and "*" in masked
    assert masked[:3] == CUSTOMER[:3] and masked[-2:] == CUSTOMER[-2:]


async def test_reshape_true_gives_the_sdk_lower_camel_answers(make_stack: MakeStack):
    """ccc.reshape: true with 2.0 reshapes answers as classic does (an operator's switch)."""
    stack = await make_stack(ccc={**V2, "reshape": True})
    browser = stack.browser()
    try:
        await browser.login_crm()
        await browser.sign_in(AGENT1)
        status, body = await call(browser, "GetLoginDetails", {})
        assert status == 200 and body["data"]["userId"] == USER1
        # The id is learned from the reshaped answer too: no second GetLoginDetails.
        assert (await call(browser, "ListDevices", {"UserId": USER1}))[0] == 200
    finally:
        await browser.close()
    assert [p["Action"] for p in await sent(stack)] == ["GetLoginDetails", "ListDevices"]


async def test_classic_gateway_refuses_a_2_0_sdk(make_stack: MakeStack):
    """A classic gateway answers a 2.0 SDK's call 400 VersionMismatch in the classic body."""
    stack = await make_stack()
    browser = stack.browser()
    try:
        await browser.login_crm()
        await browser.sign_in(AGENT1)
        status, body = await call(browser, "GetLoginDetails", {})
    finally:
        await browser.close()
    assert (status, body["errorCode"]) == (400, "VersionMismatch")
    assert set(body) == {"requestId", "errorCode", "message"}
    assert await sent(stack) == []


@BOTH
async def test_json_body_is_accepted_too(v2_agent: tuple[Stack, Browser]):
    """A JSON body `{"action", "request": {...}}` is forwarded like the SDK's form."""
    stack, browser = v2_agent
    request = {"signedSkillGroupIdList": GROUPS, "deviceId": "dev-1"}
    body = {"action": "SignInGroup", "request": request}
    async with await browser.post(API, params=SDK_QUERY, json=body) as response:
        assert response.status == 200, await response.text()
        assert (await response.json())["Data"]["UserId"] == USER1
    (params,) = await sent(stack)
    assert params["SignedSkillGroupIdList"] == '["sales@ccc-demo"]'


async def test_pop_gateway_error_passes_with_its_status(v2_agent: tuple[Stack, Browser]):
    """An OpenAPI-level failure (503 here) reaches the SDK with POP's status and body."""
    stack, browser = v2_agent
    await stack.emulator_knob(
        "POST", "_emulator/faults", {"endpoint": "pop", "status": 503, "error": "Unavailable"}
    )
    status, body = await call(browser, "ListDevices", {})
    assert status == 503 and body["Code"] == "Unavailable" and body["RequestId"]
