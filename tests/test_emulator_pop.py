"""The emulator's CCC OpenAPI (POP RPC): authentication like Alibaba, and the workbench's actions.

Requests here are signed with `aliyunsdkcore`'s own composer, not with the emulator's code, so
the server's verifier is checked against the official implementation.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from aliyunsdkcore.auth.algorithm import sha_hmac1
from aliyunsdkcore.auth.composer import rpc_signature_composer
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from yarl import URL

from ccc_gateway.emulator.app import create_emulator_app
from ccc_gateway.emulator.faults import Fault, FaultRegistry
from ccc_gateway.emulator.keys import FAULTS_KEY, STORE_KEY
from ccc_gateway.emulator.pop_auth import (
    NonceLedger,
    canonical_query,
    percent_encode,
    sign,
    string_to_sign,
)
from ccc_gateway.emulator.pop_params import PopError
from ccc_gateway.emulator.pop_server import add_pop_routes
from ccc_gateway.emulator.settings import DEMO_AGENTS, Agent, EmulatorSettings
from ccc_gateway.emulator.store import EmulatorStore, IssuedAccessToken, StsCredentials

Client = TestClient[Any, Any]
INSTANCE = "ccc-demo-instance"
AGENT1, AGENT2 = DEMO_AGENTS
START = 1_700_000_000.0
SDK_STRING_TO_SIGN: Callable[[str, dict[str, str]], str] = getattr(
    rpc_signature_composer, "__compose_string_to_sign"
)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> EmulatorStore:
    settings = EmulatorSettings(public_url="https://127.0.0.1:9443", clients=(), clock=clock)
    return EmulatorStore(settings)


@pytest.fixture
async def app(store: EmulatorStore) -> web.Application:
    app = web.Application()
    app[FAULTS_KEY] = FaultRegistry()
    add_pop_routes(app, store)
    return app


@pytest.fixture
async def client(aiohttp_client: Any, app: web.Application) -> Client:
    return await aiohttp_client(app)  # type: ignore[no-any-return]


def issue_bearer(store: EmulatorStore, agent: Agent = AGENT1, ttl: float = 3600) -> str:
    value = secrets.token_urlsafe(24)
    expires = store.settings.clock() + ttl
    store.add_access_token(IssuedAccessToken(value, agent, "client-1", expires, None))
    return value


def issue_sts(store: EmulatorStore, agent: Agent = AGENT1, ttl: float = 3600) -> IssuedAccessToken:
    creds = StsCredentials(
        "STS." + secrets.token_hex(8), secrets.token_urlsafe(16), "tok-" + secrets.token_hex(8)
    )
    blob = {
        "AccessKeyId": creds.access_key_id,
        "AccessKeySecret": creds.access_key_secret,
        "SecurityToken": creds.security_token,
    }
    value = base64.urlsafe_b64encode(json.dumps(blob).encode()).decode().rstrip("=")
    token = IssuedAccessToken(
        value, agent, "client-1", store.settings.clock() + ttl, None, sts=creds
    )
    store.add_access_token(token)
    return token


def iso(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))


def common(clock: Clock, action: str, **extra: str | None) -> dict[str, str]:
    """Common and business parameters; an extra set to None removes that parameter."""
    params = {
        "Action": action,
        "Version": "2017-07-05",
        "Format": "JSON",
        "RegionId": "cn-shanghai",
        "Timestamp": iso(clock.now),
        "SignatureNonce": str(uuid.uuid4()),
        "InstanceId": INSTANCE,
    }
    params.update({k: v for k, v in extra.items() if v is not None})
    for name in [k for k, v in extra.items() if v is None]:
        params.pop(name, None)
    return params


def with_bearer(params: dict[str, str], token: str) -> dict[str, str]:
    return {**params, "SignatureType": "BEARERTOKEN", "BearerToken": token}


def with_signature(
    params: dict[str, str], token: IssuedAccessToken, method: str = "GET", secret: str | None = None
) -> dict[str, str]:
    """Signed the way aliyunsdkcore signs (its composer, its HMAC), for `method`."""
    assert token.sts is not None
    signed = {
        **params,
        "AccessKeyId": token.sts.access_key_id,
        "SecurityToken": token.sts.security_token,
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
    }
    key = (secret or token.sts.access_key_secret) + "&"
    signed["Signature"] = sha_hmac1.get_sign_string(SDK_STRING_TO_SIGN(method, signed), key)
    return signed


async def send(
    client: Client, params: dict[str, str], method: str = "GET", query: tuple[str, ...] = ()
) -> tuple[int, dict[str, Any]]:
    """GET with everything in the query, or POST with a form body (minus names in `query`)."""
    if method == "GET":
        response = await client.get("/", params=params)
    else:
        in_query = {k: v for k, v in params.items() if k in query}
        body = {k: v for k, v in params.items() if k not in query}
        response = await client.post("/", params=in_query, data=body)
    return response.status, await response.json()


async def bearer_call(
    client: Client,
    store: EmulatorStore,
    clock: Clock,
    action: str,
    agent: Agent = AGENT1,
    /,
    **extra: str | None,
) -> tuple[int, dict[str, Any]]:
    return await send(
        client, with_bearer(common(clock, action, **extra), issue_bearer(store, agent))
    )


def assert_ok(status: int, body: dict[str, Any]) -> None:
    assert status == 200, body
    assert body["Success"] is True and body["Code"] == "OK" and body["HttpStatusCode"] == 200
    assert body["Message"] == "" and body["RequestId"]


def assert_refused(status: int, body: dict[str, Any], want_status: int, code: str) -> None:
    assert (status, body["Code"]) == (want_status, code), body
    assert body["HostId"] == "ccc.cn-shanghai.aliyuncs.com"
    assert body["RequestId"] and body["Message"] and body["Recommend"]
    assert "Success" not in body


# --- the signature algorithm ---------------------------------------------------------------

PUBLISHED = {
    "AccessKeyId": "testid",
    "Action": "DescribeRegions",
    "Format": "XML",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
    "SignatureVersion": "1.0",
    "Timestamp": "2016-02-23T12:46:24Z",
    "Version": "2014-05-26",
}


def test_published_vector() -> None:
    """The documented example signs to the documented signature."""
    assert sign(string_to_sign("GET", PUBLISHED), "testsecret") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_percent_encoding_rules() -> None:
    """Only RFC 3986 unreserved characters stay; space is %20, * is %2A, ~ is kept, UTF-8 bytes."""
    assert percent_encode("a b*c~d+e/f") == "a%20b%2Ac~d%2Be%2Ff"
    assert percent_encode("é") == "%C3%A9"


def test_signature_is_excluded_from_canonical_query() -> None:
    """The Signature parameter itself is never signed."""
    assert canonical_query({"B": "2", "A": "1", "Signature": "x"}) == "A=1&B=2"


_names = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-_",
    min_size=1,
    max_size=12,
)


@hsettings(max_examples=60, deadline=None)
@given(
    params=st.dictionaries(_names, st.text(max_size=20), min_size=1, max_size=8),
    method=st.sampled_from(["GET", "POST"]),
    secret=st.text(min_size=1, max_size=16),
)
def test_string_to_sign_matches_official_composer(
    params: dict[str, str], method: str, secret: str
) -> None:
    """For generated parameters our string-to-sign and signature equal aliyunsdkcore's."""
    ours = string_to_sign(method, params)
    theirs = SDK_STRING_TO_SIGN(method, {k: v for k, v in params.items() if k != "Signature"})
    assert ours == theirs
    assert sign(ours, secret) == sha_hmac1.get_sign_string(theirs, secret + "&")


@hsettings(max_examples=30, deadline=None)
@given(
    params=st.dictionaries(
        _names.filter(lambda n: n != "Signature"), st.text(max_size=20), max_size=6
    )
)
def test_official_signed_url_verifies(params: dict[str, str]) -> None:
    """A URL signed by aliyunsdkcore's get_signed_url verifies with our algorithm."""
    url, sdk_text = rpc_signature_composer.get_signed_url(
        dict(params), "ak", "sk", "JSON", "GET", {}
    )
    received = dict(URL(url).query)
    given_signature = received["Signature"]
    assert string_to_sign("GET", received) == sdk_text
    assert sign(string_to_sign("GET", received), "sk") == given_signature


def test_nonce_ledger_forgets_after_the_window() -> None:
    """A nonce is refused within twice the skew window and accepted again after it."""
    ledger = NonceLedger()
    ledger.use("n", 0.0, 10.0)
    with pytest.raises(PopError) as refused:
        ledger.use("n", 20.0, 10.0)
    assert refused.value.code == "SignatureNonceUsed"
    ledger.use("n", 20.5, 10.0)


# --- bearer mode ---------------------------------------------------------------------------


async def test_bearer_token_is_accepted(client: Client, store: EmulatorStore, clock: Clock) -> None:
    """A live access token as BearerToken authenticates without AccessKeyId or Signature."""
    status, body = await bearer_call(client, store, clock, "ListSkillGroupsOfUser")
    assert_ok(status, body)


async def test_unknown_bearer_token_is_401(client: Client, clock: Clock) -> None:
    """A token the emulator never issued is InvalidBearerToken.Invalid with HTTP 401."""
    status, body = await send(
        client, with_bearer(common(clock, "GetConfig", Name="AutoAnswer"), "nope")
    )
    assert_refused(status, body, 401, "InvalidBearerToken.Invalid")


async def test_expired_bearer_token_is_401(
    client: Client, store: EmulatorStore, clock: Clock
) -> None:
    """A bearer token past its lifetime is InvalidBearerToken.Expired."""
    token = issue_bearer(store, ttl=60)
    clock.now += 61
    status, body = await send(client, with_bearer(common(clock, "RefreshToken"), token))
    assert_refused(status, body, 401, "InvalidBearerToken.Expired")


async def test_revoked_bearer_token_is_401(
    client: Client, store: EmulatorStore, clock: Clock
) -> None:
    """A revoked bearer token is refused as invalid."""
    token = issue_bearer(store)
    store.access_tokens[token].revoked = True
    status, body = await send(client, with_bearer(common(clock, "RefreshToken"), token))
    assert_refused(status, body, 401, "InvalidBearerToken.Invalid")


async def test_sts_blob_works_as_bearer(client: Client, store: EmulatorStore, clock: Clock) -> None:
    """An AliyunSTS access token value is also a valid bearer token while live."""
    token = issue_sts(store)
    status, body = await send(client, with_bearer(common(clock, "RefreshToken"), token.value))
    assert_ok(status, body)


async def test_no_credentials_at_all(client: Client, clock: Clock) -> None:
    """Neither a bearer token nor an AccessKeyId is MissingAccessKeyId."""
    status, body = await send(client, common(clock, "RefreshToken"))
    assert_refused(status, body, 400, "MissingAccessKeyId")


async def test_bearer_mode_needs_the_token(client: Client, clock: Clock) -> None:
    """SignatureType=BEARERTOKEN without BearerToken is MissingBearerToken."""
    status, body = await send(client, common(clock, "RefreshToken", SignatureType="BEARERTOKEN"))
    assert_refused(status, body, 400, "MissingBearerToken")


# --- signature mode ------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_sts_signature_is_accepted(
    client: Client, store: EmulatorStore, clock: Clock, method: str
) -> None:
    """A call signed with the STS secret for its own HTTP method is accepted (GET and POST)."""
    token = issue_sts(store, AGENT2)
    extra = {"UserId": AGENT2.user_id, "Remark": "café ☎ a+b/c*d~e%"}
    params = with_signature(common(clock, "GetUser", **extra), token, method)
    status, body = await send(client, params, method)
    assert_ok(status, body)
    assert body["User"]["UserId"] == AGENT2.user_id


async def test_url_signed_by_official_sdk_is_accepted(
    client: Client, store: EmulatorStore, clock: Clock
) -> None:
    """A URL composed and signed by aliyunsdkcore (empty SignatureType and all) is accepted."""
    clock.now = time.time()  # the SDK stamps the real time
    token = issue_sts(store)
    assert token.sts is not None
    business = {
        "Action": "RefreshToken",
        "Version": "2017-07-05",
        "RegionId": "cn-shanghai",
        "InstanceId": INSTANCE,
        "SecurityToken": token.sts.security_token,
    }
    url, _ = rpc_signature_composer.get_signed_url(
        business, token.sts.access_key_id, token.sts.access_key_secret, "JSON", "GET", {}
    )
    response = await client.get(URL(url, encoded=True))
    assert_ok(response.status, await response.json())


async def test_factory_serves_pop(aiohttp_client: Any, clock: Clock) -> None:
    """The emulator app factory wires the POP routes to its own store."""
    settings = EmulatorSettings(public_url="https://127.0.0.1:9443", clients=(), clock=clock)
    app = create_emulator_app(settings)
    client = await aiohttp_client(app)
    token = issue_bearer(app[STORE_KEY])
    assert_ok(*await send(client, with_bearer(common(clock, "RefreshToken"), token)))


async def test_post_with_query_and_body_is_verified_over_both(
    client: Client, store: EmulatorStore, clock: Clock
) -> None:
    """Parameters split between query string and form body are merged before verification."""
    token = issue_sts(store)
    params = with_signature(
        common(clock, "ListConfig", **{"ConfigItem.1": "a b*c~"}), token, "POST"
    )
    status, body = await send(client, params, "POST", query=("Action", "Version", "Signature"))
    assert_ok(status, body)


@pytest.mark.parametrize(("signed_as", "sent_as"), [("GET", "POST"), ("POST", "GET")])
async def test_signature_covers_the_http_method(
    client: Client, store: EmulatorStore, clock: Clock, signed_as: str, sent_as: str
) -> None:
    """A signature made for the other HTTP method does not match."""
    token = issue_sts(store)
    status, body = await send(
        client, with_signature(common(clock, "RefreshToken"), token, signed_as), sent_as
    )
    assert_refused(status, body, 400, "SignatureDoesNotMatch")
    assert f"server string to sign is:{sent_as}&%2F&" in body["Message"]


async def test_wrong_secret_shows_server_string_to_sign(
    client: Client, store: EmulatorStore, clock: Clock
) -> None:
    """A wrong secret is SignatureDoesNotMatch; the message carries the server's string-to-sign."""
    token = issue_sts(store)
    params = with_signature(common(clock, "RefreshToken", Remark="a b"), token, secret="wrong")
    status, body = await send(client, params)
    assert_refused(status, body, 400, "SignatureDoesNotMatch")
    expected = SDK_STRING_TO_SIGN("GET", {k: v for k, v in params.items() if k != "Signature"})
    assert body["Message"].endswith(f"server string to sign is:{expected}")
    assert token.sts is not None and token.sts.access_key_secret not in body["Message"]


async def test_tampered_parameter_breaks_the_signature(
    client: Client, store: EmulatorStore, clock: Clock
) -> None:
    """Changing a signed parameter after signing is SignatureDoesNotMatch."""
    token = issue_sts(store)
    params = with_signature(common(clock, "GetUser", UserId=AGENT1.user_id), token)
    params["UserId"] = AGENT2.user_id
    status, body = await send(client, params)
    assert_refused(status, body, 400, "SignatureDoesNotMatch")


async def test_unknown_access_key_id(client: Client, store: EmulatorStore, clock: Clock) -> None:
    """An AccessKeyId the emulator never issued is InvalidAccessKeyId.NotFound (404)."""
    token = issue_sts(store)
    params = with_signature(common(clock, "RefreshToken", AccessKeyId="STS.unknown"), token)
    params["AccessKeyId"] = "STS.unknown"
    status, body = await send(client, params)
    assert_refused(status, body, 404, "InvalidAccessKeyId.NotFound")


async def test_mismatched_security_token(
    client: Client, store: EmulatorStore, clock: Clock
) -> None:
    """A SecurityToken that belongs to another key is InvalidSecurityToken.MismatchWithAccessKey."""
    token, other = issue_sts(store), issue_sts(store)
    assert other.sts is not None
    params = with_signature(common(clock, "RefreshToken"), token)
    params["SecurityToken"] = other.sts.security_token
    status, body = await send(client, params)
    assert_refused(status, body, 400, "InvalidSecurityToken.MismatchWithAccessKey")


async def test_missing_security_token(client: Client, store: EmulatorStore, clock: Clock) -> None:
    """An STS key without its SecurityToken is MissingSecurityToken."""
    params = with_signature(common(clock, "RefreshToken"), issue_sts(store))
    del params["SecurityToken"]
    status, body = await send(client, params)
    assert_refused(status, body, 400, "MissingSecurityToken")


@pytest.mark.parametrize("how", ["expired", "revoked"])
async def test_dead_sts_token(client: Client, store: EmulatorStore, clock: Clock, how: str) -> None:
    """Credentials of an expired or revoked token are InvalidSecurityToken.Expired."""
    token = issue_sts(store, ttl=60)
    if how == "expired":
        clock.now += 61
    else:
        token.revoked = True
    status, body = await send(client, with_signature(common(clock, "RefreshToken"), token))
    assert_refused(status, body, 400, "InvalidSecurityToken.Expired")


async def test_unsupported_signature_method(
    client: Client, store: EmulatorStore, clock: Clock
) -> None:
    """A SignatureMethod other than HMAC-SHA1 is InvalidSignatureMethod."""
    params = with_signature(
        common(clock, "RefreshToken", SignatureMethod="HMAC-SHA256"), issue_sts(store)
    )
    params["SignatureMethod"] = "HMAC-SHA256"
    status, body = await send(client, params)
    assert_refused(status, body, 400, "InvalidSignatureMethod")


# --- timestamp, nonce, common parameters ---------------------------------------------------


@pytest.mark.parametrize("offset", [-16 * 60, 16 * 60])
async def test_timestamp_out_of_skew(
    client: Client, store: EmulatorStore, clock: Clock, offset: int
) -> None:
    """A Timestamp more than 15 minutes off the server clock either way is expired."""
    params = common(clock, "RefreshToken", Timestamp=iso(clock.now + offset))
    status, body = await send(client, with_signature(params, issue_sts(store)))
    assert_refused(status, body, 400, "InvalidTimeStamp.Expired")


@pytest.mark.parametrize("offset", [-14 * 60, 14 * 60])
async def test_timestamp_within_skew(
    client: Client, store: EmulatorStore, clock: Clock, offset: int
) -> None:
    """A Timestamp up to 15 minutes off either way is accepted."""
    params = common(clock, "RefreshToken", Timestamp=iso(clock.now + offset))
    assert_ok(*await send(client, with_signature(params, issue_sts(store))))


@pytest.mark.parametrize("value", ["2024-01-01 00:00:00", "2024-13-01T00:00:00Z", "1700000000"])
async def test_timestamp_format(
    client: Client, store: EmulatorStore, clock: Clock, value: str
) -> None:
    """A Timestamp not in YYYY-MM-DDThh:mm:ssZ form, or no real date, is InvalidTimeStamp.Format."""
    status, body = await send(
        client, with_bearer(common(clock, "RefreshToken", Timestamp=value), issue_bearer(store))
    )
    assert_refused(status, body, 400, "InvalidTimeStamp.Format")


@pytest.mark.parametrize("name", ["Action", "Version", "Timestamp", "SignatureNonce", "InstanceId"])
async def test_missing_required_parameter(
    client: Client, store: EmulatorStore, clock: Clock, name: str
) -> None:
    """Each required parameter missing is Missing{Name} with HTTP 400."""
    params = with_bearer(common(clock, "RefreshToken", **{name: None}), issue_bearer(store))
    status, body = await send(client, params)
    assert_refused(status, body, 400, f"Missing{name}")
    assert name in body["Message"]


async def test_reused_nonce_is_refused(client: Client, store: EmulatorStore, clock: Clock) -> None:
    """The same SignatureNonce twice within the window is SignatureNonceUsed."""
    params = with_signature(common(clock, "RefreshToken"), issue_sts(store))
    assert_ok(*await send(client, params))
    status, body = await send(client, params)
    assert_refused(status, body, 400, "SignatureNonceUsed")


async def test_forged_call_does_not_burn_the_nonce(
    client: Client, store: EmulatorStore, clock: Clock
) -> None:
    """A call that fails authentication does not use up its nonce."""
    token = issue_sts(store)
    params = common(clock, "RefreshToken")
    status, _ = await send(client, with_signature(params, token, secret="forged"))
    assert status == 400
    assert_ok(*await send(client, with_signature(params, token)))


async def test_wrong_version(client: Client, store: EmulatorStore, clock: Clock) -> None:
    """A Version other than 2017-07-05 (classic) and 2020-07-01 (CCC 2.0) is InvalidVersion."""
    params = with_bearer(common(clock, "RefreshToken", Version="2020-05-27"), issue_bearer(store))
    status, body = await send(client, params)
    assert_refused(status, body, 400, "InvalidVersion")


async def test_unknown_action_is_404(client: Client, store: EmulatorStore, clock: Clock) -> None:
    """An action CCC does not have is 404 InvalidAction.NotFound."""
    status, body = await send(client, with_bearer(common(clock, "MakeCall"), issue_bearer(store)))
    assert_refused(status, body, 404, "InvalidAction.NotFound")
    assert body["Message"] == "Specified api is not found, please check your url and method."


@pytest.mark.parametrize("fmt", ["XML", None])
async def test_json_format_is_required(
    client: Client, store: EmulatorStore, clock: Clock, fmt: str | None
) -> None:
    """Format XML, or no Format (Alibaba's default is XML), is refused: the emulator speaks JSON."""
    params = with_bearer(common(clock, "RefreshToken", Format=fmt), issue_bearer(store))
    status, body = await send(client, params)
    assert_refused(status, body, 400, "InvalidParameter.Format")


async def test_wrong_region(client: Client, store: EmulatorStore, clock: Clock) -> None:
    """A RegionId other than the instance's region is InvalidRegionId."""
    params = with_bearer(common(clock, "RefreshToken", RegionId="cn-beijing"), issue_bearer(store))
    assert_refused(*await send(client, params), 400, "InvalidRegionId")


async def test_duplicate_parameter_is_refused(
    client: Client, store: EmulatorStore, clock: Clock
) -> None:
    """A parameter in both query and body is refused rather than guessed."""
    params = with_bearer(common(clock, "RefreshToken"), issue_bearer(store))
    response = await client.post("/", params={"Action": "RefreshToken"}, data=params)
    assert_refused(response.status, await response.json(), 400, "InvalidParameter")


async def test_wrong_instance_is_a_business_error(
    client: Client, store: EmulatorStore, clock: Clock
) -> None:
    """Another InstanceId answers HTTP 200 with Success false and NotExist.Instance."""
    status, body = await bearer_call(client, store, clock, "RefreshToken", InstanceId="other")
    assert status == 200
    assert body["Success"] is False and body["Code"] == "NotExist.Instance"
    assert body["HttpStatusCode"] == 404 and body["RequestId"] and body["Message"]


async def test_agent_outside_the_instance(
    client: Client, store: EmulatorStore, clock: Clock
) -> None:
    """A token of a user who is no longer an agent of the instance gets NoPermission.User."""
    token = issue_bearer(store, AGENT2)
    store.settings.agents = (AGENT1,)
    status, body = await send(client, with_bearer(common(clock, "RefreshToken"), token))
    assert (status, body["Success"], body["Code"]) == (200, False, "NoPermission.User")


async def test_injected_fault_answers_first(
    client: Client, app: web.Application, store: EmulatorStore, clock: Clock
) -> None:
    """A pending "pop" fault is answered before any authentication."""
    app[FAULTS_KEY].add(Fault("pop", status=503, error="ServiceUnavailable"))
    status, body = await send(client, common(clock, "RefreshToken"))
    assert (status, body["Code"]) == (503, "ServiceUnavailable")
    assert_ok(*await bearer_call(client, store, clock, "RefreshToken"))


# --- the actions ---------------------------------------------------------------------------

AGENTS = pytest.mark.parametrize("agent", DEMO_AGENTS, ids=["agent1", "agent2"])
SALES = f"sales@{INSTANCE}"
SUPPORT = f"support@{INSTANCE}"


@AGENTS
async def test_list_skill_groups_of_user(
    client: Client, store: EmulatorStore, clock: Clock, agent: Agent
) -> None:
    """ListSkillGroupsOfUser: agent1 is in two groups, agent2 in one, with wrapped numbers."""
    status, body = await bearer_call(client, store, clock, "ListSkillGroupsOfUser", agent)
    assert_ok(status, body)
    levels = body["SkillLevels"]["SkillLevel"]
    ids = [level["Skill"]["SkillGroupId"] for level in levels]
    assert ids == ([SALES, SUPPORT] if agent is AGENT1 else [SALES])
    first = levels[0]
    assert isinstance(first["Level"], int) and isinstance(first["SkillLevelId"], str)
    number = first["Skill"]["OutboundPhoneNumbers"]["PhoneNumber"][0]
    assert number["Number"] == "02160001001" and number["InstanceId"] == INSTANCE
    assert number["TestOnly"] is False and isinstance(number["RemainingTime"], int)


@AGENTS
async def test_request_login_info(
    client: Client, store: EmulatorStore, clock: Clock, agent: Agent
) -> None:
    """RequestLoginInfo describes the signed-in agent and the emulator's WebRTC endpoints."""
    status, body = await bearer_call(client, store, clock, "RequestLoginInfo", agent)
    assert_ok(status, body)
    info = body["LoginInfo"]
    assert info["UserName"] == agent.upn.split("@")[0]
    assert (info["DisplayName"], info["PhoneNumber"], info["Extension"]) == (
        agent.display_name,
        agent.phone,
        agent.extension,
    )
    assert (info["Region"], info["TenantId"]) == ("cn-shanghai", INSTANCE)
    assert info["WebRtcUrl"].startswith("wss://127.0.0.1:9443/")
    assert info["AgentServerUrl"].startswith("wss://127.0.0.1:9443/")
    assert info["Signature"] and agent.upn.split("@")[0] in info["SignData"]
    assert info["Roles"]["Role"][0]["RoleName"] == "Agent"


async def test_refresh_token_is_fresh(client: Client, store: EmulatorStore, clock: Clock) -> None:
    """RefreshToken answers a Token{Signature, SignData} that changes as time passes."""
    status, first = await bearer_call(client, store, clock, "RefreshToken")
    assert_ok(status, first)
    clock.now += 60
    _, second = await bearer_call(client, store, clock, "RefreshToken")
    assert set(first["Token"]) == {"Signature", "SignData"}
    assert first["Token"] != second["Token"]


@AGENTS
async def test_list_outbound_numbers(
    client: Client, store: EmulatorStore, clock: Clock, agent: Agent
) -> None:
    """ListOutboundPhoneNumberOfUser lists the numbers of the agent's groups, twice wrapped."""
    status, body = await bearer_call(client, store, clock, "ListOutboundPhoneNumberOfUser", agent)
    assert_ok(status, body)
    numbers = [n["Number"] for n in body["OutboundPhoneNumbers"]["PhoneNumber"]]
    assert len(numbers) == (3 if agent is AGENT1 else 2)
    assert body["NumberList"]["Number"] == numbers


async def test_list_config_reads_indexed_items(
    client: Client, store: EmulatorStore, clock: Clock
) -> None:
    """ListConfig reads ConfigItem.1, ConfigItem.2 … in index order and skips unknown names."""
    extra = {"ConfigItem.2": "AutoAnswer", "ConfigItem.1": "Region", "ConfigItem.3": "Nope"}
    status, body = await bearer_call(client, store, clock, "ListConfig", **extra)
    assert_ok(status, body)
    assert body["ConfigItems"]["ConfigItem"] == [
        {"Name": "Region", "Value": "cn-shanghai"},
        {"Name": "AutoAnswer", "Value": "false"},
    ]


async def test_list_config_refuses_unflattened_list(
    client: Client, store: EmulatorStore, clock: Clock
) -> None:
    """A list sent as JSON text in a bare ConfigItem is InvalidConfigItem, not silently read."""
    status, body = await bearer_call(client, store, clock, "ListConfig", ConfigItem='["Region"]')
    assert_refused(status, body, 400, "InvalidConfigItem")


async def test_get_config(client: Client, store: EmulatorStore, clock: Clock) -> None:
    """GetConfig returns the named item; Name is required."""
    extra = {"Name": "Region", "ObjectType": "user", "ObjectId": AGENT1.user_id}
    status, body = await bearer_call(client, store, clock, "GetConfig", **extra)
    assert_ok(status, body)
    assert body["ConfigItem"] == {"Name": "Region", "Value": "cn-shanghai"}
    assert_refused(*await bearer_call(client, store, clock, "GetConfig"), 400, "MissingName")


@AGENTS
async def test_get_user_self(
    client: Client, store: EmulatorStore, clock: Clock, agent: Agent
) -> None:
    """GetUser of oneself has Detail, RamId, roles and skill levels in wrapped lists."""
    status, body = await bearer_call(client, store, clock, "GetUser", agent, UserId=agent.user_id)
    assert_ok(status, body)
    user = body["User"]
    assert (user["UserId"], user["RamId"], user["InstanceId"]) == (
        agent.user_id,
        agent.uid,
        INSTANCE,
    )
    assert user["Detail"]["Email"] == agent.email and user["Detail"]["Phone"] == agent.phone
    assert user["Roles"]["Role"][0]["RoleId"] == f"Agent@{INSTANCE}"
    assert len(user["SkillLevels"]["SkillLevel"]) == (2 if agent is AGENT1 else 1)


@pytest.mark.parametrize(
    ("user_id", "code", "http_status"),
    [(AGENT2.user_id, "NoPermission.User", 403), ("nobody", "NotExist.User", 404)],
)
async def test_get_user_of_others(
    client: Client, store: EmulatorStore, clock: Clock, user_id: str, code: str, http_status: int
) -> None:
    """An agent may not read another agent; an unknown UserId does not exist."""
    status, body = await bearer_call(client, store, clock, "GetUser", UserId=user_id)
    assert (status, body["Success"], body["Code"], body["HttpStatusCode"]) == (
        200,
        False,
        code,
        http_status,
    )


async def test_get_user_needs_user_id(client: Client, store: EmulatorStore, clock: Clock) -> None:
    """GetUser without UserId is MissingUserId."""
    assert_refused(*await bearer_call(client, store, clock, "GetUser"), 400, "MissingUserId")


async def test_get_service_extensions(client: Client, store: EmulatorStore, clock: Clock) -> None:
    """GetServiceExtensions lists {Name, Number} under ServiceExtensions.ServiceExtension."""
    status, body = await bearer_call(client, store, clock, "GetServiceExtensions")
    assert_ok(status, body)
    extensions = body["ServiceExtensions"]["ServiceExtension"]
    assert extensions and all(set(e) == {"Name", "Number"} for e in extensions)


@AGENTS
async def test_pick_global_outbound_numbers(
    client: Client, store: EmulatorStore, clock: Clock, agent: Agent
) -> None:
    """PickGlobalOutboundNumbers pairs the callee with callers of the agent's groups only."""
    extra = {
        "SkillGroupId.1": SALES,
        "SkillGroupId.2": SUPPORT,
        "CalleeNumber": "135012345678",
        "Count": "5",
        "IsVirtual": "false",
    }
    status, body = await bearer_call(
        client, store, clock, "PickGlobalOutboundNumbers", agent, **extra
    )
    assert_ok(status, body)
    pairs = body["DialNumberPairs"]["DialNumberPair"]
    assert len(pairs) == (3 if agent is AGENT1 else 2)
    assert pairs[0]["Caller"] == {
        "Number": "02160001001",
        "Province": "Shanghai",
        "City": "Shanghai",
    }
    assert all(p["Callee"]["Number"] == "135012345678" for p in pairs)


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"CalleeNumber": "1"}, "MissingSkillGroupId"),
        ({"SkillGroupId.1": SALES}, "MissingCalleeNumber"),
        ({"SkillGroupId.1": SALES, "CalleeNumber": "1", "Count": "two"}, "InvalidCount"),
        ({"SkillGroupId.1": SALES, "CalleeNumber": "1", "IsVirtual": "maybe"}, "InvalidIsVirtual"),
    ],
)
async def test_pick_global_outbound_numbers_validates(
    client: Client, store: EmulatorStore, clock: Clock, extra: dict[str, str], code: str
) -> None:
    """PickGlobalOutboundNumbers refuses missing or mistyped parameters with 400."""
    status, body = await bearer_call(client, store, clock, "PickGlobalOutboundNumbers", **extra)
    assert_refused(status, body, 400, code)


@AGENTS
async def test_list_recent_call_records(
    client: Client, store: EmulatorStore, clock: Clock, agent: Agent
) -> None:
    """ListRecentCallRecords pages records under CallDetailRecords.List.CallDetailRecord."""
    extra = {
        "StartTime": str(int((clock.now - 86400) * 1000)),
        "StopTime": str(int(clock.now * 1000)),
        "PageNumber": "1",
        "PageSize": "10",
    }
    status, body = await bearer_call(client, store, clock, "ListRecentCallRecords", agent, **extra)
    assert_ok(status, body)
    records = body["CallDetailRecords"]
    assert (records["TotalCount"], records["PageNumber"], records["PageSize"]) == (2, 1, 10)
    first = records["List"]["CallDetailRecord"][0]
    assert isinstance(first["StartTime"], int) and first["AgentNames"] == agent.display_name


async def test_turn_server_list_and_credentials(
    client: Client, store: EmulatorStore, clock: Clock
) -> None:
    """GetTURNServerList gives JSON text of ICE servers; GetTURNCredentials a username/password."""
    status, body = await bearer_call(client, store, clock, "GetTURNServerList")
    assert_ok(status, body)
    servers = json.loads(body["TurnServerListConfig"])
    assert servers[0]["urls"][0].startswith("turn:127.0.0.1:")
    status, body = await bearer_call(client, store, clock, "GetTURNCredentials", UserName="agent1")
    assert_ok(status, body)
    assert body["Username"].endswith(":agent1") and body["Password"]


async def test_agent_device_roundtrip(client: Client, store: EmulatorStore, clock: Clock) -> None:
    """AddAgentDevice, ModifyAgentDevice and ListAgentDevices keep each agent's devices."""
    status, added = await bearer_call(
        client,
        store,
        clock,
        "AddAgentDevice",
        BrowserVersion="Chrome 126",
        ClientIp="127.0.0.1",
        ClientPort="5060",
        Remark="desk 3",
    )
    assert_ok(status, added)
    device_id = added["AgentDeviceId"]
    assert isinstance(device_id, int)
    modify = {"AgentDeviceId": str(device_id), "IsLogin": "0"}
    assert_ok(*await bearer_call(client, store, clock, "ModifyAgentDevice", **modify))
    status, listed = await bearer_call(client, store, clock, "ListAgentDevices", RamIds=AGENT1.uid)
    assert_ok(status, listed)
    [device] = listed["AgentDeviceList"]["AgentDevice"]
    assert (device["IsLogin"], device["RamId"], device["Remark"]) == (0, int(AGENT1.uid), "desk 3")
    _, others = await bearer_call(client, store, clock, "ListAgentDevices", AGENT2)
    assert others["AgentDeviceList"]["AgentDevice"] == []
    _, stolen = await bearer_call(client, store, clock, "ModifyAgentDevice", AGENT2, **modify)
    assert (stolen["Success"], stolen["Code"]) == (False, "NotExist.AgentDevice")


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"IsLogin": "1"}, "MissingAgentDeviceId"),
        ({"AgentDeviceId": "1", "IsLogin": "2"}, "InvalidIsLogin"),
    ],
)
async def test_modify_agent_device_validates(
    client: Client, store: EmulatorStore, clock: Clock, extra: dict[str, str], code: str
) -> None:
    """ModifyAgentDevice needs an AgentDeviceId and an IsLogin of 0 or 1."""
    status, body = await bearer_call(client, store, clock, "ModifyAgentDevice", **extra)
    assert_refused(status, body, 400, code)


async def test_reset_user_status(client: Client, store: EmulatorStore, clock: Clock) -> None:
    """ResetUserStatus accepts the agent's own RamIdList.N and refuses another agent's."""
    assert_ok(
        *await bearer_call(client, store, clock, "ResetUserStatus", **{"RamIdList.1": AGENT1.uid})
    )
    status, body = await bearer_call(
        client, store, clock, "ResetUserStatus", **{"RamIdList.1": AGENT2.uid}
    )
    assert (status, body["Code"]) == (200, "NoPermission.User")
