"""The README's pictures (docs/img/*.png): the agent's main states in both languages, taken
from the running product by the browser suite's own stack, so they stay true.

Not a test of behaviour: it runs only when asked, `python scripts/screenshots.py` (which
sets CCC_SCREENSHOTS=1), and writes the images for a commit.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, expect
from stack import AGENT1
from test_browser_agent_ux import new_context
from test_browser_e2e import (
    SDK,
    MakeStack,
    chromium,  # noqa: F401 (a fixture)
    crm,
    crm_login,
    push_incoming,
    sign_in_through_popup,
    softphone,
    wait_for_state,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        os.environ.get("CCC_SCREENSHOTS") != "1", reason="run by scripts/screenshots.py"
    ),
]

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "img"
# (locale, file suffix, the caller whose customer page pops, the customer's name)
LANGUAGES = [
    ("en-US", "en", "135012345679", "Miss Lu"),
    ("zh-CN", "zh-CN", "13912345602", "陆晓雯"),
]


async def shot(page: Page, name: str) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(IMAGES / f"{name}.png"), animations="disabled")


@pytest.mark.parametrize(("locale", "suffix", "caller", "customer"), LANGUAGES)
async def test_screenshots(
    make_stack: MakeStack,
    chromium: Browser,  # noqa: F811
    locale: str,
    suffix: str,
    caller: str,
    customer: str,
) -> None:
    """Ready, ringing with the screen pop, and in a call: docs/img/<state>-<language>.png."""
    stack = await make_stack(emulator_tls=True, softphone=SDK)
    base = str(stack.url)
    context = await new_context(chromium, locale)
    page = await context.new_page()
    await page.set_viewport_size({"width": 1100, "height": 720})
    try:
        await crm_login(page, base)
        await page.locator("#ccc-softphone-button").click()
        await sign_in_through_popup(page)
        ready = re.compile(r"\bccc-state-ready\b")
        await expect(page.locator("#ccc-softphone")).to_have_class(ready)
        await page.locator("nav a[href='/customers']").click()  # shown in the content frame
        await expect(crm(page).locator("table.customers")).to_be_visible()
        await expect(page.locator("#ccc-softphone-panel")).to_be_visible()
        await shot(page, f"ready-{suffix}")

        incoming = await push_incoming(stack, AGENT1[0], caller)
        await expect(crm(page).locator("main h1")).to_have_text(customer)
        await expect(softphone(page).locator("#ccc-ringing-customer")).to_have_text(customer)
        await shot(page, f"ringing-{suffix}")

        await softphone(page).locator("#ccc-answer").click()
        await wait_for_state(stack, incoming["id"], "talking")
        talking = re.compile(r"\bccc-state-talking\b")
        await expect(page.locator("#ccc-softphone")).to_have_class(talking)
        await shot(page, f"talking-{suffix}")
        await softphone(page).locator(".wbsdk-hangup").click()
        await wait_for_state(stack, incoming["id"], "ended")
    finally:
        await context.close()
