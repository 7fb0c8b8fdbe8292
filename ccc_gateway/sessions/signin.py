"""An Alibaba sign-in as the gateway keeps it: tokens, the agent, and the CRM user it belongs to.

It travels in the encrypted session cookie as a compact dict (short keys: the cookie budget
is 4 KB and an STS access token alone can take 1.5 KB). The id_token is not kept: it was
verified once at sign-in and nothing needs it afterwards.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import quote

from ccc_gateway.auth.oauth.tokens import TokenSet

PAYLOAD_VERSION = 1
AGENT_UPN_HEADER: Final = "X-Ccc-Agent-Upn"
AGENT_NAME_HEADER: Final = "X-Ccc-Agent-Name"


@dataclass(frozen=True, slots=True)
class Agent:
    upn: str
    name: str
    uid: str | None = None
    # What the CRM is told about the agent (upstream.identity_headers), made once per Agent:
    # the session cache shares one SignIn per cookie value, so a page quotes nothing.
    headers: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        headers = {
            AGENT_UPN_HEADER: header_text(self.upn),
            AGENT_NAME_HEADER: header_text(self.name),
        }
        object.__setattr__(self, "headers", MappingProxyType(headers))


@dataclass(frozen=True, slots=True)
class SignIn:
    sid: str  # random id of this sign-in: lock key, revocation list key, log correlation
    tokens: TokenSet
    agent: Agent
    crm_user: str | None  # None when CRM binding is off
    created_at: float
    last_used: float
    # The agent's CCC 2.0 user id (`name@instance`), learned from GetLoginDetails in this
    # sign-in (ccc/agent_id.py); None until then, and always with classic CCC.
    ccc_user: str | None = None

    def __repr__(self) -> str:
        return f"SignIn(sid={self.sid[:8]}…, agent={self.agent.upn!r}, crm_user={self.crm_user!r})"

    @classmethod
    def new(cls, tokens: TokenSet, agent: Agent, crm_user: str | None, now: float) -> SignIn:
        return cls(secrets.token_urlsafe(12), tokens, agent, crm_user, now, now)

    def with_tokens(self, tokens: TokenSet, now: float) -> SignIn:
        return replace(self, tokens=tokens, last_used=now)

    def touched(self, now: float) -> SignIn:
        return replace(self, last_used=now)

    def with_ccc_user(self, ccc_user: str) -> SignIn:
        return replace(self, ccc_user=ccc_user)

    def to_payload(self) -> dict[str, Any]:
        t = self.tokens
        payload = {
            "v": PAYLOAD_VERSION,
            "sid": self.sid,
            "at": t.access_token,
            "tt": t.token_type,
            "exp": t.expires_at,
            "rt": t.refresh_token,
            "sc": t.scope,
            "upn": self.agent.upn,
            "nm": self.agent.name,
            "uid": self.agent.uid,
            "crm": self.crm_user,
            "ct": self.created_at,
            "lu": self.last_used,
        }
        if self.ccc_user is not None:  # only once learned: the cookie budget is tight
            payload["cu"] = self.ccc_user
        return payload

    @classmethod
    def from_payload(cls, data: Mapping[str, Any]) -> SignIn | None:
        """The sign-in in a decoded cookie, or None when it is of another shape or version."""
        try:
            if data.get("v") != PAYLOAD_VERSION:
                return None
            tokens = TokenSet(
                access_token=_text(data["at"]),
                token_type=_text(data["tt"]),
                expires_at=float(data["exp"]),
                refresh_token=_optional_text(data.get("rt")),
                scope=_optional_text(data.get("sc")),
            )
            agent = Agent(_text(data["upn"]), _text(data["nm"]), _optional_text(data.get("uid")))
            return cls(
                sid=_text(data["sid"]),
                tokens=tokens,
                agent=agent,
                crm_user=_optional_text(data.get("crm")),
                created_at=float(data["ct"]),
                last_used=float(data["lu"]),
                ccc_user=_optional_text(data.get("cu")),
            )
        except (KeyError, TypeError, ValueError):
            return None


def header_text(value: str) -> str:
    """Header values are ASCII on the wire; names may be Chinese. Percent-encoding (UTF-8) of
    everything outside printable ASCII, and of '%' itself, lets the CRM always unquote."""
    return quote(value, safe=" !\"#$&'()*+,-./:;<=>?@[]^_`{|}~")


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("expected text")
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)
