"""`InMemoryStore`: the store in process memory, with numpy vector search and TTL."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from graphrt.store._indexed import StoreCore, page, ttl_micros
from graphrt.store._namespace import matches_condition, under_prefix
from graphrt.store._plan import Delete, Get, ListNamespaces, Plan, Put, Search, plain_put, put_step, to_datetime
from graphrt.store._ttl import ThreadSweeper
from graphrt.store._vectors import VectorIndex
from graphrt.store.base import NOT_PROVIDED, IndexConfig, Item, NotProvided, Result, SearchItem, TTLConfig

__all__ = ("InMemoryStore",)

_NO_TEXTS = Plan([])
"""The plan of a put on a store without an index: it never gains texts or vectors."""


@dataclass(slots=True)
class _Entry:
    """One stored item; mutable only where TTL refresh and overwrites need it."""

    id: int
    namespace: tuple[str, ...]
    key: str
    value: dict[str, Any]
    created: int
    """Microseconds since the epoch, as the clock gave them (datetimes are built on first read)."""
    updated: int
    ttl: float | None
    expires: int | None
    cached: Item | None = None
    """The `Item` handed out by `get`, built once per write (as LangGraph's store shares its items)."""

    def live(self, now: int) -> bool:
        return self.expires is None or self.expires > now

    def item(self) -> Item:
        if self.cached is None:
            updated = to_datetime(self.updated)
            created = updated if self.created == self.updated else to_datetime(self.created)
            self.cached = Item._trusted(self.value, self.key, self.namespace, created, updated)
        return self.cached

    def search_item(self, score: float | None) -> SearchItem:
        item = self.item()
        return SearchItem._trusted(self.namespace, self.key, self.value, item.created_at, item.updated_at, score)


class InMemoryStore(StoreCore, ThreadSweeper):
    """A store kept in this process's memory; vector search is one numpy matrix product.

    Values are copied on `put` (through JSON, as every backend stores them), so later changes to
    the dict you passed do not reach the store. Items returned by reads share the stored dict:
    treat them as read-only.
    """

    def __init__(self, *, index: IndexConfig | None = None, ttl: TTLConfig | None = None) -> None:
        super().__init__(index=index, ttl=ttl)
        self._spaces: dict[tuple[str, ...], dict[str, _Entry]] = {}
        self._by_id: dict[int, _Entry] = {}
        self._expiring: set[int] = set()
        self._vectors = VectorIndex(self._index.embedder.dims) if self._index else None
        self._next_id = 0
        self._lock = threading.RLock()

    async def _apply_async(self, plan: Plan) -> list[Result]:
        # Everything here is quick CPU work on in-process data: no thread hop needed.
        return self._apply(plan)

    def _apply(self, plan: Plan) -> list[Result]:
        with self._lock:
            now = self._clock.now()
            results: list[Result] = []
            for step in plan.steps:
                if isinstance(step, Put):
                    self._put(step, plan, now)
                    results.append(None)
                elif isinstance(step, Get):
                    results.append(self._get(step, now))
                elif isinstance(step, Delete):
                    self._remove(step.namespace, step.key)
                    results.append(None)
                elif isinstance(step, Search):
                    results.append(self._search(step, plan, now))
                else:
                    results.append(self._list(step, now))
            return results

    def get(self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None) -> Item | None:
        """Return the item at `namespace`/`key`, or `None` (a lookup needs no batch plan)."""
        # Hot path: an item without a TTL in a namespace that exists was checked when it was put,
        # and needs no clock or refresh. (Single dict reads need no lock; entries are replaced whole.)
        space = self._spaces.get(namespace) if type(namespace) is tuple else None
        if space is not None and type(key) is str:
            entry = space.get(key)
            if entry is not None and entry.expires is None:
                return entry.item()
        op = self._get_op(namespace, key, refresh_ttl)
        with self._lock:
            return self._get(Get(op.namespace, op.key, op.refresh_ttl), self._clock.now())

    def put(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Literal[False] | list[str] | None = None,
        *,
        ttl: float | NotProvided | None = NOT_PROVIDED,
    ) -> None:
        """Store `value` at `namespace`/`key` (the one-op batch, without the batch loop)."""
        spec = self._index
        plan = _NO_TEXTS if spec is None else Plan([])
        step: Put | Delete | None = None
        if index is None and (ttl is NOT_PROVIDED or ttl is None) and self.ttl_config is None:
            step = plain_put(namespace, key, value, spec, plan)
        if step is None:
            step = put_step(self._put_op(namespace, key, value, index, ttl), spec, plan, {})
        plan.embed(spec)
        with self._lock:
            if isinstance(step, Put):
                self._put(step, plan, self._clock.now())
            else:
                self._remove(step.namespace, step.key)
        return None

    def _live(self, namespace: tuple[str, ...], key: str, now: int) -> _Entry | None:
        space = self._spaces.get(namespace)
        entry = space.get(key) if space is not None else None
        return entry if entry is not None and entry.live(now) else None

    def _touch(self, entry: _Entry, refresh: bool, now: int) -> None:
        if refresh and entry.ttl is not None:
            entry.expires = now + ttl_micros(entry.ttl)

    def _get(self, step: Get, now: int) -> Item | None:
        entry = self._live(step.namespace, step.key, now)
        if entry is None:
            return None
        self._touch(entry, step.refresh, now)
        return entry.item()

    def _put(self, step: Put, plan: Plan, now: int) -> None:
        namespace, key = step.namespace, step.key
        space = self._spaces.get(namespace)
        if space is None:
            space = self._spaces[namespace] = {}
        previous = space.pop(key, None)
        if previous is None:
            entry_id = self._next_id
            self._next_id += 1
            created = now
        else:
            # An overwrite keeps the id and the creation time (unless the old item had expired), and
            # moves to the end of the write-ordered dicts.
            entry_id = previous.id
            created = previous.created if previous.live(now) else now
            del self._by_id[entry_id]
            if previous.expires is not None:
                self._expiring.discard(entry_id)
        expires = None if step.ttl is None else now + ttl_micros(step.ttl)
        entry = _Entry(entry_id, namespace, key, step.value, created, now, step.ttl, expires)
        space[key] = entry
        self._by_id[entry_id] = entry
        if expires is not None:
            self._expiring.add(entry_id)
        vectors = self._vectors
        if vectors is not None:
            if step.indexed:
                vectors.stage(entry_id, namespace, plan.rows_of(step))
            elif previous is not None:
                vectors.discard(entry_id)

    def _remove(self, namespace: tuple[str, ...], key: str) -> int | None:
        """Drop an item (live or expired); return its id so an overwrite can reuse it."""
        space = self._spaces.get(namespace)
        entry = space.pop(key, None) if space is not None else None
        if entry is None:
            return None
        if not space:
            del self._spaces[namespace]
        del self._by_id[entry.id]
        self._expiring.discard(entry.id)
        if self._vectors is not None:
            self._vectors.discard(entry.id)
        return entry.id

    def _newest_first(self, prefix: tuple[str, ...]) -> Iterator[_Entry]:
        """Items under `prefix`, most recently written first.

        Each namespace dict, and `_by_id` across all of them, is in write order (a write re-inserts).
        """
        spaces = [ns for ns in self._spaces if under_prefix(ns, prefix)]
        if len(spaces) == 1:
            return reversed(self._spaces[spaces[0]].values())
        newest = reversed(self._by_id.values())
        if len(spaces) == len(self._spaces):
            return newest
        allowed = set(spaces)
        return (e for e in newest if e.namespace in allowed)

    def _search(self, step: Search, plan: Plan, now: int) -> list[SearchItem]:
        predicate = step.predicate

        def accept(entry: _Entry) -> bool:
            expires = entry.expires
            return (expires is None or expires > now) and (predicate is None or predicate(entry.value))

        found: list[tuple[_Entry, float | None]]
        if step.query is None or self._vectors is None:
            candidates = (e for e in self._newest_first(step.prefix) if accept(e))
            found = [(e, None) for e in page(candidates, step.offset, step.limit)]
        else:
            vectors = self._vectors
            scored = (
                (entry, score)
                for owner, score in vectors.ranked(plan.query_vectors[step.query], step.prefix)
                if accept(entry := self._by_id[owner])
            )
            # Items without vectors (index=False) follow every scored one, newest first.
            unscored = ((e, None) for e in self._newest_first(step.prefix) if e.id not in vectors and accept(e))
            found = page(_chain(scored, unscored), step.offset, step.limit)
        for entry, _ in found:
            self._touch(entry, step.refresh, now)
        return [entry.search_item(score) for entry, score in found]

    def _list(self, step: ListNamespaces, now: int) -> list[tuple[str, ...]]:
        names = [
            ns
            for ns, space in self._spaces.items()
            if all(matches_condition(ns, c) for c in step.conditions) and any(e.live(now) for e in space.values())
        ]
        if step.max_depth is not None:
            names = list({ns[: step.max_depth] for ns in names})
        names.sort()
        return names[step.offset : step.offset + step.limit]

    def _sweep(self) -> int:
        with self._lock:
            now = self._clock.now()
            expired = [self._by_id[i] for i in self._expiring if not self._by_id[i].live(now)]
            for entry in expired:
                self._remove(entry.namespace, entry.key)
            return len(expired)


def _chain(
    first: Iterator[tuple[_Entry, float]], then: Iterator[tuple[_Entry, None]]
) -> Iterator[tuple[_Entry, float | None]]:
    yield from first
    yield from then
