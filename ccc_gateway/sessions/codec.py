"""Sealing a session payload into a cookie value and opening it again (pure: no aiohttp.web).

A token is `MultiFernet(keys).encrypt_at_time(zlib(compact JSON), now)` with the base64
`=` padding stripped, so its alphabet is `[A-Za-z0-9_-]`: legal in a cookie without quoting
and safe to cut anywhere. The first key encrypts, every key decrypts, so operators rotate by
putting a new key first and dropping the old one after `max_age`.

The Fernet timestamp is the time of the last *write*: `decode(max_age=...)` bounds how long
a cookie lives since it was written. An absolute sign-in lifetime and the idle timeout
belong in the payload (the session layer keeps them); this module knows nothing of them.

`decode_as` runs on every signed-in request, so authentic tokens are kept in a bounded LRU
cache (caches.py, ``sessions``) with their Fernet timestamp and the immutable object built
from the payload (the session's `SignIn`): a repeated cookie costs a lookup and an expiry
comparison, not AES + HMAC + zlib + JSON + parsing. Only authentic tokens are cached, so
garbage cannot evict real sessions. Each entry is tagged with the sign-in it belongs to
(`owner`), so the session layer drops a sign-in's entries when it ends; `replace_keys`
empties the cache with the key ring. `decode` (login states, tests) never caches: a PKCE
verifier or nonce is opened once and not kept.

Rotation: `needs_reencrypt(token)` says whether an authentic token was sealed with an older
key; the session layer then simply saves the session again (which seals with the newest
key). We do not use `MultiFernet.rotate`, which would keep the old timestamp and need a
separate write path for a raw token; a normal save is one code path and is tested.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, TypeVar

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from ccc_gateway.caches import BoundedCache

MAX_PAYLOAD_BYTES = 64 * 1024  # decompressed JSON; also the cap that defeats zlib bombs
MAX_TOKEN_CHARS = 64 * 1024  # far above 8 chunks × 4 KB; longer input is rejected unread
MAX_CHUNKS = 8  # a hard stop for tiny chunk sizes; the byte budget of the whole Cookie
# header (cookie_storage.MAX_TOTAL_BYTES) is what binds with 4 KB chunks
CLOCK_SKEW = 60.0  # seconds a token's timestamp may lie in the future (Fernet's own choice)
# Distinct authentic tokens remembered per process (caches.py lists every cache). A browser
# presents one session cookie (two around a refresh) and a worker serves at most a few
# hundred agents, so 1024 entries hold every live session with room to spare; each holds
# the ~2.5 KB token, its payload and the object built from it: ~6 MB at most.
CACHE_SIZE = 1024

_TOKEN = re.compile(r"[A-Za-z0-9_-]+")


class CodecError(Exception):
    """Base of the codec's failures (an opened token that fails is None, never an error)."""


class SessionTooLarge(CodecError):
    """The session does not fit the cookie budget; a 500 with a clear log line, never a
    silently dropped cookie. The message carries sizes only, never the value."""


T = TypeVar("T")


class _Entry:
    """One authentic token: its payload, and what `decode_as` built from it."""

    __slots__ = ("builder", "built", "payload", "stale_key", "timestamp")

    def __init__(self, timestamp: int, payload: dict[str, Any], stale_key: bool) -> None:
        self.timestamp = timestamp  # the authenticated Fernet timestamp, re-checked on a hit
        self.payload = payload  # cached entries hand it out read-only (MappingProxyType)
        self.stale_key = stale_key  # sealed with a key other than the newest
        self.builder: Callable[[Mapping[str, Any]], Any] | None = None
        self.built: Any = None  # builder(payload): immutable, so every caller may share it


class SessionCodec:
    """Encrypts session payloads with the first key; decrypts with any key of the ring."""

    def __init__(self, keys: Sequence[str], *, cache_size: int = CACHE_SIZE) -> None:
        self.cache: BoundedCache[str, _Entry] = BoundedCache("sessions", cache_size)
        self.replace_keys(keys)

    def __repr__(self) -> str:
        return f"SessionCodec(<{self._key_count} key(s) hidden>)"

    def replace_keys(self, keys: Sequence[str]) -> None:
        """Use a new key ring (SIGHUP): everything opened under the old one is forgotten."""
        if not keys:
            raise ValueError("a session codec needs at least one key")
        fernets = [Fernet(key) for key in keys]  # every key is checked before anything changes
        self._key_count = len(fernets)
        self._primary = fernets[0]
        # Older keys only decrypt; None when there is nothing to fall back to.
        self._older = MultiFernet(fernets[1:]) if len(fernets) > 1 else None
        # With a one-key ring (no rotation under way) no token can need re-sealing, and the
        # session layer can skip asking on every request.
        self.has_older_keys = self._older is not None
        self.cache.clear()

    def encode(self, payload: Mapping[str, Any], *, now: float) -> str:
        """Seal `payload` (JSON-serialisable) into a cookie-safe token stamped with `now`."""
        data = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
        if len(data) > MAX_PAYLOAD_BYTES:
            raise SessionTooLarge(
                f"session payload is {len(data)} bytes of JSON; the limit is {MAX_PAYLOAD_BYTES}"
            )
        token = self._primary.encrypt_at_time(zlib.compress(data, 6), int(now))
        return token.decode("ascii").rstrip("=")

    def decode(self, token: str, *, now: float, max_age: float) -> dict[str, Any] | None:
        """The payload of an authentic, unexpired token; None for anything else, never raises.

        Not cached: what it opens (login states: PKCE verifier, nonce) is used once.
        """
        entry = self._open(token)
        if entry is None or not _fresh(entry.timestamp, now, max_age):
            return None
        return entry.payload

    def decode_as(
        self,
        token: str,
        *,
        now: float,
        max_age: float,
        build: Callable[[Mapping[str, Any]], T | None],
        owner: Callable[[T], str] | None = None,
    ) -> T | None:
        """`build(payload)` of an authentic, unexpired token; None for anything else.

        `build` is called once per token (it gets a read-only view of the payload) and its
        result is cached with the token and returned to every later caller, so it must be
        immutable (a frozen dataclass of strings and numbers) and a pure function of the
        payload. `owner(result)` names the sign-in the entry belongs to, so ending that
        sign-in drops it (caches.py). The token's expiry is checked on every call.
        """
        entry = self.cache.get(token)
        if entry is None:
            entry = self._open(token)
            if entry is None:
                return None
            entry.built, entry.builder = build(MappingProxyType(entry.payload)), build
            built_owner = owner(entry.built) if owner and entry.built is not None else None
            self.cache.put(token, entry, built_owner)
        if not now - max_age <= entry.timestamp <= now + CLOCK_SKEW:
            return None
        if entry.builder != build:  # == rather than `is`: bound methods are made per access
            entry.built = build(MappingProxyType(entry.payload))
            entry.builder = build
        built: T | None = entry.built
        return built

    def needs_reencrypt(self, token: str) -> bool:
        """True when `token` is authentic but was sealed with an older key of the ring."""
        entry = self.cache.get(token) or self._open(token)
        return entry is not None and entry.stale_key

    def forget(self, token: str) -> None:
        """Drop what is cached for `token` (sign-out of a cookie whose owner is unknown)."""
        self.cache.pop(token)

    def _open(self, token: str) -> _Entry | None:
        # Cheap checks first: only our alphabet (so non-ASCII and separators never reach
        # base64, whose errors are not all InvalidToken) and a bounded length.
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
            return None
        if not _TOKEN.fullmatch(token):
            return None
        raw = _canonical_bytes(token)
        if raw is None or len(raw) < 9:
            return None
        data, stale = self._decrypt(token + "=" * (-len(token) % 4))
        if data is None:
            return None
        payload = _inflate_json(data)
        if payload is None:
            return None
        # The HMAC covered the timestamp, so reading it from the raw token is safe now.
        return _Entry(int.from_bytes(raw[1:9], "big"), payload, stale)

    def _decrypt(self, padded: str) -> tuple[bytes | None, bool]:
        try:
            return self._primary.decrypt(padded), False
        except (InvalidToken, binascii.Error, ValueError):
            pass
        if self._older is None:
            return None, False
        try:
            return self._older.decrypt(padded), True
        except (InvalidToken, binascii.Error, ValueError):
            return None, False


def _canonical_bytes(token: str) -> bytes | None:
    """The bytes of an unpadded base64url token, or None unless `token` is their only spelling.

    base64 ignores the spare low bits of the last character, so without this check several
    cookie strings would open to the same token (and a flipped last character might pass).
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != token.encode("ascii"):
        return None
    return raw


def _fresh(timestamp: int, now: float, max_age: float) -> bool:
    return now - max_age <= timestamp <= now + CLOCK_SKEW


def _inflate_json(data: bytes) -> dict[str, Any] | None:
    """Decompress at most MAX_PAYLOAD_BYTES (a bomb stops there) and parse a JSON object."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(data, MAX_PAYLOAD_BYTES + 1)
    except zlib.error:
        return None
    # Oversized, truncated, or followed by junk: not something `encode` produced.
    if len(raw) > MAX_PAYLOAD_BYTES or inflater.unconsumed_tail or not inflater.eof:
        return None
    if inflater.unused_data:
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def chunk_name(name: str, index: int) -> str:
    """The cookie name of chunk `index`: `name`, then `name-1`, `name-2`, …"""
    return name if index == 0 else f"{name}-{index}"


def chunk_index(cookie_name: str, name: str) -> int | None:
    """The chunk index `cookie_name` stands for under base `name`, or None if not ours."""
    if cookie_name == name:
        return 0
    prefix = name + "-"
    if not cookie_name.startswith(prefix):
        return None
    digits = cookie_name[len(prefix) :]
    # Canonical decimals only ("1", not "01" or "+1"), so each chunk has exactly one name.
    if not digits.isascii() or not digits.isdigit() or digits[0] == "0":
        return None
    return int(digits)


def split_value(value: str, max_chunk: int) -> list[str]:
    """Cut `value` into at most MAX_CHUNKS pieces of at most `max_chunk` characters."""
    if max_chunk < 1:
        raise ValueError("max_chunk must be at least 1")
    chunks = [value[i : i + max_chunk] for i in range(0, len(value), max_chunk)] or [""]
    if len(chunks) > MAX_CHUNKS:
        raise SessionTooLarge(
            f"session cookie needs {len(chunks)} chunks of {max_chunk} characters "
            f"({len(value)} in all); at most {MAX_CHUNKS} are allowed"
        )
    return chunks


__all__ = [
    "CACHE_SIZE",
    "CLOCK_SKEW",
    "MAX_CHUNKS",
    "MAX_PAYLOAD_BYTES",
    "MAX_TOKEN_CHARS",
    "CodecError",
    "SessionCodec",
    "SessionTooLarge",
    "chunk_index",
    "chunk_name",
    "split_value",
]
