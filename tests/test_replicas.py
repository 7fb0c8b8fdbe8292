"""Two gateway processes sharing session keys and one Redis: any replica serves any request.

The emulator and the sample CRM run in the test process; each gateway is a subprocess
(`python -m ccc_gateway run --config …`) on its own port with its own `aliyun.redirect_uri`,
both registered with the emulator. A browser's cookies are per host, not per port, so one
cookie jar reaches both replicas, as it would behind a load balancer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer
from cryptography.fernet import Fernet
from stack import AGENT1, CLIENT_ID, CLIENT_SECRET, Browser, Stack
from test_serve import start_gateway, stop
from test_session_store import REDIS_SERVER, RedisServer
from yarl import URL

from ccc_gateway.app import create_app
from ccc_gateway.emulator.app import create_emulator_app
from ccc_gateway.emulator.faults import Fault
from ccc_gateway.emulator.keys import FAULTS_KEY, REQUEST_LOG_KEY
from ccc_gateway.emulator.settings import EmulatorSettings, OAuthClient
from ccc_gateway.runtime.tls import client_context, ensure_self_signed, server_context
from ccc_gateway.sessions.manager import SESSION_COOKIE
from sample_crm.app import create_app as create_crm_app

WAIT = 20.0
API = "/aliyun/ccc/api"


@dataclass
class Site:
    """What stack.Browser needs to know of the gateway it talks to."""

    url: URL
    cert: Path
    emulator_url: URL


@dataclass
class Replicas:
    redis: RedisServer
    emulator: TestServer
    settings: EmulatorSettings
    a: Site
    b: Site
    processes: list[subprocess.Popen[bytes]]

    def browser(self) -> Browser:
        return Browser(cast(Stack, self.a))  # signs in through A; reaches B with the same jar

    def refreshes(self) -> list[dict[str, Any]]:
        entries = self.emulator.app[REQUEST_LOG_KEY].entries()
        return [
            e
            for e in entries
            if e["path"] == "/v1/token" and e["form"].get("grant_type") == "refresh_token"
        ]


def gateway_yaml(
    tmp_path: Path, port: int, crm_port: int, emulator: str, keys: list[str], redis_url: str
) -> Path:
    cert, key = ensure_self_signed(tmp_path / "tls")
    data = {
        "listen": {"host": "127.0.0.1", "port": port, "shutdown_timeout": "2s"},
        "tls": {"cert": str(cert), "key": str(key)},
        "upstream": {"url": f"http://127.0.0.1:{crm_port}"},
        "aliyun": {
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "redirect_uri": f"https://127.0.0.1:{port}/aliyun/auth/callback",
            "authorize_url": f"{emulator}/oauth2/v1/auth",
            "token_url": f"{emulator}/v1/token",
            "revoke_url": f"{emulator}/v1/revoke",
            "userinfo_url": f"{emulator}/v1/userinfo",
            "jwks_url": f"{emulator}/v1/keys",
            "issuer": emulator,
        },
        "ccc": {
            "instance_id": "ccc-demo-instance",
            "endpoint": f"{emulator}/",
            "version": "2017-07-05",
        },
        "session": {"keys": keys, "store": redis_url},
        "log": {"level": "INFO"},
    }
    path = tmp_path / f"gateway-{port}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


async def wait_healthy(port: int, process: subprocess.Popen[bytes], cert: Path) -> None:
    deadline = time.monotonic() + WAIT
    connector = aiohttp.TCPConnector(ssl=client_context(cert))
    async with aiohttp.ClientSession(connector=connector) as client:
        while True:
            assert process.poll() is None, "a gateway exited"
            try:
                async with client.get(f"https://127.0.0.1:{port}/aliyun/healthz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, "a gateway did not come up"
            await asyncio.sleep(0.05)


@pytest.fixture
async def replicas(
    tmp_path: Path, unused_tcp_port_factory: Callable[[], int]
) -> AsyncIterator[Replicas]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (scripts/install-system-packages.sh)")
    redis = RedisServer(unused_tcp_port_factory(), tmp_path / "redis")
    redis.start()
    crm = TestServer(create_crm_app(tmp_path / "crm.sqlite3"), host="127.0.0.1")
    port_a, port_b = unused_tcp_port_factory(), unused_tcp_port_factory()
    callbacks = tuple(f"https://127.0.0.1:{p}/aliyun/auth/callback" for p in (port_a, port_b))
    settings = EmulatorSettings(
        public_url="http://placeholder", clients=(OAuthClient(CLIENT_ID, CLIENT_SECRET, callbacks),)
    )
    emulator = TestServer(create_emulator_app(settings), host="127.0.0.1")
    processes: list[subprocess.Popen[bytes]] = []
    try:
        await crm.start_server()
        await emulator.start_server()
        settings.public_url = settings.issuer = f"http://127.0.0.1:{emulator.port}"
        keys = [Fernet.generate_key().decode()]  # the same key ring for both replicas
        cert, _ = ensure_self_signed(tmp_path / "tls")
        for port in (port_a, port_b):
            config = gateway_yaml(tmp_path, port, crm.port, settings.public_url, keys, redis.url)
            processes.append(start_gateway(config, tmp_path / f"gateway-{port}.log"))
        for port, process in zip((port_a, port_b), processes, strict=True):
            await wait_healthy(port, process, cert)
        emulator_url = URL(settings.public_url)
        yield Replicas(
            redis,
            emulator,
            settings,
            Site(URL(f"https://127.0.0.1:{port_a}"), cert, emulator_url),
            Site(URL(f"https://127.0.0.1:{port_b}"), cert, emulator_url),
            processes,
        )
    finally:
        for process in processes:
            stop(process)
        await emulator.close()
        await crm.close()
        redis.stop()


@pytest.fixture
async def browser(replicas: Replicas) -> AsyncIterator[Browser]:
    b = replicas.browser()
    yield b
    await b.close()


async def signed_in(replicas: Replicas, browser: Browser) -> None:
    await browser.login_crm()
    answer = await browser.sign_in(AGENT1)
    assert answer.status == 303, await answer.text()


async def get(browser: Browser, site: Site, path: str) -> tuple[int, Any]:
    async with browser.client.get(site.url.join(URL(path))) as response:
        is_json = response.content_type == "application/json"
        return response.status, await (response.json() if is_json else response.text())


async def post(browser: Browser, site: Site, path: str, **kwargs: Any) -> tuple[int, Any]:
    headers = {
        "Origin": str(site.url),
        "Sec-Fetch-Site": "same-origin",
        "Sec-Fetch-Mode": "cors",  # a fetch from the page, as the softphone makes it
        "Sec-Fetch-Dest": "empty",
    }
    async with browser.client.post(site.url.join(URL(path)), headers=headers, **kwargs) as r:
        return r.status, await r.json()


async def api(browser: Browser, site: Site) -> tuple[int, Any]:
    data = {"request": json.dumps({})}
    return await post(browser, site, API, params={"action": "GetServiceExtensions"}, data=data)


async def test_signed_in_on_a_is_signed_in_on_b(replicas: Replicas, browser: Browser):
    """A sign-in made through replica A is the session on replica B, and B's API call works."""
    await signed_in(replicas, browser)
    status, body = await get(browser, replicas.b, "/aliyun/session")
    assert status == 200 and body["signedIn"] is True
    assert body["agent"]["upn"] == AGENT1[0]
    status, body = await api(browser, replicas.b)
    assert status == 200, body


async def test_refresh_race_across_replicas_reaches_alibaba_once(
    replicas: Replicas, browser: Browser
):
    """An expiring token used at A and B at once is refreshed exactly once; both calls work."""
    replicas.settings.access_token_ttl = 30  # inside the gateway's 60 s leeway: due at once
    await signed_in(replicas, browser)
    replicas.settings.access_token_ttl = 3600  # the refreshed token is not due again
    # A slow token endpoint keeps the first refresh in flight while the other replica arrives.
    replicas.emulator.app[FAULTS_KEY].add(Fault("token", delay=0.5, count=2))
    replicas.emulator.app[REQUEST_LOG_KEY].clear()
    (status_a, body_a), (status_b, body_b) = await asyncio.gather(
        api(browser, replicas.a), api(browser, replicas.b)
    )
    assert (status_a, status_b) == (200, 200), (body_a, body_b)
    assert len(replicas.refreshes()) == 1
    for site in (replicas.a, replicas.b):
        status, body = await get(browser, site, "/aliyun/session")
        assert status == 200 and body["signedIn"] is True


async def test_sign_out_on_a_is_effective_on_b(replicas: Replicas, browser: Browser):
    """After a revoke on A, a copy of the old cookie gets 401 on B at once."""
    await signed_in(replicas, browser)
    thief = replicas.browser()
    try:
        for cookie in browser.client.cookie_jar:
            thief.client.cookie_jar.update_cookies({cookie.key: cookie.value}, replicas.a.url)
        assert thief.cookie(SESSION_COOKIE) is not None
        status, body = await post(browser, replicas.a, "/aliyun/revoke")
        assert status == 200 and body["signedIn"] is False
        status, body = await api(thief, replicas.b)
        assert status == 401 and body["errorCode"] == "NotAuthenticated"
        status, body = await get(thief, replicas.b, "/aliyun/session")
        assert status == 200 and body["signedIn"] is False
    finally:
        await thief.close()


async def test_replayed_callback_on_the_other_replica_is_refused(
    replicas: Replicas, browser: Browser
):
    """A callback URL finished at A is refused when replayed at B (shared consumed states)."""
    await browser.login_crm()
    authorize_url = await browser.start_sign_in()
    login_cookie = browser.cookie("__Host-ccc-login")
    answer = await browser.authorize(authorize_url)
    callback = URL(answer.headers["Location"])
    async with browser.client.get(callback, allow_redirects=False) as first:
        assert first.status == 303
    replay = replicas.b.url.with_path(callback.path).with_query(callback.query)
    browser.client.cookie_jar.update_cookies({"__Host-ccc-login": login_cookie}, replicas.a.url)
    async with browser.client.get(replay, allow_redirects=False) as second:
        assert second.status == 400


async def test_redis_down_is_503_for_the_softphone_while_the_crm_is_served(
    replicas: Replicas, browser: Browser
):
    """With Redis stopped, session, API and sign-in answer 503 JSON; CRM pages stay 200."""
    await signed_in(replicas, browser)
    replicas.redis.stop()
    for status, body in (
        await get(browser, replicas.a, "/aliyun/session"),
        await api(browser, replicas.a),
        await get(browser, replicas.a, "/aliyun/auth"),
    ):
        assert status == 503
        assert body["errorCode"] == "ServiceUnavailable"
        assert body["message"] == "session store unavailable"
    status, page = await get(browser, replicas.a, "/")
    assert status == 200 and "customer list" in page
    status, ready = await get(browser, replicas.a, "/aliyun/readyz")
    assert status == 503 and ready["checks"]["session_store"].startswith("unreachable")
    assert ready["checks"]["crm"] == "ok"


async def test_cookie_store_replicas_sharing_keys_serve_any_request(
    make_stack: Callable[..., Any], unused_tcp_port_factory: Callable[[], int]
):
    """Without Redis, a second app with the same keys serves a sign-in made on the first."""
    stack = await make_stack()
    port = unused_tcp_port_factory()
    config = dataclasses.replace(
        stack.config,
        listen=dataclasses.replace(stack.config.listen, port=port),
        aliyun=dataclasses.replace(
            stack.config.aliyun, redirect_uri=URL(f"https://127.0.0.1:{port}/aliyun/auth/callback")
        ),
    )
    assert config.session.store is None
    other = TestServer(create_app(config, clock=stack.clock), host="127.0.0.1", port=port)
    await other.start_server(ssl=server_context(*ensure_self_signed(stack.cert.parent)))
    browser = stack.browser()
    try:
        await browser.login_crm()
        assert (await browser.sign_in(AGENT1)).status == 303
        site_b = Site(URL(f"https://127.0.0.1:{port}"), stack.cert, stack.emulator_url)
        status, body = await get(browser, site_b, "/aliyun/session")
        assert status == 200 and body["signedIn"] is True
        status, body = await api(browser, site_b)
        assert status == 200, body
    finally:
        await browser.close()
        await other.close()
