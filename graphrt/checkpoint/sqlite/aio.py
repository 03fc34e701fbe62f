"""`AsyncSqliteSaver`: the async face of the SQLite saver, at LangGraph's path."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread

from graphrt.checkpoint.sqlite import SqliteCore, connect

__all__ = ("AsyncSqliteSaver",)


class AsyncSqliteSaver(SqliteCore):
    """Checkpoints in a SQLite database, for async code: the `SqliteSaver` code run in a worker thread.

    The same SQL and behaviour as `SqliteSaver`; each `a*` call runs on a worker thread, one at a
    time per saver. Differences from LangGraph's class: it takes a `sqlite3.Connection` (or use
    `from_conn_string`), not an `aiosqlite` one, so no extra package is needed; and its sync methods
    work from any thread, including the event loop's (they block it, so prefer the `a*` ones there).

    Example:
        >>> async with AsyncSqliteSaver.from_conn_string("checkpoints.sqlite") as saver:  # doctest: +SKIP
        ...     graph = builder.compile(checkpointer=saver)
    """

    @classmethod
    @asynccontextmanager
    async def from_conn_string(cls, conn_string: str) -> AsyncIterator[AsyncSqliteSaver]:
        """A saver on a new connection to `conn_string` (a path or ":memory:"), closed on exit."""
        conn: sqlite3.Connection = await anyio.to_thread.run_sync(connect, conn_string)
        try:
            yield cls(conn)
        finally:
            conn.close()

    async def setup(self) -> None:
        """Create or migrate the tables (idempotent; also done on first use)."""

        def run() -> None:
            with self.lock:
                self._setup_locked()

        await anyio.to_thread.run_sync(run)
