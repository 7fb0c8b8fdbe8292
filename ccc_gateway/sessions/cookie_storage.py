"""The session cookie on the wire: read it from a request, write it on a response.

One sealed token (see `codec.py`) is cut into chunks `name`, `name-1`, `name-2`, … so
that every whole `Set-Cookie` header stays under the browsers' ~4 KB limit, and the sum of
the chunks stays well under the 8190-byte `Cookie` header our own aiohttp server (and most
CRMs) accepts; past either budget `save` raises `SessionTooLarge` instead of emitting a
cookie the browser would silently drop or that would lock the user out with 400s.

The name must start with `__Host-`: the browser then insists on Secure, Path=/ and no
Domain, so neither a sibling subdomain nor a plain-http page can plant or shadow it. Every
chunk, and every deletion, carries the same attributes: a `__Host-` cookie deleted without
Secure is not deleted at all (aiohttp-session's pitfall).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from aiohttp import hdrs, web

from ccc_gateway.caches import BoundedCache
from ccc_gateway.sessions.codec import (
    MAX_CHUNKS,
    SessionCodec,
    SessionTooLarge,
    chunk_index,
    chunk_name,
    split_value,
)

HOST_PREFIX = "__Host-"
# Every cookie the gateway sets starts with this (session chunks, login state); the proxy
# strips them before the CRM sees a request and drops CRM attempts to set them.
GATEWAY_COOKIE_PREFIX = HOST_PREFIX + "ccc-"


def is_gateway_cookie(name: str) -> bool:
    return name.startswith(GATEWAY_COOKIE_PREFIX)


MAX_COOKIE_BYTES = 4000  # one Set-Cookie header value; browsers keep ~4096 per cookie
# All our `name=value` pairs in the Cookie header: aiohttp rejects a header over 8190 bytes
# with a 400 before any handler runs (not even /logout), so leave ~1 KB for the CRM's cookies.
MAX_TOTAL_BYTES = 7000
_EPOCH = "Thu, 01 Jan 1970 00:00:00 GMT"
_SAMESITE = frozenset({"Strict", "Lax", "None"})
_NAME = re.compile(r"__Host-[A-Za-z0-9_.-]+")
_MIN_CHUNK = 256  # below this the attributes eat the budget; surely a misconfiguration
# Cookie headers remembered with the token they carry (caches.py, ``cookie-tokens``): aiohttp
# caps a header at 8 KB, so at most ~2 MB for 256 browsers; more only means more parsing.
TOKEN_CACHE_SIZE = 256
T = TypeVar("T")


class CookieSession:
    """Loads and saves one session payload in a chunked, encrypted `__Host-` cookie."""

    def __init__(
        self,
        codec: SessionCodec,
        *,
        name: str,
        max_age: float,
        samesite: str = "Lax",
        max_cookie_bytes: int = MAX_COOKIE_BYTES,
        max_total_bytes: int = MAX_TOTAL_BYTES,
    ) -> None:
        if not _NAME.fullmatch(name):
            raise ValueError(f"session cookie name must be {HOST_PREFIX}<letters, digits, _.->")
        if samesite not in _SAMESITE:
            raise ValueError(f"samesite must be one of {sorted(_SAMESITE)}, not {samesite!r}")
        if max_age < 1:
            raise ValueError("max_age must be at least one second")
        self._codec = codec
        # Cookie header -> our token; only headers whose token opened, owned by their sign-in.
        self.tokens: BoundedCache[str, str] = BoundedCache("cookie-tokens", TOKEN_CACHE_SIZE)
        self.name = name
        self.max_age = max_age
        self.samesite = samesite
        self.max_total_bytes = max_total_bytes
        self._max_chunk = max_cookie_bytes - _attribute_overhead(self)
        if self._max_chunk < _MIN_CHUNK:
            raise ValueError(f"max_cookie_bytes={max_cookie_bytes} leaves no room for a value")

    def load(self, request: web.Request, *, now: float) -> dict[str, Any] | None:
        """The payload the request's cookie carries, or None (absent, broken, expired, …)."""
        token = self.carried_token(request)
        if not token:
            return None
        return self._codec.decode(token, now=now, max_age=self.max_age)

    def load_as(
        self,
        request: web.Request,
        *,
        now: float,
        build: Callable[[Mapping[str, Any]], T | None],
        owner: Callable[[T], str] | None = None,
    ) -> T | None:
        """`build(payload)` of the request's cookie, built once per cookie value and shared
        (see `SessionCodec.decode_as`: the result must be immutable), or None. `owner` names
        the sign-in the cached entries belong to (caches.py)."""
        raw = request.headers.get(hdrs.COOKIE, "")
        # Most proxied CRM requests carry no gateway session: a substring test of the raw
        # header spares parsing every cookie of the CRM's just to find none of ours.
        if self.name not in raw:
            return None
        # A browser sends the same Cookie header request after request, and parsing its
        # ~2 KB (aiohttp's cookie regex) cost more than the rest of the session lookup: the
        # token is a function of the header alone, so it is remembered per header.
        token = self.tokens.get(raw)
        if token is not None:
            return self._codec.decode_as(
                token, now=now, max_age=self.max_age, build=build, owner=owner
            )
        token = self._parse_token(request)
        if not token:
            return None
        built = self._codec.decode_as(
            token, now=now, max_age=self.max_age, build=build, owner=owner
        )
        if built is not None:  # only a header whose token opened is remembered
            self.tokens.put(raw, token, owner(built) if owner is not None else None)
        return built

    def forget(self, request: web.Request) -> None:
        """Sign-out: drop what the caches hold for this request's cookie, whatever its owner."""
        raw = request.headers.get(hdrs.COOKIE, "")
        token = self.tokens.pop(raw) or (self._parse_token(request) if self.name in raw else "")
        if token:
            self._codec.forget(token)

    @property
    def caches(self) -> tuple[BoundedCache[Any, Any], ...]:
        """The caches this cookie's reading fills (caches.py): opened tokens, Cookie headers."""
        return (self._codec.cache, self.tokens)

    def carried(self, request: web.Request) -> bool:
        """Whether the request may carry this cookie: its name is in the Cookie header."""
        return self.name in request.headers.get(hdrs.COOKIE, "")

    def needs_reencrypt(self, request: web.Request) -> bool:
        """True when the carried cookie is valid under an older key: save it again to rotate."""
        if not self._codec.has_older_keys:
            return False  # nothing to rotate from: no need to find the cookie again
        token = self.carried_token(request)
        return bool(token) and self._codec.needs_reencrypt(token)

    def save(
        self,
        response: web.StreamResponse,
        request: web.Request,
        payload: Mapping[str, Any],
        *,
        now: float,
    ) -> None:
        """Set the cookie chunks for `payload` and expire the chunks it no longer needs.

        Raises SessionTooLarge (a 500) rather than emit a cookie the browser would drop.
        """
        chunks = split_value(self._codec.encode(payload, now=now), self._max_chunk)
        self._check_total(chunks)
        for index, chunk in enumerate(chunks):
            self._set(response, chunk_name(self.name, index), chunk, max_age=int(self.max_age))
        self._expire_beyond(response, request, len(chunks))

    def clear(self, response: web.StreamResponse, request: web.Request) -> None:
        """Expire every chunk the request carried (and the base name in any case)."""
        self._expire_beyond(response, request, 0)

    def carried_token(self, request: web.Request) -> str:
        """The request's sealed token, its chunks joined ("" when it carries none)."""
        raw = request.headers.get(hdrs.COOKIE, "")
        if self.name not in raw:
            return ""
        return self.tokens.get(raw) or self._parse_token(request)

    def _parse_token(self, request: web.Request) -> str:
        # Contiguous chunks only: a gap means a lost cookie, and the truncated token then
        # fails its HMAC instead of being pieced together from strangers.
        cookies = request.cookies
        parts: list[str] = []
        for index in range(MAX_CHUNKS):
            part = cookies.get(chunk_name(self.name, index))
            if part is None:
                break
            parts.append(part)
        return "".join(parts)

    def _check_total(self, chunks: list[str]) -> None:
        pairs = [len(chunk_name(self.name, i)) + 1 + len(c) for i, c in enumerate(chunks)]
        total = sum(pairs) + 2 * (len(pairs) - 1)  # "; " between pairs in the Cookie header
        if total > self.max_total_bytes:
            raise SessionTooLarge(
                f"session cookie would add {total} bytes to every Cookie header "
                f"in {len(chunks)} chunks; the budget is {self.max_total_bytes}"
            )

    def _expire_beyond(self, response: web.StreamResponse, request: web.Request, keep: int) -> None:
        names = set(gateway_cookie_names(request, self.name))
        # Chunks set earlier on this same response (a second save that shrank) go too.
        names.update(_ours(response.cookies.keys(), self.name))
        if keep == 0:
            names.add(self.name)
        for cookie in names:
            index = chunk_index(cookie, self.name)
            if index is not None and index >= keep:
                self._set(response, cookie, "", max_age=0)

    def _set(self, response: web.StreamResponse, cookie: str, value: str, *, max_age: int) -> None:
        # Start from a fresh morsel: aiohttp updates an existing one in place and would keep
        # attributes (a deletion's Expires, a Domain) from an earlier set_cookie of this name.
        response.cookies.pop(cookie, None)
        response.set_cookie(
            cookie,
            value,
            # A deletion also sends the epoch as Expires, for clients that ignore Max-Age=0.
            expires=_EPOCH if max_age == 0 else None,
            max_age=max_age,
            path="/",  # required by __Host-; the whole CRM is behind the gateway
            secure=True,  # required by __Host-; tokens never travel over plain http
            httponly=True,  # the CRM's scripts (and any XSS in them) never read Alibaba tokens
            samesite=self.samesite,  # Lax: top-level sign-in redirects work, cross-site POSTs don't
        )


def gateway_cookie_names(request: web.Request, name: str) -> list[str]:
    """The request's cookies that are chunks of session cookie `name`, in chunk order."""
    return sorted(_ours(request.cookies.keys(), name), key=lambda c: chunk_index(c, name) or 0)


def _ours(cookies: Iterable[str], name: str) -> list[str]:
    return [cookie for cookie in cookies if chunk_index(cookie, name) is not None]


def _attribute_overhead(session: CookieSession) -> int:
    """Bytes of a chunk's Set-Cookie header value beyond its value, for the longest name.

    Rendered by aiohttp's own cookie machinery, so the budget matches what goes on the wire.
    """
    probe = web.StreamResponse()
    longest = chunk_name(session.name, MAX_CHUNKS - 1)
    session._set(probe, longest, "A", max_age=int(session.max_age))
    return len(probe.cookies[longest].OutputString()) - 1


__all__ = [
    "HOST_PREFIX",
    "MAX_COOKIE_BYTES",
    "MAX_TOTAL_BYTES",
    "CookieSession",
    "SessionTooLarge",
    "gateway_cookie_names",
]
