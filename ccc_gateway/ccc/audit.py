"""The audit line every forwarded CCC OpenAPI call leaves (THREAT_MODEL.md, logs)."""

from __future__ import annotations

import logging

from ccc_gateway.ops.log import AUDIT_LOGGER, scrubbed
from ccc_gateway.sessions.signin import SignIn

audit_log = logging.getLogger(AUDIT_LOGGER)


def audit_call(
    signin: SignIn, action: str, status: int, code: str | None, pop_id: str | None, duration: float
) -> None:
    """One line, "ccc api {action} HTTP {status} result {code}", with the fields crm_user,
    agent, action, status, pop_code, pop_request_id and duration_ms, phone numbers masked
    (`scrubbed` before the record exists, so every handler sees them masked). Names only,
    never parameters: those hold phone numbers and the POP body secrets.
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
