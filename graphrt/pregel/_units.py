"""`@task` calls: child units of work spawned by a running task, in the middle of its step.

A unit's id derives from its parent task's id and its call index, so a re-executed parent (after an
interrupt, a failure or a crash) meets the same ids in the same order. A unit whose result was saved
against the checkpoint returns it without running; a new one runs (a thread of the shared pool in sync
code, the event loop in async code), and its result is saved the moment it finishes. Waiting on a unit
that has not started yet runs it in the waiting thread, so nesting never waits on a busy pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from hashlib import blake2b
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from graphrt._context import TaskContext, enter_task, exit_task
from graphrt.errors import GraphBubbleUp
from graphrt.pregel._cache import UnitCache, aread_cache, awrite_cache, cacheable, read_cache, write_cache
from graphrt.pregel._call import is_async_callable
from graphrt.pregel._loop import SaveWrites
from graphrt.pregel._retry import next_delay
from graphrt.pregel._spec import PUSH, RETURN, UNIT_NAME
from graphrt.types import RetryPolicy

if TYPE_CHECKING:
    from graphrt.pregel._algo import SavedTask
    from graphrt.pregel._io import RunIO


@dataclass(frozen=True, slots=True)
class Unit:
    """What a `@task` function is: its name, its function, and how to retry and cache it."""

    name: str
    func: Callable[..., Any]
    retry_policy: tuple[RetryPolicy, ...] = ()
    cache: UnitCache | None = None

    @property
    def is_async(self) -> bool:
        return is_async_callable(self.func)


class UnitOrderError(RuntimeError):
    """A re-executed task called its `@task`s in another order than the saved run did."""


class UnitRunner:
    """Runs the units that one run's tasks spawn; held by the run's `RunContext`."""

    __slots__ = ("io", "saved")

    def __init__(self, saved: dict[str, SavedTask], io: RunIO) -> None:
        self.saved = saved
        """The writes saved against the run's starting checkpoint, by task id (units' results among them)."""
        self.io = io

    def call(self, parent: TaskContext, unit: Unit, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Start `unit(*args, **kwargs)` as a child of `parent`; returns its future."""
        index = parent.calls
        parent.calls += 1
        unit_id = _unit_id(parent.task_id, index)
        saved = self.saved.get(unit_id)
        if saved is not None and saved.writes is not None:
            found = dict(saved.writes)
            if found.get(UNIT_NAME) != unit.name:
                raise UnitOrderError(
                    f"Task call #{index + 1} in '{parent.name}' is '{unit.name}', but the saved run called "
                    f"'{found.get(UNIT_NAME)}' there. Call tasks in the same order when a run is resumed "
                    "(branch on saved results, not on time or randomness)."
                )
            return DoneUnit(found.get(RETURN))
        ctx = TaskContext(
            parent.run,
            unit.name,
            unit_id,
            parent.step,
            (PUSH,),
            (PUSH, parent.name, index),
            resume=parent.resume,
            interrupt_ns=f"{parent.interrupt_ns}|{unit.name}:{unit_id}",
            checkpoint_id=parent.checkpoint_id,
            channels=parent.channels,
        )
        self._emit_start(ctx, args, kwargs)
        future: AsyncUnit | SyncUnit
        if _in_event_loop():
            future = AsyncUnit(asyncio.ensure_future(self._arun(ctx, unit, args, kwargs)))
        elif unit.is_async:
            raise TypeError(
                f"Task '{unit.name}' is an async function: call it from an async entrypoint or node "
                "(ainvoke/astream), or make it a plain function."
            )
        else:
            future = SyncUnit(lambda: self._run(ctx, unit, args, kwargs))
            from graphrt.pregel._drivers import submit

            submit(contextvars.copy_context().run, future.run)
        if parent.units is None:
            parent.units = []
        parent.units.append(future)
        return future

    def _run(self, ctx: TaskContext, unit: Unit, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        key = unit.cache.key(*args, **kwargs) if unit.cache is not None and self.io.cache is not None else None
        if key is not None:
            hit = read_cache(self.io.cache, [key]).get(key)
            if hit is not None:
                return self._finish(ctx, unit, dict(hit).get(RETURN), cached=True)
        token = enter_task(ctx)
        ctx.started_at = time.time()
        try:
            attempt = 0
            while True:
                attempt += 1
                try:
                    value = unit.func(*args, **kwargs)
                    break
                except GraphBubbleUp:
                    raise
                except Exception as exc:
                    delay = next_delay(unit.retry_policy, attempt, exc)
                    if delay is None:
                        self._failed(ctx, unit, exc)
                        raise
                    ctx.attempt = attempt + 1
                    settle(ctx)  # the retry reuses what the attempt's `@task` calls return
                    ctx.calls = ctx.nested_runs = 0
                    time.sleep(delay)
        finally:
            settle(ctx)
            exit_task(token)
        writes = ((UNIT_NAME, unit.name), (RETURN, value))
        if key is not None and cacheable(writes):
            write_cache(self.io.cache, key, writes)
        return self._finish(ctx, unit, value)

    async def _arun(self, ctx: TaskContext, unit: Unit, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        key = unit.cache.key(*args, **kwargs) if unit.cache is not None and self.io.cache is not None else None
        if key is not None:
            hit = (await aread_cache(self.io.cache, [key])).get(key)
            if hit is not None:
                return await self._afinish(ctx, unit, dict(hit).get(RETURN), cached=True)
        token = enter_task(ctx)
        ctx.started_at = time.time()
        try:
            attempt = 0
            while True:
                attempt += 1
                try:
                    if unit.is_async:
                        value = await unit.func(*args, **kwargs)
                    else:
                        run = functools.partial(contextvars.copy_context().run, unit.func, *args, **kwargs)
                        value = await anyio.to_thread.run_sync(run)
                    break
                except GraphBubbleUp:
                    raise
                except Exception as exc:
                    delay = next_delay(unit.retry_policy, attempt, exc)
                    if delay is None:
                        self._failed(ctx, unit, exc)
                        raise
                    ctx.attempt = attempt + 1
                    await asettle(ctx)  # the retry reuses what the attempt's `@task` calls return
                    ctx.calls = ctx.nested_runs = 0
                    await anyio.sleep(delay)
        finally:
            await asettle(ctx)
            exit_task(token)
        writes = ((UNIT_NAME, unit.name), (RETURN, value))
        if key is not None and cacheable(writes):
            await awrite_cache(self.io.cache, key, writes)
        return await self._afinish(ctx, unit, value)

    def _finish(self, ctx: TaskContext, unit: Unit, value: Any, *, cached: bool = False) -> Any:
        self._remember(ctx, unit, value)
        if self.io.writer is not None:
            try:
                self.io.writer.put_writes(_save(ctx, unit, value))
            except Exception as exc:
                exc.add_note(f"While saving the result of task '{unit.name}'")
                raise
        self._emit_done(ctx, value, cached)
        return value

    async def _afinish(self, ctx: TaskContext, unit: Unit, value: Any, *, cached: bool = False) -> Any:
        self._remember(ctx, unit, value)
        if self.io.writer is not None:
            try:
                await self.io.writer.aput_writes(_save(ctx, unit, value))
            except Exception as exc:
                exc.add_note(f"While saving the result of task '{unit.name}'")
                raise
        self._emit_done(ctx, value, cached)
        return value

    def _remember(self, ctx: TaskContext, unit: Unit, value: Any) -> None:
        """A retried parent meets this result again without running the unit twice."""
        from graphrt.pregel._algo import SavedTask

        self.saved[ctx.task_id] = SavedTask(writes=((UNIT_NAME, unit.name), (RETURN, value)))

    def _emit_start(self, ctx: TaskContext, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        sink = self.io.sink
        if sink.wants("tasks"):
            payload = {"id": ctx.task_id, "name": ctx.name, "input": (args, kwargs), "triggers": (PUSH,)}
            sink.emit("tasks", {**payload, "__step": ctx.step})

    def _failed(self, ctx: TaskContext, unit: Unit, exc: Exception) -> None:
        """The unit raised and will not be retried: say where, and stream its result with the error."""
        exc.add_note(f"During task '{unit.name}' (called from '{ctx.path[1]}')")
        self._emit_result(ctx, exc, {})

    def _emit_done(self, ctx: TaskContext, value: Any, cached: bool) -> None:
        sink = self.io.sink
        if sink.wants("updates"):
            chunk = {ctx.name: value, "__metadata__": {"cached": True}} if cached else {ctx.name: value}
            sink.emit("updates", chunk)
        self._emit_result(ctx, None, {RETURN: value})

    def _emit_result(self, ctx: TaskContext, error: Exception | None, result: dict[str, Any]) -> None:
        """A `tasks` chunk for a finished unit: its return value, or the error it raised."""
        sink = self.io.sink
        if sink.wants("tasks"):
            payload: dict[str, Any] = {
                "id": ctx.task_id,
                "name": ctx.name,
                "error": error,
                "result": result,
                "interrupts": [],
            }
            sink.emit("tasks", {**payload, "__step": ctx.step})


def settle(ctx: TaskContext) -> None:
    """Wait for the `@task` calls `ctx` started and did not wait for (its function returned, raised or was
    interrupted first). As in LangGraph they belong to the step: each finishes, and its result is saved, before
    the step ends, so a resumed run finds it instead of running it again. Their errors are the caller's to read
    (through the future); here they are not raised."""
    units, ctx.units = ctx.units, None
    for unit in units or ():
        if not unit.done():
            with contextlib.suppress(Exception):
                unit.result()


async def asettle(ctx: TaskContext) -> None:
    """Async twin of `settle`: waits without raising what the calls raised (nor their cancellation)."""
    units, ctx.units = ctx.units, None
    running = [unit for unit in units or () if not unit.done()]
    futures = [unit.future for unit in running if isinstance(unit, AsyncUnit)]
    if futures:
        await asyncio.wait(futures)
        for future in futures:
            if not future.cancelled():
                future.exception()  # retrieved: the caller reads it through the future, if at all
    for unit in running:
        if isinstance(unit, SyncUnit):  # called from a sync function running in a worker thread
            with contextlib.suppress(Exception):
                await anyio.to_thread.run_sync(unit.result)


def cancel_units(ctx: TaskContext) -> None:
    """Cancel the async `@task` calls `ctx` started that still run: its node was cancelled (a timeout)."""
    for unit in ctx.units or ():
        if isinstance(unit, AsyncUnit):
            unit.future.cancel()


def _save(ctx: TaskContext, unit: Unit, value: Any) -> SaveWrites:
    return SaveWrites(ctx.task_id, ((UNIT_NAME, unit.name), (RETURN, value)), f"{PUSH}|{ctx.path[1]}|{ctx.path[2]}")


def _unit_id(parent_id: str, index: int) -> str:
    h = blake2b(f"{parent_id}|call|{index}".encode(), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class DoneUnit:
    """The future of a unit whose result was saved (or cached): already done."""

    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    def result(self, timeout: float | None = None) -> Any:
        return self._value

    def done(self) -> bool:
        return True

    def __await__(self) -> Generator[Any, None, Any]:
        return self._value
        yield  # pragma: no cover - makes this a generator


class SyncUnit:
    """A unit started on the pool; `result()` runs it in the caller's thread if no worker took it yet."""

    __slots__ = ("_error", "_finished", "_lock", "_started", "_thunk", "_value")

    def __init__(self, thunk: Callable[[], Any]) -> None:
        self._thunk = thunk
        self._lock = threading.Lock()
        self._started = False
        self._finished = threading.Event()
        self._value: Any = None
        self._error: BaseException | None = None

    def run(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        try:
            self._value = self._thunk()
        except BaseException as exc:
            self._error = exc
        finally:
            self._finished.set()

    def result(self, timeout: float | None = None) -> Any:
        self.run()
        if not self._finished.wait(timeout):
            raise TimeoutError(f"the task did not finish within {timeout} s")
        if self._error is not None:
            raise self._error
        return self._value

    def done(self) -> bool:
        return self._finished.is_set()

    def __await__(self) -> Generator[Any, None, Any]:
        return self.result()
        yield  # pragma: no cover - makes this a generator


class AsyncUnit:
    """A unit running on the event loop: await it (`result()` works once it is done)."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future

    def result(self, timeout: float | None = None) -> Any:
        if not self.future.done():
            raise RuntimeError("In async code, await a task's future instead of calling .result() on it.")
        return self.future.result()

    def done(self) -> bool:
        return self.future.done()

    def __await__(self) -> Generator[Any, None, Any]:
        return self.future.__await__()
