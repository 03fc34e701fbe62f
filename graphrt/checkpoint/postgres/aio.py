"""`AsyncPostgresSaver`: the async face of the PostgreSQL saver, at LangGraph's path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread

from graphrt._postgres import Connector, require_psycopg

require_psycopg("AsyncPostgresSaver")

from graphrt.checkpoint.postgres import PostgresCore  # noqa: E402
from graphrt.checkpoint.serde.base import SerializerProtocol  # noqa: E402

__all__ = ("AsyncPostgresSaver",)


class AsyncPostgresSaver(PostgresCore):
    """Checkpoints in PostgreSQL, for async code: the `PostgresSaver` code, its `a*` methods in a worker thread.

    Takes a psycopg (sync) `Connection` or `ConnectionPool`, or use `from_conn_string`.
    """

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls,
        conn_string: str,
        *,
        pool_size: int = 8,
        prepare_threshold: int | None = 5,
        serde: SerializerProtocol | None = None,
    ) -> AsyncIterator[AsyncPostgresSaver]:
        """A saver on a pool of connections to `conn_string`, closed when the block ends."""
        opened = Connector.open_pool(conn_string, cls.__name__, max_size=pool_size, prepare_threshold=prepare_threshold)
        connector = await anyio.to_thread.run_sync(opened.__enter__)
        try:
            yield cls(connector, serde=serde)
        finally:
            await anyio.to_thread.run_sync(opened.__exit__, None, None, None)

    async def setup(self) -> None:
        """Create or migrate the tables (idempotent, safe from many processes at once; also done on first use)."""
        await anyio.to_thread.run_sync(self._setup)
