"""Typed application state, declared once (aiohttp's `web.AppKey`)."""

from __future__ import annotations

from collections.abc import Callable

import aiohttp
from aiohttp import web

from ccc_gateway.config.load import Config

CONFIG = web.AppKey("config", Config)
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
# One pooled client for the CRM and one for Alibaba (OAuth + OpenAPI), never one per request.
UPSTREAM_CLIENT = web.AppKey("upstream_client", aiohttp.ClientSession)
ALIYUN_CLIENT = web.AppKey("aliyun_client", aiohttp.ClientSession)

# Per-request state.
REQUEST_ID = web.RequestKey("request_id", str)
