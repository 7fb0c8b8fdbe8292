"""The application factory: wiring only.

`create_app(config)` is used by the CLI and by the tests alike; it never reads argv or the
environment. Each feature module registers its own routes with a `setup(app)` function; the
CRM proxy is the catch-all route registered last, so every path the gateway does not own
goes to the CRM.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from ccc_gateway.auth import views as auth_views
from ccc_gateway.auth.login_state import LoginStates
from ccc_gateway.auth.oauth.client import AlibabaOAuthClient
from ccc_gateway.caches import CacheRegistry
from ccc_gateway.ccc import views as ccc_api
from ccc_gateway.ccc.pop.actions import default_actions
from ccc_gateway.config.model import Config
from ccc_gateway.crm_events import views as crm_events
from ccc_gateway.http.errors import NotFound
from ccc_gateway.http.middleware import Handler, gateway_headers, request_context
from ccc_gateway.http.routing import GATEWAY_PREFIX, CatchAllResource, is_gateway_path
from ccc_gateway.keys import (
    ALIYUN_CLIENT,
    CACHES,
    CLOCK,
    CONFIG,
    LOGIN_STATES,
    OAUTH,
    PROXY,
    SESSION_CODEC,
    SESSIONS,
    UPSTREAM_CLIENT,
    WIRED,
)
from ccc_gateway.ops import health as health
from ccc_gateway.ops import metrics as metrics
from ccc_gateway.proxy.body import ResponseFilter
from ccc_gateway.proxy.body_urls import BodyUrlRewriter
from ccc_gateway.proxy.handler import CrmProxy
from ccc_gateway.proxy.pool import create_upstream_client, crm_reachable
from ccc_gateway.runtime.tls import client_context
from ccc_gateway.sessions.codec import SessionCodec
from ccc_gateway.sessions.cookie_storage import CookieSession, is_gateway_cookie
from ccc_gateway.sessions.crm_binding import CrmBinding, CrmIdentity, CrmSessionCookie
from ccc_gateway.sessions.manager import SESSION_COOKIE, SessionManager
from ccc_gateway.sessions.view import expose_storage
from ccc_gateway.softphone import views as softphone
from ccc_gateway.softphone.inject import WidgetInjector

if TYPE_CHECKING:
    # Imported only when `session.store` is set: the redis client costs every worker ~7 MiB.
    from ccc_gateway.sessions.redis_storage import RedisConsumedStates, RedisStore


@dataclass
class Wired:
    """What every proxied request needs of the objects made at startup, bound once: looked
    up in the app instead (`Application.__getitem__` is Python code), they cost each page
    three lookups."""

    proxy: CrmProxy | None = None
    sessions: SessionManager | None = None


def create_app(config: Config, *, clock: Callable[[], float] = time.time) -> web.Application:
    # POP calls are labelled by action: the allowed ones, or the workbench's with "*".
    allowed = config.ccc.actions.allowed
    known = default_actions(config.ccc.version) if allowed is None else allowed
    app_metrics = metrics.Metrics(known_actions=known)
    wired = Wired()
    app = web.Application(
        middlewares=[
            request_context(
                app_metrics, translate=auth_views.as_http, prepare=_session_storage(wired)
            )
        ],
        # Bodies the gateway itself reads (API calls, callbacks); the proxy streams instead.
        client_max_size=max(config.ccc.max_request_size, 64 * 1024),
    )
    app[CONFIG] = config
    app[CLOCK] = clock
    app[WIRED] = wired
    app.cleanup_ctx.append(_outbound_clients)
    app.on_response_prepare.append(_on_response_prepare(wired, config.listen.hsts_max_age))
    health.setup(app)
    health.add_readiness_check(app, "crm", crm_reachable)
    metrics.setup(
        app,
        app_metrics,
        serve_route=config.listen.metrics_port is None,  # moved to the private listener
    )
    health.add_readiness_check(app, "jwks", _jwks_loaded)
    health.add_readiness_check(app, "session_store", _session_store_ready)
    auth_views.setup(app)
    softphone.setup(app)
    ccc_api.setup(app)
    crm_events.setup(app)
    app.router.add_route("*", GATEWAY_PREFIX + "{tail:.*}", _unknown_gateway_route)
    app.router.register_resource(CatchAllResource(_to_crm(wired, config)))
    return app


def reload_keys(app: web.Application, keys: Sequence[str]) -> None:
    """Swap the session key ring in place (SIGHUP): cookies sealed with a listed key still open.

    Every cache is emptied with it: nothing opened under a dropped key may live on.
    """
    app[SESSION_CODEC].replace_keys(keys)
    app[CACHES].clear_all()


async def _outbound_clients(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    upstream = create_upstream_client(config.upstream)
    aliyun = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=100, ssl=client_context(config.aliyun.ca_file), keepalive_timeout=30
        ),
        timeout=aiohttp.ClientTimeout(total=config.aliyun.timeout, connect=5),
        cookie_jar=aiohttp.DummyCookieJar(),
    )
    app[UPSTREAM_CLIENT] = upstream
    app[ALIYUN_CLIENT] = aliyun
    _sign_in_machinery(app, config, upstream, aliyun)
    app[PROXY] = CrmProxy(
        config.upstream,
        upstream,
        trusted_proxies=config.listen.trusted_proxies,
        is_gateway_cookie=is_gateway_cookie,
        identity_headers=(
            app[SESSIONS].identity_headers if config.upstream.identity_headers else None
        ),
        identity_watch=(app[SESSIONS].identity_watch if config.upstream.identity_headers else None),
        response_filter=_response_filter(config),
        public_host=config.aliyun.public_host,
    )
    wired = app[WIRED]
    wired.proxy, wired.sessions = app[PROXY], app[SESSIONS]
    yield
    await app[PROXY].close()
    await upstream.close()
    await aliyun.close()
    if config.session.store is not None:
        from ccc_gateway.sessions.redis_storage import RedisStore

        store = app[SESSIONS].store
        if isinstance(store, RedisStore):
            await store.close()


def _response_filter(config: Config) -> ResponseFilter | None:
    """The widget injector, behind the private-origin link rewrite when that is on."""
    injector = WidgetInjector(config.upstream.login_path) if config.softphone.inject else None
    if not config.upstream.rewrite_body_urls:
        return injector
    return BodyUrlRewriter(config.upstream.url.origin(), config.aliyun.public_origin, injector)


def _sign_in_machinery(
    app: web.Application,
    config: Config,
    upstream: aiohttp.ClientSession,
    aliyun: aiohttp.ClientSession,
) -> None:
    clock = app[CLOCK]
    codec = SessionCodec([key.reveal() for key in config.session.keys])
    oauth = AlibabaOAuthClient(
        aliyun,
        config.aliyun.endpoints,
        config.aliyun.client_id,
        config.aliyun.client_secret.reveal(),
        str(config.aliyun.redirect_uri),
        scope=config.aliyun.scope,
        clock=clock,
        timeout=config.aliyun.timeout,
    )
    crm: CrmBinding | None = None
    if config.crm_binding == "whoami":
        crm = CrmIdentity(
            upstream,
            config.upstream,
            is_gateway_cookie=is_gateway_cookie,
            ttl=config.session.whoami_cache_ttl,
            host=config.aliyun.public_host if config.upstream.preserve_host else None,
        )
    elif config.crm_binding == "cookie" and config.session.crm_session_cookie is not None:
        crm = CrmSessionCookie(config.session.crm_session_cookie, config.session.keys[0].reveal())
    cookies = CookieSession(codec, name=SESSION_COOKIE, max_age=config.session.max_age)
    store, consumed = _session_store(config, cookies, codec)
    whoami_cache = [crm.cache] if isinstance(crm, CrmIdentity) else []
    caches = app[CACHES] = CacheRegistry(*cookies.caches, *whoami_cache)
    app[SESSION_CODEC] = codec
    app[OAUTH] = oauth
    app[SESSIONS] = SessionManager(
        config.session, cookies, oauth, crm, clock=clock, store=store, caches=caches
    )
    app[LOGIN_STATES] = LoginStates(codec, ttl=config.session.login_state_ttl, consumed=consumed)


def _session_store(
    config: Config, cookies: CookieSession, codec: SessionCodec
) -> tuple[RedisStore | None, RedisConsumedStates | None]:
    """The Redis store and consumed-state set when `session.store` is set (else the cookie)."""
    if config.session.store is None:
        return None, None
    from ccc_gateway.sessions.redis_storage import RedisConsumedStates, RedisStore, connect

    redis = connect(config.session.store.reveal())
    # A refresh holds the lock at most as long as Alibaba may take to answer, plus margin; a
    # waiter waits a little longer than that, so a dead holder's lock expires before it gives up.
    lock_ttl = config.aliyun.timeout + 5.0
    store = RedisStore(
        redis,
        cookies,
        codec,
        max_age=config.session.max_age,
        idle_timeout=config.session.idle_timeout,
        lock_ttl=lock_ttl,
        lock_wait=lock_ttl + 1.0,
    )
    return store, RedisConsumedStates(redis)


def _session_storage(wired: Wired) -> Callable[[web.Request], None]:
    """Every request gets the session storage, so a handler added to the app may call
    `aiohttp_session.get_session(request)` (sessions/view.py); none before startup."""

    def prepare(request: web.Request) -> None:
        sessions = wired.sessions
        if sessions is not None:
            expose_storage(request, sessions.store)

    return prepare


def _on_response_prepare(
    wired: Wired, hsts_max_age: float
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    """The app's one on_response_prepare hook: it runs for every response (errors, redirects,
    streamed pages, websockets) as its headers are about to go out. One hook rather than one
    per concern: each is another coroutine and signal round per response.
    """
    add_headers = gateway_headers(hsts_max_age)

    async def on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
        add_headers(request, response)  # request id, HSTS
        sessions = wired.sessions  # None until startup has made it
        if sessions is not None and sessions.cookie_pending(request):
            await sessions.write_cookie(request, response)

    return on_response_prepare


async def _jwks_loaded(app: web.Application) -> str | None:
    oauth = app[OAUTH]
    if oauth.jwks_loaded:
        return None
    try:
        await oauth.load_jwks()
    except Exception as exc:
        return f"cannot load JWKS: {type(exc).__name__}"
    return None


async def _session_store_ready(app: web.Application) -> str | None:
    sessions = app.get(SESSIONS)
    return "not started" if sessions is None else await sessions.store.check()


async def _unknown_gateway_route(request: web.Request) -> web.StreamResponse:
    # Reached when no gateway route matched path and method: say 405 when the path exists.
    allowed: set[str] = set()
    for resource in request.app.router.resources():
        if resource.canonical.startswith(GATEWAY_PREFIX + "{") or resource.canonical == "/{tail}":
            continue
        match, methods = await resource.resolve(request)
        if match is None:
            allowed |= methods
    if allowed:
        raise web.HTTPMethodNotAllowed(request.method, allowed)
    raise NotFound(f"No gateway route {request.method} {request.path}.")


def _to_crm(wired: Wired, config: Config) -> Handler:
    """The catch-all route's handler, bound to its app's proxy (not looked up per request)."""
    identity_headers = config.upstream.identity_headers

    async def to_crm(request: web.Request) -> web.StreamResponse:
        # Disguised spellings of the gateway's own prefix (/ALIYUN/, /aliyun%2F…, /x/../aliyun/)
        # are neither served as gateway routes nor handed to the CRM.
        if is_gateway_path(request):
            raise NotFound(f"No gateway route {request.method} {request.path}.")
        sessions = wired.sessions
        if identity_headers and sessions is not None and sessions.may_be_signed_in(request):
            # The proxy's identity hook is synchronous; the CRM binding check (cached whoami)
            # is not.
            await sessions.note_identity(request)
        if wired.proxy is None:
            raise web.HTTPServiceUnavailable()  # not started (a request before startup)
        return await wired.proxy.handle(request)

    return to_crm
