"""Unit tests of the softphone API forwarder's pure helpers (ccc_gateway.ccc.request, .audit)."""

from __future__ import annotations

import base64
import io
import json
import logging
import sys
from typing import Any

import pytest
from multidict import MultiDict

from ccc_gateway.auth.oauth.tokens import StsCredentials, TokenSet
from ccc_gateway.ccc.audit import audit_call
from ccc_gateway.ccc.client import BearerCredentials, PopResult
from ccc_gateway.ccc.pop.actions import CLASSIC_VERSION as CLASSIC
from ccc_gateway.ccc.pop.actions import ActionPolicy
from ccc_gateway.ccc.request import (
    check_action,
    check_content_length,
    credentials_for,
    flatten,
    json_body_fields,
    needs_sign_in,
    pin_instance,
    pop_error,
    prepare_call,
    request_object,
    safe_message,
    single_field,
)
from ccc_gateway.ccc.request import form_fields as _form_fields
from ccc_gateway.http.errors import BadGateway, BadRequest, Forbidden, GatewayError, PayloadTooLarge
from ccc_gateway.ops.log import AUDIT_LOGGER
from ccc_gateway.sessions.signin import Agent, SignIn

INSTANCE = "ccc-demo-instance"
STS_JSON = {"AccessKeyId": "STS.id", "AccessKeySecret": "sts-secret", "SecurityToken": "st-tok"}


def _sts_token(data: Any) -> TokenSet:
    raw = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    return TokenSet(access_token=raw, token_type="AliyunSTS", expires_at=0.0)


BEARER_TOKEN = TokenSet(access_token="opaque-token", token_type="Bearer", expires_at=0.0)
STS_TOKEN = _sts_token(STS_JSON)


def _error(call: Any, *args: Any) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        call(*args)
    return caught.value


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (None, "missing"),
        ("", "missing"),
        (5, "must be text"),
        ("delete-instance", "not a valid action name"),
        ("getUser", "not a valid action name"),
        ("G", "not a valid action name"),
        ("A" * 65, "not a valid action name"),
    ],
)
def test_check_action_refuses(value: Any, fragment: str):
    """A missing, non-text or malformed action name is a 400 saying which."""
    error = _error(check_action, value)
    assert isinstance(error, BadRequest) and fragment in error.message


@pytest.mark.parametrize("value", ["GetUser", "CheckNumberAvaliable", "DeleteInstance"])
def test_check_action_accepts_well_formed_names(value: str):
    """Well-formed names pass (the allow-list is a separate, later check)."""
    assert check_action(value) == value


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, {}),
        ("{}", {}),
        ('{"instanceId": "i", "n": [1, 2]}', {"instanceId": "i", "n": [1, 2]}),
        ({"a": {"b": 1}}, {"a": {"b": 1}}),
    ],
)
def test_request_object_accepts(value: Any, expected: dict[str, Any]):
    """`request` absent, JSON text of an object, or an object from a JSON body."""
    assert request_object(value) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("{name: 1}", "not valid JSON"),
        ("", "not valid JSON"),
        ("1" * 5000, "not valid JSON"),  # beyond Python's int digit limit
        ("[1, 2]", "must be a JSON object"),
        ("null", "must be a JSON object"),
        ('"text"', "must be a JSON object"),
        ([1, 2], "must be a JSON object"),
        (5, "must be a JSON object"),
        ("[" * 100_000 + "]" * 100_000, "nests too deep"),
    ],
    ids=["bad", "empty", "huge-int", "list", "null", "string", "py-list", "int", "deep"],
)
def test_request_object_refuses(value: Any, fragment: str):
    """Anything but a JSON object is a 400 that says what is wrong."""
    error = _error(request_object, value)
    assert isinstance(error, BadRequest) and fragment in error.message


def test_single_field_across_sources():
    """The same value in query and body is fine; absent is None; a conflict is 400."""
    query = MultiDict({"action": "GetUser"})
    assert single_field("action", query, MultiDict({"action": "GetUser"})) == "GetUser"
    assert single_field("action", MultiDict(), MultiDict()) is None
    error = _error(single_field, "action", query, MultiDict({"action": "DeleteInstance"}))
    assert isinstance(error, BadRequest) and "more than once" in error.message
    twice: MultiDict[object] = MultiDict([("request", "{}"), ("request", "[]")])
    assert isinstance(_error(single_field, "request", twice), BadRequest)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b'{"action": "GetUser", "request": {"a": 1}}', {"action": "GetUser", "request": {"a": 1}}),
        (b'{"action": "GetUser", "request": "{}", "x": 1}', {"action": "GetUser", "request": "{}"}),
        (b'{"action": null}', {}),
    ],
)
def test_json_body_fields(raw: bytes, expected: dict[str, Any]):
    """A JSON body yields its `action` and `request` members; other members are ignored."""
    assert dict(json_body_fields(raw)) == expected


@pytest.mark.parametrize(
    ("raw", "charset", "fragment"),
    [
        (b"[1]", None, "must be an object"),
        (b"nope", None, "not valid JSON"),
        (b"\xff\xfe{}", None, "not text"),
        (b"{}", "no-such-charset", "not text"),
    ],
)
def test_json_body_fields_refuses(raw: bytes, charset: str | None, fragment: str):
    """A JSON body that is not an object of UTF-8 (or declared charset) text is a 400."""
    error = _error(json_body_fields, raw, charset)
    assert isinstance(error, BadRequest) and fragment in error.message


@pytest.mark.parametrize(
    ("query", "body", "expected"),
    [
        (
            {"action": "GetUser"},
            {"request": '{"userId": "u"}'},
            {"UserId": "u"},
        ),
        ({}, {"action": "GetUser", "request": "{}"}, {}),
        ({"action": "GetUser", "request": "{}"}, {}, {}),
        ({"action": "GetUser"}, {"tenant": "x", "_": "1"}, {}),
        ({}, {"action": "GetUser", "request": {"a": 1}}, {"A": "1"}),
    ],
    ids=["sdk-form", "all-in-form", "all-in-query", "other-params", "json-body"],
)
def test_call_fields(query: dict[str, str], body: dict[str, Any], expected: dict[str, str]):
    """The action and parameters come from the query, the form, or a JSON body."""
    action, params = prepare_call(
        MultiDict(query), MultiDict(body), ActionPolicy(), INSTANCE, version=CLASSIC
    )
    assert action == "GetUser" and dict(params) == {**expected, "InstanceId": INSTANCE}


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"a b": 1}, "'a b' is not allowed"),
        ({"a": [[[[[[1]]]]]]}, "deeper than 5"),
        ({"n": float("nan")}, "not a finite number"),
        ({"x": 1, " x": 2}, "both become"),
    ],
)
def test_flatten_refuses(params: dict[str, Any], fragment: str):
    """Parameters that cannot become POP parameters are a 400 quoting pop's reason."""
    error = _error(flatten, params)
    assert isinstance(error, BadRequest) and fragment in error.message


@pytest.mark.parametrize(
    ("flat", "expected"),
    [
        ({}, {"InstanceId": INSTANCE}),
        ({"UserId": "u"}, {"UserId": "u", "InstanceId": INSTANCE}),
        ({"InstanceId": INSTANCE}, {"InstanceId": INSTANCE}),
        ({"INSTANCEID": INSTANCE}, {"InstanceId": INSTANCE}),
        ({"InstanceId": ""}, {"InstanceId": INSTANCE}),
    ],
)
def test_pin_instance_fills_in(flat: dict[str, str], expected: dict[str, str]):
    """The configured instance is filled in when absent or empty, whatever the key's case."""
    assert pin_instance(flat, INSTANCE) == expected


@pytest.mark.parametrize(
    "flat",
    [
        {"InstanceId": "other"},
        {"Instanceid": "other"},
        {"InstanceId": INSTANCE.upper()},
        {"InstanceId.1": INSTANCE},
        {"INSTANCEID.Sub": INSTANCE},
    ],
)
def test_pin_instance_refuses_other_instances(flat: dict[str, str]):
    """Another instance, or an instance as a list or object, is 403 InstanceNotAllowed."""
    error = _error(pin_instance, flat, INSTANCE)
    assert isinstance(error, Forbidden) and error.error_code == "InstanceNotAllowed"


@pytest.mark.parametrize(
    ("mode", "token", "expected"),
    [
        ("auto", BEARER_TOKEN, BearerCredentials("opaque-token")),
        ("bearer", BEARER_TOKEN, BearerCredentials("opaque-token")),
        ("auto", STS_TOKEN, StsCredentials("STS.id", "sts-secret", "st-tok")),
        ("sts", STS_TOKEN, StsCredentials("STS.id", "sts-secret", "st-tok")),
        ("bearer", STS_TOKEN, BearerCredentials(STS_TOKEN.access_token)),
    ],
)
def test_credentials_for(mode: str, token: TokenSet, expected: object):
    """auto follows the token type; bearer and sts force a mode."""
    assert credentials_for(mode, token) == expected


@pytest.mark.parametrize(
    ("mode", "token", "fragment"),
    [
        ("sts", BEARER_TOKEN, "ccc.auth"),
        ("auto", _sts_token({"AccessKeyId": "STS.id"}), "could not be used"),
        ("sts", TokenSet("not base64!", "AliyunSTS", 0.0), "could not be used"),
    ],
)
def test_credentials_for_refuses(
    mode: str, token: TokenSet, fragment: str, caplog: pytest.LogCaptureFixture
):
    """A forced STS mode without an STS token, or a broken STS token, is 502 and an error log."""
    with caplog.at_level(logging.ERROR):
        error = _error(credentials_for, mode, token)
    assert isinstance(error, BadGateway) and fragment in error.message
    assert [r.levelno for r in caplog.records] == [logging.ERROR]
    assert token.access_token not in caplog.text


@pytest.mark.parametrize(
    ("status", "code", "expected"),
    [
        (401, "Whatever", True),
        (401, None, True),
        (400, "InvalidSecurityToken.Expired", True),
        (400, "InvalidSecurityToken.MismatchWithAccessKey", True),
        (401, "InvalidBearerToken.Invalid", True),
        (404, "InvalidAccessKeyId.NotFound", True),
        (400, "SignatureDoesNotMatch", False),
        (404, "InvalidAction.NotFound", False),
        (403, "Forbidden.RAM", False),
        (500, None, False),
    ],
)
def test_needs_sign_in(status: int, code: str | None, expected: bool):
    """Only a token Alibaba no longer accepts asks the softphone to sign in again."""
    assert needs_sign_in(status, code) is expected


def _result(status: int, body: dict[str, Any]) -> PopResult:
    return PopResult(status, body, body.get("RequestId"), body.get("Code"), 0.01)


def test_pop_error_carries_pop_status_code_and_request_id():
    """A POP HTTP error becomes the contract error with Alibaba's status, Code and RequestId."""
    body = {"RequestId": "R-1", "Code": "InvalidAction.NotFound", "Message": "no such api"}
    error = pop_error(_result(404, body))
    assert (error.status, error.error_code, error.message) == (
        404,
        "InvalidAction.NotFound",
        body["Message"],
    )
    assert error.pop_request_id == "R-1" and "login" not in error.extra


def test_pop_error_for_a_dead_token_adds_the_login_url():
    """An authentication failure keeps the POP status and code and adds the login URL."""
    body = {"RequestId": "R-2", "Code": "InvalidBearerToken.Expired", "Message": "expired"}
    error = pop_error(_result(401, body))
    assert (error.status, error.error_code) == (401, "InvalidBearerToken.Expired")
    assert error.extra == {"login": "/aliyun/auth"}


def test_pop_error_without_code_or_message():
    """A POP error body without Code or Message still gives a usable contract body."""
    error = pop_error(_result(503, {}))
    assert (error.status, error.error_code) == (503, "UnknownError")
    assert "HTTP 503" in error.message and error.pop_request_id is None


@pytest.mark.parametrize(
    ("message", "secrets", "expected"),
    [
        ("plain", (), "plain"),
        (
            "Signature not matched. server string to sign is:POST&%2F&SecurityToken%3Dst",
            (),
            "Signature not matched. server (string to sign withheld)",
        ),
        ("token abc was refused", ("abc",), "token *** was refused"),
        ("x" * 2000, (), "x" * 500),
    ],
    ids=["plain", "string-to-sign", "secret", "long"],
)
def test_safe_message(message: str, secrets: tuple[str, ...], expected: str):
    """POP messages reach the browser without the string-to-sign or a secret, and cut short."""
    assert safe_message(message, secrets) == expected


@pytest.mark.parametrize(
    ("length", "refused"), [(None, False), (0, False), (100, False), (101, True)]
)
def test_check_content_length(length: int | None, refused: bool):
    """A declared body over the limit is 413 before anything is read."""
    if refused:
        assert isinstance(_error(check_content_length, length, 100), PayloadTooLarge)
    else:
        assert check_content_length(length, 100) is None


@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize(
    ("crm_user", "upn", "code", "pop_id"),
    [
        ("135012345678", "13501234567@x", None, "R-9"),
        ("edward", "agent1@ccc-demo.onaliyun.com", "OK", "6A2C1E51-0E7B-4C8E-9A53-7D0E1BB0E8F2"),
        ("edward", "a@1234567890123456.onaliyun.com", "token=abc", "id 135012345678"),
        (None, "bearer x", "Forbidden: Bearer abc.def", None),
        ("edward", "a@x", "OK", "Signature=abc&code=xyz"),
    ],
)
def test_audit_line_written_as_a_record_would_be(
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
    crm_user: str | None,
    upn: str,
    code: str | None,
    pop_id: str | None,
):
    """Through the configured handler, each audit line is the one
    `audit_log.info("ccc api %s HTTP %d result %s", …, extra=…)` writes."""
    import ccc_gateway.ops.log
    from ccc_gateway.ops.log import mask_phone_numbers

    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])  # pytest's capture handlers off
    monkeypatch.setattr(root, "level", root.level)  # restored after setup_logging sets it
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    ccc_gateway.ops.log.setup_logging("INFO", fmt)
    signin = SignIn("sid", BEARER_TOKEN, Agent(upn, "n"), crm_user, 0.0, 0.0)  # type: ignore[arg-type]
    for _ in range(2):  # twice: no line depends on an earlier one
        audit_call(signin, "GetUser", 200, code, pop_id, 0.0123)

    def masked(text: str | None) -> str | None:
        return None if text is None else mask_phone_numbers(text)

    fields = {
        "crm_user": masked(crm_user),
        "agent": masked(upn),
        "action": "GetUser",
        "status": 200,
        "pop_code": masked(code),
        "pop_request_id": masked(pop_id),
        "duration_ms": 12.3,
    }
    logging.getLogger(AUDIT_LOGGER).info(
        "ccc api %s HTTP %d result %s", "GetUser", 200, masked(code), extra={"fields": fields}
    )
    first, again, expected = stream.getvalue().splitlines()
    drop_time = (lambda line: line.split(" ", 2)[2]) if fmt == "text" else _without_time
    assert drop_time(first) == drop_time(again) == drop_time(expected)
    assert "ccc api GetUser HTTP 200 result" in first and "135012345678" not in first
    assert "abc" not in first and "xyz" not in first  # the secrets' values are redacted


def _without_time(line: str) -> dict[str, Any]:
    data = json.loads(line)
    data.pop("time", None)
    data.pop("ts", None)
    return data


def test_audit_line_masks_phone_numbers(caplog: pytest.LogCaptureFixture):
    """The audit line names user, agent, action and POP ids, with phone numbers masked."""
    signin = SignIn("sid", BEARER_TOKEN, Agent("13501234567@x", "n"), "135012345678", 0.0, 0.0)
    with caplog.at_level(logging.INFO, logger=AUDIT_LOGGER):
        audit_call(signin, "GetUser", 200, "OK", "R-9", 0.0123)
    (record,) = caplog.records
    fields = record.fields  # type: ignore[attr-defined]
    assert fields == {
        "crm_user": "135*******78",
        "agent": "135******67@x",
        "action": "GetUser",
        "status": 200,
        "pop_code": "OK",
        "pop_request_id": "R-9",
        "duration_ms": 12.3,
    }
    assert "GetUser" in record.getMessage() and "opaque-token" not in record.getMessage()


@pytest.mark.parametrize(
    "answer",
    [
        {"data": {"name": "张三", "n": 1, "f": 0.5, "ok": True, "none": None}},
        {"data": {"big": 123456789012345678901234567890}},  # beyond orjson's 64 bits
        {"data": {"lone": "\ud800"}},  # a lone surrogate orjson will not write
    ],
    ids=["plain", "big-int", "lone-surrogate"],
)
def test_answer_json_reads_back_as_the_answer(answer: dict[str, Any]) -> None:
    """The answer's JSON (orjson, or the standard encoder for what orjson refuses) parses
    back to the very answer."""
    from ccc_gateway.ccc.views import _json_bytes

    raw = _json_bytes(answer)
    assert json.loads(raw.decode("utf-8", "surrogatepass")) == answer


def _prepare(action: str, request: Any, policy: ActionPolicy | None = None) -> Any:
    body = MultiDict({"action": action, "request": request})
    return prepare_call(MultiDict(), body, policy or ActionPolicy(), INSTANCE, version=CLASSIC)


def test_prepare_call_gives_the_pinned_parameters():
    """The request text's parameters, flattened, with the instance pinned."""
    text = '{"userId": "u-1", "skillGroupId.1": "g"}'
    expected = {"UserId": "u-1", "SkillGroupId.1": "g", "InstanceId": INSTANCE}
    assert _prepare("GetUser", text) == ("GetUser", expected)


def test_prepare_call_checks_in_order():
    """Action name, JSON, allow-list, shape, instance: the first failing check answers."""
    for request in ('{"userId": "u-order"}', '{"userId": "u-new"}'):
        assert "not a valid action" in _error(_prepare, "bad name", request).message
        refused = _error(_prepare, "DeleteInstance", request)
        assert isinstance(refused, Forbidden) and refused.error_code == "ActionNotAllowed"
    assert "not valid JSON" in _error(_prepare, "DeleteInstance", "{").message
    refused = _error(_prepare, "DeleteInstance", '{"a b": 1}')
    assert isinstance(refused, Forbidden) and refused.error_code == "ActionNotAllowed"
    assert "'a b' is not allowed" in _error(_prepare, "GetUser", '{"a b": 1}').message
    other = '{"instanceId": "other"}'
    refused = _error(_prepare, "GetUser", other)
    assert isinstance(refused, Forbidden) and refused.error_code == "InstanceNotAllowed"


def test_prepare_call_pins_per_instance_and_takes_json_bodies():
    """The configured instance is the one pinned; a JSON body's object is taken as it is."""
    text = '{"userId": "u-pin"}'
    body = MultiDict({"action": "GetUser", "request": text})
    assert (
        prepare_call(MultiDict(), body, ActionPolicy(), "i-a", version=CLASSIC)[1]["InstanceId"]
        == "i-a"
    )
    assert (
        prepare_call(MultiDict(), body, ActionPolicy(), "i-b", version=CLASSIC)[1]["InstanceId"]
        == "i-b"
    )
    assert _prepare("GetUser", {"userId": "u-obj"})[1] == {
        "UserId": "u-obj",
        "InstanceId": INSTANCE,
    }


def test_form_fields_parse_a_urlencoded_body_read_only():
    """A urlencoded body gives its fields in order, repeated names kept, read-only."""
    raw = b"action=GetUser&request=%7B%22instanceId%22%3A%22i%22%7D&x=1&x=2\r\n"
    fields = _form_fields(raw, None)
    assert list(fields.items()) == [
        ("action", "GetUser"),
        ("request", '{"instanceId":"i"}'),
        ("x", "1"),
        ("x", "2"),
    ]
    with pytest.raises(TypeError):
        fields["action"] = "CreateUser"  # type: ignore[index]
    long = b"request=" + b"a" * 2000
    assert _form_fields(long, None).getall("request") == ["a" * 2000]
