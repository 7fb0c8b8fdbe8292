"""What every CCC 2.0 (2020-07-01) action shares: its context, parameter reading, identity.

2.0 refuses bad business parameters with HTTP 4xx and its own codes (`Parameter.Blank`,
`Parameter.Format`, `Parameter.Minimum`/`Maximum`), not the API gateway's `Missing{Name}`.
Lists arrive as ONE parameter holding JSON text (`SignedSkillGroupIdList=["a@x"]`); the classic
`Name.1, Name.2` flattening is refused, so a caller that flattens fails here as it would fail
at Alibaba (where the list would simply be missing). See docs/emulator.md.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .ccc2_state import AgentDesks, AgentState, CccError
from .pop_params import Params
from .settings import Agent, EmulatorSettings

_INT = re.compile(r"-?[0-9]{1,18}")
_BOOLEANS = {"true": True, "false": False}
MAX_PAGE_SIZE = 100


@dataclass
class Ctx:
    """One 2.0 call: who made it (the token's RAM user), its parameters, the agents' desks."""

    settings: EmulatorSettings
    agent: Agent
    params: Params
    desks: AgentDesks
    line_of: Callable[[Agent], int]  # the agent's softphone connection id, 0 when none
    now: float

    @property
    def user_id(self) -> str:
        return self.settings.ccc2_user_id(self.agent)


def blank(name: str) -> CccError:
    return CccError(400, "Parameter.Blank", f"The parameter {name} may not be null or blank.")


def bad_format(name: str, why: str) -> CccError:
    return CccError(400, "Parameter.Format", f"The parameter {name} is not valid: {why}")


def text(ctx: Ctx, name: str) -> str | None:
    return ctx.params.get(name)


def required(ctx: Ctx, name: str) -> str:
    value = ctx.params.get(name)
    if value is None or not value.strip():
        raise blank(name)
    return value


def integer(ctx: Ctx, name: str, low: int, high: int, default: int | None = None) -> int | None:
    value = ctx.params.get(name)
    if value is None:
        return default
    if not _INT.fullmatch(value):
        raise bad_format(name, "it must be an integer.")
    number = int(value)
    if number < low:
        raise CccError(400, "Parameter.Minimum", f"The parameter {name} must be >= {low}.")
    if number > high:
        raise CccError(400, "Parameter.Maximum", f"The parameter {name} must be <= {high}.")
    return number


def boolean(ctx: Ctx, name: str) -> bool | None:
    value = ctx.params.get(name)
    if value is None:
        return None
    parsed = _BOOLEANS.get(value.lower())
    if parsed is None:
        raise bad_format(name, "it must be true or false.")
    return parsed


def _json(ctx: Ctx, name: str) -> Any:
    """The parsed JSON text of `name` (None when absent); flattened `Name.N` keys refused."""
    prefix = name + "."
    if any(key.startswith(prefix) for key in ctx.params.raw()):
        raise bad_format(name, f"send it as JSON text in {name}, not as {name}.N.")
    value = ctx.params.get(name)
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        raise bad_format(name, "it must be JSON text.") from None


def json_list(ctx: Ctx, name: str) -> list[str] | None:
    """A list parameter: JSON text of an array of strings."""
    items = _json(ctx, name)
    if items is not None and (
        not isinstance(items, list) or not all(isinstance(i, str) for i in items)
    ):
        raise bad_format(name, "it must be JSON text of a list of strings.")
    return items


def json_object(ctx: Ctx, name: str) -> dict[str, Any] | None:
    """An object parameter (e.g. `Criteria`): JSON text of an object."""
    value = _json(ctx, name)
    if value is not None and not isinstance(value, dict):
        raise bad_format(name, "it must be JSON text of an object.")
    return value


def page(ctx: Ctx) -> tuple[int, int]:
    """PageNumber/PageSize: required by most list actions' models; 1 and 10 if omitted."""
    number = integer(ctx, "PageNumber", 1, 100_000, 1) or 1
    size = integer(ctx, "PageSize", 1, MAX_PAGE_SIZE, 10) or 10
    return number, size


def paged(items: list[Any], number: int, size: int) -> dict[str, Any]:
    return {
        "List": items[(number - 1) * size : number * size],
        "PageNumber": number,
        "PageSize": size,
        "TotalCount": len(items),
    }


def agent_by_user_id(ctx: Ctx, user_id: str) -> Agent:
    """The emulator agent a 2.0 user id names, or NotExists.UserId."""
    agent = next((a for a in ctx.settings.agents if ctx.settings.ccc2_user_id(a) == user_id), None)
    if agent is None:
        raise CccError(
            404,
            "NotExists.UserId",
            f"The user {user_id} does not exist in instance {ctx.settings.instance_id_v2}.",
        )
    return agent


def own_desk(ctx: Ctx, name: str = "UserId") -> AgentState:
    """The caller's desk; a `UserId` naming another agent is refused (an agent acts as itself)."""
    user_id = ctx.params.get(name)
    if user_id is not None and user_id != ctx.user_id:
        agent_by_user_id(ctx, user_id)  # unknown ids are NotExists.UserId
        raise CccError(
            403,
            "Permission.User",
            f"The user {ctx.user_id} has no permission to operate user {user_id}.",
        )
    return ctx.desks.of(ctx.agent)
