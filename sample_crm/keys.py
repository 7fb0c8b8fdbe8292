"""Typed application and request state, declared once."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from .db import Database
from .sessions import CurrentUser

DB_PATH = web.AppKey("crm_db_path", str)
DB = web.AppKey("crm_db", Database)
LANGUAGE = web.AppKey("crm_language", str)  # auto | zh-CN | en: i18n.pick_language
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("crm_clock")
# Set by the auth middleware only when a session is valid; read with ``request.get(USER)``.
USER = web.RequestKey("crm_user", CurrentUser)
# The HMAC secret shared with the gateway's crm_events (call_log.py); "" turns the receiver off.
EVENTS_SECRET = web.AppKey("crm_events_secret", str)
