"""Test knobs under `/_emulator/`: settings, faults, the request log, key rotation, expiry.

JSON in and out; anything unexpected is a 400 with `{"error": "..."}` so a typo in a test is
loud instead of silently ignored.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .faults import parse_fault
from .keys import FAULTS_KEY, REQUEST_LOG_KEY, SIGNING_KEYS_KEY, STORE_KEY
from .settings import EmulatorSettings

TOKEN_FORMATS = ("bearer", "sts")
_BOOL_SETTINGS = ("expires_in_as_string", "rotate_refresh_tokens")
_TTL_SETTINGS = ("access_token_ttl", "refresh_token_ttl", "code_ttl")
PATCHABLE = ("token_format", *_BOOL_SETTINGS, *_TTL_SETTINGS)


class KnobError(Exception):
    """Bad knob input: answered with 400."""


def _bad(message: str) -> web.Response:
    return web.json_response({"error": message}, status=400)


async def _json_object(request: web.Request, allowed: tuple[str, ...]) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, LookupError) as exc:  # bad JSON, bad bytes or an unknown charset
        raise KnobError("body must be JSON") from exc
    if not isinstance(body, dict):
        raise KnobError("body must be a JSON object")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise KnobError(f"unknown fields: {', '.join(unknown)}")
    return body


def settings_view(settings: EmulatorSettings) -> dict[str, Any]:
    return {name: getattr(settings, name) for name in PATCHABLE}


def _checked_setting(name: str, value: Any) -> Any:
    if name == "token_format" and value not in TOKEN_FORMATS:
        raise KnobError("token_format must be bearer or sts")
    if name in _BOOL_SETTINGS and not isinstance(value, bool):
        raise KnobError(f"{name} must be true or false")
    if name in _TTL_SETTINGS:
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise KnobError(f"{name} must be a positive number of seconds")
        return float(value)
    return value


async def get_settings(request: web.Request) -> web.Response:
    return web.json_response(settings_view(request.app[STORE_KEY].settings))


async def patch_settings(request: web.Request) -> web.Response:
    """Change some settings; all of them are checked before any is applied."""
    settings = request.app[STORE_KEY].settings
    try:
        body = await _json_object(request, PATCHABLE)
        checked = {name: _checked_setting(name, value) for name, value in body.items()}
    except KnobError as exc:
        return _bad(str(exc))
    for name, value in checked.items():
        setattr(settings, name, value)
    return web.json_response(settings_view(settings))


async def post_fault(request: web.Request) -> web.Response:
    try:
        body = await _json_object(request, ("endpoint", "status", "error", "delay", "count"))
        fault = parse_fault(body)
    except (KnobError, ValueError) as exc:
        return _bad(str(exc))
    request.app[FAULTS_KEY].add(fault)
    return web.json_response({"faults": request.app[FAULTS_KEY].pending()}, status=201)


async def get_faults(request: web.Request) -> web.Response:
    return web.json_response({"faults": request.app[FAULTS_KEY].pending()})


async def delete_faults(request: web.Request) -> web.Response:
    request.app[FAULTS_KEY].clear()
    return web.json_response({"faults": []})


async def get_requests(request: web.Request) -> web.Response:
    return web.json_response({"requests": request.app[REQUEST_LOG_KEY].entries()})


async def delete_requests(request: web.Request) -> web.Response:
    request.app[REQUEST_LOG_KEY].clear()
    return web.json_response({"requests": []})


async def rotate_keys(request: web.Request) -> web.Response:
    """A new signing key signs from now on; the old ones stay in the JWKS."""
    keys = request.app[SIGNING_KEYS_KEY]
    key = keys.rotate()
    return web.json_response({"kid": key.kid, "kids": [k.kid for k in keys.keys]})


async def expire_tokens(request: web.Request) -> web.Response:
    """Make one agent's access tokens expire now (refresh tokens stay valid)."""
    store = request.app[STORE_KEY]
    try:
        body = await _json_object(request, ("upn",))
    except KnobError as exc:
        return _bad(str(exc))
    upn = body.get("upn")
    if not isinstance(upn, str) or store.settings.agent_by_upn(upn) is None:
        return _bad("upn must name an agent of the emulator")
    return web.json_response({"expired": store.expire_agent_tokens(upn)})


def add_knob_routes(app: web.Application) -> None:
    app.router.add_get("/_emulator/settings", get_settings)
    app.router.add_post("/_emulator/settings", patch_settings)
    app.router.add_get("/_emulator/faults", get_faults)
    app.router.add_post("/_emulator/faults", post_fault)
    app.router.add_delete("/_emulator/faults", delete_faults)
    app.router.add_get("/_emulator/requests", get_requests)
    app.router.add_delete("/_emulator/requests", delete_requests)
    app.router.add_post("/_emulator/keys/rotate", rotate_keys)
    app.router.add_post("/_emulator/tokens/expire", expire_tokens)
