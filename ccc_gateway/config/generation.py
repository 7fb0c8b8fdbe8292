"""What follows the CCC generation in the configuration (README, "Which CCC generation do I
have"): the API version, the allow-list setting, the browser SDK, and the combinations that
cannot work, each reported by key path with what to change.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from ccc_gateway.ccc.pop.actions import CCC_VERSIONS, ActionPolicy
from ccc_gateway.config.model import SDK_FOR_VERSION, SDKS_OF_VERSION, CccConfig
from ccc_gateway.config.values import Section, as_str, choice, list_of

# Classic instance ids are UUIDs (8-4-4-4-12 hex digits); 2.0 ids are the instance's name.
_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")


def ccc_version(value: Any) -> str:
    """One of the two API versions, quoted or not (unquoted, YAML reads a date)."""
    text = as_str(value).strip()
    if text not in CCC_VERSIONS:
        raise ValueError(
            f'expected "2020-07-01" (CCC 2.0) or "2017-07-05" (classic CCC), not {text!r}: '
            "the instance's console page says which (README, which generation)"
        )
    return text


def allowed_actions(value: Any) -> frozenset[str] | Literal["*"]:
    """ccc.allowed_actions: "*" (every action) or a list of action names."""
    if value == "*":
        return "*"
    names = list_of(as_str)(value)
    if "*" in names:
        raise ValueError('write "*" alone (not in a list) to allow every action')
    allowed = frozenset(names)
    ActionPolicy(allowed)  # raises ValueError on a bad name
    return allowed


def check_instance_generation(s: Section, ccc: CccConfig) -> None:
    """A classic (UUID) instance id under CCC 2.0 is a problem: the likeliest cause is a
    classic configuration from before 2.0 became the default."""
    if ccc.is_v2 and _UUID.fullmatch(ccc.instance_id):
        s.problems.add(
            s.key_path("version"),
            f"the instance id {ccc.instance_id} is a classic instance's (a UUID; CCC 2.0 "
            'ids are the instance\'s name): set ccc.version: "2017-07-05" for a classic '
            "instance, or ccc.instance_id to the 2.0 instance's name",
        )


def resolve_sdk(s: Section, version: str) -> str:
    """softphone.sdk resolved: `auto` is the generation's SDK; one that cannot work with
    `version` is a problem saying what to change."""
    sdk = s.get("sdk", choice("auto", "v1", "v2", "v3"), "auto")
    if sdk == "auto":
        return SDK_FOR_VERSION[version]
    usable = SDKS_OF_VERSION[version]
    if sdk not in usable:
        other = next(v for v, sdks in SDKS_OF_VERSION.items() if sdk in sdks)
        s.problems.add(
            s.key_path("sdk"),
            f'{sdk} does not work with ccc.version "{version}": set softphone.sdk to auto '
            f'or {" or ".join(usable)}, or ccc.version to "{other}" if the instance is of '
            "that generation",
        )
        return SDK_FOR_VERSION[version]
    return sdk
