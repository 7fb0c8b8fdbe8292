"""Issue 19 in headless Chromium: an outbound and an inbound call through the CCC 2.0 stand-in
SDK, the after-call form filled for each, and the sample CRM's stored call history; the recent
calls list in the softphone."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest
from playwright.async_api import Page, expect
from stack import AGENT1, Stack
from test_browser_e2e import (
    CCC2,
    GENERATIONS,
    POP_2,
    SDK3,
    WAIT_S,
    MakeStack,
    confirm_call,
    push_incoming,
    screenshot_on_failure,
    sign_in_softphone,
    softphone,
    wait_for_call,
    wait_for_state,
)

# The Chromium fixtures, re-exported so pytest finds them in this module.
from test_browser_e2e import chromium as chromium
from test_browser_e2e import page as page

from ccc_gateway.config.values import Secret
from ccc_gateway.keys import CRM_EVENTS

pytestmark = pytest.mark.browser

SECRET = "sample-crm-call-events-secret"
READY, AFTER_CALL, INBOUND = "3", "5", "9"


async def delivered(stack: Stack) -> None:
    """Every queued call event posted (bounded polling)."""
    deadline = time.monotonic() + WAIT_S
    while stack.app[CRM_EVENTS].pending:
        assert time.monotonic() < deadline, "call events still waiting"
        await asyncio.sleep(0.1)


async def after_call(page: Page, outcome: str, notes: str) -> None:
    """The form is shown in after-call work; saving it makes the agent ready again."""
    phone = softphone(page)
    await expect(phone.locator("#ccc-after-call")).to_be_visible()
    await expect(phone.locator(".wbsdk")).to_have_attribute("data-status", AFTER_CALL)
    await phone.locator("#ccc-ac-outcome").select_option(outcome)
    await phone.locator("#ccc-ac-notes").fill(notes)
    await phone.locator("#ccc-ac-save").click()
    await expect(phone.locator("#ccc-after-call")).to_be_hidden()
    await expect(phone.locator(".wbsdk")).to_have_attribute("data-status", READY)


async def test_calls_leave_a_trace_in_the_crm(
    make_stack: MakeStack, page: Page, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Dial Mr Lu, take Miss Lu's call, fill the after-call form each time: the sample CRM's
    customer pages list both calls with outcome and notes; the softphone lists recent calls,
    each with a call back (confirmed first) and a link to the customer's page."""
    monkeypatch.setenv("SAMPLE_CRM_EVENTS_SECRET", SECRET)
    stack = await make_stack(
        emulator_tls=True,
        ccc=CCC2,
        softphone={**SDK3, "screen_pop_url": POP_2},
        crm_events={"url": "/api/call-events", "secret": Secret(SECRET)},
    )
    base = str(stack.url)
    phone = softphone(page)
    async with screenshot_on_failure(page, "call_log"):
        await sign_in_softphone(page, base)
        await page.goto(base + "/customers")
        await expect(phone.locator(".wbsdk")).to_have_attribute("data-status", READY)
        await page.locator("a[href^='tel:']", has_text="135012345678").click()
        await confirm_call(page)
        outbound = await wait_for_call(stack, "outbound", "135012345678")
        await wait_for_state(stack, outbound["id"], "talking")
        await phone.locator(".wbsdk-hangup").click()
        await after_call(page, "callback", "Wants a quote by Friday")

        incoming = await push_incoming(stack, AGENT1[0], "135012345679")
        await phone.locator(".wbsdk-answer").click()
        await wait_for_state(stack, incoming["id"], "talking")
        await expect(phone.locator(".wbsdk")).to_have_attribute("data-status", INBOUND)
        await phone.locator(".wbsdk-hangup").click()
        await after_call(page, "resolved", "Address changed")

        recent = phone.locator("#ccc-recent-list")
        await expect(recent).to_contain_text("135012345679")
        await recent.locator(".ccc-call-back").first.click()  # confirmed like click-to-call
        await expect(phone.locator("#ccc-confirm-number")).to_have_text("135012345679")
        await phone.locator("#ccc-confirm-cancel").click()
        await expect(phone.locator("#ccc-confirm")).to_be_hidden()
        link = recent.locator("a.ccc-customer").first
        await expect(link).to_have_attribute(
            "href", re.compile(r"^/customer/phoneNumber/135012345679\?to=.*&type=Inbound&job=")
        )

        await delivered(stack)
        await page.goto(base + "/customer/phoneNumber/135012345678")
        row = page.locator(f"table.calls tr[data-job-id='{outbound['id']}']")
        await expect(row).to_contain_text("outbound")
        await expect(row.locator(".outcome")).to_have_text("callback")
        await expect(row.locator(".notes")).to_have_text("Wants a quote by Friday")
        await page.goto(base + "/customer/phoneNumber/135012345679")
        row = page.locator(f"table.calls tr[data-job-id='{incoming['id']}']")
        await expect(row).to_contain_text("inbound")
        await expect(row.locator(".notes")).to_have_text("Address changed")


@pytest.mark.parametrize(
    ("generation", "locale", "title", "option"),
    [("ccc2", "zh-CN", "通话小结", "已解决"), ("classic", "en-US", "After the call", "Resolved")],
)
async def test_inbound_call_form_in_the_browsers_language_and_generation(
    make_stack: MakeStack,
    chromium: Any,
    monkeypatch: pytest.MonkeyPatch,
    generation: str,
    locale: str,
    title: str,
    option: str,
) -> None:
    """The after-call form speaks the browser's language (Chinese for zh*), and works with the
    classic SDK too: the inbound call and its notes reach the customer's page."""
    monkeypatch.setenv("SAMPLE_CRM_EVENTS_SECRET", SECRET)
    sections = GENERATIONS[generation]
    stack = await make_stack(
        emulator_tls=True,
        **sections,
        crm_events={"url": "/api/call-events", "secret": Secret(SECRET)},
    )
    context = await chromium.new_context(ignore_https_errors=True, locale=locale)
    context.set_default_timeout(20_000)
    page = await context.new_page()
    phone = softphone(page)
    try:
        async with screenshot_on_failure(page, f"call_log_{generation}"):
            await sign_in_softphone(page, str(stack.url))
            incoming = await push_incoming(stack, AGENT1[0], "135012345679")
            await expect(phone.locator(".wbsdk")).to_have_attribute("data-status", "6")
            await phone.locator(".wbsdk-answer").click()
            await wait_for_state(stack, incoming["id"], "talking")
            await phone.locator(".wbsdk-hangup").click()
            form = phone.locator("#ccc-after-call")
            await expect(form.locator("h2")).to_have_text(title)
            await phone.locator("#ccc-ac-outcome").select_option(label=option)
            await phone.locator("#ccc-ac-notes").fill("备注 notes")
            await phone.locator("#ccc-ac-save").click()
            await expect(form).to_be_hidden()
            await expect(phone.locator(".wbsdk")).to_have_attribute("data-status", READY)
            await delivered(stack)
            await page.goto(str(stack.url) + "/customer/phoneNumber/135012345679")
            row = page.locator(f"table.calls tr[data-job-id='{incoming['id']}']")
            await expect(row.locator(".outcome")).to_have_text("resolved")
            await expect(row.locator(".notes")).to_have_text("备注 notes")
    finally:
        await context.close()
