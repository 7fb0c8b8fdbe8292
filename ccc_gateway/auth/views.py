"""The sign-in routes: start, callback, refresh, revoke, session (docs/oauth.md).

Handlers translate HTTP to the sign-in machinery and back; the protocol lives in `oauth/`,
the cookie handling in `sessions/` and `login_state.py`. `as_http` is the one place the
session layer's own exceptions (storage, codec, sign-in and CRM binding) become HTTP answers:
the middleware asks it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from aiohttp import web
from yarl import URL

from ccc_gateway.auth.login_state import LoginState
from ccc_gateway.auth.oauth.client import AlibabaOAuthClient
from ccc_gateway.auth.oauth.errors import (
    IdTokenError,
    OAuthError,
    OAuthProviderError,
    OAuthTimeout,
    OAuthUnavailable,
)
from ccc_gateway.auth.oauth.pkce import new_nonce, new_state, new_verifier, s256_challenge
from ccc_gateway.auth.oauth.tokens import TokenSet
from ccc_gateway.auth.return_to import safe_return_to
from ccc_gateway.http.errors import (
    BadGateway,
    BadRequest,
    Forbidden,
    GatewayError,
    GatewayTimeout,
    NotAuthenticated,
    ServiceUnavailable,
)
from ccc_gateway.http.origin import check_same_origin
from ccc_gateway.http.pages import error_sentence, language_of, page, redirect
from ccc_gateway.i18n import text
from ccc_gateway.keys import CLOCK, CONFIG, LOGIN_STATES, OAUTH, SESSIONS
from ccc_gateway.ops.metrics import record
from ccc_gateway.sessions.codec import CodecError
from ccc_gateway.sessions.cookie_storage import is_gateway_cookie
from ccc_gateway.sessions.errors import (
    CrmIdentityTimeout,
    CrmIdentityUnavailable,
    CrmUserMismatch,
    NotSignedIn,
    RefreshFailed,
    RefreshTimeout,
)
from ccc_gateway.sessions.manager import LOGIN_URL, SessionManager
from ccc_gateway.sessions.signin import Agent, SignIn
from ccc_gateway.sessions.storage import RefreshLockTimeout, StorageError, StoreUnavailable

log = logging.getLogger(__name__)


def setup(app: web.Application) -> None:
    app.router.add_get("/aliyun/auth", start_sign_in)
    app.router.add_route("GET", "/aliyun/auth/callback", callback)
    app.router.add_route("POST", "/aliyun/auth/callback", callback)
    app.router.add_post("/aliyun/refresh", refresh)
    app.router.add_post("/aliyun/revoke", revoke)
    app.router.add_get("/aliyun/session", session_info)


# Marks the return from the CRM login detour. That return is the last hop of a redirect chain
# that began with the CRM's login form POST, and browsers apply the CRM's CSP `form-action`
# (commonly 'self') to every redirect of a form submission, so a 302 to Alibaba would be
# blocked there. The page answering it moves on by meta refresh, which form-action does not
# govern.
AFTER_CRM_LOGIN = ("via", "crm-login")


def as_http(error: Exception) -> GatewayError | None:
    """The HTTP answer to a session-layer failure; None for anything else (a 500)."""
    if isinstance(error, NotSignedIn):
        if error.args:
            return NotAuthenticated(str(error), login=LOGIN_URL)
        return NotAuthenticated(login=LOGIN_URL)
    if isinstance(error, CrmUserMismatch):
        return Forbidden(
            "This Alibaba sign-in belongs to another CRM user; sign in to Alibaba again.",
            error_code="CrmUserMismatch",
            login=LOGIN_URL,
        )
    if isinstance(error, CrmIdentityUnavailable | RefreshFailed):
        timeout = isinstance(error, CrmIdentityTimeout | RefreshTimeout)
        return (GatewayTimeout if timeout else BadGateway)(str(error))
    if isinstance(error, RefreshLockTimeout):
        return GatewayTimeout(str(error))
    if isinstance(error, StorageError):
        return ServiceUnavailable(str(error), error_code="ServiceUnavailable")
    if isinstance(error, CodecError):  # SessionTooLarge: sizes only, never the value
        log.error("%s", error)
        return GatewayError(str(error), error_code=type(error).__name__)
    return None


async def start_sign_in(request: web.Request) -> web.StreamResponse:
    """Remember a new login state and send the browser to Alibaba's sign-in page."""
    app = request.app
    config = app[CONFIG]
    return_to = safe_return_to(request.query.get("return_to"))
    sessions = app[SESSIONS]
    crm_user = None
    if sessions.crm is not None:
        crm_user = await sessions.crm.current_user(request)
        if crm_user is None:
            # Log in to the CRM first, then come back here to sign in to Alibaba.
            back = str(URL(LOGIN_URL).with_query((("return_to", return_to), AFTER_CRM_LOGIN)))
            # update_query: a PHP CRM's login path keeps its own query (?module=Users&...).
            login = URL(config.upstream.login_path).update_query(next=back)
            return redirect(str(login))
    # The callback needs the session store; better to say so now than after Alibaba's page.
    if await sessions.store.check() is not None:
        raise StoreUnavailable()
    now = app[CLOCK]()
    verifier = new_verifier()
    entry = LoginState(new_state(), verifier, new_nonce(), return_to, crm_user, now)
    states = app[LOGIN_STATES]
    entries = [*states.load(request, now=now), entry]
    target = app[OAUTH].authorize_url(
        state=entry.state, code_challenge=s256_challenge(verifier), nonce=entry.nonce
    )
    if request.query.get(AFTER_CRM_LOGIN[0]) == AFTER_CRM_LOGIN[1]:
        language = language_of(request)
        response = page(
            language,
            text(language, "page.signin.title"),
            text(language, "page.signin.continuing"),
            link=(target, text(language, "page.signin.continue")),
            refresh_to=target,
        )
    else:
        response = redirect(target)
    states.write(response, entries, now=now)
    log.info("sign-in started", extra={"fields": {"crm_user": crm_user}})
    return response


async def callback(request: web.Request) -> web.StreamResponse:
    """Finish a sign-in: check the state, exchange the code, verify the id_token, save."""
    params: dict[str, str] = dict(request.query)
    if request.method == "POST":
        form = await request.post()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    app = request.app
    now = app[CLOCK]()
    states = app[LOGIN_STATES]
    entries = states.load(request, now=now)
    entry, remaining = await states.take(entries, params.get("state", ""), now=now)
    if entry is None:
        record(request, "signin", "invalid_state")  # many: replicas with different session keys?
        return _retry_page(request, "page.signin.expired", "page.signin.start_again", 400)
    try:
        if "error" in params:
            record(request, "signin", "refused")
            return _provider_refused(request, params)
        code = params.get("code")
        if not code:
            raise BadRequest("The callback carries no code.")
        sessions = app[SESSIONS]
        await _check_crm_user(request, sessions, entry)
        signin = await _complete(app[OAUTH], code, entry, now)
    except GatewayError as error:
        record(request, "signin", _outcome(error))
        response = _error_page(request, error)
    else:
        record(request, "signin", "ok")
        await sessions.save(request, signin)
        response = redirect(entry.return_to, 303)
        log.info(
            "signed in", extra={"fields": {"agent": signin.agent.upn, "crm_user": entry.crm_user}}
        )
    states.write(response, remaining, now=now)
    return response


async def _check_crm_user(
    request: web.Request, sessions: SessionManager, entry: LoginState
) -> None:
    """Refuse a sign-in finished by another CRM user than the one who started it.

    A form_post callback is a cross-site POST: the CRM's own (SameSite=Lax) cookie is not
    sent with it, so the CRM cannot say who is logged in. Then the check waits for the first
    use: the sign-in is bound to `entry.crm_user`, and every use compares that with the CRM.
    """
    if sessions.crm is None:
        return
    if request.method == "POST" and not _crm_cookies_sent(request):
        return
    try:
        crm_user = await sessions.crm.current_user(request)
    except CrmIdentityUnavailable as error:
        raise as_http(error) or BadGateway(str(error)) from None
    if crm_user != entry.crm_user:
        raise Forbidden("The CRM user changed during the sign-in.", error_code="CrmUserMismatch")


def _crm_cookies_sent(request: web.Request) -> bool:
    return any(not is_gateway_cookie(name) for name in request.cookies)


async def _complete(oauth: AlibabaOAuthClient, code: str, entry: LoginState, now: float) -> SignIn:
    try:
        tokens = await oauth.exchange_code(code, entry.verifier)
        claims = await _identity(oauth, tokens, entry.nonce)
    except OAuthProviderError as error:
        raise BadRequest(f"Alibaba Cloud refused the sign-in ({error.error}).") from None
    except IdTokenError as error:
        log.warning("id_token rejected: %s", error)
        raise BadGateway("Alibaba Cloud's identity token did not verify.") from None
    except OAuthUnavailable as error:
        cls = GatewayTimeout if isinstance(error, OAuthTimeout) else BadGateway
        raise cls("Alibaba Cloud did not answer the sign-in; try again.") from None
    except OAuthError:
        raise BadGateway("Alibaba Cloud's sign-in answer was not understood.") from None
    upn = str(
        claims.get("upn") or claims.get("login_name") or claims.get("name") or claims.get("sub")
    )
    agent = Agent(upn=upn, name=str(claims.get("name") or upn), uid=_optional(claims.get("uid")))
    return SignIn.new(tokens, agent, entry.crm_user, now)


async def _identity(oauth: AlibabaOAuthClient, tokens: TokenSet, nonce: str) -> dict[str, Any]:
    if tokens.id_token:
        return await oauth.verify_id_token(tokens.id_token, nonce=nonce)
    return await oauth.userinfo(tokens.access_token)


def _optional(value: Any) -> str | None:
    return None if value is None else str(value)


def _provider_refused(request: web.Request, params: dict[str, str]) -> web.Response:
    error = params.get("error", "")[:64]
    description = params.get("error_description", "")[:300]
    log.info("Alibaba returned a sign-in error", extra={"fields": {"error": error}})
    language = language_of(request)
    message = (
        text(language, "page.signin.cancelled")
        if error == "access_denied"
        else text(language, "page.signin.refused", error=error)
    )
    return _signin_page(
        request, message, description or text(language, "page.signin.try_again"), 400
    )


def _retry_page(request: web.Request, message: str, detail: str, status: int) -> web.Response:
    """A sign-in result page of two catalog sentences (keys `message`, `detail`)."""
    language = language_of(request)
    return _signin_page(request, text(language, message), text(language, detail), status)


def _signin_page(request: web.Request, message: str, detail: str, status: int) -> web.Response:
    language = language_of(request)
    return page(
        language,
        text(language, "page.signin.title"),
        message,
        status=status,
        link=(LOGIN_URL, text(language, "page.signin.again")),
        detail=detail,
    )


def _error_page(request: web.Request, error: GatewayError) -> web.Response:
    """A failed callback: the error's message (translated where the catalog has its code)."""
    language = language_of(request)
    nothing_saved = text(language, "page.signin.nothing_saved")
    return _signin_page(request, error_sentence(language, error), nothing_saved, error.status)


async def refresh(request: web.Request) -> web.Response:
    """Refresh the access token now (the softphone's "Refresh")."""
    check_same_origin(request, request.app[CONFIG].aliyun.public_origin)
    sessions = request.app[SESSIONS]
    signin = await sessions.require(request)
    if signin.tokens.refresh_token is None:
        raise BadRequest("This sign-in has no refresh token; sign in again to renew it.")
    signin = await sessions.refresh(
        request, signin.with_tokens(_expired(signin.tokens), signin.last_used)
    )
    shown = signin.crm_user if sessions.crm is None or sessions.crm.names_users else None
    return web.json_response(_session_body(signin, shown), headers={"Cache-Control": "no-store"})


def _expired(tokens: TokenSet) -> TokenSet:
    # A forced refresh is a refresh of a token treated as already expired, so the single-flight
    # logic (which reuses any result newer than the token it holds) applies unchanged.
    return replace(tokens, expires_at=0.0)


async def revoke(request: web.Request) -> web.Response:
    """Revoke the tokens at Alibaba and forget the sign-in, even when Alibaba is unreachable."""
    check_same_origin(request, request.app[CONFIG].aliyun.public_origin)
    sessions = request.app[SESSIONS]
    signin = await sessions.load(request)
    if signin is None:
        sessions.clear(request)
        return web.json_response({"signedIn": False, "revoked": False, "message": "Not signed in."})
    # Like every other use of a sign-in: CRM user B on a shared PC cannot sign agent A out.
    await sessions.check_binding(request, signin)
    oauth = request.app[OAUTH]
    confirmed = True
    for token in (signin.tokens.refresh_token, signin.tokens.access_token):
        if token is None:
            continue
        try:
            await oauth.revoke(token)
        except OAuthError:
            confirmed = False
    await sessions.forget(request, signin)
    record(request, "revoke", "ok" if confirmed else "unconfirmed")
    log.info("signed out", extra={"fields": {"agent": signin.agent.upn, "confirmed": confirmed}})
    message = (
        "Signed out."
        if confirmed
        else (
            "Signed out here, but Alibaba Cloud could not confirm the revocation; the token "
            "expires by itself."
        )
    )
    return web.json_response({"signedIn": False, "revoked": confirmed, "message": message})


async def session_info(request: web.Request) -> web.Response:
    """What the softphone shows: who is signed in, until when, for which CRM user."""
    sessions = request.app[SESSIONS]
    signin = await sessions.load(request)
    crm = sessions.crm
    crm_user = await sessions.current_crm_user(request) if crm is not None else None
    if signin is not None and crm is not None and crm_user != signin.crm_user:
        signin = None  # belongs to another CRM user: not usable here
    if crm is None:
        crm_user = signin.crm_user if signin else None
    elif not crm.names_users:
        crm_user = None  # a hash of the CRM's session cookie: nothing to show
    body = _session_body(signin, crm_user)
    return web.json_response(body, headers={"Cache-Control": "no-store"})


def _session_body(signin: SignIn | None, crm_user: str | None) -> dict[str, Any]:
    if signin is None:
        return {"signedIn": False, "agent": None, "expiresAt": None, "crmUser": crm_user}
    expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(signin.tokens.expires_at))
    return {
        "signedIn": True,
        "agent": {"upn": signin.agent.upn, "name": signin.agent.name},
        "expiresAt": expires,
        "crmUser": crm_user,
    }


def _outcome(error: GatewayError) -> str:
    """The metrics label of a callback that failed with `error`."""
    return {504: "timeout", 502: "unavailable", 503: "unavailable"}.get(error.status, "failed")
