"""The one SQL layer of graphrt: dialects, versioned migrations and transactions, for checkpoints and the store.

Statements are written once with "?" placeholders and `{blob}`/`{bigint}`/`{id}`/`{float}` column types;
a `Dialect` says how one database differs and adapts them. SQLite and PostgreSQL differ in:

- placeholders ("?" vs "%s") and column types (BLOB vs BYTEA; INTEGER vs BIGINT for microsecond
  timestamps, which overflow PostgreSQL's 32-bit INTEGER; the store's surrogate key);
- how a write transaction starts (`BEGIN IMMEDIATE` takes SQLite's file write lock up front) and how
  one thread's writers are serialized (`lock_thread`: nothing for SQLite, whose write lock is global;
  a transaction-scoped advisory lock for PostgreSQL);
- how the store's writers are serialized (`lock_store`: SQLite's write lock is global; an advisory lock for
  PostgreSQL), which text collation compares namespaces byte by byte, whether JSON filters can be pushed
  into SQL (`json_field`), and how the store notices other connections' commits (`PRAGMA data_version`;
  a counter row elsewhere: a hook of the store's backend package).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ("POSTGRES", "SQLITE", "Cursor", "Dialect", "apply_migrations", "migrations")


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
    bigint_type: str
    """Column type for 64-bit integers (microsecond timestamps, sequence numbers)."""
    id_type: str
    """Column definition of an auto-assigned 64-bit primary key."""
    float_type: str
    """Column type for a double-precision number."""
    begin_write: str
    """Statement starting a transaction that will write."""
    begin_read: str
    """Statement starting a read-only transaction with one consistent snapshot."""
    text_type: str = "TEXT"
    """Column type for text compared byte by byte (the store's namespace ranges rely on that order)."""
    lock_thread: str | None = None
    """SQL (one "?" for the thread id) run first in a write transaction to serialize one thread's
    writers until commit; None when `begin_write` already serializes all writers."""
    lazy_commit: str | None = None
    """SQL making the current transaction's commit return before it is flushed to disk (later synchronous
    commits flush it too, in order); None when commits do not wait for a flush anyway (SQLite in WAL mode
    with `synchronous=NORMAL`)."""
    lock_store: str | None = None
    """Store: SQL run first in a write transaction to serialize the store's writers (its write order and
    migrations); None when `begin_write` already serializes all writers."""
    by_seq: str = ""
    """Store: hint after the table name that makes a scan follow the `seq` index (newest first)."""
    by_storage: str = ""
    """Store: hint after the table name that makes a scan read the table in storage order (then sort)."""
    json_field: str | None = None
    """Store: SQL reading a JSON field as text-or-number, with "?" for the bound path; None: filters
    are not pushed into SQL."""
    json_type: str | None = None
    """Store: SQL naming that field's JSON type, with "?" for the bound path."""
    json_doc: str = "SELECT 1"
    """Store: the migration step adding a parsed copy of each value for filters to read (PostgreSQL's
    `doc`, a generated `jsonb` column); a statement doing nothing where filters read the text itself."""

    def sql(self, text: str) -> str:
        """`text` with its "?" placeholders in this driver's style."""
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def ddl(self, text: str) -> str:
        """A schema statement with its `{blob}`, `{bigint}`, `{id}`, `{float}` and `{text}` types (and the
        store's `{json_doc}` step) filled in."""
        types = {"blob": self.blob_type, "bigint": self.bigint_type, "id": self.id_type, "float": self.float_type}
        return text.format(**types, text=self.text_type, json_doc=self.json_doc)


SQLITE = Dialect(
    name="sqlite",
    placeholder="?",
    blob_type="BLOB",
    bigint_type="INTEGER",
    id_type="INTEGER PRIMARY KEY",
    float_type="REAL",
    begin_write="BEGIN IMMEDIATE",
    begin_read="BEGIN",
    by_seq="INDEXED BY graphrt_store_seq",
    by_storage="NOT INDEXED",
    json_field="json_extract(value, ?)",
    json_type="json_type(value, ?)",
)
POSTGRES = Dialect(
    name="postgres",
    placeholder="%s",
    blob_type="BYTEA",
    bigint_type="BIGINT",
    id_type="BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    float_type="DOUBLE PRECISION",
    text_type='TEXT COLLATE "C"',
    begin_write="BEGIN",
    begin_read="BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    lock_thread="SELECT pg_advisory_xact_lock(hashtextextended(?, 0))",
    lazy_commit="SET LOCAL synchronous_commit = off",
    lock_store="SELECT pg_advisory_xact_lock(7454148372475114085)",  # the key spells "grtstore"
    # jsonb refuses an escaped NUL ("\\u0000"), which JSON text may hold: such rows get no parsed copy.
    json_doc="ALTER TABLE graphrt_store ADD COLUMN IF NOT EXISTS doc jsonb GENERATED ALWAYS AS "
    "(CASE WHEN strpos(value, '\\u0000') > 0 THEN NULL ELSE value::jsonb END) STORED",
)
"""A starting point for the PostgreSQL backend; its package may refine it (e.g. JSON pushdown)."""


def apply_migrations(cur: Cursor, dialect: Dialect, table: str, steps: Sequence[Sequence[str]], first: int = 1) -> None:
    """Run the migration steps this database lacks, inside the caller's write transaction.

    Step i is recorded in `table` as version `first + i` once all its statements ran; only ever
    append steps. Each component keeps its own table (`graphrt_checkpoint_migrations`,
    `graphrt_store_migrations`), so one can be upgraded without the other.
    """
    from graphrt.checkpoint._drive import drive

    drive(migrations(cur, dialect, table, steps, first))


def migrations(cur: Any, dialect: Dialect, table: str, steps: Sequence[Sequence[str]], first: int = 1) -> Any:
    """`apply_migrations` as a transaction body over a sync or an async cursor (see `_drive`)."""
    yield cur.execute(f"CREATE TABLE IF NOT EXISTS {table} (v INTEGER PRIMARY KEY)")
    yield cur.execute(f"SELECT MAX(v) FROM {table}")
    row = yield cur.fetchone()
    applied = row[0] if row and row[0] is not None else first - 1
    for offset, statements in enumerate(steps):
        version = first + offset
        if version <= applied:
            continue
        for statement in statements:
            yield cur.execute(dialect.ddl(statement))
        yield cur.execute(dialect.sql(f"INSERT INTO {table} (v) VALUES (?)"), (version,))
