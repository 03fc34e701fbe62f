"""Calling user functions: which run services a signature asks for, and sync/async invocation.

The signature is inspected once, when the graph is built; a call only fills the parameters found then.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

import anyio.to_thread

from graphrt._context import TaskContext

_SERVICES = ("config", "store", "writer", "runtime")


def _service_for(name: str, annotation: Any) -> str | None:
    """Which run service a parameter asks for, by annotation first, then by LangGraph's parameter names."""
    from graphrt.runtime import Runtime
    from graphrt.store.base import BaseStore

    origin = getattr(annotation, "__origin__", annotation)
    if origin is Runtime:
        return "runtime"
    if isinstance(origin, type):
        if issubclass(origin, BaseStore):
            return "store"
        if origin.__name__ == "RunnableConfig":
            return "config"
    if getattr(annotation, "__name__", None) == "StreamWriter":
        return "writer"
    # LangGraph injects only when the annotation matches; a bare `store` or one typed with a concrete
    # store class is injected here too (issue: "also where LangGraph fails").
    return name if name in _SERVICES else None


def _hints(func: Callable[..., Any]) -> dict[str, Any]:
    target = func if inspect.isroutine(func) else type(func).__call__
    try:
        return get_type_hints(target)
    except Exception:
        return {}


def _service(task: TaskContext, service: str) -> Any:
    if service == "config":
        return task.config
    if service == "store":
        return task.run.store
    if service == "writer":
        return task.run.stream_writer
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

    @classmethod
    def of(cls, func: Callable[..., Any]) -> Call:
        """Inspect `func` once. Its first positional parameter receives the input."""
        try:
            params = list(inspect.signature(func).parameters.values())
        except (TypeError, ValueError):
            return cls(func, (), is_async_callable(func), True)
        hints = _hints(func)
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        first = positional[0].name if positional else None
        injected = []
        for p in params:
            if p.name == first or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            service = _service_for(p.name, hints.get(p.name, p.annotation))
            if service is not None:
                injected.append((p.name, service))
        takes_input = first is not None or any(p.kind == p.VAR_POSITIONAL for p in params)
        return cls(func, tuple(injected), is_async_callable(func), takes_input)

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
        kwargs = self._kwargs(task)
        return self.func(input, **kwargs) if self.takes_input else self.func(**kwargs)

    async def ainvoke(self, input: Any, task: TaskContext | None, *, offload: bool = True) -> Any:
        """Await an async function; a sync one runs in a worker thread (inline when not `offload`)."""
        kwargs = self._kwargs(task)
        args = (input,) if self.takes_input else ()
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
