"""The signed-in agent's own CCC 2.0 user id, and the `UserId` pin (docs/ccc-openapi.md §6).

CCC 2.0 actions take an optional `UserId` (`name@instance`); POP's default is the caller's
own agent, and an agent's token could otherwise name a colleague. The gateway lets a
`UserId` through only when it is the agent's own id — never rewriting or adding one. It
learns that id from the `GetLoginDetails` answer (self-only at Alibaba) that passes through
in this sign-in, keeps it in the sign-in (so it goes at sign-out), and when a call needs it
before the softphone asked, calls `GetLoginDetails` itself once.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Final

from aiohttp import web

from ccc_gateway.ccc.client import PopResult
from ccc_gateway.ccc.pop.ccc2 import login_user_id, user_id_values
from ccc_gateway.ccc.request import INSTANCE_PARAM, pop_error
from ccc_gateway.http.errors import BadGateway, Forbidden
from ccc_gateway.keys import SESSIONS
from ccc_gateway.sessions.signin import SignIn

log = logging.getLogger(__name__)

LOGIN_DETAILS: Final = "GetLoginDetails"
# `forward(action, params)`: one audited POP call as the agent (views._forward).
Forward = Callable[[str, Mapping[str, str]], Awaitable[PopResult]]


async def pin_user(
    request: web.Request,
    signin: SignIn,
    params: Mapping[str, str],
    forward: Forward,
    secrets: Iterable[str],
) -> None:
    """403 UserNotAllowed unless every `UserId` is the agent's own (asked once if unknown)."""
    values = user_id_values(params)
    if not values:
        return
    own = signin.ccc_user or await _ask_own_id(request, signin, params, forward, secrets)
    if any(value != own for value in values):
        log.warning("UserId of another agent refused for %s", signin.agent.upn)
        raise Forbidden(
            "A softphone may act only as its own agent; the request names another UserId.",
            error_code="UserNotAllowed",
        )


async def _ask_own_id(
    request: web.Request,
    signin: SignIn,
    params: Mapping[str, str],
    forward: Forward,
    secrets: Iterable[str],
) -> str:
    result = await forward(LOGIN_DETAILS, {INSTANCE_PARAM: params[INSTANCE_PARAM]})
    if result.status >= 400:
        raise pop_error(result, secrets)  # e.g. an expired token: the agent must sign in
    own = await learn_own_id(request, signin, result)
    if own is None:
        raise BadGateway("Alibaba's GetLoginDetails answer names no CCC user for this agent.")
    return own


async def learn_own_id(request: web.Request, signin: SignIn, result: PopResult) -> str | None:
    """The agent's id from a successful GetLoginDetails answer, kept in the sign-in."""
    own = login_user_id(result.body) if result.status < 400 else None
    if own is not None and own != signin.ccc_user:
        await request.app[SESSIONS].save(request, signin.with_ccc_user(own))
    return own
