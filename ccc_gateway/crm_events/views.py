"""`POST /aliyun/call-events`: the softphone page reports its SDK's call events here.

Checked like the API route: same origin, made by script, a small JSON body, the agent's
sign-in. The gateway fills in who (sign-in) and when (its clock), keeps the page's screen-pop
URL only as a path on this site (events.pop_path), and queues the signed delivery
(delivery.py); the answer (202 with the event id) never waits for the CRM. With
`crm_events.url` unset the route answers 404 `CallEventsOff` and the page sends nothing more.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Final

import aiohttp
import orjson
from aiohttp import web
from yarl import URL

from ccc_gateway.crm_events.delivery import Delivery
from ccc_gateway.crm_events.events import BadReport, Who, build_event
from ccc_gateway.http.errors import BadRequest, NotFound, PayloadTooLarge, UnsupportedMediaType
from ccc_gateway.http.origin import check_same_origin, check_script_request
from ccc_gateway.keys import CLOCK, CONFIG, CRM_EVENTS, SESSIONS
from ccc_gateway.ops.metrics import count_crm_event
from ccc_gateway.runtime.tls import client_context

EVENTS_PATH: Final = "/aliyun/call-events"
MAX_BODY: Final = 8 * 1024  # notes are at most 2000 characters


def setup(app: web.Application) -> None:
    app.router.add_post(EVENTS_PATH, report_event)
    app.cleanup_ctx.append(_delivery)


async def _delivery(app: web.Application) -> AsyncIterator[None]:
    events = app[CONFIG].crm_events
    if events.url is None or events.secret is None:
        yield
        return
    client = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=10, ssl=client_context(app[CONFIG].aliyun.ca_file)),
        timeout=aiohttp.ClientTimeout(total=events.timeout),
        cookie_jar=aiohttp.DummyCookieJar(),
    )

    async def post(url: str, body: bytes, headers: Mapping[str, str]) -> int:
        try:
            async with client.post(url, data=body, headers=headers, allow_redirects=False) as r:
                await r.read()  # the connection goes back to the pool
                return r.status
        except aiohttp.ClientError as error:  # no answer: delivery retries it
            raise OSError(type(error).__name__) from None

    app[CRM_EVENTS] = Delivery(
        str(app[CONFIG].upstream.url.join(URL(events.url))),  # a path: on the CRM
        events.secret.reveal(),
        post,
        max_attempts=events.max_attempts,
        queue_size=events.queue_size,
        count=lambda outcome: count_crm_event(app, outcome),
        clock=app[CLOCK],
    )
    yield
    await app[CRM_EVENTS].close()
    await client.close()


async def report_event(request: web.Request) -> web.Response:
    """Queue the event the page reports; 202 `{"id": event id, "queued": bool}`."""
    app = request.app
    config = app[CONFIG]
    check_same_origin(request, config.aliyun.public_origin)
    check_script_request(request)
    delivery = app.get(CRM_EVENTS)
    if delivery is None:
        raise NotFound(
            "Call events are not configured (crm_events.url).", error_code="CallEventsOff"
        )
    signin = await app[SESSIONS].require(request)
    report = await _json_object(request)
    who = Who(signin.agent.upn, signin.agent.name, signin.ccc_user, signin.crm_user)
    try:
        event = build_event(
            report,
            who,
            app[CLOCK](),
            outcomes=config.softphone.after_call_outcomes,
        )
    except BadReport as error:
        raise BadRequest(f"Not a call event: {error}.") from None
    if event["screenPopUrl"] is not None:
        event["screenPopUrl"] = config.aliyun.public_origin + event["screenPopUrl"]
    queued = delivery.submit(event)
    return web.json_response({"id": event["id"], "queued": queued}, status=202)


async def _json_object(request: web.Request) -> Mapping[str, object]:
    if request.content_type != "application/json":
        raise UnsupportedMediaType("Send the call event as application/json.")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise PayloadTooLarge(f"A call event is at most {MAX_BODY} bytes.")
    body = await request.content.read(MAX_BODY + 1)
    if len(body) > MAX_BODY:
        raise PayloadTooLarge(f"A call event is at most {MAX_BODY} bytes.")
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("The call event is not valid JSON.") from None
    if not isinstance(value, dict):
        raise BadRequest("The call event must be a JSON object.")
    return value
