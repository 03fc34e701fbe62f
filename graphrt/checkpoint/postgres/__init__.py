"""`PostgresSaver`: checkpoints in PostgreSQL, shared by many worker processes on many machines.

The algorithm (deltas, guarded puts, exactly-once writes, retention, thread ownership) is the storage core's
(`graphrt.checkpoint._core`) and the statements are the shared SQL layer's (`graphrt.checkpoint._sql`); this
package only opens transactions on PostgreSQL connections (`graphrt._postgres`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from graphrt._postgres import Connector, require_psycopg

require_psycopg("PostgresSaver")

from graphrt.checkpoint._sql import POSTGRES, Cursor, SqlSaver  # noqa: E402
from graphrt.checkpoint.serde.base import SerializerProtocol  # noqa: E402

__all__ = ("PostgresCore", "PostgresSaver")

_MIGRATION_LOCK = 0x67727463686B7074
"""Advisory lock key ("grtchkpt") held while migrating, so concurrent `setup()` calls take turns."""


class PostgresCore(SqlSaver):
    """The PostgreSQL transactions of `PostgresSaver` (`AsyncPostgresSaver`, in `aio`, has async ones).

    Reads run in a `REPEATABLE READ READ ONLY` transaction (one snapshot); writes in a transaction that
    first takes a transaction-scoped advisory lock on the thread id, so one thread's writers take turns
    across every process and machine while different threads write in parallel. Thread ownership is the
    core's lease row (a dead owner's lease is taken over: at once on its own machine, after
    `lease_seconds` elsewhere).
    """

    dialect = POSTGRES

    def __init__(self, conn: Any, *, pipe: Any = None, serde: SerializerProtocol | None = None) -> None:
        if pipe is not None:
            raise TypeError(
                f"{type(self).__name__}(pipe=...) is not supported: graphrt already sends each transaction's "
                "statements with as few round trips as it can; pass the connection (or a pool) alone"
            )
        super().__init__(serde=serde)
        self._connector = conn if isinstance(conn, Connector) else Connector(conn, type(self).__name__)
        # One connection can carry only one transaction at a time; a pool hands each caller its own.
        self.lock: Any = nullcontext() if self._connector.replaceable else threading.RLock()
        self.is_setup = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {'pooled' if self._connector.replaceable else 'single connection'}>"

    @contextmanager
    def _transaction(self, begin: str, pipeline: bool = False) -> Iterator[Cursor]:
        setup = None if self.is_setup else self._setup_on
        with self.lock, self._connector.transaction(begin, setup, pipeline=pipeline) as cur:
            yield cur

    def _setup_on(self, conn: Any) -> None:
        if self.is_setup:
            return
        with conn.cursor() as cur:
            cur.execute("BEGIN")
            try:
                cur.execute(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})")
                self._migrate(cur)
                cur.execute("COMMIT")
            except BaseException:
                if not conn.closed:
                    cur.execute("ROLLBACK")
                raise
        self.is_setup = True

    def _read(self) -> Any:
        return self._transaction(self.dialect.begin_read)

    def _write(self) -> Any:
        # Writes mostly insert: pipelined, a step's transaction costs a few round trips, not one per statement.
        return self._transaction(self.dialect.begin_write, pipeline=True)

    def _setup(self) -> None:
        with self.lock, self._connector.connection() as conn:
            self._setup_on(conn)


class PostgresSaver(PostgresCore):
    """Checkpoints in PostgreSQL; usable from sync code (and from async code, in a worker thread).

    Takes a psycopg `Connection` or a psycopg_pool `ConnectionPool`. With a pool (or `from_conn_string`),
    a connection the server dropped (`pg_terminate_backend`, a restart) is replaced on the next call, so the
    same saver goes on working; an interrupted run resumes from its last checkpoint when invoked again.

    Example:
        >>> with PostgresSaver.from_conn_string(DB_URI) as checkpointer:  # doctest: +SKIP
        ...     graph = builder.compile(checkpointer=checkpointer)
    """

    @classmethod
    @contextmanager
    def from_conn_string(
        cls,
        conn_string: str,
        *,
        pool_size: int = 8,
        prepare_threshold: int | None = 5,
        serde: SerializerProtocol | None = None,
    ) -> Iterator[PostgresSaver]:
        """A saver on a pool of connections to `conn_string`, closed when the block ends.

        `prepare_threshold=None` turns prepared statements off (needed behind PgBouncer in transaction mode).
        """
        with Connector.open_pool(
            conn_string, cls.__name__, max_size=pool_size, prepare_threshold=prepare_threshold
        ) as connector:
            yield cls(connector, serde=serde)

    def setup(self) -> None:
        """Create or migrate the tables (idempotent, safe from many processes at once; also done on first use)."""
        self._setup()
