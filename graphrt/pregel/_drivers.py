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
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio

from graphrt._log import log_retry, log_run_end, log_run_start, log_step
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
    max_concurrency: int | None = None
    custom: deque[Event] = field(default_factory=deque)
    """Chunks from `get_stream_writer()`, drained between effects (appended from any thread)."""
    label: str = ""
    """Names the run in log lines (its thread)."""


# ---------------------------------------------------------------- sync


def drive_sync(loop: Generator[Effect, Any, None], io: RunIO) -> Iterator[Event]:
    """Run the loop to the end, yielding stream events."""
    steps = [0]
    log_run_start(io.label)
    try:
        yield from _drive_sync(loop, io, steps)
    except Exception as exc:
        log_run_end(io.label, steps[0], exc)
        raise
    log_run_end(io.label, steps[0])


def _drive_sync(loop: Generator[Effect, Any, None], io: RunIO, steps: list[int]) -> Iterator[Event]:
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
            steps[0] += 1
            log_step(_step_of(effect), [t.name for t in effect.tasks])  # type: ignore[arg-type,union-attr]
            reply = yield from _run_tasks_sync(effect, io)  # type: ignore[arg-type]
        elif kind is SaveCheckpoint:
            if io.put_checkpoint is not None:
                io.put_checkpoint(effect)  # type: ignore[arg-type]
        elif io.put_writes is not None:
            io.put_writes(effect)  # type: ignore[arg-type]


def _step_of(effect: RunTasks) -> int:
    return effect.tasks[0].ctx.step if effect.tasks else -1


def _drain(io: RunIO) -> Iterator[Event]:
    while io.custom:
        yield io.custom.popleft()


def _perform_sync(effects: Sequence[Effect], io: RunIO) -> Iterator[Event]:
    for effect in effects:
        if type(effect) is Emit:
            yield (effect.mode, effect.chunk)
        elif type(effect) is SaveWrites and io.put_writes is not None:
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
        yield from _perform_sync(effect.after_task(task, error), io)
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
            yield from _perform_sync(effect.after_task(task, error), io)
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
                log_retry(task.name, attempt, delay, exc)
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


async def drive_async(loop: Generator[Effect, Any, None], io: RunIO) -> AsyncIterator[Event]:
    """Run the loop to the end on the current event loop, yielding stream events."""
    steps = [0]
    log_run_start(io.label)
    try:
        async for event in _drive_async(loop, io, steps):
            yield event
    except Exception as exc:
        log_run_end(io.label, steps[0], exc)
        raise
    log_run_end(io.label, steps[0])


async def _drive_async(loop: Generator[Effect, Any, None], io: RunIO, steps: list[int]) -> AsyncIterator[Event]:
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
            steps[0] += 1
            log_step(_step_of(effect), [t.name for t in effect.tasks])  # type: ignore[arg-type,union-attr]
            events: list[Event] = []
            reply = await _run_tasks_async(effect, io, events)  # type: ignore[arg-type]
            for event in events:
                yield event
        elif kind is SaveCheckpoint:
            if io.aput_checkpoint is not None:
                await io.aput_checkpoint(effect)  # type: ignore[arg-type]
        elif io.aput_writes is not None:
            await io.aput_writes(effect)  # type: ignore[arg-type]


async def _perform_async(effects: Sequence[Effect], io: RunIO, events: list[Event]) -> None:
    for effect in effects:
        if type(effect) is Emit:
            events.extend(_drain(io))
            events.append((effect.mode, effect.chunk))
        elif type(effect) is SaveWrites and io.aput_writes is not None:
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
        await _perform_async(effect.after_task(task, error), io, events)

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
                log_retry(task.name, attempt, delay, exc)
                await anyio.sleep(delay)
    finally:
        exit_task(token)
