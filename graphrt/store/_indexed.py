"""What every graphrt store backend shares: config parsing, batch planning, embedding, TTL sweeping."""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from abc import abstractmethod
from collections.abc import Iterable
from itertools import islice
from typing import Any, TypeVar

import anyio.to_thread

from graphrt.store._plan import Clock, Plan, parse_index_config, plan_batch
from graphrt.store.base import BaseStore, IndexConfig, Op, Result, TTLConfig

__all__ = ("StoreCore", "page", "ttl_micros")

logger = logging.getLogger("graphrt.store")
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

    def __init__(self, *, index: IndexConfig | None = None, ttl: TTLConfig | None = None) -> None:
        self._index = parse_index_config(index)
        self.index_config: IndexConfig | None = dict(index) if index else None  # type: ignore[assignment]
        self.embeddings: Any = self._index.embedder.embeddings if self._index else None
        self.ttl_config = ttl
        self._clock = Clock()
        self._sweeper: threading.Thread | None = None
        self._sweeper_stop = threading.Event()

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

    def sweep_ttl(self) -> int:
        """Delete every expired item now; return how many were deleted."""
        return self._sweep()

    def start_ttl_sweeper(self, sweep_interval_minutes: int | None = None) -> concurrent.futures.Future[None]:
        """Delete expired items every `sweep_interval_minutes` in a thread (default: TTL config's, else 5).

        Returns a future that completes when the sweeper stops; cancelling it stops the sweeper.
        """
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        if self._sweeper is not None and self._sweeper.is_alive():
            future.add_done_callback(lambda f: self._sweeper_stop.set() if f.cancelled() else None)
            return future
        config = self.ttl_config or {}
        interval = float(sweep_interval_minutes or config.get("sweep_interval_minutes") or 5) * 60
        self._sweeper_stop.clear()
        thread = threading.Thread(
            target=self._sweep_loop, args=(interval, future), daemon=True, name="graphrt-store-ttl-sweeper"
        )
        self._sweeper = thread
        thread.start()
        future.add_done_callback(lambda f: self._sweeper_stop.set() if f.cancelled() else None)
        return future

    def _sweep_loop(self, interval: float, future: concurrent.futures.Future[None]) -> None:
        while not self._sweeper_stop.wait(interval):
            try:
                self._sweep()
            except Exception:  # a failed sweep must not end the sweeper; the next one retries
                logger.exception("Store TTL sweep failed")
        if not future.done():
            future.set_result(None)

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper thread; return whether it stopped within `timeout` seconds."""
        thread = self._sweeper
        if thread is None or not thread.is_alive():
            return True
        self._sweeper_stop.set()
        thread.join(timeout)
        if thread.is_alive():
            return False
        self._sweeper = None
        return True
