"""The audit line every forwarded CCC OpenAPI call leaves (THREAT_MODEL.md, logs)."""

from __future__ import annotations

import logging

from ccc_gateway.ops.log import AUDIT_LOGGER, log_fields, mask_phone_numbers
from ccc_gateway.sessions.signin import SignIn

audit_log = logging.getLogger(AUDIT_LOGGER)


def audit_call(
    signin: SignIn, action: str, status: int, code: str | None, pop_id: str | None, duration: float
) -> None:
    """One line, "ccc api {action} HTTP {status} result {code}", with the fields crm_user,
    agent, action, status, pop_code, pop_request_id and duration_ms, phone numbers masked.
    Names only, never parameters: those hold phone numbers and the POP body secrets.
    """
    if not audit_log.isEnabledFor(logging.INFO):
        return
    fields = {
        "crm_user": _masked(signin.crm_user),
        "agent": _masked(signin.agent.upn),
        "action": _masked(action),
        "status": status,
        "pop_code": _masked(code),
        "pop_request_id": _masked(pop_id),
        "duration_ms": round(duration * 1000, 1),
    }
    log_fields(audit_log, f"ccc api {action} HTTP {status} result {fields['pop_code']}", fields)


def _masked(text: str | None) -> str | None:
    # Masked here, not only when the line is written: the record's fields reach every handler.
    return None if text is None else mask_phone_numbers(text)
