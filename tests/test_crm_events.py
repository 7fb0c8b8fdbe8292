"""Unit tests of call events to the CRM: signing, building, delivery with retries, config."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from ccc_gateway.config.load import parse_config
from ccc_gateway.config.model import ConfigError
from ccc_gateway.crm_events.delivery import Delivery
from ccc_gateway.crm_events.events import BadReport, Who, build_event, normalise_number
from ccc_gateway.crm_events.signing import signature, verify
from sample_crm import call_log

SECRET = "a-shared-secret-of-some-length"
NOW = 1_780_000_000.0
WHO = Who("agent1@ccc-demo.onaliyun.com", "Agent One", "agent1@ccc-demo", "edward")
OUTCOMES = ("resolved", "callback")


def report(**changes: Any) -> dict[str, Any]:
    base = {"type": "ringing", "jobId": "job-1", "callType": "Inbound",
            "caller": "+86 135-0123-4567", "callee": "10086",
            "screenPopUrl": "/customer/phoneNumber/%2B86%20135-0123-4567"}  # fmt: skip
    return {**base, **changes}


def event(**changes: Any) -> dict[str, Any]:
    return build_event(report(**changes), WHO, NOW, outcomes=OUTCOMES)


# ---------------------------------------------------------------- signing


def test_signature_is_hmac_sha256_over_time_dot_body():
    """The header is t=<unix>,v1=<hex HMAC-SHA256 of "t." + body> under the secret."""
    body = b'{"id":"evt_1"}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature(SECRET, 1700000000, body) == f"t=1700000000,v1={expected}"


def test_verify_accepts_only_the_signed_body_recent_and_with_the_secret():
    """A changed body, another secret or an old time fails; the sample CRM's check agrees."""
    body = b'{"id":"evt_1"}'
    header = signature(SECRET, int(NOW), body)
    assert verify(SECRET, header, body, NOW)
    assert call_log.verify(SECRET, header, body, NOW)
    assert not verify(SECRET, header, body + b" ", NOW)
    assert not verify("another-secret-entirely", header, body, NOW)
    assert not verify(SECRET, header, body, NOW + 301)
    assert not call_log.verify(SECRET, header, body, NOW + 301)
    assert not verify(SECRET, "v1=abc", body, NOW)


# ---------------------------------------------------------------- events


def test_event_fields_identity_from_the_sign_in_and_numbers_normalised():
    """Who comes from the sign-in; numbers in raw and normalised form; the pop URL encoded."""
    e = event()
    assert e["type"] == "call.ringing" and e["id"].startswith("evt_")
    assert e["agent"] == {"upn": WHO.upn, "name": "Agent One", "cccUserId": "agent1@ccc-demo"}
    assert e["crmUser"] == "edward"
    assert e["call"]["caller"] == {"raw": "+86 135-0123-4567", "normalised": "+8613501234567"}
    assert e["call"]["direction"] == "inbound"
    assert e["call"]["startedAt"] == "2026-05-28T20:26:40Z"
    assert e["screenPopUrl"] == "/customer/phoneNumber/%2B86%20135-0123-4567"


@pytest.mark.parametrize(
    "url",
    ["//evil.example/x", "/\\evil.example", "https://evil.example/", "javascript:x", "/a b", 7],
)
def test_a_screen_pop_url_off_this_site_is_left_out(url: object) -> None:
    """The page's screen-pop URL is kept only as a path on this site (numbers.js filled it)."""
    assert event(screenPopUrl=url)["screenPopUrl"] is None


def test_event_ignores_identity_the_page_sends():
    """An `agent` or `crmUser` in the report changes nothing: the sign-in says who."""
    e = event(agent={"upn": "mallory"}, crmUser="sissi")
    assert e["agent"]["upn"] == WHO.upn and e["crmUser"] == "edward"


def test_event_id_is_stable_per_agent_call_and_kind():
    """The same report twice has one id (idempotency); another kind or call another id."""
    assert event()["id"] == event()["id"]
    assert event()["id"] != event(type="answered")["id"]
    assert event()["id"] != event(jobId="job-2")["id"]


def test_ended_event_times_and_durations():
    """Ended: the gateway's clock ends it; the page's earlier times count when plausible."""
    e = event(type="ended", startedAt=NOW - 60, answeredAt=NOW - 50)
    assert e["call"]["durationSeconds"] == 60 and e["call"]["talkSeconds"] == 50
    future = event(type="ended", startedAt=NOW + 60, answeredAt=NOW - 2 * 86400)
    assert future["call"]["startedAt"] is None and future["call"]["answeredAt"] is None


def test_after_call_event_carries_outcome_and_notes():
    """The after-call form's outcome (one of the configured) and notes."""
    e = event(type="after_call", outcome="callback", notes="Call back Monday.\nAsk for Lu.")
    assert e["afterCall"] == {"outcome": "callback", "notes": "Call back Monday.\nAsk for Lu."}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"type": "hold"}, "type"),
        ({"jobId": ""}, "jobId"),
        ({"jobId": "a b"}, "jobId"),
        ({"callType": "sideways"}, "callType"),
        ({"caller": 5}, "caller"),
        ({"caller": "1\n2"}, "caller"),
        ({"type": "after_call", "outcome": "won"}, "outcome"),
        ({"type": "after_call", "outcome": "resolved", "notes": "x" * 2001}, "notes"),
        ({"type": "ended", "startedAt": "yesterday"}, "startedAt"),
    ],
)
def test_bad_reports_are_refused_naming_the_field(changes: dict[str, Any], field: str):
    """A report that is not a call event says which field is wrong."""
    with pytest.raises(BadReport, match=field):
        event(**changes)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [("135 0123 4567", "13501234567"), ("+86(135)0123-4567", "+8613501234567"), ("anon", None)],
)
def test_normalise_number(raw: str, normalised: str | None):
    """Separators go; what is not a number is None."""
    assert normalise_number(raw) == normalised


# ---------------------------------------------------------------- delivery


class Receiver:
    """A fake receiver: answers the given statuses in turn (an exception: no answer)."""

    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.seen: list[tuple[bytes, Mapping[str, str]]] = []

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        self.seen.append((body, headers))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def delivery(receiver: Receiver, outcomes: list[str], **kwargs: Any) -> Delivery:
    options = {"max_attempts": 4, "queue_size": 10, "first_delay": 0.0, **kwargs}
    return Delivery(
        "https://crm.example/api/call-events", SECRET, receiver.post,
        count=outcomes.append, clock=lambda: NOW, **options,
    )  # fmt: skip


async def settle(d: Delivery) -> None:
    for _ in range(200):
        if d.pending == 0:
            return
        await asyncio.sleep(0)
    raise AssertionError("deliveries still pending")


async def test_delivery_retries_until_the_receiver_recovers():
    """No answer, then 503, then 200: delivered on the third attempt, each attempt signed."""
    receiver = Receiver(OSError("refused"), 503, 200)
    outcomes: list[str] = []
    d = delivery(receiver, outcomes)
    assert d.submit(event())
    await settle(d)
    assert outcomes == ["retried", "retried", "delivered"]
    bodies = {body for body, _ in receiver.seen}
    assert len(receiver.seen) == 3 and len(bodies) == 1
    for body, headers in receiver.seen:
        assert verify(SECRET, headers["X-CCC-Signature"], body, NOW)
        assert headers["X-CCC-Event-Id"] == event()["id"]


async def test_delivery_gives_up_after_max_attempts_and_logs_no_numbers(caplog):
    """A receiver down for good: max_attempts tries, counted failed, no phone number logged."""
    caplog.set_level(logging.INFO, "ccc_gateway.crm_events")
    receiver = Receiver(500)
    outcomes: list[str] = []
    d = delivery(receiver, outcomes, max_attempts=3)
    d.submit(event())
    await settle(d)
    assert len(receiver.seen) == 3 and outcomes == ["retried", "retried", "failed"]
    assert "0123" not in caplog.text and "10086" not in caplog.text
    assert event()["id"] in caplog.text


async def test_delivery_does_not_retry_a_refusal():
    """A 4xx (bad signature at the receiver) is not retried: counted failed at once."""
    receiver = Receiver(401)
    outcomes: list[str] = []
    d = delivery(receiver, outcomes)
    d.submit(event())
    await settle(d)
    assert len(receiver.seen) == 1 and outcomes == ["failed"]


async def test_a_repeated_event_is_not_queued_twice():
    """The same event id while the first is still waiting is not queued again."""
    receiver = Receiver(200)
    d = delivery(receiver, [])
    assert d.submit(event()) and not d.submit(event())
    await settle(d)
    assert len(receiver.seen) == 1


async def test_a_full_queue_drops_the_oldest():
    """Beyond queue_size waiting events the oldest is given up and counted dropped."""
    receiver = Receiver(200)
    outcomes: list[str] = []
    d = delivery(receiver, outcomes, queue_size=2)
    for job in ("a", "b", "c"):
        d.submit(event(jobId=job))
    await settle(d)
    delivered = {body for body, _ in receiver.seen}
    assert outcomes.count("dropped") == 1 and outcomes.count("delivered") == 2
    assert not any(b'"jobId":"a"' in body for body in delivered)


async def test_close_drops_what_still_waits():
    """Stopping gives up waiting events (counted dropped) without waiting for retries."""
    receiver = Receiver(503)
    outcomes: list[str] = []
    d = delivery(receiver, outcomes, first_delay=3600.0)
    d.submit(event())
    for _ in range(20):
        await asyncio.sleep(0)
    await d.close()
    assert outcomes == ["retried", "dropped"] and d.pending == 0


# ---------------------------------------------------------------- config

BASE = """
tls: {cert: "%s", key: "%s"}
aliyun: {client_id: c, client_secret: s, redirect_uri: "https://crm.example.com/aliyun/auth/callback"}
ccc: {instance_id: ccc-demo}
session: {keys: ["%s"]}
"""


@pytest.fixture
def config(tmp_path: Path) -> Callable[[str], Any]:
    """`config(yaml)`: a minimal valid configuration plus `yaml`, parsed."""
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text("cert")
    key.write_text("key")
    session_key = Fernet.generate_key().decode()
    return lambda extra: parse_config(BASE % (cert, key, session_key) + extra, {})


def test_config_defaults_off_and_a_path_url_with_secret(config: Callable[[str], Any]):
    """No crm_events: off. A path URL with a secret is accepted as written."""
    assert config("").crm_events.url is None
    loaded = config(f"crm_events: {{url: /api/call-events, secret: {SECRET}, max_attempts: 3}}")
    assert loaded.crm_events.url == "/api/call-events" and loaded.crm_events.max_attempts == 3
    assert loaded.softphone.after_call_outcomes == ("resolved", "callback", "no_answer", "other")


def test_config_problems_are_reported_by_key_path(config: Callable[[str], Any]):
    """No secret, plain http off loopback, a bad outcome: each named by its key path."""
    with pytest.raises(ConfigError) as caught:
        config(
            "crm_events: {url: 'http://crm.example.com/hook', timeout: 0}\n"
            "softphone: {after_call: {outcomes: ['ok', 'bad outcome'], seconds: -1}}\n"
        )
    text = str(caught.value)
    for key in ("crm_events.url", "crm_events.timeout", "softphone.after_call.outcomes",
                "softphone.after_call.seconds"):  # fmt: skip
        assert key in text
    with pytest.raises(ConfigError, match=r"crm_events\.secret"):
        config("crm_events: {url: 'https://crm.example.com/hook'}")
    loopback = config(f"crm_events: {{url: 'http://127.0.0.1:9000/hook', secret: {SECRET}}}")
    assert loopback.crm_events.url == "http://127.0.0.1:9000/hook"


def test_softphone_page_config_follows_crm_events_and_generation():
    """With crm_events on and CCC 2.0: events, the form, afterCallRule manual and recent
    calls; without crm_events none of the first three."""
    from stack import gateway_config
    from yarl import URL

    from ccc_gateway.config.values import Secret
    from ccc_gateway.softphone.views import page_config

    def page(**sections: Any) -> dict[str, Any]:
        config = gateway_config(
            port=1, crm_port=2, emulator_url=URL("http://127.0.0.1:3"), cert=Path("c"),
            key=Path("k"), ccc={"version": "2020-07-01", "instance_id": "ccc-demo"}, **sections,
        )  # fmt: skip
        return page_config(config)

    on = page(crm_events={"url": "/api/call-events", "secret": Secret(SECRET)})
    assert on["callLog"]["events"] and on["callLog"]["form"] and on["callLog"]["recent"]
    assert on["options"]["afterCallRule"] == "manual"
    off = page()
    assert not off["callLog"]["events"] and not off["callLog"]["form"]
    assert "afterCallRule" not in off["options"] and off["callLog"]["recent"]
    mine = page(
        crm_events={"url": "/api/call-events", "secret": Secret(SECRET)},
        softphone={"sdk_options": {"afterCallRule": 30}},
    )
    assert mine["options"]["afterCallRule"] == 30  # softphone.sdk_options has the last word
