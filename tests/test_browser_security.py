"""Issue 14's softphone holes, in headless Chromium: a click on CRM content dials only after the
agent confirms, the softphone stops when its CRM user or sign-in goes, and a sign-in started
before the CRM login ends signed in without the popup ever hosting the widget."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from playwright.async_api import Page, expect
from stack import AGENT1, Stack
from test_browser_e2e import (
    READY,
    SDK,
    WAIT_S,
    MakeStack,
    crm,
    crm_login,
    emulator_calls,
    screenshot_on_failure,
    sign_in_softphone,
    softphone,
    wait_for_call,
)

# The Chromium fixtures, re-exported so pytest finds them in this module.
from test_browser_e2e import chromium as chromium
from test_browser_e2e import page as page

pytestmark = pytest.mark.browser

NUMBER = "135012345678"
# What a CRM's stored HTML can carry through a common sanitizer: an invisible element over the
# whole page (under the widget) whose only feature is the click-to-call attribute.
TRANSPARENT_CALL = f"""() => {{
  const trap = document.createElement('div');
  trap.id = 'trap';
  trap.setAttribute('data-ccc-call', '{NUMBER}');
  trap.style.cssText = 'position:fixed;inset:0;opacity:0;z-index:2147482000';
  document.body.append(trap);
}}"""


async def _click_trap(page: Page) -> None:
    await page.evaluate(TRANSPARENT_CALL)
    await page.mouse.click(200, 200)  # anywhere on the CRM page: it is all the trap


async def test_transparent_call_element_needs_the_agents_confirmation(
    make_stack: MakeStack, page: Page
) -> None:
    """A click on an invisible [data-ccc-call] dials nothing until the agent confirms it."""
    stack = await make_stack(emulator_tls=True, softphone=SDK)
    base = str(stack.url)
    async with screenshot_on_failure(page, "transparent_call_confirm"):
        await sign_in_softphone(page, base)
        await page.locator("#ccc-softphone-button").click()  # the panel closed, as usual
        await expect(page.locator("#ccc-softphone-panel")).to_be_hidden()
        await _click_trap(page)
        confirm = softphone(page).locator("#ccc-confirm")
        await expect(page.locator("#ccc-softphone-panel")).to_be_visible()
        await expect(confirm).to_be_visible()
        await expect(softphone(page).locator("#ccc-confirm-number")).to_have_text(NUMBER)
        assert await emulator_calls(stack) == []

        await page.keyboard.press("Escape")  # the confirmation has the keyboard focus
        await expect(confirm).to_be_hidden()
        await expect(page.locator("#ccc-softphone-toast")).to_contain_text("cancelled")
        assert await emulator_calls(stack) == []

        await page.mouse.click(200, 200)
        await expect(confirm).to_be_visible()
        await page.keyboard.press("Enter")
        outbound = await wait_for_call(stack, "outbound", NUMBER)
        assert outbound["agent"] == AGENT1[0]
        await expect(confirm).to_be_hidden()
        assert len(await emulator_calls(stack)) == 1


async def test_typing_while_a_call_waits_for_confirmation_cancels_it(
    make_stack: MakeStack, page: Page
) -> None:
    """Keys other than Enter cancel a pending confirmation: typing then Enter never dials."""
    stack = await make_stack(emulator_tls=True, softphone=SDK)
    base = str(stack.url)
    async with screenshot_on_failure(page, "typing_cancels_confirm"):
        await sign_in_softphone(page, base)
        await _click_trap(page)
        confirm = softphone(page).locator("#ccc-confirm")
        await expect(confirm).to_be_visible()
        await page.keyboard.type("note")  # the agent thought they clicked into a text field
        await expect(confirm).to_be_hidden()
        await page.keyboard.press("Enter")
        await expect(softphone(page).locator("#ccc-message")).to_contain_text("cancelled")
        assert await emulator_calls(stack) == []


async def test_confirm_dial_false_dials_on_the_click(make_stack: MakeStack, page: Page) -> None:
    """With softphone.confirm_dial false a click-to-call element dials at once (documented risk)."""
    stack = await make_stack(emulator_tls=True, softphone={**SDK, "confirm_dial": False})
    base = str(stack.url)
    async with screenshot_on_failure(page, "confirm_dial_false"):
        await sign_in_softphone(page, base)
        await _click_trap(page)
        await wait_for_call(stack, "outbound", NUMBER)
        await expect(softphone(page).locator("#ccc-confirm")).to_be_hidden()


async def _push_status(stack: Stack, agent: str, caller: str) -> int:
    async with stack.emulator_client() as client:
        async with client.post(
            stack.emulator_url / "_emulator/calls", json={"agent": agent, "caller": caller}
        ) as response:
            return response.status


async def _until_no_softphone(stack: Stack, agent: str) -> None:
    """Bounded: the emulator answers 409 (no softphone connected for `agent`)."""
    deadline = time.monotonic() + WAIT_S
    statuses: list[int] = []
    while time.monotonic() < deadline:
        statuses.append(await _push_status(stack, agent, "135012345679"))
        if statuses[-1] == 409:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"{agent}'s softphone is still connected: {statuses}")


async def test_crm_user_switch_in_the_tab_tears_the_softphone_down(
    make_stack: MakeStack, page: Page
) -> None:
    """edward logs out, sissi logs in in the same tab: agent1's softphone stops, rings no more."""
    stack = await make_stack(emulator_tls=True, softphone=SDK)
    base = str(stack.url)
    async with screenshot_on_failure(page, "crm_user_switch"):
        await sign_in_softphone(page, base)
        # The CRM's own logout form; the shell keeps the softphone's page and frames /login.
        await page.locator("form.logout button").click()
        await expect(crm(page).locator("#username")).to_be_visible()
        await crm(page).locator("#username").fill("sissi")
        await crm(page).locator("#password").fill("5678")
        await crm(page).locator("form[action='/login'] button[type=submit]").click()
        await expect(crm(page).locator(".account .user")).to_contain_text("Sissi")

        message = softphone(page).locator("#ccc-message")
        await expect(message).to_contain_text("CRM")
        await expect(softphone(page).locator("#ccc-state")).to_have_text("Signed out")
        await expect(softphone(page).locator("#ccc-workbench > *")).to_have_count(0)
        await _until_no_softphone(stack, AGENT1[0])
        await expect(softphone(page).locator(".wbsdk-answer")).to_have_count(0)
        session = await (await page.request.get(base + "/aliyun/session")).json()
        assert session["signedIn"] is False and session["crmUser"] == "sissi"


async def test_sign_out_in_another_tab_tears_the_softphone_down(
    make_stack: MakeStack, page: Page
) -> None:
    """A sign-out made elsewhere (no page load in this tab) stops the softphone: periodic check."""
    stack = await make_stack(emulator_tls=True, softphone=SDK)
    base = str(stack.url)
    async with screenshot_on_failure(page, "sign_out_elsewhere"):
        await sign_in_softphone(page, base)
        # The same browser profile, outside any CRM page (no widget, no page load here).
        revoked = await page.request.post(
            base + "/aliyun/revoke", headers={"Origin": base, "Sec-Fetch-Site": "same-origin"}
        )
        assert revoked.ok
        await expect(softphone(page).locator("#ccc-message")).to_contain_text("sign-in has ended")
        await expect(softphone(page).locator("#ccc-workbench > *")).to_have_count(0)
        await expect(softphone(page).locator("#ccc-signin")).to_be_visible()
        await _until_no_softphone(stack, AGENT1[0])


async def test_sign_in_before_the_crm_login_ends_signed_in(
    make_stack: MakeStack, page: Page
) -> None:
    """Sign in while logged out of the CRM: CRM login then Alibaba in the popup, no widget there."""
    stack = await make_stack(emulator_tls=True, softphone=SDK)
    base = str(stack.url)
    async with screenshot_on_failure(page, "sign_in_before_crm_login"):
        await crm_login(page, base)
        await page.locator("#ccc-softphone-button").click()
        await expect(softphone(page).locator("#ccc-signin")).to_be_visible()
        # The CRM session ends (expiry, logout in another tab) before the Alibaba sign-in.
        cookies = await page.context.cookies()
        await page.context.clear_cookies()
        await page.context.add_cookies([c for c in cookies if c["name"] != "crm_session"])
        # The sample CRM's policy: a redirect off-site after its login form is refused.
        response = await page.request.get(base + "/login")
        assert "form-action 'self'" in response.headers["content-security-policy"]
        async with page.expect_popup() as opened:
            await softphone(page).locator("#ccc-signin").click()
        popup = await opened.value
        softphone_frames: list[str] = []
        popup.on("frameattached", lambda frame: softphone_frames.append(frame.name or "(unnamed)"))
        await expect(popup.locator("form[action='/login'] #username")).to_be_visible()
        # The CRM login page (upstream.login_path) never gets the widget.
        assert not await popup.evaluate("Boolean(window.cccSoftphoneWidget)")
        await expect(popup.locator("#ccc-softphone")).to_have_count(0)
        await popup.fill("#username", "edward")
        await popup.fill("#password", "1234")
        await popup.click("form[action='/login'] button[type=submit]")
        await expect(popup.locator("button[value=signin]")).to_be_visible()  # Alibaba's form
        await popup.fill("#username", AGENT1[0])
        await popup.fill("#password", AGENT1[1])
        async with popup.expect_event("close"):
            await popup.click("button[value=signin]")

        await expect(softphone(page).locator("#ccc-agent")).to_contain_text(AGENT1[0])
        await expect(softphone(page).locator(".wbsdk")).to_have_attribute("data-status", READY)
        await expect(page.locator("#ccc-softphone-frame")).to_have_count(1)  # never yielded
        assert softphone_frames == []
        session: dict[str, Any] = await (await page.request.get(base + "/aliyun/session")).json()
        assert session["signedIn"] is True and session["crmUser"] == "edward"
