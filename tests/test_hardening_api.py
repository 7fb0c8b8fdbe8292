"""Issue 14's API and operations holes, end to end (THREAT_MODEL.md names each one: `HA`).

The softphone API answers only script (the SDK's XHR), never an image, link or form of the
gateway's own origin, and GET only for read-only actions; sign-out honours the CRM binding;
log lines cannot be forged or leak cookies; metrics and readiness details stay private; error
answers name neither the CRM's address nor software versions; check-config warns about
per-worker revocation.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import logging
import ssl
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, make_mocked_request
from stack import Browser, Stack
from test_cli import ccc, write_config
from test_hardening import API, pop_calls, signed_in
from yarl import URL

from ccc_gateway.config.load import config_warnings
from ccc_gateway.keys import CONFIG, METRICS
from ccc_gateway.ops.health import shows_details
from ccc_gateway.ops.log import ACCESS_LOGGER, setup_logging
from ccc_gateway.ops.metrics import metrics_app
from ccc_gateway.runtime.serve import https_redirect_app
from ccc_gateway.runtime.tls import client_context
from ccc_gateway.sessions.manager import SESSION_COOKIE


@pytest.fixture
async def agent(stack: Stack) -> AsyncIterator[Browser]:
    """A browser logged in to the sample CRM as edward and signed in to Alibaba as agent1."""
    browser = await signed_in(stack)
    yield browser
    await browser.close()


@pytest.fixture
async def chromium_page() -> AsyncIterator[Any]:
    """A page of headless Chromium (as tests/test_browser_e2e.py makes them)."""
    from playwright.async_api import async_playwright
    from test_browser_e2e import CHROMIUM, CHROMIUM_ARGS, HAVE_CHROMIUM

    if not HAVE_CHROMIUM:
        pytest.skip("/usr/bin/chromium is absent (make browser or apt-get install chromium)")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            context = await chromium.new_context(ignore_https_errors=True)
            context.set_default_timeout(20_000)
            yield await context.new_page()
        finally:
            await chromium.close()


CALL = {"action": "AddAgentDevice", "request": json.dumps({"clientIp": "10.0.0.1"})}
SCRIPT = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"}


def _own(stack: Stack) -> str:
    return str(stack.url)


# ---------------------------------------------------------------- item 4: request shape


def _html_shapes(own: str) -> dict[str, tuple[str, dict[str, str]]]:
    """What a browser sends for script-free HTML of the gateway's own origin: (method, headers)."""
    return {
        "img": (
            "GET",
            {
                "Sec-Fetch-Site": "same-origin",
                "Sec-Fetch-Mode": "no-cors",
                "Sec-Fetch-Dest": "image",
            },
        ),
        "link": (
            "GET",
            {
                "Sec-Fetch-Site": "same-origin",
                "Sec-Fetch-Mode": "navigate",
                "Sec-Fetch-Dest": "document",
                "Accept": "text/html",
            },
        ),
        "iframe": (
            "GET",
            {
                "Sec-Fetch-Site": "same-origin",
                "Sec-Fetch-Mode": "navigate",
                "Sec-Fetch-Dest": "iframe",
            },
        ),
        "form-post": (
            "POST",
            {
                "Origin": own,
                "Sec-Fetch-Site": "same-origin",
                "Sec-Fetch-Mode": "navigate",
                "Sec-Fetch-Dest": "document",
            },
        ),
        "form-post-old-browser": ("POST", {"Origin": own}),
        "no-cors-fetch": (
            "POST",
            {
                "Origin": own,
                "Sec-Fetch-Site": "same-origin",
                "Sec-Fetch-Mode": "no-cors",
                "Sec-Fetch-Dest": "empty",
            },
        ),
    }


async def test_same_origin_image_link_or_form_cannot_call_the_api(stack: Stack, agent: Browser):
    """An <img>, link, frame or form of our own origin gets 403 CrossSiteRequest; Alibaba sees
    nothing (not even a token refresh), and the SDK's shape of the same call works."""
    token_calls = len(await stack.emulator_requests("/v1/token"))
    wrong = {}
    for name, (method, headers) in _html_shapes(_own(stack)).items():
        if method == "GET":
            sent = agent.client.get(agent.url(API), params=CALL, headers=headers)
        else:
            sent = agent.client.post(
                agent.url(API), params={"action": CALL["action"]}, data=CALL, headers=headers
            )
        async with sent as response:
            body = await response.text()
            if response.status != 403 or not (
                '"CrossSiteRequest"' in body or "Cross-site request refused" in body
            ):
                wrong[name] = (response.status, body[:200])
    assert wrong == {}
    assert await pop_calls(stack) == []
    assert len(await stack.emulator_requests("/v1/token")) == token_calls
    async with await agent.post(API, params={"action": CALL["action"]}, data=CALL) as response:
        assert response.status == 200, await response.text()  # the SDK's XHR POST
    assert [
        call["query"].get("Action") or call["form"].get("Action") for call in await pop_calls(stack)
    ] == ["AddAgentDevice"]


async def test_get_serves_read_only_actions_only(stack: Stack, agent: Browser):
    """A script GET of an action that changes state is 405 (Allow: POST) and never forwarded;
    a read-only action (GetConfig) is served over GET."""
    for action in ("AddAgentDevice", "ResetUserStatus", "RequestLoginInfo", "GetTURNCredentials"):
        params = {**CALL, "action": action}
        async with agent.client.get(agent.url(API), params=params, headers=SCRIPT) as response:
            assert response.status == 405, action
            assert response.headers["Allow"] == "POST"
            assert (await response.json())["errorCode"] == "MethodNotAllowed"
    assert await pop_calls(stack) == []
    params = {"action": "GetConfig", "request": json.dumps({"name": "Region"})}
    async with agent.client.get(agent.url(API), params=params, headers=SCRIPT) as response:
        assert response.status == 200
        assert (await response.json())["configItem"]["value"] == "cn-shanghai"


async def test_script_header_stands_in_for_fetch_metadata(stack: Stack, agent: Browser):
    """A browser without Sec-Fetch-* headers is served when the SDK sends X-CCC-Softphone
    (its ajaxHeaders); the same POST without it is refused."""
    data = {"request": "{}"}
    params = {"action": "GetServiceExtensions"}
    old = {"Origin": _own(stack)}
    async with agent.client.post(agent.url(API), params=params, data=data, headers=old) as r:
        assert r.status == 403 and (await r.json())["errorCode"] == "CrossSiteRequest"
    headers = {**old, "X-CCC-Softphone": "1"}
    async with agent.client.post(agent.url(API), params=params, data=data, headers=headers) as r:
        assert r.status == 200, await r.text()


async def test_softphone_page_configures_the_script_header(stack: Stack, browser: Browser):
    """The softphone page gives the SDK `ajaxHeaders: {"X-CCC-Softphone": "1"}` and POST."""
    async with await browser.get("/aliyun/softphone") as response:
        html = await response.text()
    start = html.index('id="ccc-config">') + len('id="ccc-config">')
    config = json.loads(html[start : html.index("</script>", start)])
    options = config["options"]  # the SDK's constructor options (softphone/views.py)
    assert options["ajaxHeaders"] == {"X-CCC-Softphone": "1"}
    assert options["ajaxMethod"] == "post"


@pytest.mark.browser
async def test_emulator_sdk_sends_what_the_real_sdk_sends(
    make_stack: Any, chromium_page: Any
) -> None:
    """The stand-in SDK calls the API as the real one: XHR POST `?action=Name` with a
    urlencoded `request=<JSON>`, fetch metadata cors/empty, and every ajaxHeaders header."""
    from test_browser_e2e import SDK, sign_in_softphone

    page = chromium_page
    stack = await make_stack(emulator_tls=True, softphone=SDK)
    seen: list[Any] = []
    page.on("request", lambda r: seen.append(r) if "/aliyun/ccc/api" in r.url else None)
    await sign_in_softphone(page, str(stack.url))
    assert seen, "the softphone made no API call"
    for request in seen:
        headers = await request.all_headers()
        assert request.method == "POST" and request.resource_type == "xhr", request.url
        assert URL(request.url).query["action"]
        assert headers["content-type"] == "application/x-www-form-urlencoded"
        assert json.loads(dict(URL("?" + (request.post_data or "")).query)["request"]) is not None
        assert (headers["sec-fetch-mode"], headers["sec-fetch-dest"]) == ("cors", "empty")
    # ajaxHeaders reach the wire: a second SDK in the softphone's frame, given one.
    frame = next(f for f in page.frames if f.url.endswith("/aliyun/softphone"))
    seen.clear()
    await frame.evaluate(
        """() => { const box = document.createElement('div'); document.body.append(box);
        window.probe = new WorkbenchSdk({dom: box, instanceId: 'ccc-demo-instance',
          ajaxPath: '/aliyun/ccc/api', ajaxHeaders: {'X-CCC-Softphone': '1', 'X-Extra': 'x'}}); }"""
    )
    for _ in range(100):  # bounded: the probe's first call is RequestLoginInfo
        if seen:
            break
        await asyncio.sleep(0.1)
    headers = await seen[0].all_headers()
    assert (headers.get("x-ccc-softphone"), headers.get("x-extra")) == ("1", "x")
    await frame.evaluate("() => window.probe.destroy()")


# ---------------------------------------------------------------- item 7: sign-out binding


async def test_revoke_honours_the_crm_binding(stack: Stack, agent: Browser):
    """CRM user sissi, on edward's browser, cannot sign edward's agent out: 403
    CrmUserMismatch, Alibaba revokes nothing, and edward is still signed in afterwards."""
    await agent.logout_crm()
    await agent.login_crm("sissi", "5678")
    async with await agent.post("/aliyun/revoke") as response:
        assert response.status == 403
        assert (await response.json())["errorCode"] == "CrmUserMismatch"
    assert await stack.emulator_requests("/v1/revoke") == []
    await agent.logout_crm()
    await agent.login_crm()
    assert (await agent.session())["signedIn"] is True


# ---------------------------------------------------------------- item 7: logs


@pytest.fixture
def log_stream(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., io.StringIO]]:
    """setup_logging's handler writing to a StringIO; the root logger restored afterwards."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", [])
    level = root.level
    access = logging.getLogger("aiohttp.access").level

    def setup(fmt: str = "text", level: str = "INFO") -> io.StringIO:
        stream = io.StringIO()
        monkeypatch.setattr(sys, "stderr", stream)
        setup_logging(level, fmt)
        return stream

    yield setup
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(access)


FORGED = "2030-01-01 00:00:00,000 INFO ccc_gateway.access: GET /admin 200"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_every_log_path_writes_one_line_per_record(log_stream: Any, fmt: str):
    """Control characters (CR, LF, NEL, U+2028, ESC) in any log path are escaped: each record
    is exactly one line, and a JSON line is still JSON."""
    stream = log_stream(fmt)
    access = logging.getLogger(ACCESS_LOGGER)
    evil = f"GET /x\r\n{FORGED}\x85{FORGED}\u2028{FORGED}\x1b[2J 404"
    access.info(evil, extra={"fields": {"request_id": "r1", "remote": "127.0.0.1"}})
    access.info(evil, extra={"fields": {"path": evil}})
    logging.getLogger("ccc_gateway.x").warning("bad %s", evil)
    try:
        raise ValueError(evil)
    except ValueError:
        logging.getLogger("ccc_gateway.x").exception("failed")
    lines = stream.getvalue().split("\n")
    assert lines[-1] == ""
    assert len(lines[:-1]) == 4
    for line in lines[:-1]:
        assert not any(sep in line for sep in "\r\x85\u2028\x1b"), line
        assert not line.startswith(FORGED)
        if fmt == "json":
            json.loads(line)


async def test_a_percent_0a_in_a_path_cannot_forge_an_access_line(log_stream: Any, stack: Stack):
    """`GET /x%0d%0a<forged line>` leaves one access line, its line break written `\\r\\n`."""
    stream = log_stream("text")
    path = "/aliyun/x%0D%0A" + FORGED.replace(" ", "%20")
    status = await _raw(stack, f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    assert status.split(b" ")[1] == b"404"
    lines = stream.getvalue().splitlines()
    assert not [line for line in lines if line.startswith(FORGED)]
    access = [line for line in lines if " ccc_gateway.access: GET /aliyun/x" in line]
    assert len(access) == 1 and "\\r\\n2030-01-01" in access[0]


async def test_gateway_cookie_values_never_reach_the_log(log_stream: Any, stack: Stack):
    """At DEBUG, a request the HTTP parser refuses quotes its bad Cookie line in aiohttp's own
    error record: the session cookie's value is redacted there too, in the traceback."""
    stream = log_stream("text", "DEBUG")
    secret = "gAAAAABsecretcookievalue0123456789"
    for cookie in (
        f"crm=1; {SESSION_COOKIE}={secret}\x01",  # a control character: refused by the parser
        f"crm=1; {SESSION_COOKIE}.1={secret}; x=\x7f",
    ):
        head = f"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {cookie}\r\n\r\n"
        status = await _raw(stack, head.encode("latin-1"))
        assert status.split(b" ")[1] == b"400"
    text = stream.getvalue()
    assert "aiohttp.server" in text and "__Host-ccc-session" in text  # the record was written
    assert secret not in text and secret[:12] not in text


# ---------------------------------------------------------------- item 7: metrics, readiness


async def test_metrics_and_readiness_details_are_not_public(stack: Stack, browser: Browser):
    """A client that is not on this host (here: relayed by a proxy) gets 404 for
    /aliyun/metrics and only the status from /aliyun/readyz; a local client gets both."""
    relayed = {"X-Forwarded-For": "203.0.113.7"}
    async with await browser.get("/aliyun/metrics", headers=relayed) as response:
        assert response.status == 404
        assert "ccc_gateway_" not in await response.text()
    async with await browser.get("/aliyun/readyz", headers=relayed) as response:
        assert response.status == 200 and await response.json() == {"status": "ready"}
    async with await browser.get("/aliyun/metrics") as response:
        assert response.status == 200 and "ccc_gateway_requests_total" in await response.text()
    async with await browser.get("/aliyun/readyz") as response:
        assert (await response.json())["checks"]["crm"] == "ok"
    await stack.crm.close()
    async with await browser.get("/aliyun/readyz", headers=relayed) as response:
        assert response.status == 503 and await response.json() == {"status": "not ready"}


@pytest.mark.parametrize(
    ("remote", "headers", "public", "shown"),
    [
        ("203.0.113.7", {}, False, False),
        ("10.0.0.5", {}, False, False),
        ("127.0.0.1", {}, False, True),
        ("::1", {}, False, True),
        ("::ffff:127.0.0.1", {}, False, True),
        ("127.0.0.1", {"Forwarded": "for=203.0.113.7"}, False, False),
        ("127.0.0.1", {"X-Real-IP": "203.0.113.7"}, False, False),
        ("203.0.113.7", {}, True, True),
    ],
)
def test_who_sees_ops_details(
    stack: Stack, remote: str, headers: dict[str, str], public: bool, shown: bool
):
    """Details go to a loopback peer relaying no one, or to all with listen.public_metrics."""
    listen = dataclasses.replace(stack.config.listen, public_metrics=public)
    app = web.Application()
    app[CONFIG] = dataclasses.replace(stack.config, listen=listen)
    request = make_mocked_request("GET", "/aliyun/readyz", headers=headers, app=app)
    request = request.clone(remote=remote)
    assert shows_details(request) is shown


async def test_metrics_listener_serves_readiness_details(stack: Stack):
    """The private listener (listen.metrics_port) answers /readyz with every check named."""
    server = TestServer(metrics_app(stack.app[METRICS], stack.app), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as client:
            for path in ("/readyz", "/aliyun/readyz"):
                async with client.get(server.make_url(path)) as response:
                    body = await response.json()
                    assert response.status == 200 and body["checks"]["crm"] == "ok", path
    finally:
        await server.close()


# ---------------------------------------------------------------- item 7: error answers


async def test_error_pages_do_not_name_the_crm_address(stack: Stack, log_stream: Any):
    """With the CRM down, the 502 page and JSON say "the CRM" without its host and port;
    the log names them."""
    stream = log_stream("text")
    where = f"127.0.0.1:{stack.crm.port}"
    await stack.crm.close()
    browser = stack.browser()
    try:
        navigate = {"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}
        async with browser.client.get(browser.url("/customers"), headers=navigate) as page:
            assert page.status == 502
            assert where not in await page.text() and str(stack.crm.port) not in await page.text()
        async with browser.client.get(browser.url("/customers")) as response:
            assert response.status == 502 and where not in await response.text()
    finally:
        await browser.close()
    assert where in stream.getvalue()


async def test_server_header_advertises_no_version(stack: Stack, browser: Browser):
    """Every answer, the parser's own 400, an error page and the HTTP redirect listener
    included, says `Server: ccc-gateway`, never Python's or aiohttp's version."""
    async with await browser.get("/aliyun/healthz") as response:
        assert response.headers["Server"] == "ccc-gateway"
    async with await browser.get("/aliyun/nope") as response:
        assert response.status == 404 and response.headers["Server"] == "ccc-gateway"
    head = await _raw(stack, b"GET /x HTTP/1.1\r\nHost: 127.0.0.1\r\nX: a\x01b\r\n\r\n", whole=True)
    assert head.startswith(b"HTTP/1.") and b" 400 " in head.split(b"\r\n")[0]
    assert b"\r\nServer: ccc-gateway\r\n" in head and b"aiohttp" not in head
    public = URL(f"https://127.0.0.1:{stack.gateway.port or 443}")
    redirect = TestServer(https_redirect_app(str(public.origin())), host="127.0.0.1")
    await redirect.start_server()
    try:
        async with aiohttp.ClientSession() as client:
            async with client.get(redirect.make_url("/x"), allow_redirects=False) as response:
                assert response.status == 308 and response.headers["Server"] == "ccc-gateway"
    finally:
        await redirect.close()


# ---------------------------------------------------------------- item 7: workers warning


def test_check_config_warns_about_workers_with_the_cookie_store(tmp_path: Path):
    """listen.workers > 1 with the cookie store: check-config warns (exit 0) and recommends
    Redis; with session.store set, no warning."""
    path = write_config(tmp_path)
    text = path.read_text().replace(
        "listen: {host: 127.0.0.1,", "listen: {workers: 3, host: 127.0.0.1,"
    )
    path.write_text(text)
    result = ccc("check-config", str(path), env={"SECRET": "s"})
    assert result.returncode == 0, result.stderr
    assert "warning: listen.workers is 3 with the cookie session store" in result.stderr
    assert "session.store (Redis)" in result.stderr
    path.write_text(
        text.replace("session: {keys:", "session: {store: 'redis://127.0.0.1:1/0', keys:")
    )
    result = ccc("check-config", str(path), env={"SECRET": "s"})
    assert result.returncode == 0 and "warning" not in result.stderr, result.stderr


def test_run_logs_the_config_warnings_at_start_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, log_stream: Any
):
    """`run` logs the same warning once, in the log's own format, before it starts workers."""
    import ccc_gateway.runtime.cli as cli
    import ccc_gateway.runtime.workers as workers

    path = write_config(tmp_path)
    path.write_text(path.read_text().replace("listen: {", "listen: {workers: 2, "))
    monkeypatch.setenv("SECRET", "s")
    streams: list[io.StringIO] = []
    monkeypatch.setattr(cli, "setup_logging", lambda *a, **k: streams.append(log_stream("text")))
    monkeypatch.setattr(workers, "supervise", lambda path, config: 0)
    assert cli.main(["run", "--config", str(path)]) == 0
    lines = streams[0].getvalue().splitlines()
    assert len(lines) == 1 and " WARNING ccc_gateway: listen.workers is 2 with the " in lines[0]


def test_config_warnings_name_get_for_the_softphone(stack: Stack):
    """The test stack's configuration warns about nothing; `softphone.ajax_method: get` is
    warned about, as the API serves only read-only actions over GET."""
    assert config_warnings(stack.config) == []
    softphone = dataclasses.replace(stack.config.softphone, ajax_method="get")
    (warning,) = config_warnings(dataclasses.replace(stack.config, softphone=softphone))
    assert warning.startswith("softphone.ajax_method is get")


# ---------------------------------------------------------------- helpers


async def _raw(stack: Stack, payload: bytes, *, whole: bool = False) -> bytes:
    """Send raw bytes over TLS; the status line of the answer (or its whole head)."""
    context: ssl.SSLContext = client_context(stack.cert)
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", stack.gateway.port, ssl=context, server_hostname="127.0.0.1"
    )
    try:
        writer.write(payload)
        await writer.drain()
        if whole:
            return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        return await asyncio.wait_for(reader.readline(), 10)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, ssl.SSLError):
            await writer.wait_closed()
