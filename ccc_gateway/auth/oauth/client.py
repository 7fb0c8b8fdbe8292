"""Alibaba Cloud RAM OAuth 2.0 / OIDC client (docs/oauth.md).

Authorization code + PKCE (S256) sign-in, code exchange, refresh (keeping the old refresh
token unless a new one arrives), revocation of the refresh token, userinfo, and id_token
verification against a cached JWKS. Failures are classified for the caller as the
docs/oauth.md "Refresh" section asks: only ``invalid_grant`` / ``invalid_client`` end a
sign-in (:attr:`OAuthProviderError.fatal`); network errors, timeouts, 5xx and garbage are
:class:`OAuthUnavailable` (keep the session, answer 502/503/504).

Framework-free: the caller injects the ``aiohttp.ClientSession`` and the clock.
Logs carry endpoint names and outcomes only, at DEBUG, never a secret.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from ccc_gateway.auth.oauth.errors import (
    IdTokenError,
    OAuthError,
    OAuthProtocolError,
    OAuthProviderError,
    OAuthUnavailable,
    UnknownKeyId,
)
from ccc_gateway.auth.oauth.oidc import JwkSet, verify_id_token
from ccc_gateway.auth.oauth.tokens import TokenSet, parse_token_response
from ccc_gateway.auth.oauth.transport import Reply, error_from_reply, parse_json, send

__all__ = [
    "ID_TOKEN_LEEWAY",
    "JWKS_MIN_REFETCH_INTERVAL",
    "JWKS_TTL",
    "AlibabaOAuthClient",
    "Endpoints",
    "IdTokenError",
    "OAuthError",
    "OAuthProtocolError",
    "OAuthProviderError",
    "OAuthUnavailable",
    "UnknownKeyId",
    "endpoints_for_site",
]

_log = logging.getLogger(__name__)

# Keys rotate rarely; an hour bounds how long a withdrawn key stays trusted.
JWKS_TTL = 3600.0
# A forged kid must not let anyone make us hammer the JWKS endpoint.
JWKS_MIN_REFETCH_INTERVAL = 30.0
# Clock skew tolerated on exp/iat/nbf of id_tokens.
ID_TOKEN_LEEWAY = 60.0


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where Alibaba's OAuth endpoints live and which issuer signs the id_tokens."""

    authorize_url: str
    token_url: str
    revoke_url: str
    userinfo_url: str
    jwks_url: str
    issuer: str


_SITES = {
    "china": Endpoints(
        authorize_url="https://signin.aliyun.com/oauth2/v1/auth",
        token_url="https://oauth.aliyun.com/v1/token",  # noqa: S106 (a URL)
        revoke_url="https://oauth.aliyun.com/v1/revoke",
        userinfo_url="https://oauth.aliyun.com/v1/userinfo",
        jwks_url="https://oauth.aliyun.com/v1/keys",
        issuer="https://oauth.aliyun.com",
    ),
    "international": Endpoints(
        authorize_url="https://signin.alibabacloud.com/oauth2/v1/auth",
        token_url="https://oauth.alibabacloud.com/v1/token",  # noqa: S106 (a URL)
        revoke_url="https://oauth.alibabacloud.com/v1/revoke",
        userinfo_url="https://oauth.alibabacloud.com/v1/userinfo",
        # UNVERIFIED (§1): the JWKS path and the issuer are assumed to mirror the China site;
        # both are overridable in the config (aliyun.jwks_url, aliyun.issuer).
        jwks_url="https://oauth.alibabacloud.com/v1/keys",
        issuer="https://oauth.alibabacloud.com",
    ),
}


def endpoints_for_site(site: str) -> Endpoints:
    """Default endpoints for ``"china"`` or ``"international"``; ValueError otherwise."""
    try:
        return _SITES[site.strip().lower()]
    except KeyError:
        raise ValueError(
            f"unknown Alibaba site {site!r} (expected one of {sorted(_SITES)})"
        ) from None


class AlibabaOAuthClient:
    """The gateway's OAuth/OIDC client for one registered Alibaba "Web application"."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        endpoints: Endpoints,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        *,
        scope: str | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = 10.0,
    ) -> None:
        self._session = session
        self._endpoints = endpoints
        self._client_id = client_id
        self._client_secret = client_secret
        self._redirect_uri = redirect_uri
        self._scope = scope or None
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._jwks: JwkSet | None = None
        self._jwks_fetched_at = -math.inf
        self._jwks_attempted_at = -math.inf
        self._jwks_refetched_at = -math.inf
        self._jwks_lock = asyncio.Lock()

    def __repr__(self) -> str:
        # The client secret stays out on purpose.
        return f"AlibabaOAuthClient(client_id={self._client_id!r}, endpoints={self._endpoints!r})"

    @property
    def endpoints(self) -> Endpoints:
        """The endpoints this client talks to."""
        return self._endpoints

    @property
    def jwks_loaded(self) -> bool:
        """True once a JWKS has been fetched successfully (readiness)."""
        return self._jwks is not None

    def authorize_url(self, *, state: str, code_challenge: str, nonce: str | None) -> str:
        """The URL to send the browser to; any query of the configured URL is kept."""
        params = {
            "client_id": self._client_id,
            "redirect_uri": self._redirect_uri,
            "response_type": "code",
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
            # Without it Alibaba grants no refresh token (§1).
            "access_type": "offline",
        }
        if self._scope is not None:
            params["scope"] = self._scope
        if nonce is not None:
            params["nonce"] = nonce  # OIDC Core §3.1.2.1; harmless if Alibaba ignores it
        return str(URL(self._endpoints.authorize_url).update_query(params))

    async def exchange_code(self, code: str, code_verifier: str) -> TokenSet:
        """Exchange an authorization code (with its PKCE verifier) for tokens."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "redirect_uri": self._redirect_uri,
            "code_verifier": code_verifier,
        }
        return await self._grant("token", form, sent=(code, code_verifier), previous=None)

    async def refresh(self, refresh_token: str) -> TokenSet:
        """Refresh; the old refresh token is kept unless Alibaba rotates it."""
        form = {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        return await self._grant("refresh", form, sent=(refresh_token,), previous=refresh_token)

    async def revoke(self, token: str) -> None:
        """Revoke a token (§1: the refresh token on sign-out); any 2xx is success."""
        form = {"token": token, "client_id": self._client_id, "client_secret": self._client_secret}
        reply = await self._call("revoke", "POST", self._endpoints.revoke_url, form=form)
        if not reply.ok:
            raise error_from_reply("revoke", reply, self._secrets(token))

    async def userinfo(self, access_token: str) -> dict[str, Any]:
        """The signed-in user's claims (``sub``, ``name``, ``upn``, ``aid``, ``uid``, ...)."""
        headers = {"Authorization": f"Bearer {access_token}"}
        url = self._endpoints.userinfo_url
        reply = await self._call("userinfo", "GET", url, headers=headers)
        if reply.status == 401 and not isinstance(parse_json(reply.body), dict):
            # RFC 6750 §3: the reason may be only in WWW-Authenticate; the token is refusable.
            raise OAuthProviderError("invalid_token", "userinfo refused the token", 401)
        if not reply.ok:
            raise error_from_reply("userinfo", reply, self._secrets(access_token))
        return _success_object("userinfo", reply)

    async def verify_id_token(self, id_token: str, *, nonce: str | None) -> dict[str, Any]:
        """Verify an id_token against the (cached) JWKS and return its claims.

        An unknown ``kid`` triggers one JWKS re-fetch (at most every
        ``JWKS_MIN_REFETCH_INTERVAL`` seconds) before :class:`UnknownKeyId` is raised.
        """
        keys = await self._current_jwks()
        try:
            return self._verify(id_token, keys, nonce)
        except UnknownKeyId:
            fresh = await self._refetch_jwks(keys)
            if fresh is None:
                raise
        return self._verify(id_token, fresh, nonce)

    async def load_jwks(self) -> None:
        """Fetch the JWKS unless a fresh copy is cached; raises :class:`OAuthError` on failure."""
        async with self._jwks_lock:
            if self._jwks is None or self._jwks_stale():
                await self._fetch_jwks()

    # -- internals ---------------------------------------------------------------------------

    async def _grant(
        self, name: str, form: dict[str, str], *, sent: Iterable[str], previous: str | None
    ) -> TokenSet:
        # Taken before sending: the token's lifetime started no earlier than this.
        now = self._clock()
        reply = await self._call(name, "POST", self._endpoints.token_url, form=form)
        secrets = self._secrets(*sent)
        if not reply.ok:
            raise error_from_reply(name, reply, secrets)
        body = _success_object(name, reply)
        if "access_token" not in body:
            # Some gateways answer errors with 200; treat them as the error they are.
            error = error_from_reply(name, reply, secrets)
            if isinstance(error, OAuthProviderError):
                raise error
        return parse_token_response(body, now=now, previous_refresh_token=previous)

    async def _call(
        self,
        name: str,
        method: str,
        url: str,
        *,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        reply = await send(
            self._session,
            name,
            method,
            url,
            form=form,
            headers=headers,
            client_timeout=self._timeout,
        )
        _log.debug("oauth %s: HTTP %d", name, reply.status)
        return reply

    def _secrets(self, *sent: str) -> tuple[str, ...]:
        return (self._client_secret, *sent)

    def _verify(self, id_token: str, keys: JwkSet, nonce: str | None) -> dict[str, Any]:
        return verify_id_token(
            id_token,
            keys,
            issuer=self._endpoints.issuer,
            audience=self._client_id,
            now=self._clock(),
            nonce=nonce,
            leeway=ID_TOKEN_LEEWAY,
        )

    def _jwks_stale(self) -> bool:
        return self._clock() - self._jwks_fetched_at >= JWKS_TTL

    def _may_fetch_jwks(self) -> bool:
        return self._clock() - self._jwks_attempted_at >= JWKS_MIN_REFETCH_INTERVAL

    async def _current_jwks(self) -> JwkSet:
        async with self._jwks_lock:
            if self._jwks is not None and (not self._jwks_stale() or not self._may_fetch_jwks()):
                return self._jwks
            try:
                return await self._fetch_jwks()
            except OAuthError:
                if self._jwks is None:
                    raise
                # Expired cache beats no verification at all while Alibaba has a hiccup.
                _log.debug("oauth jwks: refresh failed, using the cached keys")
                return self._jwks

    async def _refetch_jwks(self, seen: JwkSet) -> JwkSet | None:
        async with self._jwks_lock:
            if self._jwks is not None and self._jwks is not seen:
                return self._jwks  # another task re-fetched while we waited
            # Only re-fetches caused by an unknown kid count here: a key rotation right after
            # an ordinary fetch must still be picked up, while a stream of forged kids can
            # make us ask at most once per interval.
            if self._clock() - self._jwks_refetched_at < JWKS_MIN_REFETCH_INTERVAL:
                _log.debug("oauth jwks: unknown kid, re-fetch rate-limited")
                return None
            self._jwks_refetched_at = self._clock()
            return await self._fetch_jwks()

    async def _fetch_jwks(self) -> JwkSet:
        self._jwks_attempted_at = self._clock()
        reply = await self._call("jwks", "GET", self._endpoints.jwks_url)
        if not reply.ok:
            raise error_from_reply("jwks", reply, ())
        keys = JwkSet.from_json(_success_object("jwks", reply))
        self._jwks, self._jwks_fetched_at = keys, self._clock()
        return keys


def _success_object(name: str, reply: Reply) -> dict[str, Any]:
    """The JSON object of a 2xx reply; garbage is transient, a non-object breaks protocol."""
    value = parse_json(reply.body)
    if value is None:
        raise OAuthUnavailable(f"{name}: HTTP {reply.status} body is not JSON", status=reply.status)
    if not isinstance(value, dict):
        raise OAuthProtocolError(f"{name}: HTTP {reply.status} body is not a JSON object")
    return value
