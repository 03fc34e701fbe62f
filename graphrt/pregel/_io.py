"""What a run reads and writes outside itself: the thread writer (saves) and the event sink (stream).

A root run's sink is read by the caller of `stream`; a nested run's sink forwards to the root's, tagged
with the nested run's namespace, when the caller asked for subgraph events.

With `durability="async"` (the default) and a saver that does I/O, a root run's saves are serialized on
the run's own thread and committed by one background writer (`Committer`) that the run's nested runs
share, while the next step runs.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextvars
import functools
import itertools
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphrt.checkpoint.base import UnserializableValueError
from graphrt.checkpoint.base._saver import UnsavableValueError
from graphrt.config import RunnableConfig
from graphrt.pregel._timer import delayed_starts as _delayed

if TYPE_CHECKING:
    from graphrt.cache.base import BaseCache
    from graphrt.checkpoint._core import PreparedSave
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

    def pending(self) -> bool:
        """Whether events wait to be drained (cheaper to ask than a `drain` that finds none)."""
        return not self._queue.empty()

    def drain(self) -> Iterator[Event]:
        """The queued events, without blocking."""
        get = self._queue.get_nowait
        while True:
            try:
                item = get()
            except queue.Empty:
                return
            yield item


MAX_GROUP = 256
"""At most this many saves are committed in one transaction."""
MAX_BACKLOG = 1024
"""A run that gets this many saves ahead of its writer waits for it (sync runs only): bounded memory."""
_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _forget_writers() -> None:
    """In a forked child: the parent's writer threads do not exist there (see `_drivers._forget_pool`)."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_writers)


def _writers() -> concurrent.futures.ThreadPoolExecutor:
    """The threads that commit sync runs' saves, shared by every run (a thread per run costs more than a step)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="graphrt-writer")
        return _pool


class Committer:
    """One root run's background writer: commits the run's prepared saves in the order they were made.

    Shared by the root run and every run nested in it (subgraphs, `@task`s), so a task's writes are
    committed before the checkpoint that follows them and namespaces interleave as the run produced them.
    Saves that queue up while a commit is in flight are committed together, in one transaction
    (`CoreSaver.commit_saves`): a group commit. In sync code the commits run on a shared writer thread
    (one at a time per run); in async code in a task on the run's event loop; both in the context the run
    had when it started (its thread claim). A run that waits for its saves while no commit is in flight
    commits what is queued itself, rather than waiting for a writer to be scheduled.

    The first failed commit stops the writer: nothing queued after it is committed, and the error is
    raised by the run's next save (`submit`) or at its end (`close`).
    """

    def __init__(self, saver: Any, *, asynchronous: bool) -> None:
        self.saver = saver
        self.asynchronous = asynchronous
        self.error: BaseException | None = None
        """The failed commit's error (the writer then stops)."""
        self.transactions = 0
        """Transactions committed so far."""
        self._context = contextvars.copy_context()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._queue: collections.deque[PreparedSave] = collections.deque()
        self._pending: collections.Counter[str] = collections.Counter()
        """Namespace -> saves queued or in flight."""
        self._busy = False
        """A group is being committed."""
        self._draining = False
        """A writer (a pool thread, or the run's own thread) is committing the queue, or is scheduled to."""
        self._scheduled = 0
        """The ticket of the drain a pool thread is scheduled to run and has not started (0: none)."""
        self._tickets = itertools.count(1)
        self._closed = False
        self._release_owner: str | None = None
        """Set when the root run ends: the claim whose lease its last group drops (`commit_saves`)."""
        self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop() if asynchronous else None
        self._wake: asyncio.Event | None = asyncio.Event() if asynchronous else None
        self._idle: asyncio.Event | None = asyncio.Event() if asynchronous else None
        self._task: asyncio.Task[None] | None = None

    def submit(self, save: PreparedSave) -> None:
        """Queue a prepared save (from any thread); it is committed once `kick` or a wait starts the writer.

        Raises:
            Exception: An earlier commit failed (its error).
        """
        if not self.asynchronous and len(self._queue) >= MAX_BACKLOG:
            self.kick()
            with self._lock:
                while len(self._queue) >= MAX_BACKLOG and self.error is None:
                    self._changed.wait()
        with self._lock:
            if self.error is not None:
                raise self.error
            self._queue.append(save)
            self._pending[save.checkpoint_ns] += 1

    def kick(self) -> None:
        """Start committing what is queued, unless a writer is at it already (from any thread).

        Called when the run is about to do something long (run a step's tasks), so the commit overlaps it.
        """
        if self.asynchronous:
            self._kick()
            return
        with self._lock:
            start = not self._draining and bool(self._queue) and self.error is None
            if start:
                self._draining = True
                self._scheduled = ticket = next(self._tickets)
        if start:
            # A step shorter than the delay ends first, and its run commits the queue itself (or the writer takes
            # the next step's saves with it): committing alongside a short step only contends for the GIL.
            _delayed.arm(self, functools.partial(self._start, ticket))

    def _start(self, ticket: int) -> None:
        """The delay passed (on the timer's thread): commit on a pool thread."""
        # A copy per drain: the previous drain may not have left its context yet.
        _writers().submit(self._context.copy().run, self._drain, ticket)

    def pending(self, checkpoint_ns: str | None = None) -> bool:
        """Whether saves (of `checkpoint_ns`, or any) are not committed yet."""
        with self._lock:
            return bool(self._queue or self._busy) if checkpoint_ns is None else self._pending[checkpoint_ns] > 0

    def _kick(self) -> None:
        """Wake the async writer (started on first use), from any thread."""
        loop = self._loop
        assert loop is not None
        if _on_loop(loop):
            self._wakeup()
        else:
            loop.call_soon_threadsafe(self._wakeup)

    def _wakeup(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._awork(), context=self._context)
        assert self._wake is not None
        self._wake.set()

    def _take(self) -> tuple[list[PreparedSave], str | None]:
        """The next group, and the claim it releases (the run's last group only); called with the lock held."""
        queued = self._queue
        batch = [queued.popleft() for _ in range(min(len(queued), MAX_GROUP))]
        self._busy = bool(batch)
        owner = None
        if batch and not queued and self._release_owner is not None:
            owner, self._release_owner = self._release_owner, None
        return batch, owner

    def _done(self, batch: list[PreparedSave], error: BaseException | None) -> None:
        """Bookkeeping after a group's commit (called with the lock held)."""
        self._busy = False
        if error is None:
            self.transactions += 1
            for save in batch:
                self._pending[save.checkpoint_ns] -= 1
        else:
            self.error = error
            self._queue.clear()
            self._pending.clear()
        self._changed.notify_all()

    def _drain(self, ticket: int = 0) -> None:
        """Commit the queue, group by group, until it is empty (sync runs: on a writer thread or the run's).

        `ticket`: a pool thread's scheduled drain, which does nothing if the run's thread took it over.
        """
        if ticket:
            with self._lock:
                if self._scheduled != ticket:
                    return
                self._scheduled = 0
        while True:
            with self._lock:
                if self.error is not None or not self._queue:
                    self._draining = False
                    self._changed.notify_all()
                    return
                batch, owner = self._take()
            error: BaseException | None = None
            try:
                if owner is None:
                    self.saver.commit_saves(batch)
                else:
                    self.saver.commit_saves(batch, release_owner=owner)
            except BaseException as exc:
                error = exc
            with self._lock:
                self._done(batch, error)

    async def _awork(self) -> None:
        wake, idle = self._wake, self._idle
        assert wake is not None and idle is not None
        while True:
            with self._lock:
                batch, owner = self._take() if self.error is None else ([], None)
                closed = self._closed
            if not batch:
                idle.set()
                if closed or self.error is not None:
                    return
                wake.clear()
                await wake.wait()
                continue
            idle.clear()
            error: BaseException | None = None
            try:
                if owner is None:
                    await self.saver.acommit_saves(batch)
                else:
                    await self.saver.acommit_saves(batch, release_owner=owner)
            except BaseException as exc:
                error = exc
            with self._lock:
                self._done(batch, error)

    def wait(self, checkpoint_ns: str | None = None) -> None:
        """Block until the saves queued so far (of `checkpoint_ns`, or all) are committed or the writer failed.

        Not on the event loop of an async writer (that loop commits); use `await_` there.
        """
        with self._lock:
            # No writer is at it (or one is scheduled but not started): commit here rather than wait for it.
            inline = not self.asynchronous and bool(self._queue) and (not self._draining or self._scheduled != 0)
            scheduled = self._scheduled != 0
            if inline:
                self._draining = True
                self._scheduled = 0
        if inline:
            if scheduled:
                _delayed.cancel(self)
            self._drain()
        with self._lock:
            while self.error is None and (
                (self._queue or self._busy) if checkpoint_ns is None else self._pending[checkpoint_ns] > 0
            ):
                self._changed.wait()

    async def await_(self, checkpoint_ns: str | None = None) -> None:
        """Async `wait`."""
        if not self.asynchronous or not _on_loop(self._loop):
            import anyio.to_thread

            await anyio.to_thread.run_sync(self.wait, checkpoint_ns)
            return
        idle = self._idle
        assert idle is not None
        while self.error is None and self.pending(checkpoint_ns):
            idle.clear()
            self._kick()
            await idle.wait()

    def close(self, exc: BaseException | None = None, *, release_owner: str | None = None) -> None:
        """The root run ends: wait for every queued save, stop the writer, and raise a failed commit's error.

        `exc`: the run is raising this already; a commit's error then only adds a note to it.
        `release_owner`: the run's claim on its thread; a group still to commit drops its lease too.
        """
        with self._lock:
            self._release_owner = release_owner
        self.wait()
        self._stop()
        self._report(exc)

    async def aclose(self, exc: BaseException | None = None, *, release_owner: str | None = None) -> None:
        """Async `close`."""
        with self._lock:
            self._release_owner = release_owner
        await self.await_()
        self._stop()
        task = self._task
        if task is not None and _on_loop(self._loop):
            self._kick()
            await asyncio.wait([task])  # it ends at once: nothing is queued
        self._report(exc)

    def _stop(self) -> None:
        with self._lock:
            self._closed = True
            self._release_owner = None
            self._changed.notify_all()

    def _report(self, exc: BaseException | None) -> None:
        error = self.error
        if error is None or error is exc:
            return
        if exc is None:
            raise error
        exc.add_note(f"Also, a checkpoint save in the background failed: {error!r}")


def _on_loop(loop: asyncio.AbstractEventLoop | None) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


@dataclass(slots=True)
class ThreadWriter:
    """Saves one scope's checkpoints and task writes, each checkpoint guarded against a second writer.

    One commit per step: the writes of a step's last finishing task are held back and committed with the
    checkpoint that follows them (`put_step`); a finished sibling's writes are saved at once, so a crash
    never loses them. Held-back writes with no checkpoint after them are saved by `flush`.

    With a `committer` (durability "async" on a saver that does I/O) every save is serialized here, on the
    run's thread (a bad value fails its step), and queued for the root run's background writer instead.
    """

    saver: BaseCheckpointSaver[Any]
    config: RunnableConfig
    """The config of the last saved checkpoint (the parent of the next one), or just the thread and namespace."""
    head: str | None
    """The thread's newest checkpoint id when the run started; a save fails if another run moved it."""
    deferred: list[SaveWrites] = field(default_factory=list)
    committer: Committer | None = None
    """The root run's background writer (None: each save is committed before the next step)."""

    def _submit(self, writes: Sequence[SaveWrites], effect: SaveCheckpoint | None) -> None:
        """Serialize tasks' writes (and the checkpoint after them) and queue them for the committer."""
        assert self.committer is not None
        tasks = [(w.task_id, w.writes, w.task_path) for w in writes]
        with naming_nodes(writes):
            if effect is None:
                save = self.saver.prepare_save(  # type: ignore[attr-defined]
                    self.config, tasks, expected_head=self.config["configurable"].get("checkpoint_id")
                )
            else:
                save = self.saver.prepare_save(  # type: ignore[attr-defined]
                    self.config,
                    tasks,
                    effect.checkpoint,
                    effect.metadata,
                    effect.new_versions,
                    expected_head=self.head,
                )
        self.committer.submit(save)
        if effect is not None:
            self.config, self.head = save.new_config, save.put.checkpoint_id

    def put_checkpoint(self, effect: SaveCheckpoint) -> None:
        deferred = self.deferred
        if self.committer is not None:
            self._submit(deferred, effect)
            deferred.clear()
            return
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
        if self.committer is not None:
            self._submit([effect], None)
            self.committer.kick()  # committed while the step's other tasks still run
            return
        with naming_nodes([effect]):
            self.saver.put_writes_guarded(self.config, effect.writes, effect.task_id, effect.task_path)

    def flush(self, *, ending: bool = False) -> None:
        """Save held-back writes; with a committer, also start committing the queue (`ending`: the run stops,
        and the root run's end commits what is left itself)."""
        if self.committer is not None:
            if self.deferred:
                self._submit(self.deferred, None)
                self.deferred.clear()
            if not ending:
                self.committer.kick()
            return
        while self.deferred:
            effect = self.deferred[0]
            with naming_nodes([effect]):
                self.saver.put_writes_guarded(self.config, effect.writes, effect.task_id, effect.task_path)
            self.deferred.pop(0)

    async def aput_checkpoint(self, effect: SaveCheckpoint) -> None:
        if self.committer is not None:
            self.put_checkpoint(effect)
            return
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
        if self.committer is not None:
            self.put_writes(effect)
            return
        await self.aflush()
        with naming_nodes([effect]):
            await self.saver.aput_writes_guarded(self.config, effect.writes, effect.task_id, effect.task_path)

    async def aflush(self, *, ending: bool = False) -> None:
        if self.committer is not None:
            self.flush(ending=ending)
            return
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
    step_timeout: float | None = None
    """Seconds a step's tasks may run (`Pregel.step_timeout`); None: no limit."""
    label: str = ""
    """Names the run in log lines (its thread)."""
    demand: Any = None
    """An async root run's `asyncio.Event`: set while the caller waits for events (steps start only then)."""
    steps: int = 0
    """Steps run so far (for the log line at the run's end)."""
    cache: BaseCache[Any] | None = None
    """The graph's cache (None: nothing is cached); read and written by the cache effects."""
