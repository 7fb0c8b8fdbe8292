"""The emulated CCC OpenAPI endpoint (`ccc.<region>.aliyuncs.com`, POP RPC style).

`GET /` and `POST /` take the parameters from the query string and/or an
`application/x-www-form-urlencoded` body, merged. The checks run in the order of Alibaba's API
gateway: common parameters (Action, Version, Format, RegionId, Timestamp, SignatureNonce),
then credentials (`pop_auth`), then replay, then the product (`ccc_actions`). Gateway refusals
answer HTTP 4xx `{RequestId, HostId, Code, Message, Recommend}`; CCC business refusals answer
HTTP 200 with `Success: false` (docs/ccc-openapi.md, section 4).
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import hdrs, web

from .ccc_actions import ACTIONS, ActionContext, run_action
from .ccc_data import DeviceBook
from .faults import apply_fault
from .pop_auth import NonceLedger, authenticate, check_timestamp
from .pop_params import BusinessError, Params, PopError, invalid
from .store import EmulatorStore

POP_VERSION = "2017-07-05"
FORM_TYPE = "application/x-www-form-urlencoded"


def add_pop_routes(app: web.Application, store: EmulatorStore) -> None:
    """Serve the CCC OpenAPI at `/` (GET and POST), authenticating against `store`'s tokens."""
    endpoint = PopEndpoint(store)
    app.router.add_get("/", endpoint.handle, allow_head=False)
    app.router.add_post("/", endpoint.handle)


class PopEndpoint:
    """One emulated CCC instance: its replay ledger and its agents' devices live here."""

    def __init__(self, store: EmulatorStore) -> None:
        self._store = store
        self._nonces = NonceLedger()
        self._devices = DeviceBook()

    async def handle(self, request: web.Request) -> web.Response:
        fault = await apply_fault(request.app, "pop")
        if fault is not None:
            return fault
        request_id = str(uuid.uuid4()).upper()
        try:
            params = Params(await read_params(request))
            payload = self._answer(params, request.method)
        except PopError as error:
            return self._error_response(request_id, error)
        except BusinessError as error:
            return web.json_response(_business_body(request_id, error))
        return web.json_response(_success_body(request_id, payload))

    def _answer(self, params: Params, method: str) -> dict[str, Any]:
        settings = self._store.settings
        action = _check_common(params, settings.region)
        now = settings.clock()
        check_timestamp(params, now, settings.pop_timestamp_skew)
        nonce = params.required("SignatureNonce")
        token = authenticate(params, method, self._store)
        # Only an authenticated call uses up its nonce: a forged one must not block the real one.
        self._nonces.use(nonce, now, settings.pop_timestamp_skew)
        context = ActionContext(settings, token.agent, params, self._devices, now)
        return run_action(action, context)

    def _error_response(self, request_id: str, error: PopError) -> web.Response:
        region = self._store.settings.region
        body = {
            "RequestId": request_id,
            "HostId": f"ccc.{region}.aliyuncs.com",
            "Code": error.code,
            "Message": error.message,
            "Recommend": (
                f"https://api.aliyun.com/troubleshoot?q={error.code}&product=CCC"
                f"&requestId={request_id}"
            ),
        }
        return web.json_response(body, status=error.status)


async def read_params(request: web.Request) -> dict[str, str]:
    """Query and form body merged; a name given twice is refused as ambiguous to sign."""
    pairs: list[tuple[str, str]] = list(request.query.items())
    if request.method == hdrs.METH_POST and request.content_type == FORM_TYPE:
        pairs.extend((name, str(value)) for name, value in (await request.post()).items())
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            raise PopError(400, "InvalidParameter", f"Parameter {name} is given more than once.")
        params[name] = value
    return params


def _check_common(params: Params, region: str) -> str:
    """The action to run, once the common parameters are acceptable."""
    action = params.required("Action")
    version = params.required("Version")
    if version != POP_VERSION:
        raise invalid("Version")
    if action not in ACTIONS:
        raise PopError(
            404,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        )
    # Alibaba defaults to XML; the emulator speaks JSON only, so a caller that forgot
    # Format=JSON fails loudly here instead of parsing a shape it never gets in production.
    if (params.get("Format") or "XML").upper() != "JSON":
        raise PopError(
            400, "InvalidParameter.Format", "Specified parameter Format is not valid (JSON only)."
        )
    region_id = params.get("RegionId")
    if region_id is not None and region_id != region:
        raise invalid("RegionId")
    return action


def _success_body(request_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "RequestId": request_id,
        "Success": True,
        "Code": "OK",
        "Message": "",
        "HttpStatusCode": 200,
    }
    body.update(payload)
    return body


def _business_body(request_id: str, error: BusinessError) -> dict[str, Any]:
    return {
        "RequestId": request_id,
        "Success": False,
        "Code": error.code,
        "Message": error.message,
        "HttpStatusCode": error.http_status,
    }
