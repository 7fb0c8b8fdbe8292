"""The whole product in headless Chromium: CRM login, widget, popup sign-in, click-to-call,
screen pop and sign-out, against the emulator's stand-in workbench SDK served over https.

Once the softphone is signed in, CRM pages open in the widget's content frame (`#ccc-content`,
"shell mode") so the page holding the softphone, and its call, never unloads."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, FrameLocator, Page, Route, async_playwright, expect
from stack import AGENT1, Stack
from yarl import URL

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
HAVE_CHROMIUM = CHROMIUM.exists()  # checked once, at import: CI installs it, dev boxes may not
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
WAIT_S = 15.0  # bound for polling the emulator; never an assertion about speed
READY = "3"  # the SDK's status codes: ready, ringing, inbound call
RINGING = "6"
INBOUND = "9"
SDK = {
    "sdk": "v1",
    "sdk_scripts": ("{emulator}/_emulator/sdk/workbenchSdk.js",),
    "sdk_styles": ("{emulator}/_emulator/sdk/workbenchSdk.css",),
}
# CCC 2.0: the emulator's instance and its stand-ins of the 3.x UI build and of the 2.x SDK.
# Their calls go over the emulator's websocket (loopback), which 2.0's CSP must then admit.
CCC2 = {"version": "2020-07-01", "instance_id": "ccc-demo"}
SDK3 = {
    "sdk": "v3",
    "sdk_scripts": ("{emulator}/_emulator/sdk/cccWorkbenchSdk.js",),
    "sdk_styles": ("{emulator}/_emulator/sdk/workbenchSdk.css",),
    "csp_sources": {"connect-src": ("wss://127.0.0.1:*",)},
}
SDK2 = {**SDK3, "sdk": "v2", "sdk_scripts": ("{emulator}/_emulator/sdk/workbenchSdk2.js",)}
# The screen-pop template in 2.0 uses the call's other details too (the sample CRM ignores them).
POP_2 = "/customer/phoneNumber/{caller}?to={callee}&type={callType}&job={jobId}"
GENERATIONS = {
    "classic": {"softphone": SDK},
    "ccc2": {"ccc": CCC2, "softphone": {**SDK3, "screen_pop_url": POP_2}},
}
MakeStack = Callable[..., Awaitable[Stack]]
AiohttpServer = Callable[..., Awaitable[TestServer]]

expect.set_options(timeout=15_000)  # a bound on waiting, not a speed requirement


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    if not HAVE_CHROMIUM:
        pytest.skip("/usr/bin/chromium is absent (make browser or apt-get install chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
async def page(chromium: Browser) -> AsyncIterator[Page]:
    context = await chromium.new_context(ignore_https_errors=True)
    context.set_default_timeout(20_000)
    page = await context.new_page()
    try:
        yield page
    finally:
        await context.close()


@asynccontextmanager
async def screenshot_on_failure(page: Page, name: str) -> AsyncIterator[None]:
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        raise


async def crm_login(page: Page, base: str) -> None:
    await page.goto(base + "/login")
    await page.fill("#username", "edward")
    await page.fill("#password", "1234")
    await page.click("form[action='/login'] button[type=submit]")
    # The greeting names the user in either language ("Welcome, Edward", "欢迎，Edward").
    await expect(page.locator("main h1")).to_contain_text("Edward")


def softphone(page: Page) -> FrameLocator:
    return page.frame_locator("#ccc-softphone-frame")


def crm(page: Page) -> FrameLocator:
    """The CRM page shown in the widget's content frame (shell mode)."""
    return page.frame_locator("#ccc-content")


async def sign_in_through_popup(page: Page) -> None:
    async with page.expect_popup() as opened:
        await softphone(page).locator("#ccc-signin").click()
    popup = await opened.value
    await popup.fill("#username", AGENT1[0])
    await popup.fill("#password", AGENT1[1])
    async with popup.expect_event("close"):
        await popup.click("button[value=signin]")


async def confirm_call(page: Page) -> None:
    """Press Call where the softphone asks (softphone.confirm_dial, on by default)."""
    await softphone(page).locator("#ccc-confirm-call").click()


async def emulator_calls(stack: Stack) -> list[dict[str, Any]]:
    async with stack.emulator_client() as client:
        async with client.get(stack.emulator_url / "_emulator/calls") as response:
            calls: list[dict[str, Any]] = (await response.json())["calls"]
    return calls


async def wait_for_call(stack: Stack, direction: str, number: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for call in await emulator_calls(stack):
            if call["direction"] == direction and call["number"] == number:
                return call
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {direction} call to {number}: {await emulator_calls(stack)}")


async def wait_for_state(stack: Stack, call_id: str, state: str) -> dict[str, Any]:
    """Poll /_emulator/calls until the call is in `state` (bounded; fails on another end)."""
    deadline = time.monotonic() + WAIT_S
    while True:
        call = next(c for c in await emulator_calls(stack) if c["id"] == call_id)
        if call["state"] == state:
            return call
        assert call["state"] != "ended", f"the call ended while waiting for {state}: {call}"
        assert time.monotonic() < deadline, f"call never {state}: {call}"
        await asyncio.sleep(0.2)


async def call_state(stack: Stack, call_id: str) -> str:
    state: str = next(c for c in await emulator_calls(stack) if c["id"] == call_id)["state"]
    return state


async def sign_in_softphone(page: Page, base: str) -> None:
    """CRM login, open the docked softphone, sign in to Alibaba in the popup, wait for ready."""
    await crm_login(page, base)
    await page.locator("#ccc-softphone-button").click()
    await sign_in_through_popup(page)
    await expect(softphone(page).locator(".wbsdk")).to_have_attribute("data-status", READY)


async def push_incoming(stack: Stack, agent: str, caller: str) -> dict[str, Any]:
    """POST /_emulator/calls, retried while the softphone is not connected yet (409)."""
    deadline = time.monotonic() + WAIT_S
    async with stack.emulator_client() as client:
        while True:
            async with client.post(
                stack.emulator_url / "_emulator/calls", json={"agent": agent, "caller": caller}
            ) as response:
                if response.status == 201:
                    call: dict[str, Any] = await response.json()
                    return call
                assert response.status == 409, await response.text()
            assert time.monotonic() < deadline, "the softphone never connected"
            await asyncio.sleep(0.2)


@pytest.mark.parametrize("generation", GENERATIONS)
async def test_click_to_call_screen_pop_and_sign_out(
    make_stack: MakeStack, page: Page, generation: str
) -> None:
    """Sign in via popup, dial Mr Lu from /customers, pop Miss Lu's page, answer, hang up,
    sign out: with the classic 1.x SDK and with CCC 2.0's 3.x UI build."""
    stack = await make_stack(emulator_tls=True, **GENERATIONS[generation])
    base = str(stack.url)
    async with screenshot_on_failure(page, f"click_to_call_screen_pop_{generation}"):
        await crm_login(page, base)
        button = page.locator("#ccc-softphone-button")
        await expect(button).to_be_visible()
        await button.click()
        frame = page.locator("#ccc-softphone-frame")
        await expect(frame).to_be_visible()
        await expect(frame).to_have_attribute("allow", "microphone")
        await expect(softphone(page).locator("#ccc-state")).to_have_text("Signed out")
        await sign_in_through_popup(page)
        await expect(softphone(page).locator("#ccc-agent")).to_contain_text(AGENT1[0])
        await expect(softphone(page).locator(".wbsdk")).to_have_attribute("data-status", READY)

        await page.goto(base + "/customers")
        await expect(softphone(page).locator(".wbsdk")).to_have_attribute("data-status", READY)
        await page.locator("a[href^='tel:']", has_text="135012345678").click()
        await confirm_call(page)
        await expect(page.locator("#ccc-softphone-toast")).to_contain_text("Calling 135012345678")
        outbound = await wait_for_call(stack, "outbound", "135012345678")
        assert outbound["agent"] == AGENT1[0]
        assert page.url == base + "/customers"  # the tel: link itself was not followed
        await softphone(page).locator(".wbsdk-hangup").click()
        await wait_for_state(stack, outbound["id"], "ended")
        await expect(softphone(page).locator(".wbsdk")).to_have_attribute("data-status", READY)

        incoming = await push_incoming(stack, AGENT1[0], "135012345679")
        pop = base + "/customer/phoneNumber/135012345679"
        if generation == "ccc2":  # {callee}, {callType} and {jobId} filled in too
            pop = re.compile(re.escape(pop) + r"\?to=[^&]*&type=Inbound&job=[^&]+$")
        await expect(page).to_have_url(pop)
        await expect(crm(page).locator("main h1")).to_have_text("Miss Lu")
        await expect(page).to_have_title("Miss Lu · Sample CRM")
        await expect(softphone(page).locator(".wbsdk")).to_have_attribute("data-status", RINGING)
        assert await call_state(stack, incoming["id"]) == "ringing"  # the pop did not drop it
        await softphone(page).locator(".wbsdk-answer").click()
        await wait_for_state(stack, incoming["id"], "talking")
        await expect(softphone(page).locator(".wbsdk")).to_have_attribute("data-status", INBOUND)
        await softphone(page).locator(".wbsdk-hangup").click()
        await wait_for_state(stack, incoming["id"], "ended")

        await expect(softphone(page).locator("#ccc-signout")).to_be_visible()
        await softphone(page).locator("#ccc-signout").click()
        await expect(softphone(page).locator("#ccc-signin")).to_be_visible()
        await expect(softphone(page).locator("#ccc-state")).to_have_text("Signed out")
        session = await (await page.request.get(base + "/aliyun/session")).json()
        assert session["signedIn"] is False


async def test_ccc2_with_the_2x_sdk_places_a_call(make_stack: MakeStack, page: Page) -> None:
    """softphone.sdk v2: the 2.x SDK is constructed, gets ready and dials a clicked number."""
    stack = await make_stack(emulator_tls=True, ccc=CCC2, softphone=SDK2)
    base = str(stack.url)
    async with screenshot_on_failure(page, "ccc2_sdk2_call"):
        await sign_in_softphone(page, base)
        await page.goto(base + "/customers")  # a new document: its SDK registers again
        await expect(softphone(page).locator(".wbsdk")).to_have_attribute("data-status", READY)
        await page.locator("a[href^='tel:']", has_text="135012345678").click()
        await confirm_call(page)
        outbound = await wait_for_call(stack, "outbound", "135012345678")
        assert outbound["agent"] == AGENT1[0]


async def test_signed_out_click_opens_sign_in(make_stack: MakeStack, page: Page) -> None:
    """A tel: click while signed out opens the panel on the Sign in button with a message."""
    stack = await make_stack(emulator_tls=True, softphone=SDK)
    base = str(stack.url)
    async with screenshot_on_failure(page, "signed_out_click"):
        await crm_login(page, base)
        await page.goto(base + "/customers")
        await expect(page.locator("#ccc-softphone-panel")).to_be_hidden()
        await page.locator("a[href^='tel:']", has_text="135012345678").click()
        await expect(page.locator("#ccc-softphone-panel")).to_be_visible()
        await expect(softphone(page).locator("#ccc-signin")).to_be_visible()
        await expect(softphone(page).locator("#ccc-message")).to_contain_text(
            "Sign in to Alibaba Cloud to call 135012345678"
        )
        await expect(page.locator("#ccc-softphone-toast")).to_contain_text("Sign in")
        assert page.url == base + "/customers"
        assert await emulator_calls(stack) == []


async def test_401_offers_re_sign_in_without_reloading(make_stack: MakeStack, page: Page) -> None:
    """An API 401 shows "Sign in again"; the popup sign-in restarts the SDK in place."""
    stack = await make_stack(emulator_tls=True, softphone=SDK)
    base = str(stack.url)
    unauthenticated = {
        "requestId": "test",
        "errorCode": "NotAuthenticated",
        "message": "Sign in to Alibaba Cloud.",
        "login": "/aliyun/auth",
    }

    async def answer_401(route: Route) -> None:
        await route.fulfill(status=401, json=unauthenticated)

    async with screenshot_on_failure(page, "re_sign_in"):
        await crm_login(page, base)
        await page.evaluate("window.cccMarker = 'the same CRM page'")
        # The gateway's answer when the Alibaba sign-in ended behind the softphone's back.
        await page.route("**/aliyun/ccc/api?action=RequestLoginInfo", answer_401)
        await page.locator("#ccc-softphone-button").click()
        await sign_in_through_popup(page)
        again = softphone(page).locator("#ccc-resignin")
        await expect(again).to_be_visible()
        await expect(softphone(page).locator("#ccc-message")).to_contain_text("sign in again")
        await page.unroute("**/aliyun/ccc/api?action=RequestLoginInfo", answer_401)

        async with page.expect_popup() as opened:
            await again.click()
        popup = await opened.value
        await popup.fill("#username", AGENT1[0])
        await popup.fill("#password", AGENT1[1])
        async with popup.expect_event("close"):
            await popup.click("button[value=signin]")
        await expect(softphone(page).locator(".wbsdk")).to_have_attribute("data-status", READY)
        await expect(again).to_be_hidden()
        assert await page.evaluate("window.cccMarker") == "the same CRM page"


async def test_second_tab_forwards_click_to_call(make_stack: MakeStack, page: Page) -> None:
    """A second tab shows "open in another tab" and its tel: click dials in the first tab."""
    stack = await make_stack(emulator_tls=True, softphone=SDK)
    base = str(stack.url)
    async with screenshot_on_failure(page, "second_tab"):
        await crm_login(page, base)
        await page.locator("#ccc-softphone-button").click()
        await sign_in_through_popup(page)
        await expect(softphone(page).locator(".wbsdk")).to_have_attribute("data-status", READY)

        other = await page.context.new_page()
        await other.goto(base + "/customers")
        await expect(other.locator("#ccc-softphone-button")).to_contain_text("another tab")
        await expect(other.locator("#ccc-softphone-frame")).to_have_count(0)
        await other.locator("a[href^='tel:']", has_text="135012345678").click()
        await expect(other.locator("#ccc-softphone-toast")).to_contain_text("other tab")
        await confirm_call(page)  # the softphone that dials asks, in the tab that holds it
        await wait_for_call(stack, "outbound", "135012345678")
        await expect(page.locator("#ccc-softphone-toast")).to_contain_text("Calling 135012345678")


async def test_unreachable_sdk_degrades_softphone_only(make_stack: MakeStack, page: Page) -> None:
    """With Alibaba's CDN unreachable the CRM works and the softphone says what is wrong."""
    closed = "https://127.0.0.1:9/workbenchSdk.js"  # discard port: nothing listens
    stack = await make_stack(softphone={"sdk_scripts": (closed,), "sdk_styles": ()})
    base = str(stack.url)
    async with screenshot_on_failure(page, "unreachable_sdk"):
        await crm_login(page, base)
        await page.goto(base + "/customers")
        await expect(page.locator("main h1")).to_have_text("Customers")
        await page.locator("#ccc-softphone-button").click()
        await sign_in_through_popup(page)
        await expect(softphone(page).locator("#ccc-message")).to_contain_text("could not be loaded")
        await expect(softphone(page).locator("#ccc-signout")).to_be_visible()


async def test_call_survives_screen_pop_and_crm_navigation(
    make_stack: MakeStack, page: Page
) -> None:
    """Screen pop, answer, browse the CRM, go Back: the call stays talking until hung up."""
    stack = await make_stack(emulator_tls=True, softphone=SDK)
    base = str(stack.url)
    async with screenshot_on_failure(page, "call_survives_navigation"):
        await sign_in_softphone(page, base)
        # A marker in the softphone's document: still there later means it never reloaded.
        softphone_frame = page.frame(url=lambda url: url.endswith("/aliyun/softphone"))
        assert softphone_frame is not None
        await softphone_frame.evaluate("window.cccTestMarker = 'same softphone document'")

        incoming = await push_incoming(stack, AGENT1[0], "135012345679")
        await expect(page).to_have_url(base + "/customer/phoneNumber/135012345679")
        await expect(crm(page).locator("main h1")).to_have_text("Miss Lu")
        await softphone(page).locator(".wbsdk-answer").click()
        await wait_for_state(stack, incoming["id"], "talking")
        await expect(softphone(page).locator(".wbsdk")).to_have_attribute("data-status", INBOUND)

        await crm(page).locator("nav a", has_text="Customers").click()
        await expect(page).to_have_url(base + "/customers")
        await expect(crm(page).locator("main h1")).to_have_text("Customers")
        await expect(page).to_have_title("Customers · Sample CRM")
        await crm(page).locator("a", has_text="Mr Lu").click()
        await expect(crm(page).locator("main h1")).to_have_text("Mr Lu")
        assert await call_state(stack, incoming["id"]) == "talking"
        await expect(softphone(page).locator(".wbsdk")).to_have_attribute("data-status", INBOUND)

        await page.go_back()  # the frame's own history: Back walks the CRM pages
        await expect(page).to_have_url(base + "/customers")
        await expect(crm(page).locator("main h1")).to_have_text("Customers")
        assert await call_state(stack, incoming["id"]) == "talking"
        assert await softphone_frame.evaluate("window.cccTestMarker") == "same softphone document"
        # One softphone only: the framed CRM page has no dock or softphone of its own.
        await expect(page.locator("#ccc-softphone-frame")).to_have_count(1)
        await expect(crm(page).locator("#ccc-softphone, #ccc-softphone-frame")).to_have_count(0)

        await softphone(page).locator(".wbsdk-hangup").click()
        ended = await wait_for_state(stack, incoming["id"], "ended")
        assert ended["direction"] == "inbound" and ended["agent"] == AGENT1[0]
        await expect(softphone(page).locator(".wbsdk")).to_have_attribute("data-status", READY)

        # Click-to-call from the framed CRM page dials on the one softphone of this tab.
        await crm(page).locator("a[href^='tel:']", has_text="135012345678").click()
        await confirm_call(page)
        await expect(page.locator("#ccc-softphone-toast")).to_contain_text("Calling 135012345678")
        outbound = await wait_for_call(stack, "outbound", "135012345678")
        assert outbound["agent"] == AGENT1[0]
        await expect(page).to_have_url(base + "/customers")

        # Back past the first framed page: the tab's own CRM page again, softphone untouched.
        await page.go_back()
        await expect(crm(page).locator("main h1")).to_have_text("Miss Lu")
        await page.go_back()
        await expect(page).to_have_url(base + "/")
        await expect(page.locator("#ccc-content")).to_have_count(0)
        await expect(page.locator("main h1")).to_contain_text("Welcome")
        await page.go_forward()
        await expect(page).to_have_url(base + "/customer/phoneNumber/135012345679")
        await expect(crm(page).locator("main h1")).to_have_text("Miss Lu")
        assert await softphone_frame.evaluate("window.cccTestMarker") == "same softphone document"


def _fake_crm_page(
    refuses: Callable[[str], bool],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        name = request.match_info.get("name") or "found " + str((await request.post())["q"])
        html = (
            f"<!doctype html><html><head><title>{name}</title></head><body><main><h1>{name}</h1>"
            '<a href="/page/two">Page two</a> <a href="/page/locked">Locked page</a> '
            '<a href="tel:135012345678">135012345678</a>'
            '<form method="post" action="/found"><input name="q"><button>Search</button></form>'
            "</main></body></html>"
        )
        headers = {"Content-Security-Policy": "default-src 'self'"}
        if refuses(name):
            headers = {
                "X-Frame-Options": "DENY",
                "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
            }
        return web.Response(text=html, content_type="text/html", headers=headers)

    return handler


async def _fake_crm(aiohttp_server: AiohttpServer, refuses: Callable[[str], bool]) -> TestServer:
    """A CRM without login: pages with two links and a tel: link; `refuses` forbids framing."""
    app = web.Application()
    app.router.add_get("/page/{name}", _fake_crm_page(refuses))
    app.router.add_get("/customer/phoneNumber/{name}", _fake_crm_page(refuses))
    app.router.add_post("/found", _fake_crm_page(refuses))
    return await aiohttp_server(app)


@pytest.fixture
async def unframeable_crm(aiohttp_server: AiohttpServer) -> TestServer:
    """Every page forbids framing (X-Frame-Options DENY, frame-ancestors 'none')."""
    return await _fake_crm(aiohttp_server, lambda name: True)


@pytest.fixture
async def partly_framed_crm(aiohttp_server: AiohttpServer) -> TestServer:
    """Only /page/locked forbids framing; the gateway cannot know it before loading it."""
    return await _fake_crm(aiohttp_server, lambda name: name == "locked")


async def _fronted(make_stack: MakeStack, crm: TestServer) -> Stack:
    upstream = {"url": URL(f"http://127.0.0.1:{crm.port}"), "whoami_path": None}
    return await make_stack(emulator_tls=True, softphone=SDK, upstream=upstream)


async def test_crm_that_refuses_framing_navigates_and_warns(
    make_stack: MakeStack, unframeable_crm: TestServer, page: Page
) -> None:
    """A CRM forbidding framing keeps today's navigation and warns that it ends the call."""
    stack = await _fronted(make_stack, unframeable_crm)
    base = str(stack.url)
    async with screenshot_on_failure(page, "refuses_framing"):
        await page.goto(base + "/page/one")
        await page.locator("#ccc-softphone-button").click()
        await sign_in_through_popup(page)
        await expect(softphone(page).locator(".wbsdk")).to_have_attribute("data-status", READY)
        warning = page.locator("#ccc-softphone-warning")
        await expect(warning).to_be_hidden()

        await page.locator("a[href^='tel:']").click()
        await confirm_call(page)
        await wait_for_call(stack, "outbound", "135012345678")
        await expect(warning).to_contain_text("navigating will end the call")
        await expect(page.locator("#ccc-content")).to_have_count(0)

        await page.locator("a", has_text="Page two").click()
        await expect(page.locator("main h1")).to_have_text("two")  # the tab itself navigated
        await expect(page.locator("#ccc-content")).to_have_count(0)
        await expect(softphone(page).locator(".wbsdk")).to_have_attribute("data-status", READY)
        await push_incoming(stack, AGENT1[0], "135012345679")
        await expect(page).to_have_url(base + "/customer/phoneNumber/135012345679")
        await expect(page.locator("main h1")).to_have_text("135012345679")
        await expect(page.locator("#ccc-content")).to_have_count(0)


async def test_page_refusing_its_frame_offers_to_end_the_call(
    make_stack: MakeStack, partly_framed_crm: TestServer, page: Page
) -> None:
    """A framed page that refuses framing mid-call: a notice, the call kept until "Open here"."""
    stack = await _fronted(make_stack, partly_framed_crm)
    base = str(stack.url)
    async with screenshot_on_failure(page, "page_refusing_frame"):
        await page.goto(base + "/page/one")
        await page.locator("#ccc-softphone-button").click()
        await sign_in_through_popup(page)
        await expect(softphone(page).locator(".wbsdk")).to_have_attribute("data-status", READY)
        # The CRM's own POST form, submitted by the browser into the content frame.
        await page.fill("input[name=q]", "lu")
        await page.click("form button")
        await expect(crm(page).locator("main h1")).to_have_text("found lu")
        await expect(page).to_have_url(base + "/found")

        incoming = await push_incoming(stack, AGENT1[0], "135012345679")
        await expect(crm(page).locator("main h1")).to_have_text("135012345679")
        await softphone(page).locator(".wbsdk-answer").click()
        await wait_for_state(stack, incoming["id"], "talking")

        await crm(page).locator("a", has_text="Locked page").click()
        notice = page.locator("#ccc-softphone-notice")
        await expect(notice).to_contain_text("without ending the call")
        assert await call_state(stack, incoming["id"]) == "talking"
        await expect(softphone(page).locator(".wbsdk")).to_have_attribute("data-status", INBOUND)

        await notice.locator("button", has_text="Open here").click()
        await expect(page).to_have_url(base + "/page/locked")
        await expect(page.locator("main h1")).to_have_text("locked")  # the tab, not a frame
        await wait_for_state(stack, incoming["id"], "ended")  # what the notice warned about
