"""`AsyncPostgresSaver`: checkpoints in PostgreSQL for async code on psycopg's asyncio connections (LangGraph's path).

The algorithm is the storage core's (`graphrt.checkpoint._core`), run natively on the event loop over async
transactions (`_aread_tx`/`_awrite_tx`); the statements and row handling are the shared SQL layer's
(`graphrt.checkpoint._sql.AsyncSqlTx`), the connection handling `graphrt._postgres.AsyncConnector`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from graphrt._postgres import AsyncConnector, require_psycopg

require_psycopg("AsyncPostgresSaver")

from graphrt.checkpoint._core import CoreSaver  # noqa: E402
from graphrt.checkpoint._dialect import migrations  # noqa: E402
from graphrt.checkpoint._drive import adrive  # noqa: E402
from graphrt.checkpoint._sql import MIGRATIONS, MIGRATIONS_TABLE, AsyncSqlTx, SqlSaver  # noqa: E402
from graphrt.checkpoint.base._threads import ThreadInfo, check_list_threads_args  # noqa: E402
from graphrt.checkpoint.postgres import _MIGRATION_LOCK, PostgresCore  # noqa: E402
from graphrt.checkpoint.serde.base import SerializerProtocol  # noqa: E402

__all__ = ("AsyncPostgresSaver",)


class AsyncPostgresSaver(SqlSaver):
    """Checkpoints in PostgreSQL for async code: every `a*` method runs on the event loop, no worker thread.

    Takes what LangGraph's takes: a psycopg `AsyncConnection` (made with `autocommit=True`; any
    `row_factory`, e.g. `dict_row`, and `prepare_threshold` are fine), a psycopg_pool
    `AsyncConnectionPool`, or use `from_conn_string`. With a pool, a connection the server dropped is
    replaced on the next call. Same tables, locking and behaviour as `PostgresSaver`, so both can share
    a database.

    The sync methods work from other threads (they run on the event loop the saver last used) and outside
    any event loop; on the event loop's own thread they raise, since waiting there would block the loop.

    Example:
        >>> async with AsyncPostgresSaver.from_conn_string(DB_URI) as checkpointer:  # doctest: +SKIP
        ...     await checkpointer.setup()
        ...     graph = builder.compile(checkpointer=checkpointer)
    """

    dialect = PostgresCore.dialect
    # A delta record's snapshot would be checked with a read that waits for the pipeline: records stay whole
    # here (deltas written by `PostgresSaver` load the same).
    record_deltas = False

    def __init__(self, conn: Any, *, pipe: Any = None, serde: SerializerProtocol | None = None) -> None:
        if pipe is not None:
            raise TypeError(
                "AsyncPostgresSaver(pipe=...) is not supported: graphrt already sends each transaction's "
                "statements with as few round trips as it can; pass the connection (or a pool) alone"
            )
        connector = conn if isinstance(conn, AsyncConnector) else AsyncConnector(conn, "AsyncPostgresSaver")
        super().__init__(serde=serde)
        self._connector = connector
        self.is_setup = False

    def __repr__(self) -> str:
        return f"<AsyncPostgresSaver {'pooled' if self._connector.replaceable else 'single connection'}>"

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
        """A saver on an async pool of connections to `conn_string`, closed when the block ends.

        `prepare_threshold=None` turns prepared statements off (needed behind PgBouncer in transaction mode).
        """
        async with AsyncConnector.open_pool(
            conn_string, cls.__name__, max_size=pool_size, prepare_threshold=prepare_threshold
        ) as connector:
            yield cls(connector, serde=serde)

    async def setup(self) -> None:
        """Create or migrate the tables (idempotent, safe from many processes at once; also done on first use)."""
        async with self._connector.connection() as conn:
            await self._setup_on(conn)

    async def _setup_on(self, conn: Any) -> None:
        if self.is_setup:
            return
        from psycopg.rows import tuple_row

        async with conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute("BEGIN")
            try:
                await cur.execute(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
                await adrive(migrations(cur, self.dialect, MIGRATIONS_TABLE, MIGRATIONS))
                await cur.execute("COMMIT")
            except BaseException:
                if not conn.closed:
                    await cur.execute("ROLLBACK")
                raise
        self.is_setup = True

    def _transaction(self, begin: str, pipeline: bool = False) -> Any:
        setup = None if self.is_setup else self._setup_on
        return self._connector.transaction(begin, setup, pipeline=pipeline)

    @asynccontextmanager
    async def _aread_tx(self) -> AsyncIterator[AsyncSqlTx]:
        async with self._transaction(self.dialect.begin_read) as cur:
            yield AsyncSqlTx(cur, self.dialect)

    @asynccontextmanager
    async def _awrite_tx(self, thread_id: str | None = None) -> AsyncIterator[AsyncSqlTx]:
        # Writes mostly insert: pipelined, a step's transaction costs a few round trips, not one per statement.
        async with self._transaction(self.dialect.begin_write, pipeline=True) as cur:
            if thread_id is not None and self.dialect.lock_thread is not None:
                await cur.execute(self.dialect.sql(self.dialect.lock_thread), (thread_id,))
            yield AsyncSqlTx(cur, self.dialect)

    # The sync faces run the async transactions (CoreSaver's default), not SqlSaver's DB-API cursors.
    _read_tx = CoreSaver._read_tx  # type: ignore[assignment]
    _write_tx = CoreSaver._write_tx  # type: ignore[assignment]

    async def alist_threads(
        self, *, filter: dict[str, Any] | None = None, limit: int | None = None
    ) -> AsyncIterator[ThreadInfo]:
        """Async `list_threads`, on the event loop."""
        check_list_threads_args(limit)
        async with self._aread_tx() as tx:
            threads = await tx.threads(self.serde, filter, limit)
        for info in threads:
            yield info
