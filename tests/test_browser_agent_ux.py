"""The softphone as an agent meets it, in headless Chromium (issue 18): a ringing call opens
the panel with the caller, the customer's name and Answer; the button names the state; other
tabs and a background tab (a desktop notification) learn of the call; the keyboard works; and
axe-core finds no serious or critical accessibility violation, in English and in Chinese."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Frame, Locator, Page, expect
from stack import AGENT1
from test_browser_e2e import (
    SDK,
    MakeStack,
    chromium,  # noqa: F401 (a fixture)
    crm,
    crm_login,
    push_incoming,
    screenshot_on_failure,
    sign_in_through_popup,
    softphone,
    wait_for_call,
    wait_for_state,
)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
AXE = ROOT / ".cache/npm/node_modules/axe-core/axe.min.js"
READY = "3"
# Replaces the Notification API in a page: records what the widget shows and asks.
FAKE_NOTIFICATIONS = """
window.cccNotes = { shown: [], asked: 0 };
window.Notification = class {
  constructor(title, options) { window.cccNotes.shown.push({ title, body: options.body }); }
  close() {}
  static get permission() { return window.cccNotes.asked ? 'granted' : 'default'; }
  static requestPermission() { window.cccNotes.asked += 1; return Promise.resolve('granted'); }
};
"""


async def new_context(chromium: Browser, locale: str) -> BrowserContext:  # noqa: F811
    # bypass_csp: axe-core is injected as a script the pages' CSP would refuse.
    context = await chromium.new_context(ignore_https_errors=True, locale=locale, bypass_csp=True)
    context.set_default_timeout(20_000)
    return context


@pytest.fixture
async def english(chromium: Browser) -> AsyncIterator[BrowserContext]:  # noqa: F811
    context = await new_context(chromium, "en-US")
    yield context
    await context.close()


@pytest.fixture
async def chinese(chromium: Browser) -> AsyncIterator[BrowserContext]:  # noqa: F811
    context = await new_context(chromium, "zh-CN")
    yield context
    await context.close()


async def signed_in(page: Page, base: str) -> None:
    """CRM login, the panel opened, Alibaba sign-in in the popup, the agent ready."""
    await crm_login(page, base)
    await page.locator("#ccc-softphone-button").click()
    await sign_in_through_popup(page)
    await expect(softphone(page).locator(".wbsdk")).to_have_attribute("data-status", READY)


async def axe_violations(frame: Page | Frame, include: str | None = None) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations in `frame` (only `include` when given)."""
    if not AXE.exists():
        pytest.fail("axe-core is not installed: run make axe (scripts/install-axe.sh)")
    await frame.evaluate(AXE.read_text(encoding="utf-8"))
    context = json.dumps({"include": [include]} if include else None)
    results: dict[str, Any] = await frame.evaluate(
        f"async () => await axe.run({context} || document, {{resultTypes: ['violations']}})"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in results["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def assert_apart(one: Locator, other: Locator) -> None:
    """The two elements' boxes do not overlap (the toast never covers the panel)."""
    a, b = await one.bounding_box(), await other.bounding_box()
    assert a is not None and b is not None
    apart_x = a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
    apart_y = a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"]
    assert apart_x or apart_y, (a, b)


def softphone_frame(page: Page) -> Frame:
    """The softphone page's frame inside the widget's panel."""
    frames = [f for f in page.frames if f.url.endswith("/aliyun/softphone")]
    assert len(frames) == 1, [f.url for f in page.frames]
    return frames[0]


async def test_a_ringing_call_opens_the_panel_with_caller_customer_and_answer(
    make_stack: MakeStack, english: BrowserContext
) -> None:
    """The panel opens by itself on a call; it names the caller, then the customer from the
    popped page; Answer is there; the button says ringing, then talking; Esc closes."""
    stack = await make_stack(emulator_tls=True, softphone=SDK)
    base = str(stack.url)
    page = await english.new_page()
    other = await english.new_page()
    async with screenshot_on_failure(page, "agent_ux_ringing"):
        await signed_in(page, base)
        button = page.locator("#ccc-softphone-button")
        await expect(button).to_contain_text("Ready")
        await expect(page.locator("#ccc-softphone")).to_have_class(_has("ccc-state-ready"))
        await softphone(page).locator("#ccc-state").click()  # the keys go to the softphone
        await page.keyboard.press("Escape")
        await expect(page.locator("#ccc-softphone-panel")).to_be_hidden()
        await other.goto(base + "/customers")  # another tab of the CRM
        await expect(other.locator("#ccc-softphone-button")).to_contain_text("another tab")

        incoming = await push_incoming(stack, AGENT1[0], "135012345679")
        await expect(page.locator("#ccc-softphone-panel")).to_be_visible()
        await expect(button).to_contain_text("Ringing")
        await expect(button).not_to_contain_text("in a call")
        await expect(softphone(page).locator("#ccc-ringing-number")).to_have_text("135012345679")
        await expect(softphone(page).locator("#ccc-answer")).to_be_visible()
        await expect(crm(page).locator("main h1")).to_have_text("Miss Lu")
        await expect(softphone(page).locator("#ccc-ringing-customer")).to_have_text("Miss Lu")
        await expect(button).to_contain_text("Miss Lu")
        await expect(page.locator("#ccc-softphone-live")).to_contain_text("Ringing")
        await expect(other.locator("#ccc-softphone-button")).to_contain_text("Ringing")

        await softphone(page).locator("#ccc-answer").click()
        await wait_for_state(stack, incoming["id"], "talking")
        await expect(button).to_contain_text("Talking")
        await expect(softphone(page).locator("#ccc-ringing")).to_be_hidden()
        await expect(other.locator("#ccc-softphone-button")).to_contain_text("Talking")
        await softphone(page).locator(".wbsdk-hangup").click()
        await wait_for_state(stack, incoming["id"], "ended")


def _has(name: str) -> re.Pattern[str]:
    """Matches a class attribute holding `name`."""
    return re.compile(rf"(^|\s){re.escape(name)}(\s|$)")


async def test_a_background_tab_rings_with_a_desktop_notification(
    make_stack: MakeStack, english: BrowserContext
) -> None:
    """Permission is asked once (on a click of the button); a call in a hidden tab shows a
    notification naming the caller; softphone.notifications false shows none."""
    for enabled in (True, False):
        stack = await make_stack(emulator_tls=True, softphone={**SDK, "notifications": enabled})
        base = str(stack.url)
        page = await english.new_page()
        await page.add_init_script(FAKE_NOTIFICATIONS)
        async with screenshot_on_failure(page, f"agent_ux_notification_{enabled}"):
            await signed_in(page, base)
            for _ in range(2):  # closes and opens: the permission is asked at most once
                await page.locator("#ccc-softphone-button").click()
            notes = await page.evaluate("window.cccNotes")
            assert notes["asked"] == (1 if enabled else 0)
            await page.evaluate("Object.defineProperty(document, 'hidden', {get: () => true})")
            incoming = await push_incoming(stack, AGENT1[0], "13912345601")
            await expect(page.locator("#ccc-softphone-button")).to_contain_text("Ringing")
            notes = await page.evaluate("window.cccNotes")
            if enabled:
                assert notes["shown"] and "13912345601" in notes["shown"][-1]["body"]
            else:
                assert notes["shown"] == []
            await softphone(page).locator(".wbsdk-hangup").click()
            await wait_for_state(stack, incoming["id"], "ended")
        await page.close()


async def test_chinese_browser_gets_chinese_and_calls_with_enter(
    make_stack: MakeStack, chinese: BrowserContext
) -> None:
    """zh-CN: CRM, widget and softphone speak Chinese; click-to-call, then Enter calls."""
    stack = await make_stack(emulator_tls=True, softphone=SDK)
    base = str(stack.url)
    page = await chinese.new_page()
    async with screenshot_on_failure(page, "agent_ux_chinese"):
        await crm_login(page, base)
        await expect(page.locator("main h1")).to_contain_text("欢迎")
        button = page.locator("#ccc-softphone-button")
        await expect(button).to_contain_text("软电话")
        await button.focus()
        await page.keyboard.press("Enter")
        await expect(softphone(page).locator("#ccc-state")).to_have_text("未登录")
        await expect(softphone(page).locator("#ccc-signin")).to_have_text("登录")
        assert await softphone(page).locator("html").get_attribute("lang") == "zh-CN"
        await sign_in_through_popup(page)
        await expect(softphone(page).locator("#ccc-state")).to_have_text("空闲")
        await expect(button).to_contain_text("空闲")
        await page.locator("nav a[href='/customers']").click()  # into the content frame
        await crm(page).locator("a[href^='tel:']", has_text="13912345602").click()
        await expect(softphone(page).locator("#ccc-confirm-call")).to_have_text("拨打")
        await expect(softphone(page).locator("#ccc-confirm-call")).to_be_focused()
        await page.keyboard.press("Enter")
        outbound = await wait_for_call(stack, "outbound", "13912345602")
        await expect(button).to_contain_text("13912345602")
        toast = page.locator("#ccc-softphone-toast")
        await expect(toast).to_contain_text("正在呼叫 13912345602")
        await assert_apart(toast, page.locator("#ccc-softphone-frame"))
        await softphone(page).locator(".wbsdk-hangup").click()
        await wait_for_state(stack, outbound["id"], "ended")


@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
async def test_axe_finds_no_serious_violation_in_widget_and_softphone(
    make_stack: MakeStack,
    chromium: Browser,  # noqa: F811 (the fixture)
    locale: str,
) -> None:
    """axe-core on the widget (panel open) and the softphone page, signed out and ready."""
    stack = await make_stack(emulator_tls=True, softphone=SDK)
    base = str(stack.url)
    context = await new_context(chromium, locale)
    page = await context.new_page()
    try:
        async with screenshot_on_failure(page, f"agent_ux_axe_{locale}"):
            await crm_login(page, base)
            await page.locator("#ccc-softphone-button").click()
            await expect(softphone(page).locator("#ccc-signin")).to_be_visible()
            assert await axe_violations(page, "#ccc-softphone") == []
            assert await axe_violations(softphone_frame(page)) == []
            await sign_in_through_popup(page)
            await expect(softphone(page).locator(".wbsdk")).to_have_attribute("data-status", READY)
            assert await axe_violations(page, "#ccc-softphone") == []
            assert await axe_violations(softphone_frame(page)) == []
    finally:
        await context.close()
