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
from typing import Any

from graphrt.checkpoint._core import CoreSaver
from graphrt.checkpoint._delta import MAX_CHAIN, Blob, StreamKey
from graphrt.checkpoint._dialect import POSTGRES, SQLITE, Cursor, Dialect, apply_migrations
from graphrt.checkpoint._primitives import CheckpointRow, Lease, ListQuery
from graphrt.checkpoint.base._storage import WriteRow
from graphrt.checkpoint.serde.base import SerializerProtocol

__all__ = ("MIGRATIONS", "POSTGRES", "SQLITE", "Cursor", "Dialect", "SqlSaver", "SqlTx")

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


class SqlTx:
    """The storage primitives over one DB-API cursor inside a transaction."""

    __slots__ = ("cur", "q")

    def __init__(self, cur: Cursor, dialect: Dialect) -> None:
        self.cur = cur
        self.q = dialect.sql

    def head(self, thread_id: str, checkpoint_ns: str) -> str | None:
        self.cur.execute(self.q(_SELECT_HEAD), (thread_id, checkpoint_ns))
        row = self.cur.fetchone()
        return str(row[0]) if row else None

    def checkpoint(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None) -> CheckpointRow | None:
        if checkpoint_id is None:
            self.cur.execute(self.q(_SELECT_LATEST), (thread_id, checkpoint_ns))
        else:
            self.cur.execute(self.q(_SELECT_CHECKPOINT), (thread_id, checkpoint_ns, checkpoint_id))
        row = self.cur.fetchone()
        return None if row is None else _row(row)

    def checkpoints(self, query: ListQuery) -> Iterable[CheckpointRow]:
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
        self.cur.execute(self.q(sql), params)
        return [_row(r) for r in self.cur.fetchall()]

    def blobs(self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Blob]:
        found: dict[tuple[str, str], Blob] = {}
        for start in range(0, len(keys), _PREFETCH_CHUNK):
            chunk = keys[start : start + _PREFETCH_CHUNK]
            # One primary-key lookup per pair: with an OR (or IN) of pairs SQLite picks another index and
            # scans every blob of the thread, which grows with its history.
            self.cur.execute(
                self.q(" UNION ALL ".join(_LOOKUP_BLOB for _ in chunk)),
                tuple(x for ch, v in chunk for x in (thread_id, checkpoint_ns, ch, v)),
            )
            found.update({(r[0], r[1]): _blob(r[2], r[3], r[4], r[5]) for r in self.cur.fetchall()})
        return found

    def chain(self, stream: StreamKey, version: str, stop_at: Collection[str]) -> list[tuple[str, Blob]]:
        stops = list(stop_at) or [""]
        sql = _SELECT_CHAIN.format(stops=", ".join("?" * len(stops)))
        self.cur.execute(self.q(sql), (*stream, version, *stream, MAX_CHAIN - 1, *stops))
        return [(r[0], _blob(r[1], r[2], r[3], r[4])) for r in self.cur.fetchall()]

    def writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> list[WriteRow]:
        self.cur.execute(self.q(_SELECT_WRITES), (thread_id, checkpoint_ns, checkpoint_id))
        return [WriteRow(r[0], r[1], r[2], r[3], bytes(r[4] or b""), r[5]) for r in self.cur.fetchall()]

    def lease(self, thread_id: str) -> Lease | None:
        self.cur.execute(self.q(_SELECT_LEASE), (thread_id,))
        row = self.cur.fetchone()
        return None if row is None else Lease(row[0], row[1], int(row[2]), None if row[3] is None else int(row[3]))

    def insert_blobs(self, thread_id: str, checkpoint_ns: str, items: Sequence[tuple[str, str, Blob]]) -> int:
        rows = [(thread_id, checkpoint_ns, ch, v, b.type, b.data, b.base, b.depth) for ch, v, b in items]
        self.cur.executemany(self.q(_INSERT_BLOB), rows)
        return self.cur.rowcount

    def set_blob(self, stream: StreamKey, version: str, blob: Blob) -> None:
        self.cur.execute(self.q(_UPSERT_BLOB), (*stream, version, blob.type, blob.data, blob.base, blob.depth))

    def dependents(self, stream: StreamKey, version: str) -> list[str]:
        self.cur.execute(self.q(_SELECT_DEPENDENTS), (*stream, version, version))
        return [r[0] for r in self.cur.fetchall()]

    def put_checkpoint(self, row: CheckpointRow) -> None:
        self.cur.execute(
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

    def put_writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, rows: Sequence[WriteRow]) -> None:
        for replaces in (False, True):
            batch = [
                (thread_id, checkpoint_ns, checkpoint_id, r.task_id, r.idx, r.channel, r.type, r.data, r.task_path)
                for r in rows
                if r.replaces is replaces
            ]
            if batch:
                self.cur.executemany(self.q(_UPSERT_WRITE if replaces else _INSERT_WRITE), batch)

    def delete_thread(self, thread_id: str) -> None:
        for table in _TABLES:
            self.cur.execute(self.q(f"DELETE FROM {table} WHERE thread_id = ?"), (thread_id,))

    def copy_thread(self, source: str, target: str) -> None:
        for table in _TABLES:
            self.cur.execute(self.q(_copy_statement(table)), (target, source))

    def heads(self, thread_id: str) -> dict[str, str]:
        self.cur.execute(self.q(_SELECT_HEADS), (thread_id,))
        return {r[0]: r[1] for r in self.cur.fetchall()}

    def blob_keys(self, thread_id: str, checkpoint_ns: str) -> list[tuple[str, str]]:
        self.cur.execute(
            self.q("SELECT channel, version FROM graphrt_checkpoint_blobs WHERE thread_id = ? AND checkpoint_ns = ?"),
            (thread_id, checkpoint_ns),
        )
        return [(r[0], r[1]) for r in self.cur.fetchall()]

    def delete_blobs(self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]) -> None:
        if keys:
            self.cur.executemany(
                self.q(
                    "DELETE FROM graphrt_checkpoint_blobs "
                    "WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? AND version = ?"
                ),
                [(thread_id, checkpoint_ns, ch, v) for ch, v in keys],
            )

    def drop_history(self, thread_id: str, checkpoint_ns: str, keep_id: str) -> None:
        scope = (thread_id, checkpoint_ns, keep_id)
        for table in ("graphrt_checkpoint_writes", "graphrt_checkpoints"):
            sql = f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id <> ?"
            self.cur.execute(self.q(sql), scope)
        self.cur.execute(
            self.q(
                "UPDATE graphrt_checkpoints SET parent_checkpoint_id = NULL "
                "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
            ),
            scope,
        )

    def swap_lease(self, thread_id: str, expected: Lease | None, new: Lease | None) -> bool:
        if expected is None:
            if new is None:
                return self.lease(thread_id) is None
            self.cur.execute(self.q(_INSERT_LEASE), (thread_id, new.owner, new.host, new.pid, new.expires_at))
        else:
            old = (thread_id, expected.owner, -1 if expected.expires_at is None else expected.expires_at)
            if new is None:
                self.cur.execute(self.q(_DELETE_LEASE), old)
            else:
                self.cur.execute(self.q(_UPDATE_LEASE), (new.owner, new.host, new.pid, new.expires_at, *old))
        return self.cur.rowcount == 1


class SqlSaver(CoreSaver):
    """A checkpoint saver over a SQL database; backends provide the dialect and transactions.

    Subclasses implement `_read()` (a consistent read-only snapshot) and `_write()` (a transaction
    that serializes writers, committed on exit and rolled back on error), both yielding a `Cursor`,
    and call `_migrate(cur)` lazily through them.
    """

    dialect: Dialect = SQLITE

    def __init__(self, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)

    def _read(self) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    @contextmanager
    def _read_tx(self) -> Iterator[SqlTx]:
        with self._read() as cur:
            yield SqlTx(cur, self.dialect)

    @contextmanager
    def _write_tx(self, thread_id: str | None = None) -> Iterator[SqlTx]:
        with self._write() as cur:
            if thread_id is not None and self.dialect.lock_thread is not None:
                cur.execute(self.dialect.sql(self.dialect.lock_thread), (thread_id,))
            yield SqlTx(cur, self.dialect)

    def _migrate(self, cur: Cursor) -> None:
        """Apply the migrations this database lacks (call inside a write transaction)."""
        apply_migrations(cur, self.dialect, MIGRATIONS_TABLE, MIGRATIONS)
