"""The CCC 2.0 stand-in SDKs (2.x `WorkbenchSdk`, 3.x `CCCWorkbenchSDK`) in Chromium.

A minimal backend stands where the gateway would: it records each request of the SDK, forwards
it to the emulator's POP with a bearer token (lists as JSON text, as the contract says) and
passes POP's answer back unchanged. So the SDK's calls really run the emulator's 2.0 state
machine, and the test checks the request URL, the headers, and that every parameter name the
SDK sends is one of the official client's (tests/oracles/ccc2_models.py).
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from oracles.ccc2_models import request_parameter_names
from test_emulator_softphone import CHROMIUM, CHROMIUM_ARGS, HAVE_CHROMIUM

from ccc_gateway.emulator.app import create_emulator_app
from ccc_gateway.emulator.calls import CallTimings
from ccc_gateway.emulator.keys import STORE_KEY
from ccc_gateway.emulator.settings import DEMO_AGENTS, EmulatorSettings, OAuthClient
from ccc_gateway.emulator.softphone_server import SOFTPHONE_KEY
from ccc_gateway.emulator.store import IssuedAccessToken

pytestmark = pytest.mark.browser
AGENT1 = DEMO_AGENTS[0]
CUSTOMER = "135012345678"
PAGE_JS = """
window.sdkEvents = [];
const log = (name) => (arg) => { window.sdkEvents.push([name, arg === undefined ? null : arg]); };
const Sdk = window.__CTOR__;
window.sdk = new Sdk({
  dom: 'phone', instanceId: 'ccc-demo', regionId: 'cn-shanghai', ajaxPath: '/api',
  ajaxHeaders: { 'X-Test': '1' }, header: true,
  onInit: () => { log('init')(); window.sdk.register(); },
  onRegister: log('register'), onLogIn: log('logIn'), onReady: log('ready'),
  onBreak: log('break'), onStatusChange: log('status'), onCallDialing: log('dialing'),
  onCallEstablish: log('establish'), onCallComing: log('coming'), onCallRelease: log('release'),
  onHangUp: log('hangUp'), onErrorNotify: log('error'),
});
"""


class Backend:
    """The page with the SDK, and `/api` forwarding to the emulator's POP like the gateway."""

    def __init__(self, emulator: str, bearer: str, sdk_file: str, ctor: str) -> None:
        self.emulator = emulator
        self.bearer = bearer
        self.sdk_file = sdk_file
        self.ctor = ctor
        self.seen: list[dict[str, Any]] = []
        self.signed_in = False  # until then /api refuses like the gateway does when signed out

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.page)
        app.router.add_get("/page.js", self.script)
        app.router.add_post("/api", self.api)
        return app

    async def page(self, request: web.Request) -> web.Response:
        sdk = f"{self.emulator}/_emulator/sdk"
        ws_origin = self.emulator.replace("http://", "ws://")
        csp = (
            f"default-src 'none'; script-src 'self' {self.emulator}; "
            f"style-src 'self' {self.emulator}; connect-src 'self' {ws_origin}; "
            "require-trusted-types-for 'script'"
        )
        html = (
            '<!doctype html><html><head><meta charset="utf-8"><title>softphone</title>'
            f'<link rel="stylesheet" href="{sdk}/workbenchSdk.css">'
            f'<script src="{sdk}/{self.sdk_file}"></script>'
            '<script src="/page.js" defer></script></head>'
            '<body><div id="phone"></div></body></html>'
        )
        headers = {"Content-Security-Policy": csp}
        return web.Response(text=html, content_type="text/html", headers=headers)

    async def script(self, request: web.Request) -> web.Response:
        return web.Response(
            text=PAGE_JS.replace("__CTOR__", self.ctor), content_type="text/javascript"
        )

    async def api(self, request: web.Request) -> web.Response:
        form = await request.post()
        params = json.loads(str(form["request"]))
        self.seen.append(
            {"query": dict(request.query), "params": params, "xTest": request.headers.get("X-Test")}
        )
        if not self.signed_in:
            refusal = {"RequestId": "gw-1", "Code": "NotAuthenticated", "Message": "sign in"}
            body = {**refusal, "HttpStatusCode": 401, "login": "/aliyun/auth"}
            return web.json_response(body, status=401)
        pop = {
            k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
            for k, v in params.items()
        }
        pop.update(
            Action=request.query["action"],
            Version=request.query["version"],
            Format="JSON",
            RegionId="cn-shanghai",
            Timestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            SignatureNonce=str(uuid.uuid4()),
            SignatureType="BEARERTOKEN",
            BearerToken=self.bearer,
        )
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.emulator + "/", data=pop) as resp,
        ):
            return web.json_response(await resp.json(), status=resp.status)


@pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs /usr/bin/chromium")
@pytest.mark.parametrize(
    ("sdk_file", "ctor"),
    [("workbenchSdk2.js", "WorkbenchSdk"), ("cccWorkbenchSdk.js", "CCCWorkbenchSDK")],
)
async def test_stand_in_sdk_drives_calls_through_the_api(
    aiohttp_server: Any, sdk_file: str, ctor: str
) -> None:
    """Sign-in (after a 401), break/ready, outbound and inbound calls, hold: via the 2.0 API."""
    from playwright.async_api import async_playwright

    oauth = OAuthClient("client-1", "secret-1", ("https://crm.test/cb",))
    settings = EmulatorSettings(public_url="http://127.0.0.1:9", clients=(oauth,))
    emulator_app = create_emulator_app(settings)
    emulator_app[SOFTPHONE_KEY].calls.timings = CallTimings(answer_after=0.2, hangup_after=60)
    emulator = await aiohttp_server(emulator_app)
    emulator_url = str(emulator.make_url("")).rstrip("/")
    settings.public_url = emulator_url  # GetLoginDetails names the socket at this address
    bearer = secrets.token_urlsafe(24)
    token = IssuedAccessToken(bearer, AGENT1, "client-1", time.time() + 3600, None)
    emulator_app[STORE_KEY].add_access_token(token)
    backend = Backend(emulator_url, bearer, sdk_file, ctor)
    page_server = await aiohttp_server(backend.app())
    async with aiohttp.ClientSession() as http, async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await chromium.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            await page.goto(str(page_server.make_url("/")))
            await _recover_from_sign_out(page, backend)
            await _drive(page, http, emulator_url)
            assert [p for p in problems if "401" not in p] == []  # the 401 was on purpose
        finally:
            await chromium.close()
    _check_requests(backend.seen)


async def _recover_from_sign_out(page: Any, backend: Backend) -> None:
    """A 401 from the backend is reported and stops the SDK; Reconnect starts it again."""
    await page.get_by_role("button", name="Reconnect").wait_for()
    assert (await page.evaluate("window.sdkEvents"))[0][0] == "init"
    assert "sign in again" in await page.inner_text(".wbsdk-note")
    [error] = [e[1] for e in await page.evaluate("window.sdkEvents") if e[0] == "error"]
    assert (error["errorCode"], error["requestId"]) == ("NotAuthenticated", "gw-1")
    assert await page.get_attribute("#phone", "data-status") == "-1"
    await page.evaluate("window.sdkEvents.length = 0")
    backend.signed_in = True
    await page.get_by_role("button", name="Reconnect").click()


async def _drive(page: Any, http: aiohttp.ClientSession, emulator: str) -> None:
    await page.wait_for_selector('#phone[data-status="3"]')
    names = [e[0] for e in await page.evaluate("window.sdkEvents")]
    assert {"register", "logIn", "ready"} <= set(names)
    await page.evaluate("window.sdk.answer()")  # nothing rings: refused, state unchanged
    [error] = [e[1] for e in await page.evaluate("window.sdkEvents") if e[0] == "error"]
    assert error["errorCode"] == 9001
    await page.evaluate("window.sdkEvents.length = 0")
    assert await page.evaluate("window.sdk.getStatusCode().code") == 3

    await page.get_by_role("button", name="Break").click()
    await page.wait_for_selector('#phone[data-status="2"]')
    await page.get_by_role("button", name="Ready").click()
    await page.wait_for_selector('#phone[data-status="3"]')

    await page.get_by_label("Number to call").fill(CUSTOMER)
    await page.get_by_role("button", name="Call").click()
    await page.wait_for_selector('#phone[data-status="10"]')  # the callee answered by itself
    listed = (await (await http.get(f"{emulator}/_emulator/calls")).json())["calls"]
    assert [(c["direction"], c["agent"], c["state"]) for c in listed] == [
        ("outbound", AGENT1.upn, "talking")
    ]
    await page.get_by_role("button", name="Hold").click()
    await page.wait_for_selector('#phone[data-status="12"]')
    await page.get_by_role("button", name="Resume").click()
    await page.wait_for_selector('#phone[data-status="10"]')
    await page.get_by_role("button", name="Hang up").click()
    await page.wait_for_selector('#phone[data-status="3"]')

    body = {"agent": AGENT1.upn, "caller": "135012345679"}
    assert (await http.post(f"{emulator}/_emulator/calls", json=body)).status == 201
    await page.wait_for_selector('#phone[data-status="6"]')
    assert "135012345679" in await page.inner_text(".wbsdk-ringing")
    await page.get_by_role("button", name="Answer").click()
    await page.wait_for_selector('#phone[data-status="9"]')
    await page.get_by_role("button", name="Hang up").click()
    await page.wait_for_selector('#phone[data-status="3"]')
    events = await page.evaluate("window.sdkEvents")
    [coming] = [e[1] for e in events if e[0] == "coming"]
    assert set(coming) == {"caller", "callee", "callType", "jobId", "callContext"}
    assert (coming["caller"], coming["callType"]) == ("135012345679", "INBOUND")
    assert coming["jobId"].startswith("job-")
    assert [e[1] for e in events if e[0] == "hangUp"] == ["outbound", "inbound"]
    statuses = [e[1] for e in events if e[0] == "status"]
    assert all(set(s) == {"code", "lastCode", "context"} for s in statuses)
    assert [e for e in events if e[0] == "error"] == []
    listed = (await (await http.get(f"{emulator}/_emulator/calls")).json())["calls"]
    assert [c["state"] for c in listed] == ["ended", "ended"]


def _check_requests(seen: list[dict[str, Any]]) -> None:
    """The 2.x/3.x URL form, the page's headers, the official parameter names, JSON lists."""
    actions = [s["query"]["action"] for s in seen]
    for wanted in ["GetLoginDetails", "SignInGroup", "TakeBreak", "ReadyForService", "MakeCall"]:
        assert wanted in actions
    for wanted in ["ReleaseCall", "AnswerCall", "HoldCall", "RetrieveCall", "PickOutboundNumbers"]:
        assert wanted in actions
    for s in seen:
        query = s["query"]
        assert {k: v for k, v in query.items() if k != "action"} == {
            "product": "CloudCallCenter",
            "version": "2020-07-01",
            "region": "cn-shanghai",
        }
        assert s["xTest"] == "1"
        assert s["params"]["InstanceId"] == "ccc-demo"
        assert set(s["params"]) <= request_parameter_names(query["action"]), s
        if query["action"] in ("SignInGroup", "MakeCall", "ReleaseCall", "AnswerCall"):
            assert s["params"]["UserId"] == "agent1@ccc-demo"
    [sign_in] = [s["params"] for s in seen if s["query"]["action"] == "SignInGroup"]
    assert sign_in["SignedSkillGroupIdList"] == ["sales@ccc-demo", "support@ccc-demo"]
