"""The signed-in agent as `aiohttp_session.get_session(request)` shows it to extension code.

A handler added to the gateway's app may call `await aiohttp_session.get_session(request)`:
the storage (storage.py) is put on every request where the library looks for it
(`expose_storage`, called by the app's one middleware), and `load_session` answers with the
sign-in that `SessionManager.load` (manager.py) accepts after its checks: absolute lifetime,
idle timeout, revocation. The gateway does not install aiohttp-session's own middleware: it
saves nothing for streamed responses or websockets, while the proxy streams every page; the
cookie is written by the app's on_response_prepare hook instead (manager.py `write_cookie`).
"""

from __future__ import annotations

import warnings
from typing import Any, NoReturn

from aiohttp import web
from aiohttp.web_exceptions import NotAppKeyWarning
from aiohttp_session import STORAGE_KEY, AbstractStorage, Session, SessionData

from ccc_gateway.sessions.signin import SignIn

# aiohttp-session keys the request with plain strings (STORAGE_KEY, SESSION_KEY), which
# aiohttp 3.14 answers with one NotAppKeyWarning per key and process. Nothing to fix on our
# side until the library uses web.RequestKey; pyproject's pytest filter is the same one.
warnings.filterwarnings(
    "ignore", category=NotAppKeyWarning, module=r"aiohttp_session|ccc_gateway\.sessions\.view"
)

READ_ONLY = "the gateway's session is read-only: sign-ins change through request.app[SESSIONS]"


class GatewaySession(Session):
    """A read-only view of one request's sign-in, without a single secret.

    Its mapping holds `agent_upn`, `agent_name`, `agent_uid`, `crm_user` (None when CRM
    binding is off), `signed_in_at` and `expires_at` (epoch seconds: the sooner of the
    absolute lifetime and the idle timeout); it is empty (and `new`) when nobody is signed in.
    It never holds a token, the refresh token or the sign-in's id, and its `identity` is
    None: the Redis store's handle is a bearer secret. Writing to it raises TypeError rather
    than being dropped silently: a sign-in changes only through `SessionManager`, whose rules
    (CRM binding, single-flight refresh, revocation) a mapping write would bypass.
    """

    def __init__(self, signin: SignIn | None, *, expires_at: float | None = None) -> None:
        data: SessionData | None = None
        if signin is not None:
            fields = {
                "agent_upn": signin.agent.upn,
                "agent_name": signin.agent.name,
                "agent_uid": signin.agent.uid,
                "crm_user": signin.crm_user,
                "signed_in_at": signin.created_at,
                "expires_at": expires_at,
            }
            data = {"created": int(signin.created_at), "session": fields}
        # max_age=None: lifetimes are the manager's, on its clock (the library's slides).
        super().__init__(None, data=data, new=signin is None, max_age=None)
        self._signin = signin  # for the storage's save_session only; never in the mapping

    def __setitem__(self, key: str, value: Any) -> NoReturn:
        raise TypeError(READ_ONLY)

    def __delitem__(self, key: str) -> NoReturn:
        raise TypeError(READ_ONLY)

    def invalidate(self) -> NoReturn:
        raise TypeError(READ_ONLY)

    def set_new_identity(self, identity: Any) -> NoReturn:
        raise TypeError(READ_ONLY)


def signin_of(session: Session) -> SignIn | None:
    """The whole sign-in behind `session`, tokens included: for the storages' save_session
    only (None for a session of another kind: the cookie is then deleted)."""
    return session._signin if isinstance(session, GatewaySession) else None


def expose_storage(request: web.Request, storage: AbstractStorage) -> None:
    """Put `storage` where `aiohttp_session.get_session` looks for it."""
    request[STORAGE_KEY] = storage


__all__ = ["READ_ONLY", "GatewaySession", "expose_storage", "signin_of"]
