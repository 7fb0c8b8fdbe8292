"""One call event, from the softphone's report and what the gateway itself knows.

The page reports what its SDK told it (the kind of event, `jobId`, direction, caller and callee,
and for the after-call form the outcome and notes). Who made the call is never taken from it:
agent, CCC user id and CRM user come from the sign-in. The event's own time is the gateway's
clock; earlier times of the call (ringing, answered) are the page's, accepted only within the
last day and never after now or out of order.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

KINDS: Final = ("ringing", "answered", "ended", "after_call")
MAX_NOTES: Final = 2000
MAX_POP_PATH: Final = 2048
_CONTROL = re.compile(r"[\x00-\x20\x7f\\]")  # never in a path numbers.js encoded
_JOB_ID = re.compile(r"[A-Za-z0-9@._:+-]{1,128}")
_SEPARATORS = re.compile(r"[\s\-.()/]")  # what people and phone systems put into numbers
_NUMBER = re.compile(r"\+?[0-9]{1,20}")
_MAX_AGE = 86400.0  # a call's earlier times reported by the page: at most a day back


class BadReport(ValueError):
    """The page's report is not a call event (the message says which field)."""


@dataclass(frozen=True)
class Who:
    """Who made the call, from the sign-in (never from the page)."""

    upn: str
    name: str
    ccc_user: str | None
    crm_user: str | None


def normalise_number(raw: str) -> str | None:
    """Digits with an optional leading +; None when `raw` is not a phone number."""
    compact = _SEPARATORS.sub("", raw)
    return compact if _NUMBER.fullmatch(compact) else None


def event_id(upn: str, job_id: str, kind: str) -> str:
    """The idempotency key: one id per agent, call and kind, whoever reports it how often."""
    digest = hashlib.sha256(f"{upn}\n{job_id}\n{kind}".encode()).hexdigest()
    return "evt_" + digest[:32]


def build_event(
    report: Mapping[str, Any],
    who: Who,
    now: float,
    *,
    outcomes: tuple[str, ...],
) -> dict[str, Any]:
    """The event the CRM receives; BadReport when the report is not one."""
    kind = _choice(report, "type", KINDS)
    job_id = _text(report, "jobId", 128)
    if not _JOB_ID.fullmatch(job_id):
        raise BadReport("jobId: expected the SDK's call id")
    direction = _choice(report, "callType", ("inbound", "outbound"), lower=True)
    caller, callee = _text(report, "caller", 64), _text(report, "callee", 64)
    event: dict[str, Any] = {
        "id": event_id(who.upn, job_id, kind),
        "type": "call." + kind,
        "occurredAt": iso(now),
        "call": {
            "jobId": job_id,
            "direction": direction,
            "caller": {"raw": caller, "normalised": normalise_number(caller)},
            "callee": {"raw": callee, "normalised": normalise_number(callee)},
            **_times(report, kind, now),
        },
        "agent": {"upn": who.upn, "name": who.name, "cccUserId": who.ccc_user},
        "crmUser": who.crm_user,
        "screenPopUrl": pop_path(report.get("screenPopUrl")),
    }
    if kind == "after_call":
        notes = _text(report, "notes", MAX_NOTES, required=False)
        event["afterCall"] = {"outcome": _choice(report, "outcome", outcomes), "notes": notes}
    return event


def _times(report: Mapping[str, Any], kind: str, now: float) -> dict[str, Any]:
    """startedAt/answeredAt/endedAt (ISO, UTC) and durations in seconds, where known."""
    started = now if kind == "ringing" else _past(report, "startedAt", now, None)
    answered = now if kind == "answered" else _past(report, "answeredAt", now, started)
    ended = now if kind == "ended" else _past(report, "endedAt", now, answered or started)
    return {
        "startedAt": iso(started),
        "answeredAt": iso(answered),
        "endedAt": iso(ended),
        "durationSeconds": _span(started, ended),
        "talkSeconds": _span(answered, ended),
    }


def _past(report: Mapping[str, Any], key: str, now: float, after: float | None) -> float | None:
    """A time the page reports (Unix seconds): kept only between a day ago (or `after`) and now."""
    value = report.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadReport(f"{key}: expected Unix seconds")
    floor = max(now - _MAX_AGE, after if after is not None else 0.0)
    return float(value) if floor <= value <= now else None


def _span(start: float | None, end: float | None) -> int | None:
    return None if start is None or end is None else max(0, round(end - start))


def iso(when: float | None) -> str | None:
    if when is None:
        return None
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def pop_path(value: object) -> str | None:
    """The screen-pop URL the softphone used, when it is a path on this site (numbers.js
    `popUrl` fills the template: one implementation); anything else is left out."""
    if not isinstance(value, str) or len(value) > MAX_POP_PATH:
        return None
    if not value.startswith("/") or value.startswith(("//", "/\\")) or _CONTROL.search(value):
        return None  # another site, or a spelling a browser would read as one
    return value


def _text(report: Mapping[str, Any], key: str, limit: int, *, required: bool = True) -> str:
    value = report.get(key, "")
    if not isinstance(value, str) or len(value) > limit or (required and not value):
        raise BadReport(f"{key}: expected a string of 1-{limit} characters")
    if not value.isprintable() and key != "notes":
        raise BadReport(f"{key}: control characters are not allowed")
    return value


def _choice(
    report: Mapping[str, Any], key: str, allowed: tuple[str, ...], *, lower: bool = False
) -> str:
    value = report.get(key)
    if isinstance(value, str) and lower:
        value = value.lower()
    if value not in allowed:
        raise BadReport(f"{key}: expected one of {', '.join(allowed)}")
    return str(value)
