"""Reading a LangGraph database: its checkpoints, pending writes and store items, as raw typed rows.

SQLite (`langgraph-checkpoint-sqlite`: tables `checkpoints`, `writes`, `store`) is read with the
standard library, read-only. PostgreSQL (`langgraph-checkpoint-postgres`: `checkpoints`,
`checkpoint_blobs`, `checkpoint_writes`, `store`) is read with psycopg when it is installed.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from graphrt.cli._backends import CliError, backend_for, redact, sqlite_path

__all__ = ("CheckpointRow", "LangGraphSource", "StoreRow", "WriteRow", "open_source")


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    """One LangGraph checkpoint, still serialized."""

    checkpoint_ns: str
    checkpoint_id: str
    parent_id: str | None
    type: str | None
    checkpoint: bytes
    metadata: bytes | str | dict[str, Any] | None
    blobs: dict[str, tuple[str | None, bytes | None]] | None = None
    """PostgreSQL keeps channel values apart: channel → (type, data) of the checkpoint's versions."""


@dataclass(frozen=True, slots=True)
class WriteRow:
    """One pending write, still serialized."""

    checkpoint_ns: str
    checkpoint_id: str
    task_id: str
    task_path: str
    idx: int
    channel: str
    type: str | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class StoreRow:
    """One store item: its namespace, key and JSON value."""

    namespace: tuple[str, ...]
    key: str
    value: Any
    ttl_minutes: float | None = None
    """Minutes left before the item expires (None: it never does)."""


class LangGraphSource(Protocol):
    """What the importer reads from a LangGraph database."""

    def thread_ids(self) -> list[str]: ...

    def checkpoints(self, thread_id: str) -> Iterator[CheckpointRow]:
        """Oldest first within each namespace."""
        ...

    def writes(self, thread_id: str) -> Iterator[WriteRow]: ...

    def store_items(self) -> Iterator[StoreRow]: ...

    def close(self) -> None: ...


class SqliteSource:
    """A LangGraph SQLite database, opened read-only."""

    def __init__(self, path: str) -> None:
        if not Path(path).exists():
            raise CliError(f"No such database file: {path}")
        try:
            self.conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            tables = {r[0] for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as exc:
            raise CliError(f"{path} is not a SQLite database ({exc})") from None
        if "checkpoints" not in tables or "writes" not in tables:
            hint = " It is a graphrt database already." if "graphrt_checkpoints" in tables else ""
            raise CliError(f"{path} is not a LangGraph database (no 'checkpoints' and 'writes' tables).{hint}")
        self.has_store = "store" in tables

    def thread_ids(self) -> list[str]:
        return [str(r[0]) for r in self.conn.execute("SELECT DISTINCT thread_id FROM checkpoints ORDER BY thread_id")]

    def checkpoints(self, thread_id: str) -> Iterator[CheckpointRow]:
        rows = self.conn.execute(
            "SELECT checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata FROM checkpoints "
            "WHERE thread_id = ? ORDER BY checkpoint_ns, checkpoint_id",
            (thread_id,),
        )
        for ns, cid, parent, type_, data, metadata in rows:
            yield CheckpointRow(ns, cid, parent, type_, bytes(data or b""), metadata)

    def writes(self, thread_id: str) -> Iterator[WriteRow]:
        rows = self.conn.execute(
            "SELECT checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, value FROM writes "
            "WHERE thread_id = ? ORDER BY checkpoint_ns, checkpoint_id, task_id, idx",
            (thread_id,),
        )
        for ns, cid, task_id, task_path, idx, channel, type_, value in rows:
            yield WriteRow(ns, cid, task_id, task_path or "", int(idx), channel, type_, value)

    def store_items(self) -> Iterator[StoreRow]:
        if not self.has_store:
            return
        import json

        # Expired items are gone as far as LangGraph's store is concerned: they are not copied.
        rows = self.conn.execute(
            "SELECT prefix, key, value, (julianday(expires_at) - julianday('now')) * 1440 FROM store "
            "WHERE expires_at IS NULL OR expires_at > datetime('now') ORDER BY prefix, key"
        )
        for prefix, key, value, left in rows:
            text = value.decode() if isinstance(value, bytes) else value
            yield StoreRow(tuple(str(prefix).split(".")), str(key), json.loads(text), left)

    def close(self) -> None:
        self.conn.close()


class PostgresSource:
    """A LangGraph PostgreSQL database, read in one read-only transaction."""

    def __init__(self, dsn: str) -> None:
        try:
            import psycopg
        except ImportError:
            raise CliError("Reading LangGraph's PostgreSQL needs psycopg: pip install 'graphrt[postgres]'") from None
        try:
            self.conn = psycopg.connect(dsn, autocommit=False)
        except Exception as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            from graphrt.cli._backends import _scrub

            raise CliError(f"Cannot reach PostgreSQL at {redact(dsn)}: {_scrub(message, dsn)}") from None
        self.conn.read_only = True
        tables = {
            r[0] for r in self.conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        }
        if not {"checkpoints", "checkpoint_blobs", "checkpoint_writes"} <= tables:
            self.conn.close()
            raise CliError(f"{redact(dsn)} is not a LangGraph database (no checkpoints/checkpoint_blobs tables)")
        self.has_store = "store" in tables

    def thread_ids(self) -> list[str]:
        return [str(r[0]) for r in self.conn.execute("SELECT DISTINCT thread_id FROM checkpoints ORDER BY thread_id")]

    def checkpoints(self, thread_id: str) -> Iterator[CheckpointRow]:
        import json

        rows = self.conn.execute(
            "SELECT checkpoint_ns, checkpoint_id, parent_checkpoint_id, checkpoint, metadata FROM checkpoints "
            "WHERE thread_id = %s ORDER BY checkpoint_ns, checkpoint_id",
            (thread_id,),
        ).fetchall()
        for ns, cid, parent, checkpoint, metadata in rows:
            versions = checkpoint.get("channel_versions") or {}
            blobs: dict[str, tuple[str | None, bytes | None]] = {}
            for channel, version in versions.items():
                found = self.conn.execute(
                    "SELECT type, blob FROM checkpoint_blobs WHERE thread_id = %s AND checkpoint_ns = %s "
                    "AND channel = %s AND version = %s",
                    (thread_id, ns, channel, str(version)),
                ).fetchone()
                if found is not None and found[0] != "empty":
                    blobs[channel] = (found[0], found[1])
            yield CheckpointRow(ns, cid, parent, "json", json.dumps(checkpoint).encode(), metadata, blobs)

    def writes(self, thread_id: str) -> Iterator[WriteRow]:
        rows = self.conn.execute(
            "SELECT checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel, type, blob FROM checkpoint_writes "
            "WHERE thread_id = %s ORDER BY checkpoint_ns, checkpoint_id, task_id, idx",
            (thread_id,),
        ).fetchall()
        for ns, cid, task_id, task_path, idx, channel, type_, value in rows:
            yield WriteRow(ns, cid, task_id, task_path or "", int(idx), channel, type_, value)

    def store_items(self) -> Iterator[StoreRow]:
        if not self.has_store:
            return
        rows = self.conn.execute(
            "SELECT prefix, key, value, EXTRACT(EPOCH FROM (expires_at - NOW())) / 60 FROM store "
            "WHERE expires_at IS NULL OR expires_at > NOW() ORDER BY prefix, key"
        )
        for prefix, key, value, left in rows:
            yield StoreRow(tuple(str(prefix).split(".")), str(key), value, None if left is None else float(left))

    def close(self) -> None:
        self.conn.close()


def open_source(target: str) -> LangGraphSource:
    """The LangGraph database `target` names (a SQLite path or a postgresql:// DSN)."""
    backend = backend_for(target)
    if backend.name == "SQLite":
        return SqliteSource(sqlite_path(target))
    if backend.name == "PostgreSQL":
        return PostgresSource(target)
    raise CliError(f"Importing from LangGraph's {backend.name} saver is not supported; use SQLite or PostgreSQL")


def select_threads(source: LangGraphSource, wanted: Sequence[str] | None) -> list[str]:
    """The source's threads, or the ones asked for (all of which must exist)."""
    available = source.thread_ids()
    if not wanted:
        return available
    missing = [t for t in wanted if t not in set(available)]
    if missing:
        raise CliError(f"No thread {', '.join(repr(t) for t in missing)} in the LangGraph database")
    return list(dict.fromkeys(wanted))
