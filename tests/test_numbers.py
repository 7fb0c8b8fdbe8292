"""static/numbers.js, the one implementation of what a phone number looks like: the screen-pop
variables run in Chromium over a table of callers, and the Python side (check-config's list of
template variables, the default detector pattern) is read from the same file."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

# The Chromium fixture, re-exported so pytest finds it in this module.
from test_browser_e2e import chromium as chromium

from ccc_gateway.config.softphone_values import SCREEN_POP_VARIABLES

NUMBERS_JS = Path(__file__).resolve().parents[1] / "ccc_gateway" / "static" / "numbers.js"
SOURCE = NUMBERS_JS.read_text(encoding="utf-8")

# caller as received -> (caller_digits, caller_national, caller_e164)
CALLERS = {
    "13800138000": ("13800138000", "13800138000", "+8613800138000"),
    "+8613800138000": ("8613800138000", "13800138000", "+8613800138000"),
    "008613800138000": ("008613800138000", "13800138000", "+8613800138000"),
    "8613800138000": ("8613800138000", "13800138000", "+8613800138000"),
    "+86 138-0013-8000": ("8613800138000", "13800138000", "+8613800138000"),
    "01012345678": ("01012345678", "01012345678", "+861012345678"),
    "+861012345678": ("861012345678", "01012345678", "+861012345678"),
    "+86 10 1234 5678": ("861012345678", "01012345678", "+861012345678"),
    "0086-755-88886666": ("008675588886666", "075588886666", "+8675588886666"),
    "075588886666": ("075588886666", "075588886666", "+8675588886666"),
    "+442071234567": ("442071234567", "442071234567", "+442071234567"),
    "0044 20 7123 4567": ("00442071234567", "00442071234567", "+442071234567"),
    "8001": ("8001", "8001", "8001"),  # an extension: nothing to normalise
    "": ("", "", ""),
}
TEXT = (
    "电话13800138000, tel 010-12345678, (0755) 8888 6666, +44 20 7123 4567, "
    "+86 138 0013 8000; order 2024-01-15, id 123456789012345, a13800138000, 13800138000x"
)
FOUND = ["13800138000", "010-12345678", "(0755) 8888 6666", "+44 20 7123 4567", "+86 138 0013 8000"]


def default_pattern() -> str:
    """DEFAULT_PATTERN as numbers.js spells it (JavaScript string literals joined)."""
    statement = re.search(r"const DEFAULT_PATTERN = (.*?);\n", SOURCE, re.DOTALL)
    assert statement is not None
    return "".join(re.findall(r"'((?:[^'\\]|\\.)*)'", statement.group(1))).replace("\\\\", "\\")


def test_template_variables_are_the_same_in_python_and_numbers_js() -> None:
    """check-config accepts exactly the variables numbers.js fills in."""
    names = re.search(r"const TEMPLATE_VARIABLE = /\\\{\(([^)]*)\)\\\}/g;", SOURCE)
    assert names is not None
    assert tuple("{" + name + "}" for name in names.group(1).split("|")) == SCREEN_POP_VARIABLES


def test_default_pattern_finds_chinese_mobiles_landlines_and_e164() -> None:
    """The detector's default pattern (also valid Python, ASCII as in JavaScript): numbers,
    never dates, ids or parts of words."""
    found = [m.group(0) for m in re.finditer(default_pattern(), TEXT, re.ASCII)]
    assert found == FOUND


@pytest.fixture
async def numbers_page(chromium: Browser) -> AsyncIterator[Page]:
    context = await chromium.new_context()
    page = await context.new_page()
    await page.set_content("<!doctype html><title>numbers</title><body></body>")
    await page.add_script_tag(content=SOURCE)
    try:
        yield page
    finally:
        await context.close()


@pytest.mark.browser
async def test_caller_variables_table(numbers_page: Page) -> None:
    """variables(caller) gives the digits, the national form (trunk 0 kept) and E.164."""
    for caller, (digits, national, e164) in CALLERS.items():
        got = await numbers_page.evaluate("(c) => window.cccNumbers.variables(c)", caller)
        assert got == {
            "caller": caller,
            "caller_digits": digits,
            "caller_national": national,
            "caller_e164": e164,
        }, caller


@pytest.mark.browser
async def test_pop_url_encodes_every_variable_and_drops_dot_segments(numbers_page: Page) -> None:
    """popUrl: {caller} as received, the normalised forms, encoded; `.`/`..` become empty."""
    template = "/c/{caller_national}?raw={caller}&e={caller_e164}&t={callType}&j={jobId}&x={callee}"
    detail = {"caller": "+86 10 1234 5678", "callType": "Inbound", "jobId": "..", "callee": "a/b"}
    url = await numbers_page.evaluate(
        "([t, d]) => window.cccNumbers.popUrl(t, d)", [template, detail]
    )
    assert url == (
        "/c/01012345678?raw=%2B86%2010%201234%205678&e=%2B861012345678&t=Inbound&j=&x=a%2Fb"
    )


@pytest.mark.browser
async def test_browser_pattern_agrees_with_the_python_reading(numbers_page: Page) -> None:
    """Chromium finds the same numbers with DEFAULT_PATTERN as Python's reading of it."""
    found = await numbers_page.evaluate(
        "(t) => t.match(new RegExp(window.cccNumbers.DEFAULT_PATTERN, 'g'))", TEXT
    )
    assert found == FOUND
    assert await numbers_page.evaluate("() => window.cccNumbers.DEFAULT_PATTERN") == (
        default_pattern()
    )
