"""Validation of the softphone section's values that need more than a type check.

The screen-pop template's variables, the SDK's extra constructor options and the extra CSP
sources of the softphone page (docs/softphone.md).
"""

from __future__ import annotations

import json
import re
from typing import Any

from ccc_gateway.config.values import Section, as_str, list_of

# What softphone.js puts into softphone.screen_pop_url, from the incoming call's details.
SCREEN_POP_VARIABLES = ("{caller}", "{callee}", "{callType}", "{jobId}")
CSP_DIRECTIVES = ("script-src", "style-src", "font-src", "img-src", "connect-src", "media-src")


def screen_pop_url(value: Any) -> str:
    text = as_str(value).strip()
    unknown = sorted(set(re.findall(r"\{[^{}]*\}", text)) - set(SCREEN_POP_VARIABLES))
    if unknown:
        raise ValueError(
            f"unknown variable {', '.join(unknown)}; known: {', '.join(SCREEN_POP_VARIABLES)}"
        )
    if not any(name in text for name in SCREEN_POP_VARIABLES):
        raise ValueError("must contain {caller} (or {callee}, {callType}, {jobId})")
    if not text.startswith("/") or text.startswith("//"):
        raise ValueError("must be a path on the CRM, starting with a single /")
    return text


def _csp_source(value: Any) -> str:
    text = as_str(value).strip()
    if not text or any(c in text for c in ";,") or len(text.split()) != 1:
        raise ValueError(f"not a single CSP source: {text!r}")
    return text


def csp_sources(s: Section) -> dict[str, tuple[str, ...]]:
    """Extra sources by directive; only the directives the softphone page writes."""
    none: tuple[str, ...] = ()
    result = {name: s.get(name, list_of(_csp_source), none) for name in CSP_DIRECTIVES}
    s.reject_unknown()
    return {name: sources for name, sources in result.items() if sources}


def sdk_options(s: Section) -> dict[str, Any]:
    """Constructor options for the SDK: JSON-like values under option names."""
    options = {str(key): s.raw(str(key)) for key in s.data}
    for key, value in options.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) or key == "dom":
            s.problems.add(s.key_path(key), "not an option name softphone.js may set")
        try:
            json.dumps(value)  # the page carries them as JSON (a YAML date would not go)
        except (TypeError, ValueError):
            s.problems.add(s.key_path(key), "not a JSON value (quote dates and times)")
    return options
