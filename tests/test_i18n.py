"""Two languages everywhere a person looks (README "Languages"): catalogs, the language rule,
the pages in both languages, and a mechanical check that no visible string bypasses a catalog.
"""

from __future__ import annotations

import ast
import re
import string
from collections.abc import Callable, Mapping
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from stack import Stack

from ccc_gateway.emulator import i18n as emulator_i18n
from ccc_gateway.http.errors import Forbidden, NotAuthenticated
from ccc_gateway.http.middleware import request_context
from ccc_gateway.i18n import CATALOGS, pick_language
from ccc_gateway.keys import CONFIG
from ccc_gateway.softphone.views import I18N_MARK
from sample_crm import i18n as crm_i18n

ROOT = Path(__file__).resolve().parents[1]

# Every component's catalogs: (name, {language: catalog}).
COMPONENTS: list[tuple[str, Mapping[str, Mapping[str, str]]]] = [
    ("gateway", CATALOGS),
    ("sample_crm", crm_i18n.CATALOGS),
    ("emulator", emulator_i18n.CATALOGS),
]

# The language rule of each component (the boundaries forbid sharing it), as the gateway's.
RULES: dict[str, Callable[[str | None, str], str]] = {
    "gateway": pick_language,
    "sample_crm": crm_i18n.pick_language,
    "emulator": lambda header, configured: emulator_i18n.pick_language(header),
}


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


@pytest.mark.parametrize(("name", "catalogs"), COMPONENTS, ids=[c[0] for c in COMPONENTS])
def test_every_key_exists_in_both_languages_with_the_same_placeholders(
    name: str, catalogs: Mapping[str, Mapping[str, str]]
):
    """A key in one language and not the other, or a {value} one side lacks, is a failure."""
    assert set(catalogs) == {"en", "zh-CN"}, name
    english, chinese = catalogs["en"], catalogs["zh-CN"]
    assert sorted(set(english) ^ set(chinese)) == [], name
    for key, text in english.items():
        assert placeholders(text) == placeholders(chinese[key]), (name, key)
        assert text.strip() and chinese[key].strip(), (name, key)


@pytest.mark.parametrize(("name", "catalogs"), COMPONENTS, ids=[c[0] for c in COMPONENTS])
def test_chinese_catalogs_are_chinese(name: str, catalogs: Mapping[str, Mapping[str, str]]):
    """Nearly every Chinese entry has Chinese characters (not an English copy left behind)."""
    han = re.compile(r"[\u4e00-\u9fff]")
    untranslated = [k for k, v in catalogs["zh-CN"].items() if not han.search(v)]
    # Allowed without Han characters: brand names the product keeps as they are.
    assert untranslated == [], (name, untranslated)


RULE_CASES = [
    ("zh-CN,zh;q=0.9,en;q=0.8", "auto", "zh-CN"),
    ("zh-TW", "auto", "zh-CN"),
    ("ZH", "auto", "zh-CN"),
    ("en-US,en;q=0.9,zh-CN;q=0.8", "auto", "en"),
    ("fr-FR, zh;q=0.8, en;q=0.5", "auto", "zh-CN"),  # French first: the next choice wins
    ("en;q=0.2, zh;q=0.7", "auto", "zh-CN"),  # by q-value, not by order
    ("zh;q=0, en", "auto", "en"),  # q=0: "not this one"
    ("de, fr", "auto", "en"),
    ("", "auto", "en"),
    (None, "auto", "en"),
    (";;,,q=x", "auto", "en"),
    ("zh-CN", "en", "en"),
    ("en-US", "zh-CN", "zh-CN"),
]


@pytest.mark.parametrize(
    ("name", "header", "configured", "expected"),
    [
        (name, *case)
        for name in RULES
        for case in RULE_CASES
        # The emulator has no setting: it always follows the browser, as Alibaba's page does.
        if name != "emulator" or case[1] == "auto"
    ],
)
def test_language_rule(name: str, header: str | None, configured: str, expected: str):
    """ui.language wins unless auto; auto takes the browser's preferred of zh* and en*."""
    assert RULES[name](header, configured) == expected


# ---- the mechanical check: no visible text outside the catalogs ----

# Modules that build what a person reads. Their markup literals may hold tags and attributes
# but no words; the words come from the catalogs.
MARKUP_MODULES = [
    *sorted(
        p
        for p in (ROOT / "sample_crm").glob("*.py")
        if p.name not in {"i18n.py", "seed_data.py", "__main__.py", "db.py"}  # db.py: SQL
    ),
    ROOT / "ccc_gateway/emulator/pages.py",
    ROOT / "ccc_gateway/emulator/ring_page.py",
    ROOT / "ccc_gateway/http/pages.py",
    ROOT / "ccc_gateway/auth/views.py",
    ROOT / "ccc_gateway/softphone/views.py",
]
# Functions whose text arguments a person reads: literals there must be catalog keys.
UI_CALLS = {"page", "render", "error_response", "_signin_page", "_retry_page", "say", "text", "t"}
KEY = re.compile(r"[a-z_]+(\.[A-Za-z0-9_]+)+")
TAG = re.compile(r"<[^<>]*>")
MARKUP = re.compile(r"<[A-Za-z/!]")
TAG_TAIL = re.compile(r"^[\w\s=\"'/-]*>")  # ' required>': the end of a tag
SCRIPT = re.compile(r"<(script|style)\b[^>]*>.*?</\1>", re.S)
WORD = re.compile(r"[^\W\d_]{2,}")
# Words that are not language: entity names and the CSS inside the pages' <style>.
NOT_WORDS = re.compile(r"&[a-z]+;|\{[^{}]*\}|[a-z-]+:[^;{}]*;?")


def _literal_text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "\x00"
            for v in node.values
        )
    return None


def visible_words(markup: str) -> list[str]:
    """Words outside the tags of a markup fragment (partial tags at either end count as tags)."""
    if not (MARKUP.search(markup) or TAG_TAIL.match(markup)):
        return []  # not markup (an arrow function's => is no tag)
    text = SCRIPT.sub(" ", markup)  # code, not text
    text = TAG.sub(" ", text)
    text = re.sub(r"^[^<>]*>", " ", text)  # the end of a tag begun in an earlier fragment
    text = re.sub(r"<[^<>]*$", " ", text)  # a tag continued in a later fragment
    if "{" in text and "}" in text and ";" in text:  # a stylesheet
        text = NOT_WORDS.sub(" ", text)
    return WORD.findall(NOT_WORDS.sub(" ", text))


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def bypasses(source: str) -> list[str]:
    """Visible text written into code: words in markup literals, sentences passed to UI calls."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)
        if isinstance(node, ast.Call):
            name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
            for arg in node.args if name in UI_CALLS else ():
                text = _literal_text(arg)
                if text is not None and not KEY.fullmatch(text):
                    found.append(f"line {node.lineno}: {name}({text!r})")
    for node in ast.walk(tree):
        text = _literal_text(node)
        if text is None or id(node) in skip:
            continue
        words = visible_words(text)
        if words:
            found.append(f"line {getattr(node, 'lineno', '?')}: {words} in {text[:60]!r}")
    return found


@pytest.mark.parametrize("path", MARKUP_MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_visible_text_bypasses_the_catalog(path: Path):
    """Markup in these modules carries no words of its own, and UI calls get catalog text."""
    assert bypasses(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "source",
    [
        "body = '<h1>Welcome</h1>'",
        "body = f'<p>{esc(x)} customers</p>'",
        "render(request, 'Customers', body)",
        "body = ('<label for=\"u\">' 'User name</label>')",
    ],
)
def test_the_check_catches_a_raw_english_string(source: str):
    """The check is not vacuous: a raw string added to markup or a UI call fails it."""
    assert bypasses(source) != []


@pytest.mark.parametrize(
    "source",
    [
        "body = f'<h1>{esc(t(request, \"home.title\"))}</h1>'",
        'body = \'<input type="password" autocomplete="current-password" required>\'',
        "render(request, t(request, 'home.title'), body)",
    ],
)
def test_the_check_passes_catalog_text(source: str):
    """Tags, attributes and catalog look-ups are not mistaken for visible text."""
    assert bypasses(source) == []


# ---- the pages, in both languages ----

HAN = re.compile(r"[\u4e00-\u9fff]")


def _gateway_app(language: str) -> web.Application:
    app = web.Application(middlewares=[request_context()])
    app[CONFIG] = SimpleNamespace(ui=SimpleNamespace(language=language))  # type: ignore[misc]

    async def needs_sign_in(request: web.Request) -> web.Response:
        raise NotAuthenticated(login="/aliyun/auth")

    async def refused(request: web.Request) -> web.Response:
        raise Forbidden("Cross-site request refused.", error_code="CrossSiteRequest")

    app.router.add_get("/needs", needs_sign_in)
    app.router.add_get("/refused", refused)
    return app


async def _get(app: web.Application, path: str, **headers: str) -> tuple[int, str, Any]:
    async with TestClient(TestServer(app)) as client:
        async with client.get(path, headers=headers) as response:
            return response.status, await response.text(), response.headers


@pytest.mark.parametrize(
    ("accept", "configured", "lang", "words"),
    [
        ("zh-CN,zh;q=0.9", "auto", "zh-CN", ["需要登录", "登录阿里云", "请求编号"]),
        ("en-US", "auto", "en", ["Sign-in needed", "Sign in to Alibaba Cloud", "Request id"]),
        ("en-US", "zh-CN", "zh-CN", ["需要登录"]),
        ("zh-CN", "en", "en", ["Sign-in needed"]),
    ],
)
async def test_gateway_error_page_speaks_the_chosen_language(
    accept: str, configured: str, lang: str, words: list[str]
):
    """The gateway's own error page follows ui.language, else Accept-Language."""
    headers = {"Accept": "text/html", "Accept-Language": accept}
    status, body, response_headers = await _get(_gateway_app(configured), "/needs", **headers)
    assert status == 401 and f"<html lang={lang}>" in body
    assert response_headers["Content-Language"] == lang
    assert '<link rel="icon" href="/aliyun/softphone/favicon.svg"' in body
    for word in words:
        assert word in body


async def test_chinese_error_page_translates_by_code_and_keeps_the_english_as_detail():
    """A known errorCode has its own Chinese sentence; the English message stays as small print."""
    headers = {"Accept": "text/html", "Accept-Language": "zh"}
    _, body, _ = await _get(_gateway_app("auto"), "/refused", **headers)
    assert "此请求来自其他网站，已被拒绝。" in body and "Cross-site request refused." in body


async def test_json_error_bodies_stay_english():
    """Programs read errorCode and message: the same English whatever the browser's language."""
    app = _gateway_app("zh-CN")
    async with TestClient(TestServer(app)) as client:
        async with client.get("/needs", headers={"Accept-Language": "zh-CN"}) as response:
            body = await response.json()
    assert body["errorCode"] == "NotAuthenticated"
    assert body["message"] == "Sign in to Alibaba Cloud first."


async def test_sample_crm_login_page_in_both_languages(tmp_path: Path):
    """The CRM's login page is Chinese for a Chinese browser, English otherwise."""
    from sample_crm.app import create_app

    app = create_app(tmp_path / "crm.sqlite3")
    _, chinese, _ = await _get(app, "/login", **{"Accept-Language": "zh-CN"})
    assert '<html lang="zh-CN">' in chinese and "用户名" in chinese and "示例 CRM" in chinese
    app = create_app(tmp_path / "crm.sqlite3")
    _, english, _ = await _get(app, "/login", **{"Accept-Language": "en-GB"})
    assert '<html lang="en">' in english and "User name" in english and not HAN.search(english)


async def test_sample_crm_configured_language_wins(tmp_path: Path):
    """create_app(language="zh-CN") (python -m sample_crm --language zh-CN) ignores the browser."""
    from sample_crm.app import create_app

    app = create_app(tmp_path / "crm.sqlite3", language="zh-CN")
    _, body, _ = await _get(app, "/nowhere", **{"Accept-Language": "en"})
    assert "返回首页" in body or "用户名" in body  # a 404 page, or the login it redirects to


async def test_emulator_sign_in_page_in_both_languages():
    """The emulated Alibaba sign-in page follows the browser's language."""
    from ccc_gateway.emulator.pages import signin_page

    for lang, words in (("zh-CN", ["RAM 用户名", "登录", "取消"]), ("en", ["RAM user name"])):
        response = signin_page(lang, {"client_id": "1"}, error="signin.wrong")
        body = response.text or ""
        assert f'<html lang="{lang}">' in body
        for word in words:
            assert word in body
        assert (HAN.search(body) is not None) == (lang == "zh-CN")


# ---- the scripts: the widget and the softphone page ----

SCRIPTS = [
    ROOT / "ccc_gateway/static/widget.js",
    ROOT / "ccc_gateway/static/softphone.js",
    ROOT / "ccc_gateway/static/call_log.js",
]
JS_STRING = re.compile(r"'((?:[^'\\\n]|\\.)*)'")
# Where a script puts text a person reads: these must never take a literal with words.
JS_SINKS = re.compile(
    r"(?:\bel\([^()]*?,[^()]*?,\s*|\.textContent\s*=\s*|\btextContent:\s*|\bsay\(\s*|\.title\s*=\s*"
    r"|\bconfirm\(\s*|setAttribute\('aria-label',\s*|Notification\(\s*)'([^']*)'"
)
# Looks like English for a person: a capitalised word followed by another word.
SENTENCE = re.compile(r"\b[A-Z][a-z]+ [a-z]+")
# Protocol fields between the softphone page and the widget (`message` of ccc:call-result),
# never shown: the widget words every refusal from the catalog by its `reason`.
NOT_SHOWN = {"Sign in to call.", "The softphone is not ready.", "Cancelled."}


def js_code(source: str) -> str:
    """`source` without its comments (block comments, and `//` comments after a blank)."""
    without_blocks = re.sub(r"/\*.*?\*/", " ", source, flags=re.S)
    return re.sub(r"(^|\s)//\s.*$", " ", without_blocks, flags=re.M)


def js_bypasses(source: str) -> list[str]:
    code = js_code(source)
    found = [f"sink: {m.group(0)!r}" for m in JS_SINKS.finditer(code) if WORD.search(m.group(1))]
    for match in JS_STRING.finditer(code):
        text = match.group(1)
        if SENTENCE.search(text) and text not in NOT_SHOWN:
            found.append(f"literal: {text!r}")
    return found


def js_keys(source: str) -> set[str]:
    # Whole literal arguments only: t('ui.state.' + state) builds its key (checked below).
    return set(re.findall(r"\bt\('([a-z][\w.-]*\w)'\s*[,)]", js_code(source)))


@pytest.mark.parametrize(
    "path", [*SCRIPTS, ROOT / "ccc_gateway/static/i18n.js"], ids=lambda p: p.name
)
def test_scripts_show_no_text_of_their_own(path: Path):
    """widget.js and softphone.js put no literal words on screen: all come from t(key)."""
    assert js_bypasses(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(
    "source",
    [
        "say('Calling now');",
        "const b = el('button', 'x', 'Use it here');",
        "node.textContent = 'Signed out';",
        "el('h2', { textContent: 'Recent calls' });",
        "const m = 'The call did not start.';",
    ],
)
def test_the_script_check_catches_a_raw_string(source: str):
    """The script check is not vacuous: each way of showing a raw string is caught."""
    assert js_bypasses(source) != []


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_every_key_a_script_uses_is_in_both_catalogs(path: Path):
    """t('ui.…') in the scripts and data-i18n in the softphone page name existing keys."""
    source = path.read_text(encoding="utf-8")
    used = js_keys(source)
    assert used, "the script looks nothing up: the check would be vacuous"
    page = (ROOT / "ccc_gateway/softphone/views.py").read_text(encoding="utf-8")
    used |= set(re.findall(r'data-i18n(?:-label)?="([^"]+)"', page))
    for language, catalog in CATALOGS.items():
        assert sorted(used - set(catalog)) == [], language


def test_every_agent_state_has_words():
    """Each state the softphone page can report has its name in both languages."""
    source = (ROOT / "ccc_gateway/static/softphone.js").read_text(encoding="utf-8")
    states = set(re.findall(r"'((?:signed|signing|not)-[a-z]+|[a-z]+)'", source))
    named = {key.removeprefix("ui.state.") for key in CATALOGS["en"] if key.startswith("ui.state.")}
    reported = {"signed-out", "signing-in", "connecting", "offline", "not-ready", "ready"}
    reported |= {"break", "acw", "ringing", "dialing", "talking", "hold"}
    assert reported <= states and reported <= named


# The language rule and the catalog lookup, code the scripts would otherwise each carry.
LANGUAGE_RULE = re.compile(r"navigator\.languages?\b|\.catalogs\b|hasOwnProperty")


def test_only_i18n_js_holds_the_catalogs_and_the_language_rule():
    """One implementation: static/i18n.js alone has the catalogs' slot, picks the language and
    looks keys up; widget.js, softphone.js and call_log.js take theirs from window.cccI18n."""
    static = sorted((ROOT / "ccc_gateway/static").glob("*.js"))
    assert ROOT / "ccc_gateway/static/i18n.js" in static
    for path in static:
        source = path.read_text(encoding="utf-8")
        own = path.name == "i18n.js"
        assert (source.count(I18N_MARK.decode()) == 1) == own, path.name
        assert bool(LANGUAGE_RULE.search(js_code(source))) == own, path.name
        assert ("window.cccI18n = Object.freeze({ language, t });" in source) == own, path.name
    for path in SCRIPTS:
        assert "const t = window.cccI18n.t;" in path.read_text(encoding="utf-8"), path.name


async def test_catalogs_are_served_once_per_page(stack: Stack):
    """The catalogs travel once per page: in i18n.js (the softphone page's first script) and
    at the front of widget.js (the CRM page's one script); the other scripts carry none."""
    browser = stack.browser()
    bodies = {}
    try:
        for name in ("i18n.js", "widget.js", "softphone.js", "call_log.js", "numbers.js"):
            async with browser.client.get(browser.url(f"/aliyun/softphone/{name}")) as response:
                assert response.status == 200, name
                bodies[name] = await response.text()
    finally:
        await browser.close()
    written = '{"language":"auto","catalogs":{'
    assert bodies["i18n.js"].count(written) == 1 and I18N_MARK.decode() not in bodies["i18n.js"]
    assert bodies["widget.js"].startswith(bodies["i18n.js"] + "\n")
    assert bodies["widget.js"].count('"catalogs":') == 1
    for name in ("softphone.js", "call_log.js", "numbers.js"):
        assert '"catalogs":' not in bodies[name] and "cccI18n =" not in bodies[name], name


# ---- configuration: ui.language and softphone.notifications ----


def _config_text(tmp_path: Path, extra: str) -> str:
    from cryptography.fernet import Fernet

    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text("cert")
    key.write_text("key")
    return f"""
tls: {{cert: "{cert}", key: "{key}"}}
aliyun:
  client_id: "123"
  client_secret: s
  redirect_uri: https://crm.example.com/aliyun/auth/callback
ccc: {{instance_id: inst-1}}
session: {{keys: ["{Fernet.generate_key().decode()}"]}}
{extra}"""


def test_ui_language_and_notifications_defaults_and_values(tmp_path: Path):
    """ui.language defaults to auto, notifications to on; both take their documented values."""
    from ccc_gateway.config.load import parse_config

    default = parse_config(_config_text(tmp_path, ""), {})
    assert default.ui.language == "auto" and default.softphone.notifications is True
    chosen = parse_config(
        _config_text(tmp_path, "ui: {language: zh-CN}\nsoftphone: {notifications: false}"), {}
    )
    assert chosen.ui.language == "zh-CN" and chosen.softphone.notifications is False


def test_bad_ui_language_is_reported_by_key_path(tmp_path: Path):
    """A language other than auto, zh-CN or en, a non-boolean notifications and an unknown ui
    key are all reported at once, each by its key path."""
    from ccc_gateway.config.load import ConfigError, parse_config

    text = _config_text(
        tmp_path, "ui: {language: fr, colour: red}\nsoftphone: {notifications: sometimes}"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, {})
    problems = "\n".join(info.value.problems)
    assert "ui.language" in problems and "ui.colour" in problems
    assert "softphone.notifications" in problems


async def test_sign_in_result_pages_in_chinese(stack: Stack):
    """The gateway's sign-in pages speak the browser's language: an expired sign-in link and
    the sign-in window's last page."""
    browser = stack.browser()
    zh = {"Accept-Language": "zh-CN,zh;q=0.9", "Accept": "text/html"}
    try:
        async with await browser.get("/aliyun/auth/callback?state=nope&code=x", headers=zh) as r:
            body = await r.text()
        assert r.status == 400 and "此登录链接已过期或已被使用。" in body and "重新登录" in body
        async with await browser.get("/aliyun/softphone/signed-in", headers=zh) as r:
            body = await r.text()
        assert "已登录阿里云，您可以关闭此窗口。" in body and '<html lang="zh-CN">' in body
        async with await browser.get("/aliyun/softphone/signed-in") as r:
            assert "Signed in to Alibaba Cloud" in await r.text()
    finally:
        await browser.close()
