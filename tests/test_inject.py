"""Widget injection: CSP rewriting (pure), which answers qualify, and the real proxy end to end."""

from __future__ import annotations

import gzip
import random
import re
import zlib
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy
from scan_page_reference import reference_scan_page
from stack import Stack
from test_hardening_html import HOSTILE_PAGES, _random_pages
from yarl import URL

from bench.fixtures import crm_page
from ccc_gateway.softphone.csp import (
    WIDGET_SCRIPT,
    allows_same_origin_framing,
    frame_ancestors_allow_self,
    parse_policy,
    rewrite_policy,
    script_nonce,
    x_frame_options_allow_self,
)
from ccc_gateway.softphone.inject import (
    WidgetInjector,
    is_injectable,
    is_page_navigation,
    widget_tags,
)
from ccc_gateway.softphone.page_scan import _TEXT_ELEMENTS, _WATCHED_IN_SELECT, insert_at, scan_page

MakeStack = Callable[..., Awaitable[Stack]]
AiohttpServer = Callable[..., Awaitable[TestServer]]
PAGE = b"<!doctype html><html><head><title>CRM</title></head><body><h1>Hi</h1></body></html>"
TAGS = widget_tags()
NAVIGATE = {"Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Dest": "document"}
CSP_NAME = "Content-Security-Policy"
ORIGIN = "https://crm.example.com"
SCRIPT_URL = ORIGIN + WIDGET_SCRIPT
STYLE_URL = ORIGIN + "/aliyun/softphone/widget.css"

# ---------------------------------------------------------------- CSP table

CSP_CASES = [
    # (CRM policy, expected policy after rewriting)
    ("default-src 'self'", "default-src 'self'"),
    ("default-src 'self'; frame-ancestors 'none'", "default-src 'self'; frame-ancestors 'none'"),
    ("script-src *; frame-src https:", "script-src *; frame-src https:"),
    ("script-src 'none'", f"script-src {SCRIPT_URL}"),
    (
        "default-src 'none'",
        f"default-src 'none'; script-src {SCRIPT_URL}; style-src {STYLE_URL}; frame-src 'self'",
    ),
    (
        "default-src https://cdn.example; img-src data:",
        f"default-src https://cdn.example; img-src data:; script-src https://cdn.example "
        f"{SCRIPT_URL}; style-src https://cdn.example {STYLE_URL}; "
        "frame-src https://cdn.example 'self'",
    ),
    (
        "script-src 'self' 'unsafe-inline'; frame-src 'none'",
        "script-src 'self' 'unsafe-inline'; frame-src 'self'",
    ),
    ("script-src https://cdn.example", f"script-src https://cdn.example {SCRIPT_URL}"),
    ("child-src 'none'", "child-src 'none'; frame-src 'self'"),
    (
        "script-src-elem 'none'; script-src 'self'",
        f"script-src-elem {SCRIPT_URL}; script-src 'self'",
    ),
    ("style-src 'sha256-abc='", f"style-src 'sha256-abc=' {STYLE_URL}"),
    ("SCRIPT-SRC 'NONE'", f"script-src {SCRIPT_URL}"),
    ("script-src 'self';; ;", "script-src 'self';; ;"),  # unchanged text stays byte-identical
]


@pytest.mark.parametrize(("policy", "expected"), CSP_CASES)
def test_rewrite_policy_table(policy: str, expected: str) -> None:
    """Each CRM policy admits the widget with the smallest change, or none when it already does."""
    assert rewrite_policy(policy, ORIGIN, None) == expected
    assert script_nonce(policy) == (None, False)


@pytest.mark.parametrize(("policy", "_"), CSP_CASES)
def test_rewrite_never_loosens_anything_else(policy: str, _: str) -> None:
    """Scripts and styles gain only the widget's URLs, frames only 'self'; the rest is identical."""
    before = dict(parse_policy(policy))
    after = dict(parse_policy(rewrite_policy(policy, ORIGIN, None)))
    widget_families = {"script-src", "script-src-elem", "style-src", "style-src-elem"}
    for name, sources in after.items():
        added = set(sources) - set(before.get(name, before.get("default-src", [])))
        if name in widget_families:
            assert added <= {SCRIPT_URL, STYLE_URL}
        elif name == "frame-src":
            assert added <= {"'self'"}
        else:
            assert sources == before[name]


def test_strict_dynamic_uses_the_crm_nonce() -> None:
    """Under 'strict-dynamic' 'self' is ignored, so the widget carries the page's nonce instead."""
    policy = "script-src 'nonce-r4nd0m' 'strict-dynamic'; object-src 'none'"
    assert script_nonce(policy) == ("r4nd0m", True)
    assert rewrite_policy(policy, ORIGIN, "r4nd0m") == policy
    assert b'nonce="r4nd0m"' in widget_tags("r4nd0m")


def test_duplicate_directive_ignored_like_browsers() -> None:
    """A repeated directive is ignored by browsers, so only the first one is judged."""
    assert parse_policy("script-src 'self'; script-src 'none'") == [("script-src", ["'self'"])]


# ---------------------------------------------------------------- body and qualification


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"<body>x</body>", b"<body>x" + TAGS + b"</body>"),
        (b"<BODY>x</BODY></HTML>", b"<BODY>x" + TAGS + b"</BODY></HTML>"),
        (
            b"<body><script>'</body>'</script></body >",
            b"<body><script>'</body>'</script>" + TAGS + b"</body >",
        ),
        (b"<p>no body end", b"<p>no body end" + TAGS),
        (b"", TAGS),
        # the last one wins whichever spelling comes first or is found first
        (b"<body>'</body>'</Body>", b"<body>'</body>'" + TAGS + b"</Body>"),
        (b"</BODY>x</body>", b"</BODY>x" + TAGS + b"</body>"),
        (b"<p>'</body>'</p></BODY></HTML>", b"<p>'</body>'</p>" + TAGS + b"</BODY></HTML>"),
        (b"x</bOdY>", b"x" + TAGS + b"</bOdY>"),
    ],
)
def test_insert_before_last_body_end(body: bytes, expected: bytes) -> None:
    """Tags go before the last </body> tag in any case, or at the end when there is none."""
    result = insert_at(body, scan_page(body).at, TAGS)
    assert result == expected
    assert type(result) is bytes  # what the proxy sends and measures, not a view of the page


_HTML_BITS = st.sampled_from(
    [b"</body", b"</BODY", b"<script>", b"</script", b"<!--", b"-->", b"<", b"'", b'"', b">"]
)


@given(st.lists(_HTML_BITS, max_size=12).map(b"".join))
def test_scan_page_answers_for_any_bytes(body: bytes) -> None:
    """Whatever the bytes, the scan names an offset inside the page, or none."""
    at = scan_page(body).at
    assert at == -1 or 0 <= at <= len(body)


# Tag soup for comparing `scan_page` with the first, slower scanner (tests/scan_page_reference.py):
# names it acts on and others, of one or two letters and longer, in any case and with odd bytes;
# attributes of every shape the tokenizer tells apart (quotes, `=` first, whitespace around `=`,
# `>` and tags in values, values left open); comments, doctypes, bogus comments, CDATA.
_SOUP_NAMES = [
    *(b"script style xmp iframe noembed noframes noscript textarea title plaintext frameset svg"
      b" math template select input keygen head body SCRIPT Script TiTlE SeLeCt BODY SVG INPUT"
      b" td TD tR a p h1 br i s t sv ti in div DiV span table tbody img option path font desc mi"
      b" foreignObject annotation-xml scriptx bodyx x= a\" a' a< b=c").split(),
]  # fmt: skip
_SOUP_SPACES = [b" ", b"\t", b"\n", b"\r", b"\f", b"\v", b"  ", b"/", b""]  # \v is no space
_SOUP_ATTRIBUTES = [
    b'href="x"', b"href='x'", b"href=x", b"checked", b'a="x>y"', b"a='x>y'", b'a="', b"a='",
    b"=a", b'="x"', b'a = "x"', b"a =x", b"a= x", b"a=", b'a"b="c"', b"a=b\"c", b"a=b'c",
    b'a="</body>"', b"a=</body>", b"a=<script>", b'x=""', b"a/b", b"a=x/", b"a==b", b"a='\"'",
    b'src="/aliyun/softphone/widget.js"', b"SRC=/aliyun/softphone/widget.js",
    b"src='//h/aliyun/softphone/widget.js?v=1'", b'src="/ALIYUN/softphone/widget.js"',
]  # fmt: skip
_SOUP_PIECES = [
    *(b"x <!-- --> --!> <!--> <!---> <!----> <!doctype&#32;html> <!DOCTYPE <?xml?> <? </> </&#32;x>"
      b" </ </3> <![CDATA[ ]]> <!- <! - -- / /> < << <a </body </script <script > ' \" =").split(),
    b"< ", b"text ", b"\n", b"</ x>", b"<!doctype html>",
]  # fmt: skip


@st.composite
def _soup_tag(draw: st.DrawFn) -> bytes:
    tag = b"<" + draw(st.sampled_from([b"", b"/"])) + draw(st.sampled_from(_SOUP_NAMES))
    for _ in range(draw(st.integers(0, 3))):
        tag += draw(st.sampled_from(_SOUP_SPACES)) + draw(st.sampled_from(_SOUP_ATTRIBUTES))
    tag += draw(st.sampled_from([b"", b"", b" ", b"\t", b"/", b" /"]))
    return tag + draw(st.sampled_from([b">", b">", b">", b""]))  # sometimes left open


_SOUP = st.lists(st.one_of(_soup_tag(), st.sampled_from(_SOUP_PIECES)), max_size=25).map(b"".join)


@settings(max_examples=1500, deadline=None)
@given(_SOUP)
def test_scan_page_agrees_with_the_reference_scanner_on_tag_soup(page: bytes) -> None:
    """The fast scanner reads every page as the first one did (which Chromium was checked
    against in test_hardening_html): same offset, same "already injected" answer."""
    assert tuple(scan_page(page)) == tuple(reference_scan_page(page))


def test_scan_page_agrees_with_the_reference_scanner_on_the_tested_pages() -> None:
    """...and on the hostile pages, the pages given to Chromium, and the bench's CRM page
    (also with its markup upper-cased and its rows in divs, spans, inputs and selects)."""
    rng = random.Random(3)
    rows = b"".join(
        b"<div class=\"row\" data-id=%d><span class='name'>C %d</span><input type=checkbox"
        b' checked><select name="s"><option value=1 selected>One<input></select>'
        b'<BUTTON TYPE="button" disabled>Call</BUTTON><br/><img src="/i.png" alt="" /></div>\n'
        % (rng.randrange(1000), n)
        for n in range(50)
    )
    crm = crm_page()
    pages = [
        *(page for page, _ in HOSTILE_PAGES),
        *_random_pages(300),
        crm,
        crm.upper(),
        crm.replace(b"</table>", b"</table>" + rows),
    ]
    for page in pages:
        assert tuple(scan_page(page)) == tuple(reference_scan_page(page)), page


def test_every_name_the_scan_acts_on_is_watched_and_longer_than_two_letters() -> None:
    """The scanner skips tags of one- or two-letter names without looking at the name."""
    acted_on = {
        *_TEXT_ELEMENTS,
        *(b"script plaintext frameset svg math template select input keygen head body".split()),
    }
    for name in acted_on:
        assert len(name) > 2
        assert re.fullmatch(b"(?:" + _WATCHED_IN_SELECT + b")", name), name


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        ("GET", NAVIGATE, True),
        ("GET", {"Sec-Fetch-Dest": "iframe"}, True),
        ("GET", {"Accept": "text/html"}, True),
        ("GET", {"Accept": "application/json"}, False),
        ("GET", {"Accept": "*/*"}, False),
        ("GET", {**NAVIGATE, "X-Requested-With": "XMLHttpRequest"}, False),
        ("GET", {"Accept": "text/html", "Sec-Fetch-Dest": "empty"}, False),
        ("GET", {**NAVIGATE, "Range": "bytes=0-99"}, False),
        ("HEAD", NAVIGATE, False),
        ("POST", NAVIGATE, False),
    ],
)
def test_page_navigation(method: str, headers: dict[str, str], expected: bool) -> None:
    """Only a GET navigation (document/iframe, or no Sec-Fetch-Dest but Accept html) qualifies."""
    request = make_mocked_request(method, "/", headers=headers)
    assert is_page_navigation(request) is expected


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (200, {"Content-Type": "text/html; charset=utf-8"}, True),
        (200, {"Content-Type": "TEXT/HTML"}, True),
        (404, {"Content-Type": "text/html"}, False),
        (206, {"Content-Type": "text/html"}, False),
        (200, {"Content-Type": "application/json"}, False),
        (200, {"Content-Type": "text/html; charset=utf-16"}, False),
        (200, {"Content-Type": 'text/html; charset="UTF-32LE"'}, False),
        (200, {"Content-Type": "text/html;charset=utf16"}, False),
        (200, {"Content-Type": "text/html", "Content-Disposition": "attachment; x=1"}, False),
        (200, {"Content-Type": "text/html", "Content-Disposition": "inline"}, True),
        (200, {}, False),
    ],
)
def test_injectable_answers(status: int, headers: dict[str, str], expected: bool) -> None:
    """Whole 200 HTML pages only: no errors, ranges, JSON, UTF-16 or attachments."""
    assert is_injectable(status, CIMultiDict(headers)) is expected


def test_transform_rewrites_every_csp_header() -> None:
    """Each enforced policy is rewritten (all must admit the widget); report-only is kept."""
    headers: CIMultiDict[str] = CIMultiDict()
    headers.add("Content-Security-Policy", "script-src 'none'")
    headers.add("Content-Security-Policy", "frame-src 'none'")
    headers.add("Content-Security-Policy-Report-Only", "default-src 'none'")
    request = make_mocked_request("GET", "/", headers={**NAVIGATE, "Host": "crm.example.com"})
    body = WidgetInjector().transform(request, PAGE, headers)
    assert headers.getall("Content-Security-Policy") == [
        "script-src http://crm.example.com/aliyun/softphone/widget.js",
        "frame-src 'self'",
    ]
    assert headers["Content-Security-Policy-Report-Only"] == "default-src 'none'"
    assert body.count(WIDGET_SCRIPT.encode()) == 1


def test_transform_same_policy_twice() -> None:
    """A CSP text seen before gets the same rewrite and nonce; the remembered one is unharmed."""
    policy = "script-src 'nonce-abc' 'strict-dynamic'; frame-src 'none'; frame-ancestors 'none'"
    request = make_mocked_request("GET", "/", headers=NAVIGATE)
    results = []
    for _ in range(2):
        headers = CIMultiDict({CSP_NAME: policy})
        body = WidgetInjector().transform(request, PAGE, headers)
        results.append((body, headers.getall(CSP_NAME)))
    assert results[0] == results[1]
    body, policies = results[0]
    assert policies == [
        "script-src 'nonce-abc' 'strict-dynamic'; frame-src 'self'; frame-ancestors 'none'"
    ]
    assert widget_tags("abc", frameable=False) in body


def test_csp_helpers_keep_no_memory() -> None:
    """CSP texts (one per page with per-page nonces) are not remembered between pages."""
    from ccc_gateway.softphone import csp, inject

    for module in (csp, inject):
        assert not [f for f in vars(module).values() if hasattr(f, "cache_info")]


def test_transform_does_not_inject_twice() -> None:
    """A page that already carries the widget script is left as it is."""
    request = make_mocked_request("GET", "/", headers=NAVIGATE)
    once = WidgetInjector().transform(request, PAGE, CIMultiDict())
    assert WidgetInjector().transform(request, once, CIMultiDict()) == once


# ---------------------------------------------------------------- framing by our own origin

GATEWAY = URL("https://crm.example.com")


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], True),
        (["SAMEORIGIN"], True),
        (["sameorigin"], True),
        (["DENY"], False),
        (["deny "], False),
        (["SAMEORIGIN", "SAMEORIGIN"], True),  # one value, repeated
        (["SAMEORIGIN, DENY"], False),  # conflicting values refuse
        (["SAMEORIGIN", "ALLOWALL"], False),
        (["ALLOW-FROM https://crm.example.com"], True),  # obsolete: browsers ignore it
        (["nonsense"], True),
    ],
)
def test_x_frame_options_table(values: list[str], expected: bool) -> None:
    """X-Frame-Options as browsers read it (HTML's processing steps) for a same-origin parent."""
    assert x_frame_options_allow_self(values) is expected


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        (["'self'"], True),
        (["'none'"], False),
        ([], False),
        (["*"], True),
        (["https:"], True),
        (["http:"], True),  # a scheme source matches its https upgrade
        (["wss:", "data:"], False),
        (["crm.example.com"], True),
        (["https://crm.example.com"], True),
        (["https://crm.example.com:443/"], True),
        (["http://crm.example.com"], True),  # http: sources match their https upgrade
        (["*.example.com"], True),
        (["https://*"], True),
        (["crm.example.com:8443"], False),
        (["other.example"], False),
        (["https://crm.example.com.evil.example"], False),
        (["'unsafe-inline'", "data:"], False),
    ],
)
def test_frame_ancestors_table(sources: list[str], expected: bool) -> None:
    """frame-ancestors sources that admit the gateway's own origin, and ones that do not."""
    assert frame_ancestors_allow_self(sources, GATEWAY) is expected


def test_frame_ancestors_without_known_origin_needs_a_keyword() -> None:
    """With no origin to compare, only 'self', * or https: count as admitting us."""
    assert frame_ancestors_allow_self(["crm.example.com"], None) is False
    assert frame_ancestors_allow_self(["'self'"], None) is True


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], True),
        ([("X-Frame-Options", "DENY")], False),
        ([("X-Frame-Options", "SAMEORIGIN")], True),
        # frame-ancestors present: browsers ignore X-Frame-Options entirely
        ([("X-Frame-Options", "DENY"), (CSP_NAME, "frame-ancestors 'self'")], True),
        ([("X-Frame-Options", "SAMEORIGIN"), (CSP_NAME, "frame-ancestors 'none'")], False),
        # every enforced policy must admit it; report-only never blocks
        ([(CSP_NAME, "frame-ancestors 'self'"), (CSP_NAME, "frame-ancestors 'none'")], False),
        ([(CSP_NAME, "default-src 'none'")], True),  # frame-ancestors has no fallback
        ([(CSP_NAME + "-Report-Only", "frame-ancestors 'none'")], True),
        ([(CSP_NAME, "FRAME-ANCESTORS https://crm.example.com")], True),
    ],
)
def test_allows_same_origin_framing(headers: list[tuple[str, str]], expected: bool) -> None:
    """The page's headers decide whether the widget may show the CRM in a same-origin frame."""
    assert allows_same_origin_framing(CIMultiDict(headers), GATEWAY) is expected


def test_tags_say_whether_framing_is_allowed() -> None:
    """The script tag carries data-ccc-frame for widget.js; the default is allowed."""
    assert b'data-ccc-frame="allowed"' in widget_tags()
    assert b'data-ccc-frame="refused"' in widget_tags("n", frameable=False)


def test_transform_marks_pages_that_refuse_framing() -> None:
    """A page sent with X-Frame-Options DENY gets a widget told to fall back to navigation."""
    request = make_mocked_request("GET", "/", headers={**NAVIGATE, "Host": "crm.example.com"})
    headers = CIMultiDict({"X-Frame-Options": "DENY"})
    body = WidgetInjector().transform(request, PAGE, headers)
    assert b'data-ccc-frame="refused"' in body
    assert headers["X-Frame-Options"] == "DENY"  # respected, never removed


# ---------------------------------------------------------------- through the real proxy


async def _page(request: web.Request) -> web.Response:
    coding = request.match_info["coding"]
    body = {"gzip": gzip.compress, "deflate": zlib.compress}.get(coding, lambda b: b)(PAGE)
    headers = {"Content-Security-Policy": "default-src 'none'; img-src 'self'"}
    if coding in ("gzip", "deflate"):
        headers["Content-Encoding"] = coding
    return web.Response(body=body, content_type="text/html", headers=headers)


async def _other(request: web.Request) -> web.Response:
    kind = request.match_info["kind"]
    if kind == "json":
        return web.json_response({"html": "</body>"})
    if kind == "partial":
        return web.Response(
            status=206,
            body=PAGE[:20],
            content_type="text/html",
            headers={"Content-Range": f"bytes 0-19/{len(PAGE)}"},
        )
    if kind == "attachment":
        return web.Response(
            body=PAGE,
            content_type="text/html",
            headers={"Content-Disposition": 'attachment; filename="page.html"'},
        )
    if kind == "missing":
        return web.Response(status=404, body=PAGE, content_type="text/html")
    return web.Response(body=b"<h1>No body end", content_type="text/html")  # "bare"


async def _unframeable(request: web.Request) -> web.Response:
    csp = "default-src 'self'; frame-ancestors 'none'"
    return web.Response(
        body=PAGE, content_type="text/html", headers={"Content-Security-Policy": csp}
    )


@pytest.fixture
async def fake_crm(aiohttp_server: AiohttpServer) -> TestServer:
    app = web.Application()
    app.router.add_get("/page/{coding}", _page)
    app.router.add_get("/other/{kind}", _other)
    app.router.add_get("/unframeable", _unframeable)
    return await aiohttp_server(app)


async def _fronted(make_stack: MakeStack, fake_crm: TestServer, **softphone: object) -> Stack:
    upstream = {"url": URL(f"http://127.0.0.1:{fake_crm.port}")}
    return await make_stack(upstream=upstream, softphone=softphone)


@pytest.mark.parametrize("coding", ["identity", "gzip", "deflate"])
async def test_proxy_injects_into_encoded_pages(
    make_stack: MakeStack, fake_crm: TestServer, coding: str
) -> None:
    """gzip/deflate pages are decoded, get the widget and a CSP admitting it, and a true length."""
    stack = await _fronted(make_stack, fake_crm)
    browser = stack.browser()
    try:
        async with browser.client.get(
            browser.url(f"/page/{coding}"), headers={**NAVIGATE, "Accept-Encoding": "gzip"}
        ) as response:
            body = await response.read()
            assert response.status == 200
            assert "Content-Encoding" not in response.headers
            assert int(response.headers["Content-Length"]) == len(body)
            csp = response.headers["Content-Security-Policy"]
    finally:
        await browser.close()
    assert body == PAGE.replace(b"</body>", TAGS + b"</body>")
    origin = browser.url("/").origin()
    assert csp == (
        f"default-src 'none'; img-src 'self'; script-src {origin}{WIDGET_SCRIPT}; "
        f"style-src {origin}/aliyun/softphone/widget.css; frame-src 'self'"
    )


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/other/json", NAVIGATE),
        ("/other/partial", NAVIGATE),
        ("/other/attachment", NAVIGATE),
        ("/other/missing", NAVIGATE),
        ("/page/identity", {**NAVIGATE, "X-Requested-With": "XMLHttpRequest"}),
        ("/page/identity", {"Accept": "text/html", "Sec-Fetch-Dest": "script"}),
    ],
)
async def test_proxy_leaves_other_answers_alone(
    make_stack: MakeStack, fake_crm: TestServer, path: str, headers: dict[str, str]
) -> None:
    """JSON, 206, attachments, errors and XHR/fetch answers pass through byte for byte."""
    stack = await _fronted(make_stack, fake_crm)
    browser = stack.browser()
    try:
        async with browser.client.get(browser.url(path), headers=headers) as response:
            body = await response.read()
    finally:
        await browser.close()
    assert WIDGET_SCRIPT.encode() not in body


async def test_proxy_skips_head(make_stack: MakeStack, fake_crm: TestServer) -> None:
    """A HEAD answer keeps the CRM's headers (no rewritten length or policy)."""
    stack = await _fronted(make_stack, fake_crm)
    browser = stack.browser()
    try:
        async with browser.client.head(browser.url("/page/identity"), headers=NAVIGATE) as r:
            assert r.headers["Content-Security-Policy"] == "default-src 'none'; img-src 'self'"
    finally:
        await browser.close()


async def test_proxy_appends_to_page_without_body_end(
    make_stack: MakeStack, fake_crm: TestServer
) -> None:
    """A page with no </body> gets the widget appended at the end."""
    stack = await _fronted(make_stack, fake_crm)
    browser = stack.browser()
    try:
        async with browser.client.get(browser.url("/other/bare"), headers=NAVIGATE) as response:
            assert await response.read() == b"<h1>No body end" + TAGS
    finally:
        await browser.close()


async def test_sample_crm_pages_get_the_widget(stack: Stack) -> None:
    """The sample CRM's pages carry the widget; its JSON whoami does not; its CSP is kept."""
    browser = stack.browser()
    try:
        await browser.login_crm()
        async with browser.client.get(browser.url("/customers"), headers=NAVIGATE) as response:
            html = await response.text()
            csp = response.headers["Content-Security-Policy"]
        async with browser.client.get(browser.url("/api/me")) as response:
            me = await response.text()
    finally:
        await browser.close()
    assert html.endswith(TAGS.decode() + "</body></html>")
    assert "default-src 'self'" in csp and "script-src" not in csp  # already admitted
    assert WIDGET_SCRIPT not in me


async def test_inject_false_leaves_pages_untouched(
    make_stack: MakeStack, fake_crm: TestServer
) -> None:
    """With softphone.inject false the CRM's pages and policies pass through unchanged."""
    stack = await _fronted(make_stack, fake_crm, inject=False)
    browser = stack.browser()
    try:
        async with browser.client.get(browser.url("/page/identity"), headers=NAVIGATE) as r:
            assert await r.read() == PAGE
            assert r.headers["Content-Security-Policy"] == "default-src 'none'; img-src 'self'"
    finally:
        await browser.close()


async def test_proxy_marks_unframeable_pages(make_stack: MakeStack, fake_crm: TestServer) -> None:
    """frame-ancestors 'none' reaches the browser unchanged and the widget is told to fall back."""
    stack = await _fronted(make_stack, fake_crm)
    browser = stack.browser()
    try:
        async with browser.client.get(browser.url("/unframeable"), headers=NAVIGATE) as response:
            body = await response.read()
            csp = response.headers["Content-Security-Policy"]
    finally:
        await browser.close()
    assert body == PAGE.replace(b"</body>", widget_tags(frameable=False) + b"</body>")
    assert "frame-ancestors 'none'" in csp


# ---------------------------------------------------------------- login page, opener policy


def test_login_page_never_gets_the_widget() -> None:
    """The CRM's login page (upstream.login_path, with the query items it names) gets no
    widget; other pages do, /index.php ones too when the login is /index.php?…."""
    injector = WidgetInjector("/admin/login/")
    html = CIMultiDictProxy(CIMultiDict({"Content-Type": "text/html"}))
    login = make_mocked_request("GET", "/admin/login/?next=/aliyun/auth", headers=NAVIGATE)
    other = make_mocked_request("GET", "/admin/", headers=NAVIGATE)
    assert not injector.wants(login, 200, html)
    assert injector.wants(other, 200, html)
    php = WidgetInjector("/index.php?module=Users&action=Login")
    page = make_mocked_request("GET", "/index.php?module=Contacts&action=index", headers=NAVIGATE)
    login = make_mocked_request("GET", "/index.php?action=Login&module=Users&x=1", headers=NAVIGATE)
    assert php.wants(page, 200, html)
    assert not php.wants(login, 200, html)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Cross-Origin-Opener-Policy": "same-origin"}, "same-origin-allow-popups"),
        (
            {"Cross-Origin-Opener-Policy": 'same-origin; report-to="coop"'},
            'same-origin-allow-popups; report-to="coop"',
        ),
        ({"Cross-Origin-Opener-Policy": "same-origin-allow-popups"}, "same-origin-allow-popups"),
        ({"Cross-Origin-Opener-Policy": "unsafe-none"}, "unsafe-none"),
        (
            {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "x"},
            "same-origin",
        ),
    ],
)
def test_injected_pages_let_the_sign_in_popup_keep_its_opener(
    headers: dict[str, str], expected: str
) -> None:
    """COOP same-origin becomes same-origin-allow-popups where the widget goes (not with COEP)."""
    request = make_mocked_request("GET", "/", headers=NAVIGATE)
    edited = CIMultiDict(headers)
    body = WidgetInjector().transform(request, PAGE, edited)
    assert WIDGET_SCRIPT.encode() in body
    assert edited["Cross-Origin-Opener-Policy"] == expected


def test_opener_policy_kept_where_nothing_is_injected() -> None:
    """A page that gets no widget (already there) keeps its COOP."""
    request = make_mocked_request("GET", "/", headers=NAVIGATE)
    once = WidgetInjector().transform(request, PAGE, CIMultiDict())
    edited = CIMultiDict({"Cross-Origin-Opener-Policy": "same-origin"})
    assert WidgetInjector().transform(request, once, edited) == once
    assert edited["Cross-Origin-Opener-Policy"] == "same-origin"
