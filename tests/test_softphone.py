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
from ccc_gateway.softphone.views import json_for_html, page_config, page_policy, source_origin

MakeStack = Callable[..., Awaitable[Stack]]
SDK = {
    "sdk": "v1",
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
    """i18n.js first, SDK styles and scripts in order, then numbers.js, softphone.js and
    call_log.js; config as data."""
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
        "/aliyun/softphone/i18n.js",  # window.cccI18n, the other scripts' words
        *SDK["sdk_scripts"],
        "/aliyun/softphone/numbers.js",  # the screen-pop variables (docs/softphone.md)
        "/aliyun/softphone/softphone.js",
        "/aliyun/softphone/call_log.js",  # issue 19: the call log after the softphone
    ]
    inline = [a for a in scripts if not a.get("src")]
    assert inline == [{"type": "application/json", "id": "ccc-config"}]  # data, not code
    styles = [a["href"] for tag, a in page.tags if tag == "link" and a.get("rel") == "stylesheet"]
    assert styles == ["https://styles.example/s.css", "/aliyun/softphone/softphone.css"]
    assert json.loads(page.data["ccc-config"]) == {
        "sdk": "v1",
        "sdkGlobal": "WorkbenchSdk",
        "options": {
            "instanceId": "ccc-demo-instance",
            "ajaxPath": "/aliyun/ccc/api",
            "ajaxMethod": "get",
            "ajaxHeaders": {"X-CCC-Softphone": "1"},
            "header": True,
        },
        "signInUrl": "/aliyun/auth?return_to=/aliyun/softphone/signed-in",
        "screenPop": {"url": "/crm/find?phone={caller}", "target": "new-tab"},
        "confirmDial": True,
        "notifications": True,
        # Issue 19: without crm_events (and with classic CCC) the call log only has defaults.
        "callLog": {
            "events": False,
            "form": False,
            "outcomes": ["resolved", "callback", "no_answer", "other"],
            "afterCallSeconds": 120.0,
            "recent": False,
        },
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


CCC2 = {"version": "2020-07-01", "instance_id": "ccc-demo", "region": "cn-hangzhou"}
CDN = "https://g.alicdn.com/cloudcallcenter/web-workbench-sdk/3.6.1"
V3 = {
    "sdk": "v3",
    "sdk_scripts": (f"{CDN}/ui.min.js",),
    "sdk_styles": (f"{CDN}/ui.min.css",),
    "screen_pop_url": "/crm/find?phone={caller}&to={callee}&type={callType}&job={jobId}",
}


async def page_of(stack: Stack) -> tuple[dict[str, object], dict[str, list[str]]]:
    """The softphone page's JSON configuration and its CSP directives."""
    browser = stack.browser()
    try:
        async with browser.client.get(browser.url("/aliyun/softphone")) as response:
            assert response.status == 200
            config = json.loads(parse(await response.text()).data["ccc-config"])
            csp = directives(response.headers["Content-Security-Policy"])
    finally:
        await browser.close()
    return config, csp


@pytest.mark.parametrize(("sdk", "sdk_global"), [("v3", "CCCWorkbenchSDK"), ("v2", "WorkbenchSdk")])
async def test_ccc2_page_constructs_its_generation(
    make_stack: MakeStack, sdk: str, sdk_global: str
) -> None:
    """In 2.0 the page names its SDK's global and passes regionId and the gateway's ajax options."""
    stack = await make_stack(ccc=CCC2, softphone={**V3, "sdk": sdk})
    config, _ = await page_of(stack)
    assert config["sdk"] == sdk and config["sdkGlobal"] == sdk_global
    assert config["options"] == {
        "instanceId": "ccc-demo",
        "regionId": "cn-hangzhou",
        "ajaxPath": "/aliyun/ccc/api",
        "ajaxMethod": "post",
        "ajaxHeaders": {"X-CCC-Softphone": "1"},
        "header": True,
    }
    assert config["screenPop"] == {"url": V3["screen_pop_url"], "target": "same-tab"}


async def test_sdk_options_add_to_and_replace_the_constructor_options(
    make_stack: MakeStack,
) -> None:
    """softphone.sdk_options are merged over the page's own options (UNVERIFIED 3.x options)."""
    extra = {"ajaxOrigin": "https://crm.example", "header": False, "afterCallRule": "manual"}
    stack = await make_stack(ccc=CCC2, softphone={**V3, "sdk_options": extra})
    config, _ = await page_of(stack)
    options = config["options"]
    assert isinstance(options, dict)
    assert options["ajaxOrigin"] == "https://crm.example"
    assert options["header"] is False and options["afterCallRule"] == "manual"
    assert options["ajaxPath"] == "/aliyun/ccc/api"


@pytest.mark.parametrize("sdk", ["v2", "v3"])
async def test_ccc2_csp_admits_alicdn_and_aliyuncs_only(make_stack: MakeStack, sdk: str) -> None:
    """2.x/3.x: scripts and styles from g.alicdn.com, websockets/HTTPS on *.aliyuncs.com only."""
    stack = await make_stack(ccc=CCC2, softphone={**V3, "sdk": sdk})
    _, csp = await page_of(stack)
    assert csp["script-src"] == ["'self'", "https://g.alicdn.com"]
    assert csp["style-src"] == ["'self'", "https://g.alicdn.com"]
    assert csp["connect-src"] == ["'self'", "wss://*.aliyuncs.com:*", "https://*.aliyuncs.com:*"]
    assert csp["media-src"] == ["'self'", "blob:", "https://g.alicdn.com"]
    assert csp["default-src"] == ["'self'"] and csp["object-src"] == ["'none'"]
    assert not any("unsafe" in s for sources in csp.values() for s in sources)


async def test_classic_csp_keeps_run_time_websocket_hosts(make_stack: MakeStack) -> None:
    """Classic 1.x learns its WebRTC host from RequestLoginInfo: any wss/https host."""
    stack = await make_stack(softphone=SDK)
    _, csp = await page_of(stack)
    assert csp["connect-src"] == ["'self'", "wss:", "https:"]
    assert csp["media-src"] == ["'self'", "blob:", "https:"]


async def test_csp_sources_extend_named_directives(make_stack: MakeStack) -> None:
    """softphone.csp_sources adds sources (a stand-in SDK's host, inline styles) where named."""
    extra = {"connect-src": ("wss://sdk.example:9443",), "style-src": ("'unsafe-inline'",)}
    stack = await make_stack(ccc=CCC2, softphone={**V3, "csp_sources": extra})
    _, csp = await page_of(stack)
    assert csp["connect-src"][-1] == "wss://sdk.example:9443"
    assert csp["style-src"] == ["'self'", "https://g.alicdn.com", "'unsafe-inline'"]
    assert csp["script-src"] == ["'self'", "https://g.alicdn.com"]


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
        ("i18n.js", "text/javascript"),
        ("widget.css", "text/css"),
        ("softphone.js", "text/javascript"),
        ("softphone.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
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


def _config_text(tmp_path: Path, extra: str) -> str:
    for name in ("tls.crt", "tls.key"):
        (tmp_path / name).write_text("pem")
    return (
        f'tls: {{cert: "{tmp_path / "tls.crt"}", key: "{tmp_path / "tls.key"}"}}\n'
        "aliyun: {client_id: '1', client_secret: s,"
        " redirect_uri: https://crm.example/aliyun/auth/callback}\n"
        "ccc: {instance_id: inst-1}\n"
        f'session: {{keys: ["{Fernet.generate_key().decode()}"]}}\n{extra}'
    )


def _problems(tmp_path: Path, extra: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(_config_text(tmp_path, extra), {})
    return list(info.value.problems)


def test_screen_pop_url_knows_the_four_call_variables(tmp_path: Path) -> None:
    """{caller}, {callee}, {callType}, {jobId} are accepted; any other variable is a problem."""
    url = "/c?from={caller}&to={callee}&t={callType}&job={jobId}"
    config = parse_config(_config_text(tmp_path, f"softphone: {{screen_pop_url: '{url}'}}"), {})
    assert config.softphone.screen_pop_url == url
    only_job = parse_config(_config_text(tmp_path, "softphone: {screen_pop_url: '/j/{jobId}'}"), {})
    assert only_job.softphone.screen_pop_url == "/j/{jobId}"
    problems = _problems(tmp_path, "softphone: {screen_pop_url: '/c/{caller}/{contactId}'}")
    assert any(p.startswith("softphone.screen_pop_url:") and "{contactId}" in p for p in problems)
    problems = _problems(tmp_path, "softphone: {screen_pop_url: /customers}")
    assert any(p.startswith("softphone.screen_pop_url: must contain") for p in problems)


@pytest.mark.parametrize(
    ("extra", "sdk", "connect"),
    [
        ("", "v3", ["'self'", "wss://*.aliyuncs.com:*", "https://*.aliyuncs.com:*"]),
        (
            "softphone: {sdk: v2}\n",
            "v2",
            ["'self'", "wss://*.aliyuncs.com:*", "https://*.aliyuncs.com:*"],
        ),
        ("ccc: {instance_id: i, version: '2017-07-05'}\n", "v1", ["'self'", "wss:", "https:"]),
    ],
)
def test_default_sdk_files_give_the_generations_csp(
    tmp_path: Path, extra: str, sdk: str, connect: list[str]
) -> None:
    """With the default files on Alibaba's CDN each generation's CSP names g.alicdn.com only."""
    text = _config_text(tmp_path, extra)
    if extra.startswith("ccc:"):
        text = text.replace("ccc: {instance_id: inst-1}\n", "")
    config = parse_config(text, {})
    assert config.softphone.sdk == sdk
    csp = directives(page_policy(config))
    assert csp["script-src"] == ["'self'", "https://g.alicdn.com"]
    assert csp["style-src"] == ["'self'", "https://g.alicdn.com"]
    assert csp["connect-src"] == connect


def test_sdk_options_and_csp_sources_are_checked_by_key_path(tmp_path: Path) -> None:
    """Bad option names, unknown CSP directives and sources with separators are each reported."""
    good = parse_config(
        _config_text(
            tmp_path,
            "softphone:\n  sdk_options: {ajaxOrigin: 'https://x.example', width: 300}\n"
            "  csp_sources: {connect-src: ['wss://x.example:*']}\n",
        ),
        {},
    )
    assert good.softphone.sdk_options == {"ajaxOrigin": "https://x.example", "width": 300}
    assert good.softphone.csp_sources == {"connect-src": ("wss://x.example:*",)}
    problems = _problems(
        tmp_path,
        "softphone:\n  sdk_options: {dom: x, 'bad-name': 1, when: 2024-01-01}\n"
        "  csp_sources: {frame-src: ['*'], connect-src: ['a.example; script-src *']}\n",
    )
    for path in (
        "softphone.sdk_options.dom:",
        "softphone.sdk_options.bad-name:",
        "softphone.sdk_options.when:",
        "softphone.csp_sources.frame-src:",
        "softphone.csp_sources.connect-src:",
    ):
        assert any(p.startswith(path) for p in problems), (path, problems)


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
