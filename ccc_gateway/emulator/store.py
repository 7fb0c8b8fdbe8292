"""Tokens the emulated Alibaba has issued, shared by its OAuth side and its CCC (POP) side.

The OAuth side (`oauth_server.py` and the modules it wires) issues and revokes; the POP side
(`pop_server.py`) only looks tokens up to authenticate API calls, as CCC trusts RAM's tokens.
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
    scope: str = ""  # space separated, as granted at authorize time


@dataclass
class IssuedRefreshToken:
    value: str
    agent: Agent
    client_id: str
    scope: str
    expires_at: float
    revoked: bool = False


@dataclass
class IssuedCode:
    """An authorization code and everything the authorize request bound to it."""

    value: str
    client_id: str
    redirect_uri: str
    agent: Agent
    scope: str
    expires_at: float
    code_challenge: str | None = None
    code_challenge_method: str | None = None  # "S256" | "plain" when a challenge was sent
    nonce: str | None = None
    access_type: str = "online"
    used: bool = False
    # What the exchange handed out, so a replayed code can take it back (RFC 6749 §4.1.2).
    access_tokens: list[str] = field(default_factory=list)
    refresh_token: str | None = None


@dataclass
class EmulatorStore:
    """In-memory state of one emulator process."""

    settings: EmulatorSettings
    access_tokens: dict[str, IssuedAccessToken] = field(default_factory=dict)
    refresh_tokens: dict[str, IssuedRefreshToken] = field(default_factory=dict)
    sts_by_key_id: dict[str, IssuedAccessToken] = field(default_factory=dict)
    codes: dict[str, IssuedCode] = field(default_factory=dict)

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

    def live_refresh(self, value: str) -> IssuedRefreshToken | None:
        """The refresh token with this exact value if it is unexpired and unrevoked."""
        token = self.refresh_tokens.get(value)
        if token is None or token.revoked or token.expires_at <= self.settings.clock():
            return None
        return token

    def revoke_refresh_token(self, value: str) -> None:
        """Revoke a refresh token and every access token issued under it."""
        refresh = self.refresh_tokens.get(value)
        if refresh is not None:
            refresh.revoked = True
        for token in self.access_tokens.values():
            if token.refresh_token == value:
                token.revoked = True

    def revoke_code_tokens(self, code: IssuedCode) -> None:
        """Take back what a code's exchange issued: the code was replayed, so it leaked."""
        for value in code.access_tokens:
            if value in self.access_tokens:
                self.access_tokens[value].revoked = True
        if code.refresh_token is not None:
            self.revoke_refresh_token(code.refresh_token)

    def expire_agent_tokens(self, upn: str) -> int:
        """Make every live access token of this agent expire now; returns how many."""
        now = self.settings.clock()
        expired = 0
        for token in self.access_tokens.values():
            if token.agent.upn == upn and self._live(token):
                token.expires_at = now
                expired += 1
        return expired

    def _live(self, token: IssuedAccessToken) -> bool:
        return not token.revoked and token.expires_at > self.settings.clock()
