"""The configuration's `crm_events` section and `softphone.after_call` (docs/crm/call-events.md).

`crm_events.url` is a path on the CRM (joined to `upstream.url`) or an absolute URL: https, or
http to a loopback host only (call events carry phone numbers and notes). A `secret` is
required with a `url`: an unsigned event could not be told from a forged one.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from yarl import URL

from ccc_gateway.config.model import CrmEventsConfig
from ccc_gateway.config.values import (
    Secret,
    Section,
    as_positive_int,
    as_str,
    list_of,
    parse_duration,
)

_OUTCOME = re.compile(r"[A-Za-z0-9_.-]{1,40}")


def _event_url(value: Any) -> str:
    text = as_str(value).strip()
    if text.startswith("/") and not text.startswith("//") and "\\" not in text:
        return text
    url = URL(text)
    if url.scheme == "https" and url.host:
        return text
    if url.scheme == "http" and url.host and _loopback(url.host):
        return text
    raise ValueError(
        "expected a path on the CRM (/...), an https URL, or http to a loopback host only"
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secret(value: Any) -> Secret:
    text = as_str(value)
    if len(text) < 16:
        raise ValueError("must be at least 16 characters (an HMAC key)")
    return Secret(text)


def crm_events_section(s: Section) -> CrmEventsConfig:
    """The `crm_events` section (a path url is resolved against upstream.url when used)."""
    d = CrmEventsConfig()
    url = s.get("url", _event_url, None)
    result = CrmEventsConfig(
        url=url,
        secret=s.get("secret", _secret, None, required=url is not None),
        timeout=s.get("timeout", parse_duration, d.timeout),
        max_attempts=s.get("max_attempts", as_positive_int, d.max_attempts),
        queue_size=s.get("queue_size", as_positive_int, d.queue_size),
    )
    if result.timeout <= 0:
        s.problems.add(s.key_path("timeout"), "must be more than 0")
    s.reject_unknown()
    return result


def _outcome(value: Any) -> str:
    text = as_str(value).strip()
    if not _OUTCOME.fullmatch(text):
        raise ValueError(f"an outcome is 1-40 letters, digits, _ . -, not {text!r}")
    return text


def after_call_values(
    s: Section, outcomes: tuple[str, ...], seconds: float
) -> tuple[tuple[str, ...], float]:
    """`softphone.after_call`: the form's outcomes and its after-call work time (0: manual)."""
    result = (
        s.get("outcomes", list_of(_outcome), outcomes),
        s.get("seconds", parse_duration, seconds),
    )
    if not result[0]:
        s.problems.add(s.key_path("outcomes"), "list at least one outcome")
    s.reject_unknown()
    return result
