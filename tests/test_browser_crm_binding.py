"""In Chromium: with `session.crm_binding: cookie` a CRM user switch stops the softphone."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect
from stack import AGENT1
from test_browser_e2e import (
    SDK,
    MakeStack,
    crm,
    screenshot_on_failure,
    sign_in_softphone,
    softphone,
)

# The Chromium fixtures, re-exported so pytest finds them in this module.
from test_browser_e2e import chromium as chromium
from test_browser_e2e import page as page
from test_browser_security import _until_no_softphone

pytestmark = pytest.mark.browser


async def test_crm_user_switch_stops_the_softphone_with_cookie_binding(
    make_stack: MakeStack, page: Page
) -> None:
    """No whoami: edward logs out and sissi logs in (a new CRM session cookie), and agent1's
    softphone stops and leaves the line, as with a whoami mismatch."""
    stack = await make_stack(
        emulator_tls=True,
        softphone=SDK,
        upstream={"whoami_path": None},
        session={"crm_binding": "cookie", "crm_session_cookie": "crm_session"},
    )
    base = str(stack.url)
    async with screenshot_on_failure(page, "cookie_binding_switch"):
        await sign_in_softphone(page, base)
        await page.locator("form.logout button").click()
        await expect(crm(page).locator("#username")).to_be_visible()
        await crm(page).locator("#username").fill("sissi")
        await crm(page).locator("#password").fill("5678")
        await crm(page).locator("form[action='/login'] button[type=submit]").click()
        await expect(crm(page).locator(".account .user")).to_contain_text("Sissi")

        await expect(softphone(page).locator("#ccc-message")).to_contain_text("stopped")
        await expect(softphone(page).locator("#ccc-workbench > *")).to_have_count(0)
        await _until_no_softphone(stack, AGENT1[0])
        session = await (await page.request.get(base + "/aliyun/session")).json()
        assert session["signedIn"] is False and session["crmUser"] is None
