"""The emulator's home page for people: "ring an agent" (what makes the demo's phone ring).

`GET /` is Alibaba's POP endpoint, which answers a request without `Action` with a JSON
`MissingAction` error; a browser opening the emulator's address (a person following the demo)
gets this page instead: a form that pushes an incoming call to an agent's softphone through
the emulator's own test route (`POST /_emulator/calls`), and the equivalent command line.
Programs (any query string, or no `text/html` in Accept) still reach the POP endpoint.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable
from html import escape

from aiohttp import web

from .i18n import CATALOGS
from .keys import STORE_KEY
from .pages import language

_SCRIPT = """
document.getElementById('ring').addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = event.target, out = document.getElementById('result');
  const text = JSON.parse(form.dataset.text);
  const body = {agent: form.agent.value, caller: form.caller.value.trim()};
  const answer = await fetch('/_emulator/calls', {method: 'POST',
    headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
  const data = await answer.json().catch(() => ({}));
  out.textContent = answer.status === 201 ? text.ringing.replace('{id}', data.id)
    : answer.status === 409 ? text.offline
    : text.failed.replace('{error}', data.error || answer.status);
});
"""


def wants_ring_page(request: web.Request) -> bool:
    """A person opening the emulator's address: GET /, no query, a browser's Accept."""
    return (
        request.method == "GET"
        and request.path == "/"
        and not request.query_string
        and "text/html" in request.headers.get("Accept", "")
    )


@web.middleware
async def ring_page(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Answer a person's GET / with the ring form; everything else goes on as before."""
    if not wants_ring_page(request):
        return await handler(request)
    lang = language(request)
    prefix = "ring."
    text = {k.removeprefix(prefix): v for k, v in CATALOGS[lang].items() if k.startswith(prefix)}
    return _page(request, text, lang)


def _page(request: web.Request, text: dict[str, str], lang: str) -> web.Response:
    settings = request.app[STORE_KEY].settings
    nonce = secrets.token_urlsafe(12)
    options = "".join(
        f'<option value="{escape(a.upn)}">{escape(a.upn)}</option>' for a in settings.agents
    )
    first = settings.agents[0].upn if settings.agents else "agent1@ccc-demo.onaliyun.com"
    command = (
        f"ccc-gateway emulator call --url {settings.public_url.rstrip('/')} "
        f"--agent {first} --caller 135012345678"
    )
    html = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        f"<title>{escape(text['title'])}</title></head><body>"
        f"<h1>{escape(text['title'])}</h1><p>{escape(text['lead'])}</p>"
        f'<form id="ring" data-text="{escape(json.dumps(text))}">'
        f'<label>{escape(text["agent"])} <select name="agent">{options}</select></label> '
        f'<label>{escape(text["caller"])} <input name="caller" value="135012345678"></label> '
        f'<button type="submit">{escape(text["ring"])}</button></form>'
        f'<p id="result" role="status"></p>'
        f"<p>{escape(text['cli'])}</p><pre>{escape(command)}</pre>"
        f'<script nonce="{nonce}">{_SCRIPT}</script></body></html>'
    )
    csp = (
        f"default-src 'none'; script-src 'nonce-{nonce}'; connect-src 'self'; "
        "frame-ancestors 'none'"
    )
    return web.Response(
        text=html,
        content_type="text/html",
        headers={"Content-Security-Policy": csp, "Cache-Control": "no-store"},
    )


def add_ring_page(app: web.Application) -> None:
    """Put the ring form in front of the POP endpoint's GET /."""
    app.middlewares.append(ring_page)
