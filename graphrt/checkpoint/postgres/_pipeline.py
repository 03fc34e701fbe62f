"""PostgreSQL transactions sent as batches: a step's write transaction costs one round trip.

The storage core (`_core.CoreSaver`) reads before it writes: a guarded put reads the thread's head and
lease and compares them with what the run expects, then reads the bases of its deltas. Answered by the
server, each read waits for a round trip. Here, inside a *speculative* write transaction, `head`, `lease`
and `blobs` are answered from what this saver last saw committed (`Knowledge`), and each such answer is
sent as an *expectation*: a statement that raises `EXPECTATION_FAILED` at the server unless the stored
value still equals the answer given. Everything (BEGIN, the thread lock, expectations, inserts, COMMIT) is
queued and sent as one query (`BatchCursor`), committed with one round trip; the core's code runs unchanged
on the answers.

A failed expectation aborts the whole transaction (nothing applied) and raises `Mispredicted`; the saver
then runs the same core method again in an exact transaction, whose reads ask the server (still batched:
one round trip per read, plus the commit). So a wrong guess costs time, never correctness: the outcome is
always the one the exact transaction produces. Reads the knowledge cannot answer are asked for real in
either mode. Speculation is on only inside `retrying()`, which the saver's methods run in.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from graphrt._postgres import ConnectionLostError
from graphrt.checkpoint._delta import MAX_CHAIN, Blob, StreamKey
from graphrt.checkpoint._dialect import POSTGRES, Dialect
from graphrt.checkpoint._drive import Body, adrive, drive
from graphrt.checkpoint._primitives import CheckpointRow, Lease
from graphrt.checkpoint._sql import (
    _SELECT_CHECKPOINT,
    _SELECT_HEAD,
    _SELECT_HEAD_AND_LEASE,
    _SELECT_LATEST,
    _SELECT_LEASE,
    AsyncSqlTx,
    SqlTx,
    _SqlBodies,
)
from graphrt.checkpoint.base._storage import WriteRow
from graphrt.checkpoint.postgres._prepared import (
    GENERIC_PLANS,
    STALE_SESSION,
    Prepared,
    doubt,
    give_up,
    preparable,
    prepared_on,
    registered,
)
from graphrt.checkpoint.postgres._rows import AsciiBytes, Rows, ascii_dumper

__all__ = (
    "EXPECTATION_FAILED",
    "PG_MIGRATIONS",
    "Knowledge",
    "Mispredicted",
    "AsyncBatchCursor",
    "AsyncPgReadTx",
    "AsyncPgWriteTx",
    "BatchCursor",
    "PgReadTx",
    "PgWriteTx",
    "Resend",
    "aretrying",
    "first_try",
    "retrying",
)

T = TypeVar("T")

EXPECTATION_FAILED = "GR001"
"""The SQLSTATE `graphrt_expect` raises: a speculative answer no longer matches what is stored."""

PG_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE OR REPLACE FUNCTION graphrt_expect(ok BOOLEAN) RETURNS VOID LANGUAGE plpgsql AS $$
        BEGIN
            IF ok IS NOT TRUE THEN
                RAISE EXCEPTION 'graphrt: a speculative read no longer matches the database'
                    USING ERRCODE = 'GR001';
            END IF;
        END $$""",
    ),
)
"""PostgreSQL-only schema steps (functions), versioned in `graphrt_checkpoint_pg_migrations`. Only append."""

# Expectations are expressions: those queued one after another are sent as one statement (`BatchCursor.expect`).
_EXPECT_HEAD = (
    "graphrt_expect((SELECT checkpoint_id FROM graphrt_checkpoints WHERE thread_id = %s AND checkpoint_ns = %s "
    "ORDER BY checkpoint_id DESC LIMIT 1) IS NOT DISTINCT FROM %s::text)"
)
_EXPECT_NO_LEASE = "graphrt_expect(NOT EXISTS (SELECT 1 FROM graphrt_thread_leases WHERE thread_id = %s))"
_EXPECT_LEASE = (
    "graphrt_expect(EXISTS (SELECT 1 FROM graphrt_thread_leases WHERE thread_id = %s AND owner = %s "
    "AND host = %s AND pid = %s AND expires_at IS NOT DISTINCT FROM %s::bigint))"
)
_EXPECT_BLOB = (
    "graphrt_expect(EXISTS (SELECT 1 FROM graphrt_checkpoint_blobs WHERE thread_id = %s AND checkpoint_ns = %s "
    "AND channel = %s AND version = %s AND type = %s AND base_version IS NOT DISTINCT FROM %s::text AND depth = %s "
    "AND COALESCE(octet_length(blob), 0) = %s))"
)
_EXPECT_RECORD = (
    "graphrt_expect(EXISTS (SELECT 1 FROM graphrt_checkpoints WHERE thread_id = %s AND checkpoint_ns = %s "
    "AND checkpoint_id = %s AND type = %s AND sha256(checkpoint) = decode(%s, 'hex')))"
)
_INSERT_BLOBS = (
    "WITH new AS (INSERT INTO graphrt_checkpoint_blobs "
    "(thread_id, checkpoint_ns, channel, version, type, blob, base_version, depth) "
    "SELECT %s, %s, * FROM unnest(%s::text[], %s::text[], %s::text[], %s::bytea[], %s::text[], %s::int[]) "
    "ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING RETURNING 1) "
)
_INSERT_LEASE = (
    "WITH changed AS (INSERT INTO graphrt_thread_leases (thread_id, owner, host, pid, expires_at) "
    "VALUES (%s, %s, %s, %s, %s) ON CONFLICT (thread_id) DO NOTHING RETURNING 1) "
)
_UPDATE_LEASE = (
    "WITH changed AS (UPDATE graphrt_thread_leases SET owner = %s, host = %s, pid = %s, expires_at = %s "
    "WHERE thread_id = %s AND owner = %s AND COALESCE(expires_at, -1) = %s RETURNING 1) "
)
_DELETE_LEASE = (
    "WITH changed AS (DELETE FROM graphrt_thread_leases WHERE thread_id = %s AND owner = %s "
    "AND COALESCE(expires_at, -1) = %s RETURNING 1) "
)

_MAX_KNOWN_BLOB = 64 * 1024
"""Larger blobs are not kept in `Knowledge` (a delta on one is built after reading its base for real)."""

_speculating: ContextVar[bool] = ContextVar("graphrt_pg_speculating", default=False)
_retrying: ContextVar[bool] = ContextVar("graphrt_pg_retrying", default=False)
_RESENDS = 3
"""How many times a call is sent again after its connection was found terminated before it was answered."""


class Mispredicted(Exception):
    """A speculative transaction's guess was stale: it was rolled back; run the operation again exactly."""


class Resend(ConnectionLostError):
    """The server terminated the connection (restart, `pg_terminate_backend`) before answering a
    transaction's first batch: nothing was applied, so `retrying` runs the operation again on a new
    connection. Seen by users only when that keeps failing, or without a pool."""


def is_speculating() -> bool:
    return _speculating.get()


def first_try(call: Callable[[], T]) -> T:
    """Run `call` once, speculatively, letting `Mispredicted` and `Resend` out (for a step that cannot be
    repeated as such, like leaving a claim's block)."""
    outer, token = _retrying.set(True), _speculating.set(True)
    try:
        return call()
    finally:
        _speculating.reset(token)
        _retrying.reset(outer)


class _Attempts:
    """When `retrying` and `aretrying` run an operation again: exactly after a stale guess; after recovering
    the connection when it was terminated unanswered, up to `_RESENDS` times."""

    __slots__ = ("lost", "speculate")

    def __init__(self) -> None:
        self.speculate, self.lost = True, 0

    def recover_after(self, exc: Mispredicted | Resend) -> bool:
        """Whether to recover the connection before the next attempt (raises `exc` when attempts ran out)."""
        if isinstance(exc, Mispredicted):
            self.speculate = False
            return False
        self.lost += 1
        if self.lost >= _RESENDS:
            raise exc
        return True


def retrying(call: Callable[[], T], recover: Callable[[], None]) -> T:
    """Run `call` (a whole saver operation) speculatively; again exactly when a guess was stale, and again
    after `recover()` when the connection was terminated before anything was applied.

    Only the outermost `retrying` of a context retries (a nested one just calls), since only it can run
    the whole operation again.
    """
    if _retrying.get():
        return call()
    outer, attempts = _retrying.set(True), _Attempts()
    try:
        while True:
            token = _speculating.set(attempts.speculate)
            try:
                return call()
            except (Mispredicted, Resend) as exc:
                if attempts.recover_after(exc):
                    recover()
            finally:
                _speculating.reset(token)
    finally:
        _retrying.reset(outer)


async def aretrying(call: Callable[[], Awaitable[T]], recover: Callable[[], Awaitable[None]]) -> T:
    """Async `retrying` (the contexts are the calling task's)."""
    if _retrying.get():
        return await call()
    outer, attempts = _retrying.set(True), _Attempts()
    try:
        while True:
            token = _speculating.set(attempts.speculate)
            try:
                return await call()
            except (Mispredicted, Resend) as exc:
                if attempts.recover_after(exc):
                    await recover()
            finally:
                _speculating.reset(token)
    finally:
        _retrying.reset(outer)


@dataclass(slots=True)
class _Thread:
    heads: dict[str, str | None] = field(default_factory=dict)
    lease: Lease | None = None
    blobs: dict[tuple[str, str], tuple[str, Blob]] = field(default_factory=dict)
    """(namespace, channel) -> the last (version, blob) seen of that stream."""


class Knowledge:
    """What this saver last saw committed, per recently used thread: the guesses of speculative transactions.

    Only a speed-up: every guess is checked by the server before anything commits. Bounded (least recently
    used threads are dropped, blobs over 64 KiB are not kept) and thread-safe.
    """

    def __init__(self, max_threads: int = 2_000) -> None:
        self._threads: OrderedDict[str, _Thread] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_threads

    def _thread(self, thread_id: str) -> _Thread:
        known = self._threads.get(thread_id)
        if known is None:
            known = self._threads[thread_id] = _Thread()
            if len(self._threads) > self._max:
                self._threads.popitem(last=False)
        else:
            self._threads.move_to_end(thread_id)
        return known

    def head(self, thread_id: str, checkpoint_ns: str) -> str | None:
        """The guessed head (None, a new namespace, when nothing is known)."""
        with self._lock:
            known = self._threads.get(thread_id)
            return None if known is None else known.heads.get(checkpoint_ns)

    def lease(self, thread_id: str) -> Lease | None:
        """The guessed lease (None, no lease, when nothing is known)."""
        with self._lock:
            known = self._threads.get(thread_id)
            return None if known is None else known.lease

    def blob(self, thread_id: str, checkpoint_ns: str, channel: str, version: str) -> Blob | None:
        with self._lock:
            known = self._threads.get(thread_id)
            last = None if known is None else known.blobs.get((checkpoint_ns, channel))
            return last[1] if last is not None and last[0] == version else None

    def learn(self, facts: Sequence[tuple[Any, ...]]) -> None:
        """Record facts seen in a committed transaction (or a consistent read), in order."""
        with self._lock:
            for fact in facts:
                kind, thread_id = fact[0], fact[1]
                if kind == "forget":
                    self._threads.pop(thread_id, None)
                    continue
                known = self._thread(thread_id)
                if kind == "head":
                    known.heads[fact[2]] = fact[3]
                elif kind == "put":  # a checkpoint written: the head unless a newer one is known
                    old = known.heads.get(fact[2])
                    known.heads[fact[2]] = fact[3] if old is None or fact[3] > old else old
                elif kind == "lease":
                    known.lease = fact[2]
                elif kind == "blob" and len(fact[5].data) <= _MAX_KNOWN_BLOB:
                    known.blobs[(fact[2], fact[3])] = (fact[4], fact[5])
                elif kind == "blob":
                    known.blobs.pop((fact[2], fact[3]), None)

    def forget(self, thread_id: str) -> None:
        with self._lock:
            self._threads.pop(thread_id, None)


class _Batch:
    """What `BatchCursor` and `AsyncBatchCursor` share: the queue of a transaction's statements and what a
    round trip does before and after it; the two differ only in how the queued text reaches the server."""

    def __init__(self, cur: Any, prepared: set[str] | None) -> None:
        self._cur = cur
        self._prepared = prepared
        """The names prepared on the connection's session (`_prepared.prepared_on`); None: it prepares none."""
        self._head: list[str] = []
        """`PREPARE`s (and `GENERIC_PLANS`) to send before the queued statements, right after a BEGIN."""
        self._preparing: list[str] = []
        self._generic = False
        self._queue: list[str] = []
        self._expects: list[str] = []
        self.sets: list[tuple[int, list[Any]]] = []
        self.flushes = 0
        self.rows: Rows | None = None
        """Inserts merged per table (`_rows`), sent before the statement that ends a batch; None: sent as queued."""
        self._rows_sql: dict[int, str] = {}
        self._commit_next = False
        self._ending = False
        self._skip = (0, 0)
        self.ended = False
        """The transaction was committed with a read (`commit_with_next_read`): nothing more can be sent in it."""

    def commit_with_next_read(self) -> None:
        """Send the COMMIT with the next read, right after it (a read-only transaction whose reads are all queued).

        The read's result stays the last of the round trip; a statement queued afterwards raises `Mispredicted`
        (a guess of what the transaction would read was wrong: run it again exactly)."""
        self._commit_next = True

    def merge_inserts(self) -> Rows:
        """From now on, keep the transaction's inserts in `rows` (a speculative write transaction)."""
        if self.rows is None:
            text = self._cur.connection.info.parameter_status("standard_conforming_strings") == "on"
            if text:
                self._cur.adapters.register_dumper(AsciiBytes, ascii_dumper())
            self.rows = Rows(self._literal, text=text)
        return self.rows

    def _use(self, prepared: Prepared) -> Prepared:
        """Have `prepared` prepared on the connection by the time the next batch runs it."""
        assert self._prepared is not None
        if prepared.generic and not self._generic:
            self._head.append(GENERIC_PLANS)
            self._generic = True
        if prepared.name not in self._prepared and prepared.name not in self._preparing:
            self._head.append(prepared.prepare)
            self._preparing.append(prepared.name)
        return prepared

    def _literal(self, values: Sequence[Any]) -> str:
        sql = self._rows_sql.get(len(values))
        if sql is None:
            sql = self._rows_sql[len(values)] = "(" + ", ".join(["%s"] * len(values)) + ")"
        return self._cur.mogrify(sql, values)  # type: ignore[no-any-return]

    def expect(self, expression: str, params: Any, /) -> None:
        """Queue an expectation (a `graphrt_expect(...)` expression): each one a prepared statement, or, on a
        connection that prepares none, consecutive ones as one `SELECT`, which the server parses and plans once."""
        if self._prepared is not None:
            self._queue_expects()
            self._queue.append(self._cur.mogrify(self._use(_EXPECT_ALONE[expression]).execute, params))
        else:
            self._expects.append(self._cur.mogrify(expression, params))

    def _queue_expects(self) -> None:
        if self._expects:
            self._queue.append("SELECT " + ", ".join(self._expects))
            self._expects.clear()

    def queue(self, sql: str, params: Any = None) -> None:
        """Queue a statement (sent with the next round trip)."""
        if self.ended:
            raise Mispredicted()
        self._queue_expects()
        prepared = None if params is None or self._prepared is None else registered(sql)
        if prepared is None:
            self._queue.append(sql if params is None else self._cur.mogrify(sql, params))
        else:
            self._queue.append(self._cur.mogrify(self._use(prepared).execute, params))

    @property
    def pending(self) -> bool:
        return bool(self._queue or self._expects)

    def _take(self) -> str | None:
        """The text of the next round trip (None: nothing is queued); `_sent` or `_failed` follows it.

        Merged inserts (`rows`) go just before the last statement, whose result the caller reads (or the COMMIT).
        """
        self._queue_expects()
        if not self._queue:
            return None
        if self.rows is not None:
            self._queue[-1:-1] = self.rows.take()
        self._ending = self._commit_next
        if self._ending:
            self._queue.append("COMMIT")
            self._commit_next = False
        head, at = len(self._head), int(self._queue[0].startswith("BEGIN"))
        if head:
            self._queue[at:at] = self._head
            self._head.clear()
        self._skip = (at, head)
        text = ";\n".join(self._queue)
        self._queue.clear()
        self.flushes += 1
        return text

    def _failed(self, exc: BaseException) -> None:
        if getattr(exc, "sqlstate", None) in STALE_SESSION:
            give_up(self._cur.connection)
        elif self._preparing:
            doubt(self._cur.connection)  # which PREPAREs ran is asked of the server before the next one

    def _sent(self, sets: list[tuple[int, list[Any]]]) -> None:
        """Keep a round trip's results (`sets`: each statement's row count and rows)."""
        if self._preparing:
            assert self._prepared is not None
            self._prepared.update(self._preparing)
            self._preparing.clear()
        at, head = self._skip
        del sets[at : at + head]  # the PREPAREs' and SET's
        if self._ending:
            sets.pop()  # the COMMIT's
            self.ended = True
        self.sets = sets

    def _row(self) -> Any:
        rows = self.sets[-1][1]
        return rows[0] if rows else None


class BatchCursor(_Batch):
    """A DB-API face over a connection that queues statements and sends them as one query when a result is read.

    Parameters are bound on the client (`psycopg.ClientCursor.mogrify`), so a whole transaction (BEGIN, the
    thread lock, expectations, inserts, COMMIT) travels as one simple-protocol query: one round trip, and no
    per-statement exchange with the socket. A read returns the last queued statement's result; `sets` keeps
    every statement's (row count, rows) of the last round trip. The statements registered in `_prepared` are
    sent as `EXECUTE`s of statements prepared on the connection, unless it prepares none.
    """

    def __init__(self, conn: Any) -> None:
        import psycopg
        from psycopg.rows import tuple_row

        cur = psycopg.ClientCursor(conn, row_factory=tuple_row)
        super().__init__(cur, drive(prepared_on(conn, cur)))

    def execute(self, sql: str, params: Any = None, /) -> None:
        self.queue(sql, params)

    def executemany(self, sql: str, params: Any, /) -> None:
        for one in params:
            self.queue(sql, one)

    def commit(self) -> None:
        """Commit (one round trip, with what is queued) unless the transaction ended already."""
        if not self.ended:
            self.queue("COMMIT")
            self.flush()

    def flush(self) -> None:
        """Send the queued statements (one round trip) and keep their results."""
        text = self._take()
        if text is None:
            return
        cur = self._cur
        try:
            cur.execute(text)
            sets = []
            while True:
                sets.append((cur.rowcount, cur.fetchall() if cur.description is not None else []))
                if not cur.nextset():
                    break
        except BaseException as exc:
            self._failed(exc)
            raise
        self._sent(sets)

    def fetchone(self) -> Any:
        self.flush()
        return self._row()

    def fetchall(self) -> list[Any]:
        self.flush()
        return self.sets[-1][1]

    @property
    def rowcount(self) -> int:
        self.flush()
        return self.sets[-1][0]


class _Done:
    """An awaitable that is already done (None): what `AsyncBatchCursor` returns for a call that only queues,
    so the transaction bodies (`_sql._SqlBodies`), which await every cursor call they yield, need no change."""

    __slots__ = ()

    def __await__(self) -> Any:
        return iter(())


_DONE: Final = _Done()


class AsyncBatchCursor(_Batch):
    """`BatchCursor` over a psycopg `AsyncConnection`: the same batches, each round trip awaited.

    Queuing calls (`execute`, `executemany`) return at once (an awaitable already done); reads and `flush`
    are coroutines.
    """

    @classmethod
    async def open(cls, conn: Any) -> AsyncBatchCursor:
        """A batch cursor on `conn` (asks the server which statements it has prepared, when in doubt)."""
        import psycopg
        from psycopg.rows import tuple_row

        cur = psycopg.AsyncClientCursor(conn, row_factory=tuple_row)
        return cls(cur, await adrive(prepared_on(conn, cur)))

    def execute(self, sql: str, params: Any = None, /) -> _Done:
        self.queue(sql, params)
        return _DONE

    def executemany(self, sql: str, params: Any, /) -> _Done:
        for one in params:
            self.queue(sql, one)
        return _DONE

    async def commit(self) -> None:
        if not self.ended:
            self.queue("COMMIT")
            await self.flush()

    async def flush(self) -> None:
        text = self._take()
        if text is None:
            return
        cur = self._cur
        try:
            await cur.execute(text)
            sets = []
            while True:
                sets.append((cur.rowcount, await cur.fetchall() if cur.description is not None else []))
                if not cur.nextset():
                    break
        except BaseException as exc:
            self._failed(exc)
            raise
        self._sent(sets)

    async def fetchone(self) -> Any:
        await self.flush()
        return self._row()

    async def fetchall(self) -> list[Any]:
        await self.flush()
        return self.sets[-1][1]

    async def arowcount(self) -> int:
        await self.flush()
        return self.sets[-1][0]


class _PgWriteBodies(_SqlBodies):
    """The write primitives over a batch cursor (`BatchCursor` or `AsyncBatchCursor`), as transaction bodies;
    speculative when created inside `retrying()` (first try). `PgWriteTx` runs them sync, `AsyncPgWriteTx`
    on the event loop: a body yields `self.cur.flush()` (and the SQL bodies' reads) where it waits for the
    server.

    `facts` collects what the transaction saw and wrote, for `Knowledge.learn` after it commits.
    """

    __slots__ = ("_records", "facts", "knowledge", "rows", "speculative")

    def __init__(self, cur: _Batch, dialect: Dialect, knowledge: Knowledge) -> None:
        super().__init__(cur, dialect)
        self.knowledge = knowledge
        self.speculative = is_speculating()
        self.facts: list[tuple[Any, ...]] = []
        # Speculative: nothing the transaction sends reads its own inserts, so they are merged (`_rows`).
        self.rows = cur.merge_inserts() if self.speculative else None
        self._records: dict[tuple[str, str, str], tuple[str, bytes]] = {}

    # -- reads answered from knowledge, each checked by the server before commit ----------------------

    def _head(self, thread_id: str, checkpoint_ns: str) -> Body[str | None]:
        if not self.speculative:
            found = yield from super()._head(thread_id, checkpoint_ns)
        else:
            found = self.knowledge.head(thread_id, checkpoint_ns)
            self.cur.expect(_EXPECT_HEAD, (thread_id, checkpoint_ns, found))
        self.facts.append(("head", thread_id, checkpoint_ns, found))
        return found

    def _lease(self, thread_id: str) -> Body[Lease | None]:
        if not self.speculative:
            found = yield from super()._lease(thread_id)
        else:
            found = self.knowledge.lease(thread_id)
            if found is None:
                self.cur.expect(_EXPECT_NO_LEASE, (thread_id,))
            else:
                self.cur.expect(_EXPECT_LEASE, (thread_id, found.owner, found.host, found.pid, found.expires_at))
        self.facts.append(("lease", thread_id, found))
        return found

    def _blobs(
        self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]
    ) -> Body[dict[tuple[str, str], Blob]]:
        """Known blobs are checked on type, base, depth and size, not on their bytes: hashing a whole value at
        the server would make each step's cost grow with the thread. A version's bytes change only when a
        reused version number is overwritten, and the core reads only a delta base's existence and depth."""
        found: dict[tuple[str, str], Blob] = {}
        missing = list(keys)
        if self.speculative:
            missing = []
            for channel, version in keys:
                blob = self.knowledge.blob(thread_id, checkpoint_ns, channel, version)
                if blob is None:
                    missing.append((channel, version))
                    continue
                found[(channel, version)] = blob
                params = (thread_id, checkpoint_ns, channel, version, blob.type, blob.base, blob.depth, len(blob.data))
                self.cur.expect(_EXPECT_BLOB, params)
        if missing:
            found.update((yield from super()._blobs(thread_id, checkpoint_ns, missing)))
        return found

    def expect_record(self, thread_id: str, checkpoint_ns: str, base: Any) -> bool:
        """Whether a snapshot record (`base`: its `id`, `type`, `data` and SHA-256 `digest`) is taken as stored,
        checked at commit (or written by this transaction).

        Speculative transactions only (`_record.Records.checked`); False asks the caller to read it."""
        if not self.speculative:
            return False
        if self._records.get((thread_id, checkpoint_ns, base.id)) == (base.type, base.data):
            return True
        self.cur.expect(_EXPECT_RECORD, (thread_id, checkpoint_ns, base.id, base.type, base.digest))
        return True

    # -- writes whose results are expected rather than awaited -------------------------------------

    def _insert_blobs(self, thread_id: str, checkpoint_ns: str, items: Sequence[tuple[str, str, Blob]]) -> Body[int]:
        if self.rows is not None:
            for channel, version, blob in items:
                self.facts.append(("blob", thread_id, checkpoint_ns, channel, version, blob))
            self._send(self.rows.blobs(thread_id, checkpoint_ns, items))
            return len(items)
        columns: tuple[list[Any], ...] = ([], [], [], [], [], [])
        for channel, version, blob in items:
            for column, value in zip(
                columns, (channel, version, blob.type, blob.data, blob.base, blob.depth), strict=True
            ):
                column.append(value)
            self.facts.append(("blob", thread_id, checkpoint_ns, channel, version, blob))
        params = (thread_id, checkpoint_ns, *columns)
        if self.speculative:
            self.cur.execute(_INSERT_BLOBS + "SELECT graphrt_expect(count(*) = %s) FROM new", (*params, len(items)))
            return len(items)
        self.cur.execute(_INSERT_BLOBS + "SELECT count(*) FROM new", params)
        return int((yield self.cur.fetchone())[0])

    def _set_blob(self, stream: StreamKey, version: str, blob: Blob) -> Body[None]:
        self._settle()
        yield from super()._set_blob(stream, version, blob)
        self.facts.append(("blob", *stream, version, blob))

    def _put_checkpoint(self, row: CheckpointRow) -> Body[None]:
        if self.rows is not None:
            self._send(self.rows.checkpoint(row))
            self._records[(row.thread_id, row.checkpoint_ns, row.checkpoint_id)] = (row.type, row.checkpoint)
        else:
            yield from super()._put_checkpoint(row)
        self.facts.append(("put", row.thread_id, row.checkpoint_ns, row.checkpoint_id))

    def _put_writes(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, rows: Sequence[WriteRow]
    ) -> Body[None]:
        if self.rows is not None:
            self._send(self.rows.writes(thread_id, checkpoint_ns, checkpoint_id, rows))
        else:
            yield from super()._put_writes(thread_id, checkpoint_ns, checkpoint_id, rows)

    def _settle(self) -> None:
        """Send the merged inserts waiting so far before a statement that updates or deletes rows (which may
        be theirs: `prune` rewrites a head, then clears its parent)."""
        if self.rows is not None:
            self._send(self.rows.take())

    def _send(self, statements: list[str]) -> None:
        for sql in statements:
            self.cur.execute(sql)

    def _swap_lease(self, thread_id: str, expected: Lease | None, new: Lease | None) -> Body[bool]:
        self._settle()
        if expected is None and new is None:
            return (yield from self._lease(thread_id)) is None
        params: tuple[Any, ...]
        if expected is None:
            assert new is not None
            sql, params = _INSERT_LEASE, (thread_id, new.owner, new.host, new.pid, new.expires_at)
        else:
            old = (thread_id, expected.owner, -1 if expected.expires_at is None else expected.expires_at)
            if new is None:
                sql, params = _DELETE_LEASE, old
            else:
                sql, params = _UPDATE_LEASE, (new.owner, new.host, new.pid, new.expires_at, *old)
        if self.speculative:
            self.cur.execute(sql + "SELECT graphrt_expect(count(*) = 1) FROM changed", params)
            swapped = True
        else:
            self.cur.execute(sql + "SELECT count(*) FROM changed", params)
            swapped = int((yield self.cur.fetchone())[0]) == 1
        if swapped:
            self.facts.append(("lease", thread_id, new))
        return swapped

    # -- the rest are exact; those that rewrite history drop what is known of the thread ---------------

    def _delete_thread(self, thread_id: str) -> Body[None]:
        self._settle()
        yield from super()._delete_thread(thread_id)
        self.facts.append(("forget", thread_id))

    def _copy_thread(self, source: str, target: str) -> Body[None]:
        self._settle()
        yield from super()._copy_thread(source, target)
        self.facts.append(("forget", target))

    def _delete_blobs(self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]) -> Body[None]:
        self._settle()
        yield from super()._delete_blobs(thread_id, checkpoint_ns, keys)
        self.facts.append(("forget", thread_id))

    def _drop_history(self, thread_id: str, checkpoint_ns: str, keep_id: str) -> Body[None]:
        self._settle()
        yield from super()._drop_history(thread_id, checkpoint_ns, keep_id)
        self.facts.append(("forget", thread_id))


class PgWriteTx(_PgWriteBodies, SqlTx):
    """The write primitives over a `BatchCursor` (see `_PgWriteBodies`)."""

    __slots__ = ()


class AsyncPgWriteTx(_PgWriteBodies, AsyncSqlTx):
    """The write primitives over an `AsyncBatchCursor`, awaited (see `_PgWriteBodies`)."""

    __slots__ = ()


class _PgReadBodies(_SqlBodies):
    """The read primitives over a batch cursor, in one REPEATABLE READ snapshot, as transaction bodies
    (`PgReadTx` runs them sync, `AsyncPgReadTx` on the event loop).

    A checkpoint's pending writes are asked for in the same round trip as the checkpoint, and the bases of the
    blobs asked for (up to 64 KiB each) with the blobs, for the delta chains that follow; a blob found absent
    is not asked for again (the snapshot cannot change). What is read feeds `Knowledge`.

    Speculative (inside `retrying()`, first try), a read of a namespace's newest checkpoint also asks for the
    blobs `guess(thread_id, checkpoint_ns)` names (with their bases) and commits, all in one round trip: the
    saver guesses the blobs a load of the head it last committed asks for, so loading a thread this saver
    wrote costs one round trip. Answers come from the same snapshot as the head, so they are exact; a read
    the guess did not cover raises `Mispredicted` (the transaction has ended) and the load runs again exactly.
    """

    __slots__ = ("_absent", "_ahead", "_bases", "_guesses", "_pending", "knowledge")

    def __init__(
        self,
        cur: _Batch,
        dialect: Dialect,
        knowledge: Knowledge,
        guess: Callable[[str, str], list[tuple[str, str]]] | None = None,
    ) -> None:
        super().__init__(cur, dialect)
        self.knowledge = knowledge
        self._guesses = guess
        self._pending: dict[tuple[str, str, str], list[WriteRow]] = {}
        self._absent: set[tuple[str, str, str, str]] = set()
        self._bases: dict[tuple[str, str, str, str], Blob] = {}
        self._ahead: tuple[str, str, frozenset[tuple[str, str]], dict[tuple[str, str], Blob]] | None = None
        """The read-ahead's (thread, namespace, keys asked, blobs found)."""

    def _head(self, thread_id: str, checkpoint_ns: str) -> Body[str | None]:
        found = yield from super()._head(thread_id, checkpoint_ns)
        self.knowledge.learn([("head", thread_id, checkpoint_ns, found)])
        return found

    def _checkpoint(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None) -> Body[CheckpointRow | None]:
        # The writes' query is queued first, so the checkpoint's result is the last of the round trip.
        guess = self._guess(thread_id, checkpoint_ns) if checkpoint_id is None else []
        if guess:  # queued before the writes: their result and the checkpoint's stay the last two
            self._queue_blobs(thread_id, checkpoint_ns, guess)
            self.cur.commit_with_next_read()
        if checkpoint_id is None:
            self.cur.execute(_SELECT_HEAD_WRITES, (thread_id, checkpoint_ns, thread_id, checkpoint_ns))
        else:
            self.cur.execute(_SELECT_WRITES_AT, (thread_id, checkpoint_ns, checkpoint_id))
        row = yield from super()._checkpoint(thread_id, checkpoint_ns, checkpoint_id)
        if guess:
            self._ahead = (thread_id, checkpoint_ns, frozenset(guess), self._found(thread_id, checkpoint_ns, -3))
        if checkpoint_id is None:
            self.knowledge.learn([("head", thread_id, checkpoint_ns, None if row is None else row.checkpoint_id)])
        if row is not None:
            rows = self.cur.sets[-2][1]
            self._pending[(thread_id, checkpoint_ns, row.checkpoint_id)] = [
                WriteRow(r[0], r[1], r[2], r[3], bytes(r[4] or b""), r[5]) for r in rows
            ]
        return row

    def _writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> Body[list[WriteRow]]:
        cached = self._pending.pop((thread_id, checkpoint_ns, checkpoint_id), None)
        if cached is not None:
            return cached
        return (yield from super()._writes(thread_id, checkpoint_ns, checkpoint_id))

    def _guess(self, thread_id: str, checkpoint_ns: str) -> list[tuple[str, str]]:
        """The blobs a read-ahead asks for with the head (none: no read-ahead)."""
        if self._guesses is None or not is_speculating():
            return []
        guess = self._guesses(thread_id, checkpoint_ns)
        return guess if len(guess) <= _PREFETCH_KEYS else []

    def _queue_blobs(self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]) -> None:
        """Queue the read of these blobs and their bases (`_found` reads its result)."""
        params = ([ch for ch, _ in keys], [v for _, v in keys], thread_id, checkpoint_ns)
        self.cur.execute(_SELECT_BLOBS_AND_BASES, params)

    def _found(self, thread_id: str, checkpoint_ns: str, index: int) -> dict[tuple[str, str], Blob]:
        """The blobs a `_queue_blobs` read found (its result is the `index`th of the last round trip); their
        bases are kept for `chain`."""
        found: dict[tuple[str, str], Blob] = {}
        for r in self.cur.sets[index][1]:
            found[(r[0], r[1])] = Blob(r[2], bytes(r[3] or b""), r[4], r[5])
            if r[6] is not None:
                self._bases[(thread_id, checkpoint_ns, r[0], r[4])] = Blob(r[6], bytes(r[7] or b""), r[8], r[9])
        return found

    def _blobs(
        self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]
    ) -> Body[dict[tuple[str, str], Blob]]:
        ahead = self._ahead
        if ahead is not None and ahead[:2] == (thread_id, checkpoint_ns) and ahead[2].issuperset(keys):
            found = {k: blob for k in keys if (blob := ahead[3].get(k)) is not None}
        elif keys:
            self._queue_blobs(thread_id, checkpoint_ns, keys)
            yield self.cur.flush()
            found = self._found(thread_id, checkpoint_ns, -1)
        else:
            found = {}
        facts: list[tuple[Any, ...]] = []
        for channel, version in keys:
            blob = found.get((channel, version))
            if blob is None:
                self._absent.add((thread_id, checkpoint_ns, channel, version))
            else:
                facts.append(("blob", thread_id, checkpoint_ns, channel, version, blob))
        self.knowledge.learn(facts)
        return found

    def _chain(self, stream: StreamKey, version: str, stop_at: Collection[str]) -> Body[list[tuple[str, Blob]]]:
        if (*stream, version) in self._absent:
            return []
        links: list[tuple[str, Blob]] = []
        while (blob := self._bases.get((*stream, version))) is not None:
            links.append((version, blob))
            if blob.base is None or blob.base in stop_at or len(links) >= MAX_CHAIN:
                return links
            version = blob.base
        return (links + (yield from super()._chain(stream, version, stop_at)))[:MAX_CHAIN]

    def _lease(self, thread_id: str) -> Body[Lease | None]:
        found = yield from super()._lease(thread_id)
        self.knowledge.learn([("lease", thread_id, found)])
        return found


class PgReadTx(_PgReadBodies, SqlTx):
    """The read primitives over a `BatchCursor` (see `_PgReadBodies`)."""

    __slots__ = ()


class AsyncPgReadTx(_PgReadBodies, AsyncSqlTx):
    """The read primitives over an `AsyncBatchCursor`, awaited (see `_PgReadBodies`)."""

    __slots__ = ()


_PREFETCH_KEYS = 200
"""At most this many blobs are guessed by a read-ahead."""
# One statement, whatever the number of blobs: the server plans it once (a UNION ALL of lookups is planned
# branch by branch, which costs more than running it).
_SELECT_BLOBS_AND_BASES = (
    "SELECT t.channel, t.version, t.type, t.blob, t.base_version, t.depth, b.type, b.blob, b.base_version, b.depth "
    "FROM unnest(%s::text[], %s::text[]) AS k (channel, version) JOIN graphrt_checkpoint_blobs t "
    "ON t.thread_id = %s AND t.checkpoint_ns = %s AND t.channel = k.channel AND t.version = k.version "
    "LEFT JOIN graphrt_checkpoint_blobs b ON b.thread_id = t.thread_id AND b.checkpoint_ns = t.checkpoint_ns "
    "AND b.channel = t.channel AND b.version = t.base_version "
    f"AND COALESCE(octet_length(b.blob), 0) <= {_MAX_KNOWN_BLOB}"
)
_SELECT_WRITES_OF = (
    "SELECT task_id, idx, channel, type, blob, task_path FROM graphrt_checkpoint_writes "
    "WHERE thread_id = %s AND checkpoint_ns = %s AND checkpoint_id = {target}"
)
_SELECT_HEAD_WRITES = _SELECT_WRITES_OF.format(
    target="(SELECT checkpoint_id FROM graphrt_checkpoints WHERE thread_id = %s AND checkpoint_ns = %s "
    "ORDER BY checkpoint_id DESC LIMIT 1)"
)
_SELECT_WRITES_AT = _SELECT_WRITES_OF.format(target="%s")

# The fixed-shape statements of a chat turn's transactions (and of their exact retries), prepared (`_prepared`).
_EXPECT_ALONE = {
    expression: preparable("SELECT " + expression)
    for expression in (_EXPECT_HEAD, _EXPECT_NO_LEASE, _EXPECT_LEASE, _EXPECT_BLOB, _EXPECT_RECORD)
}
preparable(_SELECT_BLOBS_AND_BASES, generic=True)
for _sql in (
    _SELECT_HEAD_WRITES,
    _SELECT_WRITES_AT,
    *(_INSERT_BLOBS + end for end in ("SELECT graphrt_expect(count(*) = %s) FROM new", "SELECT count(*) FROM new")),
    *(
        change + end
        for change in (_INSERT_LEASE, _UPDATE_LEASE, _DELETE_LEASE)
        for end in ("SELECT graphrt_expect(count(*) = 1) FROM changed", "SELECT count(*) FROM changed")
    ),
    *(POSTGRES.sql(sql) for sql in (_SELECT_LATEST, _SELECT_CHECKPOINT, _SELECT_HEAD, _SELECT_LEASE)),
    POSTGRES.sql(_SELECT_HEAD_AND_LEASE),
    POSTGRES.sql(POSTGRES.lock_thread or ""),
):
    preparable(_sql)
