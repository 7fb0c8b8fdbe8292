"""softphone.js against a scripted SDK, in headless Chromium: the constructor each generation
gets, the hooks' payloads of all three generations turned into one call shape for screen pop,
and a 2.x/3.x call() that fails through its promise.

The fake SDK (served from a routed https origin) records its options and lets the test fire
hooks, so the page's handling of payloads the emulator's stand-ins never send (PascalCase
keys, lower-case call types, classic positional arguments) is checked too."""

from __future__ import annotations

import asyncio
import time

import pytest
from playwright.async_api import Frame, Page, Route, expect
from test_browser_e2e import (
    CCC2,
    WAIT_S,
    MakeStack,
    crm_login,
    screenshot_on_failure,
    sign_in_through_popup,
    softphone,
)

# The Chromium fixtures, re-exported so pytest finds them in this module.
from test_browser_e2e import chromium as chromium
from test_browser_e2e import page as page

pytestmark = pytest.mark.browser

FAKE_SDK_URL = "https://sdk.test/fake-sdk.js"
# One script defines both globals; `window.fake` is the last instance with its options.
# call(number) answers per `window.fakeCall`: 'ok', 'reject' (a promise) or 'notify' (an
# onErrorNotify while call() runs, as the classic SDK refuses).
FAKE_SDK = """
(function () {
  class Fake {
    constructor(options) {
      this.options = options;
      this.registered = 0;
      this.calls = [];
      window.fake = this;
      setTimeout(() => options.onInit(), 0);
    }
    register() {
      this.registered += 1;
      this.options.onStatusChange({ code: 3, lastCode: 1, context: {} });
    }
    call(number) {
      this.calls.push(number);
      if (window.fakeCall === 'reject') {
        return Promise.reject({ code: 'NoAvailableCallee', message: 'no caller number' });
      }
      if (window.fakeCall === 'notify') {
        this.options.onErrorNotify({ errorCode: 9001, errorMsg: 'not now' });
        return undefined;
      }
      return Promise.resolve();
    }
  }
  window.WorkbenchSdk = Fake;
  window.CCCWorkbenchSDK = Fake;
})();
"""
CLASSIC = {"version": "2017-07-05", "instance_id": "ccc-demo-instance"}
POP = "/customer/phoneNumber/{caller}?to={callee}&type={callType}&job={jobId}"


def fake_softphone(sdk: str) -> dict[str, object]:
    return {
        "sdk": sdk,
        "sdk_scripts": (FAKE_SDK_URL,),
        "sdk_styles": (),
        "screen_pop_url": POP,
    }


async def serve_fake_sdk(route: Route) -> None:
    await route.fulfill(body=FAKE_SDK, content_type="text/javascript")


async def until(frame: Frame, expression: str) -> None:
    """Poll a JavaScript expression in the softphone frame until it is true (bounded).

    Not `wait_for_function`: its polling evaluates strings, which the page's CSP forbids."""
    deadline = time.monotonic() + WAIT_S
    while not await frame.evaluate(expression):
        assert time.monotonic() < deadline, f"never true: {expression}"
        await asyncio.sleep(0.1)


async def started(page: Page, base: str) -> Frame:
    """CRM login, the softphone signed in; the fake SDK constructed. Its frame."""
    await page.context.route(FAKE_SDK_URL, serve_fake_sdk)
    await crm_login(page, base)
    await page.locator("#ccc-softphone-button").click()
    await sign_in_through_popup(page)
    frame = page.frame(url=lambda url: url.endswith("/aliyun/softphone"))
    assert frame is not None
    await until(frame, "Boolean(window.fake && window.fake.options)")
    return frame


@pytest.mark.parametrize(("sdk", "sdk_global"), [("v3", "CCCWorkbenchSDK"), ("v2", "WorkbenchSdk")])
async def test_ccc2_constructor_options_and_register(
    make_stack: MakeStack, page: Page, sdk: str, sdk_global: str
) -> None:
    """2.x/3.x: the generation's global gets dom, instanceId, regionId and the ajax options,
    and register() is called once after onInit."""
    stack = await make_stack(emulator_tls=True, ccc=CCC2, softphone=fake_softphone(sdk))
    async with screenshot_on_failure(page, f"fake_sdk_options_{sdk}"):
        frame = await started(page, str(stack.url))
        options = await frame.evaluate(
            """(name) => {
              const o = window.fake.options;
              return {same: window.fake instanceof window[name], dom: o.dom.id,
                      instanceId: o.instanceId, regionId: o.regionId, ajaxPath: o.ajaxPath,
                      ajaxHeaders: o.ajaxHeaders, hook: typeof o.onCallComing};
            }""",
            sdk_global,
        )
        assert options == {
            "same": True,
            "dom": "ccc-workbench",
            "instanceId": "ccc-demo",
            "regionId": "cn-shanghai",
            "ajaxPath": "/aliyun/ccc/api",
            "ajaxHeaders": {"X-CCC-Softphone": "1"},
            "hook": "function",
        }
        await until(frame, "window.fake.registered === 1")


@pytest.mark.parametrize(
    ("sdk", "ccc", "hook_call", "query"),
    [
        (
            "v3",
            CCC2,
            "{caller: '135012345679', callee: '02150001', callType: 'INBOUND', jobId: 'job-7'}",
            "?to=02150001&type=Inbound&job=job-7",
        ),
        (
            "v2",
            CCC2,
            "{Caller: '135012345679', Callee: '0215 0001', JobId: 'job-8', CallContext: {}}",
            "?to=0215%200001&type=Inbound&job=job-8",
        ),
        ("v1", CLASSIC, "'conn-1', '135012345679', '02150001', 'contact-9'", None),
        # A dot segment would move the pop up the path (to /customer/): it is left out.
        (
            "v3",
            CCC2,
            "{caller: '135012345679', callee: '..', jobId: '.'}",
            "?to=&type=Inbound&job=",
        ),
    ],
)
async def test_every_generations_incoming_call_pops_one_url(
    make_stack: MakeStack,
    page: Page,
    sdk: str,
    ccc: dict[str, str],
    hook_call: str,
    query: str | None,
) -> None:
    """onCallComing's object (camel or PascalCase) or positional payload fills the template."""
    stack = await make_stack(emulator_tls=True, ccc=ccc, softphone=fake_softphone(sdk))
    base = str(stack.url)
    async with screenshot_on_failure(page, f"fake_sdk_pop_{sdk}"):
        frame = await started(page, base)
        await frame.evaluate(f"window.fake.options.onCallComing({hook_call})")
        expected = query or "?to=02150001&type=Inbound&job=contact-9"
        await expect(page).to_have_url(base + "/customer/phoneNumber/135012345679" + expected)


@pytest.mark.parametrize(
    ("mode", "reason"), [("reject", "no caller number"), ("notify", "not now")]
)
async def test_failed_call_is_reported_to_the_widget(
    make_stack: MakeStack, page: Page, mode: str, reason: str
) -> None:
    """A call refused through call()'s promise or an onErrorNotify during call() is no
    "Calling…": the widget shows why."""
    stack = await make_stack(
        emulator_tls=True,
        ccc=CCC2,
        softphone={**fake_softphone("v3"), "confirm_dial": False},
    )
    base = str(stack.url)
    async with screenshot_on_failure(page, f"fake_sdk_call_{mode}"):
        frame = await started(page, base)
        await page.goto(base + "/customers")  # a new page: a new softphone document
        frame = page.frame(url=lambda url: url.endswith("/aliyun/softphone"))
        assert frame is not None
        await until(frame, "window.fake && window.fake.registered === 1")  # may dial
        await frame.evaluate(f"window.fakeCall = '{mode}'")
        await page.locator("a[href^='tel:']", has_text="135012345678").click()
        await expect(page.locator("#ccc-softphone-toast")).to_contain_text(
            "The call did not start: " + reason
        )
        await expect(softphone(page).locator("#ccc-message")).to_contain_text(reason)
        assert await frame.evaluate("window.fake.calls") == ["135012345678"]
