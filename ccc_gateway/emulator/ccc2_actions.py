"""The CCC 2.0 (2020-07-01) actions: the instance check, the envelope, the refusal body.

Success: HTTP 200 `{RequestId, Code: "OK", HttpStatusCode: 200, Message: "", [Params: []],
Data...}` (`Params` only where the official model has it). Refusal: the error's HTTP status and
`{RequestId, Code, Message, HttpStatusCode}` (2.0 no longer answers business errors with HTTP
200 + `Success: false`, unlike 2017-07-05). An `InstanceId` that is not the 2.0 instance (the
classic one included) is `NotExists.InstanceId` (404).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .ccc2_calls import CALL_ACTIONS
from .ccc2_common import Ctx, required
from .ccc2_lists import LIST_ACTIONS
from .ccc2_state import CccError

ACTIONS2: dict[str, Callable[[Ctx], dict[str, Any]]] = {**LIST_ACTIONS, **CALL_ACTIONS}
# Answers whose official model has no top-level `Params`.
_NO_PARAMS = frozenset(
    {
        "ListSkillLevelsOfUser",
        "ListOutboundNumbersOfUser",
        "ListPrivilegesOfUser",
        "PickOutboundNumbers",
        "GetNumberLocation",
        "ListRealtimeAgentStates",
        "ListAgentStates",
        "ListRecentCallDetailRecords",
        "ListSkillGroups",
        "ListBriefSkillGroups",
        "ListHistoricalAgentReport",
        "SaveTerminalLog",
    }
)


def run_action2(action: str, ctx: Ctx) -> dict[str, Any]:
    """The payload of `action` for the caller; CccError when CCC refuses it."""
    instance_id = required(ctx, "InstanceId")
    if instance_id != ctx.settings.instance_id_v2:
        raise CccError(
            404, "NotExists.InstanceId", f"The specified instance {instance_id} does not exist."
        )
    return ACTIONS2[action](ctx)


def success_body2(action: str, request_id: str, payload: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "RequestId": request_id,
        "Code": "OK",
        "HttpStatusCode": 200,
        "Message": "",
    }
    if action not in _NO_PARAMS:
        body["Params"] = []
    body.update(payload)
    return body


def error_body2(request_id: str, error: CccError) -> dict[str, Any]:
    return {
        "RequestId": request_id,
        "Code": error.code,
        "Message": error.message,
        "HttpStatusCode": error.status,
    }
