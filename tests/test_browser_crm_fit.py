"""Issue 17 in headless Chromium, the browser side of real CRMs: the sign-in popup reports back
under a strict Cross-Origin-Opener-Policy, click-to-call where CRMs put numbers (selectors,
phone inputs, numbers detected in text, also rows a single-page CRM adds later), the screen
pop's normalised caller, no softphone in the CRM's own popups, and the panel minimised per tab.

The CRM here is a small aiohttp app sending `Cross-Origin-Opener-Policy: same-origin` on every
page, as some CRMs do."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Page, Route, expect
from stack import AGENT1, Stack
from test_browser_e2e import (
    READY,
    SDK,
    AiohttpServer,
    MakeStack,
    crm,
    push_incoming,
    screenshot_on_failure,
    sign_in_through_popup,
    softphone,
)

# The Chromium fixtures, re-exported so pytest finds them in this module.
from test_browser_e2e import chromium as chromium
from test_browser_e2e import page as page
from yarl import URL

from ccc_gateway.config.model import ClickToCallConfig

pytestmark = pytest.mark.browser

COOP = "cross-origin-opener-policy"
PAGE = """<!doctype html><html><head><title>{name}</title></head><body><main><h1>{name}</h1>
<table id="customers"><tbody>
<tr><td>Mr Lu</td><td class="phone">135 0123 4567</td><td>Call him at 010-12345678 today</td></tr>
</tbody></table>
<p>Order 2024-01-15, id 123456789012345</p>
<p><a href="/page/two">Page two</a> <a href="/page/x">13800138000</a>
<span class="crm-phone">0755 8888 6666</span></p>
<p><input id="tel" type="tel" value="+86 138 0013 8000">
<input id="q" name="q" value="13900139000"></p>
<div contenteditable="true">13700137000</div>
<script type="application/json">{{"phone": "13600136000"}}</script>
<button id="add" type="button">Add row</button>
<script src="/app.js"></script>
</main></body></html>"""
# The CRM's own script: a single-page CRM adding a row to its table later.
APP_JS = """document.getElementById('add').addEventListener('click', () => {
  const row = document.createElement('tr');
  row.innerHTML = '<td>Miss Lu</td><td class="phone">139 0000 1111</td><td>-</td>';
  document.querySelector('#customers tbody').append(row);
});"""
CLICKS = ClickToCallConfig(selectors=(".crm-phone",), detect=True)


@pytest.fixture
async def coop_crm(aiohttp_server: AiohttpServer) -> TestServer:
    """A CRM without login whose pages all send COOP same-origin."""

    async def page_handler(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        return web.Response(
            text=PAGE.format(name=name), content_type="text/html", headers={COOP: "same-origin"}
        )

    async def app_js(request: web.Request) -> web.Response:
        return web.Response(text=APP_JS, content_type="text/javascript")

    app = web.Application()
    app.router.add_get("/page/{name}", page_handler)
    app.router.add_get("/customer/{name}", page_handler)
    app.router.add_get("/app.js", app_js)
    return await aiohttp_server(app)


async def _fronted(make_stack: MakeStack, crm_server: TestServer, **softphone: Any) -> Stack:
    upstream = {"url": URL(f"http://127.0.0.1:{crm_server.port}"), "whoami_path": None}
    return await make_stack(emulator_tls=True, softphone={**SDK, **softphone}, upstream=upstream)


async def _sign_in(page: Page, base: str) -> None:
    response = await page.goto(base + "/page/one")
    assert response is not None
    assert response.headers[COOP] == "same-origin-allow-popups"  # relaxed where the widget is
    await page.locator("#ccc-softphone-button").click()
    await softphone(page).locator("#ccc-signin").wait_for()
    # Set before the sign-in: still there after it, so the softphone page never reloaded.
    await (
        page.frame_locator("#ccc-softphone-frame")
        .locator("body")
        .evaluate("() => { window.cccTestMarker = 'kept'; }")
    )
    await sign_in_through_popup(page)
    await expect(softphone(page).locator(".wbsdk")).to_have_attribute("data-status", READY)
    marker = await softphone(page).locator("body").evaluate("() => window.cccTestMarker")
    assert marker == "kept"


async def _number_point(page: Page, text: str) -> tuple[float, float]:
    """The middle of `text` where it stands in a text node of the page."""
    point: list[float] = await page.evaluate(
        """(text) => {
          const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
          for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            const at = node.data.indexOf(text);
            if (at < 0) continue;
            const range = new Range();
            range.setStart(node, at);
            range.setEnd(node, at + text.length);
            const box = range.getBoundingClientRect();
            return [box.left + box.width / 2, box.top + box.height / 2];
          }
          throw new Error('not on the page: ' + text);
        }""",
        text,
    )
    return point[0], point[1]


async def _confirm_shows(page: Page, number: str) -> None:
    """The softphone asks before dialing `number`; Esc cancels it (nothing is dialed)."""
    await expect(softphone(page).locator("#ccc-confirm")).to_be_visible()
    await expect(softphone(page).locator("#ccc-confirm-number")).to_have_text(number)
    await page.keyboard.press("Escape")
    await expect(softphone(page).locator("#ccc-confirm")).to_be_hidden()


async def _until_highlighted(page: Page, count: int) -> None:
    """Wait (bounded) until the detector marks `count` numbers on the page."""
    await page.wait_for_function(
        "(n) => (CSS.highlights.get('ccc-number')?.size ?? -1) === n", arg=count
    )


async def test_sign_in_popup_reports_back_under_coop_same_origin(
    make_stack: MakeStack, coop_crm: TestServer, page: Page
) -> None:
    """With the CRM's COOP same-origin the popup sign-in ends signed in, without a reload."""
    stack = await _fronted(make_stack, coop_crm)
    async with screenshot_on_failure(page, "coop_sign_in"):
        await _sign_in(page, str(stack.url))
        await expect(softphone(page).locator("#ccc-agent")).to_contain_text(AGENT1[0])


async def test_sign_in_reports_back_when_the_sign_in_page_cuts_the_opener(
    make_stack: MakeStack, coop_crm: TestServer, page: Page
) -> None:
    """Alibaba's page sending COOP same-origin cuts the popup off: BroadcastChannel still tells."""
    stack = await _fronted(make_stack, coop_crm)

    async def strict_coop(route: Route) -> None:
        response = await route.fetch()
        await route.fulfill(response=response, headers={**response.headers, COOP: "same-origin"})

    await page.context.route(re.compile(r".*/oauth2/v1/auth.*"), strict_coop)
    async with screenshot_on_failure(page, "coop_cut_opener"):
        await page.goto(str(stack.url) + "/page/one")
        await page.locator("#ccc-softphone-button").click()
        async with page.expect_popup() as opened:
            await softphone(page).locator("#ccc-signin").click()
        popup = await opened.value
        await popup.fill("#username", AGENT1[0])
        await popup.fill("#password", AGENT1[1])
        await popup.click("button[value=signin]")
        await expect(softphone(page).locator(".wbsdk")).to_have_attribute("data-status", READY)
        await expect(softphone(page).locator("#ccc-agent")).to_contain_text(AGENT1[0])
        assert await popup.evaluate("() => window.opener") is None  # it really was cut off


async def test_numbers_in_text_selectors_and_phone_inputs_dial_after_confirmation(
    make_stack: MakeStack, coop_crm: TestServer, page: Page
) -> None:
    """Detected numbers, selector elements and phone inputs reach the softphone's confirmation;
    links, inputs, editable text and scripts are left alone, and added rows become callable."""
    stack = await _fronted(make_stack, coop_crm, click_to_call=CLICKS)
    async with screenshot_on_failure(page, "click_to_call_numbers"):
        await _sign_in(page, str(stack.url))
        # 135 0123 4567, 010-12345678, 0755 8888 6666: not the link, inputs, editable, script.
        await _until_highlighted(page, 3)
        cell = page.locator("td.phone").first
        assert await cell.evaluate("(td) => td.childNodes.length") == 1  # the DOM is untouched

        await page.mouse.click(*await _number_point(page, "010-12345678"))
        await _confirm_shows(page, "01012345678")
        await page.locator(".crm-phone").click()
        await _confirm_shows(page, "075588886666")
        await page.mouse.click(*await _number_point(page, "Mr Lu"))  # not a number: nothing
        await expect(softphone(page).locator("#ccc-confirm")).to_be_hidden()

        await page.locator("#q").focus()  # not a phone input: no button
        await expect(page.locator("#ccc-numbers")).to_be_hidden()
        await page.locator("#tel").focus()
        await page.locator("#ccc-numbers button").click()
        await _confirm_shows(page, "+8613800138000")

        await page.locator("#add").click()  # the CRM's script adds a row
        await _until_highlighted(page, 4)
        await page.mouse.click(*await _number_point(page, "139 0000 1111"))
        await _confirm_shows(page, "13900001111")
        assert (await page.evaluate("() => window.cccNumbers.stats.batches")) >= 1


async def test_screen_pop_finds_the_customer_by_national_number(
    make_stack: MakeStack, coop_crm: TestServer, page: Page
) -> None:
    """{caller_national} and {caller_e164} in the screen-pop URL, from a +86 caller."""
    pop = "/customer/{caller_national}?e164={caller_e164}&digits={caller_digits}"
    stack = await _fronted(make_stack, coop_crm, screen_pop_url=pop)
    base = str(stack.url)
    async with screenshot_on_failure(page, "screen_pop_national"):
        await _sign_in(page, base)
        await push_incoming(stack, AGENT1[0], "+8613501234567")
        await expect(crm(page).locator("main h1")).to_have_text("13501234567")
        await expect(page).to_have_url(
            base + "/customer/13501234567?e164=%2B8613501234567&digits=8613501234567"
        )


async def test_crm_popup_window_never_holds_the_softphone(
    make_stack: MakeStack, coop_crm: TestServer, page: Page
) -> None:
    """A lookup window the CRM opens shows no softphone and sends its calls to the agent's tab."""
    stack = await _fronted(make_stack, coop_crm, click_to_call=CLICKS)
    async with screenshot_on_failure(page, "crm_popup"):
        await _sign_in(page, str(stack.url))
        async with page.expect_popup() as opened:
            await page.evaluate("() => window.open('/page/lookup', 'lookup', 'popup,width=500')")
        lookup = await opened.value
        await expect(lookup.locator("main h1")).to_have_text("lookup")
        assert await lookup.evaluate("() => Boolean(window.cccSoftphoneWidget)")
        await expect(lookup.locator("#ccc-softphone")).to_have_count(0)
        await expect(lookup.locator("#ccc-softphone-frame")).to_have_count(0)

        await lookup.locator(".crm-phone").click()
        await expect(softphone(page).locator("#ccc-confirm-number")).to_have_text("075588886666")
        await expect(page.locator("#ccc-softphone-frame")).to_have_count(1)  # still this tab's
        await expect(softphone(page).locator(".wbsdk")).to_have_attribute("data-status", READY)


async def test_minimised_panel_stays_minimised_in_its_tab(
    make_stack: MakeStack, coop_crm: TestServer, page: Page
) -> None:
    """The button minimises the docked panel; a reload keeps it so, another tab starts closed."""
    stack = await _fronted(make_stack, coop_crm)
    base = str(stack.url)
    async with screenshot_on_failure(page, "minimised_panel"):
        await page.goto(base + "/page/one")
        panel = page.locator("#ccc-softphone-panel")
        await page.locator("#ccc-softphone-button").click()
        await expect(panel).to_be_visible()
        await page.reload()
        await expect(panel).to_be_visible()  # open stays open in this tab
        await page.locator("#ccc-softphone-button").click()
        await expect(panel).to_be_hidden()
        await expect(page.locator("#ccc-softphone-button")).to_be_visible()
        await page.reload()
        await expect(page.locator("#ccc-softphone-button")).to_be_visible()
        await expect(panel).to_be_hidden()  # minimised stays minimised

        other = await page.context.new_page()
        await other.goto(base + "/page/two")
        await expect(other.locator("#ccc-softphone-button")).to_be_visible()
        await expect(other.locator("#ccc-softphone-panel")).to_be_hidden()
