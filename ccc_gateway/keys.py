"""Typed application state, declared once (aiohttp's `web.AppKey`)."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
from aiohttp import web

from ccc_gateway.ccc.client import PopClient
from ccc_gateway.ccc.pop.actions import ActionPolicy
from ccc_gateway.config.load import Config

CONFIG = web.AppKey("config", Config)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
# One pooled client for the CRM and one for Alibaba (OAuth + OpenAPI), never one per request.
UPSTREAM_CLIENT = web.AppKey("upstream_client", aiohttp.ClientSession)
ALIYUN_CLIENT = web.AppKey("aliyun_client", aiohttp.ClientSession)

# Per-request state.
REQUEST_ID = web.RequestKey("request_id", str)

# The softphone API forwarder (ccc/views.py): its POP client (one connection pool for the
# app's lifetime) and its action allow-list.
POP_CLIENT = web.AppKey("ccc_pop_client", PopClient)
ACTION_POLICY = web.AppKey("ccc_action_policy", ActionPolicy)
