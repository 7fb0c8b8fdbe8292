"""The emulated CCC OpenAPI endpoint (`ccc.<region>.aliyuncs.com`, POP RPC style).

`GET /` and `POST /` take the parameters from the query string and/or an
`application/x-www-form-urlencoded` body, merged. The checks run in the order of Alibaba's API
gateway: common parameters (Action, Version, Format, RegionId, Timestamp, SignatureNonce),
then credentials (`pop_auth`), then replay, then the product (`ccc_actions`). Gateway refusals
answer HTTP 4xx `{RequestId, HostId, Code, Message, Recommend}`; CCC business refusals answer
HTTP 200 with `Success: false` (docs/ccc-openapi.md, section 4).

The signed `Version` picks the generation: `2017-07-05` runs the classic actions on the classic
instance, `2020-07-01` the CCC 2.0 ones (`ccc2_actions`) on the 2.0 instance, whose business
refusals carry their own HTTP status (docs/emulator.md). Authentication is the same for both.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any

from aiohttp import hdrs, web

from .ccc2_actions import ACTIONS2, error_body2, run_action2, success_body2
from .ccc2_common import Ctx
from .ccc2_state import CccError
from .ccc_actions import ACTIONS, ActionContext, run_action
from .ccc_data import DeviceBook
from .faults import apply_fault
from .pop_auth import NonceLedger, authenticate, check_timestamp
from .pop_params import BusinessError, Params, PopError, invalid
from .settings import CCC2_VERSION, CLASSIC_VERSION, Agent
from .softphone_server import SOFTPHONE_KEY, SoftphoneHub
from .store import EmulatorStore

POP_VERSION = CLASSIC_VERSION
_ACTIONS_OF: dict[str, Collection[str]] = {
    CLASSIC_VERSION: ACTIONS.keys(),
    CCC2_VERSION: ACTIONS2.keys(),
}
FORM_TYPE = "application/x-www-form-urlencoded"


def add_pop_routes(app: web.Application, store: EmulatorStore) -> None:
    """Serve the CCC OpenAPI at `/` (GET and POST), authenticating against `store`'s tokens."""
    endpoint = PopEndpoint(store)
    app.router.add_get("/", endpoint.handle, allow_head=False)
    app.router.add_post("/", endpoint.handle)


class PopEndpoint:
    """The POP endpoint: its replay ledger and the classic agents' devices live here; the 2.0
    agent states live with the calls in the softphone hub."""

    def __init__(self, store: EmulatorStore) -> None:
        self._store = store
        self._nonces = NonceLedger()
        self._devices = DeviceBook()
        self._own_hub: SoftphoneHub | None = None

    def _hub(self, app: web.Application) -> SoftphoneHub:
        """The app's softphone side (calls, 2.0 agent states); a private one in a POP-only app."""
        hub = app.get(SOFTPHONE_KEY)
        if hub is None:
            if self._own_hub is None:
                self._own_hub = SoftphoneHub(self._store.settings)
            hub = self._own_hub
        return hub

    async def handle(self, request: web.Request) -> web.Response:
        fault = await apply_fault(request.app, "pop")
        if fault is not None:
            return fault
        request_id = str(uuid.uuid4()).upper()
        try:
            params = Params(await read_params(request))
            version, action, agent = self._authenticate(params, request.method)
            if version == CCC2_VERSION:
                payload = await self._ccc2(request.app, action, agent, params)
                return web.json_response(success_body2(action, request_id, payload))
            payload = self._classic(action, agent, params)
        except PopError as error:
            return self._error_response(request_id, error)
        except BusinessError as error:
            return web.json_response(_business_body(request_id, error))
        except CccError as error:
            return web.json_response(error_body2(request_id, error), status=error.status)
        return web.json_response(_success_body(request_id, payload))

    def _authenticate(self, params: Params, method: str) -> tuple[str, str, Agent]:
        """(version, action, the token's agent) once the API gateway's checks pass."""
        settings = self._store.settings
        version, action = _check_common(params, settings.region)
        now = settings.clock()
        check_timestamp(params, now, settings.pop_timestamp_skew)
        nonce = params.required("SignatureNonce")
        token = authenticate(params, method, self._store)
        # Only an authenticated call uses up its nonce: a forged one must not block the real one.
        self._nonces.use(nonce, now, settings.pop_timestamp_skew)
        return version, action, token.agent

    def _classic(self, action: str, agent: Agent, params: Params) -> dict[str, Any]:
        settings = self._store.settings
        context = ActionContext(settings, agent, params, self._devices, settings.clock())
        return run_action(action, context)

    async def _ccc2(
        self, app: web.Application, action: str, agent: Agent, params: Params
    ) -> dict[str, Any]:
        """Run a 2.0 action; what it changed on calls reaches the softphones before the answer."""
        hub = self._hub(app)

        def line_of(who: Agent) -> int:
            line = hub.line_of(who.upn)
            return 0 if line is None else line.id

        settings = self._store.settings
        try:
            return run_action2(
                action, Ctx(settings, agent, params, hub.desks, line_of, settings.clock())
            )
        finally:
            await hub.deliver_desk_events()

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


def _check_common(params: Params, region: str) -> tuple[str, str]:
    """(version, action) to run, once the common parameters are acceptable."""
    action = params.required("Action")
    version = params.required("Version")
    actions = _ACTIONS_OF.get(version)
    if actions is None:
        raise invalid("Version")
    if action not in actions:
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
    return version, action


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
