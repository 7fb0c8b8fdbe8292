"""The softphone page, its static files and the sign-in popup's last page."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from html.parser import HTMLParser
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from stack import Stack
from yarl import URL

from ccc_gateway.auth.login_state import COOKIE_NAME as LOGIN_COOKIE
from ccc_gateway.config.load import ConfigError, parse_config
from ccc_gateway.softphone.views import json_for_html, page_config, source_origin

MakeStack = Callable[..., Awaitable[Stack]]
SDK = {
    "sdk_scripts": ("https://cdn.example/sdk/a.js", "//g.alicdn.com/b.js", "/local/c.js"),
    "sdk_styles": ("https://styles.example/s.css",),
    "screen_pop_url": "/crm/find?phone={caller}",
    "screen_pop_target": "new-tab",
    "ajax_method": "get",
}


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.data: dict[str, str] = {}
        self._open: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._open = dict(attrs).get("id")

    def handle_data(self, data: str) -> None:
        if self._open:
            self.data[self._open] = self.data.get(self._open, "") + data

    def handle_endtag(self, tag: str) -> None:
        self._open = None


def parse(html: str) -> _Tags:
    parser = _Tags()
    parser.feed(html)
    return parser


def directives(csp: str) -> dict[str, list[str]]:
    return {p.split()[0]: p.split()[1:] for p in csp.split(";") if p.strip()}


async def test_page_loads_sdk_then_softphone_js_with_json_config(make_stack: MakeStack) -> None:
    """SDK styles and scripts in order, then softphone.js; config in a non-executable element."""
    stack = await make_stack(softphone=SDK)
    browser = stack.browser()
    try:
        async with browser.client.get(browser.url("/aliyun/softphone")) as response:
            assert response.status == 200
            html = await response.text()
    finally:
        await browser.close()
    page = parse(html)
    scripts = [a for tag, a in page.tags if tag == "script"]
    assert [a.get("src") for a in scripts if a.get("src")] == [
        *SDK["sdk_scripts"],
        "/aliyun/softphone/softphone.js",
    ]
    inline = [a for a in scripts if not a.get("src")]
    assert inline == [{"type": "application/json", "id": "ccc-config"}]  # data, not code
    styles = [a["href"] for tag, a in page.tags if tag == "link"]
    assert styles == ["https://styles.example/s.css", "/aliyun/softphone/softphone.css"]
    assert json.loads(page.data["ccc-config"]) == {
        "instanceId": "ccc-demo-instance",
        "ajaxPath": "/aliyun/ccc/api",
        "ajaxMethod": "get",
        "ajaxHeaders": {"X-CCC-Softphone": "1"},
        "header": True,
        "signInUrl": "/aliyun/auth?return_to=/aliyun/softphone/signed-in",
        "screenPop": {"url": "/crm/find?phone={caller}", "target": "new-tab"},
        "confirmDial": True,
    }
    ids = {a.get("id") for _, a in page.tags}
    assert {"ccc-signin", "ccc-resignin", "ccc-refresh", "ccc-signout", "ccc-workbench"} <= ids
    assert {"ccc-confirm", "ccc-confirm-number", "ccc-confirm-call", "ccc-confirm-cancel"} <= ids
    assert not any(k.startswith("on") for _, a in page.tags for k in a)  # no inline handlers


async def test_page_headers(make_stack: MakeStack) -> None:
    """CSP admits only self and the SDK origins; microphone for self; never cached."""
    stack = await make_stack(softphone=SDK)
    browser = stack.browser()
    try:
        async with browser.client.get(browser.url("/aliyun/softphone")) as response:
            headers = response.headers
    finally:
        await browser.close()
    csp = directives(headers["Content-Security-Policy"])
    assert csp["script-src"] == ["'self'", "https://cdn.example", "https://g.alicdn.com"]
    assert csp["style-src"] == ["'self'", "https://styles.example"]
    assert csp["connect-src"] == ["'self'", "wss:", "https:"]
    assert csp["frame-ancestors"] == ["'self'"]
    assert not any("unsafe" in s for sources in csp.values() for s in sources)
    assert headers["Permissions-Policy"] == "microphone=(self)"
    assert headers["Cache-Control"] == "no-store"


async def test_page_works_signed_out_and_session_answers(stack: Stack) -> None:
    """The page needs no sign-in to load; /aliyun/session says signed out with 200."""
    browser = stack.browser()
    try:
        async with browser.client.get(browser.url("/aliyun/softphone")) as response:
            assert response.status == 200
        assert (await browser.session())["signedIn"] is False
    finally:
        await browser.close()


async def test_signed_in_page_runs_only_its_static_script(stack: Stack) -> None:
    """The popup's last page has no inline code and a script-src 'self' policy."""
    browser = stack.browser()
    try:
        async with browser.client.get(browser.url("/aliyun/softphone/signed-in")) as response:
            html = await response.text()
            csp = directives(response.headers["Content-Security-Policy"])
            assert response.headers["Cache-Control"] == "no-store"
        async with browser.client.get(browser.url("/aliyun/softphone/signed-in.js")) as response:
            script = await response.text()
    finally:
        await browser.close()
    scripts = [a for tag, a in parse(html).tags if tag == "script"]
    assert scripts == [{"src": "/aliyun/softphone/signed-in.js"}]
    assert csp["script-src"] == ["'self'"]
    assert "postMessage({ type: 'ccc:signed-in' }, location.origin)" in script


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("widget.js", "text/javascript"),
        ("widget.css", "text/css"),
        ("softphone.js", "text/javascript"),
        ("softphone.css", "text/css"),
    ],
)
async def test_static_files_revalidate(stack: Stack, name: str, content_type: str) -> None:
    """Static files carry their type, nosniff and an ETag that answers 304 when unchanged."""
    browser = stack.browser()
    try:
        url = browser.url(f"/aliyun/softphone/{name}")
        async with browser.client.get(url) as response:
            assert response.status == 200
            assert response.content_type == content_type
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            etag = response.headers["ETag"]
        async with browser.client.get(url, headers={"If-None-Match": etag}) as response:
            assert response.status == 304
    finally:
        await browser.close()


async def test_unknown_static_file_is_404(stack: Stack) -> None:
    """Only the listed files are served; nothing else under /aliyun/softphone/ reaches the CRM."""
    browser = stack.browser()
    try:
        async with browser.client.get(browser.url("/aliyun/softphone/../app.py")) as response:
            assert response.status == 404
        async with browser.client.get(browser.url("/aliyun/softphone/nope.js")) as response:
            assert response.status == 404
    finally:
        await browser.close()


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://g.alicdn.com/x/y.js", "https://g.alicdn.com"),
        ("//g.alicdn.com/x.js", "https://g.alicdn.com"),
        ("https://127.0.0.1:9443/_emulator/sdk/workbenchSdk.js", "https://127.0.0.1:9443"),
        ("/static/sdk.js", None),
        ("javascript:alert(1)", None),
    ],
)
def test_source_origin(url: str, origin: str | None) -> None:
    """SDK URLs become CSP origins; same-origin paths and other schemes add nothing."""
    assert source_origin(url) == origin


def test_json_for_html_cannot_close_the_element() -> None:
    """`</script>` and `<!--` inside config values are escaped yet decode to the same value."""
    value = {"url": "/x/</script><script>alert(1)</script>/<!--{caller}&"}
    text = json_for_html(value)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == value


async def test_alibaba_unreachable_keeps_crm_and_session_working(stack: Stack) -> None:
    """With Alibaba down the CRM pages, the widget, the softphone page and session still answer."""
    browser = stack.browser()
    try:
        await browser.login_crm()
        await browser.sign_in()
        await stack.emulator.close()  # Alibaba (OAuth and CCC) is gone from here on
        async with browser.client.get(
            browser.url("/customers"), headers={"Accept": "text/html"}
        ) as response:
            assert response.status == 200
            assert "/aliyun/softphone/widget.js" in await response.text()
        async with browser.client.get(browser.url("/aliyun/softphone")) as response:
            assert response.status == 200
        assert (await browser.session())["signedIn"] is True  # no network needed to answer
        api = await browser.post(
            "/aliyun/ccc/api?action=ListSkillGroupsOfUser",
            data={"request": json.dumps({"instanceId": "ccc-demo-instance"})},
        )
        assert api.status in (502, 504)
        assert (await api.json())["errorCode"]
    finally:
        await browser.close()


def test_confirm_dial_is_on_by_default_and_reaches_the_page(tmp_path: Path) -> None:
    """Click-to-call waits for the agent unless `softphone.confirm_dial: false` says otherwise."""
    for name in ("tls.crt", "tls.key"):
        (tmp_path / name).write_text("pem")

    def config_text(extra: str) -> str:
        return (
            f'tls: {{cert: "{tmp_path / "tls.crt"}", key: "{tmp_path / "tls.key"}"}}\n'
            "aliyun: {client_id: '1', client_secret: s,"
            " redirect_uri: https://crm.example/aliyun/auth/callback}\n"
            "ccc: {instance_id: inst-1}\n"
            f'session: {{keys: ["{Fernet.generate_key().decode()}"]}}\n{extra}'
        )

    default = parse_config(config_text(""), {})
    assert default.softphone.confirm_dial is True
    assert page_config(default)["confirmDial"] is True
    off = parse_config(config_text("softphone: {confirm_dial: false}"), {})
    assert page_config(off)["confirmDial"] is False
    with pytest.raises(ConfigError) as info:
        parse_config(config_text("softphone: {confirm_dial: sometimes}"), {})
    assert any(p.startswith("softphone.confirm_dial:") for p in info.value.problems)


async def test_return_from_the_crm_login_continues_by_page_not_redirect(stack: Stack) -> None:
    """After the CRM login /aliyun/auth moves on to Alibaba by meta refresh (no form-action)."""
    browser = stack.browser()
    try:
        async with browser.client.get(
            browser.url("/aliyun/auth?return_to=/aliyun/softphone/signed-in"),
            allow_redirects=False,
        ) as detour:
            assert detour.status == 302
            back = URL(URL(detour.headers["Location"]).query["next"])
        assert back.path == "/aliyun/auth" and back.query["via"] == "crm-login"
        assert back.query["return_to"] == "/aliyun/softphone/signed-in"
        await browser.login_crm()
        async with browser.client.get(browser.url(str(back)), allow_redirects=False) as page:
            assert page.status == 200 and page.content_type == "text/html"
            html = await page.text()
            assert LOGIN_COOKIE in page.cookies  # the login state, as with the redirect
        target = html.split('http-equiv="refresh" content="0;url=', 1)[1].split('"', 1)[0]
        authorize = URL(target.replace("&amp;", "&"))
        assert authorize.path == "/oauth2/v1/auth" and authorize.query["state"]
        answer = await browser.authorize(authorize)
        async with browser.client.get(
            URL(answer.headers["Location"]), allow_redirects=False
        ) as done:
            assert done.status == 303
            assert done.headers["Location"] == "/aliyun/softphone/signed-in"
        assert (await browser.session())["crmUser"] == "edward"
        # Without the marker (an ordinary start) the answer stays a plain redirect.
        assert (await browser.start_sign_in()).path == "/oauth2/v1/auth"
    finally:
        await browser.close()
