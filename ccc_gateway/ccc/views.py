"""The softphone API forwarder: `POST /aliyun/ccc/api?action=Name` (aliyun-protocol.md §2–3).

The workbench SDK sends `action` (query or form) and `request=<JSON object>` (form body); a
JSON body `{"action": …, "request": {…} or "<JSON text>"}` is accepted too, and any other
field (the SDK's `ajaxOtherParams`) is ignored. `GET ?action=Name&request=…` is served for the
read-only actions only (`ccc_actions.GET_ACTIONS`). The handler checks, in this order: same
origin, a request made by script (`same_origin.check_script_request`: no image, link or form
can call the API), GET only for a read-only action, body size, the agent's sign-in (refreshed
when due), the action name and the allow-list, the pinned instance; then it flattens the
parameters (`pop.flatten_request`), authenticates as the agent (Bearer, or STS signature v1.0
for `AliyunSTS` tokens) and relays the answer, reshaped for the SDK (as it is parsed,
`pop.loads_reshaped`) unless `ccc.reshape` is off. Every forwarded call leaves one audit log
line.

The parsing and decision helpers are pure functions raising `GatewayError`s; the protocol
itself stays in `pop.py` and `ccc_client.py`.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final

import orjson
from aiohttp import hdrs, web
from multidict import MultiDict, MultiDictProxy, MultiMapping
from yarl import query_to_pairs

from ccc_gateway.auth.oauth.errors import OAuthProtocolError
from ccc_gateway.auth.oauth.tokens import StsCredentials, TokenSet, sts_credentials
from ccc_gateway.auth.views import SESSIONS
from ccc_gateway.ccc.client import BearerCredentials, PopClient, PopResult, PopUnavailable
from ccc_gateway.ccc.pop.actions import GET_ACTIONS, ActionPolicy, valid_action_name
from ccc_gateway.ccc.pop.protocol import RequestShapeError, flatten_request
from ccc_gateway.http.errors import (
    BadGateway,
    BadRequest,
    Forbidden,
    GatewayError,
    GatewayTimeout,
    MethodNotAllowed,
    PayloadTooLarge,
    PopError,
)
from ccc_gateway.http.origin import check_same_origin, check_script_request
from ccc_gateway.keys import CLOCK, CONFIG
from ccc_gateway.ops.log import AUDIT_LOGGER, scrubbed
from ccc_gateway.ops.metrics import count_pop
from ccc_gateway.proxy.body import Pace, read_request_body
from ccc_gateway.runtime.tls import client_context
from ccc_gateway.sessions.manager import LOGIN_URL
from ccc_gateway.sessions.signin import SignIn

log = logging.getLogger(__name__)
audit_log = logging.getLogger(AUDIT_LOGGER)

API_PATH: Final = "/aliyun/ccc/api"
ACTION_FIELD: Final = "action"  # the SDK's default `ajaxApiParamName`
REQUEST_FIELD: Final = "request"
INSTANCE_PARAM: Final = "InstanceId"
_INSTANCE_LOWER: Final = INSTANCE_PARAM.lower()
# POP codes that mean "this token no longer works": only a new sign-in helps.
SIGN_IN_AGAIN_CODES: Final = ("InvalidBearerToken", "InvalidSecurityToken", "InvalidAccessKeyId")
MAX_MESSAGE = 500  # POP messages relayed to the browser are cut to this many characters
_JSON_HEADERS: Final = {
    "Content-Type": "application/json; charset=utf-8",  # as web.json_response says it
    "Cache-Control": "no-store",  # answers carry TURN passwords, login signatures
}
# A parsed answer holds no cycles to look for (the fallback of _json_bytes).
_JSON: Final = json.JSONEncoder(check_circular=False, separators=(",", ":"))

POP_CLIENT = web.AppKey("ccc_pop_client", PopClient)

Credentials = BearerCredentials | StsCredentials


class UnsupportedMediaType(GatewayError):
    status = 415
    error_code = "UnsupportedMediaType"


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
        reshape=ccc.reshape,  # answers are parsed straight into the SDK's shape
        ssl_context=client_context(config.aliyun.ca_file),  # the trust of every Alibaba call
        clock=app[CLOCK],  # POP Timestamps must follow the gateway's (test-settable) clock
    )
    app[POP_CLIENT] = client
    yield
    await client.close()


# Parsing (pure)


def check_content_length(length: int | None, limit: int) -> None:
    """413 up front when the declared body is over the limit, before reading a byte of it."""
    if length is not None and length > limit:
        raise _too_large(limit)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is over {limit} bytes.")


def json_body_fields(raw: bytes, charset: str | None = None) -> MultiDict[object]:
    """The `action` and `request` members of a JSON object body (others are ignored)."""
    try:
        text = raw.decode(charset or "utf-8")
    except (UnicodeDecodeError, LookupError):  # bad bytes, or a charset Python does not know
        raise BadRequest("The body is not text in its declared charset.") from None
    data = _loads(text, "the body")
    if not isinstance(data, dict):
        raise BadRequest('A JSON body must be an object: {"action": …, "request": {…}}.')
    fields: MultiDict[object] = MultiDict()
    for name in (ACTION_FIELD, REQUEST_FIELD):
        if data.get(name) is not None:
            fields[name] = data[name]
    return fields


def single_field(name: str, *sources: MultiMapping[object]) -> object | None:
    """The one value of `name` across query and body; two different values are ambiguous."""
    # Plain loops: each source holds it once or not at all, and a comprehension is a frame.
    values: list[object] = []
    for source in sources:
        values += source.getall(name, ())
    if not values:
        return None
    first = values[0]
    for value in values[1:]:
        if value != first:
            raise BadRequest(
                f"The {name!r} parameter is given more than once, with different values."
            )
    return first


def check_action(value: object | None) -> str:
    if value is None or value == "":
        raise BadRequest(f"The {ACTION_FIELD!r} parameter (the API name) is missing.")
    if not isinstance(value, str):
        raise BadRequest(f"The {ACTION_FIELD!r} parameter must be text.")
    if not valid_action_name(value):
        raise BadRequest(f"{value[:70]!r} is not a valid action name.")
    return value


def check_get_action(query: MultiMapping[object]) -> None:
    """A GET may only call a read-only action: one that changes state needs a POST."""
    action = check_action(single_field(ACTION_FIELD, query))
    if action not in GET_ACTIONS:
        raise MethodNotAllowed(
            f"{action} is served over POST only: it is not a read-only action.", allow="POST"
        )


def request_object(value: object | None) -> dict[str, Any]:
    """`request` as a dict: absent → {}; JSON text or (from a JSON body) an object."""
    if value is None:
        return {}
    if isinstance(value, str):
        value = _loads(value, f"the {REQUEST_FIELD!r} parameter")
    if not isinstance(value, dict):
        raise BadRequest(f"The {REQUEST_FIELD!r} parameter must be a JSON object.")
    return value


def _loads(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise BadRequest(f"{what.capitalize()} nests too deep.") from None
    except ValueError:  # JSONDecodeError, and ints beyond Python's digit limit
        raise BadRequest(f"{what.capitalize()} is not valid JSON.") from None


def prepare_call(
    query: MultiMapping[object],
    body: MultiMapping[object],
    policy: ActionPolicy,
    instance_id: str,
) -> tuple[str, Mapping[str, str]]:
    """The action and its POP parameters, or the error saying why not.

    Checked in this order: the action's name, the `request` JSON, the allow-list, the
    parameters' shape, the instance (`check_action`, `request_object`, `flatten`,
    `pin_instance`). The parameters
    of a `request` text seen before are remembered (JSON, flattening and pinning are a pure
    function of the text and the instance): for a text that passed those checks once, only
    the action's are left to make.
    """
    action = check_action(single_field(ACTION_FIELD, query, body))
    value = single_field(REQUEST_FIELD, query, body)
    key = (value, instance_id) if type(value) is str else None
    known = _KNOWN_PARAMS.get(key) if key is not None else None
    request = request_object(value) if known is None else None
    if not policy.allows(action):
        log.warning("action %s refused by the allow-list", action)
        raise Forbidden(
            f"The action {action} is not allowed through this gateway.",
            error_code="ActionNotAllowed",
        )
    if known is not None:
        return action, known
    assert request is not None
    params = MappingProxyType(pin_instance(flatten(request), instance_id))
    if key is not None and len(key[0]) <= _KNOWN_TEXT_CHARS:
        if len(_KNOWN_PARAMS) >= _KNOWN_TEXTS:
            _KNOWN_PARAMS.clear()
        _KNOWN_PARAMS[key] = params
    return action, params


# `request` texts (with the instance) → their POP parameters, read-only: the workbench sends
# the same few short texts again and again. 256 texts of at most 1 KB bound the memory.
_KNOWN_PARAMS: dict[tuple[str, str], Mapping[str, str]] = {}
_KNOWN_TEXTS: Final = 256
_KNOWN_TEXT_CHARS: Final = 1024


def flatten(params: dict[str, Any]) -> dict[str, str]:
    try:
        return flatten_request(params)
    except RequestShapeError as error:
        raise BadRequest(f"Bad request parameters: {error}.") from None


def pin_instance(flat: dict[str, str], instance_id: str) -> dict[str, str]:
    """The parameters with `InstanceId` set to the configured instance.

    A name spelt in any case counts (`instanceId`, `INSTANCEID`); an empty value counts as
    absent; any other instance, or an instance given as a list or object, is 403.
    """
    out = dict(flat)
    for key, value in flat.items():
        if key.partition(".")[0].lower() == _INSTANCE_LOWER:
            del out[key]
            if "." in key or value not in ("", instance_id):
                raise Forbidden(
                    "This gateway serves one CCC instance; the request names another.",
                    error_code="InstanceNotAllowed",
                )
    out[INSTANCE_PARAM] = instance_id
    return out


def credentials_for(mode: str, tokens: TokenSet) -> Credentials:
    """How to authenticate as the agent under `ccc.auth` (auto | bearer | sts)."""
    if mode == "bearer" or (mode == "auto" and not tokens.is_sts):
        return BearerCredentials(tokens.access_token)
    if not tokens.is_sts:
        # The operator forced STS but Alibaba issues Bearer tokens: no user can fix that.
        log.error("ccc.auth is 'sts' but the access token is %s: fix ccc.auth", tokens.token_type)
        raise BadGateway(
            "The gateway is configured for STS-signed calls but Alibaba issued a "
            f"{tokens.token_type} token; set ccc.auth to auto or bearer."
        )
    try:
        return _sts_credentials(tokens.access_token, tokens.token_type)
    except OAuthProtocolError as error:
        log.error("unusable AliyunSTS access token: %s", error)
        raise BadGateway("Alibaba's STS access token could not be used.") from None


@functools.lru_cache(maxsize=256)
def _sts_credentials(access_token: str, token_type: str) -> StsCredentials:
    """The STS key inside an access token, decoded once per token rather than once per call.

    Decoding (a regex over, base64 and JSON of a ~1.5 KB token) was the largest piece of a
    call's own work after signing. An agent keeps one token for its lifetime, so this hits;
    256 tokens of a few KB bound the memory. A failure (an exception) is not cached.
    """
    credentials = sts_credentials(TokenSet(access_token, token_type, 0.0))
    assert credentials is not None  # the caller checked is_sts
    return credentials


def needs_sign_in(status: int, code: str | None) -> bool:
    return status == 401 or (code or "").startswith(SIGN_IN_AGAIN_CODES)


def pop_error(result: PopResult, secrets: Iterable[str] = ()) -> PopError:
    """The contract error body for a POP HTTP error: its status, Code and RequestId."""
    message = result.body.get("Message")
    text = message if isinstance(message, str) and message.strip() else ""
    error = PopError(
        result.status,
        result.code or "UnknownError",
        safe_message(text, secrets) or f"The CCC OpenAPI answered HTTP {result.status}.",
        result.request_id,
    )
    if needs_sign_in(result.status, result.code):
        error.extra["login"] = LOGIN_URL
    return error


def safe_message(message: str, secrets: Iterable[str] = ()) -> str:
    """A POP message fit for the browser: no string-to-sign (it quotes the SecurityToken)."""
    cut = message.lower().find("string to sign")
    if cut >= 0:
        message = message[:cut].rstrip(" ,:;") + " (string to sign withheld)"
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return message[:MAX_MESSAGE]


def _secrets(credentials: Credentials) -> list[str]:
    if isinstance(credentials, BearerCredentials):
        return [credentials.access_token]
    return [credentials.access_key_secret, credentials.security_token]


# HTTP


async def handle_api(request: web.Request) -> web.Response:
    """Forward one softphone API call to the CCC OpenAPI as the signed-in agent."""
    app = request.app  # a property that looks the app up anew each time
    config = app[CONFIG]
    ccc = config.ccc
    check_same_origin(request, config.aliyun.public_origin)
    check_script_request(request)
    if request.method != "POST":
        check_get_action(request.query)  # before the sign-in: not even a refresh for it
    check_content_length(request.content_length, ccc.max_request_size)
    signin = await app[SESSIONS].require(request)
    body = await _body_fields(request, ccc.max_request_size)
    action, params = prepare_call(request.query, body, ccc.actions, ccc.instance_id)
    credentials = credentials_for(ccc.auth, signin.tokens)
    result = await _forward(app, signin, action, params, credentials)
    if result.status >= 400:
        raise pop_error(result, _secrets(credentials))
    # The body is already in the SDK's shape when ccc.reshape is on (PopClient reshapes).
    return web.Response(
        body=_json_bytes(result.body),
        status=result.status,
        headers=_JSON_HEADERS,
    )


def _json_bytes(value: Any) -> bytes:
    """The answer as compact UTF-8 JSON.

    orjson writes the benchmark's 2 KB answer in 1.4 µs against the standard encoder's 19;
    what it will not write (integers beyond 64 bits, lone surrogates) the standard encoder
    writes. (orjson writes NaN as null, which browsers can parse; json wrote NaN.)
    """
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError:
        return _JSON.encode(value).encode("utf-8")


async def _body_fields(request: web.Request, limit: int) -> MultiMapping[object]:
    """The body's fields; empty for GET and bodiless POSTs.

    The server does not decompress bodies (serve.server_options): a gzip or deflate body is
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
                raise _too_large(limit)
            return form
        upstream = request.app[CONFIG].upstream  # the pace asked of every request body
        raw = await read_request_body(
            request, limit, Pace(upstream.min_upload_rate, upstream.min_upload_rate_window)
        )
        if ctype == "application/x-www-form-urlencoded":
            return _form_fields(raw, request.charset)
        if ctype == "application/json" or ctype.endswith("+json"):
            return json_body_fields(raw, request.charset)
    except web.HTTPRequestEntityTooLarge:
        raise _too_large(limit) from None
    except (ValueError, LookupError):  # bad encoding, unknown charset, broken multipart
        raise BadRequest("The request body could not be read as a form or JSON.") from None
    raise UnsupportedMediaType(
        "Send the API call as a form (application/x-www-form-urlencoded or "
        "multipart/form-data) or as application/json."
    )


def _form_fields(raw: bytes, charset: str | None) -> MultiMapping[object]:
    """What request.post() makes of a urlencoded body, without the generic form machinery.

    The softphone sends the same few bodies again and again (`request=` and the same JSON):
    the fields of one seen before are remembered, read-only, as prepare_call remembers the
    parameters of a `request` text. 256 bodies of at most 1 KB bound the memory.
    """
    key = (raw, charset)
    fields = _KNOWN_FORMS.get(key)
    if fields is None:
        fields = MultiDictProxy(MultiDict(query_to_pairs(raw.rstrip().decode(charset or "utf-8"))))
        if len(raw) <= _KNOWN_TEXT_CHARS:
            if len(_KNOWN_FORMS) >= _KNOWN_TEXTS:
                _KNOWN_FORMS.clear()
            _KNOWN_FORMS[key] = fields
    return fields


_KNOWN_FORMS: dict[tuple[bytes, str | None], MultiMapping[object]] = {}


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
        status = 504 if error.timeout else 502
        audit_call(signin, action, status, None, None, duration)
        log.warning("CCC OpenAPI unavailable: %s", error)
        if error.timeout:
            raise GatewayTimeout("Alibaba Cloud's CCC OpenAPI did not answer in time.") from None
        raise BadGateway("Alibaba Cloud's CCC OpenAPI could not be reached.") from None
    except BaseException:  # cancelled, or a bug: counted as observe_pop did
        count_pop(app, action, "failed", time.monotonic() - started)
        raise
    count_pop(app, action, pop_outcome(result), time.monotonic() - started)
    audit_call(signin, action, result.status, result.code, result.request_id, result.duration)
    return result


def pop_outcome(answer: PopResult | PopUnavailable) -> str:
    """The metrics label of a POP call: ok, error (an HTTP error answer), timeout, unavailable."""
    if isinstance(answer, PopUnavailable):
        return "timeout" if answer.timeout else "unavailable"
    return "ok" if answer.status < 400 else "error"


def audit_call(
    signin: SignIn, action: str, status: int, code: str | None, pop_id: str | None, duration: float
) -> None:
    """One audit line: "ccc api {action} HTTP {status} result {code}" with {crm_user, agent,
    action, status, pop_code, pop_request_id, duration_ms}, phone numbers masked (`scrubbed`
    before the record exists, so every handler sees them masked). Names only, never
    parameters: those hold phone numbers and the POP body secrets.
    """
    if not audit_log.isEnabledFor(logging.INFO):
        return
    fields = scrubbed(
        {
            "crm_user": signin.crm_user,
            "agent": signin.agent.upn,
            "action": action,
            "status": status,
            "pop_code": code,
            "pop_request_id": pop_id,
            "duration_ms": round(duration * 1000, 1),
        }
    )
    message = f"ccc api {action} HTTP {status} result {fields['pop_code']}"
    audit_log.info(message, extra={"fields": fields})
