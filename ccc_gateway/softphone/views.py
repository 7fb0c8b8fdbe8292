"""The softphone page (the CCC workbench SDK, docs/softphone.md) and the widget's files.

Routes:
- `GET /aliyun/softphone`: the page hosting the SDK of `softphone.sdk` (classic 1.x, 2.x or
  the 3.x UI build: one page, the generation's constructor and options); its configuration
  travels in a non-executable `<script type="application/json">` element, so the page has no
  inline code and runs under a CSP that admits only this origin, the SDK's origins and the
  hosts that generation connects to (docs/softphone.md, section 8).
- `GET /aliyun/softphone/signed-in`: where the sign-in popup ends; tells its opener (and, past
  a Cross-Origin-Opener-Policy that cut it off, a BroadcastChannel) and closes.
- `GET /aliyun/softphone/{i18n.js,softphone.js,softphone.css,signed-in.js,numbers.js,
  call_log.js,widget.css,favicon.svg}`.
- `GET /aliyun/softphone/widget.js`: i18n.js, numbers.js (with `softphone.click_to_call`
  written into it) and widget.js, one script: the CRM's CSP names one URL for it (inject.py).

Languages: i18n.js alone carries the scripts' catalogs (ccc_gateway/i18n, keys `ui.*`) and
`ui.language`, written into its slot (I18N_MARK), and gives the others `window.cccI18n`
({language, t}; with `auto` the language follows navigator.languages). It is the softphone
page's first script and the front of widget.js, so each page downloads the catalogs once.
The softphone page's own words are `data-i18n` keys its script fills in, so the page and its
scripts always speak the same language.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from html import escape
from pathlib import Path

from aiohttp import hdrs, web
from yarl import URL

from ccc_gateway.config.model import Config
from ccc_gateway.http.origin import SCRIPT_HEADER, SCRIPT_HEADER_VALUE
from ccc_gateway.http.pages import language_of
from ccc_gateway.i18n import CATALOGS, script_catalog, text
from ccc_gateway.keys import CONFIG

STATIC = Path(__file__).parents[1] / "static"
AJAX_PATH = "/aliyun/ccc/api"
SIGNED_IN_PATH = "/aliyun/softphone/signed-in"
SIGN_IN_URL = "/aliyun/auth?return_to=" + SIGNED_IN_PATH
_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
# Served as they are; i18n.js and widget.js get their configuration written in (setup).
_FILES = (
    "softphone.js",
    "softphone.css",
    "signed-in.js",
    "numbers.js",
    "widget.css",
    "favicon.svg",
    "call_log.js",
)
# Where static/i18n.js receives the catalogs: `const I18N = /*ccc:i18n*/null;`.
I18N_MARK = b"/*ccc:i18n*/null"
# Where numbers.js takes its configuration when served in front of widget.js.
_CLICK_TO_CALL_SLOT = b"/*CCC_CLICK_TO_CALL*/null"


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


def setup(app: web.Application) -> None:
    i18n = i18n_script(app[CONFIG])
    files = {name: _static((STATIC / name).read_bytes(), name) for name in _FILES}
    files["i18n.js"] = _static(i18n, "i18n.js")
    files["widget.js"] = widget_script(app[CONFIG], i18n)

    async def static_file(request: web.Request) -> web.StreamResponse:
        entry = files.get(request.match_info["name"])
        if entry is None:
            raise web.HTTPNotFound()
        return _static_response(request, entry)

    app.router.add_get("/aliyun/softphone", softphone_page)
    app.router.add_get(SIGNED_IN_PATH, signed_in_page)
    app.router.add_get("/aliyun/softphone/{name}", static_file)


def _filled(name: str, slot: bytes, value: object) -> bytes:
    """static/`name` with `value` written into its one `slot`: JSON is a JavaScript
    expression, escaped like HTML-embedded JSON all the same."""
    body = (STATIC / name).read_bytes()
    if body.count(slot) != 1:
        raise RuntimeError(f"static/{name} lost its slot {slot.decode()}")
    return body.replace(slot, json_for_html(value).encode())


def i18n_script(config: Config) -> bytes:
    """i18n.js with both catalogs and ui.language written in."""
    catalogs = {language: script_catalog(language) for language in CATALOGS}
    return _filled("i18n.js", I18N_MARK, {"language": config.ui.language, "catalogs": catalogs})


def _static(body: bytes, name: str) -> StaticFile:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return StaticFile(body, _TYPES[Path(name).suffix], etag)


def widget_script(config: Config, i18n: bytes) -> StaticFile:
    """i18n.js (`i18n`), numbers.js configured from softphone.click_to_call, then widget.js:
    one script."""
    clicks = config.softphone.click_to_call
    settings = {"selectors": clicks.selectors, "detect": clicks.detect, "pattern": clicks.pattern}
    numbers = _filled("numbers.js", _CLICK_TO_CALL_SLOT, settings)
    widget = (STATIC / "widget.js").read_bytes()
    return _static(b"\n".join((i18n, numbers, widget)), "widget.js")


def _static_response(request: web.Request, entry: StaticFile) -> web.Response:
    headers = {
        # Revalidate each time: an upgrade of the gateway must reach every open CRM tab.
        hdrs.CACHE_CONTROL: "no-cache",
        hdrs.ETAG: entry.etag,
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get(hdrs.IF_NONE_MATCH) == entry.etag:
        return web.Response(status=304, headers=headers)
    return web.Response(
        body=entry.body, content_type=entry.content_type, charset="utf-8", headers=headers
    )


def source_origin(url: str) -> str | None:
    """The CSP source for an SDK URL: its origin (protocol-relative ones become https)."""
    if url.startswith("//"):
        url = "https:" + url
    parsed = URL(url)
    if not parsed.is_absolute() or parsed.scheme not in ("http", "https"):
        return None  # a path on the gateway itself: covered by 'self'
    return str(parsed.origin())


def _origins(urls: tuple[str, ...]) -> list[str]:
    return list(dict.fromkeys(o for o in map(source_origin, urls) if o is not None))


# Where each SDK generation connects on its own (not through the gateway), docs/softphone.md §8.
# Classic: the SIP/WebRTC host comes from RequestLoginInfo at run time, so any wss/https host.
# 2.x/3.x: the SIP and agent-state websockets (GetLoginDetails' SipServerUrl, AgentServerUrl)
# and their HTTPS endpoints are all on *.aliyuncs.com, on ports other than 443 too (:9443).
CONNECT_SOURCES = {
    "v1": ("wss:", "https:"),
    "v2": ("wss://*.aliyuncs.com:*", "https://*.aliyuncs.com:*"),
    "v3": ("wss://*.aliyuncs.com:*", "https://*.aliyuncs.com:*"),
}
# The constructor each generation's script defines, softphone.js says how it is called.
SDK_GLOBALS = {"v1": "WorkbenchSdk", "v2": "WorkbenchSdk", "v3": "CCCWorkbenchSDK"}


def page_policy(config: Config) -> str:
    """The softphone page's CSP: this origin, the SDK's origins and the hosts its generation
    connects to (plus `softphone.csp_sources`), no inline code at all."""
    soft = config.softphone
    extra = soft.csp_sources
    scripts = _origins(soft.sdk_scripts)
    styles = _origins(soft.sdk_styles)

    def directive(name: str, *sources: str) -> str:
        return " ".join(dict.fromkeys((name, "'self'", *sources, *extra.get(name, ()))))

    # Ring tones and sounds: v1 played any https media; 2.x/3.x from the SDK's origins.
    media = ("blob:", "https:") if soft.sdk == "v1" else ("blob:", *scripts)
    return "; ".join(
        (
            "default-src 'self'",
            directive("script-src", *scripts),
            directive("style-src", *styles),
            directive("font-src", *styles, "data:"),
            directive("img-src", "data:", "https:"),  # avatars (AvatarUrl) may be anywhere
            directive("connect-src", *CONNECT_SOURCES[soft.sdk]),
            directive("media-src", *media),
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'self'",
        )
    )


def page_config(config: Config) -> dict[str, object]:
    """What softphone.js needs; the screen-pop template is a same-origin path (config.py)."""
    soft = config.softphone
    options: dict[str, object] = {
        "instanceId": config.ccc.instance_id,
        "ajaxPath": AJAX_PATH,
        "ajaxMethod": soft.ajax_method,
        # The SDK sends these with every API call: the API refuses requests not made by script,
        # and browsers without Sec-Fetch-* headers show it this way (same_origin.py).
        "ajaxHeaders": {SCRIPT_HEADER: SCRIPT_HEADER_VALUE},
        "header": True,
    }
    if soft.sdk != "v1":
        options["regionId"] = config.ccc.region  # 2.x requires it; 3.x: harmless if unused
    events_on = config.crm_events.url is not None
    if events_on and soft.sdk != "v1":
        # The after-call form ends after-call work itself (static/call_log.js).
        options["afterCallRule"] = "manual"
    return {
        "sdk": soft.sdk,
        "sdkGlobal": SDK_GLOBALS[soft.sdk],
        # The constructor's options; softphone.sdk_options adds to or replaces them, for the
        # options the public documentation does not settle (docs/softphone.md §8).
        "options": {**options, **soft.sdk_options},
        "signInUrl": SIGN_IN_URL,
        "screenPop": {"url": soft.screen_pop_url, "target": soft.screen_pop_target},
        "confirmDial": soft.confirm_dial,
        "notifications": soft.notifications,
        "callLog": call_log_config(config),
    }


def call_log_config(config: Config) -> dict[str, object]:
    """static/call_log.js: report call events and show the after-call form when crm_events is
    on; list recent calls where the generation has ListRecentCallDetailRecords (CCC 2.0)."""
    soft = config.softphone
    events_on = config.crm_events.url is not None
    return {
        "events": events_on,
        "form": events_on,
        "outcomes": list(soft.after_call_outcomes),
        "afterCallSeconds": soft.after_call_seconds,
        "recent": config.ccc.is_v2 and config.ccc.actions.allows("ListRecentCallDetailRecords"),
    }


def json_for_html(value: object) -> str:
    """JSON that cannot end its `<script>` element or open a comment inside it."""
    text = json.dumps(value, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# Every word is a data-i18n key: softphone.js writes the text in the agent's language.
_PAGE = """<!doctype html>
<html lang="{language}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title data-i18n="ui.page.title"></title>
<link rel="icon" href="/aliyun/softphone/favicon.svg" type="image/svg+xml">
{styles}<link rel="stylesheet" href="/aliyun/softphone/softphone.css">
<script type="application/json" id="ccc-config">{config}</script>
</head><body data-state="connecting">
<header class="ccc-status">
<p class="ccc-state"><span class="ccc-dot" aria-hidden="true"></span>
<span id="ccc-state" data-i18n="ui.page.checking"></span></p>
<p id="ccc-agent" class="ccc-agent"></p>
<button type="button" id="ccc-signout" class="ccc-quiet" data-i18n="ui.page.sign_out" hidden>
</button>
</header>
<main>
<p id="ccc-live" class="ccc-live" role="status" aria-live="assertive"></p>
<section id="ccc-ringing" class="ccc-ringing" aria-labelledby="ccc-ringing-title" hidden>
<p id="ccc-ringing-title" class="ccc-ringing-title" data-i18n="ui.page.incoming"></p>
<p class="ccc-caller"><strong id="ccc-ringing-customer"></strong>
<span id="ccc-ringing-number"></span></p>
<p class="ccc-buttons">
<button type="button" id="ccc-answer" data-i18n="ui.page.answer"></button></p>
</section>
<section id="ccc-confirm" class="ccc-confirm" role="alertdialog" aria-labelledby="ccc-confirm-title"
 aria-describedby="ccc-confirm-keys" hidden>
<p id="ccc-confirm-title"><span data-i18n="ui.page.confirm_question"></span>
<strong id="ccc-confirm-number"></strong></p>
<p class="ccc-buttons">
<button type="button" id="ccc-confirm-call" data-i18n="ui.page.call"></button>
<button type="button" id="ccc-confirm-cancel" data-i18n="ui.page.cancel"></button></p>
<p id="ccc-confirm-keys" class="ccc-muted" data-i18n="ui.page.keys"></p>
</section>
<p id="ccc-message" class="ccc-message" role="status" aria-live="polite"></p>
<section class="ccc-account" aria-labelledby="ccc-account-title">
<h1 id="ccc-account-title" class="ccc-live" data-i18n="ui.page.account"></h1>
<p id="ccc-hint" data-i18n="ui.page.signed_out_hint" hidden></p>
<p class="ccc-buttons">
<button type="button" id="ccc-signin" data-i18n="ui.page.sign_in" hidden></button>
<button type="button" id="ccc-resignin" class="ccc-warn" data-i18n="ui.page.sign_in_again" hidden>
</button>
</p>
</section>
<div id="ccc-workbench"></div>
<details id="ccc-details" class="ccc-details" hidden>
<summary data-i18n="ui.page.details"></summary>
<p id="ccc-detail-account"></p><p id="ccc-detail-crm"></p><p id="ccc-expiry"></p>
<p id="ccc-detail-status"></p>
<p class="ccc-buttons"><button type="button" id="ccc-refresh" data-i18n="ui.page.refresh" hidden>
</button></p>
</details>
</main>
<script src="/aliyun/softphone/i18n.js"></script>
{scripts}<script src="/aliyun/softphone/numbers.js"></script>
<script src="/aliyun/softphone/softphone.js"></script>
<script src="/aliyun/softphone/call_log.js"></script>
</body></html>
"""

_SIGNED_IN = """<!doctype html>
<html lang="{language}"><head><meta charset="utf-8"><title>{title}</title>
<script src="/aliyun/softphone/signed-in.js"></script></head>
<body><p>{message}</p></body></html>
"""


def _no_store(response: web.Response) -> web.Response:
    response.headers[hdrs.CACHE_CONTROL] = "no-store"
    return response


async def softphone_page(request: web.Request) -> web.Response:
    """The page the widget frames (and that also works on its own, in a tab)."""
    config = request.app[CONFIG]
    styles = "".join(
        f'<link rel="stylesheet" href="{escape(url)}">\n' for url in config.softphone.sdk_styles
    )
    scripts = "".join(
        f'<script src="{escape(url)}"></script>\n' for url in config.softphone.sdk_scripts
    )
    html = _PAGE.format(
        language=language_of(request),
        styles=styles,
        scripts=scripts,
        config=json_for_html(page_config(config)),
    )
    response = web.Response(text=html, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = page_policy(config)
    # The softphone needs the microphone; nothing framed inside it does.
    response.headers["Permissions-Policy"] = "microphone=(self)"
    response.headers["Referrer-Policy"] = "same-origin"
    return _no_store(response)


async def signed_in_page(request: web.Request) -> web.Response:
    language = language_of(request)
    html = _SIGNED_IN.format(
        language=language,
        title=escape(text(language, "ui.page.signed_in_title")),
        message=escape(text(language, "ui.page.signed_in")),
    )
    response = web.Response(text=html, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
    return _no_store(response)
