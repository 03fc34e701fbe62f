"""`AsyncSqliteStore`: the SQLite store for async code; its queries run in a worker thread."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread

from graphrt.store._ttl import AsyncSweeper
from graphrt.store.base import IndexConfig, TTLConfig
from graphrt.store.sqlite import BaseSqliteStore, connect

__all__ = ("AsyncSqliteStore",)


class AsyncSqliteStore(BaseSqliteStore, AsyncSweeper):
    """The same store as `SqliteStore`, with async `setup`, `sweep_ttl` and sweeper control.

    Takes a plain `sqlite3.Connection` (made with `check_same_thread=False`), not an aiosqlite one.
    """

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls, conn_string: str, *, index: IndexConfig | None = None, ttl: TTLConfig | None = None
    ) -> AsyncIterator[AsyncSqliteStore]:
        """Open `conn_string` (a path or `:memory:`) and close it when the block ends."""
        conn = await anyio.to_thread.run_sync(connect, conn_string)
        store = cls(conn, index=index, ttl=ttl)
        store._own_connection()
        try:
            yield store
        finally:
            await store.stop_ttl_sweeper(timeout=1)
            conn.close()

    async def setup(self) -> None:
        """Create the store's tables (only the missing ones)."""
        await anyio.to_thread.run_sync(self._migrate)

    async def __aenter__(self) -> AsyncSqliteStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_ttl_sweeper(timeout=1)
