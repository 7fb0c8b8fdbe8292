"""Server-rendered HTML: the shared page layout and small markup helpers.

Everything interpolated goes through ``esc``. No inline scripts or style attributes, so the
Content-Security-Policy (``default-src 'self'``) holds. Every page ends with
``</body></html>`` because the gateway injects its widget script just before ``</body>``.
Every word a person reads comes from ``i18n`` (the two catalogs).
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from aiohttp import web

from .i18n import language, t
from .keys import USER
from .sessions import CSRF_FIELD, CurrentUser


def esc(value: object) -> str:
    """HTML-escape any value for text or a double-quoted attribute."""
    return escape(str(value), quote=True)


def path_segment(value: str) -> str:
    """Percent-encode ``value`` as one URL path segment (a name with spaces or slashes)."""
    return quote(value, safe="")


def csrf_input(token: str) -> str:
    """The hidden CSRF field every state-changing form carries."""
    return f'<input type="hidden" name="{CSRF_FIELD}" value="{esc(token)}">'


def _top_bar(request: web.Request, user: CurrentUser | None) -> str:
    account = nav = ""
    if user is not None:
        account = (
            '<div class="account">'
            f'<span class="user">{esc(t(request, "account.signed_in_as"))} '
            f"<strong>{esc(user.display_name)}</strong></span>"
            '<form method="post" action="/logout" class="logout">'
            f'{csrf_input(user.csrf)}<button type="submit">'
            f"{esc(t(request, 'account.log_out'))}</button></form>"
            "</div>"
        )
        nav = (
            f'<nav><a href="/">{esc(t(request, "nav.home"))}</a>'
            f'<a href="/customers">{esc(t(request, "nav.customers"))}</a></nav>'
        )
    return (
        '<header class="topbar">'
        f'<a class="brand" href="/">{esc(t(request, "app.name"))}</a>{nav}{account}'
        "</header>"
    )


def page(request: web.Request, title: str, body: str) -> str:
    """A complete HTML document: ``body`` (already-safe markup) inside the shared layout."""
    return (
        "<!doctype html>\n"
        f'<html lang="{language(request)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)} · {esc(t(request, 'app.name'))}</title>"
        '<link rel="stylesheet" href="/static/crm.css">'
        "</head><body>"
        f'{_top_bar(request, request.get(USER))}<main class="content">{body}</main>'
        "</body></html>"
    )


def html_response(markup: str, status: int = 200) -> web.Response:
    """An HTML response with an explicit UTF-8 charset."""
    return web.Response(text=markup, status=status, content_type="text/html", charset="utf-8")


def error_body(request: web.Request, title: str, message: str) -> str:
    """The body of an error page: a heading, the message and a way back."""
    return (
        f'<section class="error"><h1>{esc(title)}</h1><p>{esc(message)}</p>'
        f'<p><a href="/">{esc(t(request, "error.back"))}</a></p></section>'
    )


def render(request: web.Request, title: str, body: str, status: int = 200) -> web.Response:
    """Render ``body`` in the layout for the request's user (if signed in)."""
    response = html_response(page(request, title, body), status)
    response.headers["Content-Language"] = language(request)
    response.headers["Vary"] = "Accept-Language"
    return response


def error_response(request: web.Request, status: int, title: str, message: str) -> web.Response:
    """A full HTML error page with an honest status code."""
    return render(request, title, error_body(request, title, message), status)
