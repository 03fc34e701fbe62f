"""`AsyncPostgresStore`: the PostgreSQL store for async code."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread

from graphrt._postgres import Connector, require_psycopg

require_psycopg("AsyncPostgresStore")

from graphrt.store._ttl import AsyncSweeper  # noqa: E402
from graphrt.store.base import IndexConfig, TTLConfig  # noqa: E402
from graphrt.store.postgres import BasePostgresStore  # noqa: E402

__all__ = ("AsyncPostgresStore",)


class AsyncPostgresStore(BasePostgresStore, AsyncSweeper):
    """The same store as `PostgresStore`, with async `setup`, `sweep_ttl` and sweeper control.

    Its statements run on psycopg's sync connections in a worker thread (one per call in flight).
    """

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls,
        conn_string: str,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        pool_size: int = 4,
        prepare_threshold: int | None = 5,
        pgvector: bool | None = None,
    ) -> AsyncIterator[AsyncPostgresStore]:
        """Connect to `conn_string` through a small pool, closed when the block ends."""
        opened = Connector.open_pool(conn_string, cls.__name__, max_size=pool_size, prepare_threshold=prepare_threshold)
        connector = await anyio.to_thread.run_sync(opened.__enter__)
        store = cls(connector, index=index, ttl=ttl, pgvector=pgvector)
        try:
            yield store
        finally:
            await store.stop_ttl_sweeper(timeout=1)
            await anyio.to_thread.run_sync(opened.__exit__, None, None, None)

    async def setup(self) -> None:
        """Create or upgrade the store's tables; safe to call from many processes at once."""
        await anyio.to_thread.run_sync(self._migrate)

    async def __aenter__(self) -> AsyncPostgresStore:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop_ttl_sweeper(timeout=1)
