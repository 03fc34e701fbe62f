"""Caching a unit of work — a node's task now, an `@task` call too — the same way for both.

The engine calls this module in three places:

1. When a graph is compiled: `UnitCache.of(kind, name, func, policy)` for each cached unit.
2. Before the unit runs: `unit.key(*args, **kwargs)` makes its `CacheKey` (clear errors when the
   `key_func` raises or cannot serialize the input), then `read_cache` / `aread_cache` returns the
   cached value of each key that has one (missing and expired keys are left out).
3. After it finished: if `cacheable(writes)`, `write_cache` / `awrite_cache` stores its writes.

For the superstep loop the last two are effects (`ReadCache`, `WriteCache`) that the drivers perform
with the run's cache, sync or async. A hit's writes are applied as if the unit had run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from typing import TYPE_CHECKING, Any, Final

from graphrt.checkpoint.serde.base import SerializationError
from graphrt.types import CachePolicy

if TYPE_CHECKING:
    from graphrt.cache.base import BaseCache

CACHE_NS_WRITES: Final = "__pregel_ns_writes"
"""First part of every unit's namespace (LangGraph's), so a cache shared with other data stays apart."""
_INTERRUPT, _ERROR = "__interrupt__", "__error__"


@dataclass(frozen=True, slots=True)
class CacheKey:
    """Where one unit's result for one input lives in the cache, and for how long."""

    ns: tuple[str, ...]
    """The unit's namespace: `(CACHE_NS_WRITES, "<module>.<qualname>" or "__dynamic__", name)`."""
    key: str
    """A 128-bit hex digest of what `key_func` returned."""
    ttl: int | None
    label: str
    """Names the unit in errors: `node 'fetch' (function app.fetch)`."""


@dataclass(frozen=True, slots=True)
class UnitCache:
    """How one unit (a node, a task) is cached: its policy, its namespace, and its name for errors."""

    policy: CachePolicy
    namespace: tuple[str, ...]
    label: str

    @classmethod
    def of(cls, kind: str, name: str, func: Any, policy: CachePolicy) -> UnitCache:
        """The cache spec of unit `name` (`kind` is "node" or "task") that runs `func`."""
        ident = identifier(func)
        label = f"{kind} '{name}'" + (f" (function {ident})" if ident else "")
        return cls(policy, (CACHE_NS_WRITES, ident or "__dynamic__", name), label)

    def key(self, *args: Any, **kwargs: Any) -> CacheKey:
        """The cache key of a call with these arguments (a node: its input, positionally).

        Raises:
            SerializationError: The default `key_func` met a type it cannot serialize; the message
                names the unit, the type and where it sits.
            TypeError: `key_func` returned something other than str or bytes.
            Exception: Whatever `key_func` raised, with a note naming the unit and the key function.
        """
        key_func = self.policy.key_func
        try:
            raw = key_func(*args, **kwargs)
        except SerializationError as exc:
            reason = (
                f"Cannot make the cache key of {self.label}: the default CachePolicy.key_func serializes the "
                "input. Pass CachePolicy(key_func=...) returning str or bytes, or register the type with "
                "graphrt.checkpoint.serde.jsonplus.register_type()."
            )
            raise SerializationError(exc.type_name, path=exc.path, reason=reason) from None
        except Exception as exc:
            exc.add_note(f"While computing the cache key of {self.label} with key_func {_name(key_func)}")
            raise
        if isinstance(raw, str):
            raw = raw.encode()
        elif not isinstance(raw, bytes | bytearray | memoryview):
            raise TypeError(
                f"CachePolicy.key_func {_name(key_func)} returned {type(raw).__name__} for {self.label}; "
                "it must return str or bytes."
            )
        return CacheKey(self.namespace, blake2b(raw, digest_size=16).hexdigest(), self.policy.ttl, self.label)


@dataclass(frozen=True, slots=True)
class ReadCache:
    """Effect: look these keys up in the run's cache; the driver sends back `{key: cached value}`."""

    keys: tuple[CacheKey, ...]


@dataclass(frozen=True, slots=True)
class WriteCache:
    """Effect: store a finished unit's writes under its key; the driver sends back nothing."""

    key: CacheKey
    value: Any


def cacheable(writes: Sequence[tuple[str, Any]]) -> bool:
    """A unit that was interrupted or failed is not cached: a hit would skip it without raising."""
    return not any(chan in (_INTERRUPT, _ERROR) for chan, _ in writes)


def read_cache(cache: BaseCache[Any] | None, keys: Sequence[CacheKey]) -> dict[CacheKey, Any]:
    """The cached value of each key that has one (none without a cache)."""
    if cache is None or not keys:
        return {}
    by_full = _by_full_key(keys)
    try:
        found = cache.get(list(by_full))
    except Exception as exc:
        _note_read(exc, keys)
        raise
    return {key: value for full, value in found.items() for key in by_full.get(full, ())}


async def aread_cache(cache: BaseCache[Any] | None, keys: Sequence[CacheKey]) -> dict[CacheKey, Any]:
    """Async twin of `read_cache`."""
    if cache is None or not keys:
        return {}
    by_full = _by_full_key(keys)
    try:
        found = await cache.aget(list(by_full))
    except Exception as exc:
        _note_read(exc, keys)
        raise
    return {key: value for full, value in found.items() for key in by_full.get(full, ())}


def write_cache(cache: BaseCache[Any] | None, key: CacheKey, value: Any) -> None:
    """Store `value` under `key` for `key.ttl` seconds (nothing without a cache)."""
    if cache is None:
        return
    try:
        cache.set({(key.ns, key.key): (value, key.ttl)})
    except Exception as exc:
        exc.add_note(f"While saving the result of {key.label} to the cache")
        raise


async def awrite_cache(cache: BaseCache[Any] | None, key: CacheKey, value: Any) -> None:
    """Async twin of `write_cache`."""
    if cache is None:
        return
    try:
        await cache.aset({(key.ns, key.key): (value, key.ttl)})
    except Exception as exc:
        exc.add_note(f"While saving the result of {key.label} to the cache")
        raise


def namespaces_of(units: Mapping[str, UnitCache | None], names: Sequence[str] | None) -> list[tuple[str, ...]]:
    """The cache namespaces of the named units (all units when `names` is None or empty), for `clear_cache`.

    Raises:
        ValueError: A name is not one of the units (LangGraph ignores it, and so clears nothing silently).
    """
    if not names:
        return [unit.namespace for unit in units.values() if unit is not None]
    unknown = [n for n in names if n not in units]
    if unknown:
        known = ", ".join(repr(n) for n in units if not n.startswith("__"))
        raise ValueError(
            f"Cannot clear the cache of unknown node(s) {', '.join(map(repr, unknown))}; the nodes are {known}."
        )
    chosen = (units[n] for n in names)
    return [unit.namespace for unit in chosen if unit is not None]


def identifier(func: Any) -> str | None:
    """`module.qualname` of the function a unit runs, or None for objects without one."""
    func = getattr(func, "__func__", func)
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    module = getattr(func, "__module__", None)
    if not isinstance(name, str) or not isinstance(module, str):
        return None
    return f"{module}.{name}"


def _by_full_key(keys: Sequence[CacheKey]) -> dict[tuple[tuple[str, ...], str], list[CacheKey]]:
    grouped: dict[tuple[tuple[str, ...], str], list[CacheKey]] = defaultdict(list)
    for key in keys:
        grouped[(key.ns, key.key)].append(key)
    return grouped


def _note_read(exc: BaseException, keys: Sequence[CacheKey]) -> None:
    labels = ", ".join(sorted({k.label for k in keys}))
    exc.add_note(f"While reading the cache for {labels}; graph.clear_cache() drops the stored entries")


def _name(func: Callable[..., Any]) -> str:
    return identifier(func) or repr(func)
