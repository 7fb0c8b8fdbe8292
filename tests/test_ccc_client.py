"""Tests for ccc_gateway.ccc.client.PopClient against a scripted POP server on loopback.

The server is raw asyncio, so a test can make it answer anything: JSON, junk, a body longer
than it said, chunks, nothing at all (a reset), or nothing in time.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import itertools
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import pytest
from oracles.pop_signing import sign_v1

from ccc_gateway.auth.oauth.tokens import StsCredentials
from ccc_gateway.ccc.client import BearerCredentials, PopClient, PopResult
from ccc_gateway.ccc.pop.errors import PopTimeout, PopUnavailable, RequestShapeError

NOW = calendar.timegm((2024, 5, 6, 7, 8, 9))
TOKEN = "bearer-secret-token"
STS = StsCredentials(
    access_key_id="STS.key", access_key_secret="sts-secret", security_token="st-tok"
)
OK_BODY = {"RequestId": "req-1", "Success": True, "Code": "OK", "HttpStatusCode": 200}
RESET = b""  # a planned answer of no bytes: the connection is cut instead


@dataclass(frozen=True)
class Cut:
    """A planned answer after which the server cuts the connection."""

    answer: bytes


def http(status: int, body: bytes, *, ctype: str = "application/json", **extra: str) -> bytes:
    """An HTTP/1.1 answer with a Content-Length (unless `extra` frames it otherwise)."""
    headers = {"Content-Type": ctype, "Content-Length": str(len(body)), **extra}
    if "Transfer-Encoding" in extra:
        del headers["Content-Length"]
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"HTTP/1.1 {status} X\r\n{head}\r\n".encode() + body


def ok(payload: Any = OK_BODY, status: int = 200) -> bytes:
    return http(status, json.dumps(payload).encode())


def chunked(status: int, body: bytes, size: int = 1000) -> bytes:
    chunks = b"".join(
        b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
        for i in range(0, len(body), size)
    )
    return http(status, chunks + b"0\r\n\r\n", **{"Transfer-Encoding": "chunked"})


@dataclass
class FakePop:
    """Answers each request with the next planned bytes (RESET: cut the connection)."""

    plans: list[bytes | Cut | Callable[[], Awaitable[bytes]]] = field(default_factory=list)
    requests: list[tuple[bytes, bytes]] = field(default_factory=list)  # (head, body)
    connections: int = 0
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def forms(self) -> list[dict[str, str]]:
        return [dict(parse_qsl(body.decode("ascii"))) for _, body in self.requests]

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                self.requests.append((head, await reader.readexactly(length)))
                plan = self.plans.pop(0) if self.plans else ok()
                if isinstance(plan, Cut):
                    writer.write(plan.answer)
                    await writer.drain()
                    plan = RESET
                answer = plan if isinstance(plan, bytes) else await plan()
                if not answer:
                    writer.transport.abort()
                    return
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def pop() -> AsyncIterator[FakePop]:
    fake = FakePop()
    server = await asyncio.start_server(fake.serve, "127.0.0.1", 0)
    fake.port = server.sockets[0].getsockname()[1]
    async with server:
        yield fake
        server.close()


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., PopClient]]:
    clients: list[PopClient] = []

    def make(endpoint: str, **overrides: object) -> PopClient:
        nonces = (f"nonce-{i}" for i in itertools.count(1))
        ticks = itertools.count(100.0, 0.25)
        options: dict[str, object] = {
            "endpoint": endpoint,
            "version": "2017-07-05",
            "region_id": "cn-shanghai",
            "timeout": 2.0,
            "clock": lambda: NOW,
            "nonce_factory": lambda: next(nonces),
            "monotonic": lambda: next(ticks),
            **overrides,
        }
        client = PopClient(**options)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


MakeClient = Callable[..., PopClient]


async def test_bearer_body_fields(pop: FakePop, make_client: MakeClient) -> None:
    """Bearer mode sends common + business parameters, the token, and no signature fields."""
    result = await make_client(pop.url).call(
        "ListConfig", {"InstanceId": "i-1", "ConfigItem.1": "a b"}, BearerCredentials(TOKEN)
    )
    ((head, _),) = pop.requests
    assert head.startswith(b"POST / HTTP/1.1\r\n")
    assert b"\r\nContent-Type: application/x-www-form-urlencoded\r\n" in head
    assert pop.forms() == [
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


async def test_sts_body_fields_and_signature(pop: FakePop, make_client: MakeClient) -> None:
    """STS mode sends the key fields and a POST signature that verifies over the sent body."""
    await make_client(pop.url).call("GetUser", {"InstanceId": "i-1", "UserId": "u*~"}, STS)
    (form,) = pop.forms()
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


async def test_repeated_sts_calls_are_each_signed_anew(pop: FakePop, make_client: MakeClient):
    """A call repeated gets its own nonce, timestamp and signature."""
    seconds = iter([NOW, NOW + 1, NOW + 1])
    client = make_client(pop.url, clock=lambda: next(seconds))
    other = StsCredentials("STS.key", "other-secret", "st-tok")
    for credentials in (STS, STS, other):
        await client.call("GetUser", {"InstanceId": "i-1", "UserId": "u*~"}, credentials)
    forms = pop.forms()
    assert [f["SignatureNonce"] for f in forms] == ["nonce-1", "nonce-2", "nonce-3"]
    assert [f["Timestamp"] for f in forms] == [
        "2024-05-06T07:08:09Z",
        "2024-05-06T07:08:10Z",
        "2024-05-06T07:08:10Z",
    ]
    for form, secret in zip(forms, ("sts-secret", "sts-secret", "other-secret"), strict=True):
        signature = form.pop("Signature")
        assert signature == sign_v1("POST", form, secret)
    assert len({f["Timestamp"] + f["SignatureNonce"] for f in forms}) == 3


async def test_endpoint_path_is_the_request_target(pop: FakePop, make_client: MakeClient):
    """An endpoint with a path (a private gateway, the emulator) is POSTed to that path."""
    await make_client(pop.url + "pop/v1?x=1").call("GetUser", {}, STS)
    assert pop.requests[0][0].startswith(b"POST /pop/v1?x=1 HTTP/1.1\r\n")


async def test_connection_is_kept_and_reused(pop: FakePop, make_client: MakeClient) -> None:
    """Calls one after another share one kept-alive connection to the POP endpoint."""
    client = make_client(pop.url)
    for _ in range(5):
        assert (await client.call("GetUser", {}, STS)).status == 200
    assert (len(pop.requests), pop.connections) == (5, 1)


async def _stall() -> bytes:
    await asyncio.sleep(1)
    return ok()


async def _stall_mid_body() -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b'{"Code": '  # and no more


@pytest.mark.parametrize("plan", [_stall, _stall_mid_body], ids=["no-answer", "mid-body"])
async def test_timeout(
    pop: FakePop, make_client: MakeClient, plan: Callable[[], Awaitable[bytes]]
) -> None:
    """No (whole) answer within the timeout raises PopTimeout, not retried."""
    pop.plans = [plan, ok()]
    with pytest.raises(PopUnavailable) as info:
        await make_client(pop.url, timeout=0.3).call("ListConfig", {}, BearerCredentials(TOKEN))
    assert len(pop.requests) == 1
    assert isinstance(info.value, PopTimeout)


async def test_timeout_bounds_the_whole_call(make_client: MakeClient) -> None:
    """An answer that keeps coming, a little at a time, is still cut off at the timeout."""

    handlers: list[asyncio.Task[Any]] = []

    async def dribble(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.append(asyncio.current_task())  # type: ignore[arg-type]
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        with contextlib.suppress(ConnectionError):
            for _ in range(40):  # a byte every 50 ms: 2 s for the first 40 bytes
                if writer.is_closing() or reader.at_eof():
                    break  # the client gave up
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.05)
            writer.close()
            await writer.wait_closed()

    server = await asyncio.start_server(dribble, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        client = make_client(f"http://127.0.0.1:{port}/", timeout=0.3)
        with pytest.raises(PopUnavailable) as info:
            await client.call("ListConfig", {}, BearerCredentials(TOKEN))
        assert isinstance(info.value, PopTimeout)
        await asyncio.wait_for(asyncio.gather(*handlers), 5)  # it sees the connection cut
        server.close()


async def test_cancelled_call_stays_cancelled(pop: FakePop, make_client: MakeClient) -> None:
    """Cancelling a call (the client went away) is not turned into a timeout."""
    pop.plans = [_stall]
    client = make_client(pop.url, timeout=0.3)
    call = asyncio.ensure_future(client.call("ListConfig", {}, BearerCredentials(TOKEN)))
    await asyncio.sleep(0.1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    await asyncio.sleep(0.3)  # past the timeout: its timer was stopped with the call
    assert call.cancelled()


async def test_connection_error_retried_once_for_reads(pop: FakePop, make_client: MakeClient):
    """A read-only action is sent again, with a fresh nonce, after a connection failure."""
    pop.plans = [RESET, ok()]
    result = await make_client(pop.url).call("ListConfig", {}, BearerCredentials(TOKEN))
    assert result.status == 200
    assert [f["SignatureNonce"] for f in pop.forms()] == ["nonce-1", "nonce-2"]


async def test_connection_error_twice_gives_up(pop: FakePop, make_client: MakeClient) -> None:
    """A read-only action is retried only once."""
    pop.plans = [RESET, RESET, RESET]
    with pytest.raises(PopUnavailable) as info:
        await make_client(pop.url).call("ListConfig", {}, BearerCredentials(TOKEN))
    assert len(pop.requests) == 2
    assert not isinstance(info.value, PopTimeout)


async def test_refused_connection(make_client: MakeClient, caplog: pytest.LogCaptureFixture):
    """Nothing listening: PopUnavailable after one retry, not a timeout."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(PopUnavailable, match="unreachable") as info:
        await make_client(f"http://127.0.0.1:{port}/").call("GetUser", {}, STS)
    assert not isinstance(info.value, PopTimeout)
    assert "retrying once" in caplog.text


async def test_connection_error_not_retried_for_writes(pop: FakePop, make_client: MakeClient):
    """A write action is never replayed after a connection failure."""
    pop.plans = [RESET, ok()]
    with pytest.raises(PopUnavailable):
        await make_client(pop.url).call("AddAgentDevice", {}, BearerCredentials(TOKEN))
    assert len(pop.requests) == 1


async def test_answer_broken_off_is_not_replayed(pop: FakePop, make_client: MakeClient):
    """A connection lost inside the answer's body: PopUnavailable, even a read is not resent."""
    pop.plans = [Cut(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b'{"Code": '), ok()]
    with pytest.raises(PopUnavailable, match="broken off") as info:
        await make_client(pop.url).call("GetUser", {}, STS)
    assert len(pop.requests) == 1
    assert not isinstance(info.value, PopTimeout)


async def test_oversize_declared_length(pop: FakePop, make_client: MakeClient) -> None:
    """A Content-Length over the cap is refused before reading."""
    pop.plans = [b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b" " * 5000]
    with pytest.raises(PopUnavailable, match="over 1000 bytes"):
        await make_client(pop.url, max_response_bytes=1000).call(
            "GetUser", {}, BearerCredentials(TOKEN)
        )


async def test_oversize_streamed_body(pop: FakePop, make_client: MakeClient) -> None:
    """A body without Content-Length is cut off once it passes the cap."""
    pop.plans = [chunked(200, b'{"RequestId": "' + b"x" * 5000 + b'"}')]
    with pytest.raises(PopUnavailable, match="over 1000 bytes") as info:
        await make_client(pop.url, max_response_bytes=1000).call(
            "GetUser", {}, BearerCredentials(TOKEN)
        )
    assert not isinstance(info.value, PopTimeout)


@pytest.mark.parametrize("framing", ["length", "chunked"])
async def test_body_at_cap_is_accepted(pop: FakePop, make_client: MakeClient, framing: str):
    """A body exactly at the cap is read, whichever way it is framed."""
    body = b'{"Code": "OK"}'
    pop.plans = [http(200, body) if framing == "length" else chunked(200, body, size=5)]
    result = await make_client(pop.url, max_response_bytes=len(body)).call(
        "GetUser", {}, BearerCredentials(TOKEN)
    )
    assert result.code == "OK"


@pytest.mark.parametrize("body", [b"<html>busy</html>", b"", b"[1, 2]", b"\xff\xfe\x00"])
async def test_non_json_body(pop: FakePop, make_client: MakeClient, body: bytes) -> None:
    """A body that is not a JSON object raises PopUnavailable."""
    pop.plans = [http(502, body, ctype="text/html")]
    with pytest.raises(PopUnavailable, match="HTTP 502"):
        await make_client(pop.url).call("GetUser", {}, BearerCredentials(TOKEN))


async def test_not_http_at_all(pop: FakePop, make_client: MakeClient) -> None:
    """An answer that is not HTTP is PopUnavailable (and not replayed as a connect failure)."""
    pop.plans = [b"SSH-2.0-OpenSSH_9.6\r\n\r\n", ok()]
    with pytest.raises(PopUnavailable) as info:
        await make_client(pop.url).call("AddAgentDevice", {}, BearerCredentials(TOKEN))
    assert (len(pop.requests), isinstance(info.value, PopTimeout)) == (1, False)


async def test_error_body_passthrough(pop: FakePop, make_client: MakeClient) -> None:
    """A 4xx JSON error is returned as a result carrying the POP status, code and id."""
    error = {"RequestId": "r-9", "HostId": "ccc", "Code": "InvalidToken", "Message": "bad"}
    pop.plans = [ok(error, status=401)]
    result = await make_client(pop.url).call("GetUser", {}, BearerCredentials(TOKEN))
    assert (result.status, result.body, result.request_id, result.code) == (
        401,
        error,
        "r-9",
        "InvalidToken",
    )


async def test_reshaping_client(pop: FakePop, make_client: MakeClient) -> None:
    """reshape=True: answers come back in the SDK's shape, error answers in POP's own."""
    answer = {"RequestId": "r-1", "Code": "OK", "Users": {"User": [{"UserId": "u1"}]}}
    error = {"RequestId": "r-2", "Code": "Forbidden", "Message": "no"}
    pop.plans = [ok(answer), ok(error, status=403)]
    client = make_client(pop.url, reshape=True)
    result = await client.call("ListUsers", {}, STS)
    assert result.body == {"requestId": "r-1", "code": "OK", "users": [{"userId": "u1"}]}
    assert (result.request_id, result.code) == ("r-1", "OK")
    failed = await client.call("ListUsers", {}, STS)
    assert (failed.status, failed.body, failed.code) == (403, error, "Forbidden")


async def test_business_error_with_200(pop: FakePop, make_client: MakeClient) -> None:
    """A Success:false answer with HTTP 200 is an ordinary result."""
    pop.plans = [ok({"RequestId": "r-2", "Success": False, "Code": "NotExist.User"})]
    result = await make_client(pop.url).call("GetUser", {}, STS)
    assert (result.status, result.code) == (200, "NotExist.User")


async def test_missing_fields_are_none(pop: FakePop, make_client: MakeClient) -> None:
    """A JSON object without RequestId or Code gives None for both."""
    pop.plans = [ok({"Code": ["odd"]})]
    result = await make_client(pop.url).call("GetUser", {}, STS)
    assert (result.request_id, result.code) == (None, None)


@pytest.mark.parametrize("action", ["listConfig", "A", "List Config", "X" * 65, ""])
async def test_invalid_action_name(pop: FakePop, make_client: MakeClient, action: str) -> None:
    """A malformed action name is refused before anything is sent."""
    with pytest.raises(RequestShapeError, match="action"):
        await make_client(pop.url).call(action, {}, BearerCredentials(TOKEN))
    assert pop.requests == []


@pytest.mark.parametrize("name", ["Signature", "AccessKeyId", "SignatureType", "Action"])
async def test_reserved_business_parameter(pop: FakePop, make_client: MakeClient, name: str):
    """A business parameter that would steer authentication is refused."""
    with pytest.raises(RequestShapeError, match=name):
        await make_client(pop.url).call("GetUser", {name: "x"}, BearerCredentials(TOKEN))
    assert pop.requests == []


async def test_no_secrets_in_errors_or_logs(
    pop: FakePop, make_client: MakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    """Tokens, secrets and signatures appear in no log record or exception message."""
    caplog.set_level(logging.DEBUG, logger="ccc_gateway")
    pop.plans = [RESET, ok(), RESET, RESET]
    client = make_client(pop.url)
    await client.call("ListConfig", {}, STS)
    with pytest.raises(PopUnavailable) as info:
        await client.call("ListConfig", {}, BearerCredentials(TOKEN))
    signature = pop.forms()[1]["Signature"]
    text = caplog.text + str(info.value) + repr(info.value)
    assert caplog.records
    for secret in (TOKEN, "sts-secret", "st-tok", signature):
        assert secret not in text


def test_bearer_credentials_repr_is_masked() -> None:
    """The access token never shows in the credentials' repr."""
    assert TOKEN not in repr(BearerCredentials(TOKEN))
    assert "***" in repr(BearerCredentials(TOKEN))


async def test_nothing_in_the_ccc_package_keeps_a_call_s_secrets(
    pop: FakePop, make_client: MakeClient
) -> None:
    """After STS and Bearer calls, neither the client nor any module of ccc_gateway.ccc holds
    a cache: no memo of encodings, signed forms or decoded keys that would outlive the sign-in
    (issue 15, item 3)."""
    import importlib
    import pkgutil

    import ccc_gateway.ccc

    names = [m.name for m in pkgutil.walk_packages(ccc_gateway.ccc.__path__, "ccc_gateway.ccc.")]
    modules = list(map(importlib.import_module, names))

    def containers() -> dict[str, int]:
        return {
            f"{module.__name__}.{name}": len(value)
            for module in modules
            for name, value in vars(module).items()
            if isinstance(value, dict | set | list) and not name.startswith("__")
        }

    before = containers()
    client = make_client(pop.url)
    await client.call("GetUser", {"UserId": "u"}, STS)
    await client.call("GetUser", {"UserId": "u"}, BearerCredentials(TOKEN))
    for secret in (STS.access_key_secret, STS.security_token, TOKEN):
        assert secret not in repr(vars(client))
    assert containers() == before  # module-level tables are constants, filled by no call
    for module in modules:
        for name, value in vars(module).items():
            assert not hasattr(value, "cache_info"), f"{module.__name__}.{name} is an lru_cache"
