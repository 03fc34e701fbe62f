"""Calling user functions: which run services a signature asks for, and sync/async invocation.

The signature is inspected once, when the graph is built; a call only fills the parameters found then.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from graphrt._context import TaskContext
from graphrt._inject import injections_of


def _service(task: TaskContext, service: str) -> Any:
    if service == "config":
        return task.config
    if service == "store":
        return task.run.store
    if service == "writer":
        return task.run.stream_writer
    if service == "node_error":
        return task.node_error
    return task.runtime


def is_async_callable(func: Any) -> bool:
    """True for `async def` functions, async `__call__`s and partials of them."""
    while isinstance(func, functools.partial):
        func = func.func
    call = type(func).__call__ if not inspect.isroutine(func) else None
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(call)


@dataclass(frozen=True, slots=True)
class Call:
    """A user function with the run services its signature asks for."""

    func: Callable[..., Any]
    injected: tuple[tuple[str, str], ...]
    """(parameter name, service) pairs, filled from the task's context at call time."""
    is_async: bool
    takes_input: bool
    """False for a function with no parameters besides injected ones."""
    afunc: Callable[..., Any] | None = None
    """An async twin of a sync `func`, used by `ainvoke` instead of a worker thread."""

    @classmethod
    def of(cls, func: Callable[..., Any]) -> Call:
        """Inspect `func` once. Its first positional parameter receives the input.

        Which parameters get which run service is decided by `graphrt._inject`, the rules tools share.
        An object with an async twin (`__graphrt_acall__`, same signature) is awaited through it under
        `ainvoke`, and called directly under `invoke`.
        """
        try:
            params = list(inspect.signature(func).parameters.values())
        except (TypeError, ValueError):
            return cls(func, (), is_async_callable(func), True)
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        first = positional[0].name if positional else None
        injected = tuple(
            (param.name, found.source)
            for param, _annotation, found in injections_of(func, tool=False, skip=first)
            if found is not None
        )
        takes_input = first is not None or any(p.kind == p.VAR_POSITIONAL for p in params)
        afunc = getattr(func, "__graphrt_acall__", None)
        return cls(func, injected, is_async_callable(func), takes_input, afunc)

    def _kwargs(self, task: TaskContext | None) -> dict[str, Any]:
        if task is None or not self.injected:
            return {}
        return {name: _service(task, service) for name, service in self.injected}

    def invoke(self, input: Any, task: TaskContext | None) -> Any:
        """Call synchronously. An async function can't be: its resources belong to an event loop."""
        if self.is_async:
            name = task.name if task is not None else getattr(self.func, "__name__", "function")
            raise TypeError(
                f'No synchronous function provided to "{name}".\nEither initialize with a synchronous function '
                "or invoke via the async API (ainvoke, astream, etc.)"
            )
        if not self.injected:
            return self.func(input) if self.takes_input else self.func()
        kwargs = self._kwargs(task)
        return self.func(input, **kwargs) if self.takes_input else self.func(**kwargs)

    async def ainvoke(self, input: Any, task: TaskContext | None, *, offload: bool = True) -> Any:
        """Await an async function; a sync one runs in a worker thread (inline when not `offload`)."""
        kwargs = self._kwargs(task)
        args = (input,) if self.takes_input else ()
        if self.afunc is not None:
            return await self.afunc(*args, **kwargs)
        if self.is_async:
            return await self.func(*args, **kwargs)
        if not offload:
            return self.func(*args, **kwargs)
        return await _to_thread(functools.partial(self.func, *args, **kwargs))


async def _to_thread(func: Callable[[], Any]) -> Any:
    """Run `func` in a worker thread, carrying the ContextVars (the current task) along."""
    import contextvars

    ctx = contextvars.copy_context()
    return await anyio.to_thread.run_sync(ctx.run, func)
