"""`InMemorySaver`: checkpoints in this process's memory, for tests, notebooks and short-lived runs."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from graphrt.checkpoint._core import CoreSaver
from graphrt.checkpoint.memory._storage import MemoryStorage
from graphrt.checkpoint.serde.base import SerializerProtocol

__all__ = ("InMemorySaver", "MemorySaver")


class InMemorySaver(CoreSaver):
    """Checkpoints kept in memory, as serialized bytes: later changes to a saved state can't leak in.

    Same contract and code as the SQL savers (`graphrt.checkpoint._core`): guarded puts, one writer
    per thread (claims live in this process and never expire), list values that only grew stored as
    deltas; a value the serializer can't encode fails `put` with `UnserializableValueError` and saves
    nothing. Usable as a (async) context manager, like LangGraph's.

    Example:
        >>> saver = InMemorySaver()
        >>> graph = builder.compile(checkpointer=saver)  # doctest: +SKIP
    """

    lease_seconds = None

    def __init__(self, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        self._lock = threading.RLock()
        self._storage = MemoryStorage()

    @contextmanager
    def _read_tx(self) -> Iterator[MemoryStorage]:
        with self._lock:
            yield self._storage

    @contextmanager
    def _write_tx(self, thread_id: str | None = None) -> Iterator[MemoryStorage]:
        with self._lock:
            try:
                yield self._storage
            except BaseException:
                self._storage.rollback()
                raise
            self._storage.commit()

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


MemorySaver = InMemorySaver
"""LangGraph's older name for `InMemorySaver`."""
