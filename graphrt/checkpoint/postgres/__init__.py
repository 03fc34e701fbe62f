"""`PostgresSaver`: checkpoints in PostgreSQL, shared by many worker processes on many machines.

The algorithm (deltas, guarded puts, exactly-once writes, retention, thread ownership) is the storage core's
(`graphrt.checkpoint._core`) and the statements are the shared SQL layer's (`graphrt.checkpoint._sql`); this
package opens transactions on PostgreSQL connections (`graphrt._postgres`) and sends each one's statements as
batches, so a step's write transaction is one round trip (`_pipeline`).
"""

from __future__ import annotations

import builtins
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar, cast

from graphrt._postgres import Connector, require_psycopg

require_psycopg("PostgresSaver")

from graphrt.checkpoint._core import CoreSaver  # noqa: E402
from graphrt.checkpoint._dialect import apply_migrations  # noqa: E402
from graphrt.checkpoint._drive import Op, Tx  # noqa: E402
from graphrt.checkpoint._ownership import held_owner, release  # noqa: E402
from graphrt.checkpoint._sql import POSTGRES, Cursor, SqlSaver  # noqa: E402
from graphrt.checkpoint.base._types import config_thread  # noqa: E402
from graphrt.checkpoint.postgres._pipeline import (  # noqa: E402
    EXPECTATION_FAILED,
    PG_MIGRATIONS,
    BatchCursor,
    Knowledge,
    Mispredicted,
    PgReadTx,
    PgWriteTx,
    Resend,
    _Batch,
    first_try,
    retrying,
)
from graphrt.checkpoint.postgres._prepared import STALE_SESSION, doubt  # noqa: E402
from graphrt.checkpoint.serde.base import SerializerProtocol  # noqa: E402
from graphrt.config import RunnableConfig  # noqa: E402

__all__ = (
    "PostgresCore",
    "PostgresSaver",
    "batch_failure",
    "begin_batch",
    "committed",
    "head_blobs",
    "left_open",
    "unopened",
)

_MIGRATION_LOCK = 0x67727463686B7074
"""Advisory lock key ("grtchkpt") held while migrating, so concurrent `setup()` calls take turns."""
PG_MIGRATIONS_TABLE = "graphrt_checkpoint_pg_migrations"

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


def _retried(method: F) -> F:
    """Run a saver method through `retrying`: speculative first, exact after a stale guess, resent after a
    connection terminated before anything was applied."""

    @functools.wraps(method)
    def run(self: PostgresCore, *args: Any, **kwargs: Any) -> Any:
        return retrying(lambda: method(self, *args, **kwargs), self._connector.recover)

    return cast(F, run)


def _terminated_unanswered(exc: BaseException, conn: Any, cur: _Batch) -> bool:
    """Whether the server ended the connection (shutdown, `pg_terminate_backend`) in answer to a transaction's
    first batch: it then ran none of it, and the operation can be sent again on another connection."""
    import psycopg

    sqlstate = getattr(exc, "sqlstate", None) or ""
    broken = bool(conn.closed or conn.broken)
    return broken and cur.flushes <= 1 and isinstance(exc, psycopg.OperationalError) and sqlstate.startswith("57P")


def unopened(exc: BaseException, conn: Any, connector: Any) -> BaseException | None:
    """What to raise instead of `exc` when a batch cursor could not be opened (the first use of a saver migrates
    the tables; a cursor may first read which statements the session has prepared): `Resend` on a pooled
    connection found broken, since nothing of the transaction was sent yet; None: `exc` itself."""
    import psycopg

    if isinstance(exc, psycopg.OperationalError) and (conn.closed or conn.broken) and connector.replaceable:
        return Resend(connector.what, str(exc))
    return None


def committed(tx: Any, knowledge: Knowledge) -> None:
    """A batched transaction committed: `knowledge` learns what a write transaction saw and wrote."""
    facts = getattr(tx, "facts", None)
    if facts:
        knowledge.learn(facts)


def begin_batch(cur: _Batch, dialect: Any, begin: str, lock: str | None) -> None:
    """Queue a batched transaction's BEGIN and, for a write on a thread, the thread's lock."""
    cur.queue(begin)
    if lock is not None and dialect.lock_thread is not None:
        cur.queue(dialect.sql(dialect.lock_thread), (lock,))


def left_open(conn: Any) -> bool:
    """Whether a failed batch left its transaction open on a live connection (to roll back)."""
    import psycopg

    return not (conn.closed or conn.broken) and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE


def batch_failure(
    exc: BaseException,
    conn: Any,
    cur: _Batch,
    connector: Any,
    rolled_back: bool,
    knowledge: Knowledge,
    thread_id: str | None,
) -> BaseException | None:
    """What a failed batched transaction raises instead of `exc`, after its rollback (None: `exc` itself):
    `Mispredicted` for a stale guess (or lost prepared statements, `_prepared`), `Resend` when a pooled
    connection was terminated before anything was applied. What `knowledge` held of the transaction's thread
    is dropped: the failure may be another writer's doing.

    `rolled_back`: the caller sent a ROLLBACK through the connection, which psycopg follows with a
    `DEALLOCATE ALL` when it prepared statements of its own (`prepare_threshold`), so graphrt's prepared
    statements are asked of the server before the connection's next batch uses them."""
    import psycopg

    if thread_id is not None:
        knowledge.forget(thread_id)
    if rolled_back:
        doubt(conn)

    if isinstance(exc, psycopg.Error) and exc.sqlstate in (EXPECTATION_FAILED, *STALE_SESSION):
        return Mispredicted()
    if _terminated_unanswered(exc, conn, cur) and connector.replaceable:
        return Resend(connector.what, str(exc))
    return None


def head_blobs(saver: PostgresCore | Any, thread_id: str, checkpoint_ns: str) -> builtins.list[tuple[str, str]]:
    """The blobs a load of the namespace's head is guessed to ask for (`PgReadTx`): those of the head `saver`
    last committed that its codec does not hold (none when the head is not known there)."""
    head = saver._knowledge.head(thread_id, checkpoint_ns)
    versions = None if head is None else saver._records.versions(thread_id, checkpoint_ns, head)
    if versions is None:
        return []
    found: builtins.list[tuple[str, str]] = saver._unheld_blobs(
        thread_id, checkpoint_ns, {ch: str(v) for ch, v in versions.items()}
    )
    return found


class PostgresCore(SqlSaver):
    """The PostgreSQL transactions of `PostgresSaver` (`AsyncPostgresSaver`, in `aio`, has async ones).

    Reads run in a `REPEATABLE READ READ ONLY` transaction (one snapshot); writes in a transaction that
    first takes a transaction-scoped advisory lock on the thread id, so one thread's writers take turns
    across every process and machine while different threads write in parallel. Thread ownership is the
    core's lease row (a dead owner's lease is taken over: at once on its own machine, after
    `lease_seconds` elsewhere).

    Every transaction's statements are sent as batches. The write methods (`put`, `put_step`, `put_writes*`)
    and thread claims run speculatively: the reads the core makes before writing (head, lease, delta bases)
    are answered from what this saver last committed and checked by the server in the same round trip as
    the commit; a stale guess rolls back and the method runs again with real reads (see `_pipeline`). The
    fixed-shape statements among them (the thread lock, the expectations, the lease, a load's lookups) are
    prepared once per connection and run with `EXECUTE` in those batches, unless the connection's
    `prepare_threshold` is None (see `_prepared`).
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
        self._knowledge = Knowledge()

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
                apply_migrations(cur, self.dialect, PG_MIGRATIONS_TABLE, PG_MIGRATIONS)
                cur.execute("COMMIT")
            except BaseException:
                if not conn.closed:
                    cur.execute("ROLLBACK")
                raise
        self.is_setup = True

    def _read(self) -> Any:
        return self._transaction(self.dialect.begin_read)

    def _write(self) -> Any:
        return self._transaction(self.dialect.begin_write, pipeline=True)

    @contextmanager
    def _batched(self, begin: str, make: Callable[[BatchCursor], Any], lock: str | None = None) -> Iterator[Any]:
        """A transaction whose statements, BEGIN and COMMIT included, are queued and sent together.

        Nothing waits for the server until a result is read; the commit sends what is left. A failed
        expectation of a speculative transaction (`graphrt_expect`) surfaces as `Mispredicted`, after the
        rollback; so does an error the caller raised on speculative answers that the server refutes.
        """
        setup = None if self.is_setup else self._setup_on
        with self.lock, self._connector.connection() as conn:
            try:
                if setup is not None:
                    setup(conn)
                cur = BatchCursor(conn)
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
                        cur.flush()  # were the answers the error came from right? (raises if not)
                    raise
                cur.commit()
            except BaseException as exc:
                rolling_back = left_open(conn)
                if rolling_back:
                    conn.execute("ROLLBACK")
                instead = batch_failure(exc, conn, cur, self._connector, rolling_back, self._knowledge, lock)
                if instead is None:
                    raise
                raise instead from None
            committed(tx, self._knowledge)

    @contextmanager
    def _read_tx(self) -> Iterator[PgReadTx]:
        make = functools.partial(
            PgReadTx, dialect=self.dialect, knowledge=self._knowledge, guess=functools.partial(head_blobs, self)
        )
        with self._batched(self.dialect.begin_read, make) as tx:
            yield tx

    @contextmanager
    def _write_tx(self, thread_id: str | None = None) -> Iterator[PgWriteTx]:
        make = functools.partial(PgWriteTx, dialect=self.dialect, knowledge=self._knowledge)
        with self._batched(self.dialect.begin_write, make, thread_id) as tx:
            yield tx

    def _run(self, op: Op[T]) -> T:
        """Every one-transaction operation runs through `retrying`: speculative first, exact after a stale
        guess, sent again after a connection terminated before anything was applied. (`prune`, several
        transactions, is retried whole below.)"""
        if isinstance(op, Tx):
            return retrying(lambda: CoreSaver._run(self, op), self._connector.recover)
        return super()._run(op)

    prune = _retried(SqlSaver.prune)

    @contextmanager
    def claim_thread(self, config: RunnableConfig) -> Iterator[None]:
        """`CoreSaver.claim_thread`, whose claim and release each cost one round trip when nothing contends."""
        thread_id, _ = config_thread(config)
        claims: builtins.list[AbstractContextManager[None]] = []

        def enter() -> None:
            claim = super(PostgresCore, self).claim_thread(config)
            claim.__enter__()
            claims.append(claim)

        retrying(enter, self._connector.recover)
        owner = held_owner(self, thread_id)
        try:
            yield
        finally:
            self._release(claims[-1], thread_id, owner)

    def _release(self, claim: AbstractContextManager[None], thread_id: str, owner: str | None) -> None:
        try:
            first_try(lambda: claim.__exit__(None, None, None))
        except (Mispredicted, Resend):  # the claim's block has ended; its release is done again on its own
            if owner is not None:
                retrying(lambda: release(self, thread_id, owner), self._connector.recover)

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
        pipeline: bool = False,
        pool_size: int = 8,
        prepare_threshold: int | None = 5,
        serde: SerializerProtocol | None = None,
    ) -> Iterator[PostgresSaver]:
        """A saver on a pool of connections to `conn_string`, closed when the block ends.

        `pipeline` is accepted for LangGraph compatibility: each transaction's statements are sent as one batch
        whatever it says. `prepare_threshold=None` turns prepared statements off, psycopg's and graphrt's own
        (needed behind PgBouncer in transaction mode).
        """
        with Connector.open_pool(
            conn_string, cls.__name__, max_size=pool_size, prepare_threshold=prepare_threshold
        ) as connector:
            yield cls(connector, serde=serde)

    def setup(self) -> None:
        """Create or migrate the tables (idempotent, safe from many processes at once; also done on first use)."""
        self._setup()
