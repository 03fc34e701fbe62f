"""What a run reads and writes outside itself: the thread writer (saves) and the event sink (stream).

A root run's sink is read by the caller of `stream`; a nested run's sink forwards to the root's, tagged
with the nested run's namespace, when the caller asked for subgraph events.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphrt.config import RunnableConfig

if TYPE_CHECKING:
    from graphrt.cache.base import BaseCache
    from graphrt.checkpoint.base import BaseCheckpointSaver
    from graphrt.pregel._loop import SaveCheckpoint, SaveWrites

Event = tuple[tuple[str, ...], str, Any]
"""(namespace, mode, chunk): what drivers hand the facade."""


class Sink:
    """A thread-safe queue of stream events, filled from any thread and drained by the run that owns it."""

    __slots__ = ("_queue", "forward", "modes", "ns", "subgraphs", "wake")

    def __init__(
        self, modes: frozenset[str], *, subgraphs: bool = False, ns: tuple[str, ...] = (), forward: Sink | None = None
    ) -> None:
        self.ns = ns
        self.modes = modes
        """The modes the owner of this sink reads."""
        self.subgraphs: bool = subgraphs if forward is None else forward.subgraphs
        self.forward = forward if forward is not None and forward.subgraphs else None
        """The root's sink, when it wants this nested run's events."""
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.wake: Callable[[], None] | None = None
        """Set by an async driver: called after each put, from any thread."""

    def wants(self, mode: str) -> bool:
        """Whether an event in `mode` is read by anyone (so the loop can skip building it)."""
        return mode in self.modes or (self.forward is not None and mode in self.forward.modes)

    def emit(self, mode: str, chunk: Any) -> None:
        """One event of this run (tasks' custom chunks included)."""
        if mode in self.modes:
            self.put((self.ns, mode, chunk))
        if self.forward is not None and mode in self.forward.modes:
            self.forward.put((self.ns, mode, chunk))

    def put(self, item: Any) -> None:
        """Queue an event, or a driver's task-finished marker."""
        self._queue.put(item)
        wake = self.wake
        if wake is not None:
            wake()

    def get(self, timeout: float | None = None) -> Any:
        """Block for the next item (raises queue.Empty after `timeout`)."""
        return self._queue.get(timeout=timeout)

    def drain(self) -> Iterator[Event]:
        """The queued events, without blocking."""
        get = self._queue.get_nowait
        while True:
            try:
                item = get()
            except queue.Empty:
                return
            yield item


@dataclass(slots=True)
class ThreadWriter:
    """Saves one scope's checkpoints and task writes, each checkpoint guarded against a second writer."""

    saver: BaseCheckpointSaver[Any]
    config: RunnableConfig
    """The config of the last saved checkpoint (the parent of the next one), or just the thread and namespace."""
    head: str | None
    """The thread's newest checkpoint id when the run started; a save fails if another run moved it."""

    def put_checkpoint(self, effect: SaveCheckpoint) -> None:
        new = self.saver.put_guarded(
            self.config, effect.checkpoint, effect.metadata, effect.new_versions, expected_head=self.head
        )
        self.config, self.head = new, new["configurable"]["checkpoint_id"]

    def put_writes(self, effect: SaveWrites) -> None:
        self.saver.put_writes_guarded(self.config, effect.writes, effect.task_id, effect.task_path)

    async def aput_checkpoint(self, effect: SaveCheckpoint) -> None:
        new = await self.saver.aput_guarded(
            self.config, effect.checkpoint, effect.metadata, effect.new_versions, expected_head=self.head
        )
        self.config, self.head = new, new["configurable"]["checkpoint_id"]

    async def aput_writes(self, effect: SaveWrites) -> None:
        await self.saver.aput_writes_guarded(self.config, effect.writes, effect.task_id, effect.task_path)


@dataclass(slots=True)
class RunIO:
    """The I/O a run performs: its saves, its events, and how its tasks may be scheduled."""

    sink: Sink
    writer: ThreadWriter | None = None
    nested: bool = False
    """Runs inside a task of another run: a driver whose tasks no pool worker takes runs them itself (no
    pool deadlock), and an async driver needs no separate event pump (its events go to the root's sink)."""
    live: bool = False
    """Run even a single task off the caller's thread, so nested runs' events reach the caller as they happen."""
    max_concurrency: int | None = None
    label: str = ""
    """Names the run in log lines (its thread)."""
    steps: int = 0
    """Steps run so far (for the log line at the run's end)."""
    cache: BaseCache[Any] | None = None
    """The graph's cache (None: nothing is cached); read and written by the cache effects."""
