"""The emulated signin.aliyun.com: `GET/POST /oauth2/v1/auth` (RFC 6749 §4.1.1–4.1.2).

Only the standard parameter names count, as at Alibaba: the seed's camelCase `codeChallenge`
is an unknown parameter, ignored, so a client that sends it gets no PKCE protection and its
later `code_verifier` is refused at the token endpoint.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from aiohttp import web
from multidict import MultiDict, MultiMapping
from yarl import URL

from . import pkce
from .i18n import CATALOGS
from .keys import STORE_KEY
from .pages import error_page, form_post_page, language, signin_page
from .settings import Agent, EmulatorSettings, OAuthClient
from .store import EmulatorStore, IssuedCode

KNOWN_SCOPES = ("openid", "aliuid", "profile", "/acs/ccc")
DEFAULT_SCOPE = " ".join(KNOWN_SCOPES)  # no scope sent means every scope of the app
RESPONSE_MODES = ("query", "form_post")
ACCESS_TYPES = ("online", "offline")
PARAMS = (
    "client_id", "redirect_uri", "response_type", "response_mode", "state", "scope",
    "code_challenge", "code_challenge_method", "nonce", "access_type", "prompt",
)  # fmt: skip
CODE_RETENTION = 3600.0  # keep spent codes this long after expiry to catch replays


class UntrustedRedirect(Exception):
    """client_id or redirect_uri is bad: show a page, never redirect (RFC 6749 §4.1.2.1)."""


@dataclass(frozen=True)
class Target:
    """Where and how the answer goes back to the client."""

    redirect_uri: str
    state: str | None
    response_mode: str


class AuthorizeError(Exception):
    """An error the client must hear about at its redirect_uri."""

    def __init__(self, target: Target, error: str, description: str) -> None:
        super().__init__(f"{error}: {description}")
        self.target, self.error, self.description = target, error, description


@dataclass(frozen=True)
class AuthorizeRequest:
    client: OAuthClient
    target: Target
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None
    nonce: str | None
    access_type: str
    params: dict[str, str]  # the recognised parameters, re-sent by the sign-in form


def parse_authorize(params: MultiMapping[str], settings: EmulatorSettings) -> AuthorizeRequest:
    """Validate an authorize request; raises UntrustedRedirect or AuthorizeError."""
    client, redirect_uri = _trusted_client(params, settings)
    mode = params.get("response_mode") or "query"
    target = Target(redirect_uri, params.get("state"), mode if mode in RESPONSE_MODES else "query")
    if mode not in RESPONSE_MODES:
        raise AuthorizeError(target, "invalid_request", f"unsupported response_mode {mode!r}")
    repeated = [name for name in PARAMS if len(params.getall(name, [])) > 1]
    if repeated:
        raise AuthorizeError(target, "invalid_request", f"repeated parameter {repeated[0]}")
    _check_response_type(target, params.get("response_type"))
    challenge, method = _pkce(target, params)
    return AuthorizeRequest(
        client=client,
        target=target,
        scope=_scope(target, params.get("scope")),
        code_challenge=challenge,
        code_challenge_method=method,
        nonce=params.get("nonce") or None,
        access_type=_access_type(target, params.get("access_type")),
        params={name: params[name] for name in PARAMS if name in params},
    )


def _trusted_client(
    params: MultiMapping[str], settings: EmulatorSettings
) -> tuple[OAuthClient, str]:
    ids = params.getall("client_id", [])
    client = settings.client_by_id(ids[0]) if len(ids) == 1 else None
    if client is None:
        raise UntrustedRedirect("Unknown or missing client_id: no registered application.")
    uris = params.getall("redirect_uri", [])
    if len(uris) != 1 or uris[0] not in client.redirect_uris:
        raise UntrustedRedirect("redirect_uri is missing or is not one the application registered.")
    return client, uris[0]


def _check_response_type(target: Target, response_type: str | None) -> None:
    if not response_type:
        raise AuthorizeError(target, "invalid_request", "response_type is required")
    if response_type != "code":
        raise AuthorizeError(
            target, "unsupported_response_type", "only response_type=code is supported"
        )


def _scope(target: Target, scope: str | None) -> str:
    names = list(dict.fromkeys((scope or "").split()))
    unknown = [name for name in names if name not in KNOWN_SCOPES]
    if unknown:
        raise AuthorizeError(target, "invalid_scope", f"unknown scope {unknown[0]!r}")
    return " ".join(names) if names else DEFAULT_SCOPE


def _pkce(target: Target, params: MultiMapping[str]) -> tuple[str | None, str | None]:
    challenge = params.get("code_challenge") or None
    method = params.get("code_challenge_method") or None
    if challenge is None:
        if method is not None:
            raise AuthorizeError(
                target, "invalid_request", "code_challenge_method without code_challenge"
            )
        return None, None
    method = method or "plain"  # RFC 7636 §4.3 default
    if method not in pkce.METHODS:
        raise AuthorizeError(
            target, "invalid_request", "code_challenge_method must be S256 or plain"
        )
    if not pkce.is_pkce_string(challenge):
        raise AuthorizeError(target, "invalid_request", "malformed code_challenge")
    return challenge, method


def _access_type(target: Target, access_type: str | None) -> str:
    value = access_type or "online"
    if value not in ACCESS_TYPES:
        raise AuthorizeError(target, "invalid_request", "access_type must be online or offline")
    return value


def reply(target: Target, fields: dict[str, str], language: str) -> web.Response:
    """Send `fields` (plus state, when one was sent) back to the client's redirect_uri."""
    if target.state is not None:
        fields = {**fields, "state": target.state}
    if target.response_mode == "form_post":
        return form_post_page(language, target.redirect_uri, fields)
    location = URL(target.redirect_uri).update_query(fields)
    return web.Response(status=302, headers={"Location": str(location)})


def error_reply(exc: AuthorizeError, language: str) -> web.Response:
    fields = {"error": exc.error, "error_description": exc.description}
    return reply(exc.target, fields, language)


def issue_code(store: EmulatorStore, request: AuthorizeRequest, agent: Agent) -> IssuedCode:
    now = store.settings.clock()
    for value in [v for v, c in store.codes.items() if c.expires_at + CODE_RETENTION < now]:
        del store.codes[value]
    code = IssuedCode(
        value=secrets.token_urlsafe(32),
        client_id=request.client.client_id,
        redirect_uri=request.target.redirect_uri,
        agent=agent,
        scope=request.scope,
        expires_at=now + store.settings.code_ttl,
        code_challenge=request.code_challenge,
        code_challenge_method=request.code_challenge_method,
        nonce=request.nonce,
        access_type=request.access_type,
    )
    store.codes[code.value] = code
    return code


def _authenticate(settings: EmulatorSettings, username: str, password: str) -> Agent | None:
    agent = settings.agent_by_upn(username)
    if agent is None:
        secrets.compare_digest(password, password)  # same work for unknown users
        return None
    return agent if secrets.compare_digest(password.encode(), agent.password.encode()) else None


async def get_authorize(request: web.Request) -> web.Response:
    """Show the sign-in page for a valid authorize request."""
    lang = language(request)
    try:
        parsed = parse_authorize(request.query, request.app[STORE_KEY].settings)
    except UntrustedRedirect as exc:
        return error_page(lang, str(exc))
    except AuthorizeError as exc:
        return error_reply(exc, lang)
    return signin_page(lang, parsed.params)


async def _text_form(request: web.Request) -> MultiDict[str] | None:
    if request.content_type != "application/x-www-form-urlencoded":
        return None
    try:
        form = await request.post()
    except (ValueError, LookupError):  # bad encoding or unknown charset
        return None
    return MultiDict((k, v) for k, v in form.items() if isinstance(v, str))


async def post_authorize(request: web.Request) -> web.Response:
    """The sign-in form: cancel, wrong credentials, or a code for the client."""
    lang = language(request)
    form = await _text_form(request)
    if form is None:
        return error_page(lang, CATALOGS[lang]["rejected.form"])
    store = request.app[STORE_KEY]
    try:
        parsed = parse_authorize(form, store.settings)
    except UntrustedRedirect as exc:
        return error_page(lang, str(exc))
    except AuthorizeError as exc:
        return error_reply(exc, lang)
    if form.get("action") == "cancel":
        return reply(
            parsed.target,
            {"error": "access_denied", "error_description": "the user cancelled sign-in"},
            lang,
        )
    username = form.get("username", "").strip()
    agent = _authenticate(store.settings, username, form.get("password", ""))
    if agent is None:
        return signin_page(lang, parsed.params, username=username, error="signin.wrong", status=401)
    return reply(parsed.target, {"code": issue_code(store, parsed, agent).value}, lang)
