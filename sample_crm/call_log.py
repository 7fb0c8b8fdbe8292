"""The call log: a receiver for the gateway's call events and the history on a customer page.

`POST /api/call-events` takes the gateway's signed events (docs/crm/call-events.md): the
`X-CCC-Signature` header must be an HMAC-SHA256 of `<t>.<body>` under the shared secret, made
within five minutes; the event id is the table's primary key, so a delivery repeated after a
lost answer stores nothing new and still answers 200. The secret comes from
`create_app(call_events_secret=...)` or the `SAMPLE_CRM_EVENTS_SECRET` environment variable;
without one the route answers 404.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .i18n import t
from .keys import CLOCK, DB, EVENTS_SECRET
from .layout import esc

PATH = "/api/call-events"
MAX_BODY = 64 * 1024
TOLERANCE = 300.0  # seconds a signature stays good: an old event cannot be replayed later


def verify(secret: str, header: str, body: bytes, now: float) -> bool:
    """The gateway's signature check (the recipe of docs/crm/call-events.md)."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields.get("t", ""))
    except ValueError:
        return False
    if abs(now - timestamp) > TOLERANCE:
        return False
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(mac.hexdigest(), fields.get("v1", ""))


def store(conn: sqlite3.Connection, event: Mapping[str, Any], body: str) -> bool:
    """Insert the event; False when its id is already stored (a repeated delivery)."""
    call = event["call"]
    side = call["caller"] if call["direction"] == "inbound" else call["callee"]
    after = event.get("afterCall") or {}
    with conn:
        cursor = conn.execute(
            "INSERT OR IGNORE INTO call_events (event_id, type, job_id, direction, number,"
            " agent, crm_user, at, started, duration, outcome, notes, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event["id"], event["type"], call["jobId"], call["direction"],
                _digits(side.get("normalised")), event["agent"]["upn"], event.get("crmUser"),
                event["occurredAt"], call.get("startedAt"), call.get("durationSeconds"),
                after.get("outcome"), after.get("notes"), body,
            ),
        )  # fmt: skip
    return cursor.rowcount == 1


def _digits(number: str | None) -> str | None:
    return None if number is None else number.lstrip("+")


async def receive(request: web.Request) -> web.Response:
    """POST /api/call-events: store one signed event (idempotent on its id)."""
    secret = request.app[EVENTS_SECRET]
    if not secret:
        raise web.HTTPNotFound()
    body = await request.content.read(MAX_BODY + 1)
    header = request.headers.get("X-CCC-Signature", "")
    if len(body) > MAX_BODY or not verify(secret, header, body, request.app[CLOCK]()):
        return web.json_response({"error": "bad_signature"}, status=401)
    try:
        event = json.loads(body)
        stored = store(request.app[DB].connection, event, body.decode())
    except (ValueError, KeyError, TypeError, AttributeError):
        return web.json_response({"error": "not_a_call_event"}, status=400)
    return web.json_response({"stored": stored})


@dataclass
class Call:
    job_id: str
    direction: str
    agent: str
    started: str | None = None
    duration: int | None = None
    outcome: str = ""
    notes: str = ""


def calls_with(conn: sqlite3.Connection, phone: str) -> list[Call]:
    """The calls with this number, newest first: one per jobId, its events folded together."""
    rows = conn.execute(
        "SELECT job_id, direction, agent, started, duration, outcome, notes FROM call_events"
        " WHERE number = ? ORDER BY at, rowid",
        (_digits(phone),),
    ).fetchall()
    calls: dict[str, Call] = {}
    for job_id, direction, agent, started, duration, outcome, notes in rows:
        call = calls.setdefault(job_id, Call(job_id, direction, agent))
        call.started = call.started or started
        call.duration = duration if duration is not None else call.duration
        call.outcome, call.notes = outcome or call.outcome, notes or call.notes
    return sorted(calls.values(), key=lambda c: c.started or "", reverse=True)


def history_html(request: web.Request, conn: sqlite3.Connection, phone: str) -> str:
    """The customer page's "Calls" section, in the request's language."""
    calls = calls_with(conn, phone)
    heading = f"<h2>{esc(t(request, 'calls.title'))}</h2>"
    if not calls:
        return f'{heading}<p class="calls-empty">{esc(t(request, "calls.none"))}</p>'
    seconds = t(request, "calls.seconds")
    rows = "".join(
        f'<tr data-job-id="{esc(c.job_id)}"><td>{esc(c.started or "")}</td>'
        f"<td>{esc(c.direction)}</td><td>{esc(c.agent)}</td>"
        f"<td>{'' if c.duration is None else esc(c.duration) + ' ' + esc(seconds)}</td>"
        f'<td class="outcome">{esc(c.outcome)}</td><td class="notes">{esc(c.notes)}</td></tr>'
        for c in calls
    )
    columns = ("started", "direction", "agent", "duration", "outcome", "notes")
    head = "".join(f'<th scope="col">{esc(t(request, "calls." + c))}</th>' for c in columns)
    return (
        f'{heading}<table class="calls"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
    )


def setup(app: web.Application) -> None:
    app.router.add_post(PATH, receive)
