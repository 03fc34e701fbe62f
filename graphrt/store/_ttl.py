"""Deleting expired items on a schedule: a thread for sync stores, a task for async ones."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from abc import ABC, abstractmethod

import anyio.to_thread

from graphrt.store.base import TTLConfig

__all__ = ("AsyncSweeper", "ThreadSweeper")

logger = logging.getLogger("graphrt.store")


def _interval_seconds(config: TTLConfig | None, minutes: float | None) -> float:
    return float(minutes or (config or {}).get("sweep_interval_minutes") or 5) * 60


class ThreadSweeper(ABC):
    """`sweep_ttl`, `start_ttl_sweeper` and `stop_ttl_sweeper` for a store used from sync code."""

    ttl_config: TTLConfig | None
    _sweeper: threading.Thread | None = None
    _sweeper_stop: threading.Event | None = None

    @abstractmethod
    def _sweep(self) -> int:
        """Delete expired items; return how many."""

    def sweep_ttl(self) -> int:
        """Delete every expired item now; return how many were deleted."""
        return self._sweep()

    def start_ttl_sweeper(self, sweep_interval_minutes: int | None = None) -> concurrent.futures.Future[None]:
        """Delete expired items every `sweep_interval_minutes` in a thread (default: TTL config's, else 5).

        Returns a future that completes when the sweeper stops; cancelling it stops the sweeper.
        """
        future: concurrent.futures.Future[None] = concurrent.futures.Future()
        if self._sweeper is not None and self._sweeper.is_alive() and self._sweeper_stop is not None:
            stop = self._sweeper_stop
            future.add_done_callback(lambda f: stop.set() if f.cancelled() else None)
            return future
        interval = _interval_seconds(self.ttl_config, sweep_interval_minutes)
        stop = self._sweeper_stop = threading.Event()
        thread = threading.Thread(
            target=self._sweep_loop,
            args=(interval, stop, future),
            daemon=True,
            name="graphrt-store-ttl-sweeper",
        )
        self._sweeper = thread
        thread.start()
        future.add_done_callback(lambda f: stop.set() if f.cancelled() else None)
        return future

    def _sweep_loop(self, interval: float, stop: threading.Event, future: concurrent.futures.Future[None]) -> None:
        while not stop.wait(interval):
            try:
                self._sweep()
            except Exception:  # a failed sweep must not end the sweeper; the next one retries
                logger.exception("Store TTL sweep failed")
        if not future.done():
            future.set_result(None)

    def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Stop the sweeper thread; return whether it stopped within `timeout` seconds."""
        thread = self._sweeper
        if thread is None or not thread.is_alive() or self._sweeper_stop is None:
            return True
        self._sweeper_stop.set()
        thread.join(timeout)
        if thread.is_alive():
            return False
        self._sweeper = None
        return True


class AsyncSweeper(ABC):
    """Async `sweep_ttl`, `start_ttl_sweeper` and `stop_ttl_sweeper` (the sweeps run in a worker thread)."""

    ttl_config: TTLConfig | None
    _sweep_task: asyncio.Task[None] | None = None

    @abstractmethod
    def _sweep(self) -> int:
        """Delete expired items; return how many."""

    async def sweep_ttl(self) -> int:
        """Delete every expired item now; return how many were deleted."""
        return await anyio.to_thread.run_sync(self._sweep)

    async def start_ttl_sweeper(self, sweep_interval_minutes: int | None = None) -> asyncio.Task[None]:
        """Delete expired items every `sweep_interval_minutes` in a task on the running loop."""
        if self._sweep_task is not None and not self._sweep_task.done():
            return self._sweep_task
        interval = _interval_seconds(self.ttl_config, sweep_interval_minutes)
        self._sweep_task = asyncio.create_task(self._sweep_forever(interval), name="graphrt-store-ttl-sweeper")
        return self._sweep_task

    async def _sweep_forever(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep_ttl()
            except Exception:  # a failed sweep must not end the sweeper; the next one retries
                logger.exception("Store TTL sweep failed")

    async def stop_ttl_sweeper(self, timeout: float | None = None) -> bool:
        """Cancel the sweeper task; return whether it ended within `timeout` seconds."""
        task = self._sweep_task
        if task is None or task.done():
            return True
        task.cancel()
        done, _ = await asyncio.wait([task], timeout=timeout)
        if task in done:
            self._sweep_task = None
            return True
        return False
