"""`BaseCache`: what a cache of node and task results implements (LangGraph's interface).

Entries are keyed by `(namespace, key)`: the engine uses one namespace per cached node or task
(`("__pregel_ns_writes", "<module>.<function>", "<name>")`) and a hash of the input as the key. Each
entry may expire: `set` takes a TTL in seconds per entry. Values go through `serde` (graphrt's
type-tagged JSON by default), so a cache never holds live objects and never unpickles.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Generic, TypeVar

import anyio.to_thread

from graphrt.checkpoint.serde.base import SerializerProtocol
from graphrt.checkpoint.serde.jsonplus import JsonPlusSerializer

__all__ = ("BaseCache", "FullKey", "Namespace", "ValueT")

ValueT = TypeVar("ValueT")
Namespace = tuple[str, ...]
"""A group of entries that `clear` can drop together (one node or task)."""
FullKey = tuple[Namespace, str]


class BaseCache(ABC, Generic[ValueT]):
    """A cache of values with per-entry expiry; subclasses implement `get`, `set` and `clear`.

    The async twins run the sync methods in a worker thread unless a subclass overrides them.

    Args:
        serde: Turns values into bytes and back; `JsonPlusSerializer()` by default.
        clock: Returns the current time in seconds since the epoch (`time.time` by default); tests
            pass a fake clock to expire entries without waiting.
    """

    serde: SerializerProtocol = JsonPlusSerializer()

    def __init__(self, *, serde: SerializerProtocol | None = None, clock: Callable[[], float] | None = None) -> None:
        self.serde = serde or self.serde
        self.clock = clock or time.time

    def expiry(self, ttl: int | float | None) -> float | None:
        """When an entry set now with `ttl` seconds to live expires (`None`: never)."""
        return None if ttl is None else self.clock() + ttl

    @abstractmethod
    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        """The values found for `keys`; missing and expired keys are left out."""

    async def aget(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        """Async twin of `get`."""
        return await anyio.to_thread.run_sync(self.get, keys)

    @abstractmethod
    def set(self, pairs: Mapping[FullKey, tuple[ValueT, int | None]]) -> None:
        """Store each value with its TTL in seconds (`None`: no expiry), replacing what was there."""

    async def aset(self, pairs: Mapping[FullKey, tuple[ValueT, int | None]]) -> None:
        """Async twin of `set`."""
        await anyio.to_thread.run_sync(self.set, pairs)

    @abstractmethod
    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        """Delete the entries of `namespaces`, or every entry when `namespaces` is None."""

    async def aclear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        """Async twin of `clear`."""
        await anyio.to_thread.run_sync(self.clear, namespaces)
