"""What a run reads and writes outside itself: the thread writer (saves) and the event sink (stream).

A root run's sink is read by the caller of `stream`; a nested run's sink forwards to the root's, tagged
with the nested run's namespace, when the caller asked for subgraph events.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphrt.checkpoint.base import UnserializableValueError
from graphrt.checkpoint.base._saver import UnsavableValueError
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
    """Saves one scope's checkpoints and task writes, each checkpoint guarded against a second writer.

    One commit per step: the writes of a step's last finishing task are held back and committed with the
    checkpoint that follows them (`put_step`); a finished sibling's writes are saved at once, so a crash
    never loses them. Held-back writes with no checkpoint after them are saved by `flush`.
    """

    saver: BaseCheckpointSaver[Any]
    config: RunnableConfig
    """The config of the last saved checkpoint (the parent of the next one), or just the thread and namespace."""
    head: str | None
    """The thread's newest checkpoint id when the run started; a save fails if another run moved it."""
    deferred: list[SaveWrites] = field(default_factory=list)

    def put_checkpoint(self, effect: SaveCheckpoint) -> None:
        deferred = self.deferred
        if deferred:
            tasks = [(w.task_id, w.writes, w.task_path) for w in deferred]
            try:
                new = self.saver.put_step(
                    self.config, tasks, effect.checkpoint, effect.metadata, effect.new_versions, expected_head=self.head
                )
            except (UnserializableValueError, UnsavableValueError) as exc:
                named = _for_node(exc, deferred)
                if named is exc:
                    raise
                raise named from None
            deferred.clear()
        else:
            new = self.saver.put_guarded(
                self.config, effect.checkpoint, effect.metadata, effect.new_versions, expected_head=self.head
            )
        self.config, self.head = new, new["configurable"]["checkpoint_id"]

    def put_writes(self, effect: SaveWrites, *, last: bool = False) -> None:
        """Save a task's writes; `last` (the step's last task): hold them for the step's checkpoint."""
        if last:
            self.deferred.append(effect)
            return
        self.flush()
        with naming_nodes([effect]):
            self.saver.put_writes_guarded(self.config, effect.writes, effect.task_id, effect.task_path)

    def flush(self) -> None:
        while self.deferred:
            effect = self.deferred[0]
            with naming_nodes([effect]):
                self.saver.put_writes_guarded(self.config, effect.writes, effect.task_id, effect.task_path)
            self.deferred.pop(0)

    async def aput_checkpoint(self, effect: SaveCheckpoint) -> None:
        if self.deferred:
            writes = list(self.deferred)  # kept until saved: a cancelled save leaves them for `aflush`
            tasks = [(w.task_id, w.writes, w.task_path) for w in writes]
            with naming_nodes(writes):
                new = await self.saver.aput_step(
                    self.config, tasks, effect.checkpoint, effect.metadata, effect.new_versions, expected_head=self.head
                )
            self.deferred.clear()
        else:
            new = await self.saver.aput_guarded(
                self.config, effect.checkpoint, effect.metadata, effect.new_versions, expected_head=self.head
            )
        self.config, self.head = new, new["configurable"]["checkpoint_id"]

    async def aput_writes(self, effect: SaveWrites, *, last: bool = False) -> None:
        if last:
            self.deferred.append(effect)
            return
        await self.aflush()
        with naming_nodes([effect]):
            await self.saver.aput_writes_guarded(self.config, effect.writes, effect.task_id, effect.task_path)

    async def aflush(self) -> None:
        while self.deferred:
            effect = self.deferred[0]
            with naming_nodes([effect]):
                await self.saver.aput_writes_guarded(self.config, effect.writes, effect.task_id, effect.task_path)
            self.deferred.pop(0)


@contextmanager
def naming_nodes(writes: Sequence[SaveWrites]) -> Iterator[None]:
    """A task write that cannot be saved is reported with its node's name, not its task id."""
    try:
        yield
    except (UnserializableValueError, UnsavableValueError) as exc:
        named = _for_node(exc, writes)
        if named is exc:
            raise
        raise named from None


def _for_node(
    exc: UnserializableValueError | UnsavableValueError, writes: Sequence[SaveWrites]
) -> UnserializableValueError | UnsavableValueError:
    """`exc` naming the node whose write it is (itself when it names no task of `writes`)."""
    node = next((w.node for w in writes if w.task_id == exc.task_id and w.node), None)
    return exc if node is None else exc.for_node(node)


@dataclass(slots=True)
class RunIO:
    """The I/O a run performs: its saves, its events, and how its tasks may be scheduled."""

    sink: Sink
    writer: ThreadWriter | None = None
    nested: bool = False
    """Runs inside a task of another run: a driver whose tasks no pool worker takes runs them itself (no
    pool deadlock), and an async driver needs no separate event pump (its events go to the root's sink)."""
    live: bool = False
    """Run even a single task off the caller's thread, so nested runs' events, tokens and custom chunks reach
    the caller as they happen."""
    max_concurrency: int | None = None
    label: str = ""
    """Names the run in log lines (its thread)."""
    demand: Any = None
    """An async root run's `asyncio.Event`: set while the caller waits for events (steps start only then)."""
    steps: int = 0
    """Steps run so far (for the log line at the run's end)."""
    cache: BaseCache[Any] | None = None
    """The graph's cache (None: nothing is cached); read and written by the cache effects."""
