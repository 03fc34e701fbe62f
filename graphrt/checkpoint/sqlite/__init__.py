"""`SqliteSaver`: checkpoints in a SQLite file (or ":memory:"), safe for many threads and processes."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from graphrt.checkpoint._sql import SQLITE, Cursor, SqlSaver
from graphrt.checkpoint.serde.base import SerializerProtocol

__all__ = ("SqliteSaver",)

BUSY_TIMEOUT_MS: Final = 5000
"""How long a write waits for another connection's write lock before failing ("database is locked")."""


def connect(conn_string: str) -> sqlite3.Connection:
    """A connection as the savers want it: usable from any thread, transactions managed explicitly."""
    return sqlite3.connect(conn_string, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)


class SqliteCore(SqlSaver):
    """The SQLite connection handling shared by `SqliteSaver` and `AsyncSqliteSaver`.

    One connection, used under a lock so threads take turns. Every read runs in a transaction (one
    consistent snapshot); every write in a `BEGIN IMMEDIATE` transaction, which takes the file's
    write lock up front, so `put_guarded`'s check and insert are atomic across processes too.
    Setup (on first use) turns on WAL, sets `busy_timeout` to 5 s and `synchronous=NORMAL` (a commit
    survives the process being killed; a power cut may lose the last few), and applies migrations.
    """

    dialect = SQLITE
    conn: sqlite3.Connection
    is_setup: bool

    def __init__(self, conn: sqlite3.Connection, *, serde: SerializerProtocol | None = None) -> None:
        if not isinstance(conn, sqlite3.Connection):
            raise TypeError(
                f"{type(self).__name__} takes a sqlite3.Connection, got {type(conn).__name__}. graphrt runs "
                "SQLite in a worker thread for async code, so aiosqlite is not needed: use "
                f"{type(self).__name__}.from_conn_string(path) or "
                "sqlite3.connect(path, check_same_thread=False)."
            )
        super().__init__(serde=serde)
        self.conn = conn
        self.lock = threading.Lock()
        self.is_setup = False

    def _setup_locked(self) -> None:
        if self.is_setup:
            return
        self.conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if self.conn.in_transaction:
            self.conn.commit()
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        with self._transaction("BEGIN IMMEDIATE") as cur:
            self._migrate(cur)
        self.is_setup = True

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[Cursor]:
        conn = self.conn
        if conn.in_transaction:
            conn.commit()  # a transaction the caller left open on a shared connection
        cur = conn.cursor()
        try:
            cur.execute(begin)
            try:
                yield cur
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        finally:
            cur.close()

    @contextmanager
    def _read(self) -> Iterator[Cursor]:
        with self.lock:
            self._setup_locked()
            with self._transaction("BEGIN") as cur:
                yield cur

    @contextmanager
    def _write(self) -> Iterator[Cursor]:
        with self.lock:
            self._setup_locked()
            with self._transaction("BEGIN IMMEDIATE") as cur:
                yield cur


class SqliteSaver(SqliteCore):
    """Checkpoints in a SQLite database; usable from sync and async code.

    Same contract as every graphrt saver: `put_guarded` makes one writer per thread hold across
    processes sharing the file; list values that only grew are stored as deltas, so a long chat
    thread's checkpoint costs the same at turn 1,000 as at turn 10; `put_writes` commits before it
    returns. Unlike LangGraph's `SqliteSaver`, the `a*` methods work too (in a worker thread).

    Args:
        conn: An open connection; pass `check_same_thread=False` to use it from several threads.
        serde: The serializer; `JsonPlusSerializer` by default.

    Example:
        >>> with SqliteSaver.from_conn_string("checkpoints.sqlite") as saver:  # doctest: +SKIP
        ...     graph = builder.compile(checkpointer=saver)
    """

    @classmethod
    @contextmanager
    def from_conn_string(cls, conn_string: str) -> Iterator[SqliteSaver]:
        """A saver on a new connection to `conn_string` (a path or ":memory:"), closed on exit."""
        conn = connect(conn_string)
        try:
            yield cls(conn)
        finally:
            conn.close()

    def setup(self) -> None:
        """Create or migrate the tables (idempotent; also done on first use)."""
        with self.lock:
            self._setup_locked()
