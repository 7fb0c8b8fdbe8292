"""Sign-in and sign-out: the login form, its submission, logout, and the login requirement."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import hdrs, web

from .db import Database, User
from .i18n import t
from .keys import CLOCK, DB, USER
from .layout import csrf_input, error_response, esc, render
from .passwords import dummy_hash, verify_password
from .redirects import login_url, safe_next
from .sessions import (
    CSRF_FIELD,
    clear_login_csrf_cookie,
    current_user,
    end_session,
    login_csrf_ok,
    login_csrf_token,
    set_login_csrf_cookie,
    start_session,
    tokens_match,
)

# Reachable without a CRM session. /api/me answers 401 JSON itself (the gateway calls it).
# /api/call-events is the gateway's server-to-server post: signed (call_log.py), no login.
PUBLIC_PATHS = frozenset({"/login", "/healthz", "/api/me", "/api/call-events"})
PUBLIC_PREFIXES = ("/static/",)
# Longer inputs cannot be valid; refusing them early avoids hashing megabytes with scrypt.
MAX_USERNAME = 64
MAX_PASSWORD = 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


@web.middleware
async def require_login(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Attach the signed-in user to the request; send signed-out browsers to the login page."""
    if request.path.startswith(PUBLIC_PREFIXES):
        return await handler(request)  # static files: no session lookup needed
    user = current_user(request, request.app[DB], request.app[CLOCK]())
    if user is not None:
        request[USER] = user
    elif not _is_public(request.path):
        raise web.HTTPSeeOther(login_url(_return_path(request)))
    return await handler(request)


def _return_path(request: web.Request) -> str | None:
    # Only a GET can be repeated after login; a POST (e.g. /logout) just goes to the form.
    if request.method in (hdrs.METH_GET, hdrs.METH_HEAD):
        return request.rel_url.raw_path_qs
    return None


async def _read_form(request: web.Request) -> Mapping[str, object]:
    """The posted form; a body that is not a form is the client's error (400), not ours."""
    try:
        return await request.post()
    except ValueError as exc:  # e.g. multipart without a (matching) boundary
        raise web.HTTPBadRequest(reason="Malformed form") from exc


def _field(form: Mapping[str, object], name: str) -> str:
    value = form.get(name, "")
    return value if isinstance(value, str) else ""


def _login_page(
    request: web.Request,
    token: str,
    next_path: str,
    *,
    message: str = "",
    username: str = "",
    status: int = 200,
) -> web.Response:
    alert = f'<p class="alert" role="alert">{esc(message)}</p>' if message else ""
    body = (
        f'<section class="login"><h1>{esc(t(request, "login.title"))}</h1>'
        f"{alert}"
        '<form method="post" action="/login" class="login-form">'
        f"{csrf_input(token)}"
        f'<input type="hidden" name="next" value="{esc(next_path)}">'
        f'<label for="username">{esc(t(request, "login.username"))}</label>'
        '<input id="username" name="username" autocomplete="username" required autofocus'
        f' value="{esc(username)}">'
        f'<label for="password">{esc(t(request, "login.password"))}</label>'
        '<input id="password" name="password" type="password" autocomplete="current-password"'
        " required>"
        f'<button type="submit">{esc(t(request, "login.submit"))}</button></form></section>'
    )
    response = render(request, t(request, "login.title"), body, status)
    set_login_csrf_cookie(request, response, token)
    return response


async def login_form(request: web.Request) -> web.StreamResponse:
    """GET /login: the sign-in form (or straight on, when already signed in)."""
    next_path = safe_next(request.query.get("next"))
    if request.get(USER) is not None:
        raise web.HTTPSeeOther(next_path)
    return _login_page(request, login_csrf_token(request), next_path)


async def authenticate(db: Database, username: str, password: str) -> User | None:
    """The user when the credentials match; scrypt runs in a thread to keep the loop free."""
    user = db.user(username) if username and len(username) <= MAX_USERNAME else None
    if len(password) > MAX_PASSWORD:
        return None
    # Unknown users cost the same hash as known ones, so timing does not reveal user names.
    stored = user.password_hash if user else await asyncio.to_thread(dummy_hash)
    matches = await asyncio.to_thread(verify_password, password, stored)
    return user if matches and user is not None else None


async def login_submit(request: web.Request) -> web.StreamResponse:
    """POST /login: check CSRF and credentials, then start a fresh session."""
    form = await _read_form(request)
    next_path = safe_next(_field(form, "next"))
    username = _field(form, "username").strip().lower()
    if not login_csrf_ok(request, _field(form, CSRF_FIELD)):
        message = t(request, "login.expired")
        return _login_page(
            request,
            login_csrf_token(request),
            next_path,
            message=message,
            username=username,
            status=403,
        )
    user = await authenticate(request.app[DB], username, _field(form, "password"))
    if user is None:
        return _login_page(
            request,
            login_csrf_token(request),
            next_path,
            username=username,
            message=t(request, "login.wrong"),
            status=401,
        )
    response = web.Response(status=303, headers={hdrs.LOCATION: next_path})
    start_session(request, response, request.app[DB], user.username, request.app[CLOCK]())
    clear_login_csrf_cookie(request, response)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    """POST /logout: end the session (CSRF-protected) and return to the login form."""
    user = request.get(USER)
    if user is None:  # require_login already redirects; this keeps the type checker honest
        raise web.HTTPSeeOther("/login")
    form = await _read_form(request)
    if not tokens_match(user.csrf, _field(form, CSRF_FIELD)):
        return error_response(
            request,
            403,
            t(request, "logout.refused"),
            t(request, "logout.stale"),
        )
    response = web.Response(status=303, headers={hdrs.LOCATION: "/login"})
    end_session(request, response, request.app[DB], user)
    return response


def setup_routes(app: web.Application) -> None:
    """Register the sign-in routes."""
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login_submit)
    app.router.add_post("/logout", logout)
