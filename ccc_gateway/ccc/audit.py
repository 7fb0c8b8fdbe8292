"""The audit line every forwarded CCC OpenAPI call leaves (THREAT_MODEL.md, logs)."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ccc_gateway.ops.log import AUDIT_LOGGER, mask_phone_numbers, scrubbed
from ccc_gateway.sessions.signin import SignIn

audit_log = logging.getLogger(AUDIT_LOGGER)


# The parameters that name the other party of a call (MakeCall, transfers, ...): the audit
# line shows that number masked, so a support engineer can match a complaint to a call.
NUMBER_PARAMS = ("Callee", "Transferee", "PhoneNumber", "callee")


def call_number(params: Mapping[str, str]) -> str | None:
    """The other party's number in a call's parameters, if it names one."""
    # A loop, not next() over a generator: a generator step per name on every API call.
    for name in NUMBER_PARAMS:
        number = params.get(name)
        if number:
            return number
    return None


def audit_call(
    signin: SignIn,
    action: str,
    status: int,
    code: str | None,
    pop_id: str | None,
    duration: float,
    number: str | None = None,
) -> None:
    """One line, "ccc api {action} HTTP {status} result {code}", with the fields crm_user,
    agent, action, status, pop_code, pop_request_id, duration_ms and the call's number,
    phone numbers masked (`scrubbed` before the record exists, so every handler sees them
    masked). No other parameter: those may hold the POP body secrets.
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
    if number is not None:  # only calls that name one: the line of other calls is unchanged
        fields["number"] = mask_phone_numbers(number)
    message = f"ccc api {action} HTTP {status} result {fields['pop_code']}"
    audit_log.info(message, extra={"fields": fields})
