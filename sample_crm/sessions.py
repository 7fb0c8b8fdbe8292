"""The CRM's own login session: opaque cookie ids backed by the ``sessions`` table, and CSRF.

Logged-in forms carry the per-session CSRF token stored with the session. The login form has no
session yet, so it uses a double-submit cookie: a random token in a SameSite=Strict cookie that
must come back equal in the form's hidden field (a cross-site page can neither read the cookie
nor make the browser send it).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from aiohttp import hdrs, web

from .db import Database

SESSION_COOKIE = "crm_session"
LOGIN_CSRF_COOKIE = "crm_login_csrf"
CSRF_FIELD = "csrf_token"
SESSION_TTL_SECONDS = 12 * 3600
LOGIN_CSRF_TTL_SECONDS = 3600
# token_urlsafe(32) gives 43 characters; anything much longer is not ours and not worth hashing.
_MAX_TOKEN_LENGTH = 128
_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{32,128}")


@dataclass(frozen=True)
class CurrentUser:
    """The signed-in CRM user of one request."""

    username: str
    display_name: str
    csrf: str
    session_hash: str


def new_token() -> str:
    """A fresh random opaque token (session id or CSRF token)."""
    return secrets.token_urlsafe(32)


def tokens_match(expected: str, given: str | None) -> bool:
    """Constant-time comparison that tolerates a missing or non-ASCII submitted value."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def is_https(request: web.Request) -> bool:
    """True when the browser used HTTPS, directly or through the HTTPS gateway in front.

    The CRM listens on loopback behind the gateway, which terminates TLS and says so in
    X-Forwarded-Proto; trusting the header only decides whether cookies get ``Secure``.
    """
    forwarded = request.headers.get(hdrs.X_FORWARDED_PROTO, "")
    first = forwarded.split(",", 1)[0].strip().lower()
    return request.secure or first == "https"


def _hash_id(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def current_user(request: web.Request, db: Database, now: float) -> CurrentUser | None:
    """The user whose unexpired session the request's cookie names, if any."""
    session_id = request.cookies.get(SESSION_COOKIE, "")
    if not session_id or len(session_id) > _MAX_TOKEN_LENGTH:
        return None
    id_hash = _hash_id(session_id)
    row = db.session(id_hash, now)
    if row is None:
        return None
    return CurrentUser(row.username, row.display_name, row.csrf, id_hash)


def start_session(
    request: web.Request, response: web.StreamResponse, db: Database, username: str, now: float
) -> None:
    """Create a new session for ``username`` and set its cookie on ``response``.

    Always a new id (never the one the browser came with), so an id planted before login
    (session fixation) is worthless afterwards.
    """
    db.purge_expired_sessions(now)
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        db.delete_session(_hash_id(old))
    session_id = new_token()
    db.add_session(_hash_id(session_id), username, new_token(), now, now + SESSION_TTL_SECONDS)
    # HttpOnly: scripts (including anything injected) never see it. Lax: sent on top-level
    # navigations from other sites (links into the CRM work) but not on cross-site POSTs.
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=SESSION_TTL_SECONDS,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=is_https(request),
    )


def end_session(
    request: web.Request, response: web.StreamResponse, db: Database, user: CurrentUser
) -> None:
    """Delete the session server-side and tell the browser to drop the cookie."""
    db.delete_session(user.session_hash)
    # The deletion cookie repeats the attributes so browsers treat it as the same cookie.
    response.del_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="Lax", secure=is_https(request)
    )


def login_csrf_token(request: web.Request) -> str:
    """The login form's double-submit token: the browser's current one, or a new one."""
    token = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if _TOKEN_SHAPE.fullmatch(token):
        return token  # reused so two open login tabs both keep working
    return new_token()


def set_login_csrf_cookie(request: web.Request, response: web.StreamResponse, token: str) -> None:
    """Send the login form's double-submit token (only to /login, never to scripts)."""
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        max_age=LOGIN_CSRF_TTL_SECONDS,
        path="/login",
        httponly=True,
        samesite="Strict",
        secure=is_https(request),
    )


def clear_login_csrf_cookie(request: web.Request, response: web.StreamResponse) -> None:
    """Drop the login token once it has served its purpose."""
    response.del_cookie(
        LOGIN_CSRF_COOKIE,
        path="/login",
        httponly=True,
        samesite="Strict",
        secure=is_https(request),
    )


def login_csrf_ok(request: web.Request, submitted: str | None) -> bool:
    """True when the login form's hidden field equals the double-submit cookie."""
    return tokens_match(request.cookies.get(LOGIN_CSRF_COOKIE, ""), submitted)
