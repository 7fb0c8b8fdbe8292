"""The gateway's caches: one bounded LRU helper, and the one list of the caches that exist.

A cache stays only where the bench shows it pays (bench/RESULTS.md); each is a `BoundedCache`,
and none may hold a token, secret or CRM cookie past the sign-in it belongs to. Entries are
tagged with the sign-in id (`sid`) that owns them, so sign-out (`/aliyun/revoke`), a sign-in
ended by Alibaba (fatal refresh failure) and a successful refresh drop that sign-in's entries
(`CacheRegistry.drop_signin`), and a key reload (SIGHUP) drops everything (`clear_all`).

The caches (built in app.py, listed in the app's `CacheRegistry` under `keys.CACHES`):

=================  =====================================  ======  ==============================
name               maps                                   bound   may hold / dropped
=================  =====================================  ======  ==============================
``sessions``       sealed cookie token → its decrypted    1024    tokens of a live sign-in;
(sessions/codec)   payload and the `SignIn` built from it         owner = sid; dropped on sign-
                                                                  out, sign-in end, refresh,
                                                                  key reload
``cookie-tokens``  whole Cookie header (CRM cookies +     256     CRM cookies of a live sign-in;
(sessions/         our chunks) → the sealed token it              stored only once the token
cookie_storage)    carries                                        opened, owner = sid; dropped
                                                                  as ``sessions``
``whoami``         sha256(CRM cookies) → (until, CRM      10000   a CRM user name (no cookie):
(sessions/         user), `session.whoami_cache_ttl`              this browser's entry dropped
crm_binding)                                                      on sign-out; key reload
=================  =====================================  ======  ==============================

With the Redis store, the session cookie's entries hold the random handle (no token, no owner
known when it is opened); sign-out drops the carried cookie's entries by value, and the
record a handle names is deleted from Redis, so a remembered handle opens nothing.

Not caches, but per-process security state with its own lifetime (listed so nothing hides):
``MemoryConsumed`` (auth/login_state.py: used login states until they would expire, 10,000),
and SessionManager's per-sign-in tables (sessions/refresh.py: refresh locks, the 60 s
refresh-grace result, shared failures; sessions/manager.py: the revocation list until each
sign-in's absolute end). Login-state cookies (PKCE verifier, nonce) are never cached.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BoundedCache(Generic[K, V]):
    """An LRU map of at most `maxsize` entries, each optionally owned by a sign-in id."""

    def __init__(self, name: str, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("a cache holds at least one entry")
        self.name = name
        self.maxsize = maxsize
        self._entries: OrderedDict[K, tuple[V, str | None]] = OrderedDict()
        self._owned: dict[str, set[K]] = {}  # sid -> its keys

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"BoundedCache({self.name!r}, {len(self)}/{self.maxsize})"

    def get(self, key: K) -> V | None:
        item = self._entries.get(key)
        if item is None:
            return None
        self._entries.move_to_end(key)
        return item[0]

    def put(self, key: K, value: V, owner: str | None = None) -> None:
        self.pop(key)
        self._entries[key] = (value, owner)
        if owner is not None:
            self._owned.setdefault(owner, set()).add(key)
        while len(self._entries) > self.maxsize:
            old, (_, old_owner) = self._entries.popitem(last=False)
            self._disown(old, old_owner)

    def pop(self, key: K) -> V | None:
        item = self._entries.pop(key, None)
        if item is None:
            return None
        self._disown(key, item[1])
        return item[0]

    def drop_owner(self, owner: str) -> None:
        """Forget every entry of sign-in `owner`."""
        for key in self._owned.pop(owner, ()):
            self._entries.pop(key, None)

    def clear(self) -> None:
        self._entries.clear()
        self._owned.clear()

    def values(self) -> Iterator[V]:
        """The values, oldest first (for tests that search what a cache holds)."""
        return (value for value, _ in self._entries.values())

    def _disown(self, key: K, owner: str | None) -> None:
        keys = self._owned.get(owner) if owner is not None else None
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._owned[owner]  # type: ignore[arg-type]


class CacheRegistry:
    """The app's caches, so events that end a sign-in reach every one of them."""

    def __init__(self, *caches: BoundedCache[Any, Any]) -> None:
        self._caches = {cache.name: cache for cache in caches}

    def __iter__(self) -> Iterator[BoundedCache[Any, Any]]:
        return iter(self._caches.values())

    def drop_signin(self, sid: str) -> None:
        """Sign-out, a sign-in ended by Alibaba, or refreshed: its entries go everywhere."""
        for cache in self._caches.values():
            cache.drop_owner(sid)

    def clear_all(self) -> None:
        """A key reload: nothing opened under the old ring may outlive it."""
        for cache in self._caches.values():
            cache.clear()

    def sizes(self) -> dict[str, int]:
        return {name: len(cache) for name, cache in self._caches.items()}


__all__ = ["BoundedCache", "CacheRegistry"]
