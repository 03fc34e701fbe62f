"""`PostgresStore`: the store in PostgreSQL, shared by many processes and machines.

The statements, schema and row mapping are the shared SQL store's (`graphrt.store._sql`); how PostgreSQL's SQL
differs is the shared SQL layer's `POSTGRES` dialect (`graphrt.checkpoint._dialect`); this package says how
connections are had (`graphrt._postgres`) and how other connections' commits are noticed (a counter row).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from graphrt._postgres import ConnectionLostError, Connector, require_psycopg

require_psycopg("PostgresStore")

from graphrt.checkpoint._dialect import POSTGRES  # noqa: E402
from graphrt.store._plan import Plan  # noqa: E402
from graphrt.store._sql import SqlStore  # noqa: E402
from graphrt.store._ttl import ThreadSweeper  # noqa: E402
from graphrt.store.base import IndexConfig, Result, TTLConfig  # noqa: E402

__all__ = ("BasePostgresStore", "POSTGRES", "PostgresStore")

T = TypeVar("T")


class BasePostgresStore(SqlStore):
    """The PostgreSQL store's code, shared by `PostgresStore` and `AsyncPostgresStore`."""

    dialect = POSTGRES

    def __init__(self, conn: Any, *, index: IndexConfig | None = None, ttl: TTLConfig | None = None) -> None:
        self._connector = conn if isinstance(conn, Connector) else Connector(conn, type(self).__name__)
        super().__init__(None, index=index, ttl=ttl)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {'pooled' if self._connector.replaceable else 'single connection'}>"

    def _bound(self, action: Callable[[], T]) -> T:
        """Run `action` with `self.conn` set to a live connection; once more on a new one if it was lost."""
        with self.lock:
            for attempt in range(2):
                try:
                    with self._connector.connection() as conn:
                        self.conn = conn
                        try:
                            return action()
                        finally:
                            self.conn = None
                except ConnectionLostError:
                    self._cache = None
                    if attempt or not self._connector.replaceable:
                        raise
                    self._connector.recover()
            raise AssertionError("unreachable")

    def _migrate(self) -> None:
        self._bound(super()._migrate)

    def _apply(self, plan: Plan) -> list[Result]:
        if not self.is_setup:
            self._migrate()
        return self._bound(lambda: SqlStore._apply(self, plan))

    def _pipelined(self) -> contextlib.AbstractContextManager[Any]:
        return self.conn.pipeline()  # type: ignore[no-any-return]

    def _connected(self, action: Callable[[], T]) -> T:
        if not self.is_setup:
            self._migrate()
        return self._bound(action)

    def _sweep(self) -> int:
        if not self.is_setup:
            self._migrate()
        return self._bound(super()._sweep)

    def _external_version(self, cur: Any) -> Any:
        cur.execute("SELECT version FROM graphrt_store_changes WHERE one = 1")
        return cur.fetchone()[0]

    def _wrote(self, cur: Any) -> None:
        if self._cache is None:  # nothing to keep current: no need to wait for the new number
            cur.execute("UPDATE graphrt_store_changes SET version = version + 1 WHERE one = 1")
            return
        cur.execute("UPDATE graphrt_store_changes SET version = version + 1 WHERE one = 1 RETURNING version")
        version = cur.fetchone()[0]
        if self._cache is not None and self._cache_version == version - 1:
            self._cache_version = version  # our own write: the cache is kept up to date by the caller


class PostgresStore(BasePostgresStore, ThreadSweeper):
    """A store in PostgreSQL; usable from sync code, and from async code through `abatch`.

    Takes a psycopg `Connection` or a psycopg_pool `ConnectionPool`; with a pool (or `from_conn_string`) a
    connection the server dropped is replaced and the call retried once.
    """

    @classmethod
    @contextmanager
    def from_conn_string(
        cls,
        conn_string: str,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        pool_size: int = 4,
        prepare_threshold: int | None = 5,
    ) -> Iterator[PostgresStore]:
        """Connect to `conn_string` through a small pool, closed when the block ends.

        `prepare_threshold=None` turns prepared statements off (needed behind PgBouncer in transaction mode).
        """
        with Connector.open_pool(
            conn_string, cls.__name__, max_size=pool_size, prepare_threshold=prepare_threshold
        ) as connector:
            store = cls(connector, index=index, ttl=ttl)
            try:
                yield store
            finally:
                store.stop_ttl_sweeper(timeout=1)

    def setup(self) -> None:
        """Create or upgrade the store's tables; safe to call from many processes at once."""
        self._migrate()
