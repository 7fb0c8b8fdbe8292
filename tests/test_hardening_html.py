"""What the gateway adds to or changes in the CRM's answers never opens a hole of its own.

The widget never lands inside a CRM script, comment or text element (issue 14 item 2); a
rewritten `Location` never leads off-site (3); the CRM's nonce or hash CSP admits the widget
without a bare 'self' (7b); `return_to` is judged as a browser resolves it (7d); the CRM
cannot switch off the gateway's HSTS or clear its cookies (7e).
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from urllib.parse import unquote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer, make_mocked_request
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict
from playwright.async_api import Page, Route, async_playwright
from stack import Stack
from test_browser_e2e import CHROMIUM, CHROMIUM_ARGS, HAVE_CHROMIUM
from yarl import URL

from ccc_gateway.auth.return_to import DEFAULT_RETURN_TO, safe_return_to
from ccc_gateway.proxy.headers import (
    DisguisedLocation,
    check_location,
    response_header_pairs,
    rewrite_location,
)
from ccc_gateway.softphone.csp import WIDGET_SCRIPT, WIDGET_STYLE
from ccc_gateway.softphone.inject import WidgetInjector, widget_tags

MakeStack = Callable[..., Awaitable[Stack]]
AiohttpServer = Callable[..., Awaitable[TestServer]]
TAGS = widget_tags()
NAVIGATE = {"Accept": "text/html", "Sec-Fetch-Dest": "document", "Host": "crm.test"}
CSP = "Content-Security-Policy"
XSS = b"<img src=x onerror=alert(1)>"


def transform(page: bytes, headers: CIMultiDict[str] | None = None) -> bytes:
    request = make_mocked_request("GET", "/", headers=NAVIGATE)
    return WidgetInjector().transform(request, page, CIMultiDict() if headers is None else headers)


# ---------------------------------------------------------------- item 2: where the widget goes

HEAD = b"<!doctype html><html><head><title>CRM</title>"
# (page as the CRM sent it, the offset where the tags belong or None for "left alone")
HOSTILE_PAGES = [
    # user text in JSON inside a script, the page without a real </body>: into the head
    (HEAD + b'</head><body><script>var n = {"t": "</body>' + XSS + b'"};</script>', len(HEAD)),
    (HEAD + b'</head><body><script>var n = "</BODY>' + XSS + b'";</script></body>', -7),
    (b"<body><script>'</body>'</script></body >", -8),
    (b"<body>x</body><!-- </body> -->", 7),
    (b"<head></head><body><!-- x </body> --!><p>y", 6),
    (b"<body><!--></body>", 11),  # `<!-->` is a whole comment
    (HEAD + b"</head><body><textarea></body></textarea>", len(HEAD)),
    (HEAD + b"</head><body><title></body></title>", len(HEAD)),
    (HEAD + b"</head><body><style>/* </body> */", len(HEAD)),
    (HEAD + b"</head><body><noscript></body></noscript>", len(HEAD)),
    (HEAD + b"</head><body><iframe></body></iframe>", len(HEAD)),
    (HEAD + b"</head><body><xmp></body></xmp>", len(HEAD)),
    (b"<body><script>x</script\t></body>", -7),
    (b'<body><script>"</scripty></body>"</script></body>', -7),
    (b'<BODY><SCRIPT>"</BODY>"</SCRIPT></BODY>', -7),
    (b'<body><script>"</script foo=">"></body>', -7),
    # script escapes: after `<!--<script>` a `</script>` does not end the script
    (b'<body><script><!--<script>"</script>"</body></script>--></script></body>', -7),
    (HEAD + b'</head><body><script><!--<script>"</script></body>', len(HEAD)),
    (b'<body><div title="</body>">x</div></body>', -7),
    (HEAD + b'</head><body><div title="</body>', len(HEAD)),  # a tag open to the end
    (HEAD + b"</head><body><template></body></template>", len(HEAD)),
    (HEAD + b"</head><body><svg><title></body></title></svg></body>", len(HEAD)),
    (b'<head></head><script>"<body>"</script><body>x</body>', -7),
    (b"<p>no body at all", 17),  # ends between tags: appended, as before
    (b"<p>no body<script>'</body>'", None),
    (b"<p>x<!-- </body>", None),
    (b"<plaintext></body>", None),
    (b"<frameset></frameset></body>", None),
]


@pytest.mark.parametrize(("page", "at"), HOSTILE_PAGES)
def test_widget_goes_only_where_the_tokenizer_is_between_tags(page: bytes, at: int | None) -> None:
    """Before a real </body> only; else in the head, else at the end of clean markup, else never."""
    expected = page if at is None else page[:at] + TAGS + page[at:]
    assert transform(page) == expected


def test_a_crm_script_holding_body_end_is_never_closed_by_the_widget() -> None:
    """The injected tags never split a CRM script: its text reaches the browser whole."""
    script = b'<script>var note = {"text": "</body>' + XSS + b'"};</script>'
    out = transform(HEAD + b"</head><body>" + script)
    assert script in out
    assert out.count(WIDGET_SCRIPT.encode()) == 1


@pytest.mark.parametrize(
    "page",
    [
        "<html><body>Straße</body></html>".encode("utf-16"),  # with its byte order mark
        b"\xfe\xff" + "<body>x</body>".encode("utf-16-be"),
        "<body>x</body>".encode("utf-16-le"),  # no mark: its NUL bytes give it away
        b'<meta charset="utf-16"><body>x</body>',
        b'<meta http-equiv="Content-Type" content="text/html; charset=UTF-16LE"><body></body>',
        b"<meta charset=iso-2022-jp><body>\x1b$B$3$s\x1b(B</body>",
        b"<body>\x1b$B$3$s$K$A$O\x1b(B</body>",
    ],
)
def test_pages_in_other_than_ascii_compatible_encodings_pass_unmodified(page: bytes) -> None:
    """UTF-16 (mark, NULs or declared) and ISO-2022 pages are never touched."""
    assert transform(page) == page


def test_content_type_charset_utf16_or_iso2022_is_not_injectable() -> None:
    """A UTF-16 or ISO-2022-JP Content-Type keeps the page away from the filter."""
    from ccc_gateway.softphone.inject import is_injectable

    for charset in ("utf-16", "UTF-16BE", "iso-2022-jp", "'utf-16le'"):
        assert not is_injectable(200, CIMultiDict({"Content-Type": f"text/html;charset={charset}"}))


def test_widget_url_in_page_content_does_not_stop_the_widget() -> None:
    """Text or a script string naming widget.js is not the widget: the page still gets it."""
    page = (
        b"<body><p>Docs: /aliyun/softphone/widget.js</p>"
        b'<script>var s = "<script src=/aliyun/softphone/widget.js></script>";</script></body>'
    )
    assert transform(page) == page[:-7] + TAGS + b"</body>"


def test_a_real_widget_tag_is_not_added_twice() -> None:
    """A page that carries a real widget script tag (a second gateway's) is left as it is."""
    page = b'<body><script defer src="https://crm.test/aliyun/softphone/widget.js"></script></body>'
    assert transform(page) == page


# ---------------------------------------------------------------- item 2 in a real browser

WIDGET_IN_DOM = """() => {
  const ours = document.querySelectorAll(
    'script[src="/aliyun/softphone/widget.js"], link[href="/aliyun/softphone/widget.css"]');
  const scripts = document.querySelectorAll('script[src="/aliyun/softphone/widget.js"]').length;
  ours.forEach(e => e.remove());
  return [scripts, document.documentElement.outerHTML];
}"""
PIECES = [
    *(b"<body> </body> </BODY > <script> </script> </script\t> <!-- --> --!> <!--> ' \" >"
      b" <textarea> </textarea> <title> </title> <svg> </svg> <svg/> <path/> <template>"
      b" </template> <select> </select> <style> </style> <![CDATA[ ]]> <head> </head> < </"
      b" <noscript> </noscript> <SCRIPT> </SCRIPT <p> <iframe> </iframe> <xmp> <input>"
      b" <?x> <!doctype&#32;html> <table> <td> <div> </div> x").split(),
    b'<div title="', b'">', b"<a b='>'>", b"<a b=c/>", b"<script><!--",
]  # fmt: skip


def _random_pages(count: int) -> list[bytes]:
    """Pages made of the pieces hostile to a byte search, some inside an ordinary frame."""
    rng = random.Random(14)  # a fixed seed: the same pages on every run
    pages = []
    for _ in range(count):
        middle = b"".join(rng.choice(PIECES) for _ in range(rng.randint(1, 12)))
        pages.append(middle if rng.random() < 0.5 else HEAD + b"</head><body>" + middle)
    return pages


@pytest.fixture
async def chromium_page() -> AsyncIterator[Page]:
    if not HAVE_CHROMIUM:
        pytest.skip(f"{CHROMIUM} is absent (make browser or apt-get install chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            yield await browser.new_page()
        finally:
            await browser.close()


async def _serve(page: Page, answers: dict[str, tuple[bytes, dict[str, str]]]) -> None:
    """Answer http://crm.test/<path> from `answers` (body, headers); anything else is 404."""

    async def answer(route: Route) -> None:
        body, headers = answers.get(URL(route.request.url).path, (b"", {}))
        await route.fulfill(status=200 if body else 404, body=body, headers=headers)

    await page.route("**/*", answer)


@pytest.mark.browser
async def test_chromium_parses_every_injected_page_like_the_crm_page(chromium_page: Page) -> None:
    """In Chromium, the widget's two tags are elements and everything else parses unchanged."""
    answers: dict[str, tuple[bytes, dict[str, str]]] = {}
    await _serve(chromium_page, answers)
    # CSP keeps the pages' scripts from running; the parser still sees scripting as enabled.
    headers = {"Content-Type": "text/html", CSP: "script-src 'none'; style-src 'none'"}
    checked = 0
    for page in [p for p, _ in HOSTILE_PAGES] + _random_pages(150):
        injected = transform(page)
        if injected == page:
            continue
        answers["/crm"], answers["/gw"] = (page, headers), (injected, headers)
        await chromium_page.goto("http://crm.test/crm", wait_until="domcontentloaded")
        _, crm = await chromium_page.evaluate(WIDGET_IN_DOM)
        await chromium_page.goto("http://crm.test/gw", wait_until="domcontentloaded")
        widgets, gateway = await chromium_page.evaluate(WIDGET_IN_DOM)
        assert (widgets, gateway) == (1, crm), page
        checked += 1
    assert checked > 60  # most pages had a safe place


# ---------------------------------------------------------------- item 7b: the CRM's CSP

EVIL = b'<script src="/uploads/evil.js"></script>'  # a same-origin file, e.g. an upload
CRM_INLINE = b"window.crmRan = true;"
CRM_HASH = "'sha256-" + base64.b64encode(hashlib.sha256(CRM_INLINE).digest()).decode() + "'"


def csp_page(nonce: str | None = None) -> bytes:
    attribute = f' nonce="{nonce}"'.encode() if nonce else b""
    return (
        b"<head></head><body><script"
        + attribute
        + b">"
        + CRM_INLINE
        + b"</script>"
        + EVIL
        + b"</body>"
    )


def rewritten(policy: str, page: bytes) -> tuple[bytes, list[str]]:
    headers = CIMultiDict({CSP: policy})
    body = transform(page, headers)
    return body, headers.getall(CSP)


def test_nonce_policy_admits_the_widget_by_its_nonce_unchanged() -> None:
    """A nonce-based script-src stays as it is; the widget's tags carry the page's nonce."""
    policy = "script-src 'nonce-r4nd0m'; style-src 'nonce-r4nd0m'; object-src 'none'"
    body, policies = rewritten(policy, csp_page("r4nd0m"))
    assert policies == [policy]
    assert widget_tags("r4nd0m") in body


@pytest.mark.parametrize(
    "policy",
    [
        f"script-src {CRM_HASH}",
        f"default-src 'none'; script-src {CRM_HASH} https://cdn.example",
        f"script-src {CRM_HASH}; style-src 'sha256-abc='",
        "script-src 'none'",
    ],
)
def test_hash_policy_gains_the_widget_url_never_self(policy: str) -> None:
    """A hash (or empty) allow-list gains the widget's exact URLs, and 'self' nowhere for code."""
    _, [after] = rewritten(policy, csp_page())
    scripts = after.split("script-src", 1)[1].split(";")[0].split()
    assert "http://crm.test/aliyun/softphone/widget.js" in scripts
    assert "'self'" not in scripts
    assert "'self'" not in after.split("style-src", 1)[-1].split(";")[0].split()


def test_strict_dynamic_with_hashes_gets_a_fresh_nonce_of_ours() -> None:
    """Under 'strict-dynamic' without a nonce, a new nonce per page admits the widget alone."""
    policy = f"script-src {CRM_HASH} 'strict-dynamic'"
    nonces = []
    for _ in range(2):
        body, [after] = rewritten(policy, csp_page())
        nonce = re.search(rb'nonce="([^"]+)"', body)
        assert nonce is not None
        assert after == f"script-src {CRM_HASH} 'strict-dynamic' 'nonce-{nonce[1].decode()}'"
        nonces.append(nonce[1])
    assert nonces[0] != nonces[1]


CSP_CASES = [
    ("script-src 'nonce-r4nd0m'", "r4nd0m"),
    (f"script-src {CRM_HASH}", None),
    (f"default-src 'self'; script-src {CRM_HASH}", None),
    ("script-src 'nonce-r4nd0m' 'strict-dynamic'", "r4nd0m"),
    (f"script-src {CRM_HASH} 'strict-dynamic'", None),
    (f"script-src {CRM_HASH}; style-src 'sha256-abc='", None),
]


@pytest.mark.browser
@pytest.mark.parametrize(("policy", "nonce"), CSP_CASES)
async def test_chromium_runs_the_widget_and_still_blocks_other_same_origin_scripts(
    chromium_page: Page, policy: str, nonce: str | None
) -> None:
    """Under the rewritten CSP the widget runs (and its CSS loads), a same-origin upload doesn't."""
    body, policies = rewritten(policy, csp_page(nonce))
    headers = {"Content-Type": "text/html", CSP: policies[0]}
    script = b"window.widgetRan = true;"
    js, css = {"Content-Type": "text/javascript"}, {"Content-Type": "text/css"}
    await _serve(
        chromium_page,
        {
            "/page": (body, headers),
            WIDGET_SCRIPT: (script, js),
            WIDGET_STYLE: (b"body { --ccc-widget: 1; }", css),
            "/uploads/evil.js": (b"window.evilRan = true;", js),
        },
    )
    await chromium_page.goto("http://crm.test/page", wait_until="load")
    ran = await chromium_page.evaluate(
        "() => [!!window.crmRan, !!window.widgetRan, !!window.evilRan,"
        " getComputedStyle(document.body).getPropertyValue('--ccc-widget').trim()]"
    )
    assert ran == [True, True, False, "1"]


# ---------------------------------------------------------------- item 3: Location

CRM = URL("http://crm.internal:8080")
PUBLIC = URL("https://crm.example.com")
_C0 = "".join(map(chr, range(0x21)))
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:")
_PORTS = {"http": 80, "https": 443}


def _host(host: str, port: int, scheme: str) -> str:
    return host if port == _PORTS[scheme] else f"{host}:{port}"


def browser_host(value: str, base: URL) -> str:
    """The host[:port] a browser's URL parser (WHATWG) takes `value` to, relative to `base`.

    Only what decides the host: edge C0/space trimmed, tab/newline removed, `\\` a `/` for
    http(s); `scheme:` other than http(s), or no host, gives "" (no http origin at all).
    """
    text = value.strip(_C0).translate(str.maketrans("", "", "\t\n\r"))
    scheme, rest = base.scheme, text
    found = _SCHEME.match(text)
    if found:
        scheme, rest = found.group()[:-1].lower(), text[found.end() :]
        if scheme not in _PORTS:
            return ""
    slashes = len(rest) - len(rest.lstrip("/\\"))
    # Another http(s) scheme always has an authority; the same scheme or none needs two slashes.
    if not (found and scheme != base.scheme) and slashes < 2:
        return _host(str(base.host), base.port or _PORTS[scheme], scheme)
    authority = re.split(r"[/\\?#]", rest[slashes:], maxsplit=1)[0]
    hostport = unquote(authority.rpartition("@")[2]).lower()
    host, _, port = hostport.rpartition(":") if not hostport.endswith("]") else (hostport, "", "")
    if not host:
        host, port = hostport, ""
    return _host(host, int(port) if port.isdigit() else _PORTS[scheme], scheme)


HOSTILE_LOCATIONS = [
    "http://crm.internal:8080/\t/evil.example/x",
    "http://crm.internal:8080/\t\\evil.example",
    "http://crm.internal:8080/\n/evil.example",
    "http://crm.internal:8080/\r\n\\\\evil.example",
    "http://crm.internal:8080\\\\evil.example",
    "http://crm.internal:8080\\/evil.example",
    "http://crm.internal:8080//evil.example",
    "http://crm.internal:8080/\\evil.example",
    " http://crm.internal:8080/\t/evil.example",
    "\x01http://crm.internal:8080/\t/\t/evil.example",
    "http://crm.internal:8080\t//evil.example",
    "http:evil.example",
    "http:evil.example:8080/x",
]


@pytest.mark.parametrize("value", HOSTILE_LOCATIONS)
def test_location_is_never_rewritten_into_an_off_site_redirect(value: str) -> None:
    """A CRM redirect to its own origin never becomes a path a browser reads as another host."""
    out = rewrite_location(value, CRM)
    assert browser_host(out, PUBLIC) in ("crm.example.com", "crm.internal:8080")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (" http://crm.internal:8080/next", "/next"),
        ("http://crm.internal:8080/a\tb?c", "/ab?c"),
        ("http://crm.internal:8080\\next", "\\next"),
        ("http:\\\\crm.internal:8080/next", "/next"),
        # relative on the CRM's http origin, a host on the gateway's https one
        ("http:evil.example", "./evil.example"),
        ("HTTP:javascript:alert(1)", "./javascript:alert(1)"),
        ("http:/next", "/next"),
        ("http:?q=1", "?q=1"),
    ],
)
def test_location_is_read_the_way_a_browser_reads_it(value: str, expected: str) -> None:
    """Read as a browser reads it (edges, tabs, `\\`, slashes); `http:x` keeps its meaning."""
    assert rewrite_location(value, CRM) == expected


_LOCATION_BITS = st.sampled_from(
    ["/", "\\", "\t", "\n", "\r", " ", "evil.example", "@", "?", "#", ".", "..", "%2f", ":",
     "x", "crm.internal", ":8080", "\x00", "\x1f", "http:", "https:"]
)  # fmt: skip
_LOCATIONS = st.tuples(
    st.sampled_from(
        [
            "http://crm.internal:8080",
            "HTTP://crm.internal:8080",
            " http://crm.internal:8080",
            "http://crm.internal:8080\t",
            "http://crm.internal",
            "",
            "/",
            "http:",
            "https:",
        ]
    ),
    st.lists(_LOCATION_BITS, max_size=8).map("".join),
).map("".join)


@settings(max_examples=500, deadline=None)
@given(_LOCATIONS)
def test_rewritten_locations_stay_on_the_gateway(value: str) -> None:
    """A rewritten Location resolves to the gateway; an unrewritten one goes where the CRM's did."""
    out = rewrite_location(value, CRM)
    target = browser_host(out, PUBLIC)
    if out != value:
        assert target == "crm.example.com"
    else:
        # "": no http(s) URL at all (`javascript:`, or no host), so no navigation
        assert target in ("crm.example.com", "", browser_host(value, CRM))


DISGUISED_LOCATIONS = [
    "/\t\\evil.example",
    "/\\evil.example/x",
    "\\\\evil.example",
    "/\n/evil.example",
    " //evil.example",
    "https:\\\\evil.example/",
    "http://crm.internal:8080/\t/evil.example/x",
]


@pytest.mark.parametrize("value", DISGUISED_LOCATIONS)
def test_a_disguised_off_site_location_is_refused(value: str) -> None:
    """A Location that reads as another site only once a browser cleans it up is never emitted."""
    with pytest.raises(DisguisedLocation):
        check_location(rewrite_location(value, CRM))


@pytest.mark.parametrize(
    "value",
    ["https://sso.example/login?next=%2F", "//cdn.example/a", "/next", "next", "/a\\b", "/a\tb"],
)
def test_plain_and_same_site_locations_pass(value: str) -> None:
    """A plain third-party URL (the CRM's visible choice) and same-site paths pass as they are."""
    assert check_location(value) == value


@settings(max_examples=500, deadline=None)
@given(_LOCATIONS)
def test_an_emitted_location_is_on_the_site_or_plainly_elsewhere(value: str) -> None:
    """Whatever the gateway emits resolves to the gateway or the CRM's own origin, or is a plain
    URL that names its other site without disguise."""
    try:
        out = check_location(rewrite_location(value, CRM))
    except DisguisedLocation:
        return
    if browser_host(out, PUBLIC) not in ("crm.example.com", "crm.internal:8080", ""):
        assert out.strip(_C0).translate(str.maketrans("", "", "\t\n\r")).replace("\\", "/") == out


async def _disguised(request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": "/\t\\evil.example/x"})


async def test_a_crm_redirect_in_disguise_is_a_502(
    make_stack: MakeStack, aiohttp_server: AiohttpServer
) -> None:
    """Through the real gateway: the CRM's disguised off-site redirect becomes a 502 page."""
    app = web.Application()
    app.router.add_get("/go", _disguised)
    crm = await aiohttp_server(app)
    stack = await make_stack(upstream={"url": URL(f"http://127.0.0.1:{crm.port}")})
    browser = stack.browser()
    try:
        async with browser.client.get(browser.url("/go"), allow_redirects=False) as response:
            assert response.status == 502
            assert "Location" not in response.headers
            assert "evil.example" not in await response.text()
    finally:
        await browser.close()


# ---------------------------------------------------------------- item 7d: return_to

RESOLVED_OFF_PATH = [
    "/%3F/../..//evil.example",
    "/%3f/%2e%2e/%2e%2e//evil.example",
    "/%23/../..//evil.example",
    "/%253F/../..//evil.example",
    "/%3F/..%2F..%2F%2Fevil.example",
    "/a%3Fb/./..//evil.example",
]


@pytest.mark.parametrize("value", RESOLVED_OFF_PATH)
def test_return_to_with_dot_segments_behind_an_encoded_query_mark_is_refused(value: str) -> None:
    """An encoded `?` or `#` does not hide dot segments that a browser resolves to `//evil`."""
    assert safe_return_to(value) == DEFAULT_RETURN_TO


def test_return_to_queries_are_not_resolved_and_stay() -> None:
    """Dot segments in a real query are not a path: such a return_to is kept."""
    assert safe_return_to("/search?next=/../..//x") == "/search?next=/../..//x"
    assert safe_return_to("/a%3F//b") == "/a%3F//b"  # an encoded `?` in a single path segment


# ---------------------------------------------------------------- item 7e: HSTS, Clear-Site-Data


def _response(*pairs: tuple[str, str]) -> list[tuple[str, str]]:
    return response_header_pairs(
        CIMultiDict(pairs), origin=CRM, request_id="r", is_gateway_cookie=lambda n: False
    )


def test_crm_hsts_never_reaches_the_browser() -> None:
    """The CRM's Strict-Transport-Security (say max-age=0) is dropped; the gateway sets its own."""
    pairs = _response(("Strict-Transport-Security", "max-age=0"), ("X-Other", "1"))
    assert [name for name, _ in pairs] == ["X-Other", "X-Request-Id"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"cookies"', None),
        ('"*"', '"cache", "storage", "executionContexts"'),
        ('"cache", "cookies"', '"cache"'),
        ('"storage", "COOKIES", "cache"', '"storage", "cache"'),
        ('"cache", "*"', '"cache", "storage", "executionContexts"'),
        ('"storage"', '"storage"'),
    ],
)
def test_clear_site_data_never_clears_cookies(value: str, expected: str | None) -> None:
    """`"cookies"` is dropped and `"*"` becomes the other types; nothing left, no header."""
    pairs = dict(_response(("Clear-Site-Data", value)))
    assert pairs.get("Clear-Site-Data") == expected


async def _logout(request: web.Request) -> web.Response:
    headers = {"Strict-Transport-Security": "max-age=0", "Clear-Site-Data": '"*"'}
    return web.Response(text="bye", headers=headers)


@pytest.fixture
async def logout_crm(aiohttp_server: AiohttpServer) -> TestServer:
    app = web.Application()
    app.router.add_get("/logout", _logout)
    return await aiohttp_server(app)


async def test_crm_logout_cannot_switch_off_hsts_or_clear_gateway_cookies(
    make_stack: MakeStack, logout_crm: TestServer
) -> None:
    """Through the real gateway: its own HSTS stands, and the CRM's "*" clears all but cookies."""
    stack = await make_stack(upstream={"url": URL(f"http://127.0.0.1:{logout_crm.port}")})
    browser = stack.browser()
    try:
        async with browser.client.get(browser.url("/logout")) as response:
            hsts = response.headers.getall("Strict-Transport-Security")
            cleared = response.headers.getall("Clear-Site-Data")
    finally:
        await browser.close()
    assert hsts == ["max-age=31536000; includeSubDomains"]
    assert cleared == ['"cache", "storage", "executionContexts"']
