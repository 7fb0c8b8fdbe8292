"""Typed application keys of the emulator app, declared once; the OAuth and POP sides read them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .store import EmulatorStore

if TYPE_CHECKING:  # the modules below import this one; only their types are needed here
    from .faults import FaultRegistry
    from .jws import KeyRing
    from .request_log import RequestLog

STORE_KEY = web.AppKey("emulator_store", EmulatorStore)
SIGNING_KEYS_KEY: web.AppKey[KeyRing] = web.AppKey("emulator_signing_keys")
FAULTS_KEY: web.AppKey[FaultRegistry] = web.AppKey("emulator_faults")
REQUEST_LOG_KEY: web.AppKey[RequestLog] = web.AppKey("emulator_request_log")
