"""The softphone API forwarder: `POST /aliyun/ccc/api?action=Name` (docs/ccc-openapi.md).

The workbench SDK sends `action` (query or form) and `request=<JSON object>` (form body); a
JSON body `{"action": …, "request": {…} or "<JSON text>"}` is accepted too, and any other
field (the SDK's `ajaxOtherParams`) is ignored. `GET ?action=Name&request=…` is served for the
read-only actions only (`pop.actions.GET_ACTIONS`). The handler checks, in this order: same
origin, a request made by script (`http.origin.check_script_request`: no image, link or form
can call the API), GET only for a read-only action, body size, the agent's sign-in (refreshed
when due), the SDK's API `version`, the action name and the allow-list, the pinned instance
(`ccc/request.py`) and with CCC 2.0 the pinned ids and `UserId` (`ccc/agent_id.py`); then it
authenticates as the agent (Bearer, or STS signature v1.0 for `AliyunSTS` tokens) and relays
the answer (`ccc/client.py`). Classic answers are reshaped for the SDK unless `ccc.reshape` is
off, and POP errors become the contract's error body; CCC 2.0 answers pass through with POP's
status (docs/ccc-openapi.md §6). Every forwarded call leaves one audit line (`ccc/audit.py`).

This module alone turns the POP layer's errors into HTTP answers.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

import orjson
from aiohttp import hdrs, web
from multidict import MultiDict, MultiMapping

from ccc_gateway.auth.views import as_http
from ccc_gateway.ccc.agent_id import LOGIN_DETAILS, learn_own_id, pin_user
from ccc_gateway.ccc.audit import audit_call, call_number
from ccc_gateway.ccc.client import PopClient, PopResult
from ccc_gateway.ccc.pop.errors import PopTimeout, PopUnavailable, RequestShapeError
from ccc_gateway.ccc.request import (
    Credentials,
    check_content_length,
    check_get_action,
    credentials_for,
    form_fields,
    json_body_fields,
    pop_error,
    prepare_call,
    secrets_of,
    too_large,
    withheld,
)
from ccc_gateway.http.errors import (
    BadGateway,
    BadRequest,
    GatewayError,
    GatewayTimeout,
    MethodNotAllowed,
    UnsupportedMediaType,
)
from ccc_gateway.http.middleware import wants_html
from ccc_gateway.http.origin import check_same_origin, check_script_request
from ccc_gateway.keys import CLOCK, CONFIG, POP_CLIENT, REQUEST_ID, SESSIONS
from ccc_gateway.ops.metrics import count_pop
from ccc_gateway.proxy.body import Pace, read_request_body
from ccc_gateway.runtime.tls import client_context
from ccc_gateway.sessions.signin import SignIn

log = logging.getLogger(__name__)

API_PATH: Final = "/aliyun/ccc/api"
_JSON_HEADERS: Final = {
    "Content-Type": "application/json; charset=utf-8",  # as web.json_response says it
    "Cache-Control": "no-store",  # answers carry TURN passwords, login signatures
}
# A parsed answer holds no cycles to look for (the fallback of _json_bytes).
_JSON: Final = json.JSONEncoder(check_circular=False, separators=(",", ":"))


def setup(app: web.Application) -> None:
    """Register the route; the PopClient (and its connections) lives as long as the app."""
    app.router.add_get(API_PATH, handle_api, allow_head=False)
    app.router.add_post(API_PATH, handle_api)
    app.cleanup_ctx.append(_pop_client)


async def _pop_client(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    ccc = config.ccc
    client = PopClient(
        endpoint=ccc.endpoint,
        version=ccc.version,
        region_id=ccc.region,
        timeout=ccc.timeout,
        max_response_bytes=ccc.max_response_size,
        reshape=ccc.reshape_answers,  # answers are parsed straight into the SDK's shape
        ssl_context=client_context(config.aliyun.ca_file),  # the trust of every Alibaba call
        clock=app[CLOCK],  # POP Timestamps must follow the gateway's (test-settable) clock
    )
    app[POP_CLIENT] = client
    yield
    await client.close()


async def handle_api(request: web.Request) -> web.Response:
    """Forward one softphone API call to the CCC OpenAPI as the signed-in agent.

    With CCC 2.0 the gateway's own refusals are POP-shaped, so the SDK shows them like any
    API error; classic keeps the contract's `{requestId, errorCode, message}`.
    """
    if not request.app[CONFIG].ccc.is_v2:
        return await _call_api(request)
    try:
        return await _call_api(request)
    except Exception as error:
        # The session layer's own failures (not signed in, CRM user mismatch, store down)
        # get the answer the middleware would give them, POP-shaped.
        answer = error if isinstance(error, GatewayError) else as_http(error)
        if answer is None or wants_html(request):  # a person's navigation: the readable page
            raise
        return pop_shaped(request, answer)


async def _call_api(request: web.Request) -> web.Response:
    app = request.app
    config = app[CONFIG]
    ccc = config.ccc
    v2 = ccc.is_v2  # read once: a property, asked three times below
    check_same_origin(request, config.aliyun.public_origin)
    check_script_request(request)
    if request.method != "POST":
        check_get_action(request.query)  # before the sign-in: not even a refresh for it
    check_content_length(request.content_length, ccc.max_request_size)
    signin = await app[SESSIONS].require(request)
    body = await _body_fields(request, ccc.max_request_size)
    action, params = prepare_call(
        request.query,
        body,
        ccc.actions,
        ccc.instance_id,
        version=ccc.version,
        json_lists=v2,
    )
    credentials = credentials_for(ccc.auth, signin.tokens)
    secrets = secrets_of(credentials)
    if v2:

        async def forward(name: str, own_params: Mapping[str, str]) -> PopResult:
            return await _forward(app, signin, name, own_params, credentials)

        await pin_user(request, signin, params, forward, secrets)
    result = await _forward(app, signin, action, params, credentials)
    if v2:
        if action == LOGIN_DETAILS:
            await learn_own_id(request, signin, result)
        # POP's status and body as they came (reshaped only with ccc.reshape: true), the
        # Message of an error cut where it would quote the string-to-sign.
        answer = withheld(result.body, secrets) if result.status >= 400 else result.body
        return _json_response(answer, result.status)
    if result.status >= 400:
        raise pop_error(result, secrets)
    # The body is already in the SDK's shape when ccc.reshape is on (PopClient reshapes).
    return _json_response(result.body, result.status)


def _json_response(body: Any, status: int) -> web.Response:
    return web.Response(body=_json_bytes(body), status=status, headers=_JSON_HEADERS)


def pop_shaped(request: web.Request, error: GatewayError) -> web.Response:
    """A gateway error in POP's own shape: `{RequestId, Code, Message, HttpStatusCode}` (plus
    `login` on 401 NotAuthenticated, and any other field the error carries)."""
    body = {
        "RequestId": getattr(error, "pop_request_id", None) or request.get(REQUEST_ID),
        "Code": error.error_code,
        "Message": error.message,
        "HttpStatusCode": error.status,
        **error.extra,
    }
    response = _json_response(body, error.status)
    if isinstance(error, MethodNotAllowed):
        response.headers[hdrs.ALLOW] = error.allow
    return response


def _json_bytes(value: Any) -> bytes:
    """The answer as compact UTF-8 JSON.

    orjson is the faster encoder (bench/RESULTS.md); what it will not write (integers beyond
    64 bits, lone surrogates) the standard encoder writes. (orjson writes NaN as null, which
    browsers can parse; json wrote NaN.)
    """
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return _JSON.encode(value).encode("utf-8")


async def _body_fields(request: web.Request, limit: int) -> MultiMapping[object]:
    """The body's fields; empty for GET and bodiless POSTs.

    The server does not decompress bodies (runtime/serve.py): a gzip or deflate body is
    decoded by read_request_body, within `limit` both compressed and decompressed.
    """
    if request.method != "POST" or not request.body_exists:
        return MultiDict()
    ctype = request.content_type
    encoded = request.headers.get(hdrs.CONTENT_ENCODING, "identity").strip().lower()
    try:
        if ctype == "multipart/form-data" and encoded == "identity":
            # aiohttp caps the stream at client_max_size (≥ limit); the fields are checked here.
            form = await request.post()
            if sum(len(v) for v in form.values() if isinstance(v, str | bytes)) > limit:
                raise too_large(limit)
            return form
        upstream = request.app[CONFIG].upstream  # the pace asked of every request body
        raw = await read_request_body(
            request, limit, Pace(upstream.min_upload_rate, upstream.min_upload_rate_window)
        )
        if ctype == "application/x-www-form-urlencoded":
            return form_fields(raw, request.charset)
        if ctype == "application/json" or ctype.endswith("+json"):
            return json_body_fields(raw, request.charset)
    except web.HTTPRequestEntityTooLarge:
        raise too_large(limit) from None
    except (ValueError, LookupError):  # bad encoding, unknown charset, broken multipart
        raise BadRequest("The request body could not be read as a form or JSON.") from None
    raise UnsupportedMediaType(
        "Send the API call as a form (application/x-www-form-urlencoded or "
        "multipart/form-data) or as application/json."
    )


async def _forward(
    app: web.Application,
    signin: SignIn,
    action: str,
    params: Mapping[str, str],
    credentials: Credentials,
) -> PopResult:
    """The POP answer, audited and counted in /aliyun/metrics; 502/504 when there is none."""
    started = time.monotonic()
    try:
        result = await app[POP_CLIENT].call(action, params, credentials)
    except RequestShapeError as error:  # a gateway-only name such as Signature; nothing sent
        count_pop(app, action, "failed", time.monotonic() - started)
        raise BadRequest(f"Bad request parameters: {error}.") from None
    except PopUnavailable as error:
        duration = time.monotonic() - started
        count_pop(app, action, pop_outcome(error), duration)
        timed_out = isinstance(error, PopTimeout)
        audit_call(
            signin, action, 504 if timed_out else 502, None, None, duration, call_number(params)
        )
        log.warning("CCC OpenAPI unavailable: %s", error)
        if timed_out:
            raise GatewayTimeout("Alibaba Cloud's CCC OpenAPI did not answer in time.") from None
        raise BadGateway("Alibaba Cloud's CCC OpenAPI could not be reached.") from None
    except BaseException:  # cancelled, or a bug: counted as a failed call
        count_pop(app, action, "failed", time.monotonic() - started)
        raise
    count_pop(app, action, pop_outcome(result), time.monotonic() - started)
    audit_call(
        signin,
        action,
        result.status,
        result.code,
        result.request_id,
        result.duration,
        call_number(params),
    )
    return result


def pop_outcome(answer: PopResult | PopUnavailable) -> str:
    """The metrics label of a POP call: ok, error (an HTTP error answer), timeout, unavailable."""
    if isinstance(answer, PopUnavailable):
        return "timeout" if isinstance(answer, PopTimeout) else "unavailable"
    return "ok" if answer.status < 400 else "error"
