"""Tokens the emulated Alibaba has issued, shared by its OAuth side and its CCC (POP) side.

The OAuth side (`oauth_server.py`) issues and revokes; the POP side (`pop_server.py`) only
looks tokens up to authenticate API calls, exactly as CCC trusts RAM's tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .settings import Agent, EmulatorSettings


@dataclass(frozen=True)
class StsCredentials:
    """Temporary STS credentials carried inside an `AliyunSTS` access token."""

    access_key_id: str  # "STS.…"
    access_key_secret: str
    security_token: str


@dataclass
class IssuedAccessToken:
    value: str  # exactly the access_token string handed to the client
    agent: Agent
    client_id: str
    expires_at: float
    refresh_token: str | None  # the refresh token it was issued under, if any
    sts: StsCredentials | None = None  # set for token_format "sts"
    revoked: bool = False


@dataclass
class IssuedRefreshToken:
    value: str
    agent: Agent
    client_id: str
    scope: str
    expires_at: float
    revoked: bool = False


@dataclass
class EmulatorStore:
    """In-memory state of one emulator process."""

    settings: EmulatorSettings
    access_tokens: dict[str, IssuedAccessToken] = field(default_factory=dict)
    refresh_tokens: dict[str, IssuedRefreshToken] = field(default_factory=dict)
    sts_by_key_id: dict[str, IssuedAccessToken] = field(default_factory=dict)

    def add_access_token(self, token: IssuedAccessToken) -> None:
        self.access_tokens[token.value] = token
        if token.sts is not None:
            self.sts_by_key_id[token.sts.access_key_id] = token

    def live_bearer(self, value: str) -> IssuedAccessToken | None:
        """The access token with this exact value if it is unexpired and unrevoked."""
        token = self.access_tokens.get(value)
        return token if token is not None and self._live(token) else None

    def sts_token(self, access_key_id: str) -> IssuedAccessToken | None:
        """The access token whose STS AccessKeyId this is, live or not (callers tell why not)."""
        return self.sts_by_key_id.get(access_key_id)

    def is_live(self, token: IssuedAccessToken) -> bool:
        return self._live(token)

    def _live(self, token: IssuedAccessToken) -> bool:
        return not token.revoked and token.expires_at > self.settings.clock()
