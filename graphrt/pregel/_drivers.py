"""Drivers: perform the loop's effects, sync (inline or thread pool) and async (anyio task group).

This is the only module that knows about concurrency. Both drivers walk the same generator
(`_loop.run_loop`) and put `(namespace, mode, chunk)` events into the run's sink as they happen; a root
run's driver hands them to the caller, a nested run's sink forwards them to the root's.

Nesting never deadlocks: a nested run waiting for its step's tasks runs any that no pool worker has
taken, so a parent holding pool threads never waits on work that can't start.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import os
import queue
import threading
import time
from collections.abc import AsyncGenerator, Generator, Iterator, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import anyio

from graphrt._context import enter_task, exit_task
from graphrt._log import log_retry, log_run_end, log_run_start, log_step
from graphrt.errors import GraphBubbleUp, GraphInterrupt, NodeTimeoutError, ParentCommand
from graphrt.pregel._cache import ReadCache, WriteCache, aread_cache, awrite_cache, read_cache, write_cache
from graphrt.pregel._io import Event, RunIO, Sink
from graphrt.pregel._loop import Effect, Emit, RunTasks, SaveCheckpoint, StepOutcome
from graphrt.pregel._retry import next_delay
from graphrt.pregel._spec import Task
from graphrt.pregel._timer import delayed_starts
from graphrt.pregel._units import asettle, cancel_units, settle
from graphrt.types import Command


@dataclass(frozen=True, slots=True)
class _Done:
    """A task finished (put in the same queue as events, so a waiting root driver wakes for either)."""

    task: Task
    error: BaseException | None


# ---------------------------------------------------------------- sync


def drive_sync(loop: Generator[Effect, Any, None], io: RunIO) -> Generator[Event, None, None]:
    """Run the loop to the end, yielding the run's stream events as they happen."""
    log_run_start(io.label)
    try:
        yield from _drive_sync(loop, io)
    except Exception as exc:
        log_run_end(io.label, io.steps, exc)
        raise
    finally:
        if io.writer is not None:
            io.writer.flush(ending=True)  # the run stopped (done, error, or the caller closed the stream)
    log_run_end(io.label, io.steps)


def _drive_sync(loop: Generator[Effect, Any, None], io: RunIO) -> Iterator[Event]:
    reply: Any = None
    sink = io.sink
    while True:
        try:
            effect = loop.send(reply)
        except StopIteration:
            yield from sink.drain()
            return
        reply = None
        kind = type(effect)
        if kind is Emit:
            sink.emit(effect.mode, effect.chunk)  # type: ignore[union-attr]
        elif kind is RunTasks:
            _log_step(effect, io)  # type: ignore[arg-type]
            if io.writer is not None:
                io.writer.flush()
            inline = not io.live and io.step_timeout is None
            if inline and len(effect.tasks) == 1:  # type: ignore[union-attr]
                reply = _run_one_sync(effect, io)  # type: ignore[arg-type]
            elif inline and io.writer is None:
                reply = yield from _run_inline_first(effect, io)  # type: ignore[arg-type]
            else:
                reply = yield from _run_tasks_sync(effect, io)  # type: ignore[arg-type]
        elif kind is ReadCache:
            reply = read_cache(io.cache, effect.keys)  # type: ignore[union-attr]
        elif kind is WriteCache:
            write_cache(io.cache, effect.key, effect.value)  # type: ignore[union-attr]
        elif io.writer is not None:
            if kind is SaveCheckpoint:
                io.writer.put_checkpoint(effect)  # type: ignore[arg-type]
            else:
                io.writer.put_writes(effect)  # type: ignore[arg-type]
            continue  # a save emits no events
        if sink.pending():
            yield from sink.drain()


def _log_step(effect: RunTasks, io: RunIO) -> None:
    io.steps += 1
    log_step(effect.tasks)


def _perform_sync(effects: Sequence[Effect], io: RunIO, last: bool = False) -> None:
    """A finished task's effects; the step's `last` task's writes wait for the step's checkpoint."""
    for effect in effects:
        if type(effect) is Emit:
            io.sink.emit(effect.mode, effect.chunk)
        elif type(effect) is WriteCache:
            write_cache(io.cache, effect.key, effect.value)
        elif io.writer is not None:
            io.writer.put_writes(effect, last=last)  # type: ignore[arg-type]


_POOL_SIZE = 32
_HELP_AFTER = 0.005
"""Seconds a nested run's driver waits for a pool worker to take one of its tasks before running it itself."""
_pool: concurrent.futures.ThreadPoolExecutor | None = None


def _forget_pool() -> None:
    """In a forked child: the parent's pool threads do not exist there, and work submitted to its pool would
    never run (a step's tasks would wait forever); the child starts a pool of its own."""
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _shared_pool() -> concurrent.futures.ThreadPoolExecutor:
    """One process-wide pool: threads are reused across steps and runs instead of started per step."""
    global _pool
    if _pool is None:
        _pool = concurrent.futures.ThreadPoolExecutor(_POOL_SIZE, thread_name_prefix="graphrt")
    return _pool


def submit(func: Any, *args: Any) -> None:
    """Start `func(*args)` on the shared pool (a `@task` call; its waiter runs it if no worker has)."""
    _shared_pool().submit(func, *args)


def _run_one_sync(effect: RunTasks, io: RunIO) -> StepOutcome:
    """A step of one task runs inline, in the driver's thread (no pool, no queue)."""
    task = effect.tasks[0]
    error = run_task_sync(task, io)
    _perform_sync(effect.after_task(task, error), io, last=True)
    return _CLEAN if error is None else _outcome(effect.tasks, [(task, error)])


class _Queued:
    """A step's tasks waiting for a thread, and where each reports when it finished (`_Done`)."""

    def __init__(self, tasks: Sequence[Task], done: Any, io: RunIO) -> None:
        self.todo: queue.SimpleQueue[Task] = queue.SimpleQueue()
        for task in tasks:
            self.todo.put(task)
        self.done = done
        self.io = io
        self.context = contextvars.copy_context()

    def run_one(self) -> bool:
        """Run the next queued task (in a copy of the step's context); False when none is left."""
        try:
            task = self.todo.get_nowait()
        except queue.Empty:
            return False
        self.done.put(_Done(task, self.context.copy().run(run_task_sync, task, self.io)))
        return True

    def run_all(self) -> None:
        """A pool worker: run queued tasks until none is left."""
        while self.run_one():
            pass


def _run_inline_first(effect: RunTasks, io: RunIO) -> Generator[Event, Any, StepOutcome]:
    """The step's tasks, one after another in the driver's thread, while each finishes quickly.

    Pool workers join only when a task runs longer than `_timer.START_DELAY` (one waiting on I/O, say): from
    then on the rest run in parallel, as in `_run_tasks_sync`. Tasks that compute hold the GIL anyway, and
    in threads each hand-over of it costs more than the task: measured here, a fan-out of 100 three-node
    subgraphs took 11.5 ms inline and 13 to 17 ms in 32 threads (medians). Only for runs with nothing to save: while the
    driver's thread runs a long task, a sibling that finished in a worker would wait for it to have its
    writes saved (`_run_tasks_sync` saves each as soon as it finishes).
    """
    tasks = effect.tasks
    done = Sink(frozenset()) if io.nested else io.sink  # the root's sink carries its events too
    queued = _Queued(tasks, done, io)
    results: list[tuple[Task, BaseException | None]] = []
    workers = min(len(tasks), io.max_concurrency or _POOL_SIZE, _POOL_SIZE) - 1
    futures: list[concurrent.futures.Future[None]] = []
    lock = threading.Lock()

    def recruit() -> None:  # on the timer's thread (it may fire again before `futures` is seen non-empty)
        with lock:
            if not futures:
                futures.extend(_shared_pool().submit(queued.run_all) for _ in range(workers))

    try:
        while len(results) < len(tasks):
            try:
                task = queued.todo.get_nowait()
            except queue.Empty:  # the rest run in pool workers: wait for one of them
                try:
                    items = [done.get(timeout=1.0)]
                except queue.Empty:
                    with lock:
                        _raise_if_worker_died(futures)
                    continue
            else:
                if workers and not futures:
                    delayed_starts.arm(queued, recruit)
                error = run_task_sync(task, io)
                delayed_starts.cancel(queued)
                items = [_Done(task, error)]
            if done.pending():
                items.extend(done.drain())
            for item in items:
                if type(item) is _Done:
                    results.append((item.task, item.error))
                    _perform_sync(effect.after_task(item.task, item.error), io, last=len(results) == len(tasks))
                else:
                    yield item
    finally:
        delayed_starts.cancel(queued)
    return _outcome(tasks, results)


def _run_tasks_sync(effect: RunTasks, io: RunIO) -> Generator[Event, Any, StepOutcome]:
    """The step's tasks are drained from a queue by up to `max_concurrency` pool workers.

    The driver's thread performs each finished task's effects (save its writes, stream its events) as
    soon as it arrives, so a task's writes are durable even while its siblings still run. A nested run's
    driver runs a queued task itself when no pool worker has taken it (the pool may be full of waiting
    parents); a root run's driver stays free to hand events to the caller.
    """
    tasks = effect.tasks
    results: list[tuple[Task, BaseException | None]] = []
    if tasks:
        done: Any = queue.SimpleQueue() if io.nested else io.sink
        queued = _Queued(tasks, done, io)
        workers = min(len(tasks), io.max_concurrency or _POOL_SIZE, _POOL_SIZE)
        futures = [_shared_pool().submit(queued.run_all) for _ in range(workers)]
        deadline = None if io.step_timeout is None else time.monotonic() + io.step_timeout
        while len(results) < len(tasks):
            wait = _HELP_AFTER if io.nested else 1.0
            if deadline is not None:
                wait = min(wait, deadline - time.monotonic())
                if wait <= 0:
                    return _timed_out(tasks, results, queued.todo, io)
            try:
                item = done.get(timeout=wait)
            except queue.Empty:
                # A nested run whose tasks no worker has taken (the pool is busy with its parents) runs
                # one itself; otherwise finished tasks are handled here at once (their writes saved).
                if io.nested and not queued.todo.empty():
                    queued.run_one()
                else:
                    _raise_if_worker_died(futures)
                continue
            if type(item) is _Done:
                results.append((item.task, item.error))
                _perform_sync(effect.after_task(item.task, item.error), io, last=len(results) == len(tasks))
            else:
                yield item
    return _outcome(tasks, results)


def _timed_out(
    tasks: Sequence[Task], results: list[tuple[Task, BaseException | None]], todo: queue.SimpleQueue[Task], io: RunIO
) -> StepOutcome:
    """The step ran past `step_timeout`: tasks not started never start; those still running (a thread can't
    be stopped) finish in the background, and nothing they write is saved or applied."""
    while not todo.empty():
        todo.get_nowait()
    finished = {task.id for task, _ in results}
    return _late_outcome(tasks, results, [task for task in tasks if task.id not in finished], io.step_timeout)


def _late_outcome(
    tasks: Sequence[Task],
    results: list[tuple[Task, BaseException | None]],
    late: Sequence[Task],
    timeout: float | None,
) -> StepOutcome:
    """The step's outcome when `late` tasks did not finish within `step_timeout`: each fails with TimeoutError."""
    names = ", ".join(sorted({repr(task.name) for task in late}))
    error = TimeoutError(
        f"Step {late[0].ctx.step} did not finish within step_timeout={timeout}s (still running: {names}). "
        "What the step's finished tasks wrote is saved: run the thread again (input None) to retry the rest, "
        "or raise the graph's step_timeout."
    )
    return _outcome(tasks, [*results, *((task, error) for task in late)])


def _raise_if_worker_died(futures: list[concurrent.futures.Future[None]]) -> None:
    for future in futures:
        if future.done() and future.exception() is not None:
            raise future.exception()  # type: ignore[misc]


def run_task_sync(task: Task, io: RunIO | None = None) -> BaseException | None:
    """Run one task with its retry policy; returns the exception (or signal) it ended with, if any."""
    token = enter_task(task.ctx)
    task.ctx.started_at = time.time()
    try:
        attempt = 0
        while True:
            attempt += 1
            try:
                task.node.proc.run(task)
                return None
            except ParentCommand as signal:
                return _route_parent_command(task, signal)
            except GraphBubbleUp as signal:
                return signal
            except Exception as exc:
                delay = next_delay(task.node.retry_policy, attempt, exc)
                if delay is None:
                    _note(exc, task)
                    return exc
                task.writes.clear()
                task.ctx.calls = task.ctx.nested_runs = 0
                task.ctx.attempt = attempt + 1
                log_retry(task.name, attempt, delay, exc)
                settle(task.ctx)  # the retry reuses what the attempt's `@task` calls return
                time.sleep(delay)
    finally:
        settle(task.ctx)
        exit_task(token)


def _route_parent_command(task: Task, signal: ParentCommand) -> BaseException | None:
    """A `Command(graph=Command.PARENT)` leaving a run: apply it here if it is addressed to this task.

    Inside a nested run the command is readdressed to the task the run nests in; that task (one level up)
    applies it as if its node had returned it. At the root it keeps travelling (LangGraph raises it too).
    """
    command = signal.args[0]
    if command.graph == task.ctx.interrupt_ns:
        task.writes.clear()
        task.node.proc.write_command(task, Command(update=command.update, goto=command.goto, resume=command.resume))
        return None
    scope = task.ctx.run.scope
    if command.graph == Command.PARENT and scope.task_ns is not None:
        return ParentCommand(
            Command(graph=scope.task_ns, update=command.update, goto=command.goto, resume=command.resume)
        )
    return signal


def _note(exc: BaseException, task: Task) -> None:
    exc.add_note(f"During task with name '{task.name}' and id '{task.id}' (step {task.ctx.step})")


_CLEAN = StepOutcome()
"""A step whose tasks all finished (frozen, so one instance serves every step)."""


def _outcome(tasks: Sequence[Task], results: list[tuple[Task, BaseException | None]]) -> StepOutcome:
    """Errors win over interrupts; the first error by task order is raised (unless error handlers take the
    failures: `failed` lists them all, when no signal such as a parent `Command` is among them)."""
    if all(error is None for _, error in results):
        return _CLEAN
    if len(results) > 1:
        order = {t.id: i for i, t in enumerate(tasks)}
        results.sort(key=lambda r: order[r[0].id])
    for _, error in results:
        if error is not None and not isinstance(error, GraphInterrupt):
            signal = any(isinstance(e, GraphBubbleUp) and not isinstance(e, GraphInterrupt) for _, e in results)
            failed = (
                ()
                if signal
                else tuple((t, e) for t, e in results if e is not None and not isinstance(e, GraphBubbleUp))
            )
            interrupts = tuple((t, tuple(e.interrupts)) for t, e in results if isinstance(e, GraphInterrupt))
            return StepOutcome(interrupts=interrupts, error=error, failed=failed)
    interrupts = tuple((task, tuple(error.interrupts)) for task, error in results if isinstance(error, GraphInterrupt))
    return StepOutcome(interrupts=interrupts)


# ---------------------------------------------------------------- async


async def drive_async(loop: Generator[Effect, Any, None], io: RunIO) -> AsyncGenerator[Event, None]:
    """Async twin of `drive_sync`: a root run hands events to the caller while its tasks still run."""
    log_run_start(io.label)
    try:
        async with aclosing(_drive_async(loop, io)) as events:  # closed at once when the caller stops early
            async for event in events:
                yield event
    except Exception as exc:
        log_run_end(io.label, io.steps, exc)
        raise
    finally:
        if io.writer is not None:
            with anyio.CancelScope(shield=True):
                await io.writer.aflush(ending=True)
    log_run_end(io.label, io.steps)


async def _drive_async(loop: Generator[Effect, Any, None], io: RunIO) -> AsyncGenerator[Event, None]:
    if io.nested:
        await _walk_async(loop, io)
        for event in io.sink.drain():
            yield event
        return
    sink = io.sink
    wake = asyncio.Event()
    event_loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()

    def notify() -> None:
        if threading.get_ident() == loop_thread:
            wake.set()
        else:
            event_loop.call_soon_threadsafe(wake.set)

    sink.wake = notify
    # A step starts only once the caller has read every earlier event (as a sync stream would): a caller
    # that stops early never finds later steps run ahead of what it saw.
    demand = io.demand = asyncio.Event()
    walker = asyncio.ensure_future(_walk_async(loop, io))
    walker.add_done_callback(lambda _: wake.set())
    try:
        while True:
            for event in sink.drain():
                yield event
            if walker.done():
                for event in sink.drain():
                    yield event
                walker.result()
                return
            demand.set()  # caught up: the run may start its next step
            await wake.wait()
            wake.clear()
            demand.clear()
    finally:
        sink.wake = None
        if not walker.done():
            # The caller stopped early: stop the run, and let a save in flight finish before the caller
            # goes on (its thread claim is released after this).
            walker.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.wait([walker])


async def _walk_async(loop: Generator[Effect, Any, None], io: RunIO) -> None:
    """Perform the loop's effects on the current event loop; events go to the run's sink."""
    reply: Any = None
    while True:
        try:
            effect = loop.send(reply)
        except StopIteration:
            return
        reply = None
        kind = type(effect)
        if kind is Emit:
            io.sink.emit(effect.mode, effect.chunk)  # type: ignore[union-attr]
        elif kind is RunTasks:
            _log_step(effect, io)  # type: ignore[arg-type]
            if io.demand is not None:
                await io.demand.wait()
            if io.writer is not None:
                await io.writer.aflush()
            reply = await _run_tasks_async(effect, io)  # type: ignore[arg-type]
        elif kind is ReadCache:
            reply = await aread_cache(io.cache, effect.keys)  # type: ignore[union-attr]
        elif kind is WriteCache:
            await awrite_cache(io.cache, effect.key, effect.value)  # type: ignore[union-attr]
        elif io.writer is not None:
            if kind is SaveCheckpoint:
                await io.writer.aput_checkpoint(effect)  # type: ignore[arg-type]
            else:
                await io.writer.aput_writes(effect)  # type: ignore[arg-type]


async def _perform_async(effects: Sequence[Effect], io: RunIO, last: bool = False) -> None:
    for effect in effects:
        if type(effect) is Emit:
            io.sink.emit(effect.mode, effect.chunk)
        elif type(effect) is WriteCache:
            await awrite_cache(io.cache, effect.key, effect.value)
        elif io.writer is not None:
            await io.writer.aput_writes(effect, last=last)  # type: ignore[arg-type]


async def _run_tasks_async(effect: RunTasks, io: RunIO) -> StepOutcome:
    """Run the step's tasks in an anyio task group; a sync node runs in a worker thread."""
    results: list[tuple[Task, BaseException | None]] = []
    limiter = anyio.Semaphore(io.max_concurrency) if io.max_concurrency else None

    timeout = io.step_timeout
    deadline = None if timeout is None else anyio.current_time() + timeout
    late: list[Task] = []

    async def run(task: Task) -> BaseException | None:
        if limiter is None:
            return await run_task_async(task)
        async with limiter:
            return await run_task_async(task)

    async def one(task: Task) -> None:
        if deadline is None:
            error = await run(task)
        else:
            with anyio.CancelScope(deadline=deadline) as scope:  # the step's time limit stops the task, not a save
                error = await run(task)
            if scope.cancelled_caught:
                late.append(task)  # nothing it wrote is saved or applied
                return
        results.append((task, error))
        await _perform_async(effect.after_task(task, error), io, last=len(results) == len(effect.tasks))

    if len(effect.tasks) == 1:
        await one(effect.tasks[0])
    else:
        async with anyio.create_task_group() as group:
            for task in effect.tasks:
                group.start_soon(one, task)
    if late:
        return _late_outcome(effect.tasks, results, late, timeout)
    return _outcome(effect.tasks, results)


async def _arun_within(task: Task, limit: float) -> None:
    """One attempt of a node with a `timeout`: cancelled and failed with `NodeTimeoutError` past `limit` seconds."""
    started = time.monotonic()
    with anyio.move_on_after(limit) as scope:
        await task.node.proc.arun(task)
    if scope.cancelled_caught:
        cancel_units(task.ctx)  # its `@task` calls are abandoned with it
        raise NodeTimeoutError(task.name, time.monotonic() - started, kind="run", run_timeout=limit)


async def run_task_async(task: Task) -> BaseException | None:
    """Async twin of `run_task_sync`."""
    token = enter_task(task.ctx)
    task.ctx.started_at = time.time()
    try:
        attempt = 0
        while True:
            attempt += 1
            try:
                if task.node.timeout is None:
                    await task.node.proc.arun(task)
                else:
                    await _arun_within(task, task.node.timeout)
                return None
            except ParentCommand as signal:
                return _route_parent_command(task, signal)
            except GraphBubbleUp as signal:
                return signal
            except Exception as exc:
                delay = next_delay(task.node.retry_policy, attempt, exc)
                if delay is None:
                    _note(exc, task)
                    return exc
                task.writes.clear()
                task.ctx.calls = task.ctx.nested_runs = 0
                task.ctx.attempt = attempt + 1
                log_retry(task.name, attempt, delay, exc)
                await asettle(task.ctx)  # the retry reuses what the attempt's `@task` calls return
                await anyio.sleep(delay)
    finally:
        await asettle(task.ctx)
        exit_task(token)
