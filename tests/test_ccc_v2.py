"""Unit tests of the CCC 2.0 (2020-07-01) forwarder's rules: parameters, pinning, refusals.

ccc_gateway.ccc.pop.ccc2 (pure), ccc.request's 2.0 path, and the sign-in's learned CCC id.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import MultiDict
from oracles.ccc2_models import request_parameter_names

from ccc_gateway.auth.oauth.tokens import TokenSet
from ccc_gateway.ccc.pop.actions import (
    CCC2_ACTIONS,
    CCC2_VERSION,
    CLASSIC_VERSION,
    GET_ACTIONS,
    WORKBENCH_ACTIONS,
    ActionPolicy,
    default_actions,
)
from ccc_gateway.ccc.pop.ccc2 import (
    ids_of_other_instances,
    json_text_params,
    login_user_id,
    user_id_values,
)
from ccc_gateway.ccc.pop.errors import RequestShapeError
from ccc_gateway.ccc.request import check_version, prepare_call, withheld
from ccc_gateway.http.errors import BadRequest, Forbidden, GatewayError
from ccc_gateway.sessions.signin import Agent, SignIn

INSTANCE = "ccc-demo"
POLICY = ActionPolicy(CCC2_ACTIONS)
# The contract's 2.0 default allow-list, verbatim.
CONTRACT_LIST = """GetLoginDetails ListSkillLevelsOfUser ListOutboundNumbersOfUser
ListConfigItems GetTurnServerList GetTurnCredentials ListPrivilegesOfUser ListDevices
PickOutboundNumbers GetNumberLocation ListRealtimeAgentStates ListAgentStates ResetAgentState
ListRecentCallDetailRecords ListSkillGroups ListBriefSkillGroups ListHistoricalAgentReport
SaveTerminalLog SignInGroup SignOutGroup TakeBreak ReadyForService MakeCall AnswerCall
ReleaseCall HoldCall RetrieveCall BlindTransfer InitiateAttendedTransfer
CompleteAttendedTransfer CancelAttendedTransfer SendDtmfSignaling MonitorCall BargeInCall
InterceptCall CoachCall MuteCall UnmuteCall LaunchSurvey""".split()


def v2_call(request: Any, action: str = "MakeCall", **query: str) -> tuple[str, dict[str, str]]:
    body = MultiDict({"request": json.dumps(request)})
    return prepare_call(
        MultiDict({"action": action, **query}),
        body,
        POLICY,
        INSTANCE,
        version=CCC2_VERSION,
        json_lists=True,
    )


def refusal(request: Any, action: str = "MakeCall", **query: str) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        v2_call(request, action, **query)
    return caught.value


# ---------------------------------------------------------------- the allow-list


def test_default_allow_list_is_the_contracts():
    """2.0's default list is exactly the contract's: SDK actions, SignInGroup, supervisors."""
    assert sorted(CCC2_ACTIONS) == sorted(CONTRACT_LIST)
    assert default_actions(CCC2_VERSION) == CCC2_ACTIONS
    assert default_actions(CLASSIC_VERSION) == WORKBENCH_ACTIONS


def test_every_allowed_action_exists_in_the_official_client():
    """Each 2.0 action on the list is an action of the official 2020-07-01 SDK."""
    for action in CCC2_ACTIONS:
        assert "InstanceId" in request_parameter_names(action), action


def test_credential_actions_are_never_served_over_get():
    """GetLoginDetails and GetTurnCredentials hand out credentials: POST only."""
    assert "GetLoginDetails" not in GET_ACTIONS and "GetTurnCredentials" not in GET_ACTIONS
    assert "ListSkillLevelsOfUser" in GET_ACTIONS


# ---------------------------------------------------------------- parameters


def test_lists_and_objects_become_one_json_text_parameter():
    """A JSON list or object is sent as its compact JSON text, never Key.N."""
    params = json_text_params(
        {"signedSkillGroupIdList": ["a@x", "b@x"], "criteria": {"phoneNumber": "1", "n": 2}}
    )
    assert params == {
        "SignedSkillGroupIdList": '["a@x","b@x"]',
        "Criteria": '{"phoneNumber":"1","n":2}',
    }


def test_strings_pass_unchanged_and_scalars_as_classic():
    """Strings (JSON text included) pass as they are; booleans lower-case; numbers decimal."""
    params = json_text_params(
        {"SkillGroupIdList": '["a@x"]', "outboundScenario": True, "pageSize": 10, "x": 1.5}
    )
    assert params == {
        "SkillGroupIdList": '["a@x"]',
        "OutboundScenario": "true",
        "PageSize": "10",
        "X": "1.5",
    }


def test_names_get_their_first_letter_upper_cased_and_none_is_dropped():
    """camelCase and PascalCase give the same POP name; None values are not sent."""
    assert json_text_params({"jobId": "j", "ChannelId": "c", "deviceId": None}) == {
        "JobId": "j",
        "ChannelId": "c",
    }


@pytest.mark.parametrize(
    "request_",
    [
        {"userId": "a", "UserId": "b"},  # two spellings of one name
        {"Key.1": "a"},  # the classic flattening is not 2.0
        {"1abc": "a"},
        {"a b": "a"},
        {"x": [float("nan")]},
        {"x": ["\ud800"]},
        ["not", "an", "object"],
    ],
)
def test_bad_parameters_are_refused(request_: Any):
    """Names outside the grammar, collisions and unsendable values are RequestShapeErrors."""
    with pytest.raises(RequestShapeError):
        json_text_params(request_)


# ---------------------------------------------------------------- pinning


def test_instance_id_is_pinned_and_added():
    """InstanceId is the configured instance whether absent, empty or given as ours."""
    for request in ({}, {"instanceId": ""}, {"InstanceId": INSTANCE}):
        _, params = v2_call({"Callee": "1", **request})
        assert params["InstanceId"] == INSTANCE


@pytest.mark.parametrize(
    "request_",
    [
        {"instanceId": "other"},
        {"InstanceId": [INSTANCE]},
        {"SkillGroupId": "skg@other"},
        {"SignedSkillGroupIdList": ["a@ccc-demo", "b@other"]},
        {"SignedSkillGroupIdList": '["a@ccc-demo", "b@other"]'},
        {"AgentIdList": [["nested@other"]]},
        {"Transferee": " agent2@other "},
    ],
)
def test_ids_of_another_instance_are_403(request_: dict[str, Any]):
    """Any name@instance id of another instance, also inside JSON-text lists, is refused."""
    error = refusal(request_)
    assert isinstance(error, Forbidden) and error.error_code == "InstanceNotAllowed"


def test_ids_of_this_instance_and_free_text_pass():
    """Our own ids pass; free text that merely contains an @ is not an id."""
    params = {
        "SignedSkillGroupIdList": '["a@ccc-demo"]',
        "Transferee": "agent2@ccc-demo",
        "Tags": "call me @ 5pm",
        "Content": '{"who": "x@elsewhere.com"}',
        "Callee": "135012345678",
    }
    assert ids_of_other_instances(params, INSTANCE) == []
    assert ids_of_other_instances({"A": "x@ccc-demo2"}, INSTANCE) == ["A"]


def test_user_id_values_any_spelling():
    """Every non-empty UserId is found, whatever the case of its name."""
    params = {"UserId": "a@x", "USERID": "b@x", "MonitoredUserId": "c@x", "Userid": ""}
    assert user_id_values(params) == ["a@x", "b@x"]


def test_login_user_id_from_pop_or_reshaped_answer():
    """The agent's id is read from Data.UserId, or data.userId when reshaped."""
    assert login_user_id({"Data": {"UserId": "a@x", "Signature": "s"}}) == "a@x"
    assert login_user_id({"data": {"userId": "a@x"}}) == "a@x"
    assert login_user_id({"Data": {"UserId": ""}}) is None
    assert login_user_id({"Code": "OK"}) is None


# ---------------------------------------------------------------- version and refusals


def test_sdk_query_is_understood_and_not_forwarded():
    """product, version and region from the SDK's query never become POP parameters."""
    action, params = v2_call(
        {"callee": "1"}, product="CloudCallCenter", version=CCC2_VERSION, region="cn-beijing"
    )
    assert action == "MakeCall" and params == {"Callee": "1", "InstanceId": INSTANCE}


def test_version_of_the_other_generation_is_400_version_mismatch():
    """A present version other than the configured one is refused before anything else."""
    error = refusal({"InstanceId": "other"}, version=CLASSIC_VERSION)
    assert isinstance(error, BadRequest) and error.error_code == "VersionMismatch"
    check_version(None, CCC2_VERSION)
    check_version("", CCC2_VERSION)
    check_version(CCC2_VERSION, CCC2_VERSION)


def test_action_outside_the_list_is_403():
    """A classic or administrative action is ActionNotAllowed in 2.0."""
    for action in ("ListConfig", "CreateUser", "RegisterDevice"):
        error = refusal({}, action)
        assert error.error_code == "ActionNotAllowed"


def test_signature_error_message_is_cut_and_others_pass_unchanged():
    """POP's error body passes as is, but a Message quoting the string-to-sign is cut."""
    body = {
        "RequestId": "r",
        "Code": "SignatureDoesNotMatch",
        "Message": "Specified signature is not matched. string to sign is:POST&%2F&"
        "SecurityToken%3Dst",
        "HttpStatusCode": 400,
    }
    cut = withheld(body, ["st"])
    assert cut["Message"] == "Specified signature is not matched. (string to sign withheld)"
    assert {k: v for k, v in cut.items() if k != "Message"} == {
        k: v for k, v in body.items() if k != "Message"
    }
    plain = {"RequestId": "r", "Code": "NotExists.JobId", "Message": "no job"}
    assert withheld(plain, ["st"]) is plain


def test_signin_keeps_the_learned_ccc_user_id():
    """The agent's CCC id travels in the sign-in's payload once learned, and only then."""
    tokens = TokenSet(access_token="t", token_type="Bearer", expires_at=0.0)
    signin = SignIn.new(tokens, Agent("a@b.onaliyun.com", "A"), "edward", 1.0)
    assert "cu" not in signin.to_payload()
    learned = signin.with_ccc_user("agent1@ccc-demo")
    again = SignIn.from_payload(learned.to_payload())
    assert again is not None and again.ccc_user == "agent1@ccc-demo"
    assert again.with_tokens(tokens, 2.0).ccc_user == "agent1@ccc-demo"


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=6))
def test_any_request_object_gives_text_parameters_or_a_4xx(request_: dict[str, Any]):
    """Whatever JSON object the browser sends, 2.0 parsing yields string parameters with the
    instance pinned, or a 4xx refusal; never another exception."""
    try:
        _, params = v2_call(request_)
    except GatewayError as error:
        assert 400 <= error.status < 500
        return
    assert params["InstanceId"] == INSTANCE
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in params.items())
    assert ids_of_other_instances(params, INSTANCE) == []
