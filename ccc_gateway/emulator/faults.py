"""Injected failures: the next N calls of one endpoint fail, or answer late, on purpose.

Tests set them through `POST /_emulator/faults`; every handler of a faultable endpoint asks
`apply_fault(request.app, "<endpoint>")` first (the POP side asks with "pop").
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .keys import FAULTS_KEY
from .oauth_errors import NO_STORE_HEADERS

FAULT_ENDPOINTS = frozenset({"token", "revoke", "userinfo", "jwks", "pop"})
_FIELDS = frozenset({"endpoint", "status", "error", "delay", "count"})
MAX_DELAY = 120.0  # no longer than the test timeout; a fault must not wedge a run forever


@dataclass
class Fault:
    endpoint: str
    status: int | None = None  # answer with this status (JSON body)
    error: str | None = None  # answer with this OAuth error / POP Code (status 400 unless set)
    delay: float = 0.0  # seconds to wait before answering (alone: then answer normally)
    count: int = 1  # how many calls it still applies to


class FaultRegistry:
    """Pending faults per endpoint, first set first used."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Fault]] = {}

    def add(self, fault: Fault) -> None:
        self._queues.setdefault(fault.endpoint, deque()).append(fault)

    def clear(self) -> None:
        self._queues.clear()

    def take(self, endpoint: str) -> Fault | None:
        """The fault for this call, if any; uses up one of its `count`."""
        queue = self._queues.get(endpoint)
        if not queue:
            return None
        fault = queue[0]
        fault.count -= 1
        if fault.count <= 0:
            queue.popleft()
        return fault

    def pending(self) -> list[dict[str, Any]]:
        return [vars(f).copy() for q in self._queues.values() for f in q]


def parse_fault(body: Any) -> Fault:
    """Validate the JSON of `POST /_emulator/faults`; ValueError says what is wrong."""
    if not isinstance(body, dict):
        raise ValueError("body must be a JSON object")
    unknown = set(body) - _FIELDS
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    endpoint = body.get("endpoint")
    if endpoint not in FAULT_ENDPOINTS:
        raise ValueError(f"endpoint must be one of {', '.join(sorted(FAULT_ENDPOINTS))}")
    fault = Fault(
        endpoint=endpoint,
        status=_optional_int(body, "status", 400, 599),
        error=_optional_str(body, "error"),
        delay=_number(body, "delay", 0.0, MAX_DELAY),
        count=_optional_int(body, "count", 1, 1_000_000) or 1,
    )
    if fault.status is None and fault.error is None and fault.delay == 0:
        raise ValueError("a fault needs at least one of status, error, delay")
    return fault


def _optional_int(body: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer from {low} to {high}")
    return value


def _optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise ValueError(f"{name} must be a non-empty string")
    return value


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float:
    value = body.get(name, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"{name} must be a number from {low} to {high}")
    return float(value)


async def apply_fault(app: web.Application, endpoint: str) -> web.Response | None:
    """Honour a pending fault for `endpoint`: the response to send instead, or None to go on.

    A delay-only fault waits and then returns None so the call is answered normally.
    """
    fault = app[FAULTS_KEY].take(endpoint)
    if fault is None:
        return None
    if fault.delay:
        await asyncio.sleep(fault.delay)
    if fault.status is None and fault.error is None:
        return None
    status = fault.status or 400
    if endpoint == "pop":
        return _pop_fault_response(status, fault.error)
    body = {
        "error": fault.error or ("server_error" if status >= 500 else "invalid_request"),
        "error_description": "fault injected by the emulator",
        "request_id": str(uuid.uuid4()),
    }
    return web.json_response(body, status=status, headers=NO_STORE_HEADERS)


def _pop_fault_response(status: int, code: str | None) -> web.Response:
    # The shape Alibaba's API gateway uses for 4xx/5xx (docs/ccc-openapi.md, section 4).
    body = {
        "RequestId": str(uuid.uuid4()).upper(),
        "HostId": "ccc.emulator",
        "Code": code or ("ServiceUnavailable" if status >= 500 else "InvalidParameter"),
        "Message": "fault injected by the emulator",
    }
    return web.json_response(body, status=status)
