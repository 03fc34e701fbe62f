"""What every graphrt store backend shares: config parsing, batch planning, embedding, TTL sweeping."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable
from itertools import islice
from typing import Any, TypeVar

import anyio.to_thread

from graphrt.store._plan import Clock, Plan, parse_index_config, plan_batch
from graphrt.store.base import BaseStore, IndexConfig, Op, Result, TTLConfig

__all__ = ("StoreCore", "page", "ttl_micros")

T = TypeVar("T")


def page(candidates: Iterable[T], offset: int, limit: int) -> list[T]:
    """The `limit` candidates after the first `offset` (candidates are produced lazily)."""
    return list(islice(candidates, offset, offset + limit))


def ttl_micros(ttl: float) -> int:
    """A TTL in minutes as microseconds."""
    return int(ttl * 60_000_000)


class StoreCore(BaseStore):
    """A store that plans each batch, embeds what it needs, then applies the steps in order.

    Subclasses implement `_apply(plan)` (the steps, in one critical section) and `_sweep()`.
    """

    supports_ttl: bool = True
    distance_types: tuple[str, ...] = ("cosine",)
    """The `index["distance_type"]` values this backend scores by (others are refused, not ignored)."""

    def __init__(self, *, index: IndexConfig | None = None, ttl: TTLConfig | None = None) -> None:
        distance = index.get("distance_type", "cosine") if isinstance(index, dict) else "cosine"
        if distance not in self.distance_types:
            raise ValueError(
                f"{type(self).__name__} scores vectors by {' or '.join(self.distance_types)}, not "
                f"index['distance_type']={distance!r}; leave it out, or use PostgresStore for 'l2' and 'inner_product'."
            )
        self._index = parse_index_config(index)
        self.index_config: IndexConfig | None = dict(index) if index else None  # type: ignore[assignment]
        self.embeddings: Any = self._index.embedder.embeddings if self._index else None
        self.ttl_config = ttl
        self._clock = Clock()

    @abstractmethod
    def _apply(self, plan: Plan) -> list[Result]:
        """Apply the plan's steps in order and return one result per step."""

    @abstractmethod
    def _sweep(self) -> int:
        """Delete expired items; return how many."""

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Run operations in order, each seeing the effects of those before it."""
        plan = plan_batch(ops, self._index)
        plan.embed(self._index)
        return self._apply(plan)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        """Run operations like `batch`; the embedder's async methods run on the event loop."""
        plan = plan_batch(ops, self._index)
        await plan.aembed(self._index)
        return await self._apply_async(plan)

    async def _apply_async(self, plan: Plan) -> list[Result]:
        return await anyio.to_thread.run_sync(self._apply, plan)
