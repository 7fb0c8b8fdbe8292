"""The emulator's app factory and its `/_emulator/` test knobs."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from ccc_gateway.emulator.app import create_emulator_app, run_emulator
from ccc_gateway.emulator.faults import apply_fault, parse_fault
from ccc_gateway.emulator.keys import FAULTS_KEY, STORE_KEY
from ccc_gateway.emulator.minting import mint_access_token
from ccc_gateway.emulator.request_log import MAX_ENTRIES, RequestLog
from ccc_gateway.emulator.settings import EmulatorSettings, OAuthClient

PUBLIC_URL = "https://emulator.test"
REDIRECT = "https://crm.example.test/aliyun/auth/callback"
CLIENT = OAuthClient("client-1", "secret-1", (REDIRECT,))
CREDS = {"client_id": CLIENT.client_id, "client_secret": CLIENT.client_secret}

Client = TestClient[Any, Any]


@pytest.fixture
def settings() -> EmulatorSettings:
    return EmulatorSettings(public_url=PUBLIC_URL, clients=(CLIENT,))


@pytest.fixture
async def client(aiohttp_client: Any, settings: EmulatorSettings) -> Client:
    return await aiohttp_client(create_emulator_app(settings))  # type: ignore[no-any-return]


async def revoke(client: Client) -> aiohttp.ClientResponse:
    return await client.post("/v1/revoke", data={"token": "t", **CREDS})


async def add_fault(client: Client, **fault: Any) -> aiohttp.ClientResponse:
    return await client.post("/_emulator/faults", json=fault)


async def test_factory_puts_store_on_app(settings: EmulatorSettings) -> None:
    """create_emulator_app exposes the shared store under STORE_KEY with the given settings."""
    app = create_emulator_app(settings)
    assert app[STORE_KEY].settings is settings


async def test_settings_read_and_patch(client: Client, settings: EmulatorSettings) -> None:
    """GET shows the knobs; POST patches them on the live settings."""
    before = await (await client.get("/_emulator/settings")).json()
    assert before["token_format"] == "bearer"
    resp = await client.post(
        "/_emulator/settings",
        json={"token_format": "sts", "access_token_ttl": 900, "rotate_refresh_tokens": True},
    )
    assert resp.status == 200
    assert (await resp.json())["access_token_ttl"] == 900
    assert (settings.token_format, settings.access_token_ttl) == ("sts", 900.0)
    assert settings.rotate_refresh_tokens is True


@pytest.mark.parametrize(
    "body",
    [
        {"color": "red"},
        {"token_format": "jwt"},
        {"expires_in_as_string": "yes"},
        {"code_ttl": 0},
        {"code_ttl": True},
        [1, 2],
    ],
)
async def test_settings_reject_bad_input(
    client: Client, settings: EmulatorSettings, body: Any
) -> None:
    """Unknown fields and bad values are 400 and change nothing."""
    resp = await client.post("/_emulator/settings", json=body)
    assert resp.status == 400
    assert "error" in await resp.json()
    assert settings.code_ttl == 60.0 and settings.token_format == "bearer"


async def test_settings_reject_non_json(client: Client) -> None:
    """A body that is not JSON is 400, not a server error."""
    resp = await client.post("/_emulator/settings", data=b"\xff{", headers={"Content-Type": "x"})
    assert resp.status == 400


async def test_fault_status_applies_count_times(client: Client) -> None:
    """A status fault fails the next `count` calls with a JSON body, then normal service resumes."""
    assert (await add_fault(client, endpoint="revoke", status=503, count=2)).status == 201
    for _ in range(2):
        resp = await revoke(client)
        assert resp.status == 503
        assert (await resp.json())["error"] == "server_error"
    assert (await revoke(client)).status == 200


async def test_fault_error_is_an_oauth_400(client: Client) -> None:
    """An error fault answers 400 with that OAuth error code."""
    await add_fault(client, endpoint="token", error="invalid_grant")
    resp = await client.post("/v1/token", data={"grant_type": "refresh_token", **CREDS})
    assert (resp.status, (await resp.json())["error"]) == (400, "invalid_grant")


async def test_delay_fault_alone_answers_normally(client: Client) -> None:
    """A delay-only fault still answers normally and is used up."""
    await add_fault(client, endpoint="jwks", delay=0.01)
    assert (await client.get("/v1/keys")).status == 200
    assert (await (await client.get("/_emulator/faults")).json())["faults"] == []


async def test_delay_fault_outlasts_client_timeout(client: Client) -> None:
    """A long delay makes a client with a shorter timeout give up."""
    await add_fault(client, endpoint="userinfo", delay=0.5, status=500)
    with pytest.raises(asyncio.TimeoutError):
        await client.get("/v1/userinfo", timeout=aiohttp.ClientTimeout(total=0.05))


async def test_delete_faults_clears_them(client: Client) -> None:
    """DELETE /_emulator/faults removes pending faults."""
    await add_fault(client, endpoint="revoke", status=500, count=5)
    await client.delete("/_emulator/faults")
    assert (await revoke(client)).status == 200


@pytest.mark.parametrize(
    "body",
    [
        {"endpoint": "nowhere", "status": 500},
        {"endpoint": "token"},
        {"endpoint": "token", "status": 200},
        {"endpoint": "token", "status": 500, "extra": 1},
        {"endpoint": "token", "delay": -1},
        {"endpoint": "token", "status": 500, "count": 0},
    ],
)
async def test_bad_fault_is_400(client: Client, body: dict[str, Any]) -> None:
    """Malformed fault definitions are rejected with 400."""
    assert (await add_fault(client, **body)).status == 400


async def test_pop_fault_uses_pop_error_shape(settings: EmulatorSettings) -> None:
    """apply_fault for "pop" answers in Alibaba's API-gateway error shape."""
    app = create_emulator_app(settings)
    assert await apply_fault(app, "pop") is None
    app[FAULTS_KEY].add(parse_fault({"endpoint": "pop", "status": 403, "error": "Forbidden.RAM"}))
    resp = await apply_fault(app, "pop")
    assert resp is not None and resp.status == 403
    assert resp.text is not None and '"Code": "Forbidden.RAM"' in resp.text


async def test_request_log_records_oauth_requests(client: Client) -> None:
    """Every OAuth request is logged with query and form, knobs excepted, newest last."""
    await client.get("/oauth2/v1/auth", params={"client_id": "x"})
    await revoke(client)
    await client.get("/_emulator/settings")
    entries = (await (await client.get("/_emulator/requests")).json())["requests"]
    assert [(e["method"], e["path"]) for e in entries] == [
        ("GET", "/oauth2/v1/auth"),
        ("POST", "/v1/revoke"),
    ]
    assert entries[0]["query"] == {"client_id": "x"}
    assert entries[1]["form"]["token"] == "t"
    assert isinstance(entries[1]["at"], float)
    await client.delete("/_emulator/requests")
    assert (await (await client.get("/_emulator/requests")).json())["requests"] == []


async def test_request_log_covers_the_pop_path(client: Client) -> None:
    """Requests to the POP path are logged by the same middleware, form included."""
    await client.post("/", params={"Action": "GetUser"}, data={"InstanceId": "i-1"})
    entries = (await (await client.get("/_emulator/requests")).json())["requests"]
    assert entries[-1]["path"] == "/"
    assert entries[-1]["query"] == {"Action": "GetUser"}
    assert entries[-1]["form"] == {"InstanceId": "i-1"}


def test_request_log_is_capped() -> None:
    """The request log keeps only the newest MAX_ENTRIES entries."""
    log = RequestLog()
    for i in range(MAX_ENTRIES + 5):
        log.add({"n": i})
    entries = log.entries()
    assert len(entries) == MAX_ENTRIES
    assert entries[-1] == {"n": MAX_ENTRIES + 4}


async def test_expire_tokens_knob(client: Client) -> None:
    """POST /_emulator/tokens/expire makes the agent's access tokens expire now."""
    store = client.app[STORE_KEY]
    agent = store.settings.agents[0]
    token = mint_access_token(store, agent, CLIENT.client_id, "openid", None)
    resp = await client.post("/_emulator/tokens/expire", json={"upn": agent.upn})
    assert (await resp.json())["expired"] == 1
    assert store.live_bearer(token.value) is None
    unknown = await client.post("/_emulator/tokens/expire", json={"upn": "who@x"})
    assert unknown.status == 400


async def test_run_emulator_serves_on_loopback(settings: EmulatorSettings) -> None:
    """run_emulator starts a real server on a free port and cleanup stops it."""
    runner = await run_emulator(settings, "127.0.0.1", 0, None)
    try:
        host, port = runner.addresses[0][:2]
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://{host}:{port}/.well-known/openid-configuration") as resp,
        ):
            assert (await resp.json())["issuer"] == PUBLIC_URL
    finally:
        await runner.cleanup()


async def test_run_emulator_reports_busy_port(settings: EmulatorSettings) -> None:
    """A port already in use raises OSError instead of leaving a half-started runner."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        with pytest.raises(OSError):
            await run_emulator(settings, "127.0.0.1", sock.getsockname()[1], None)


def test_app_is_an_application(settings: EmulatorSettings) -> None:
    """The factory returns an aiohttp Application with the OAuth routes registered."""
    app = create_emulator_app(settings)
    assert isinstance(app, web.Application)
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert {"/oauth2/v1/auth", "/v1/token", "/v1/revoke", "/v1/userinfo", "/v1/keys"} <= paths
