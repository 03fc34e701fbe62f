"""The inserts of a speculative PostgreSQL write transaction, merged: one statement per table per batch.

A group commit saves many steps in one transaction; inserted one statement per row, the server parses and
plans each (a step's checkpoint, writes and blobs cost it a few hundred microseconds). Inserts into one
table do not depend on each other, and nothing a speculative transaction sends reads them (its reads are
answered from what was committed before, or from the transaction's own writes in `_core._GroupTx`), so
their rows are kept here and sent as one multi-row `INSERT` per table, just before the statement whose
result ends the batch (its `COMMIT`, or a read), or before a statement that updates or deletes rows. A row
whose key is already waiting in an upsert sends the waiting rows first: an upsert may not touch a row twice.

Bytes that are ASCII text (JSON: records, metadata, most values) travel as an escaped string literal
rather than hex, which halves what the server parses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from graphrt.checkpoint._delta import Blob
from graphrt.checkpoint._primitives import CheckpointRow
from graphrt.checkpoint.base._storage import WriteRow

__all__ = ("AsciiBytes", "Rows", "ascii_dumper")


class AsciiBytes:
    """Bytes known to be ASCII without NUL: sent as a `'...'::bytea` literal (see `ascii_dumper`)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


def ascii_dumper() -> type:
    """psycopg's dumper of `AsciiBytes` (a class made on first use: psycopg is an optional dependency).

    bytea's escape input format reads every byte as itself except the backslash, which is doubled; the
    literal's quotes are doubled as in any string (the server must have `standard_conforming_strings` on).
    """
    global _DUMPER
    if _DUMPER is None:
        from psycopg.adapt import Dumper

        class _AsciiDumper(Dumper):
            def dump(self, obj: AsciiBytes) -> bytes:
                return obj.data

            def quote(self, obj: AsciiBytes) -> bytes:
                return b"'" + obj.data.replace(b"\\", b"\\\\").replace(b"'", b"''") + b"'::bytea"

        _DUMPER = _AsciiDumper
    return _DUMPER


_DUMPER: type | None = None


def as_text(data: bytes) -> Any:
    """`data` as an `AsciiBytes` when it can travel as text, else as is."""
    return AsciiBytes(data) if data.isascii() and b"\x00" not in data else data


def _as_is(data: bytes) -> Any:
    return data


_CHECKPOINTS: Final = (
    "INSERT INTO graphrt_checkpoints "
    "(thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata) VALUES ",
    " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id) DO UPDATE SET "
    "parent_checkpoint_id = excluded.parent_checkpoint_id, type = excluded.type, "
    "checkpoint = excluded.checkpoint, metadata = excluded.metadata",
)
_WRITES: Final = (
    "INSERT INTO graphrt_checkpoint_writes "
    "(thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type, blob, task_path) VALUES "
)
_KEEP_WRITES: Final = (_WRITES, " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO NOTHING")
_REPLACE_WRITES: Final = (
    _WRITES,
    " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) DO UPDATE SET "
    "channel = excluded.channel, type = excluded.type, blob = excluded.blob, task_path = excluded.task_path",
)
_BLOBS: Final = (
    "WITH new AS (INSERT INTO graphrt_checkpoint_blobs "
    "(thread_id, checkpoint_ns, channel, version, type, blob, base_version, depth) VALUES ",
    " ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING RETURNING 1) ",
)
_TABLES: Final = (_CHECKPOINTS, _KEEP_WRITES, _REPLACE_WRITES, _BLOBS)


class Rows:
    """Rows waiting to be inserted by one transaction, per statement; `take()` gives the merged statements.

    `literal(params)` turns one row's values into its SQL tuple (the cursor's client-side binding); `text`:
    ASCII bytes may travel as text (`AsciiBytes`, which `literal` must bind with `ascii_dumper`).
    """

    __slots__ = ("_keys", "_literal", "_rows", "_text")

    def __init__(self, literal: Callable[[Sequence[Any]], str], *, text: bool) -> None:
        self._literal = literal
        self._text = as_text if text else _as_is
        self._rows: dict[tuple[str, str], list[str]] = {table: [] for table in _TABLES}
        self._keys: dict[tuple[str, str], set[tuple[Any, ...]]] = {table: set() for table in _TABLES}

    def checkpoint(self, row: CheckpointRow) -> list[str]:
        """Queue a checkpoint's upsert; returns statements to send first (a row with its key was waiting)."""
        values = (*row[:5], self._text(row.checkpoint), self._text(row.metadata))
        return self._add(_CHECKPOINTS, (row.thread_id, row.checkpoint_ns, row.checkpoint_id), values)

    def writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, rows: Sequence[WriteRow]) -> list[str]:
        """Queue pending writes (kept when stored already, or replacing, by `WriteRow.replaces`)."""
        first: list[str] = []
        for r in rows:
            values = (thread_id, checkpoint_ns, checkpoint_id, r.task_id, r.idx, r.channel, r.type, self._text(r.data))
            table = _REPLACE_WRITES if r.replaces else _KEEP_WRITES
            first += self._add(table, values[:5], (*values, r.task_path))
        return first

    def blobs(self, thread_id: str, checkpoint_ns: str, items: Sequence[tuple[str, str, Blob]]) -> list[str]:
        """Queue new blobs; the merged insert expects every one of them to be new (as `insert_blobs` answered)."""
        first: list[str] = []
        for channel, version, b in items:
            values = (thread_id, checkpoint_ns, channel, version, b.type, self._text(b.data), b.base, b.depth)
            first += self._add(_BLOBS, values[:4], values)
        return first

    def take(self) -> list[str]:
        """The merged statements of every waiting row, which are no longer waiting."""
        return [s for table in _TABLES if (s := self._statement(table))]

    def _add(self, table: tuple[str, str], key: tuple[Any, ...], values: Sequence[Any]) -> list[str]:
        first = [self._statement(table)] if key in self._keys[table] else []
        self._keys[table].add(key)
        self._rows[table].append(self._literal(values))
        return first

    def _statement(self, table: tuple[str, str]) -> str:
        rows = self._rows[table]
        if not rows:
            return ""
        head, tail = table
        sql = head + ", ".join(rows) + tail
        if table is _BLOBS:
            sql += f"SELECT graphrt_expect(count(*) = {len(rows)}) FROM new"
        self._rows[table] = []
        self._keys[table] = set()
        return sql
