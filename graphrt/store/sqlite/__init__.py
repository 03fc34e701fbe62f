"""`SqliteStore`: the store in a SQLite file (or `:memory:`), vector search without extensions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from graphrt.checkpoint._dialect import SQLITE
from graphrt.store._sql import SqlStore
from graphrt.store._ttl import ThreadSweeper
from graphrt.store.base import IndexConfig, TTLConfig

__all__ = ("AsyncSqliteStore", "BaseSqliteStore", "SqliteStore", "connect")


def connect(conn_string: str) -> sqlite3.Connection:
    """Open a connection set up for the store: autocommit mode, WAL, a busy timeout, any thread."""
    conn = sqlite3.connect(conn_string, check_same_thread=False, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    conn.execute("PRAGMA journal_mode = WAL")  # answers "memory" for :memory:, which is fine
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


class BaseSqliteStore(SqlStore):
    """The SQLite store's code, shared by `SqliteStore` and `AsyncSqliteStore`."""

    dialect = SQLITE
    version_sql = "PRAGMA data_version"  # changes exactly when another connection commits to the file

    def __init__(
        self, conn: sqlite3.Connection, *, index: IndexConfig | None = None, ttl: TTLConfig | None = None
    ) -> None:
        # The store issues its own BEGIN/COMMIT, so the connection must not open transactions itself.
        if conn.isolation_level is not None:
            conn.isolation_level = None
        super().__init__(conn, index=index, ttl=ttl)

    def _own_connection(self) -> None:
        """Declare that only this store uses its connection, so `get` may remember rows it read.

        A change made through another connection (another process, another store object) moves SQLite's
        `data_version`, which every `get` checks first; changes made through this connection by anything but
        this store would not, which is why the remembering is off for a connection handed in from outside.
        """
        self._reads = {}


class SqliteStore(BaseSqliteStore, ThreadSweeper):
    """A store in a SQLite database; usable from sync code, and from async code through `abatch`.

    Vectors are float32 blobs scored in numpy, so no SQLite extension is needed.
    """

    @classmethod
    @contextmanager
    def from_conn_string(
        cls, conn_string: str, *, index: IndexConfig | None = None, ttl: TTLConfig | None = None
    ) -> Iterator[SqliteStore]:
        """Open `conn_string` (a path or `:memory:`) and close it when the block ends."""
        conn = connect(conn_string)
        store = cls(conn, index=index, ttl=ttl)
        store._own_connection()
        try:
            yield store
        finally:
            store.stop_ttl_sweeper(timeout=1)
            conn.close()

    def setup(self) -> None:
        """Create the store's tables (only the missing ones); reads and writes also do it on first use."""
        self._migrate()


def __getattr__(name: str) -> Any:
    """`AsyncSqliteStore` is importable from here too, as from LangGraph's module (loaded on first use)."""
    if name == "AsyncSqliteStore":
        from graphrt.store.sqlite.aio import AsyncSqliteStore

        return AsyncSqliteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
