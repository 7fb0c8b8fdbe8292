"""Small HTML pages the gateway itself shows people (errors, sign-in results).

Every sentence comes from the catalogs in `ccc_gateway/i18n`, in the request's language
(`language_of`): callers pass catalog text, never literal English (tests/test_i18n.py).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from html import escape

from aiohttp import web

from ccc_gateway.http.errors import GatewayError
from ccc_gateway.i18n import CATALOGS, ENGLISH, pick_language, text
from ccc_gateway.keys import CONFIG

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;"
    "color:#1f2933}h1{font-size:1.4rem}code{background:#eef1f4;padding:0 .3em}"
    "a.button{display:inline-block;background:#ff6a00;color:#fff;padding:.4em 1em;"
    "border-radius:4px;text-decoration:none}.muted{color:#66788a;font-size:.9rem}"
)
# The pages carry no script; their own CSP says so (the one inline style is allowed by hash).
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
_CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'self'; base-uri 'none'; "
    "form-action 'self'"
)
# The softphone's icon (softphone/views.py serves it), so the tab shows whose page this is.
_ICON = '<link rel="icon" href="/aliyun/softphone/favicon.svg" type="image/svg+xml">'


def language_of(request: web.Request) -> str:
    """The language of the pages answering `request` (`ui.language`, else Accept-Language)."""
    config = request.app.get(CONFIG)  # absent in apps made of parts (tests): the browser's
    configured = config.ui.language if config is not None else "auto"
    return pick_language(request.headers.get("Accept-Language"), configured)


def page(
    language: str,
    title: str,
    message: str,
    *,
    status: int = 200,
    link: tuple[str, str] | None = None,
    detail: str | None = None,
    refresh_to: str | None = None,
) -> web.Response:
    """A readable page: a title, a sentence, an optional action link, an optional small print.

    `refresh_to`: the page moves on there by itself (meta refresh, no script), for a step a
    redirect cannot take (see auth_views.start_sign_in).
    """
    body = [f"<h1>{escape(title)}</h1>", f"<p>{escape(message)}</p>"]
    if link is not None:
        href, label = link
        body.append(f'<p><a class="button" href="{escape(href)}">{escape(label)}</a></p>')
    if detail:
        body.append(f'<p class="muted">{escape(detail)}</p>')
    refresh = (
        f'<meta http-equiv="refresh" content="0;url={escape(refresh_to)}">' if refresh_to else ""
    )
    html = (
        f"<!doctype html><html lang={language}><head><meta charset=utf-8>"
        + refresh
        + '<meta name="viewport" content="width=device-width, initial-scale=1">'
        + _ICON
        + f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        + "".join(body)
        + "</body></html>"
    )
    response = web.Response(text=html, status=status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["Content-Language"] = language
    response.headers["Vary"] = "Accept-Language"
    return response


def error_page(request: web.Request, error: GatewayError, request_id: str | None) -> web.Response:
    """A person's view of `error`: its status in words, in the request's language.

    English shows the error's own message. Chinese shows the catalog's sentence for the error
    code or, lacking one, for the status, and keeps the English message as small print (it
    names specifics, such as a parameter, that a support person can use).
    """
    language = language_of(request)
    catalog = CATALOGS[language]
    details = []
    if language != ENGLISH:
        details.append(text(language, "page.error.detail", message=error.message))
    if request_id:
        details.append(text(language, "page.error.request_id", id=request_id))
    login = error.extra.get("login")
    return page(
        language,
        catalog[f"page.title.{_status_key(catalog, error)}"],
        error_sentence(language, error),
        status=error.status,
        link=(str(login), catalog["page.error.sign_in"]) if login else None,
        detail=" · ".join(details) or None,
    )


def error_sentence(language: str, error: GatewayError) -> str:
    """`error` in one sentence: its own message in English, the catalog's in other languages."""
    if language == ENGLISH:
        return error.message
    catalog = CATALOGS[language]
    by_code = catalog.get(f"error.{error.error_code}")
    return by_code or catalog[f"page.explain.{_status_key(catalog, error)}"]


def _status_key(catalog: Mapping[str, str], error: GatewayError) -> str:
    return str(error.status) if f"page.title.{error.status}" in catalog else "other"


def redirect(location: str, status: int = 302) -> web.Response:
    """A redirect we can still add cookies to (aiohttp wants HTTPException raised, not returned)."""
    return web.Response(status=status, headers={"Location": location, "Cache-Control": "no-store"})
