"""`AsyncPostgresSaver`: checkpoints in PostgreSQL for async code on psycopg's asyncio connections (LangGraph's path).

The algorithm is the storage core's (`graphrt.checkpoint._core`), run natively on the event loop over async
transactions (`_aread_tx`/`_awrite_tx`). They are `PostgresSaver`'s batched, speculative transactions
(`postgres._pipeline`) over an `AsyncBatchCursor`: the same statements, guesses and round trips, each round
trip awaited. The connection handling is `graphrt._postgres.AsyncConnector`.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

from graphrt._postgres import AsyncConnector, require_psycopg

require_psycopg("AsyncPostgresSaver")

from graphrt.checkpoint._core import CoreSaver  # noqa: E402
from graphrt.checkpoint._dialect import migrations  # noqa: E402
from graphrt.checkpoint._drive import Op, Tx, adrive  # noqa: E402
from graphrt.checkpoint._sql import MIGRATIONS, MIGRATIONS_TABLE, SqlSaver  # noqa: E402
from graphrt.checkpoint.base._threads import ThreadInfo, check_list_threads_args  # noqa: E402
from graphrt.checkpoint.postgres import (  # noqa: E402
    _MIGRATION_LOCK,
    PG_MIGRATIONS_TABLE,
    PostgresCore,
    batch_failure,
    begin_batch,
    committed,
    head_blobs,
    left_open,
    unopened,
)
from graphrt.checkpoint.postgres._pipeline import (  # noqa: E402
    PG_MIGRATIONS,
    AsyncBatchCursor,
    AsyncPgReadTx,
    AsyncPgWriteTx,
    Knowledge,
    aretrying,
)
from graphrt.checkpoint.serde.base import SerializerProtocol  # noqa: E402

__all__ = ("AsyncPostgresSaver",)

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
T = TypeVar("T")


def _aretried(method: F) -> F:
    """Run an async saver method through `aretrying` (see `postgres._retried`)."""

    @functools.wraps(method)
    async def run(self: AsyncPostgresSaver, *args: Any, **kwargs: Any) -> Any:
        return await aretrying(lambda: method(self, *args, **kwargs), self._connector.recover)

    return cast(F, run)


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
        self._knowledge = Knowledge()

    def __repr__(self) -> str:
        return f"<AsyncPostgresSaver {'pooled' if self._connector.replaceable else 'single connection'}>"

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls,
        conn_string: str,
        *,
        pipeline: bool = False,
        pool_size: int = 8,
        prepare_threshold: int | None = 5,
        serde: SerializerProtocol | None = None,
    ) -> AsyncIterator[AsyncPostgresSaver]:
        """A saver on an async pool of connections to `conn_string`, closed when the block ends.

        `pipeline` is accepted for LangGraph compatibility (transactions are sent as batches whatever it says);
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
                await adrive(migrations(cur, self.dialect, PG_MIGRATIONS_TABLE, PG_MIGRATIONS))
                await cur.execute("COMMIT")
            except BaseException:
                if not conn.closed:
                    await cur.execute("ROLLBACK")
                raise
        self.is_setup = True

    @asynccontextmanager
    async def _batched(
        self, begin: str, make: Callable[[AsyncBatchCursor], Any], lock: str | None = None
    ) -> AsyncIterator[Any]:
        """`PostgresCore._batched` on the event loop: the transaction's statements are queued and sent together."""
        async with self._connector.connection() as conn:
            try:
                if not self.is_setup:
                    await self._setup_on(conn)
                cur = await AsyncBatchCursor.open(conn)
            except BaseException as exc:
                instead = unopened(exc, conn, self._connector)
                if instead is None:
                    raise
                raise instead from None
            try:
                begin_batch(cur, self.dialect, begin, lock)
                tx = make(cur)
                try:
                    yield tx
                except BaseException:
                    if getattr(tx, "speculative", False) and cur.pending:
                        await cur.flush()  # were the answers the error came from right? (raises if not)
                    raise
                await cur.commit()
            except BaseException as exc:
                rolling_back = left_open(conn)
                if rolling_back:
                    await conn.execute("ROLLBACK")
                instead = batch_failure(exc, conn, cur, self._connector, rolling_back, self._knowledge, lock)
                if instead is None:
                    raise
                raise instead from None
            committed(tx, self._knowledge)

    @asynccontextmanager
    async def _aread_tx(self) -> AsyncIterator[AsyncPgReadTx]:
        guess = functools.partial(head_blobs, self)
        make = functools.partial(AsyncPgReadTx, dialect=self.dialect, knowledge=self._knowledge, guess=guess)
        async with self._batched(self.dialect.begin_read, make) as tx:
            yield tx

    @asynccontextmanager
    async def _awrite_tx(self, thread_id: str | None = None) -> AsyncIterator[AsyncPgWriteTx]:
        make = functools.partial(AsyncPgWriteTx, dialect=self.dialect, knowledge=self._knowledge)
        async with self._batched(self.dialect.begin_write, make, thread_id) as tx:
            yield tx

    async def _arun(self, op: Op[T]) -> T:
        """Every one-transaction operation, the sync faces' included, runs through `aretrying` (as
        `PostgresCore._run` through `retrying`); `aprune`, several transactions, is retried whole below."""
        if isinstance(op, Tx):
            return await aretrying(lambda: CoreSaver._arun(self, op), self._connector.recover)
        return await super()._arun(op)

    aprune = _aretried(SqlSaver.aprune)

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
