"""The emulator's call side: SDK files, the /webrtc softphone socket, /_emulator/calls."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient

from ccc_gateway.emulator import ccc_data, softphone_server
from ccc_gateway.emulator.app import create_emulator_app
from ccc_gateway.emulator.calls import CallTimings
from ccc_gateway.emulator.settings import DEMO_AGENTS, EmulatorSettings, OAuthClient
from ccc_gateway.emulator.softphone_server import SOFTPHONE_KEY

Client = TestClient[Any, Any]
WS = aiohttp.ClientWebSocketResponse
AGENT1, AGENT2 = DEMO_AGENTS
CALLER = "135012345678"


class SteppedSleep:
    """Stands in for asyncio.sleep in the call timers: the test decides when each one ends."""

    def __init__(self) -> None:
        self.pending: asyncio.Queue[tuple[float, asyncio.Future[None]]] = asyncio.Queue()

    async def __call__(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self.pending.put((seconds, future))
        await future

    async def next(self) -> tuple[float, asyncio.Future[None]]:
        return await asyncio.wait_for(self.pending.get(), 10)


@pytest.fixture
def settings() -> EmulatorSettings:
    client = OAuthClient("client-1", "secret-1", ("https://crm.test/cb",))
    return EmulatorSettings(public_url="http://127.0.0.1:9", clients=(client,))


@pytest.fixture
def sleeper() -> SteppedSleep:
    return SteppedSleep()


@pytest.fixture
async def client(aiohttp_client: Any, settings: EmulatorSettings, sleeper: SteppedSleep) -> Client:
    app = create_emulator_app(settings)
    app[SOFTPHONE_KEY].calls.sleep = sleeper
    return await aiohttp_client(app)  # type: ignore[no-any-return]


def token(settings: EmulatorSettings, agent: Any = AGENT1, age: float = 0.0) -> dict[str, str]:
    return ccc_data.login_token(settings, agent, settings.clock() - age)


async def connect(client: Client, settings: EmulatorSettings, agent: Any = AGENT1) -> WS:
    ws = await client.ws_connect("/webrtc")
    t = token(settings, agent)
    await ws.send_json({"type": "register", "signData": t["SignData"], "signature": t["Signature"]})
    registered = await receive(ws)
    assert registered["type"] == "registered"
    return ws


async def receive(ws: WS) -> dict[str, Any]:
    msg = await ws.receive(timeout=10)
    assert msg.type == WSMsgType.TEXT, msg
    return json.loads(msg.data)  # type: ignore[no-any-return]


async def calls(client: Client) -> list[dict[str, Any]]:
    resp = await client.get("/_emulator/calls")
    assert resp.status == 200
    return (await resp.json())["calls"]  # type: ignore[no-any-return]


async def push(client: Client, **body: Any) -> aiohttp.ClientResponse:
    return await client.post("/_emulator/calls", json=body)


async def closed_code(ws: WS) -> int | None:
    """Read until the server closes the socket; the close code."""
    while True:
        msg = await ws.receive(timeout=10)
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
            return ws.close_code


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("workbenchSdk.js", "text/javascript"), ("workbenchSdk.css", "text/css")],
)
async def test_sdk_files_served(client: Client, name: str, content_type: str) -> None:
    """The SDK files come with their type, no-cache, CORP cross-origin and a working ETag."""
    resp = await client.get(f"/_emulator/sdk/{name}")
    assert resp.status == 200
    assert resp.content_type == content_type
    assert resp.headers["Cache-Control"] == "no-cache"
    assert resp.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert len(await resp.read()) > 500
    again = await client.get(
        f"/_emulator/sdk/{name}", headers={"If-None-Match": resp.headers["ETag"]}
    )
    assert again.status == 304


async def test_sdk_unknown_file_is_404(client: Client) -> None:
    """Only the two SDK files are served from the SDK path."""
    assert (await client.get("/_emulator/sdk/..%2Fsettings.py")).status == 404
    assert (await client.get("/_emulator/sdk/other.js")).status == 404


async def test_sdk_script_is_csp_safe_and_never_asks_for_a_microphone(client: Client) -> None:
    """The script exposes WorkbenchSdk and avoids eval, innerHTML, inline handlers, getUserMedia."""
    text = await (await client.get("/_emulator/sdk/workbenchSdk.js")).text()
    assert "window.WorkbenchSdk = WorkbenchSdk" in text
    banned_calls = (".innerHTML", "insertAdjacentHTML", "document.write", "eval(", "Function(")
    for banned in (*banned_calls, ".getUserMedia", "setAttribute('on"):
        assert banned not in text


def test_verify_login_token_accepts_fresh_and_rejects_tampered(settings: EmulatorSettings) -> None:
    """verify_login_token returns the agent for its own token and None for altered ones."""
    now = settings.clock()
    t = ccc_data.login_token(settings, AGENT2, now)
    assert ccc_data.verify_login_token(settings, t["SignData"], t["Signature"], now) == AGENT2
    forged = t["SignData"].replace("agent2", "agent1")
    assert ccc_data.verify_login_token(settings, forged, t["Signature"], now) is None
    assert ccc_data.verify_login_token(settings, t["SignData"], "not base64!", now) is None
    assert ccc_data.verify_login_token(settings, t["SignData"], "", now) is None


def test_verify_login_token_checks_age_and_instance(settings: EmulatorSettings) -> None:
    """Tokens older than the TTL, from the future, or of another instance are refused."""
    now = settings.clock()
    t = ccc_data.login_token(settings, AGENT1, now)
    late = now + ccc_data.LOGIN_TOKEN_TTL + 1
    early = now - ccc_data.LOGIN_TOKEN_SLACK - 1
    assert ccc_data.verify_login_token(settings, t["SignData"], t["Signature"], late) is None
    assert ccc_data.verify_login_token(settings, t["SignData"], t["Signature"], early) is None
    settings.instance_id = "another-instance"
    assert ccc_data.verify_login_token(settings, t["SignData"], t["Signature"], now) is None


async def test_register_with_good_token(client: Client, settings: EmulatorSettings) -> None:
    """A fresh RequestLoginInfo token registers the softphone as its agent."""
    ws = await client.ws_connect("/webrtc")
    t = token(settings, AGENT2)
    await ws.send_json({"type": "register", "signData": t["SignData"], "signature": t["Signature"]})
    registered = await receive(ws)
    assert registered["agent"]["upn"] == AGENT2.upn
    assert registered["agent"]["displayName"] == AGENT2.display_name
    await ws.close()


def _bad_registrations(settings: EmulatorSettings) -> list[Any]:
    good = token(settings)
    old = token(settings, age=ccc_data.LOGIN_TOKEN_TTL + 5)
    return [
        {"type": "register", "signData": good["SignData"], "signature": "AAAA" + good["Signature"]},
        {"type": "register", "signData": old["SignData"], "signature": old["Signature"]},
        {"type": "register", "signData": good["SignData"]},
        {"type": "call", "callee": CALLER},
        [good["SignData"], good["Signature"]],
    ]


@pytest.mark.parametrize("case", range(5))
async def test_register_refuses_bad_tokens(
    client: Client, settings: EmulatorSettings, case: int
) -> None:
    """A bad signature, an expired token or a malformed register closes the socket with 4401."""
    ws = await client.ws_connect("/webrtc")
    await ws.send_json(_bad_registrations(settings)[case])
    assert (await receive(ws))["code"] == "InvalidToken"
    assert await closed_code(ws) == softphone_server.CLOSE_BAD_TOKEN


async def test_register_must_come_first(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    """A socket that never registers is closed with 4408."""
    monkeypatch.setattr(softphone_server, "AUTH_TIMEOUT", 0.05)
    ws = await client.ws_connect("/webrtc")
    assert await closed_code(ws) == softphone_server.CLOSE_NO_REGISTER


async def test_plain_get_of_webrtc_is_426(client: Client) -> None:
    """/webrtc without a websocket upgrade is refused, not crashed on."""
    assert (await client.get("/webrtc")).status == 426


async def test_outbound_call_lifecycle(
    client: Client, settings: EmulatorSettings, sleeper: SteppedSleep
) -> None:
    """call → dialing (ringing) → answered after answer_after → released after hangup_after."""
    ws = await connect(client, settings)
    await ws.send_json({"type": "call", "callee": CALLER, "ref": "r1"})
    dialing = await receive(ws)
    assert dialing["type"] == "dialing"
    assert (dialing["ref"], dialing["callee"]) == ("r1", CALLER)
    assert dialing["caller"] == ccc_data.outbound_numbers(settings, AGENT1)[0].number
    [call] = await calls(client)
    assert call["id"] == dialing["connid"]
    assert (call["direction"], call["agent"], call["number"]) == ("outbound", AGENT1.upn, CALLER)
    assert call["state"] == "ringing"
    assert call["startedAt"].endswith("Z")

    seconds, wake = await sleeper.next()
    assert seconds == CallTimings().answer_after
    wake.set_result(None)
    assert (await receive(ws))["type"] == "established"
    assert [c["state"] for c in await calls(client)] == ["talking"]

    seconds, wake = await sleeper.next()
    assert seconds == CallTimings().hangup_after
    wake.set_result(None)
    released = await receive(ws)
    assert (released["type"], released["reason"]) == ("released", "remote")
    assert [c["state"] for c in await calls(client)] == ["ended"]
    await ws.close()


async def test_outbound_call_hung_up_early(
    client: Client, settings: EmulatorSettings, sleeper: SteppedSleep
) -> None:
    """Hanging up before the far end answers ends the call and stops its timer."""
    ws = await connect(client, settings)
    await ws.send_json({"type": "call", "callee": CALLER, "caller": "02160001001"})
    dialing = await receive(ws)
    _, wake = await sleeper.next()
    await ws.send_json({"type": "hangup", "connid": dialing["connid"]})
    released = await receive(ws)
    assert (released["type"], released["reason"]) == ("released", "agent")
    assert [c["state"] for c in await calls(client)] == ["ended"]
    assert wake.cancelled()
    await ws.close()


async def test_outbound_call_with_real_timers(
    aiohttp_client: Any, settings: EmulatorSettings
) -> None:
    """With the real clock the far party answers and hangs up by itself."""
    app = create_emulator_app(settings)
    app[SOFTPHONE_KEY].calls.timings = CallTimings(answer_after=0.01, hangup_after=0.01)
    client = await aiohttp_client(app)
    ws = await connect(client, settings)
    await ws.send_json({"type": "call", "callee": CALLER})
    kinds = [(await receive(ws))["type"] for _ in range(3)]
    assert kinds == ["dialing", "established", "released"]
    await ws.close()


async def test_incoming_call_is_delivered_answered_and_hung_up(
    client: Client, settings: EmulatorSettings
) -> None:
    """POST /_emulator/calls rings the agent's softphone; answer and hangup follow."""
    ws = await connect(client, settings)
    resp = await push(client, agent=AGENT1.upn, caller=CALLER)
    assert resp.status == 201
    call = await resp.json()
    assert (call["direction"], call["number"], call["state"]) == ("inbound", CALLER, "ringing")
    incoming = await receive(ws)
    assert incoming["type"] == "incoming"
    assert (incoming["connid"], incoming["caller"]) == (call["id"], CALLER)
    assert incoming["skillgroupId"].endswith("@" + settings.instance_id)
    await ws.send_json({"type": "answer", "connid": call["id"]})
    assert (await receive(ws))["type"] == "established"
    assert [c["state"] for c in await calls(client)] == ["talking"]
    await ws.send_json({"type": "hangup", "connid": call["id"]})
    assert (await receive(ws))["type"] == "released"
    assert [c["state"] for c in await calls(client)] == ["ended"]
    await ws.close()


async def test_unanswered_incoming_call_gives_up(
    client: Client, settings: EmulatorSettings, sleeper: SteppedSleep
) -> None:
    """An incoming call nobody answers is released with reason noanswer after ring_timeout."""
    ws = await connect(client, settings)
    await push(client, agent=AGENT1.upn, caller=CALLER)
    await receive(ws)
    seconds, wake = await sleeper.next()
    assert seconds == CallTimings().ring_timeout
    wake.set_result(None)
    assert (await receive(ws))["reason"] == "noanswer"
    await ws.close()


async def test_incoming_call_delivered_during_another_call(
    client: Client, settings: EmulatorSettings
) -> None:
    """A second call reaches the softphone while the first is still live."""
    ws = await connect(client, settings)
    await ws.send_json({"type": "call", "callee": CALLER})
    await receive(ws)
    resp = await push(client, agent=AGENT1.upn, caller="135012345679")
    assert resp.status == 201
    assert (await receive(ws))["caller"] == "135012345679"
    assert [c["state"] for c in await calls(client)] == ["ringing", "ringing"]
    await ws.close()


async def test_push_without_softphone_is_409(client: Client, settings: EmulatorSettings) -> None:
    """Ringing an agent with no softphone connected is a 409 and records nothing."""
    ws = await connect(client, settings, AGENT1)
    resp = await push(client, agent=AGENT2.upn, caller=CALLER)
    assert resp.status == 409
    assert "error" in await resp.json()
    assert await calls(client) == []
    await ws.close()


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        [1],
        {"agent": "nobody@ccc-demo.onaliyun.com", "caller": CALLER},
        {"agent": AGENT1.upn},
        {"agent": AGENT1.upn, "caller": "<b>hi</b>"},
        {"agent": AGENT1.upn, "caller": CALLER, "extra": 1},
    ],
)
async def test_push_bad_input_is_400(client: Client, body: Any) -> None:
    """Bad JSON, an unknown agent, a missing or odd caller, unknown fields: 400."""
    data = body if isinstance(body, str) else json.dumps(body)
    resp = await client.post("/_emulator/calls", data=data)
    assert resp.status == 400
    assert "error" in await resp.json()


async def test_newer_softphone_replaces_older(client: Client, settings: EmulatorSettings) -> None:
    """A second registration of an agent closes the first (4409) and ends its calls."""
    old = await connect(client, settings)
    await old.send_json({"type": "call", "callee": CALLER})
    await receive(old)
    new = await connect(client, settings)
    assert (await receive(old))["type"] == "replaced"
    assert await closed_code(old) == softphone_server.CLOSE_REPLACED
    assert [c["state"] for c in await calls(client)] == ["ended"]
    assert (await push(client, agent=AGENT1.upn, caller=CALLER)).status == 201
    assert (await receive(new))["type"] == "incoming"
    await new.close()


async def test_closing_the_softphone_ends_its_calls(
    client: Client, settings: EmulatorSettings
) -> None:
    """When the socket goes away its calls end and the agent can no longer be rung."""
    ws = await connect(client, settings)
    await ws.send_json({"type": "call", "callee": CALLER})
    await receive(ws)
    await ws.close()
    for _ in range(200):  # the server notices the close on its own schedule
        if (await push(client, agent=AGENT1.upn, caller=CALLER)).status == 409:
            break
        await asyncio.sleep(0.01)
    recorded = await calls(client)
    assert recorded[0]["direction"] == "outbound"
    assert {c["state"] for c in recorded} == {"ended"}  # a push that raced the close, too


async def test_call_control_errors(client: Client, settings: EmulatorSettings) -> None:
    """Bad messages get an error event and leave the socket usable."""
    ws = await connect(client, settings)
    sent_and_codes = [
        ("{not json", "BadMessage"),
        (json.dumps({"type": "teleport"}), "BadMessage"),
        (json.dumps({"type": "call", "callee": "abc", "ref": "r9"}), "InvalidCallee"),
        (json.dumps({"type": "call", "callee": CALLER, "caller": "x"}), "InvalidCaller"),
        (json.dumps({"type": "answer", "connid": "nope"}), "NoSuchCall"),
    ]
    for text, code in sent_and_codes:
        await ws.send_str(text)
        event = await receive(ws)
        assert (event["type"], event["code"]) == ("error", code)
    await ws.send_json({"type": "ping"})
    assert (await receive(ws))["type"] == "pong"
    await ws.close()


async def test_dtmf_and_hold_during_a_call(client: Client, settings: EmulatorSettings) -> None:
    """DTMF, hold and retrieve are acknowledged on an established call, refused before."""
    ws = await connect(client, settings)
    call = await (await push(client, agent=AGENT1.upn, caller=CALLER)).json()
    await receive(ws)
    await ws.send_json({"type": "dtmf", "connid": call["id"], "digits": "1"})
    assert (await receive(ws))["code"] == "NotTalking"
    await ws.send_json({"type": "answer", "connid": call["id"]})
    await receive(ws)
    await ws.send_json({"type": "dtmf", "connid": call["id"], "digits": "12#"})
    assert (await receive(ws))["digits"] == "12#"
    await ws.send_json({"type": "dtmf", "connid": call["id"], "digits": "x"})
    assert (await receive(ws))["code"] == "InvalidDigits"
    await ws.send_json({"type": "hold", "connid": call["id"]})
    assert (await receive(ws))["type"] == "held"
    await ws.send_json({"type": "retrieve", "connid": call["id"]})
    assert (await receive(ws))["type"] == "retrieved"
    await ws.close()


async def test_delete_clears_and_releases(client: Client, settings: EmulatorSettings) -> None:
    """DELETE /_emulator/calls forgets every call and releases the live ones."""
    ws = await connect(client, settings)
    await push(client, agent=AGENT1.upn, caller=CALLER)
    await receive(ws)
    resp = await client.delete("/_emulator/calls")
    assert (await resp.json()) == {"calls": []}
    assert (await receive(ws))["reason"] == "cleared"
    assert await calls(client) == []
    await ws.close()


async def test_shutdown_closes_softphones_and_timers(
    aiohttp_client: Any, settings: EmulatorSettings
) -> None:
    """Stopping the app with a live call and socket leaves no timer or socket behind."""
    app = create_emulator_app(settings)
    client = await aiohttp_client(app)
    # Its own session: the test client would close its sockets itself before the server stops.
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(client.make_url("/webrtc"))
        t = token(settings)
        await ws.send_json(
            {"type": "register", "signData": t["SignData"], "signature": t["Signature"]}
        )
        await receive(ws)
        await ws.send_json({"type": "call", "callee": CALLER})
        await receive(ws)
        await client.server.close()
        assert await closed_code(ws) is not None  # aiohttp may drop it before on_shutdown runs
    assert app[SOFTPHONE_KEY].line_of(AGENT1.upn) is None
    assert app[SOFTPHONE_KEY].calls._timers == {}


CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PAGE_JS = """
window.sdkEvents = [];
const log = (name) => (...args) => { window.sdkEvents.push([name, ...args]); };
window.sdk = new WorkbenchSdk({
  dom: 'phone', instanceId: 'ccc-demo-instance', ajaxPath: '/api',
  ajaxOtherParams: { extra: 'x' }, ajaxHeaders: { 'X-Test': '1' }, header: true,
  onInit: log('init'), onRegister: log('register'), onLogIn: log('logIn'), onReady: log('ready'),
  onStatusChange: log('status'), onCallDialing: log('dialing'), onCallEstablish: log('establish'),
  onCallComing: log('coming'), onCallRelease: log('release'), onHangUp: log('hangUp'),
  onErrorNotify: log('error'),
});
"""


class FakeCrm:
    """The page hosting the SDK and a fake `/api` answering like the gateway (reshaped)."""

    def __init__(self, settings: EmulatorSettings, emulator: str) -> None:
        self.settings = settings
        self.emulator = emulator  # http://127.0.0.1:port
        self.signed_in = False
        self.seen: list[dict[str, Any]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.page)
        app.router.add_get("/page.js", self.script)
        app.router.add_route("*", "/api", self.api)
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
            f'<script src="{sdk}/workbenchSdk.js"></script>'
            '<script src="/page.js" defer></script></head>'
            '<body><div id="phone"></div></body></html>'
        )
        return web.Response(
            text=html, content_type="text/html", headers={"Content-Security-Policy": csp}
        )

    async def script(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE_JS, content_type="text/javascript")

    async def api(self, request: web.Request) -> web.Response:
        form = await request.post()
        action = request.query.get("action", "")
        self.seen.append(
            {
                "action": action,
                "method": request.method,
                "contentType": request.content_type,
                "form": {k: str(v) for k, v in form.items()},
                "xTest": request.headers.get("X-Test"),
            }
        )
        if not self.signed_in:
            body = {"requestId": "r0", "errorCode": "NotAuthenticated", "message": "sign in"}
            return web.json_response({**body, "login": "/aliyun/auth"}, status=401)
        return web.json_response({"requestId": "r1", "success": True, **self._answer(action)})

    def _answer(self, action: str) -> dict[str, Any]:
        t = ccc_data.login_token(self.settings, AGENT1, self.settings.clock())
        token = {"signData": t["SignData"], "signature": t["Signature"]}
        ws_url = self.emulator.replace("http://", "ws://") + "/webrtc"
        if action == "RequestLoginInfo":
            info = {"userName": "agent1", "displayName": AGENT1.display_name, "webRtcUrl": ws_url}
            return {"loginInfo": {**info, **token}}
        if action == "ListSkillGroupsOfUser":
            skill = {"skillGroupId": "sales@ccc-demo-instance", "skillGroupName": "Sales"}
            return {"skillLevels": [{"level": 5, "skill": skill}]}
        if action == "ListOutboundPhoneNumberOfUser":
            return {"numberList": ["02160001001"], "outboundPhoneNumbers": []}
        return {"token": token}


@pytest.mark.browser
@pytest.mark.skipif(not HAVE_CHROMIUM, reason="needs /usr/bin/chromium")
async def test_sdk_in_chromium_registers_calls_and_answers(
    aiohttp_server: Any, settings: EmulatorSettings
) -> None:
    """Under a strict CSP the SDK recovers from a 401, reaches Ready, calls out and answers."""
    from playwright.async_api import async_playwright

    emulator_app = create_emulator_app(settings)
    emulator_app[SOFTPHONE_KEY].calls.timings = CallTimings(answer_after=0.1, hangup_after=60)
    emulator = await aiohttp_server(emulator_app)
    emulator_url = str(emulator.make_url("")).rstrip("/")
    crm = FakeCrm(settings, emulator_url)
    page_server = await aiohttp_server(crm.app())
    async with aiohttp.ClientSession() as http, async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = await chromium.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            await page.goto(str(page_server.make_url("/")))
            await _drive(page, crm, http, emulator_url)
            await _lose_and_regain(page, crm, emulator_app, settings)
            assert [p for p in problems if "401" not in p] == []  # the 401 was on purpose
        finally:
            await chromium.close()


async def _drive(page: Any, crm: FakeCrm, http: aiohttp.ClientSession, emulator: str) -> None:
    phone = "#phone"
    await page.get_by_role("button", name="Reconnect").wait_for()
    errors = [e for e in await page.evaluate("window.sdkEvents") if e[0] == "error"]
    assert errors[0][1]["errorCode"] == "NotAuthenticated"
    assert await page.get_attribute(phone, "data-status") == "-1"

    crm.signed_in = True
    await page.get_by_role("button", name="Reconnect").click()
    await page.wait_for_selector('#phone[data-status="3"]')
    names = [e[0] for e in await page.evaluate("window.sdkEvents")]
    assert names[0] == "init"
    assert {"register", "logIn", "ready"} <= set(names)
    first = crm.seen[-3]
    assert [s["action"] for s in crm.seen[-3:]] == [
        "RequestLoginInfo",
        "ListSkillGroupsOfUser",
        "ListOutboundPhoneNumberOfUser",
    ]
    assert (first["method"], first["contentType"]) == ("POST", "application/x-www-form-urlencoded")
    assert json.loads(first["form"]["request"]) == {"instanceId": "ccc-demo-instance"}
    assert (first["form"]["extra"], first["xTest"]) == ("x", "1")

    await page.get_by_label("Number to call").fill(CALLER)
    await page.get_by_role("button", name="Call").click()
    await page.wait_for_selector('#phone[data-status="10"]')
    listed = (await (await http.get(f"{emulator}/_emulator/calls")).json())["calls"]
    assert [(c["direction"], c["number"], c["state"]) for c in listed] == [
        ("outbound", CALLER, "talking")
    ]
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
    names = [e[0] for e in await page.evaluate("window.sdkEvents")]
    for name in ("dialing", "establish", "coming", "release", "hangUp"):
        assert name in names
    states = [
        c["state"] for c in (await (await http.get(f"{emulator}/_emulator/calls")).json())["calls"]
    ]
    assert states == ["ended", "ended"]


async def _lose_and_regain(
    page: Any, crm: FakeCrm, emulator_app: web.Application, settings: EmulatorSettings
) -> None:
    """A dropped socket comes back by itself (RefreshToken first); a replaced one on request."""
    line = emulator_app[SOFTPHONE_KEY].line_of(AGENT1.upn)
    assert line is not None
    await line.ws.close(code=aiohttp.WSCloseCode.INTERNAL_ERROR)
    await page.wait_for_selector('#phone[data-status="-1"]')
    await page.wait_for_selector('#phone[data-status="3"]')
    assert crm.seen[-1]["action"] == "RefreshToken"

    async with aiohttp.ClientSession() as session:
        other = await session.ws_connect(crm.emulator.replace("http://", "ws://") + "/webrtc")
        t = token(settings)
        register = {"type": "register", "signData": t["SignData"], "signature": t["Signature"]}
        await other.send_json(register)
        await receive(other)
        await page.wait_for_selector('#phone[data-status="-1"]')
        assert "another window" in await page.inner_text(".wbsdk-note")
        await page.get_by_role("button", name="Reconnect").click()
        await page.wait_for_selector('#phone[data-status="3"]')
        assert (await receive(other))["type"] == "replaced"
        await other.close()
