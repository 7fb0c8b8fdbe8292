"""The softphone page (the CCC workbench SDK, docs/softphone.md) and the widget's files.

Routes:
- `GET /aliyun/softphone`: the page hosting the SDK of `softphone.sdk` (classic 1.x, 2.x or
  the 3.x UI build: one page, the generation's constructor and options); its configuration
  travels in a non-executable `<script type="application/json">` element, so the page has no
  inline code and runs under a CSP that admits only this origin, the SDK's origins and the
  hosts that generation connects to (docs/softphone.md, section 8).
- `GET /aliyun/softphone/signed-in`: where the sign-in popup ends; tells its opener (and, past
  a Cross-Origin-Opener-Policy that cut it off, a BroadcastChannel) and closes.
- `GET /aliyun/softphone/{softphone.js,softphone.css,signed-in.js,numbers.js,widget.css}`.
- `GET /aliyun/softphone/widget.js`: numbers.js (with `softphone.click_to_call` written into
  it) and widget.js, one script: the CRM's CSP names one URL for it (inject.py).
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
from ccc_gateway.keys import CONFIG

STATIC = Path(__file__).parents[1] / "static"
AJAX_PATH = "/aliyun/ccc/api"
SIGNED_IN_PATH = "/aliyun/softphone/signed-in"
SIGN_IN_URL = "/aliyun/auth?return_to=" + SIGNED_IN_PATH
_TYPES = {".js": "text/javascript", ".css": "text/css"}
_FILES = (
    "softphone.js",
    "softphone.css",
    "signed-in.js",
    "numbers.js",
    "widget.css",
    "call_log.js",
)
# Where numbers.js takes its configuration when served in front of widget.js.
_CLICK_TO_CALL_SLOT = b"/*CCC_CLICK_TO_CALL*/null"


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


def setup(app: web.Application) -> None:
    files = {name: _load(name) for name in _FILES}
    files["widget.js"] = widget_script(app[CONFIG])

    async def static_file(request: web.Request) -> web.StreamResponse:
        entry = files.get(request.match_info["name"])
        if entry is None:
            raise web.HTTPNotFound()
        return _static_response(request, entry)

    app.router.add_get("/aliyun/softphone", softphone_page)
    app.router.add_get(SIGNED_IN_PATH, signed_in_page)
    app.router.add_get("/aliyun/softphone/{name}", static_file)


def _load(name: str) -> StaticFile:
    return _static((STATIC / name).read_bytes(), name)


def _static(body: bytes, name: str) -> StaticFile:
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return StaticFile(body, _TYPES[Path(name).suffix], etag)


def widget_script(config: Config) -> StaticFile:
    """numbers.js configured from softphone.click_to_call, then widget.js: one script."""
    clicks = config.softphone.click_to_call
    settings = {"selectors": clicks.selectors, "detect": clicks.detect, "pattern": clicks.pattern}
    # JSON is a JavaScript expression; escaped like HTML-embedded JSON all the same.
    numbers = (STATIC / "numbers.js").read_bytes()
    if numbers.count(_CLICK_TO_CALL_SLOT) != 1:
        raise RuntimeError("static/numbers.js lost its configuration slot")
    numbers = numbers.replace(_CLICK_TO_CALL_SLOT, json_for_html(settings).encode())
    return _static(numbers + b"\n" + (STATIC / "widget.js").read_bytes(), "widget.js")


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


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Softphone</title>
{styles}<link rel="stylesheet" href="/aliyun/softphone/softphone.css">
<script type="application/json" id="ccc-config">{config}</script>
</head><body>
<section class="ccc-account" aria-label="Alibaba Cloud sign-in">
<p class="ccc-who"><span id="ccc-agent">Checking sign-in…</span>
<span id="ccc-expiry" class="ccc-muted"></span></p>
<p id="ccc-message" class="ccc-message" role="status" aria-live="polite"></p>
<p class="ccc-buttons">
<button type="button" id="ccc-signin" hidden>Sign in</button>
<button type="button" id="ccc-resignin" class="ccc-warn" hidden>Sign in again</button>
<button type="button" id="ccc-refresh" hidden>Refresh</button>
<button type="button" id="ccc-signout" hidden>Sign out</button>
</p>
</section>
<section id="ccc-confirm" class="ccc-confirm" role="alertdialog" aria-labelledby="ccc-confirm-title"
 aria-describedby="ccc-confirm-keys" hidden>
<p id="ccc-confirm-title">Call <strong id="ccc-confirm-number"></strong>?</p>
<p class="ccc-buttons"><button type="button" id="ccc-confirm-call">Call</button>
<button type="button" id="ccc-confirm-cancel">Cancel</button></p>
<p id="ccc-confirm-keys" class="ccc-muted">Enter calls, Esc cancels.</p>
</section>
<div id="ccc-workbench"></div>
{scripts}<script src="/aliyun/softphone/numbers.js"></script>
<script src="/aliyun/softphone/softphone.js"></script>
<script src="/aliyun/softphone/call_log.js"></script>
</body></html>
"""

_SIGNED_IN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Signed in</title>
<script src="/aliyun/softphone/signed-in.js"></script></head>
<body><p>Signed in to Alibaba Cloud. You can close this window.</p></body></html>
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
    html = _PAGE.format(styles=styles, scripts=scripts, config=json_for_html(page_config(config)))
    response = web.Response(text=html, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = page_policy(config)
    # The softphone needs the microphone; nothing framed inside it does.
    response.headers["Permissions-Policy"] = "microphone=(self)"
    response.headers["Referrer-Policy"] = "same-origin"
    return _no_store(response)


async def signed_in_page(request: web.Request) -> web.Response:
    response = web.Response(text=_SIGNED_IN, content_type="text/html", charset="utf-8")
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; base-uri 'none'; frame-ancestors 'none'"
    )
    return _no_store(response)
