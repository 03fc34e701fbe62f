"""The storage primitives (`_primitives.WriteTx`) over plain dictionaries, for `InMemorySaver`."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any, Final

from graphrt.checkpoint._delta import MAX_CHAIN, Blob, StreamKey
from graphrt.checkpoint._primitives import CheckpointRow, Lease, ListQuery
from graphrt.checkpoint.base._storage import HeldRecord, WriteRow

__all__ = ("MemoryStorage",)

_ABSENT: Final = object()
_ADDED: Final = object()
"""Undo record of keys a batch added (one record for the batch, not one per key)."""


class MemoryStorage:
    """Checkpoints, blobs, writes and leases in dictionaries; the caller holds one lock around each use.

    Writes are journaled so a failed write transaction is undone (`rollback`), as a database would.
    A checkpoint's record may be stored held (`HeldRecord`): `encode_record` serializes it when a read
    returns its row, so a step's write costs what it changed, not the size of the graph.

    Blobs and writes are stored as plain tuples and handed out as `Blob`s and `WriteRow`s: the garbage
    collector stops scanning a tuple of strings and bytes once it has seen it, but never a named tuple, so
    a long-lived saver's every full collection would otherwise walk all it ever stored.
    """

    def __init__(self, encode_record: Callable[[dict[str, Any]], tuple[str, bytes]]) -> None:
        self.encode_record = encode_record
        self.checkpoints_by_ns: dict[str, dict[str, dict[str, CheckpointRow]]] = {}
        """thread id -> namespace -> checkpoint id -> row."""
        self.heads_by_ns: dict[tuple[str, str], str] = {}
        self.pending: dict[tuple[str, str, str], dict[str, dict[int, tuple[Any, ...]]]] = {}
        """(thread id, namespace, checkpoint id) -> task id -> idx -> a `WriteRow`'s fields (a task's first batch
        of writes is stored as one entry, built in C)."""
        self.blob_rows: dict[tuple[str, str], dict[tuple[str, str], tuple[Any, ...]]] = {}
        """(thread id, namespace) -> (channel, version) -> a `Blob`'s fields."""
        self.leases: dict[str, Lease] = {}
        self._journal: list[tuple[dict[Any, Any], Any, Any]] = []
        """Undo records of the open write transaction: (dict, key, old value or _ABSENT)."""

    # -- transactions -----------------------------------------------------------------------------

    def rollback(self) -> None:
        """Undo every change since the last `commit` (a write transaction failed)."""
        for table, key, old in reversed(self._journal):
            if old is _ADDED:
                for added in key:
                    table.pop(added, None)
            elif old is _ABSENT:
                table.pop(key, None)
            else:
                table[key] = old
        self._journal.clear()

    def commit(self) -> None:
        self._journal.clear()

    def _put(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        self._journal.append((table, key, table.get(key, _ABSENT)))
        table[key] = value

    def _pop(self, table: dict[Any, Any], key: Any) -> None:
        if key in table:
            self._journal.append((table, key, table.pop(key)))

    def _child(self, table: dict[Any, Any], key: Any) -> Any:
        child = table.get(key)
        if child is None:
            child = {}
            self._put(table, key, child)
        return child

    # -- reads ------------------------------------------------------------------------------------

    def head(self, thread_id: str, checkpoint_ns: str) -> str | None:
        return self.heads_by_ns.get((thread_id, checkpoint_ns))

    def checkpoint(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None) -> CheckpointRow | None:
        if checkpoint_id is None:
            checkpoint_id = self.head(thread_id, checkpoint_ns)
            if checkpoint_id is None:
                return None
        row = self.checkpoints_by_ns.get(thread_id, {}).get(checkpoint_ns, {}).get(checkpoint_id)
        return None if row is None else self._serialized(row)

    def checkpoints(self, query: ListQuery) -> Iterable[CheckpointRow]:
        threads = [query.thread_id] if query.thread_id is not None else list(self.checkpoints_by_ns)
        found = [
            row
            for thread_id in threads
            for checkpoint_ns, rows in self.checkpoints_by_ns.get(thread_id, {}).items()
            if query.checkpoint_ns is None or checkpoint_ns == query.checkpoint_ns
            for checkpoint_id, row in rows.items()
            if not (query.checkpoint_id and checkpoint_id != query.checkpoint_id)
            and not (query.before and checkpoint_id >= query.before)
        ]
        found.sort(key=lambda r: (r.checkpoint_id, r.thread_id, r.checkpoint_ns), reverse=True)
        return map(self._serialized, found if query.limit is None else found[: query.limit])

    def _serialized(self, row: CheckpointRow) -> CheckpointRow:
        """`row` as a read returns it: a held record serialized (it stays held in storage)."""
        held = row.checkpoint
        if type(held) is not HeldRecord:
            return row
        type_, data = self.encode_record(held.record)
        return row._replace(type=type_, checkpoint=data)

    def blobs(self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Blob]:
        stored = self.blob_rows.get((thread_id, checkpoint_ns), {})
        return {k: Blob(*stored[k]) for k in keys if k in stored}

    def chain(self, stream: StreamKey, version: str, stop_at: Collection[str]) -> list[tuple[str, Blob]]:
        thread_id, checkpoint_ns, channel = stream
        stored = self.blob_rows.get((thread_id, checkpoint_ns), {})
        chain: list[tuple[str, Blob]] = []
        current: str | None = version
        while current is not None and (fields := stored.get((channel, current))) is not None:
            blob = Blob(*fields)
            chain.append((current, blob))
            current = blob.base
            if current in stop_at or len(chain) >= MAX_CHAIN:
                break
        return chain

    def writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> list[WriteRow]:
        tasks = self.pending.get((thread_id, checkpoint_ns, checkpoint_id), {})
        return [WriteRow(*row) for rows in tasks.values() for row in rows.values()]

    def lease(self, thread_id: str) -> Lease | None:
        return self.leases.get(thread_id)

    def head_and_lease(self, thread_id: str, checkpoint_ns: str) -> tuple[str | None, Lease | None]:
        """`head` and `lease` in one call (the guard of a claimed thread's save reads both)."""
        return self.heads_by_ns.get((thread_id, checkpoint_ns)), self.leases.get(thread_id)

    # -- writes -----------------------------------------------------------------------------------

    def insert_blobs(self, thread_id: str, checkpoint_ns: str, items: Sequence[tuple[str, str, Blob]]) -> int:
        stored = self._child(self.blob_rows, (thread_id, checkpoint_ns))
        added = []
        for channel, version, blob in items:
            key = (channel, version)
            if key not in stored:
                stored[key] = tuple(blob)  # a plain tuple: see the class docstring
                added.append(key)
        self._journal.append((stored, added, _ADDED))
        return len(added)

    def set_blob(self, stream: StreamKey, version: str, blob: Blob) -> None:
        thread_id, checkpoint_ns, channel = stream
        self._put(self._child(self.blob_rows, (thread_id, checkpoint_ns)), (channel, version), tuple(blob))

    def dependents(self, stream: StreamKey, version: str) -> list[str]:
        thread_id, checkpoint_ns, channel = stream
        stored = self.blob_rows.get((thread_id, checkpoint_ns), {})
        return [v for (ch, v), b in stored.items() if ch == channel and Blob(*b).base == version and v != version]

    def put_checkpoint(self, row: CheckpointRow) -> None:
        spaces = self._child(self.checkpoints_by_ns, row.thread_id)
        self._put(self._child(spaces, row.checkpoint_ns), row.checkpoint_id, row)
        key = (row.thread_id, row.checkpoint_ns)
        head = self.heads_by_ns.get(key)
        if head is None or row.checkpoint_id > head:
            self._put(self.heads_by_ns, key, row.checkpoint_id)

    def put_writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, rows: Sequence[WriteRow]) -> None:
        saved = self._child(self.pending, (thread_id, checkpoint_ns, checkpoint_id))
        if rows and (task_id := rows[0].task_id) not in saved:  # the common case: a task's writes, saved once
            batch: dict[int, tuple[Any, ...]] = {}
            for row in rows:
                if row.task_id != task_id or row.idx in batch:
                    break
                batch[row.idx] = tuple(row)
            else:
                self._put(saved, task_id, batch)
                return
        for row in rows:
            writes = self._child(saved, row.task_id)
            if row.idx not in writes or row.replaces:  # exactly once, but special channels replace
                self._put(writes, row.idx, tuple(row))

    def delete_thread(self, thread_id: str) -> None:
        self._pop(self.checkpoints_by_ns, thread_id)
        for table in (self.heads_by_ns, self.blob_rows, self.pending):
            for key in [k for k in table if k[0] == thread_id]:
                self._pop(table, key)

    def copy_thread(self, source: str, target: str) -> None:
        for checkpoint_ns, rows in list(self.checkpoints_by_ns.get(source, {}).items()):
            for row in list(rows.values()):
                self.put_checkpoint(
                    CheckpointRow(
                        target, checkpoint_ns, row.checkpoint_id, row.parent_id, row.type, row.checkpoint, row.metadata
                    )
                )
        for (t, ns, cid), tasks in list(self.pending.items()):
            if t == source:
                saved = self._child(self.pending, (target, ns, cid))
                for task_id, writes in tasks.items():
                    copied = self._child(saved, task_id)
                    for idx, write in writes.items():
                        self._put(copied, idx, write)
        for (t, ns), blobs in list(self.blob_rows.items()):
            if t == source:
                stored = self._child(self.blob_rows, (target, ns))
                for bkey, blob in blobs.items():
                    self._put(stored, bkey, blob)

    def heads(self, thread_id: str) -> dict[str, str]:
        return {ns: head for (t, ns), head in self.heads_by_ns.items() if t == thread_id}

    def blob_keys(self, thread_id: str, checkpoint_ns: str) -> list[tuple[str, str]]:
        return list(self.blob_rows.get((thread_id, checkpoint_ns), {}))

    def delete_blobs(self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]) -> None:
        stored = self.blob_rows.get((thread_id, checkpoint_ns), {})
        for key in keys:
            self._pop(stored, key)

    def drop_history(self, thread_id: str, checkpoint_ns: str, keep_id: str) -> None:
        rows = self.checkpoints_by_ns.get(thread_id, {}).get(checkpoint_ns, {})
        for checkpoint_id in [c for c in rows if c != keep_id]:
            self._pop(rows, checkpoint_id)
            self._pop(self.pending, (thread_id, checkpoint_ns, checkpoint_id))
        if (kept := rows.get(keep_id)) is not None:
            self._put(
                rows,
                keep_id,
                CheckpointRow(
                    kept.thread_id,
                    kept.checkpoint_ns,
                    kept.checkpoint_id,
                    None,
                    kept.type,
                    kept.checkpoint,
                    kept.metadata,
                ),
            )

    def swap_lease(self, thread_id: str, expected: Lease | None, new: Lease | None) -> bool:
        if self.leases.get(thread_id) != expected:
            return False
        if new is None:
            self._pop(self.leases, thread_id)
        else:
            self._put(self.leases, thread_id, new)
        return True
