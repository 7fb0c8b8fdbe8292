"""Reading a softphone API call: its action, its POP parameters, how it authenticates, and the
browser's error for a POP error answer (docs/ccc-openapi.md).

Pure functions of what the view read from the request (query and body fields as
`MultiMapping`s, the agent's tokens); no aiohttp.web. They raise the `GatewayError` the view
answers with.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

from multidict import MultiDict, MultiDictProxy, MultiMapping
from yarl import query_to_pairs

from ccc_gateway.auth.oauth.errors import OAuthProtocolError
from ccc_gateway.auth.oauth.tokens import StsCredentials, TokenSet, sts_credentials
from ccc_gateway.ccc.client import BearerCredentials, PopResult
from ccc_gateway.ccc.pop.actions import GET_ACTIONS, ActionPolicy, valid_action_name
from ccc_gateway.ccc.pop.ccc2 import ids_of_other_instances, json_text_params
from ccc_gateway.ccc.pop.params import RequestShapeError, flatten_request
from ccc_gateway.http.errors import (
    BadGateway,
    BadRequest,
    Forbidden,
    MethodNotAllowed,
    PayloadTooLarge,
    PopError,
)
from ccc_gateway.sessions.manager import LOGIN_URL

log = logging.getLogger(__name__)

ACTION_FIELD: Final = "action"  # the SDK's default `ajaxApiParamName`
REQUEST_FIELD: Final = "request"
# The 2.x/3.x SDK adds `product`, `version` and `region` to the query: read (version) or
# ignored, never forwarded (POP's Version and RegionId are the configuration's).
VERSION_FIELD: Final = "version"
INSTANCE_PARAM: Final = "InstanceId"
_INSTANCE_LOWER: Final = INSTANCE_PARAM.lower()
# POP codes that mean "this token no longer works": only a new sign-in helps.
SIGN_IN_AGAIN_CODES: Final = ("InvalidBearerToken", "InvalidSecurityToken", "InvalidAccessKeyId")
MAX_MESSAGE = 500  # POP messages relayed to the browser are cut to this many characters

Credentials = BearerCredentials | StsCredentials


def check_content_length(length: int | None, limit: int) -> None:
    """413 up front when the declared body is over the limit, before reading a byte of it."""
    if length is not None and length > limit:
        raise too_large(limit)


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"The request body is over {limit} bytes.")


def form_fields(raw: bytes, charset: str | None) -> MultiMapping[object]:
    """What request.post() makes of a urlencoded body, without the generic form machinery."""
    return MultiDictProxy(MultiDict(query_to_pairs(raw.rstrip().decode(charset or "utf-8"))))


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
    values = [value for source in sources for value in source.getall(name, ())]
    if not values:
        return None
    # Nearly always one value: compared only when there are more (no generator per field).
    if len(values) > 1 and any(value != values[0] for value in values[1:]):
        raise BadRequest(f"The {name!r} parameter is given more than once, with different values.")
    return values[0]


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
    *,
    version: str,
    json_lists: bool = False,
) -> tuple[str, dict[str, str]]:
    """The action and its POP parameters, or the error saying why not.

    Checked in this order: the SDK's API version, the action's name, the `request` JSON,
    the allow-list, the parameters' shape, the instance (`check_version`, `check_action`,
    `request_object`, `flatten`, `pin_instance`, `pin_ids`). `json_lists` (CCC 2.0) sends a
    list or object as one JSON-text parameter instead of classic `Key.N` flattening, and
    pins every `name@instance` id to the instance.
    """
    check_version(single_field(VERSION_FIELD, query, body), version)
    action = check_action(single_field(ACTION_FIELD, query, body))
    request = request_object(single_field(REQUEST_FIELD, query, body))
    if not policy.allows(action):
        log.warning("action %s refused by the allow-list", action)
        raise Forbidden(
            f"The action {action} is not allowed through this gateway.",
            error_code="ActionNotAllowed",
        )
    if not json_lists:
        return action, pin_instance(flatten(request), instance_id)
    params = pin_instance(flatten(request, json_text_params), instance_id)
    pin_ids(params, instance_id)
    return action, params


def check_version(value: object | None, version: str) -> None:
    """400 VersionMismatch when the SDK says it speaks another API version than ours."""
    if value is None or value == "" or value == version:
        return
    shown = value[:20] if isinstance(value, str) else "?"
    raise BadRequest(
        f"This gateway serves CCC API version {version}; the softphone SDK sent {shown!r}, "
        "an SDK of the other CCC generation (see softphone.sdk and ccc.version).",
        error_code="VersionMismatch",
    )


def pin_ids(params: Mapping[str, str], instance_id: str) -> None:
    """403 InstanceNotAllowed when a `name@instance` id names another instance."""
    names = ids_of_other_instances(params, instance_id)
    if names:
        log.warning("parameter %s names another CCC instance: refused", names[0][:40])
        raise Forbidden(
            f"This gateway serves one CCC instance; the parameter {names[0][:40]} names another.",
            error_code="InstanceNotAllowed",
        )


def flatten(
    params: dict[str, Any], convert: Callable[[dict[str, Any]], dict[str, str]] = flatten_request
) -> dict[str, str]:
    try:
        return convert(params)
    except RequestShapeError as error:
        raise BadRequest(f"Bad request parameters: {error}.") from None


def pin_instance(flat: Mapping[str, str], instance_id: str) -> dict[str, str]:
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
        credentials = sts_credentials(tokens)
    except OAuthProtocolError as error:
        log.error("unusable AliyunSTS access token: %s", error)
        raise BadGateway("Alibaba's STS access token could not be used.") from None
    assert credentials is not None  # is_sts was checked above
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
    note = ""
    if cut >= 0:
        message, note = message[:cut].rstrip(" ,:;"), " (string to sign withheld)"
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    return (message + note)[:MAX_MESSAGE]


def withheld(body: dict[str, Any], secrets: Iterable[str] = ()) -> dict[str, Any]:
    """POP's error body as it came, but for a `Message` quoting the string-to-sign (with the
    SecurityToken in it) or a credential, which is cut (`safe_message`)."""
    message = body.get("Message")
    if not isinstance(message, str):
        return body
    safe = safe_message(message, secrets)
    return body if safe == message else {**body, "Message": safe}


def secrets_of(credentials: Credentials) -> list[str]:
    """What of the credentials must never reach the browser, even quoted in a POP message."""
    if isinstance(credentials, BearerCredentials):
        return [credentials.access_token]
    return [credentials.access_key_secret, credentials.security_token]
