"""`InMemoryCache`: a cache in this process's memory, shared by its threads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

from graphrt.cache.base import BaseCache, FullKey, Namespace, ValueT
from graphrt.checkpoint.serde.base import SerializerProtocol

__all__ = ("InMemoryCache",)


class InMemoryCache(BaseCache[ValueT]):
    """A cache in a dict guarded by a lock; values are stored serialized, so later mutation of a
    returned or stored object never changes what the cache holds.

    Args:
        serde: Turns values into bytes and back; `JsonPlusSerializer()` by default.
        clock: The time source for expiry (`time.time` by default).
    """

    def __init__(self, *, serde: SerializerProtocol | None = None, clock: Callable[[], float] | None = None) -> None:
        super().__init__(serde=serde, clock=clock)
        self._entries: dict[Namespace, dict[str, tuple[str, bytes, float | None]]] = {}
        self._lock = threading.Lock()

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        if not keys:
            return {}
        found: list[tuple[FullKey, tuple[str, bytes]]] = []
        now = self.clock()
        with self._lock:
            for ns, key in keys:
                ns = tuple(ns)
                entries = self._entries.get(ns)
                entry = entries.get(key) if entries is not None else None
                if entries is None or entry is None:
                    continue
                kind, data, expiry = entry
                if expiry is not None and now >= expiry:
                    del entries[key]
                    continue
                found.append(((ns, key), (kind, data)))
        return {full: self.serde.loads_typed(typed) for full, typed in found}

    def set(self, pairs: Mapping[FullKey, tuple[ValueT, int | None]]) -> None:
        rows = [(tuple(ns), key, self.serde.dumps_typed(value), ttl) for (ns, key), (value, ttl) in pairs.items()]
        with self._lock:
            for ns, key, (kind, data), ttl in rows:
                self._entries.setdefault(ns, {})[key] = (kind, data, self.expiry(ttl))

    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        with self._lock:
            if namespaces is None:
                self._entries.clear()
                return
            for ns in namespaces:
                self._entries.pop(tuple(ns), None)

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        return self.get(keys)

    async def aset(self, pairs: Mapping[FullKey, tuple[ValueT, int | None]]) -> None:
        self.set(pairs)

    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        self.clear(namespaces)
