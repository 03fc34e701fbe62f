"""SQL checkpoint storage shared by every SQL backend: schema migrations, statements, row mapping.

`SqlSaver` holds all of a SQL saver's logic; a backend (`sqlite/`, later `postgres/`) only supplies a
`Dialect` and its connection handling: `_read()` and `_write()` transactions yielding a DB-API cursor.

Statements are written with "?" placeholders and plain ANSI SQL plus `ON CONFLICT` and recursive CTEs,
which SQLite (3.24+) and PostgreSQL both accept; `Dialect.sql` adapts the placeholders.

Tables (prefixed so they never collide with LangGraph's own tables in a shared database):

- `graphrt_checkpoints`: one row per checkpoint, without its channel values.
- `graphrt_checkpoint_blobs`: one row per (thread, namespace, channel, version): a whole value, or the
  tail appended to `base_version` (see `graphrt.checkpoint._delta`).
- `graphrt_checkpoint_writes`: pending writes, keyed by (checkpoint, task_id, idx).
- `graphrt_checkpoint_migrations`: the schema versions applied.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from graphrt._log import log_checkpoint_saved
from graphrt.checkpoint._delta import MAX_CHAIN, Blob, BrokenChainError, ChainFetcher, DeltaCodec, Memo, StreamKey
from graphrt.checkpoint._sql_threads import list_sql_threads
from graphrt.checkpoint.base._saver import BaseCheckpointSaver, check_prune_args
from graphrt.checkpoint.base._storage import (
    BlobWrite,
    PreparedPut,
    WriteRow,
    decode_metadata,
    load_checkpoint,
    make_tuple,
    matches_filter,
    prepare_put,
    prepare_writes,
    sorted_pending_writes,
)
from graphrt.checkpoint.base._threads import ThreadInfo, check_list_threads_args
from graphrt.checkpoint.base._types import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    config_thread,
    get_checkpoint_id,
    next_string_version,
)
from graphrt.checkpoint.serde.base import SerializerProtocol
from graphrt.config import RunnableConfig
from graphrt.errors import ThreadConflictError

__all__ = ("MIGRATIONS", "POSTGRES", "SQLITE", "Cursor", "Dialect", "SqlSaver")


class Cursor(Protocol):
    """The DB-API cursor methods the statements need."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...

    def executemany(self, sql: str, params: Any, /) -> Any: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between SQL databases, declared rather than sniffed."""

    name: str
    placeholder: str
    """The driver's parameter marker: "?" (sqlite3) or "%s" (psycopg)."""
    blob_type: str
    """Column type for serialized bytes."""

    def sql(self, text: str) -> str:
        """`text` with its "?" placeholders in this driver's style."""
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)


SQLITE = Dialect(name="sqlite", placeholder="?", blob_type="BLOB")
POSTGRES = Dialect(name="postgres", placeholder="%s", blob_type="BYTEA")

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
)
"""Schema migrations in order; migration i brings the schema to version i + 1. Only ever append."""

_CREATE_MIGRATIONS = "CREATE TABLE IF NOT EXISTS graphrt_checkpoint_migrations (v INTEGER PRIMARY KEY)"
_SELECT_MIGRATION = "SELECT MAX(v) FROM graphrt_checkpoint_migrations"
_INSERT_MIGRATION = "INSERT INTO graphrt_checkpoint_migrations (v) VALUES (?)"

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
_SELECT_BLOB = (
    "SELECT type, blob, base_version, depth FROM graphrt_checkpoint_blobs "
    "WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? AND version = ?"
)
_UPDATE_BLOB = (
    "UPDATE graphrt_checkpoint_blobs SET type = ?, blob = ?, base_version = ?, depth = ? "
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
"""Channel versions per prefetch query: keeps its OR chain well under SQLite's expression depth limit."""
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


class SqlSaver(BaseCheckpointSaver[str]):
    """A checkpoint saver over a SQL database; backends provide the dialect and transactions.

    Subclasses implement `_read()` (a consistent read-only snapshot) and `_write()` (a transaction
    that holds the database's write lock from its first statement, committed on exit and rolled back
    on error), both yielding a `Cursor`, and call `setup()` lazily through them.
    """

    dialect: Dialect = SQLITE

    def __init__(self, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        self._codec = DeltaCodec(self.serde)

    def _read(self) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    def _write(self) -> AbstractContextManager[Cursor]:
        raise NotImplementedError

    def _q(self, text: str) -> str:
        return self.dialect.sql(text)

    def _migrate(self, cur: Cursor) -> None:
        """Apply the migrations this database lacks (call inside a write transaction)."""
        cur.execute(_CREATE_MIGRATIONS)
        cur.execute(_SELECT_MIGRATION)
        row = cur.fetchone()
        applied = row[0] if row and row[0] is not None else 0
        for version, statements in enumerate(MIGRATIONS, start=1):
            if version <= applied:
                continue
            for statement in statements:
                cur.execute(statement.format(blob=self.dialect.blob_type))
            cur.execute(self._q(_INSERT_MIGRATION), (version,))

    # -- reading ----------------------------------------------------------------------------------

    def _fetcher(self, cur: Cursor, stream: StreamKey, first: Blob | None = None) -> ChainFetcher:
        """Reads a chain with one recursive query; `first` is the top blob when already fetched."""

        def fetch(version: str, stop_at: Collection[str]) -> list[tuple[str, Blob]]:
            stops = [s for s in stop_at] or [""]
            sql = _SELECT_CHAIN.format(stops=", ".join("?" * len(stops)))
            if first is not None:
                if first.base is None or first.base in stop_at:
                    return [(version, first)]
                chain, start = [(version, first)], first.base
            else:
                chain, start = [], version
            limit = MAX_CHAIN - len(chain)
            cur.execute(self._q(sql), (*stream, start, *stream, limit, *stops))
            chain += [(r[0], Blob(r[1], bytes(r[2] or b""), r[3], r[4])) for r in cur.fetchall()]
            return chain

        return fetch

    def _prefetch(self, cur: Cursor, thread_id: str, checkpoint_ns: str, versions: dict[str, Any]) -> dict[str, Blob]:
        """The top blobs of the channel versions the codec does not hold, a few queries for all."""
        wanted = [
            (ch, str(v)) for ch, v in versions.items() if not self._codec.knows((thread_id, checkpoint_ns, ch), str(v))
        ]
        found: dict[tuple[str, str], Blob] = {}
        for start in range(0, len(wanted), _PREFETCH_CHUNK):
            chunk = wanted[start : start + _PREFETCH_CHUNK]
            # One primary-key lookup per pair: with an OR (or IN) of pairs SQLite picks another index and
            # scans every blob of the thread, which grows with its history.
            lookup = (
                "SELECT channel, version, type, blob, base_version, depth FROM graphrt_checkpoint_blobs "
                "WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? AND version = ?"
            )
            cur.execute(
                self._q(" UNION ALL ".join(lookup for _ in chunk)),
                tuple(x for ch, v in chunk for x in (thread_id, checkpoint_ns, ch, v)),
            )
            found.update({(r[0], r[1]): Blob(r[2], bytes(r[3] or b""), r[4], r[5]) for r in cur.fetchall()})
        return {ch: found[(ch, v)] for ch, v in wanted if (ch, v) in found}

    def _load_row(
        self, cur: Cursor, row: Sequence[Any], config: RunnableConfig | None, memo: Memo | None
    ) -> CheckpointTuple:
        thread_id, checkpoint_ns, checkpoint_id, parent_id, type_, data, metadata = row
        key = (thread_id, checkpoint_ns, checkpoint_id)
        record = (type_, bytes(data))
        versions = self.serde.loads_typed(record).get("channel_versions", {})
        tops = self._prefetch(cur, thread_id, checkpoint_ns, versions)

        def fetcher_for(channel: str) -> ChainFetcher:
            return self._fetcher(cur, (thread_id, checkpoint_ns, channel), tops.get(channel))

        checkpoint = load_checkpoint(self._codec, key, record, fetcher_for, memo)
        cur.execute(self._q(_SELECT_WRITES), key)
        rows = [WriteRow(r[0], r[1], r[2], r[3], bytes(r[4] or b""), r[5]) for r in cur.fetchall()]
        pending = sorted_pending_writes(self.serde, rows)
        return make_tuple(key, checkpoint, decode_metadata(bytes(metadata)), parent_id, pending, config)

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint `config` points at (its newest if no `checkpoint_id`), or None."""
        thread_id, checkpoint_ns = config_thread(config)
        checkpoint_id = get_checkpoint_id(config)
        with self._read() as cur:
            if checkpoint_id:
                cur.execute(self._q(_SELECT_CHECKPOINT), (thread_id, checkpoint_ns, str(checkpoint_id)))
            else:
                cur.execute(self._q(_SELECT_LATEST), (thread_id, checkpoint_ns))
            row = cur.fetchone()
            if row is None:
                return None
            return self._load_row(cur, row, config if checkpoint_id else None, None)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first (see `BaseCheckpointSaver.list`), read in one snapshot."""
        wheres, params = [], []
        if config is not None:
            thread_id, _ = config_thread(config)
            wheres.append("thread_id = ?")
            params.append(thread_id)
            if (checkpoint_ns := config["configurable"].get("checkpoint_ns")) is not None:
                wheres.append("checkpoint_ns = ?")
                params.append(checkpoint_ns)
            if checkpoint_id := get_checkpoint_id(config):
                wheres.append("checkpoint_id = ?")
                params.append(checkpoint_id)
        if before is not None and (before_id := get_checkpoint_id(before)):
            wheres.append("checkpoint_id < ?")
            params.append(before_id)
        sql = f"SELECT {_CKPT_COLUMNS} FROM graphrt_checkpoints"
        sql += (" WHERE " + " AND ".join(wheres) if wheres else "") + " ORDER BY checkpoint_id DESC"
        if limit is not None and not filter:
            sql += f" LIMIT {int(limit)}"
        with self._read() as cur:
            cur.execute(self._q(sql), params)
            rows = cur.fetchall()
            out: list[CheckpointTuple] = []
            memo: Memo = {}
            for row in rows:
                if limit is not None and len(out) >= limit:
                    break
                if filter and not matches_filter(decode_metadata(bytes(row[6])), filter):
                    continue
                out.append(self._load_row(cur, row, None, memo))
        return iter(out)

    # -- writing ----------------------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Save a checkpoint in one transaction; changed channels as blobs (appended lists as deltas)."""
        prepared = prepare_put(self._codec, config, checkpoint, metadata, new_versions)
        with self._write() as cur:
            depths = self._store(cur, prepared)
        self._remember(prepared, depths)
        return prepared.config

    def get_head_id(self, config: RunnableConfig) -> str | None:
        """The id of the namespace's newest checkpoint, without loading it."""
        thread_id, checkpoint_ns = config_thread(config)
        with self._read() as cur:
            cur.execute(self._q(_SELECT_HEAD), (thread_id, checkpoint_ns))
            row = cur.fetchone()
        return str(row[0]) if row else None

    def put_guarded(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        *,
        expected_head: str | None,
    ) -> RunnableConfig:
        """`put` if the namespace's newest checkpoint is `expected_head`, checked in the same transaction.

        The transaction holds the database's write lock from its start, so the check and the insert
        are atomic across threads, processes and (for a server database) machines.

        Raises:
            ThreadConflictError: The newest checkpoint is another one; nothing was saved.
        """
        prepared = prepare_put(self._codec, config, checkpoint, metadata, new_versions)
        with self._write() as cur:
            self._lock_thread(cur, prepared.thread_id, prepared.checkpoint_ns)
            cur.execute(self._q(_SELECT_HEAD), (prepared.thread_id, prepared.checkpoint_ns))
            row = cur.fetchone()
            found = row[0] if row else None
            if found != expected_head:
                raise ThreadConflictError(
                    prepared.thread_id, prepared.checkpoint_ns, expected=expected_head, found=found
                )
            depths = self._store(cur, prepared)
        self._remember(prepared, depths)
        return prepared.config

    def _lock_thread(self, cur: Cursor, thread_id: str, checkpoint_ns: str) -> None:
        """Serialize guarded puts on one thread; SQLite's write lock already does, so a no-op here."""

    def _remember(self, prepared: PreparedPut, depths: Sequence[int]) -> None:
        for item, depth in zip(prepared.blobs, depths, strict=True):
            stream = (prepared.thread_id, prepared.checkpoint_ns, item.channel)
            self._codec.remember(stream, item.version, item.value, depth)

    def _store(self, cur: Cursor, prepared: PreparedPut) -> tuple[int, ...]:
        """Insert a prepared checkpoint's blobs and row; returns each blob's stored chain depth."""
        thread_id, checkpoint_ns = prepared.thread_id, prepared.checkpoint_ns
        blobs = [self._rebase(cur, (thread_id, checkpoint_ns, item.channel), item) for item in prepared.blobs]
        rows = [
            (thread_id, checkpoint_ns, item.channel, item.version, blob.type, blob.data, blob.base, blob.depth)
            for item, blob in zip(prepared.blobs, blobs, strict=True)
        ]
        if rows:
            cur.executemany(self._q(_INSERT_BLOB), rows)
            if cur.rowcount != len(rows):
                # Some versions were already stored (a reused version number): overwrite those that differ.
                for item, blob in zip(prepared.blobs, blobs, strict=True):
                    self._replace_blob(cur, (thread_id, checkpoint_ns, item.channel), item.version, blob)
        cur.execute(
            self._q(_UPSERT_CHECKPOINT),
            (
                thread_id,
                checkpoint_ns,
                prepared.checkpoint_id,
                prepared.parent_id,
                prepared.type,
                prepared.checkpoint,
                prepared.metadata,
            ),
        )
        log_checkpoint_saved(
            thread_id,
            checkpoint_ns,
            prepared.checkpoint_id,
            len(prepared.checkpoint) + len(prepared.metadata),
            [len(blob.data) for blob in blobs],
        )
        return tuple(blob.depth for blob in blobs)

    def _rebase(self, cur: Cursor, stream: StreamKey, item: BlobWrite) -> Blob:
        """The blob to store: a delta only while its base is still stored and its chain not full."""
        blob = item.blob
        if blob.base is None:
            return blob
        cur.execute(self._q(_SELECT_BLOB), (*stream, blob.base))
        base = cur.fetchone()
        if base is None or blob.base == item.version or base[3] + 1 >= self._codec.max_depth_for(item.value):
            return self._codec.snapshot(item.value)
        return Blob(blob.type, blob.data, blob.base, base[3] + 1)

    def _replace_blob(self, cur: Cursor, stream: StreamKey, version: str, blob: Blob) -> None:
        """Overwrite a stored version (a reused version number); deltas on it are made whole first."""
        cur.execute(self._q(_SELECT_BLOB), (*stream, version))
        old = cur.fetchone()
        if old is not None and Blob(old[0], bytes(old[1] or b""), old[2], old[3]) == blob:
            return
        self._materialise(cur, stream, version)
        cur.execute(self._q(_UPDATE_BLOB), (blob.type, blob.data, blob.base, blob.depth, *stream, version))

    def _materialise(self, cur: Cursor, stream: StreamKey, version: str) -> None:
        cur.execute(self._q(_SELECT_DEPENDENTS), (*stream, version, version))
        for (dependent,) in cur.fetchall():
            self._rewrite_whole(cur, stream, dependent)

    def _rewrite_whole(self, cur: Cursor, stream: StreamKey, version: str) -> None:
        """Store a delta version as a whole value, so it no longer needs the versions before it."""
        value = self._codec.decode(stream, version, self._fetcher(cur, stream))
        blob = self._codec.snapshot(value)
        cur.execute(self._q(_UPDATE_BLOB), (blob.type, blob.data, None, 0, *stream, version))
        self._codec.remember(stream, version, value, 0, decoded=True)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Save a task's writes, committed before returning; a repeated ordinary write is ignored."""
        self._put_writes(config, writes, task_id, task_path, guarded=False)

    def put_writes_guarded(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """`put_writes` if `config`'s checkpoint is still the namespace's newest, in the same transaction.

        Raises:
            ThreadConflictError: Another checkpoint is newer; nothing was saved.
        """
        self._put_writes(config, writes, task_id, task_path, guarded=True)

    def _put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str, *, guarded: bool
    ) -> None:
        thread_id, checkpoint_ns, checkpoint_id, rows = prepare_writes(self._codec, config, writes, task_id, task_path)
        if not rows:
            return
        with self._write() as cur:
            if guarded:
                self._lock_thread(cur, thread_id, checkpoint_ns)
                cur.execute(self._q(_SELECT_HEAD), (thread_id, checkpoint_ns))
                row = cur.fetchone()
                found = row[0] if row else None
                if found != checkpoint_id:
                    raise ThreadConflictError(thread_id, checkpoint_ns, expected=checkpoint_id, found=found)
            for replaces in (False, True):
                batch = [
                    (
                        thread_id,
                        checkpoint_ns,
                        checkpoint_id,
                        r.task_id,
                        r.idx,
                        r.channel,
                        r.type,
                        r.data,
                        r.task_path,
                    )
                    for r in rows
                    if r.replaces is replaces
                ]
                if batch:
                    cur.executemany(self._q(_UPSERT_WRITE if replaces else _INSERT_WRITE), batch)

    # -- retention --------------------------------------------------------------------------------

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, write and value of a thread, in one transaction."""
        with self._write() as cur:
            for table in _TABLES:
                cur.execute(self._q(f"DELETE FROM {table} WHERE thread_id = ?"), (str(thread_id),))
        self._codec.forget({str(thread_id)})

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread's checkpoints, writes and values to another thread id, in one transaction.

        The target keeps what it had; rows with the same keys are replaced by the source's.
        """
        source, target = str(source_thread_id), str(target_thread_id)
        if source == target:
            return
        with self._write() as cur:
            for table in _TABLES:
                cur.execute(self._q(_copy_statement(table)), (target, source))
        self._codec.forget({target})

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Shrink threads, in one transaction: "keep_latest" keeps each namespace's newest checkpoint.

        "delete" removes the threads entirely. With "keep_latest" a kept checkpoint keeps its pending
        writes, loses its (deleted) parent, and list values stored as deltas are rewritten whole.
        """
        ids = check_prune_args(thread_ids, strategy)
        if not ids:
            return
        with self._write() as cur:
            for thread_id in ids:
                if strategy == "delete":
                    for table in _TABLES:
                        cur.execute(self._q(f"DELETE FROM {table} WHERE thread_id = ?"), (thread_id,))
                else:
                    self._keep_latest(cur, thread_id)
        if strategy == "delete":
            self._codec.forget(set(ids))

    def _keep_latest(self, cur: Cursor, thread_id: str) -> None:
        cur.execute(self._q(_SELECT_HEADS), (thread_id,))
        for checkpoint_ns, head in cur.fetchall():
            cur.execute(self._q(_SELECT_CHECKPOINT), (thread_id, checkpoint_ns, head))
            row = cur.fetchone()
            versions = self.serde.loads_typed((row[4], bytes(row[5]))).get("channel_versions", {})
            kept = set()
            for channel, version in versions.items():
                stream, version = (thread_id, checkpoint_ns, channel), str(version)
                cur.execute(self._q(_SELECT_BLOB), (*stream, version))
                blob = cur.fetchone()
                if blob is None:
                    continue
                if blob[2] is not None:
                    try:
                        self._rewrite_whole(cur, stream, version)
                    except BrokenChainError:
                        continue
                kept.add((channel, version))
            scope = (thread_id, checkpoint_ns)
            cur.execute(
                self._q(
                    "SELECT channel, version FROM graphrt_checkpoint_blobs WHERE thread_id = ? AND checkpoint_ns = ?"
                ),
                scope,
            )
            garbage = [(*scope, ch, v) for ch, v in cur.fetchall() if (ch, v) not in kept]
            cur.executemany(
                self._q(
                    "DELETE FROM graphrt_checkpoint_blobs "
                    "WHERE thread_id = ? AND checkpoint_ns = ? AND channel = ? AND version = ?"
                ),
                garbage,
            )
            for table in ("graphrt_checkpoint_writes", "graphrt_checkpoints"):
                cur.execute(
                    self._q(f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id <> ?"),
                    (*scope, head),
                )
            cur.execute(
                self._q(
                    "UPDATE graphrt_checkpoints SET parent_checkpoint_id = NULL "
                    "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
                ),
                (*scope, head),
            )

    def get_next_version(self, current: str | None, channel: None) -> str:
        """The next channel version: an increasing counter plus a random part unique to this fork."""
        return next_string_version(current)

    # -- listing threads --------------------------------------------------------------------------

    def list_threads(self, *, filter: dict[str, Any] | None = None, limit: int | None = None) -> Iterator[ThreadInfo]:
        """The threads newest first (see `BaseCheckpointSaver.list_threads`), with stored sizes, in one snapshot.

        Counts and sizes come from aggregate queries; only each listed thread's head is decoded.
        """
        check_list_threads_args(limit)
        with self._read() as cur:
            return iter(list_sql_threads(cur, self._q, self.serde, filter, limit))
