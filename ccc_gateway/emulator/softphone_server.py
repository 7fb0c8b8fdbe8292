"""The emulator's call side: the stand-in workbench SDK files, the softphone websocket, calls.

Routes:
- `GET /_emulator/sdk/workbenchSdk.js`, `GET /_emulator/sdk/workbenchSdk.css`: the stand-in
  for Alibaba's `workbenchSdk.js` (docs/softphone.md), served like a CDN would;
  `workbenchSdk2.js` (web-workbench-sdk 2.x, `window.WorkbenchSdk`) and `cccWorkbenchSdk.js`
  (3.x, `window.CCCWorkbenchSDK`): the CCC 2.0 stand-ins, one source (docs/emulator.md).
- `GET /webrtc` (websocket): what `RequestLoginInfo`'s `WebRtcUrl` points at; plays the SIP
  registrar and the media path. Protocol (JSON text frames):
  client → `{"type": "register", "signData", "signature"}` first (within AUTH_TIMEOUT; kept
  out of the URL so it never lands in a request log), then `call {callee, caller?, ref?}`,
  `answer {connid}`, `hangup {connid}`, `dtmf {connid, digits}`, `hold {connid}`,
  `retrieve {connid}`, `ping`;
  server → `registered {agent}`, `dialing`, `incoming`, `established`, `released {reason}`,
  `dtmfSent`, `held`, `retrieved`, `pong`, `error {code, message, ref?}`, `replaced`.
  Close codes: 4401 bad or stale token, 4408 no register in time, 4409 replaced by a newer
  softphone of the same agent (one active softphone per agent), 1001 emulator shutting down.
- `GET /_emulator/calls`, `POST /_emulator/calls` (push an incoming call), `DELETE` (clear).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from . import ccc_data as data
from .calls import Call, CallBook, CallTimings, valid_dtmf, valid_number
from .ccc2_state import AgentDesks

__all__ = ["SOFTPHONE_KEY", "CallTimings", "SoftphoneHub", "add_softphone_routes"]
from .settings import Agent, EmulatorSettings
from .store import EmulatorStore

AUTH_TIMEOUT = 10.0  # seconds a new connection has to register
MAX_MESSAGE = 4096  # bytes; softphone messages are tiny
CLOSE_BAD_TOKEN = 4401
CLOSE_NO_REGISTER = 4408
CLOSE_REPLACED = 4409
_STATIC = Path(__file__).parent / "static"
_SDK_FILES = {
    "workbenchSdk.js": "text/javascript",
    "workbenchSdk.css": "text/css",
    "workbenchSdk2.js": "text/javascript",
    "cccWorkbenchSdk.js": "text/javascript",
}
# The 2.x and 3.x stand-ins share one source; the served file names its generation.
_CCC2_SOURCE = "ccc2WorkbenchSdk.js"
_CCC2_BUILDS = {"workbenchSdk2.js": "2.x", "cccWorkbenchSdk.js": "3.x"}


@dataclass(frozen=True)
class Line:
    """One registered softphone connection."""

    id: int
    agent: Agent
    ws: web.WebSocketResponse


class SoftphoneHub:
    """The registered softphones (one per agent) and the calls they carry."""

    def __init__(self, settings: EmulatorSettings, timings: CallTimings | None = None) -> None:
        self.settings = settings
        self.calls = CallBook(settings.clock, self._notify, timings)
        self.desks = AgentDesks(settings, self.calls)  # CCC 2.0 agent states (ccc2_state)
        self._lines: dict[str, Line] = {}
        self._ids = itertools.count(1)

    def line_of(self, upn: str) -> Line | None:
        return self._lines.get(upn)

    async def attach(self, agent: Agent, ws: web.WebSocketResponse) -> Line:
        """Register a softphone; an older one of the same agent is told and disconnected."""
        line = Line(next(self._ids), agent, ws)
        old = self._lines.get(agent.upn)
        self._lines[agent.upn] = line
        if old is not None:
            self.calls.drop_line(old.id)
            await _send(old.ws, {"type": "replaced"})
            await old.ws.close(code=CLOSE_REPLACED, message=b"replaced by a newer softphone")
        return line

    def detach(self, line: Line) -> None:
        if self._lines.get(line.agent.upn) is line:
            del self._lines[line.agent.upn]
        self.calls.drop_line(line.id)

    async def send(self, line: Line, event: dict[str, Any]) -> None:
        await _send(line.ws, event)

    async def deliver_desk_events(self) -> None:
        """Tell the softphones what 2.0 API requests changed on their calls (ccc2_state)."""
        events, self.desks.outbox = self.desks.outbox, []
        for call, event in events:
            await self._notify(call, event)

    async def shutdown(self) -> None:
        """Close every softphone and stop every call timer before the loop goes away."""
        await self.calls.close()
        lines = list(self._lines.values())
        self._lines.clear()
        for line in lines:
            await line.ws.close(code=WSCloseCode.GOING_AWAY, message=b"emulator shutting down")

    async def _notify(self, call: Call, event: dict[str, Any]) -> None:
        line = self._lines.get(call.agent)
        if line is not None and line.id == call.line:
            await _send(line.ws, event)


SOFTPHONE_KEY = web.AppKey("emulator_softphone", SoftphoneHub)


async def _send(ws: web.WebSocketResponse, event: dict[str, Any]) -> None:
    """Best effort: a softphone that just went away simply misses the event."""
    if ws.closed:
        return
    try:
        await ws.send_json(event)
    except ConnectionError:
        pass


def add_softphone_routes(app: web.Application, store: EmulatorStore) -> None:
    """Serve the SDK files, `/webrtc` and `/_emulator/calls`; tidy up on shutdown."""
    hub = SoftphoneHub(store.settings)
    app[SOFTPHONE_KEY] = hub
    files = {name: _load(name) for name in _SDK_FILES}

    async def sdk_file(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in files:
            raise web.HTTPNotFound()
        return _sdk_response(request, name, files[name])

    async def on_shutdown(_: web.Application) -> None:
        await hub.shutdown()

    app.router.add_get("/_emulator/sdk/{name}", sdk_file)
    app.router.add_get("/webrtc", webrtc)
    app.router.add_get("/_emulator/calls", list_calls)
    app.router.add_post("/_emulator/calls", push_call)
    app.router.add_delete("/_emulator/calls", clear_calls)
    app.on_shutdown.append(on_shutdown)


def _load(name: str) -> tuple[bytes, str]:
    if name in _CCC2_BUILDS:
        source = (_STATIC / _CCC2_SOURCE).read_bytes()
        body = source.replace(b"'__GENERATION__'", f"'{_CCC2_BUILDS[name]}'".encode(), 1)
    else:
        body = (_STATIC / name).read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def _sdk_response(request: web.Request, name: str, file: tuple[bytes, str]) -> web.Response:
    body, etag = file
    headers = {
        "Cache-Control": "no-cache",  # revalidate every time: a demo restart may change it
        "ETag": etag,
        # Lets a page with Cross-Origin-Embedder-Policy load it from the emulator's origin.
        "Cross-Origin-Resource-Policy": "cross-origin",
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type=_SDK_FILES[name], charset="utf-8", headers=headers)


async def webrtc(request: web.Request) -> web.StreamResponse:
    """The softphone websocket: register, then call control until either side closes."""
    hub = request.app[SOFTPHONE_KEY]
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_MESSAGE)
    if not ws.can_prepare(request).ok:
        return web.json_response({"error": "websocket upgrade required"}, status=426)
    await ws.prepare(request)
    agent = await _register(hub.settings, ws)
    if agent is None:
        return ws
    line = await hub.attach(agent, ws)
    try:
        await hub.send(line, {"type": "registered", "agent": _agent_view(agent)})
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await _on_message(hub, line, msg.data)
    finally:
        hub.detach(line)
    return ws


async def _register(settings: EmulatorSettings, ws: web.WebSocketResponse) -> Agent | None:
    """The agent named by the first message's login token, or None (the socket is closed)."""
    try:
        msg = await ws.receive(timeout=AUTH_TIMEOUT)
    except TimeoutError:
        await ws.close(code=CLOSE_NO_REGISTER, message=b"register first")
        return None
    if msg.type != WSMsgType.TEXT:
        await ws.close(code=CLOSE_NO_REGISTER, message=b"register first")
        return None
    body = _json(msg.data)
    agent = None
    if body is not None and body.get("type") == "register":
        sign_data, signature = body.get("signData"), body.get("signature")
        if isinstance(sign_data, str) and isinstance(signature, str):
            now = settings.clock()
            agent = data.verify_login_token(settings, sign_data, signature, now)
    if agent is None:
        await _send(ws, {"type": "error", "code": "InvalidToken", "message": "bad login token"})
        await ws.close(code=CLOSE_BAD_TOKEN, message=b"bad or expired login token")
    return agent


def _agent_view(agent: Agent) -> dict[str, str]:
    return {
        "upn": agent.upn,
        "userName": data.user_name(agent),
        "displayName": agent.display_name,
        "extension": agent.extension,
    }


def _json(text: str) -> dict[str, Any] | None:
    try:
        body = json.loads(text)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _ref(value: Any) -> str | int | None:
    """The client's request id, echoed back only when it is a short plain value."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    return value if not isinstance(value, str) or len(value) <= 64 else None


def _error(code: str, message: str, ref: Any = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if _ref(ref) is not None:
        event["ref"] = _ref(ref)
    return event


async def _on_message(hub: SoftphoneHub, line: Line, text: str) -> None:
    body = _json(text)
    kind = body.get("type") if body is not None else None
    if body is None or not isinstance(kind, str):
        await hub.send(line, _error("BadMessage", "expected a JSON object with a type"))
        return
    if kind == "ping":
        await hub.send(line, {"type": "pong"})
    elif kind == "call":
        await _dial(hub, line, body)
    elif kind in ("answer", "hangup", "dtmf", "hold", "retrieve"):
        await _call_control(hub, line, kind, body)
    else:
        await hub.send(line, _error("BadMessage", f"unknown message type {kind[:40]!r}"))


async def _dial(hub: SoftphoneHub, line: Line, body: dict[str, Any]) -> None:
    ref = body.get("ref")
    callee, caller = body.get("callee"), body.get("caller")
    if not valid_number(callee):
        await hub.send(line, _error("InvalidCallee", "callee must be a phone number", ref))
        return
    if caller in (None, ""):
        caller = data.outbound_numbers(hub.settings, line.agent)[0].number
    if not valid_number(caller):
        await hub.send(line, _error("InvalidCaller", "caller must be a phone number", ref))
        return
    call = hub.calls.start_outbound(line.agent.upn, line.id, caller, callee)
    event = call.event("dialing")
    if _ref(ref) is not None:
        event["ref"] = _ref(ref)
    await hub.send(line, event)


async def _call_control(hub: SoftphoneHub, line: Line, kind: str, body: dict[str, Any]) -> None:
    connid = body.get("connid")
    call = hub.calls.get(connid) if isinstance(connid, str) else None
    if call is None or call.line != line.id or call.state == "ended":
        await hub.send(line, _error("NoSuchCall", f"no live call {str(connid)[:40]!r}"))
        return
    if kind == "answer":
        if hub.calls.answer(line.id, call.id) is None:
            await hub.send(line, _error("NotRinging", "only a ringing inbound call is answered"))
            return
        await hub.send(line, call.event("established"))
    elif kind == "hangup":
        hub.calls.hang_up(line.id, call.id)
        await hub.send(line, call.event("released", reason="agent"))
    elif call.state != "talking":
        await hub.send(line, _error("NotTalking", f"{kind} needs an established call"))
    elif kind == "dtmf":
        digits = body.get("digits")
        if not valid_dtmf(digits):
            await hub.send(line, _error("InvalidDigits", "digits must be 0-9, *, #, A-D"))
            return
        await hub.send(line, call.event("dtmfSent", digits=digits))
    else:
        await hub.send(line, call.event("held" if kind == "hold" else "retrieved"))


async def list_calls(request: web.Request) -> web.Response:
    return web.json_response({"calls": request.app[SOFTPHONE_KEY].calls.snapshot()})


async def push_call(request: web.Request) -> web.Response:
    """Ring an agent's softphone (even mid-call: it shows the new call as waiting)."""
    hub = request.app[SOFTPHONE_KEY]
    try:
        body = await request.json()
    except (ValueError, LookupError):
        return _bad("body must be JSON")
    if not isinstance(body, dict):
        return _bad("body must be a JSON object")
    unknown = sorted(set(body) - {"agent", "caller"})
    if unknown:
        return _bad(f"unknown fields: {', '.join(unknown)}")
    upn, caller = body.get("agent"), body.get("caller")
    agent = hub.settings.agent_by_upn(upn) if isinstance(upn, str) else None
    if agent is None:
        return _bad("agent must be the upn of an agent of the emulator")
    if not valid_number(caller):
        return _bad("caller must be a phone number")
    line = hub.line_of(agent.upn)
    if line is None:
        return web.json_response({"error": f"{agent.upn} has no softphone connected"}, status=409)
    group = data.skill_groups(hub.settings, agent)[0]
    call = hub.calls.start_inbound(
        agent.upn,
        line.id,
        caller,
        group.numbers[0].number,  # the hotline the caller dialled
        data.skill_group_id(hub.settings, group),
    )
    hub.desks.of(agent)  # a 2.0 agent's state follows the ringing call from now (ccc2_state)
    await hub.send(line, call.event("incoming"))
    return web.json_response(call.wire(), status=201)


async def clear_calls(request: web.Request) -> web.Response:
    await request.app[SOFTPHONE_KEY].calls.clear()
    return web.json_response({"calls": []})


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)
