"""SQL checkpoint storage shared by every SQL backend: schema, statements and the primitives over them.

`SqlSaver` is the storage core (`_core.CoreSaver`) over `SqlTx`, which implements the storage
primitives (`_primitives.WriteTx`) with the statements below. A backend (`sqlite/`, `postgres/`)
only supplies a `Dialect` (`_dialect`) and its connection handling: `_read()` and `_write()`
transactions yielding a DB-API cursor.

Statements are written with "?" placeholders and plain ANSI SQL plus `ON CONFLICT` and recursive CTEs,
which SQLite (3.24+) and PostgreSQL both accept; `Dialect.sql` adapts the placeholders.

Tables (prefixed so they never collide with LangGraph's own tables in a shared database):

- `graphrt_checkpoints`: one row per checkpoint, without its channel values.
- `graphrt_checkpoint_blobs`: one row per (thread, namespace, channel, version): a whole value, or the
  tail appended to `base_version` (see `graphrt.checkpoint._delta`).
- `graphrt_checkpoint_writes`: pending writes, keyed by (checkpoint, task_id, idx).
- `graphrt_thread_leases`: which run owns each thread (see `graphrt.checkpoint._ownership`).
- `graphrt_checkpoint_migrations`: the schema versions applied.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

from graphrt.checkpoint._core import CoreSaver
from graphrt.checkpoint._delta import MAX_CHAIN, Blob, StreamKey
from graphrt.checkpoint._dialect import POSTGRES, SQLITE, Cursor, Dialect, apply_migrations
from graphrt.checkpoint._drive import Body, adrive, drive
from graphrt.checkpoint._primitives import CheckpointRow, Lease, ListQuery
from graphrt.checkpoint._sql_threads import list_sql_threads
from graphrt.checkpoint.base._storage import WriteRow
from graphrt.checkpoint.base._threads import ThreadInfo, check_list_threads_args
from graphrt.checkpoint.serde.base import SerializerProtocol

__all__ = ("MIGRATIONS", "POSTGRES", "SQLITE", "AsyncSqlTx", "Cursor", "Dialect", "SqlSaver", "SqlTx")

T = TypeVar("T")

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS graphrt_checkpoints (
            thread_id TEXT NOT NULL,
            checkpoint_ns TEXT NOT NULL DEFAULT '',
            checkpoint_id TEXT NOT NULL,
            parent_checkpoint_id TEXT,
            type TEXT NOT NULL,
            checkpoint {blob} NOT NULL,
            metadata {blob} NOT NULL,
            PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id))""",
        """CREATE TABLE IF NOT EXISTS graphrt_checkpoint_blobs (
            thread_id TEXT NOT NULL,
            checkpoint_ns TEXT NOT NULL DEFAULT '',
            channel TEXT NOT NULL,
            version TEXT NOT NULL,
            type TEXT NOT NULL,
            blob {blob},
            base_version TEXT,
            depth INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (thread_id, checkpoint_ns, channel, version))""",
        """CREATE INDEX IF NOT EXISTS graphrt_checkpoint_blobs_base
            ON graphrt_checkpoint_blobs (thread_id, checkpoint_ns, channel, base_version)""",
        """CREATE TABLE IF NOT EXISTS graphrt_checkpoint_writes (
            thread_id TEXT NOT NULL,
            checkpoint_ns TEXT NOT NULL DEFAULT '',
            checkpoint_id TEXT NOT NULL,
            task_id TEXT NOT NULL,
            idx INTEGER NOT NULL,
            channel TEXT NOT NULL,
            type TEXT NOT NULL,
            blob {blob},
            task_path TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (thread_id, checkpoint_ns, checkpoint_id, task_id, idx))""",
    ),
    (
        """CREATE TABLE IF NOT EXISTS graphrt_thread_leases (
            thread_id TEXT PRIMARY KEY,
            owner TEXT NOT NULL,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            expires_at {bigint})""",
    ),
)
"""Schema migrations in order; migration i brings the schema to version i + 1. Only ever append."""
MIGRATIONS_TABLE = "graphrt_checkpoint_migrations"

_CKPT_COLUMNS = "thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata"
_SELECT_HEAD = (
    "SELECT checkpoint_id FROM graphrt_checkpoints WHERE thread_id = ? AND checkpoint_ns = ? "
    "ORDER BY checkpoint_id DESC LIMIT 1"
)
_SELECT_CHECKPOINT = (
    f"SELECT {_CKPT_COLUMNS} FROM graphrt_checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
)
_HAS_RECORD = (
    "SELECT 1 FROM graphrt_checkpoints WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ? "
    "AND type = ? AND checkpoint = ?"
)
_SELECT_LATEST = (
    f"SELECT {_CKPT_COLUMNS} FROM graphrt_checkpoints WHERE thread_id = ? AND checkpoint_ns = ? "
    "ORDER BY checkpoint_id DESC LIMIT 1"
)
_UPSERT_CHECKPOINT = (
    f"INSERT INTO graphrt_checkpoints ({_CKPT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET "
    "parent_checkpoint_id = excluded.parent_checkpoint_id, type = excluded.type, "
    "checkpoint = excluded.checkpoint, metadata = excluded.metadata"
)
_BLOB_COLUMNS = "thread_id, checkpoint_ns, channel, version, type, blob, base_version, depth"
_INSERT_BLOB = (
    f"INSERT INTO graphrt_checkpoint_blobs ({_BLOB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING"
)
_UPSERT_BLOB = (
    f"INSERT INTO graphrt_checkpoint_blobs ({_BLOB_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO UPDATE SET "
    "type = excluded.type, blob = excluded.blob, base_version = excluded.base_version, depth = excluded.depth"
)
_LOOKUP_BLOB = (
    "SELECT channel, version, type, blob, base_version, depth FROM graphrt_checkpoint_blobs "
    "WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? AND version = ?"
)
_LOOKUP_BLOB_AND_BASE = (
    "SELECT t.channel, t.version, t.type, t.blob, t.base_version, t.depth, b.type, b.blob, b.base_version, b.depth "
    "FROM graphrt_checkpoint_blobs t LEFT JOIN graphrt_checkpoint_blobs b ON b.thread_id = t.thread_id "
    "AND b.checkpoint_ns = t.checkpoint_ns AND b.channel = t.channel AND b.version = t.base_version "
    "WHERE t.thread_id = ? AND t.checkpoint_ns = ? AND t.channel = ? AND t.version = ?"
)
_SELECT_DEPENDENTS = (
    "SELECT version FROM graphrt_checkpoint_blobs "
    "WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? AND base_version = ? AND version <> ?"
)
# The recursive part stops at a blob whose base the caller already holds (the NOT IN list), at a
# whole value (NULL base), or after MAX_CHAIN links (a guard against cycles).
_SELECT_CHAIN = """
WITH RECURSIVE chain (version, type, blob, base_version, depth, n) AS (
    SELECT version, type, blob, base_version, depth, 0 FROM graphrt_checkpoint_blobs
    WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? AND version = ?
    UNION ALL
    SELECT b.version, b.type, b.blob, b.base_version, b.depth, chain.n + 1
    FROM chain JOIN graphrt_checkpoint_blobs b
    ON b.thread_id = ? AND b.checkpoint_ns = ? AND b.channel = ? AND b.version = chain.base_version
    WHERE chain.n < ? AND chain.base_version NOT IN ({stops})
)
SELECT version, type, blob, base_version, depth FROM chain ORDER BY n"""
_WRITE_COLUMNS = "thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, task_path"
_INSERT_WRITE = (
    f"INSERT INTO graphrt_checkpoint_writes ({_WRITE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO NOTHING"
)
_UPSERT_WRITE = (
    f"INSERT INTO graphrt_checkpoint_writes ({_WRITE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE SET "
    "channel = excluded.channel, type = excluded.type, blob = excluded.blob, task_path = excluded.task_path"
)
_SELECT_WRITES = (
    "SELECT task_id, idx, channel, type, blob, task_path FROM graphrt_checkpoint_writes "
    "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
)
_SELECT_LEASE = "SELECT owner, host, pid, expires_at FROM graphrt_thread_leases WHERE thread_id = ?"
_SELECT_HEAD_AND_LEASE = (
    "SELECT (SELECT checkpoint_id FROM graphrt_checkpoints WHERE thread_id = ? AND checkpoint_ns = ? "
    "ORDER BY checkpoint_id DESC LIMIT 1), l.owner, l.host, l.pid, l.expires_at "
    "FROM (SELECT 1 AS one) AS single LEFT JOIN graphrt_thread_leases AS l ON l.thread_id = ?"
)
_INSERT_LEASE = (
    "INSERT INTO graphrt_thread_leases (thread_id, owner, host, pid, expires_at) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (thread_id) DO NOTHING"
)
_UPDATE_LEASE = (
    "UPDATE graphrt_thread_leases SET owner = ?, host = ?, pid = ?, expires_at = ? "
    "WHERE thread_id = ? AND owner = ? AND COALESCE(expires_at, -1) = ?"
)
_DELETE_LEASE = "DELETE FROM graphrt_thread_leases WHERE thread_id = ? AND owner = ? AND COALESCE(expires_at, -1) = ?"
_TABLES = ("graphrt_checkpoints", "graphrt_checkpoint_blobs", "graphrt_checkpoint_writes")
_COPY = {
    "graphrt_checkpoints": _CKPT_COLUMNS,
    "graphrt_checkpoint_blobs": _BLOB_COLUMNS,
    "graphrt_checkpoint_writes": _WRITE_COLUMNS,
}
_KEYS = {
    "graphrt_checkpoints": "thread_id, checkpoint_ns, checkpoint_id",
    "graphrt_checkpoint_blobs": "thread_id, checkpoint_ns, channel, version",
    "graphrt_checkpoint_writes": "thread_id, checkpoint_ns, checkpoint_id, task_id, idx",
}
_PREFETCH_CHUNK = 200
"""Blob lookups per query: keeps the statement well under SQLite's expression depth limit."""
_SELECT_HEADS = (
    "SELECT checkpoint_ns, MAX(checkpoint_id) FROM graphrt_checkpoints WHERE thread_id = ? GROUP BY checkpoint_ns"
)


def _copy_statement(table: str) -> str:
    """INSERT ... SELECT of one table's rows of a thread under another thread id, replacing clashes."""
    columns = _COPY[table]
    keys = {k.strip() for k in _KEYS[table].split(",")}
    rest = [c.strip() for c in columns.split(",") if c.strip() not in keys]
    select = columns.replace("thread_id", "?", 1)
    updates = ", ".join(f"{c} = excluded.{c}" for c in rest)
    # "WHERE" before ON CONFLICT keeps SQLite from reading it as a join constraint.
    return (
        f"INSERT INTO {table} ({columns}) SELECT {select} FROM {table} WHERE thread_id = ? "
        f"ON CONFLICT ({_KEYS[table]}) DO UPDATE SET {updates}"
    )


def _row(r: Sequence[Any]) -> CheckpointRow:
    return CheckpointRow(r[0], r[1], r[2], r[3], r[4], bytes(r[5]), bytes(r[6]))


def _blob(type_: str, data: Any, base: str | None, depth: int) -> Blob:
    return Blob(type_, bytes(data or b""), base, depth)


class _SqlBodies:
    """The storage primitives as transaction bodies (`_drive`) over one cursor, sync or async.

    Each body yields its cursor calls (`yield self.cur.execute(...)`, `rows = yield self.cur.fetchall()`),
    so the same statements and row handling serve a DB-API cursor (`SqlTx`) and an async one (`AsyncSqlTx`).
    """

    __slots__ = ("cur", "lazy", "q")

    def __init__(self, cur: Any, dialect: Dialect) -> None:
        self.cur = cur
        self.q = dialect.sql
        self.lazy = dialect.lazy_commit

    def _rowcount(self) -> Any:
        """The last statement's row count (a value, or an awaitable of it)."""
        raise NotImplementedError

    def _head(self, thread_id: str, checkpoint_ns: str) -> Body[str | None]:
        yield self.cur.execute(self.q(_SELECT_HEAD), (thread_id, checkpoint_ns))
        row = yield self.cur.fetchone()
        return str(row[0]) if row else None

    def _checkpoint(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None) -> Body[CheckpointRow | None]:
        if checkpoint_id is None:
            yield self.cur.execute(self.q(_SELECT_LATEST), (thread_id, checkpoint_ns))
        else:
            yield self.cur.execute(self.q(_SELECT_CHECKPOINT), (thread_id, checkpoint_ns, checkpoint_id))
        row = yield self.cur.fetchone()
        return None if row is None else _row(row)

    def _has_record(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, type_: str, data: bytes
    ) -> Body[bool]:
        yield self.cur.execute(self.q(_HAS_RECORD), (thread_id, checkpoint_ns, checkpoint_id, type_, data))
        return (yield self.cur.fetchone()) is not None

    def _checkpoints(self, query: ListQuery) -> Body[list[CheckpointRow]]:
        wheres: list[str] = []
        params: list[Any] = []
        for column, op, value in (
            ("thread_id", "=", query.thread_id),
            ("checkpoint_ns", "=", query.checkpoint_ns),
            ("checkpoint_id", "=", query.checkpoint_id),
            ("checkpoint_id", "<", query.before),
        ):
            if value is not None and (value or column != "checkpoint_id"):
                wheres.append(f"{column} {op} ?")
                params.append(value)
        sql = f"SELECT {_CKPT_COLUMNS} FROM graphrt_checkpoints"
        sql += (" WHERE " + " AND ".join(wheres) if wheres else "") + " ORDER BY checkpoint_id DESC"
        if query.limit is not None:
            sql += f" LIMIT {int(query.limit)}"
        yield self.cur.execute(self.q(sql), params)
        return [_row(r) for r in (yield self.cur.fetchall())]

    def _lookup_pairs(
        self, lookup: str, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]
    ) -> Body[list[Any]]:
        """The rows of `lookup` (one statement per (channel, version) pair) for every pair, in chunks."""
        rows: list[Any] = []
        for start in range(0, len(keys), _PREFETCH_CHUNK):
            chunk = keys[start : start + _PREFETCH_CHUNK]
            # One primary-key lookup per pair: with an OR (or IN) of pairs SQLite picks another index and
            # scans every blob of the thread, which grows with its history.
            yield self.cur.execute(
                self.q(" UNION ALL ".join(lookup for _ in chunk)),
                tuple(x for ch, v in chunk for x in (thread_id, checkpoint_ns, ch, v)),
            )
            rows += yield self.cur.fetchall()
        return rows

    def _blobs(
        self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]
    ) -> Body[dict[tuple[str, str], Blob]]:
        rows = yield from self._lookup_pairs(_LOOKUP_BLOB, thread_id, checkpoint_ns, keys)
        return {(r[0], r[1]): _blob(r[2], r[3], r[4], r[5]) for r in rows}

    def _blobs_with_bases(
        self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]
    ) -> Body[tuple[dict[tuple[str, str], Blob], dict[tuple[str, str], Blob]]]:
        found: dict[tuple[str, str], Blob] = {}
        bases: dict[tuple[str, str], Blob] = {}
        for r in (yield from self._lookup_pairs(_LOOKUP_BLOB_AND_BASE, thread_id, checkpoint_ns, keys)):
            found[(r[0], r[1])] = _blob(r[2], r[3], r[4], r[5])
            if r[6] is not None:
                bases[(r[0], r[4])] = _blob(r[6], r[7], r[8], r[9])
        return found, bases

    def _chain(self, stream: StreamKey, version: str, stop_at: Collection[str]) -> Body[list[tuple[str, Blob]]]:
        stops = list(stop_at) or [""]
        sql = _SELECT_CHAIN.format(stops=", ".join("?" * len(stops)))
        yield self.cur.execute(self.q(sql), (*stream, version, *stream, MAX_CHAIN - 1, *stops))
        return [(r[0], _blob(r[1], r[2], r[3], r[4])) for r in (yield self.cur.fetchall())]

    def _writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> Body[list[WriteRow]]:
        yield self.cur.execute(self.q(_SELECT_WRITES), (thread_id, checkpoint_ns, checkpoint_id))
        return [WriteRow(r[0], r[1], r[2], r[3], bytes(r[4] or b""), r[5]) for r in (yield self.cur.fetchall())]

    def _lease(self, thread_id: str) -> Body[Lease | None]:
        yield self.cur.execute(self.q(_SELECT_LEASE), (thread_id,))
        row = yield self.cur.fetchone()
        return None if row is None else Lease(row[0], row[1], int(row[2]), None if row[3] is None else int(row[3]))

    def _head_and_lease(self, thread_id: str, checkpoint_ns: str) -> Body[tuple[str | None, Lease | None]]:
        yield self.cur.execute(self.q(_SELECT_HEAD_AND_LEASE), (thread_id, checkpoint_ns, thread_id))
        head, owner, host, pid, expires_at = yield self.cur.fetchone()
        lease = None if owner is None else Lease(owner, host, int(pid), None if expires_at is None else int(expires_at))
        return (None if head is None else str(head)), lease

    def _insert_blobs(self, thread_id: str, checkpoint_ns: str, items: Sequence[tuple[str, str, Blob]]) -> Body[int]:
        rows = [(thread_id, checkpoint_ns, ch, v, b.type, b.data, b.base, b.depth) for ch, v, b in items]
        yield self.cur.executemany(self.q(_INSERT_BLOB), rows)
        count: int = yield self._rowcount()
        return count

    def _set_blob(self, stream: StreamKey, version: str, blob: Blob) -> Body[None]:
        yield self.cur.execute(self.q(_UPSERT_BLOB), (*stream, version, blob.type, blob.data, blob.base, blob.depth))

    def _dependents(self, stream: StreamKey, version: str) -> Body[list[str]]:
        yield self.cur.execute(self.q(_SELECT_DEPENDENTS), (*stream, version, version))
        return [r[0] for r in (yield self.cur.fetchall())]

    def _put_checkpoint(self, row: CheckpointRow) -> Body[None]:
        yield self.cur.execute(
            self.q(_UPSERT_CHECKPOINT),
            (
                row.thread_id,
                row.checkpoint_ns,
                row.checkpoint_id,
                row.parent_id,
                row.type,
                row.checkpoint,
                row.metadata,
            ),
        )

    def _put_writes(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, rows: Sequence[WriteRow]
    ) -> Body[None]:
        for replaces in (False, True):
            batch = [
                (thread_id, checkpoint_ns, checkpoint_id, r.task_id, r.idx, r.channel, r.type, r.data, r.task_path)
                for r in rows
                if r.replaces is replaces
            ]
            if batch:
                yield self.cur.executemany(self.q(_UPSERT_WRITE if replaces else _INSERT_WRITE), batch)

    def _delete_thread(self, thread_id: str) -> Body[None]:
        for table in _TABLES:
            yield self.cur.execute(self.q(f"DELETE FROM {table} WHERE thread_id = ?"), (thread_id,))

    def _copy_thread(self, source: str, target: str) -> Body[None]:
        for table in _TABLES:
            yield self.cur.execute(self.q(_copy_statement(table)), (target, source))

    def _heads(self, thread_id: str) -> Body[dict[str, str]]:
        yield self.cur.execute(self.q(_SELECT_HEADS), (thread_id,))
        return {r[0]: r[1] for r in (yield self.cur.fetchall())}

    def _blob_keys(self, thread_id: str, checkpoint_ns: str) -> Body[list[tuple[str, str]]]:
        yield self.cur.execute(
            self.q("SELECT channel, version FROM graphrt_checkpoint_blobs WHERE thread_id = ? AND checkpoint_ns = ?"),
            (thread_id, checkpoint_ns),
        )
        return [(r[0], r[1]) for r in (yield self.cur.fetchall())]

    def _delete_blobs(self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]) -> Body[None]:
        if keys:
            yield self.cur.executemany(
                self.q(
                    "DELETE FROM graphrt_checkpoint_blobs "
                    "WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? AND version = ?"
                ),
                [(thread_id, checkpoint_ns, ch, v) for ch, v in keys],
            )

    def _drop_history(self, thread_id: str, checkpoint_ns: str, keep_id: str) -> Body[None]:
        scope = (thread_id, checkpoint_ns, keep_id)
        for table in ("graphrt_checkpoint_writes", "graphrt_checkpoints"):
            sql = f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id <> ?"
            yield self.cur.execute(self.q(sql), scope)
        yield self.cur.execute(
            self.q(
                "UPDATE graphrt_checkpoints SET parent_checkpoint_id = NULL "
                "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
            ),
            scope,
        )

    def _commit_lazily(self) -> Body[None]:
        if self.lazy is not None:
            yield self.cur.execute(self.lazy)

    def _swap_lease(self, thread_id: str, expected: Lease | None, new: Lease | None) -> Body[bool]:
        if expected is None:
            if new is None:
                return (yield from self._lease(thread_id)) is None
            yield self.cur.execute(self.q(_INSERT_LEASE), (thread_id, new.owner, new.host, new.pid, new.expires_at))
        else:
            old = (thread_id, expected.owner, -1 if expected.expires_at is None else expected.expires_at)
            if new is None:
                yield self.cur.execute(self.q(_DELETE_LEASE), old)
            else:
                yield self.cur.execute(self.q(_UPDATE_LEASE), (new.owner, new.host, new.pid, new.expires_at, *old))
        count: int = yield self._rowcount()
        return count == 1

    def _threads(
        self, serde: SerializerProtocol, filter: dict[str, Any] | None, limit: int | None
    ) -> Body[list[ThreadInfo]]:
        return (yield from list_sql_threads(self.cur, self.q, serde, filter, limit))


class SqlTx(_SqlBodies):
    """The storage primitives (`WriteTx`) over one DB-API cursor inside a transaction."""

    __slots__ = ()

    def _rowcount(self) -> int:
        return self.cur.rowcount  # type: ignore[no-any-return]

    def head(self, thread_id: str, checkpoint_ns: str) -> str | None:
        return drive(self._head(thread_id, checkpoint_ns))

    def checkpoint(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None) -> CheckpointRow | None:
        return drive(self._checkpoint(thread_id, checkpoint_ns, checkpoint_id))

    def checkpoints(self, query: ListQuery) -> Iterable[CheckpointRow]:
        return drive(self._checkpoints(query))

    def has_record(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, type_: str, data: bytes) -> bool:
        """Whether a checkpoint is stored with this record (type and bytes), compared by the database.

        An extra primitive the record deltas use when a transaction has it (`_record.Records.checked`)."""
        return drive(self._has_record(thread_id, checkpoint_ns, checkpoint_id, type_, data))

    def blobs(self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Blob]:
        return drive(self._blobs(thread_id, checkpoint_ns, keys))

    def chain(self, stream: StreamKey, version: str, stop_at: Collection[str]) -> list[tuple[str, Blob]]:
        return drive(self._chain(stream, version, stop_at))

    def writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> list[WriteRow]:
        return drive(self._writes(thread_id, checkpoint_ns, checkpoint_id))

    def lease(self, thread_id: str) -> Lease | None:
        return drive(self._lease(thread_id))

    def insert_blobs(self, thread_id: str, checkpoint_ns: str, items: Sequence[tuple[str, str, Blob]]) -> int:
        return drive(self._insert_blobs(thread_id, checkpoint_ns, items))

    def set_blob(self, stream: StreamKey, version: str, blob: Blob) -> None:
        drive(self._set_blob(stream, version, blob))

    def dependents(self, stream: StreamKey, version: str) -> list[str]:
        return drive(self._dependents(stream, version))

    def put_checkpoint(self, row: CheckpointRow) -> None:
        drive(self._put_checkpoint(row))

    def put_writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, rows: Sequence[WriteRow]) -> None:
        drive(self._put_writes(thread_id, checkpoint_ns, checkpoint_id, rows))

    def delete_thread(self, thread_id: str) -> None:
        drive(self._delete_thread(thread_id))

    def copy_thread(self, source: str, target: str) -> None:
        drive(self._copy_thread(source, target))

    def heads(self, thread_id: str) -> dict[str, str]:
        return drive(self._heads(thread_id))

    def blob_keys(self, thread_id: str, checkpoint_ns: str) -> list[tuple[str, str]]:
        return drive(self._blob_keys(thread_id, checkpoint_ns))

    def delete_blobs(self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]) -> None:
        drive(self._delete_blobs(thread_id, checkpoint_ns, keys))

    def drop_history(self, thread_id: str, checkpoint_ns: str, keep_id: str) -> None:
        drive(self._drop_history(thread_id, checkpoint_ns, keep_id))

    def swap_lease(self, thread_id: str, expected: Lease | None, new: Lease | None) -> bool:
        return drive(self._swap_lease(thread_id, expected, new))

    def commit_lazily(self) -> None:
        """Let this transaction's commit return before it reaches the disk (`Dialect.lazy_commit`; a thread
        claim's transaction, see `_ownership.claim_on`). An extra primitive, used when a transaction has it."""
        drive(self._commit_lazily())

    def threads(self, serde: SerializerProtocol, filter: dict[str, Any] | None, limit: int | None) -> list[ThreadInfo]:
        """`list_threads`' rows (SQL savers only: aggregate queries, in this transaction)."""
        return drive(self._threads(serde, filter, limit))


class LoadSqlTx(SqlTx):
    """`SqlTx` whose blob reads for a load bring each delta's base along (one statement, not two).

    An extra primitive the storage core uses when a read transaction has it (`CoreSaver._load`); PostgreSQL's
    reads guess ahead their own way (`postgres._pipeline`).
    """

    __slots__ = ()

    def blobs_with_bases(
        self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], Blob], dict[tuple[str, str], Blob]]:
        """`blobs`, and the stored blob each found delta extends, keyed by (channel, base version)."""
        return drive(self._blobs_with_bases(thread_id, checkpoint_ns, keys))


class GuardSqlTx(SqlTx):
    """`SqlTx` whose guard reads (the head and the lease of a guarded put) are one statement.

    An extra primitive the storage core uses when a transaction has it (`CoreSaver._check`); transactions
    that answer `head` and `lease` otherwise (PostgreSQL's speculative batches) keep doing so.
    """

    __slots__ = ()

    def head_and_lease(self, thread_id: str, checkpoint_ns: str) -> tuple[str | None, Lease | None]:
        """`head` and `lease`, read in one statement."""
        return drive(self._head_and_lease(thread_id, checkpoint_ns))


class AsyncSqlTx(_SqlBodies):
    """The storage primitives (`AsyncWriteTx`) over one async cursor (psycopg's) inside a transaction.

    The cursor may be pipelined: its `rowcount()` is then a coroutine that waits for the results.
    """

    __slots__ = ()

    def _rowcount(self) -> Any:
        count = getattr(self.cur, "arowcount", None)
        return count() if count is not None else _ready(self.cur.rowcount)

    async def head(self, thread_id: str, checkpoint_ns: str) -> str | None:
        return await adrive(self._head(thread_id, checkpoint_ns))

    async def checkpoint(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None) -> CheckpointRow | None:
        return await adrive(self._checkpoint(thread_id, checkpoint_ns, checkpoint_id))

    async def checkpoints(self, query: ListQuery) -> Iterable[CheckpointRow]:
        return await adrive(self._checkpoints(query))

    async def has_record(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, type_: str, data: bytes) -> bool:
        """`SqlTx.has_record`, awaited."""
        return await adrive(self._has_record(thread_id, checkpoint_ns, checkpoint_id, type_, data))

    async def blobs(
        self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], Blob]:
        return await adrive(self._blobs(thread_id, checkpoint_ns, keys))

    async def chain(self, stream: StreamKey, version: str, stop_at: Collection[str]) -> list[tuple[str, Blob]]:
        return await adrive(self._chain(stream, version, stop_at))

    async def writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> list[WriteRow]:
        return await adrive(self._writes(thread_id, checkpoint_ns, checkpoint_id))

    async def lease(self, thread_id: str) -> Lease | None:
        return await adrive(self._lease(thread_id))

    async def insert_blobs(self, thread_id: str, checkpoint_ns: str, items: Sequence[tuple[str, str, Blob]]) -> int:
        return await adrive(self._insert_blobs(thread_id, checkpoint_ns, items))

    async def set_blob(self, stream: StreamKey, version: str, blob: Blob) -> None:
        await adrive(self._set_blob(stream, version, blob))

    async def dependents(self, stream: StreamKey, version: str) -> list[str]:
        return await adrive(self._dependents(stream, version))

    async def put_checkpoint(self, row: CheckpointRow) -> None:
        await adrive(self._put_checkpoint(row))

    async def put_writes(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, rows: Sequence[WriteRow]
    ) -> None:
        await adrive(self._put_writes(thread_id, checkpoint_ns, checkpoint_id, rows))

    async def delete_thread(self, thread_id: str) -> None:
        await adrive(self._delete_thread(thread_id))

    async def copy_thread(self, source: str, target: str) -> None:
        await adrive(self._copy_thread(source, target))

    async def heads(self, thread_id: str) -> dict[str, str]:
        return await adrive(self._heads(thread_id))

    async def blob_keys(self, thread_id: str, checkpoint_ns: str) -> list[tuple[str, str]]:
        return await adrive(self._blob_keys(thread_id, checkpoint_ns))

    async def delete_blobs(self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]) -> None:
        await adrive(self._delete_blobs(thread_id, checkpoint_ns, keys))

    async def drop_history(self, thread_id: str, checkpoint_ns: str, keep_id: str) -> None:
        await adrive(self._drop_history(thread_id, checkpoint_ns, keep_id))

    async def swap_lease(self, thread_id: str, expected: Lease | None, new: Lease | None) -> bool:
        return await adrive(self._swap_lease(thread_id, expected, new))

    async def commit_lazily(self) -> None:
        """`SqlTx.commit_lazily`, awaited."""
        await adrive(self._commit_lazily())

    async def threads(
        self, serde: SerializerProtocol, filter: dict[str, Any] | None, limit: int | None
    ) -> list[ThreadInfo]:
        """`SqlTx.threads`, awaited."""
        return await adrive(self._threads(serde, filter, limit))


async def _ready(value: T) -> T:
    return value


class SqlSaver(CoreSaver):
    """A checkpoint saver over a SQL database; backends provide the dialect and transactions.

    Subclasses implement `_read()` (a consistent read-only snapshot) and `_write()` (a transaction
    that serializes writers, committed on exit and rolled back on error), both yielding a `Cursor`,
    and call `_migrate(cur)` lazily through them.
    """

    dialect: Dialect = SQLITE
    record_deltas = True

    def __init__(self, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)

    def _read(self) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    @contextmanager
    def _read_tx(self) -> Iterator[SqlTx]:
        with self._read() as cur:
            yield LoadSqlTx(cur, self.dialect)

    @contextmanager
    def _write_tx(self, thread_id: str | None = None) -> Iterator[SqlTx]:
        with self._write() as cur:
            if thread_id is not None and self.dialect.lock_thread is not None:
                cur.execute(self.dialect.sql(self.dialect.lock_thread), (thread_id,))
            yield GuardSqlTx(cur, self.dialect)

    def list_threads(self, *, filter: dict[str, Any] | None = None, limit: int | None = None) -> Iterator[ThreadInfo]:
        """The threads newest first (see `BaseCheckpointSaver.list_threads`), with stored sizes, in one snapshot.

        Counts and sizes come from aggregate queries; only each listed thread's head is decoded.
        """
        check_list_threads_args(limit)
        with self._read_tx() as tx:
            return iter(tx.threads(self.serde, filter, limit))

    def _migrate(self, cur: Cursor) -> None:
        """Apply the migrations this database lacks (call inside a write transaction)."""
        apply_migrations(cur, self.dialect, MIGRATIONS_TABLE, MIGRATIONS)
