"""Drivers: perform the loop's effects, sync (inline or thread pool) and async (anyio task group).

This is the only module that knows about concurrency. Both drivers walk the same generator
(`_loop.run_loop`) and hand the caller `(mode, chunk)` stream events as they happen.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import queue
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from graphrt.errors import GraphBubbleUp, GraphInterrupt
from graphrt.pregel._algo import Task
from graphrt.pregel._context import enter_task, exit_task
from graphrt.pregel._loop import Effect, Emit, RunTasks, SaveCheckpoint, SaveWrites, StepOutcome
from graphrt.pregel._retry import next_delay

Event = tuple[str, Any]


@dataclass(slots=True)
class RunIO:
    """The I/O a run performs: saving (bound to a checkpointer and thread) and the custom-event queue."""

    put_checkpoint: Callable[[SaveCheckpoint], None] | None = None
    put_writes: Callable[[SaveWrites], None] | None = None
    aput_checkpoint: Callable[[SaveCheckpoint], Any] | None = None
    aput_writes: Callable[[SaveWrites], Any] | None = None
    put_step: Callable[[SaveCheckpoint, list[SaveWrites]], None] | None = None
    """Saves task writes and the checkpoint after them in one transaction (one commit per step)."""
    aput_step: Callable[[SaveCheckpoint, list[SaveWrites]], Any] | None = None
    deferred: list[SaveWrites] = field(default_factory=list)
    """The step's last finishing task's writes, held back to be saved with the next checkpoint."""
    max_concurrency: int | None = None
    custom: deque[Event] = field(default_factory=deque)
    """Chunks from `get_stream_writer()`, drained between effects (appended from any thread)."""


# ---------------------------------------------------------------- sync


def drive_sync(loop: Generator[Effect, Any, None], io: RunIO) -> Generator[Event, None, None]:
    """Run the loop to the end, yielding stream events."""
    try:
        yield from _drive_sync(loop, io)
    finally:
        _flush_sync(io)  # the run stopped (done, error, or the caller closed the stream)


def _drive_sync(loop: Generator[Effect, Any, None], io: RunIO) -> Iterator[Event]:
    reply: Any = None
    while True:
        try:
            effect = loop.send(reply)
        except StopIteration:
            yield from _drain(io)
            return
        reply = None
        kind = type(effect)
        if kind is Emit:
            yield from _drain(io)
            yield (effect.mode, effect.chunk)  # type: ignore[union-attr]
        elif kind is RunTasks:
            _flush_sync(io)
            reply = yield from _run_tasks_sync(effect, io)  # type: ignore[arg-type]
        elif kind is SaveCheckpoint:
            if io.deferred and io.put_step is not None:
                deferred, io.deferred = io.deferred, []
                io.put_step(effect, deferred)  # type: ignore[arg-type]
            elif io.put_checkpoint is not None:
                io.put_checkpoint(effect)  # type: ignore[arg-type]
        elif io.put_writes is not None:
            _flush_sync(io)
            io.put_writes(effect)  # type: ignore[arg-type]


def _flush_sync(io: RunIO) -> None:
    """Save held-back task writes on their own (no checkpoint followed them)."""
    while io.deferred and io.put_writes is not None:
        io.put_writes(io.deferred.pop(0))


def _drain(io: RunIO) -> Iterator[Event]:
    while io.custom:
        yield io.custom.popleft()


def _perform_sync(effects: Sequence[Effect], io: RunIO, last: bool = False) -> Iterator[Event]:
    """A finished task's effects; the step's last task's writes wait for the checkpoint that follows.

    Earlier siblings' writes are saved at once, so a crash never loses a finished sibling; the last
    one's are committed with the step's checkpoint (one transaction), or on their own if none follows.
    """
    for effect in effects:
        if type(effect) is Emit:
            yield (effect.mode, effect.chunk)
        elif type(effect) is SaveWrites:
            if last and io.put_step is not None:
                io.deferred.append(effect)
            elif io.put_writes is not None:
                io.put_writes(effect)


_POOL_SIZE = 32
_pool: concurrent.futures.ThreadPoolExecutor | None = None


def _shared_pool() -> concurrent.futures.ThreadPoolExecutor:
    """One process-wide pool: threads are reused across steps and runs instead of started per step."""
    global _pool
    if _pool is None:
        _pool = concurrent.futures.ThreadPoolExecutor(_POOL_SIZE, thread_name_prefix="graphrt")
    return _pool


def _run_tasks_sync(effect: RunTasks, io: RunIO) -> Generator[Event, Any, StepOutcome]:
    """One task runs inline; several are drained from a queue by up to `max_concurrency` pool workers.

    The calling thread performs each finished task's effects (save its writes, stream its events) as
    soon as it arrives, so a task's writes are durable even while its siblings still run.
    """
    tasks = effect.tasks
    results: list[tuple[Task, BaseException | None]] = []
    if len(tasks) == 1:
        task = tasks[0]
        error = run_task_sync(task)
        results.append((task, error))
        yield from _drain(io)
        yield from _perform_sync(effect.after_task(task, error), io, last=True)
    elif tasks:
        todo: queue.SimpleQueue[Task] = queue.SimpleQueue()
        for task in tasks:
            todo.put(task)
        finished: queue.SimpleQueue[tuple[Task, BaseException | None]] = queue.SimpleQueue()
        workers = min(len(tasks), io.max_concurrency or _POOL_SIZE, _POOL_SIZE)
        context = contextvars.copy_context()

        def work() -> None:
            while True:
                try:
                    task = todo.get_nowait()
                except queue.Empty:
                    return
                finished.put((task, context.copy().run(run_task_sync, task)))

        futures = [_shared_pool().submit(work) for _ in range(workers)]
        for _ in range(len(tasks)):
            while True:
                try:
                    task, error = finished.get(timeout=0.05)
                    break
                except queue.Empty:
                    yield from _drain(io)
                    _raise_if_worker_died(futures)
            results.append((task, error))
            yield from _drain(io)
            yield from _perform_sync(effect.after_task(task, error), io, last=len(results) == len(tasks))
    return _outcome(tasks, results)


def _raise_if_worker_died(futures: list[concurrent.futures.Future[None]]) -> None:
    for future in futures:
        if future.done() and future.exception() is not None:
            raise future.exception()  # type: ignore[misc]


def run_task_sync(task: Task) -> BaseException | None:
    """Run one task with its retry policy; returns the exception it ended with, if any."""
    token = enter_task(task.ctx)
    try:
        attempt = 0
        while True:
            attempt += 1
            try:
                task.node.proc.run(task)
                return None
            except GraphBubbleUp as signal:
                return signal
            except Exception as exc:
                delay = next_delay(task.node.retry_policy, attempt, exc)
                if delay is None:
                    _note(exc, task)
                    return exc
                task.writes.clear()
                time.sleep(delay)
    finally:
        exit_task(token)


def _note(exc: BaseException, task: Task) -> None:
    exc.add_note(f"During task with name '{task.name}' and id '{task.id}' (step {task.ctx.step})")


def _outcome(tasks: Sequence[Task], results: list[tuple[Task, BaseException | None]]) -> StepOutcome:
    """Errors win over interrupts; the first error by task order is raised."""
    if len(results) > 1:
        order = {t.id: i for i, t in enumerate(tasks)}
        results.sort(key=lambda r: order[r[0].id])
    for _, error in results:
        if error is not None and not isinstance(error, GraphInterrupt):
            return StepOutcome(error=error)
    interrupts = tuple((task, tuple(error.interrupts)) for task, error in results if isinstance(error, GraphInterrupt))
    return StepOutcome(interrupts=interrupts)


# ---------------------------------------------------------------- async


async def drive_async(loop: Generator[Effect, Any, None], io: RunIO) -> AsyncGenerator[Event, None]:
    """Run the loop to the end on the current event loop, yielding stream events."""
    try:
        async for event in _drive_async(loop, io):
            yield event
    finally:
        with anyio.CancelScope(shield=True):
            await _flush_async(io)


async def _flush_async(io: RunIO) -> None:
    while io.deferred and io.aput_writes is not None:
        await io.aput_writes(io.deferred.pop(0))


async def _drive_async(loop: Generator[Effect, Any, None], io: RunIO) -> AsyncIterator[Event]:
    reply: Any = None
    while True:
        try:
            effect = loop.send(reply)
        except StopIteration:
            for event in _drain(io):
                yield event
            return
        reply = None
        kind = type(effect)
        if kind is Emit:
            for event in _drain(io):
                yield event
            yield (effect.mode, effect.chunk)  # type: ignore[union-attr]
        elif kind is RunTasks:
            await _flush_async(io)
            events: list[Event] = []
            reply = await _run_tasks_async(effect, io, events)  # type: ignore[arg-type]
            for event in events:
                yield event
        elif kind is SaveCheckpoint:
            if io.deferred and io.aput_step is not None:
                deferred, io.deferred = io.deferred, []
                await io.aput_step(effect, deferred)  # type: ignore[arg-type]
            elif io.aput_checkpoint is not None:
                await io.aput_checkpoint(effect)  # type: ignore[arg-type]
        elif io.aput_writes is not None:
            await _flush_async(io)
            await io.aput_writes(effect)  # type: ignore[arg-type]


async def _perform_async(effects: Sequence[Effect], io: RunIO, events: list[Event], last: bool = False) -> None:
    """Async twin of `_perform_sync`."""
    for effect in effects:
        if type(effect) is Emit:
            events.extend(_drain(io))
            events.append((effect.mode, effect.chunk))
        elif type(effect) is SaveWrites:
            if last and io.aput_step is not None:
                io.deferred.append(effect)
            elif io.aput_writes is not None:
                await io.aput_writes(effect)


async def _run_tasks_async(effect: RunTasks, io: RunIO, events: list[Event]) -> StepOutcome:
    """Run the step's tasks in an anyio task group; a sync node runs in a worker thread."""
    results: list[tuple[Task, BaseException | None]] = []
    limiter = anyio.Semaphore(io.max_concurrency) if io.max_concurrency else None

    async def one(task: Task) -> None:
        if limiter is not None:
            async with limiter:
                error = await run_task_async(task)
        else:
            error = await run_task_async(task)
        results.append((task, error))
        last = len(results) == len(effect.tasks)
        await _perform_async(effect.after_task(task, error), io, events, last)

    if len(effect.tasks) == 1:
        await one(effect.tasks[0])
    else:
        async with anyio.create_task_group() as group:
            for task in effect.tasks:
                group.start_soon(one, task)
    events.extend(_drain(io))
    return _outcome(effect.tasks, results)


async def run_task_async(task: Task) -> BaseException | None:
    """Async twin of `run_task_sync`."""
    token = enter_task(task.ctx)
    try:
        attempt = 0
        while True:
            attempt += 1
            try:
                await task.node.proc.arun(task)
                return None
            except GraphBubbleUp as signal:
                return signal
            except Exception as exc:
                delay = next_delay(task.node.retry_policy, attempt, exc)
                if delay is None:
                    _note(exc, task)
                    return exc
                task.writes.clear()
                await anyio.sleep(delay)
    finally:
        exit_task(token)
