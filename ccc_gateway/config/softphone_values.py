"""The configuration's `softphone` section (docs/softphone.md).

The browser SDK generation (`sdk`, following `ccc.version`) and its files, the screen-pop
template's variables, the SDK's extra constructor options, the extra CSP sources of the
softphone page and click-to-call on CRM content (`click_to_call`).
"""

from __future__ import annotations

import json
import re
from typing import Any

from ccc_gateway.config.crm_events_values import after_call_values
from ccc_gateway.config.generation import resolve_sdk
from ccc_gateway.config.model import SDK_ASSETS, ClickToCallConfig, SoftphoneConfig
from ccc_gateway.config.values import Section, as_bool, as_str, choice, list_of

# What static/numbers.js (popUrl) puts into softphone.screen_pop_url, from the incoming call's
# details: the caller as received and in three normalised forms (docs/softphone.md).
SCREEN_POP_VARIABLES = (
    "{caller}",
    "{caller_digits}",
    "{caller_national}",
    "{caller_e164}",
    "{callee}",
    "{callType}",
    "{jobId}",
)
CSP_DIRECTIVES = ("script-src", "style-src", "font-src", "img-src", "connect-src", "media-src")


def screen_pop_url(value: Any) -> str:
    text = as_str(value).strip()
    unknown = sorted(set(re.findall(r"\{[^{}]*\}", text)) - set(SCREEN_POP_VARIABLES))
    if unknown:
        raise ValueError(
            f"unknown variable {', '.join(unknown)}; known: {', '.join(SCREEN_POP_VARIABLES)}"
        )
    if not any(name in text for name in SCREEN_POP_VARIABLES):
        known = ", ".join(SCREEN_POP_VARIABLES)
        raise ValueError(f"must contain {{caller}} (or another of: {known})")
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


def _selector(value: Any) -> str:
    text = as_str(value).strip()
    if not text or any(c in text for c in "{};"):
        raise ValueError(f"not a CSS selector: {text!r}")
    return text


def _pattern(value: Any) -> str:
    """A regular expression for the browser; it must compile in Python too (a common subset)."""
    text = as_str(value)
    try:
        compiled = re.compile(text)
    except re.error as err:
        raise ValueError(f"not a regular expression: {err}") from None
    if not text or len(text) > 1000 or compiled.fullmatch(""):
        raise ValueError("must be a non-empty pattern (up to 1000 characters) that needs digits")
    return text


def click_to_call(s: Section) -> ClickToCallConfig:
    d = ClickToCallConfig()
    result = ClickToCallConfig(
        selectors=s.get("selectors", list_of(_selector), d.selectors),
        detect=s.get("detect", as_bool, d.detect),
        pattern=s.get("pattern", _pattern, d.pattern),
    )
    s.reject_unknown()
    return result


def softphone_section(s: Section, version: str) -> SoftphoneConfig:
    """The `softphone` section; its SDK and the SDK's files follow `ccc.version`."""
    d = SoftphoneConfig()
    sdk = resolve_sdk(s, version)
    outcomes, after_call_seconds = after_call_values(
        s.section("after_call"), d.after_call_outcomes, d.after_call_seconds
    )
    assets = SDK_ASSETS[sdk]
    result = SoftphoneConfig(
        sdk=sdk,
        inject=s.get("inject", as_bool, d.inject),
        screen_pop_url=s.get("screen_pop_url", screen_pop_url, d.screen_pop_url),
        screen_pop_target=s.get(
            "screen_pop_target", choice("same-tab", "new-tab"), d.screen_pop_target
        ),
        sdk_scripts=s.get("sdk_scripts", list_of(as_str), assets.scripts),
        sdk_styles=s.get("sdk_styles", list_of(as_str), assets.styles),
        ajax_method=s.get("ajax_method", choice("post", "get"), d.ajax_method),
        confirm_dial=s.get("confirm_dial", as_bool, d.confirm_dial),
        notifications=s.get("notifications", as_bool, d.notifications),
        sdk_options=sdk_options(s.section("sdk_options")),
        csp_sources=csp_sources(s.section("csp_sources")),
        after_call_outcomes=outcomes,
        after_call_seconds=after_call_seconds,
        click_to_call=click_to_call(s.section("click_to_call")),
    )
    s.reject_unknown()
    return result
