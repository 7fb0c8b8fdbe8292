"""End-to-end: the softphone API forwarder through the real gateway to the emulated CCC OpenAPI."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from stack import AGENT1, CLIENT_ID, CLIENT_SECRET, Browser, Stack

from ccc_gateway.emulator.keys import STORE_KEY
from ccc_gateway.ops.log import AUDIT_LOGGER

API = "/aliyun/ccc/api"
INSTANCE = "ccc-demo-instance"
CALLEE = "135012345678"
MakeStack = Callable[..., Awaitable[Stack]]
AgentOf = Callable[[Stack], Awaitable[Browser]]


async def signed_in(stack: Stack) -> Browser:
    """A browser logged in to the CRM as edward and signed in to Alibaba as agent1."""
    browser = stack.browser()
    try:
        await browser.login_crm()
        answer = await browser.sign_in(AGENT1)
        assert answer.status == 303
    except BaseException:
        await browser.close()
        raise
    return browser


@pytest.fixture
async def agent_of() -> AsyncIterator[AgentOf]:
    """`await agent_of(stack)`: a signed-in browser, closed after the test whatever happens."""
    browsers: list[Browser] = []

    async def make(stack: Stack) -> Browser:
        browsers.append(await signed_in(stack))
        return browsers[-1]

    yield make
    for browser in browsers:
        await browser.close()


async def call(
    browser: Browser, action: str | None, request: Any = None, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    """POST like the workbench SDK: `?action=Name` and a form field `request=<JSON>`."""
    params = {"action": action} if action is not None else {}
    data = kwargs.pop("data", {"request": json.dumps(request if request is not None else {})})
    async with await browser.post(API, params=params, data=data, **kwargs) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        return response.status, await response.json()


@pytest.fixture
async def agent(stack: Stack, agent_of: AgentOf) -> Browser:
    return await agent_of(stack)


def pop_calls(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The POP parameters of each call the emulator received (query and form merged)."""
    return [{**e["query"], **e["form"]} for e in entries]


# Every emulated action, in both token formats.


def _skill_group_id(body: dict[str, Any]) -> str:
    group_id: str = body["skillLevels"][0]["skill"]["skillGroupId"]
    return group_id


EXPECTED: dict[str, Callable[[dict[str, Any]], bool]] = {
    "ListSkillGroupsOfUser": lambda b: (
        bool(_skill_group_id(b))
        and isinstance(b["skillLevels"][0]["skill"]["outboundPhoneNumbers"], list)
    ),
    "RequestLoginInfo": lambda b: (
        b["loginInfo"]["userName"] != "" and b["loginInfo"]["roles"][0]["roleName"] == "Agent"
    ),
    "RefreshToken": lambda b: bool(b["token"]["signature"] and b["token"]["signData"]),
    "ListOutboundPhoneNumberOfUser": lambda b: (
        isinstance(b["outboundPhoneNumbers"], list)
        and len(b["numberList"]) == len(b["outboundPhoneNumbers"]) > 0
    ),
    "ListConfig": lambda b: b["configItems"] == [],
    "GetConfig": lambda b: b["configItem"] == {"name": "AutoAnswer", "value": "false"},
    "GetUser": lambda b: (
        b["user"]["userId"] == "ccc-user-agent1" and isinstance(b["user"]["skillLevels"], list)
    ),
    "GetServiceExtensions": lambda b: len(b["serviceExtensions"]) == 2,
    "PickGlobalOutboundNumbers": lambda b: b["dialNumberPairs"][0]["callee"]["number"] == CALLEE,
    "ListRecentCallRecords": lambda b: len(b["callDetailRecords"]["list"]) == 2,
    "GetTURNServerList": lambda b: isinstance(b["turnServerListConfig"], str),
    "GetTURNCredentials": lambda b: bool(b["username"] and b["password"]),
    "ListAgentDevices": lambda b: isinstance(b["agentDeviceList"], list),
    "AddAgentDevice": lambda b: isinstance(b["agentDeviceId"], int),
    "ModifyAgentDevice": lambda b: b["success"] is True,
    "ResetUserStatus": lambda b: b["success"] is True,
}


@pytest.mark.parametrize("token_format", ["bearer", "sts"])
async def test_every_emulated_action_succeeds_reshaped(
    make_stack: MakeStack, agent_of: AgentOf, token_format: str
):
    """All 16 workbench actions go through and come back reshaped, with Bearer or STS tokens."""
    stack = await make_stack(emulator_changes={"token_format": token_format})
    browser = await agent_of(stack)
    uid = stack.emulator_settings.agents[0].uid
    answers: dict[str, dict[str, Any]] = {}

    async def run(action: str, request: dict[str, Any]) -> None:
        status, body = await call(browser, action, request)
        assert status == 200, (action, body)
        assert body["success"] is True and body["code"] == "OK", (action, body)
        assert EXPECTED[action](body), (action, body)
        answers[action] = body

    await run("ListSkillGroupsOfUser", {"instanceId": INSTANCE})
    group = _skill_group_id(answers["ListSkillGroupsOfUser"])
    await run("RequestLoginInfo", {})
    await run("RefreshToken", {"instanceId": INSTANCE})
    await run("ListOutboundPhoneNumberOfUser", {"pageSize": 10})
    await run("ListConfig", {"configItem": ["a", "b"]})
    await run("GetConfig", {"name": "AutoAnswer"})
    await run("GetUser", {"userId": "ccc-user-agent1"})
    await run("GetServiceExtensions", {})
    await run(
        "PickGlobalOutboundNumbers",
        {"skillGroupId": [group], "calleeNumber": CALLEE, "count": 1, "isVirtual": False},
    )
    await run("ListRecentCallRecords", {"pageNumber": 1, "pageSize": 10})
    await run("GetTURNServerList", {})
    await run("GetTURNCredentials", {})
    await run("AddAgentDevice", {"browserVersion": "Chrome 120", "clientIp": "10.0.0.8"})
    await run("ListAgentDevices", {})
    device = answers["AddAgentDevice"]["agentDeviceId"]
    await run("ModifyAgentDevice", {"agentDeviceId": device, "isLogin": 0})
    await run("ResetUserStatus", {"ramIdList": [uid]})
    assert set(answers) == set(EXPECTED)

    sent = pop_calls(await stack.emulator_requests("/"))
    assert [p["Action"] for p in sent] == list(answers)
    assert all(p["InstanceId"] == INSTANCE for p in sent)
    by_action = {p["Action"]: p for p in sent}
    assert by_action["ListConfig"]["ConfigItem.1"] == "a"
    assert by_action["ListConfig"]["ConfigItem.2"] == "b"
    assert by_action["PickGlobalOutboundNumbers"]["SkillGroupId.1"] == group
    assert by_action["PickGlobalOutboundNumbers"]["IsVirtual"] == "false"
    assert by_action["ResetUserStatus"]["RamIdList.1"] == uid
    for params in sent:
        if token_format == "sts":
            assert params["Signature"] and params["SecurityToken"]
            assert params["AccessKeyId"].startswith("STS.")
            assert "BearerToken" not in params
        else:
            assert params["BearerToken"] and params["SignatureType"] == "BEARERTOKEN"
            assert "Signature" not in params and "SecurityToken" not in params


# The ways the SDK may send a call.


async def test_form_body_like_the_sdk_ignores_other_params(stack: Stack, agent: Browser):
    """`?action=` plus a form `request=<JSON>` and the SDK's ajaxOtherParams is forwarded."""
    data = {"request": json.dumps({"instanceId": INSTANCE}), "tenant": "x", "_": "1"}
    status, body = await call(agent, "GetServiceExtensions", data=data)
    assert status == 200 and body["success"] is True
    (sent,) = pop_calls(await stack.emulator_requests("/"))
    assert "Tenant" not in sent and "_" not in sent


async def test_action_in_the_form_body(agent: Browser):
    """`action` may travel in the form body instead of the query."""
    data = {"action": "GetServiceExtensions", "request": "{}"}
    status, body = await call(agent, None, data=data)
    assert status == 200 and body["serviceExtensions"]


async def test_multipart_form_body(agent: Browser):
    """A multipart form (FormData in the browser) works like a urlencoded one."""
    form = aiohttp.FormData(
        {"action": "GetServiceExtensions", "request": "{}"}, default_to_multipart=True
    )
    status, body = await call(agent, None, data=form)
    assert status == 200 and body["success"] is True


async def test_get_with_query_parameters(agent: Browser):
    """GET /aliyun/ccc/api?action=…&request=… works (ajaxMethod 'get')."""
    params = {"action": "GetConfig", "request": json.dumps({"name": "Region"})}
    async with await agent.get(API, params=params, headers=agent.origin_headers()) as response:
        assert response.status == 200
        assert (await response.json())["configItem"]["value"] == "cn-shanghai"


@pytest.mark.parametrize(
    "request_value", [{"name": "Region"}, json.dumps({"name": "Region"})], ids=["object", "text"]
)
async def test_json_body(agent: Browser, request_value: Any):
    """A JSON body {"action", "request"} works, with request as an object or as JSON text."""
    payload = {"action": "GetConfig", "request": request_value, "other": 1}
    async with await agent.post(API, json=payload) as response:
        assert response.status == 200
        assert (await response.json())["configItem"]["value"] == "cn-shanghai"


# Sign-in states.


async def test_expired_token_is_refreshed_transparently(stack: Stack, agent: Browser):
    """Past the access token's expiry the call still succeeds after one refresh at Alibaba."""
    stack.clock.advance(3600 + 10)
    status, body = await call(agent, "GetServiceExtensions")
    assert status == 200 and body["success"] is True
    status, _ = await call(agent, "GetServiceExtensions")
    assert status == 200
    grants = [r["form"]["grant_type"] for r in await stack.emulator_requests("/v1/token")]
    assert grants == ["authorization_code", "refresh_token"]


async def test_signed_out_gets_401_with_login_not_a_redirect(browser: Browser):
    """A CRM user who never signed in to Alibaba gets 401 NotAuthenticated and the login URL."""
    await browser.login_crm()
    status, body = await call(browser, "GetServiceExtensions")
    assert status == 401
    assert body["errorCode"] == "NotAuthenticated" and body["login"] == "/aliyun/auth"


async def test_revoked_sign_in_gets_401(stack: Stack, agent: Browser):
    """After POST /aliyun/revoke the API answers 401 NotAuthenticated."""
    async with await agent.post("/aliyun/revoke") as response:
        assert response.status == 200
    status, body = await call(agent, "GetServiceExtensions")
    assert status == 401
    assert body["errorCode"] == "NotAuthenticated" and body["login"] == "/aliyun/auth"
    assert await stack.emulator_requests("/") == []


async def test_crm_user_switch_gets_403(stack: Stack, agent: Browser):
    """Another CRM user on the same browser cannot use edward's Alibaba sign-in."""
    await agent.logout_crm()
    await agent.login_crm("sissi", "5678")
    status, body = await call(agent, "GetServiceExtensions")
    assert status == 403 and body["errorCode"] == "CrmUserMismatch"


@pytest.mark.parametrize(
    ("token_format", "status", "code"),
    [("bearer", 401, "InvalidBearerToken.Expired"), ("sts", 400, "InvalidSecurityToken.Expired")],
)
async def test_token_expired_at_alibaba_asks_for_sign_in(
    make_stack: MakeStack, agent_of: AgentOf, token_format: str, status: int, code: str
):
    """A token Alibaba no longer accepts gives the POP status and code plus the login URL."""
    stack = await make_stack(emulator_changes={"token_format": token_format})
    browser = await agent_of(stack)
    await stack.emulator_knob("POST", "_emulator/tokens/expire", {"upn": AGENT1[0]})
    got, body = await call(browser, "GetServiceExtensions")
    assert got == status
    assert body["errorCode"] == code and body["login"] == "/aliyun/auth"
    assert body["requestId"] and body["message"]


async def test_token_revoked_directly_at_alibaba_asks_for_sign_in(stack: Stack, agent: Browser):
    """Revoking the refresh token at Alibaba (not through the gateway) gives 401 with login."""
    store = stack.emulator.app[STORE_KEY]
    (refresh_token,) = store.refresh_tokens
    async with aiohttp.ClientSession() as client:
        form = {"token": refresh_token, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
        async with client.post(stack.emulator_url / "v1/revoke", data=form) as response:
            assert response.status == 200
    status, body = await call(agent, "GetServiceExtensions")
    assert status == 401
    assert body["errorCode"] == "InvalidBearerToken.Invalid"
    assert body["login"] == "/aliyun/auth"


# Policy.


@pytest.mark.parametrize("action", ["DeleteInstance", "CreateUser"])
async def test_action_outside_the_allow_list_is_403(stack: Stack, agent: Browser, action: str):
    """Administrative actions are refused with 403 ActionNotAllowed and never reach Alibaba."""
    status, body = await call(agent, action, {"instanceId": INSTANCE})
    assert status == 403 and body["errorCode"] == "ActionNotAllowed"
    assert await stack.emulator_requests("/") == []


async def test_star_allow_list_forwards_unknown_actions(make_stack: MakeStack, agent_of: AgentOf):
    """With allowed_actions "*" an action the emulator lacks gets its 404 InvalidAction.NotFound."""
    stack = await make_stack(ccc={"allowed_actions": "*"})
    browser = await agent_of(stack)
    status, body = await call(browser, "DeleteInstance", {})
    assert status == 404
    assert body["errorCode"] == "InvalidAction.NotFound"
    assert body["requestId"] and "login" not in body


@pytest.mark.parametrize(
    "request_value",
    [{"instanceId": "other-instance"}, {"InstanceId": "other"}, {"INSTANCEID": "x"}],
)
async def test_other_instance_is_403(stack: Stack, agent: Browser, request_value: dict[str, str]):
    """A request naming another CCC instance is refused with 403 InstanceNotAllowed."""
    status, body = await call(agent, "GetServiceExtensions", request_value)
    assert status == 403 and body["errorCode"] == "InstanceNotAllowed"
    assert await stack.emulator_requests("/") == []


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example", "Sec-Fetch-Site": None},
        {"Origin": None, "Sec-Fetch-Site": "cross-site"},
        {"Origin": None, "Sec-Fetch-Site": None},
    ],
    ids=["other-origin", "sec-fetch-cross-site", "no-origin"],
)
async def test_cross_site_call_is_403(stack: Stack, agent: Browser, headers: dict[str, str | None]):
    """A call from another site is refused even though the session cookie is valid."""
    sent = {k: v for k, v in headers.items() if v is not None}
    async with await agent.client.post(
        agent.url(API),
        params={"action": "GetServiceExtensions"},
        data={"request": "{}"},
        headers=sent,
    ) as response:
        assert response.status == 403
        assert (await response.json())["errorCode"] == "CrossSiteRequest"
    assert await stack.emulator_requests("/") == []


# Bad input.


@pytest.mark.parametrize(
    ("action", "data", "fragment"),
    [
        (None, {"request": "{}"}, "missing"),
        ("delete-instance", {"request": "{}"}, "not a valid action name"),
        ("GetConfig", {"request": "{name: 1}"}, "not valid JSON"),
        ("GetConfig", {"request": "[1, 2]"}, "must be a JSON object"),
        ("GetConfig", {"request": json.dumps({"a b": 1})}, "'a b' is not allowed"),
        ("GetConfig", {"request": json.dumps({"a": [[[[[[1]]]]]]})}, "deeper than 5"),
        ("GetConfig", {"request": json.dumps({"signature": "x"})}, "set by the gateway"),
    ],
    ids=["no-action", "bad-action", "not-json", "list", "bad-key", "too-deep", "reserved"],
)
async def test_malformed_call_is_400(
    stack: Stack, agent: Browser, action: str | None, data: dict[str, str], fragment: str
):
    """Malformed input is a 400 with the contract body saying what is wrong."""
    status, body = await call(agent, action, data=data)
    assert status == 400, body
    assert body["errorCode"] == "BadRequest" and fragment in body["message"]
    assert body["requestId"]
    assert await stack.emulator_requests("/") == []


async def test_unsupported_body_type_is_415(agent: Browser):
    """A body that is neither a form nor JSON is refused with 415."""
    headers = {"Content-Type": "text/plain"}
    status, body = await call(agent, "GetConfig", data=b"request={}", headers=headers)
    assert status == 415 and body["errorCode"] == "UnsupportedMediaType"


async def _chunks(size: int) -> AsyncIterator[bytes]:
    yield b"request=" + b"%20" * (size // 3)


@pytest.mark.parametrize(
    ("limit", "chunked"),
    [(1024, False), (1024, True), (64 * 1024, True)],
    ids=["content-length", "chunked-over-limit", "chunked-over-client-max-size"],
)
async def test_oversized_body_is_413(
    make_stack: MakeStack, agent_of: AgentOf, limit: int, chunked: bool
):
    """A body over ccc.max_request_size is refused with 413 and the contract body."""
    stack = await make_stack(ccc={"max_request_size": limit})
    browser = await agent_of(stack)
    data: Any = _chunks(limit * 2) if chunked else b"request=" + b"%20" * limit
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    status, body = await call(browser, "GetConfig", data=data, headers=headers)
    assert status == 413
    assert body["errorCode"] == "PayloadTooLarge" and body["requestId"]
    assert await stack.emulator_requests("/") == []


# Answers.


async def test_reshape_off_passes_pop_json_through(make_stack: MakeStack, agent_of: AgentOf):
    """With reshape: false the SDK gets the POP JSON unchanged (useOpenApiSdk pages)."""
    stack = await make_stack(ccc={"reshape": False})
    browser = await agent_of(stack)
    status, body = await call(browser, "ListSkillGroupsOfUser")
    assert status == 200
    assert body["Success"] is True and body["RequestId"]
    assert body["SkillLevels"]["SkillLevel"][0]["Skill"]["SkillGroupId"]


async def test_business_error_reaches_the_sdk_reshaped(agent: Browser):
    """Another agent's UserId is a Success:false answer passed on with HTTP 200, reshaped."""
    status, body = await call(agent, "GetUser", {"userId": "ccc-user-agent2"})
    assert status == 200
    assert body["success"] is False and body["code"] == "NoPermission.User"
    assert body["httpStatusCode"] == 403 and body["requestId"]


async def test_emulator_down_is_502_and_the_crm_still_works(stack: Stack, agent: Browser):
    """With Alibaba unreachable the API answers 502 while CRM pages are still served."""
    await stack.emulator.close()
    status, body = await call(agent, "GetServiceExtensions")
    assert status == 502 and body["errorCode"] == "BadGateway"
    async with await agent.get("/customers") as response:
        assert response.status == 200


async def test_emulator_too_slow_is_504(make_stack: MakeStack, agent_of: AgentOf):
    """A CCC OpenAPI slower than ccc.timeout gives 504."""
    stack = await make_stack(ccc={"timeout": 0.5})
    browser = await agent_of(stack)
    await stack.emulator_knob("POST", "_emulator/faults", {"endpoint": "pop", "delay": 1.0})
    status, body = await call(browser, "GetServiceExtensions")
    assert status == 504 and body["errorCode"] == "GatewayTimeout"


async def test_forced_sts_with_a_bearer_token_is_502(
    make_stack: MakeStack, agent_of: AgentOf, caplog: pytest.LogCaptureFixture
):
    """ccc.auth 'sts' while Alibaba issues Bearer tokens is a configuration error: 502, logged."""
    stack = await make_stack(ccc={"auth": "sts"})
    browser = await agent_of(stack)
    with caplog.at_level(logging.ERROR, logger="ccc_gateway.ccc"):
        status, body = await call(browser, "GetServiceExtensions")
    assert status == 502 and "ccc.auth" in body["message"]
    assert any(r.levelno == logging.ERROR and "ccc.auth" in r.getMessage() for r in caplog.records)
    assert await stack.emulator_requests("/") == []


async def test_forced_bearer_sends_an_sts_token_as_bearer(make_stack: MakeStack, agent_of: AgentOf):
    """ccc.auth 'bearer' sends even an AliyunSTS access token as BearerToken, unsigned."""
    stack = await make_stack(ccc={"auth": "bearer"}, emulator_changes={"token_format": "sts"})
    browser = await agent_of(stack)
    status, _ = await call(browser, "GetServiceExtensions")
    assert status == 200
    (sent,) = pop_calls(await stack.emulator_requests("/"))
    assert sent["SignatureType"] == "BEARERTOKEN" and "Signature" not in sent


@pytest.mark.parametrize("token_format", ["bearer", "sts"])
async def test_audit_line_without_numbers_or_secrets(
    make_stack: MakeStack, agent_of: AgentOf, caplog: pytest.LogCaptureFixture, token_format: str
):
    """Each forwarded call is audited (user, agent, action, status, POP ids); nothing secret."""
    stack = await make_stack(emulator_changes={"token_format": token_format})
    browser = await agent_of(stack)
    with caplog.at_level(logging.DEBUG):
        status, body = await call(browser, "ListRecentCallRecords")
        await call(browser, "GetConfig", {"name": "DefaultOutboundNumber", "x": CALLEE})
    assert status == 200
    audit = [r for r in caplog.records if r.name == AUDIT_LOGGER]
    assert len(audit) == 2
    fields = audit[0].fields  # type: ignore[attr-defined]
    assert fields["crm_user"] == "edward" and fields["agent"] == AGENT1[0]
    assert fields["action"] == "ListRecentCallRecords" and fields["status"] == 200
    assert fields["pop_code"] == "OK" and fields["pop_request_id"] == body["requestId"]
    assert fields["duration_ms"] >= 0
    store = stack.emulator.app[STORE_KEY]
    secrets = [CALLEE, "135012345679"]
    for token in store.access_tokens.values():
        secrets.append(token.value)
        if token.sts is not None:
            secrets += [token.sts.access_key_secret, token.sts.security_token]
    logged = "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    assert not [s for s in secrets if s in logged]
