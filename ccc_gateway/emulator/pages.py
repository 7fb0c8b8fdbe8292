"""The HTML the emulated signin.aliyun.com shows: sign-in form, error page, form_post relay.

Every value is escaped: authorize parameters come from the browser's URL, so they are hostile.
Every word comes from the catalogs in `i18n.py`, in the browser's language (`language`).
"""

from __future__ import annotations

from collections.abc import Mapping
from html import escape

from aiohttp import web

from .i18n import CATALOGS, pick_language


def language(request: web.Request) -> str:
    """The language of the emulator's page answering `request` (its Accept-Language)."""
    return pick_language(request.headers.get("Accept-Language"))


_STYLE = """
body{font-family:system-ui,sans-serif;background:#f5f6f8;margin:0;color:#1f2329}
main{max-width:22rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;
box-shadow:0 1px 4px #0002}
h1{font-size:1.15rem;margin:0 0 1rem}
label{display:block;margin:.75rem 0 .25rem;font-size:.9rem}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.5rem}
.buttons{display:flex;gap:.5rem;margin-top:1.25rem}
button{padding:.5rem 1rem;cursor:pointer}
.primary{background:#ff6a00;color:#fff;border:0;border-radius:4px}
.error{color:#b42318;background:#fef3f2;padding:.5rem;border-radius:4px}
.note{color:#667085;font-size:.8rem;margin-top:1.5rem}
"""

# Pages embed user input: no script may run on them (the form_post relay allows its own).
# No form-action directive: Chrome applies it to the redirect after the form, too.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


def _page(
    language: str, title: str, body: str, *, csp: str = _CSP, status: int = 200
) -> web.Response:
    html = (
        f'<!doctype html>\n<html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )
    headers = {
        "Content-Security-Policy": csp,
        "Cache-Control": "no-store",
        "Content-Language": language,
    }
    return web.Response(text=html, content_type="text/html", status=status, headers=headers)


def _hidden(fields: Mapping[str, str]) -> str:
    return "".join(
        f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in fields.items()
    )


def signin_page(
    language: str,
    params: Mapping[str, str],
    *,
    username: str = "",
    error: str | None = None,
    status: int = 200,
) -> web.Response:
    """The RAM user sign-in form; `params` (the authorize parameters) ride in hidden fields.

    `error`: a catalog key (the alert shown above the form).
    """
    t = CATALOGS[language]
    message = f'<p class="error" role="alert">{escape(t[error])}</p>' if error else ""
    body = (
        f"<h1>{escape(t['signin.title'])}</h1>{message}"
        '<form method="post" action="/oauth2/v1/auth">'
        f"{_hidden(params)}"
        f'<label for="username">{escape(t["signin.username"])}</label>'
        f'<input id="username" name="username" type="text" value="{escape(username)}" '
        'autocomplete="username" required autofocus>'
        f'<label for="password">{escape(t["signin.password"])}</label>'
        '<input id="password" name="password" type="password" '
        'autocomplete="current-password" required>'
        '<div class="buttons">'
        '<button class="primary" type="submit" name="action" value="signin">'
        f"{escape(t['signin.submit'])}</button>"
        '<button type="submit" name="action" value="cancel" formnovalidate>'
        f"{escape(t['signin.cancel'])}</button>"
        "</div></form>"
        f'<p class="note">{escape(t["signin.note"])}</p>'
    )
    return _page(language, t["signin.title"], body, status=status)


def error_page(language: str, message: str, *, status: int = 400) -> web.Response:
    """Shown instead of redirecting when the redirect target itself cannot be trusted.

    `message` is the technical reason, for the developer of the application, as Alibaba's
    own page shows it (its error codes are English in both languages).
    """
    t = CATALOGS[language]
    body = (
        f"<h1>{escape(t['rejected.heading'])}</h1>"
        f'<p class="error" role="alert">{escape(message)}</p>'
        f'<p class="note">{escape(t["rejected.note"])}</p>'
    )
    return _page(language, t["rejected.title"], body, status=status)


def form_post_page(language: str, redirect_uri: str, fields: Mapping[str, str]) -> web.Response:
    """OAuth 2.0 Form Post Response Mode: the browser POSTs the result to redirect_uri."""
    t = CATALOGS[language]
    body = (
        f"<h1>{escape(t['return.heading'])}</h1>"
        f'<form method="post" action="{escape(redirect_uri)}">{_hidden(fields)}'
        f'<button class="primary" type="submit">{escape(t["return.continue"])}</button></form>'
        "<script>document.forms[0].submit()</script>"
    )
    # Inline script allowed here only: its sole input, redirect_uri, is a registered one.
    csp = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'"
    return _page(language, t["return.title"], body, csp=csp)
