"""Tests for ccc_gateway.ccc_client.PopClient against aioresponses (no network)."""

from __future__ import annotations

import calendar
import itertools
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
import pytest
from aioresponses import aioresponses
from mock_http import CompatAioresponses
from yarl import URL

from ccc_gateway.ccc_client import BearerCredentials, PopClient, PopResult, PopUnavailable
from ccc_gateway.pop import RequestShapeError, sign_v1
from ccc_gateway.tokens import StsCredentials

ENDPOINT = "https://ccc.cn-shanghai.aliyuncs.com/"
KEY = ("POST", URL(ENDPOINT))
NOW = calendar.timegm((2024, 5, 6, 7, 8, 9))
TOKEN = "bearer-secret-token"
STS = StsCredentials(
    access_key_id="STS.key", access_key_secret="sts-secret", security_token="st-tok"
)
OK_BODY = {"RequestId": "req-1", "Success": True, "Code": "OK", "HttpStatusCode": 200}


def answer(m: aioresponses, **kwargs: Any) -> None:
    """Queue one canned answer to the next POST."""
    m.post(ENDPOINT, **kwargs)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


def make_client(session: aiohttp.ClientSession, **overrides: object) -> PopClient:
    nonces = (f"nonce-{i}" for i in itertools.count(1))
    ticks = itertools.count(100.0, 0.25)
    options: dict[str, object] = {
        "endpoint": ENDPOINT,
        "version": "2017-07-05",
        "region_id": "cn-shanghai",
        "clock": lambda: NOW,
        "nonce_factory": lambda: next(nonces),
        "monotonic": lambda: next(ticks),
        **overrides,
    }
    return PopClient(session, **options)  # type: ignore[arg-type]


def sent_forms(m: aioresponses) -> list[dict[str, str]]:
    """The form bodies of every POST recorded, decoded."""
    return [dict(parse_qsl(call.kwargs["data"].decode("ascii"))) for call in m.requests[KEY]]


async def test_bearer_body_fields(session: aiohttp.ClientSession) -> None:
    """Bearer mode sends common + business parameters, the token, and no signature fields."""
    with CompatAioresponses() as m:
        answer(m, payload=OK_BODY)
        result = await make_client(session).call(
            "ListConfig", {"InstanceId": "i-1", "ConfigItem.1": "a b"}, BearerCredentials(TOKEN)
        )
        call = m.requests[KEY][0]
    assert call.kwargs["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    assert sent_forms(m) == [
        {
            "InstanceId": "i-1",
            "ConfigItem.1": "a b",
            "Action": "ListConfig",
            "Version": "2017-07-05",
            "Format": "JSON",
            "RegionId": "cn-shanghai",
            "Timestamp": "2024-05-06T07:08:09Z",
            "SignatureNonce": "nonce-1",
            "BearerToken": TOKEN,
            "SignatureType": "BEARERTOKEN",
        }
    ]
    assert result == PopResult(200, OK_BODY, "req-1", "OK", 0.25)


async def test_sts_body_fields_and_signature(session: aiohttp.ClientSession) -> None:
    """STS mode sends the key fields and a POST signature that verifies over the sent body."""
    with CompatAioresponses() as m:
        answer(m, payload=OK_BODY)
        await make_client(session).call("GetUser", {"InstanceId": "i-1", "UserId": "u*~"}, STS)
    (form,) = sent_forms(m)
    signature = form.pop("Signature")
    assert form == {
        "InstanceId": "i-1",
        "UserId": "u*~",
        "Action": "GetUser",
        "Version": "2017-07-05",
        "Format": "JSON",
        "RegionId": "cn-shanghai",
        "Timestamp": "2024-05-06T07:08:09Z",
        "SignatureNonce": "nonce-1",
        "AccessKeyId": "STS.key",
        "SecurityToken": "st-tok",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureVersion": "1.0",
    }
    assert signature == sign_v1("POST", form, "sts-secret")


@pytest.mark.parametrize(
    "error",
    [TimeoutError(), aiohttp.ServerTimeoutError("read"), aiohttp.ConnectionTimeoutError("conn")],
)
async def test_timeout(session: aiohttp.ClientSession, error: Exception) -> None:
    """A timeout, aiohttp's own included, raises PopUnavailable(timeout=True), not retried."""
    with CompatAioresponses() as m:
        m.post(ENDPOINT, exception=error)
        answer(m, payload=OK_BODY)
        with pytest.raises(PopUnavailable) as info:
            await make_client(session).call("ListConfig", {}, BearerCredentials(TOKEN))
        assert len(m.requests[KEY]) == 1
    assert info.value.timeout is True


async def test_connection_error_retried_once_for_reads(session: aiohttp.ClientSession) -> None:
    """A read-only action is sent again, with a fresh nonce, after a connection failure."""
    with CompatAioresponses() as m:
        m.post(ENDPOINT, exception=aiohttp.ClientConnectionError("refused"))
        answer(m, payload=OK_BODY)
        result = await make_client(session).call("ListConfig", {}, BearerCredentials(TOKEN))
    assert result.status == 200
    assert [f["SignatureNonce"] for f in sent_forms(m)] == ["nonce-1", "nonce-2"]


async def test_connection_error_twice_gives_up(session: aiohttp.ClientSession) -> None:
    """A read-only action is retried only once."""
    with CompatAioresponses() as m:
        for _ in range(3):
            m.post(ENDPOINT, exception=aiohttp.ClientConnectionError("refused"))
        with pytest.raises(PopUnavailable) as info:
            await make_client(session).call("ListConfig", {}, BearerCredentials(TOKEN))
        assert len(m.requests[KEY]) == 2
    assert info.value.timeout is False


async def test_connection_error_not_retried_for_writes(session: aiohttp.ClientSession) -> None:
    """A write action is never replayed after a connection failure."""
    with CompatAioresponses() as m:
        m.post(ENDPOINT, exception=aiohttp.ClientConnectionError("refused"))
        answer(m, payload=OK_BODY)
        with pytest.raises(PopUnavailable):
            await make_client(session).call("AddAgentDevice", {}, BearerCredentials(TOKEN))
        assert len(m.requests[KEY]) == 1


async def test_oversize_declared_length(session: aiohttp.ClientSession) -> None:
    """A Content-Length over the cap is refused before reading."""
    with CompatAioresponses() as m:
        answer(m, body=b"{}", headers={"Content-Length": "5000"})
        with pytest.raises(PopUnavailable, match="over 1000 bytes"):
            await make_client(session, max_response_bytes=1000).call(
                "GetUser", {}, BearerCredentials(TOKEN)
            )


async def test_oversize_streamed_body(session: aiohttp.ClientSession) -> None:
    """A body without Content-Length is cut off once it passes the cap."""
    body = b'{"RequestId": "' + b"x" * 5000 + b'"}'
    with CompatAioresponses() as m:
        answer(m, body=body)
        with pytest.raises(PopUnavailable, match="over 1000 bytes") as info:
            await make_client(session, max_response_bytes=1000).call(
                "GetUser", {}, BearerCredentials(TOKEN)
            )
    assert info.value.timeout is False


async def test_body_at_cap_is_accepted(session: aiohttp.ClientSession) -> None:
    """A body exactly at the cap is read."""
    body = b'{"Code": "OK"}'
    with CompatAioresponses() as m:
        answer(m, body=body)
        result = await make_client(session, max_response_bytes=len(body)).call(
            "GetUser", {}, BearerCredentials(TOKEN)
        )
    assert result.code == "OK"


@pytest.mark.parametrize("body", [b"<html>busy</html>", b"", b"[1, 2]", b"\xff\xfe\x00"])
async def test_non_json_body(session: aiohttp.ClientSession, body: bytes) -> None:
    """A body that is not a JSON object raises PopUnavailable."""
    with CompatAioresponses() as m:
        answer(m, body=body, status=502, content_type="text/html")
        with pytest.raises(PopUnavailable, match="HTTP 502"):
            await make_client(session).call("GetUser", {}, BearerCredentials(TOKEN))


async def test_error_body_passthrough(session: aiohttp.ClientSession) -> None:
    """A 4xx JSON error is returned as a result carrying the POP status, code and id."""
    error = {"RequestId": "r-9", "HostId": "ccc", "Code": "InvalidToken", "Message": "bad"}
    with CompatAioresponses() as m:
        answer(m, status=401, payload=error)
        result = await make_client(session).call("GetUser", {}, BearerCredentials(TOKEN))
    assert (result.status, result.body, result.request_id, result.code) == (
        401,
        error,
        "r-9",
        "InvalidToken",
    )


async def test_business_error_with_200(session: aiohttp.ClientSession) -> None:
    """A Success:false answer with HTTP 200 is an ordinary result."""
    body = {"RequestId": "r-2", "Success": False, "Code": "NotExist.User", "Message": "no"}
    with CompatAioresponses() as m:
        answer(m, payload=body)
        result = await make_client(session).call("GetUser", {}, STS)
    assert (result.status, result.code) == (200, "NotExist.User")


async def test_missing_fields_are_none(session: aiohttp.ClientSession) -> None:
    """A JSON object without RequestId or Code gives None for both."""
    with CompatAioresponses() as m:
        answer(m, payload={"Code": ["odd"]})
        result = await make_client(session).call("GetUser", {}, STS)
    assert (result.request_id, result.code) == (None, None)


@pytest.mark.parametrize("action", ["listConfig", "A", "List Config", "X" * 65, ""])
async def test_invalid_action_name(session: aiohttp.ClientSession, action: str) -> None:
    """A malformed action name is refused before anything is sent."""
    with CompatAioresponses() as m:
        with pytest.raises(RequestShapeError, match="action"):
            await make_client(session).call(action, {}, BearerCredentials(TOKEN))
        assert KEY not in m.requests


@pytest.mark.parametrize("name", ["Signature", "AccessKeyId", "SignatureType", "Action"])
async def test_reserved_business_parameter(session: aiohttp.ClientSession, name: str) -> None:
    """A business parameter that would steer authentication is refused."""
    with CompatAioresponses() as m:
        with pytest.raises(RequestShapeError, match=name):
            await make_client(session).call("GetUser", {name: "x"}, BearerCredentials(TOKEN))
        assert KEY not in m.requests


async def test_no_secrets_in_errors_or_logs(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """Tokens, secrets and signatures appear in no log record or exception message."""
    caplog.set_level(logging.DEBUG, logger="ccc_gateway")
    with CompatAioresponses() as m:
        m.post(ENDPOINT, exception=aiohttp.ClientConnectionError("refused"))
        answer(m, payload=OK_BODY)
        m.post(ENDPOINT, exception=aiohttp.ClientConnectionError("refused"))
        m.post(ENDPOINT, exception=aiohttp.ClientConnectionError("refused"))
        client = make_client(session)
        await client.call("ListConfig", {}, STS)
        with pytest.raises(PopUnavailable) as info:
            await client.call("ListConfig", {}, BearerCredentials(TOKEN))
        signature = sent_forms(m)[1]["Signature"]
    text = caplog.text + str(info.value) + repr(info.value)
    assert caplog.records
    for secret in (TOKEN, "sts-secret", "st-tok", signature):
        assert secret not in text


def test_bearer_credentials_repr_is_masked() -> None:
    """The access token never shows in the credentials' repr."""
    assert TOKEN not in repr(BearerCredentials(TOKEN))
    assert "***" in repr(BearerCredentials(TOKEN))
