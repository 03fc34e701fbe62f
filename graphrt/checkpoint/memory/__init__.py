"""`InMemorySaver`: checkpoints in this process's memory, for tests, notebooks and short-lived runs."""

from __future__ import annotations

import threading
from types import TracebackType

from graphrt.checkpoint._core import CoreSaver
from graphrt.checkpoint.base._storage import encode_record
from graphrt.checkpoint.memory._storage import MemoryStorage
from graphrt.checkpoint.serde.base import SerializerProtocol

__all__ = ("InMemorySaver", "MemorySaver")


class InMemorySaver(CoreSaver):
    """Checkpoints kept in memory, values as serialized bytes: later changes to a saved state can't leak in.

    A run's checkpoint records (channel versions, versions seen) are kept as the runtime hands them over,
    which never changes them afterwards, and serialized only when read (`holds_records`).

    Same contract and code as the SQL savers (`graphrt.checkpoint._core`): guarded puts, one writer
    per thread (claims live in this process and never expire), list values that only grew stored as
    deltas; a value the serializer can't encode fails `put` with `UnserializableValueError` and saves
    nothing. Usable as a (async) context manager, like LangGraph's.

    Example:
        >>> saver = InMemorySaver()
        >>> graph = builder.compile(checkpointer=saver)  # doctest: +SKIP
    """

    lease_seconds = None
    background_saves = False  # nothing to wait for: a writer thread would only contend for the GIL
    holds_records = True  # a run's records are serialized when read, not at every step

    def __init__(self, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        self._lock = threading.RLock()
        self._storage = MemoryStorage(lambda record: encode_record(self.serde, record))
        # Made once: a transaction keeps no state of its own besides the lock it holds.
        self._reads = _Transaction(self._lock, self._storage, write=False)
        self._writes = _Transaction(self._lock, self._storage, write=True)

    def _read_tx(self) -> _Transaction:
        return self._reads

    def _write_tx(self, thread_id: str | None = None) -> _Transaction:
        return self._writes

    def __enter__(self) -> InMemorySaver:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def __aenter__(self) -> InMemorySaver:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


class _Transaction:
    """The saver's lock held around each use of its storage; a write that fails is rolled back.

    A plain class rather than a generator-based context manager: every step enters a few of these. One
    instance serves every use (from any thread: the lock is taken on entry).
    """

    __slots__ = ("_lock", "_storage", "_write")

    def __init__(self, lock: threading.RLock, storage: MemoryStorage, *, write: bool) -> None:
        self._lock = lock
        self._storage = storage
        self._write = write

    def __enter__(self) -> MemoryStorage:
        self._lock.acquire()
        return self._storage

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if not self._write:
                return
            if exc_type is None:
                self._storage.commit()
            else:
                self._storage.rollback()
        finally:
            self._lock.release()


MemorySaver = InMemorySaver
"""LangGraph's older name for `InMemorySaver`."""
