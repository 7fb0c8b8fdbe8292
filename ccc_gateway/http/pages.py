"""Small HTML pages the gateway itself shows people (errors, sign-in results)."""

from __future__ import annotations

import base64
import hashlib
from html import escape

from aiohttp import web

_STYLE = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;"
    "color:#1f2933}h1{font-size:1.4rem}code{background:#eef1f4;padding:0 .3em}"
    "a.button{display:inline-block;background:#ff6a00;color:#fff;padding:.4em 1em;"
    "border-radius:4px;text-decoration:none}.muted{color:#66788a;font-size:.9rem}"
)
# The pages carry no script; their own CSP says so (the one inline style is allowed by hash).
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
_CSP = f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; base-uri 'none'; form-action 'self'"


def page(
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
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        + refresh
        + '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        + "".join(body)
        + "</body></html>"
    )
    response = web.Response(text=html, status=status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = _CSP
    return response


def redirect(location: str, status: int = 302) -> web.Response:
    """A redirect we can still add cookies to (aiohttp wants HTTPException raised, not returned)."""
    return web.Response(status=status, headers={"Location": location, "Cache-Control": "no-store"})
