"""The storage primitives a checkpoint backend implements; the algorithm over them is `_core.CoreSaver`.

A backend (memory, SQL, Redis, ...) never writes the delta, guard, retention or ownership logic. It
gives `CoreSaver` two kinds of transaction:

- `ReadTx`: a consistent view for reads (`_read_tx()`);
- `WriteTx`: reads plus writes, applied atomically on exit and serialized with every other writer of
  the same thread, in this process and in others (`_write_tx(thread_id)`), rolled back on error.

A backend with an async client (psycopg's `AsyncConnection`, `redis.asyncio`) may also give the async
twins, `AsyncReadTx` (`_aread_tx()`) and `AsyncWriteTx` (`_awrite_tx(thread_id)`): the same methods,
arguments, results and promises, awaited. `CoreSaver` then runs its `a*` methods on them natively, with
no worker thread (see `_drive`).

Every primitive is small, keyed by plain strings and bytes, and never decodes a value. See
the README's "Thread ownership" and `_core.CoreSaver` for how a backend plugs in.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from graphrt.checkpoint._delta import Blob, StreamKey
from graphrt.checkpoint.base._storage import WriteRow

__all__ = ("AsyncReadTx", "AsyncWriteTx", "CheckpointRow", "Lease", "ListQuery", "ReadTx", "WriteTx")


class CheckpointRow(NamedTuple):
    """One stored checkpoint without its channel values (those are blobs).

    A named tuple rather than a frozen dataclass: one is built per step, and a tuple is several times
    cheaper to build; it is just as immutable.
    """

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_id: str | None
    type: str
    """The serializer's type tag of `checkpoint`."""
    checkpoint: bytes
    """The checkpoint's record: ids, versions, versions seen (no values)."""
    metadata: bytes
    """JSON (orjson) of the metadata; SQL backends may query it."""


@dataclass(frozen=True, slots=True)
class ListQuery:
    """Which checkpoints `ReadTx.checkpoints` returns; every field None means "any"."""

    thread_id: str | None = None
    checkpoint_ns: str | None = None
    checkpoint_id: str | None = None
    before: str | None = None
    """Only ids strictly smaller than this."""
    limit: int | None = None
    """At most this many (the core passes None when it filters metadata itself)."""


@dataclass(frozen=True, slots=True)
class Lease:
    """Who owns a thread: one run's claim, renewed while it runs (see `_ownership`)."""

    owner: str
    """A random token naming one claim; only its holder renews, fences on or releases it."""
    host: str
    """The machine of the owning process (hostname and boot id): a dead pid there frees the thread."""
    pid: int
    expires_at: int | None
    """Microseconds since the epoch after which anyone may take the thread over; None: never expires
    (storage that lives and dies with one process)."""


class ReadTx(Protocol):
    """Reads inside one consistent view of the storage."""

    def head(self, thread_id: str, checkpoint_ns: str) -> str | None:
        """The largest checkpoint id of the namespace, or None; must not grow with history."""
        ...

    def checkpoint(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None) -> CheckpointRow | None:
        """One checkpoint row (the newest of the namespace when `checkpoint_id` is None)."""
        ...

    def checkpoints(self, query: ListQuery) -> Iterable[CheckpointRow]:
        """Rows matching `query`, by checkpoint id descending (across threads and namespaces too)."""
        ...

    def blobs(self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Blob]:
        """The stored blobs of these (channel, version) pairs; absent pairs are left out."""
        ...

    def chain(self, stream: StreamKey, version: str, stop_at: Collection[str]) -> list[tuple[str, Blob]]:
        """`version` and the blobs its `base` links lead to, newest first (`_delta.ChainFetcher`).

        Stops after a whole value (base None), a blob whose base is in `stop_at` or is not stored, or
        `_delta.MAX_CHAIN` links; [] when `version` itself is not stored.
        """
        ...

    def writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> list[WriteRow]:
        """The pending writes saved against one checkpoint, in any order."""
        ...

    def lease(self, thread_id: str) -> Lease | None:
        """The thread's current lease, expired or not."""
        ...


class WriteTx(ReadTx, Protocol):
    """Reads and writes applied atomically when the transaction ends without error."""

    def insert_blobs(self, thread_id: str, checkpoint_ns: str, items: Sequence[tuple[str, str, Blob]]) -> int:
        """Insert (channel, version, blob) rows, leaving existing keys untouched; returns how many were new."""
        ...

    def set_blob(self, stream: StreamKey, version: str, blob: Blob) -> None:
        """Overwrite (or insert) one blob."""
        ...

    def dependents(self, stream: StreamKey, version: str) -> list[str]:
        """Versions of the stream stored as deltas on `version` (excluding `version`)."""
        ...

    def put_checkpoint(self, row: CheckpointRow) -> None:
        """Insert a checkpoint row, replacing one with the same key."""
        ...

    def put_writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, rows: Sequence[WriteRow]) -> None:
        """Save pending writes keyed by (task_id, idx): a key already stored is kept when `idx >= 0`
        (exactly-once: a replayed task cannot change what was saved) and replaced when `idx < 0`."""
        ...

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, blob and write of the thread (not its lease)."""
        ...

    def copy_thread(self, source: str, target: str) -> None:
        """Copy every checkpoint, blob and write of `source` under `target`, replacing clashing keys."""
        ...

    def heads(self, thread_id: str) -> dict[str, str]:
        """Namespace -> newest checkpoint id, for every namespace of the thread."""
        ...

    def blob_keys(self, thread_id: str, checkpoint_ns: str) -> list[tuple[str, str]]:
        """Every stored (channel, version) of the namespace."""
        ...

    def delete_blobs(self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]) -> None:
        """Delete these (channel, version) blobs."""
        ...

    def drop_history(self, thread_id: str, checkpoint_ns: str, keep_id: str) -> None:
        """Delete the namespace's checkpoints and writes except `keep_id`'s, and clear its parent id."""
        ...

    def swap_lease(self, thread_id: str, expected: Lease | None, new: Lease | None) -> bool:
        """Compare-and-set the thread's lease: if it equals `expected` (None: no lease) store `new`
        (None: delete) and return True; otherwise change nothing and return False."""
        ...


class AsyncReadTx(Protocol):
    """`ReadTx` for async storage: the same methods, arguments and results, awaited."""

    async def head(self, thread_id: str, checkpoint_ns: str) -> str | None:
        """`ReadTx.head`, awaited.."""
        ...

    async def checkpoint(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None) -> CheckpointRow | None:
        """`ReadTx.checkpoint`, awaited.."""
        ...

    async def checkpoints(self, query: ListQuery) -> Iterable[CheckpointRow]:
        """`ReadTx.checkpoints`, awaited.."""
        ...

    async def blobs(
        self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], Blob]:
        """`ReadTx.blobs`, awaited.."""
        ...

    async def chain(self, stream: StreamKey, version: str, stop_at: Collection[str]) -> list[tuple[str, Blob]]:
        """`ReadTx.chain`, awaited.."""
        ...

    async def writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> list[WriteRow]:
        """`ReadTx.writes`, awaited.."""
        ...

    async def lease(self, thread_id: str) -> Lease | None:
        """`ReadTx.lease`, awaited.."""
        ...


class AsyncWriteTx(AsyncReadTx, Protocol):
    """`WriteTx` for async storage: the same methods, arguments and results, awaited."""

    async def insert_blobs(self, thread_id: str, checkpoint_ns: str, items: Sequence[tuple[str, str, Blob]]) -> int:
        """`WriteTx.insert_blobs`, awaited.."""
        ...

    async def set_blob(self, stream: StreamKey, version: str, blob: Blob) -> None:
        """`WriteTx.set_blob`, awaited.."""
        ...

    async def dependents(self, stream: StreamKey, version: str) -> list[str]:
        """`WriteTx.dependents`, awaited.."""
        ...

    async def put_checkpoint(self, row: CheckpointRow) -> None:
        """`WriteTx.put_checkpoint`, awaited.."""
        ...

    async def put_writes(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, rows: Sequence[WriteRow]
    ) -> None:
        """`WriteTx.put_writes`, awaited.."""
        ...

    async def delete_thread(self, thread_id: str) -> None:
        """`WriteTx.delete_thread`, awaited.."""
        ...

    async def copy_thread(self, source: str, target: str) -> None:
        """`WriteTx.copy_thread`, awaited.."""
        ...

    async def heads(self, thread_id: str) -> dict[str, str]:
        """`WriteTx.heads`, awaited.."""
        ...

    async def blob_keys(self, thread_id: str, checkpoint_ns: str) -> list[tuple[str, str]]:
        """`WriteTx.blob_keys`, awaited.."""
        ...

    async def delete_blobs(self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]) -> None:
        """`WriteTx.delete_blobs`, awaited.."""
        ...

    async def drop_history(self, thread_id: str, checkpoint_ns: str, keep_id: str) -> None:
        """`WriteTx.drop_history`, awaited.."""
        ...

    async def swap_lease(self, thread_id: str, expected: Lease | None, new: Lease | None) -> bool:
        """`WriteTx.swap_lease`, awaited.."""
        ...
