"""`AsyncPostgresStore`: the PostgreSQL store for async code, on psycopg's asyncio connections (LangGraph's path).

The operations are the shared SQL store's (`graphrt.store._sql`), written once as generators over cursor
calls: here they run natively on the event loop over psycopg's async cursors (`_arun`), with the connection
handling of `graphrt._postgres.AsyncConnector`. No call runs in a worker thread (except a sync-only
embedder's, as for every store).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar

from graphrt._postgres import AsyncConnector, require_psycopg

require_psycopg("AsyncPostgresStore")

from graphrt.checkpoint._drive import Body, PrivateLoop, adrive, asteer, blocking_call  # noqa: E402
from graphrt.store._plan import Plan  # noqa: E402
from graphrt.store._sql import ALONE, READ, WRITE, StoreOp, Txn  # noqa: E402
from graphrt.store._ttl import AsyncSweeper  # noqa: E402
from graphrt.store.base import (  # noqa: E402
    NOT_PROVIDED,
    IndexConfig,
    Item,
    NamespacePath,
    NotProvided,
    Op,
    Result,
    SearchItem,
    TTLConfig,
)
from graphrt.store.postgres import BasePostgresStore, pool_arguments  # noqa: E402

__all__ = ("AsyncPostgresStore",)

T = TypeVar("T")


class AsyncPostgresStore(BasePostgresStore, AsyncSweeper):
    """The same store as `PostgresStore` for async code: every `a*` method runs on the event loop, no worker thread.

    Takes what LangGraph's takes: a psycopg `AsyncConnection` (any `row_factory`, e.g. `dict_row`, and any
    `prepare_threshold`), a psycopg_pool `AsyncConnectionPool`, or use `from_conn_string`. With a pool, a
    connection the server dropped is replaced and the call run again once. Same tables, locking and
    behaviour as `PostgresStore`, so both can share a database.

    The sync methods (`get`, `put`, `search`, `batch`, ...) work from other threads while the store's event
    loop runs (they run on it, as LangGraph's do) and outside any event loop; on a thread whose event loop
    is running they raise `asyncio.InvalidStateError`, since waiting there would block that loop.

    Example:
        >>> async with AsyncPostgresStore.from_conn_string(DB_URI) as store:  # doctest: +SKIP
        ...     await store.setup()
        ...     await store.aput(("users", "1"), "prefs", {"theme": "dark"})
    """

    def __init__(
        self,
        conn: Any,
        *,
        pipe: Any = None,
        deserializer: Callable[[bytes], dict[str, Any]] | None = None,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        pgvector: bool | None = None,
    ) -> None:
        """A store on `conn`; its tables are made by `await setup()` (or the first call).

        Args:
            conn: A psycopg `AsyncConnection` or a psycopg_pool `AsyncConnectionPool`.
            pipe, deserializer, index, ttl, pgvector: As for `BasePostgresStore`.

        Raises:
            TypeError: `conn` is a sync connection or pool (use `PostgresStore`), or not a connection.
            ValueError: `pipe` with a pool, or a bad `index`.
        """
        super().__init__(conn, pipe=pipe, index=index, ttl=ttl, pgvector=pgvector, deserializer=deserializer)
        self._loop: asyncio.AbstractEventLoop | None = None
        """The event loop of the last async call (where sync calls from other threads run)."""
        self._private = PrivateLoop()
        self._alone: Any = None
        """The cursor of the last call outside a transaction, reused while its connection is lent again."""
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()

    def _connect(self, conn: Any) -> Any:
        return conn if isinstance(conn, AsyncConnector) else AsyncConnector(conn, type(self).__name__)

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls,
        conn_string: str,
        *,
        pipeline: bool = False,
        pool_config: dict[str, Any] | None = None,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        pool_size: int = 4,
        prepare_threshold: int | None = 5,
        pgvector: bool | None = None,
    ) -> AsyncIterator[AsyncPostgresStore]:
        """A store on an async pool of connections to `conn_string`, closed when the block ends.

        Args:
            conn_string: A libpq connection string or URL.
            pipeline: Accepted for LangGraph compatibility; write transactions are always pipelined.
            pool_config: LangGraph's `PoolConfig`: `min_size`, `max_size` (default `pool_size`), `kwargs` for
                each connection, and any other `AsyncConnectionPool` argument.
            index, ttl, pgvector: As for the constructor.
            pool_size: The pool's size when `pool_config` does not say.
            prepare_threshold: psycopg's; None turns prepared statements off (PgBouncer in transaction mode).
        """
        arguments = pool_arguments(pool_config, pool_size, prepare_threshold)
        async with AsyncConnector.open_pool(conn_string, cls.__name__, **arguments) as connector:
            store = cls(connector, index=index, ttl=ttl, pgvector=pgvector)
            try:
                yield store
            finally:
                await store.stop_ttl_sweeper(timeout=1)

    async def setup(self) -> None:
        """Create or upgrade the store's tables; safe to call from many processes at once."""
        self._note_loop()
        await self._aexecute(self._migrate_op())

    async def __aenter__(self) -> AsyncPostgresStore:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop_ttl_sweeper(timeout=1)

    # -- async faces: the shared operations, run on the event loop ---------------------------------

    async def _apply_async(self, plan: Plan) -> list[Result]:
        return await self._arun(self._batch_op(plan))

    async def aget(self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None) -> Item | None:
        """Async `get`: one SELECT, no batch plan."""
        step = self._get_step(namespace, key, refresh_ttl)
        return await self._arun(Txn(lambda cur: self._get_alone(cur, step), ALONE))

    async def sweep_ttl(self) -> int:
        """Delete every expired item now; return how many were deleted."""
        return await self._arun(self._sweep_txn())

    def _note_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if loop is not self._private.loop:  # sync calls from other threads go to the caller's loop
            self._loop = loop
        return loop

    async def _arun(self, op: StoreOp[T]) -> T:
        """Run an operation on async transactions, creating the schema first if needed."""
        loop = self._note_loop()
        if not self.is_setup:
            await self._aexecute(self._migrate_op())
        if self._index is not None and not self._ann:
            # The in-process vector copy is shared: its readers and writers take turns.
            turn = self._turns.get(loop)
            if turn is None:
                turn = self._turns[loop] = asyncio.Lock()
            async with turn:
                return await self._aexecute(op)
        return await self._aexecute(op)

    async def _aexecute(self, op: StoreOp[T]) -> T:
        if isinstance(op, Txn):
            return await self._arun_txn(op.kind, op.body)
        return await asteer(op, lambda request: self._arun_txn(request.kind, request.body))

    async def _arun_txn(self, kind: str, body_of: Callable[..., Body[T]], *args: Any) -> T:
        attempt = 0
        while True:
            try:
                async with self._atransaction(kind) as cur:
                    return await adrive(body_of(cur, *args))
            except BaseException as exc:
                self._failed()
                if not self._retry(exc, attempt):
                    raise
                await self._connector.recover()
                attempt += 1

    @asynccontextmanager
    async def _atransaction(self, kind: str) -> AsyncIterator[Any]:
        """An async cursor (tuple rows) in a transaction of `kind`; see `SqlStore._transaction`."""
        from psycopg.rows import tuple_row

        if kind is ALONE:
            async with self._connector.connection() as conn:
                cur = self._alone
                if cur is None or cur.connection is not conn or cur.closed:
                    cur = self._alone = conn.cursor(row_factory=tuple_row)  # reused: a cursor costs a statement's CPU
                yield cur
            return
        begin = self.dialect.begin_read if kind is READ else self.dialect.begin_write
        async with self._connector.transaction(begin, pipeline=kind is WRITE) as cur:
            if kind is not READ:
                await adrive(self._lock_writers(cur))
            yield cur

    # -- sync faces: the async ones, run on the store's event loop ---------------------------------

    def batch(self, ops: Iterable[Op]) -> list[Result]:
        """Sync `abatch`, for other threads than the event loop's (see the class docstring)."""
        ops = list(ops)
        return self._blocking("batch", "abatch", lambda: self.abatch(ops))

    def get(self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None) -> Item | None:
        """Sync `aget`, for other threads than the event loop's (see the class docstring)."""
        return self._blocking("get", "aget", lambda: self.aget(namespace, key, refresh_ttl=refresh_ttl))

    def search(
        self,
        namespace_prefix: tuple[str, ...],
        /,
        *,
        query: str | None = None,
        filter: dict[str, Any] | None = None,
        limit: int = 10,
        offset: int = 0,
        refresh_ttl: bool | None = None,
    ) -> list[SearchItem]:
        """Sync `asearch`, for other threads than the event loop's (see the class docstring)."""
        self._refuse_on_loop("search", "asearch")
        return super().search(
            namespace_prefix, query=query, filter=filter, limit=limit, offset=offset, refresh_ttl=refresh_ttl
        )

    def put(
        self,
        namespace: tuple[str, ...],
        key: str,
        value: Mapping[str, Any],
        index: Literal[False] | list[str] | None = None,
        *,
        ttl: float | NotProvided | None = NOT_PROVIDED,
    ) -> None:
        """Sync `aput`, for other threads than the event loop's (see the class docstring)."""
        self._refuse_on_loop("put", "aput")
        super().put(namespace, key, value, index, ttl=ttl)

    def delete(self, namespace: tuple[str, ...], key: str) -> None:
        """Sync `adelete`, for other threads than the event loop's (see the class docstring)."""
        self._refuse_on_loop("delete", "adelete")
        super().delete(namespace, key)

    def list_namespaces(
        self,
        *,
        prefix: NamespacePath | None = None,
        suffix: NamespacePath | None = None,
        max_depth: int | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[tuple[str, ...]]:
        """Sync `alist_namespaces`, for other threads than the event loop's (see the class docstring)."""
        self._refuse_on_loop("list_namespaces", "alist_namespaces")
        return super().list_namespaces(prefix=prefix, suffix=suffix, max_depth=max_depth, limit=limit, offset=offset)

    def _migrate(self) -> None:
        self._blocking("setup", "setup", self.setup)

    def _sweep(self) -> int:
        return self._blocking("sweep_ttl", "sweep_ttl", self.sweep_ttl)

    def _execute(self, op: StoreOp[T]) -> T:
        return self._blocking("batch", "abatch", lambda: self._aexecute(op))

    def _blocking(self, method: str, twin: str, make: Callable[[], Awaitable[T]]) -> T:
        """Wait for `make()` on the store's event loop (from another thread) or on a private one (no loop runs)."""
        self._refuse_on_loop(method, twin)
        with blocking_call(self._loop, self._private, type(self).__name__) as call:
            result: T = call(make())
            return result

    def _refuse_on_loop(self, method: str, twin: str) -> None:
        """Raise `asyncio.InvalidStateError` on a thread whose event loop is running (waiting would block it)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        # LangGraph's message stem, so code matching it still does.
        raise asyncio.InvalidStateError(
            f"Synchronous calls to {type(self).__name__} detected in the main event loop. This can lead to "
            "deadlocks or performance issues. Please use the asynchronous interface for main thread operations. "
            f"Specifically, replace `store.{method}(...)` with `await store.{twin}(...)`"
        )
