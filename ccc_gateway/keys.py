"""Typed application state, declared once (aiohttp's `web.AppKey` and `web.RequestKey`).

Types of feature packages are imported for the type checker only, so every layer may import
this module without importing the features.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from ccc_gateway.config.model import Config

if TYPE_CHECKING:
    from ccc_gateway.app import Wired
    from ccc_gateway.ccc.client import PopClient
    from ccc_gateway.crm_events.delivery import Delivery
    from ccc_gateway.ops.metrics import Metrics
    from ccc_gateway.proxy.handler import CrmProxy
    from ccc_gateway.sessions.codec import SessionCodec

CONFIG = web.AppKey("config", Config)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
# One pooled client for the CRM and one for Alibaba (OAuth + OpenAPI), never one per request.
UPSTREAM_CLIENT = web.AppKey("upstream_client", aiohttp.ClientSession)
ALIYUN_CLIENT = web.AppKey("aliyun_client", aiohttp.ClientSession)

# Operations (ops/metrics.py) and the composition root (app.py).
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
PROXY: web.AppKey[CrmProxy] = web.AppKey("proxy")
SESSION_CODEC: web.AppKey[SessionCodec] = web.AppKey("session_codec")
WIRED: web.AppKey[Wired] = web.AppKey("wired")

# Per-request state.
REQUEST_ID = web.RequestKey("request_id", str)
# proxy/body_urls.py: whether the filter it wraps (the widget) wanted this response.
INNER_FILTER_WANTS = web.RequestKey("inner_filter_wants", bool)

# The softphone API forwarder (ccc/views.py): its POP client, one connection pool for the
# app's lifetime. (Its action allow-list is the configuration's: config.ccc.actions.)
POP_CLIENT: web.AppKey[PopClient] = web.AppKey("ccc_pop_client")

# Sign-in and sessions (auth/, sessions/). Their types are imported for type checking only, so
# this module stays below the feature packages.
if TYPE_CHECKING:
    from ccc_gateway.auth.login_state import LoginStates
    from ccc_gateway.auth.oauth.client import AlibabaOAuthClient
    from ccc_gateway.caches import CacheRegistry
    from ccc_gateway.sessions.manager import SessionManager
    from ccc_gateway.sessions.redis_storage import Held

SESSIONS: web.AppKey[SessionManager] = web.AppKey("sessions")
OAUTH: web.AppKey[AlibabaOAuthClient] = web.AppKey("oauth")
LOGIN_STATES: web.AppKey[LoginStates] = web.AppKey("login_states")
CACHES: web.AppKey[CacheRegistry] = web.AppKey("caches")  # caches.py: every cache, one list
# The sign-in to write into the response's cookie, or manager.CLEAR to delete it.
SIGNIN_UPDATE: web.RequestKey[object] = web.RequestKey("signin_update")
AGENT_IDENTITY: web.RequestKey[Mapping[str, str]] = web.RequestKey("agent_identity")
# The Redis store's handle behind this request's sign-in (sessions/redis_storage.py).
REDIS_HANDLE: web.RequestKey[Held] = web.RequestKey("redis_session_handle")

# Readiness (ops/health.py): the named checks /aliyun/readyz runs; a check answers None when
# ready, else why not.
ReadinessCheck = Callable[[web.Application], Awaitable[str | None]]
READINESS_CHECKS = web.AppKey("readiness_checks", dict[str, ReadinessCheck])

# Call events to the CRM (crm_events/): the delivery queue, only when crm_events.url is set.
CRM_EVENTS: web.AppKey[Delivery] = web.AppKey("crm_events")
