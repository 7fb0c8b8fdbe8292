"""End-to-end: the softphone's call events through the gateway to the sample CRM's call log."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from stack import AGENT1, Browser, Stack

from ccc_gateway.config.values import Secret
from ccc_gateway.keys import CRM_EVENTS, METRICS

SECRET = "sample-crm-call-events-secret"
PATH = "/aliyun/call-events"
MakeStack = Callable[..., Awaitable[Stack]]


@pytest.fixture
async def events_stack(make_stack: MakeStack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """A stack whose gateway posts call events to the sample CRM's receiver."""
    monkeypatch.setenv("SAMPLE_CRM_EVENTS_SECRET", SECRET)
    return await make_stack(crm_events={"url": "/api/call-events", "secret": Secret(SECRET)})


@pytest.fixture
async def agent(events_stack: Stack) -> AsyncIterator[Browser]:
    """edward in the CRM, agent1 signed in to Alibaba."""
    browser = events_stack.browser()
    await browser.login_crm()
    assert (await browser.sign_in(AGENT1)).status == 303
    yield browser
    await browser.close()


async def report(browser: Browser, body: Any, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    headers = {"X-CCC-Softphone": "1", **kwargs.pop("headers", {})}
    async with await browser.post(PATH, json=body, headers=headers, **kwargs) as response:
        return response.status, await response.json()


async def delivered(stack: Stack) -> None:
    delivery = stack.app[CRM_EVENTS]
    for _ in range(200):
        if delivery.pending == 0:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("call events still waiting")


def rows(stack: Stack) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(_crm_db(stack))
    try:
        return db.execute(
            "SELECT type, job_id, agent, crm_user, outcome FROM call_events"
        ).fetchall()
    finally:
        db.close()


def _crm_db(stack: Stack) -> str:
    from sample_crm.keys import DB_PATH

    return stack.crm.app[DB_PATH]


CALL = {"jobId": "job-77", "callType": "Inbound", "caller": "135012345678", "callee": "10086"}


async def test_a_call_reaches_the_crm_and_shows_on_the_customer_page(events_stack, agent):
    """Ringing, answered, ended and after-call: four rows, agent and CRM user from the sign-in,
    and the customer page's call history shows the outcome and notes."""
    for kind in ("ringing", "answered", "ended"):
        status, body = await report(agent, {**CALL, "type": kind, "agent": {"upn": "x"}})
        assert status == 202 and body["queued"] and body["id"].startswith("evt_")
    after = {**CALL, "type": "after_call", "outcome": "callback", "notes": "Wants a quote"}
    assert (await report(agent, after))[0] == 202
    await delivered(events_stack)
    stored = rows(events_stack)
    assert sorted(r[0] for r in stored) == [
        "call.after_call", "call.answered", "call.ended", "call.ringing"
    ]  # fmt: skip
    assert {r[2:4] for r in stored} == {("agent1@ccc-demo.onaliyun.com", "edward")}
    async with await agent.get("/customer/phoneNumber/135012345678") as page:
        html = await page.text()
    assert 'data-job-id="job-77"' in html and "callback" in html and "Wants a quote" in html
    registry = events_stack.app[METRICS].registry
    assert registry.get_sample_value("ccc_gateway_crm_events_total", {"outcome": "delivered"}) == 4


async def test_a_repeated_report_stores_one_row(events_stack, agent):
    """The same event reported twice (a reload, two hooks) is one row at the CRM."""
    for _ in range(2):
        assert (await report(agent, {**CALL, "type": "ringing"}))[0] == 202
        await delivered(events_stack)
    assert len(rows(events_stack)) == 1


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({**CALL, "type": "hold"}, 400, "BadRequest"),
        ([1, 2], 400, "BadRequest"),
        ({**CALL, "type": "after_call", "outcome": "not-configured"}, 400, "BadRequest"),
        ({**CALL, "type": "ringing", "notes": "x" * 9000}, 413, "PayloadTooLarge"),
    ],
)
async def test_bad_reports_get_the_contract_body(events_stack, agent, body, status, code):
    """Bad input: a 4xx with {requestId, errorCode, message}; nothing reaches the CRM."""
    answer, error = await report(agent, body)
    assert answer == status and error["errorCode"] == code and error["message"]
    assert rows(events_stack) == []


async def test_signed_out_or_cross_site_reports_are_refused(events_stack):
    """No sign-in: 401; another site's page: 403 CrossSiteRequest; nothing queued."""
    browser = events_stack.browser()
    try:
        await _refused(events_stack, browser)
    finally:
        await browser.close()


async def _refused(events_stack: Stack, browser: Browser) -> None:
    assert (await report(browser, {**CALL, "type": "ringing"}))[0] == 401
    status, body = await report(
        browser, {**CALL, "type": "ringing"}, headers={"Origin": "https://evil.example",
                                                       "Sec-Fetch-Site": "cross-site"}
    )  # fmt: skip
    assert status == 403 and body["errorCode"] == "CrossSiteRequest"
    assert events_stack.app[CRM_EVENTS].pending == 0


async def test_without_crm_events_the_route_says_off(stack, browser):
    """crm_events.url unset: 404 CallEventsOff (the page then sends nothing more)."""
    await browser.login_crm()
    await browser.sign_in(AGENT1)
    status, body = await report(browser, {**CALL, "type": "ringing"})
    assert status == 404 and body["errorCode"] == "CallEventsOff"


async def test_the_sample_crm_refuses_unsigned_events(events_stack):
    """A post to the CRM's receiver without a valid signature is 401 and stores nothing."""
    import aiohttp

    async with aiohttp.ClientSession() as client:
        url = f"http://127.0.0.1:{events_stack.crm.port}/api/call-events"
        async with client.post(url, data=b"{}", headers={"X-CCC-Signature": "t=1,v1=00"}) as r:
            assert r.status == 401
    assert rows(events_stack) == []
