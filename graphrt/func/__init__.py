"""The functional API: `@entrypoint` makes a function a runnable graph, `@task` makes a function a durable step.

An entrypoint compiles to the same `Pregel` runtime as a `StateGraph`: one node (the function) reading the
input and writing the output and the value saved for the next run (`previous`). A task called inside a
run returns a future; its result is saved as soon as it finishes, so a resumed run gets it back instead of
running it again (see `graphrt/pregel/_units.py`).
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import anyio.to_thread

from graphrt._context import current_task
from graphrt.cache.base import BaseCache
from graphrt.channels.ephemeral_value import EphemeralValue
from graphrt.channels.last_value import LastValue
from graphrt.channels.topic import Topic
from graphrt.checkpoint.base import BaseCheckpointSaver
from graphrt.constants import END, START
from graphrt.pregel._cache import UnitCache
from graphrt.pregel._call import Call
from graphrt.pregel._spec import TASKS, GraphSpec, PregelNode, Task
from graphrt.pregel._units import Unit
from graphrt.pregel.main import Pregel
from graphrt.store.base import BaseStore
from graphrt.types import CachePolicy, RetryPolicy, Send

__all__ = ("entrypoint", "task")

T = TypeVar("T")
R = TypeVar("R")

PREVIOUS = "__previous__"
"""The channel holding the value the thread's last run saved (`previous`)."""


def _policies(retry_policy: RetryPolicy | Sequence[RetryPolicy] | None) -> tuple[RetryPolicy, ...]:
    if retry_policy is None:
        return ()
    return (retry_policy,) if isinstance(retry_policy, RetryPolicy) else tuple(retry_policy)


class _TaskFunction(Generic[R]):
    """A function decorated with `@task`: calling it inside a run starts it and returns its future."""

    def __init__(self, unit: Unit) -> None:
        self.unit = unit
        self.name = unit.name
        functools.update_wrapper(self, unit.func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        parent = current_task("get_config")
        return parent.run.units.call(parent, self.unit, args, kwargs)

    def clear_cache(self, cache: BaseCache[Any]) -> None:
        """Drop this task's cached results from `cache`."""
        if self.unit.cache is not None:
            cache.clear([self.unit.cache.namespace])

    async def aclear_cache(self, cache: BaseCache[Any]) -> None:
        if self.unit.cache is not None:
            await cache.aclear([self.unit.cache.namespace])


def task(
    __func_or_none__: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
    cache_policy: CachePolicy | None = None,
    **kwargs: Any,
) -> Any:
    """Make a function a durable task: `@task` or `@task(name=..., retry_policy=..., cache_policy=...)`.

    Called inside an entrypoint, a node or another task, it returns a future (`.result()`, or `await` it in
    async code); tasks called before any result is read run in parallel. Called outside a run, it raises
    RuntimeError.
    """
    retry_policy = kwargs.pop("retry", retry_policy)
    if kwargs.pop("timeout", None) is not None:
        raise NotImplementedError(
            "task(timeout=...) (LangGraph 1.2) is not supported yet; a graph node takes add_node(..., timeout=...)."
        )
    if kwargs:
        raise TypeError(f"task() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")

    def decorate(func: Callable[..., Any]) -> _TaskFunction[Any]:
        if not callable(func):
            raise TypeError(f"@task decorates a function, got {type(func).__name__}")
        unit_name = str(name or getattr(func, "__name__", type(func).__name__))
        cache = None if cache_policy is None else UnitCache.of("task", unit_name, func, cache_policy)
        return _TaskFunction(Unit(unit_name, func, _policies(retry_policy), cache))

    return decorate(__func_or_none__) if __func_or_none__ is not None else decorate


@dataclass(frozen=True, slots=True)
class _Final(Generic[T, R]):
    """`entrypoint.final(value=..., save=...)`: return `value`, keep `save` as the next run's `previous`."""

    value: T
    save: R


@dataclass(frozen=True, slots=True)
class _EntrypointProc:
    """The entrypoint's node: call the function with its input and injected services; write the results."""

    call: Call
    takes_previous: bool

    def _kwargs(self, task: Task) -> dict[str, Any]:
        previous = _previous(task)
        kwargs: dict[str, Any] = {}
        for param, service in self.call.injected:
            if service == "runtime":
                kwargs[param] = task.ctx.runtime.override(previous=previous)
            elif service == "config":
                kwargs[param] = task.ctx.config
            elif service == "store":
                kwargs[param] = task.ctx.run.store
            else:
                kwargs[param] = task.ctx.run.stream_writer
        if self.takes_previous:
            kwargs["previous"] = previous
        return kwargs

    def run(self, task: Task) -> None:
        if self.call.is_async:
            self.call.invoke(task.input, task.ctx)  # raises the "no synchronous function" error
        self._write(task, self.call.func(task.input, **self._kwargs(task)))

    async def arun(self, task: Task) -> None:
        kwargs = self._kwargs(task)
        if self.call.is_async:
            out = await self.call.func(task.input, **kwargs)
        else:
            call = contextvars.copy_context().run
            out = await anyio.to_thread.run_sync(lambda: call(self.call.func, task.input, **kwargs))
        self._write(task, out)

    def write_command(self, task: Task, command: Any) -> None:
        self._write(task, command)

    def _write(self, task: Task, out: Any) -> None:
        if isinstance(out, _Final):
            task.writes.extend(((END, out.value), (PREVIOUS, out.save)))
        else:
            task.writes.extend(((END, out), (PREVIOUS, out)))


def _previous(task: Task) -> Any:
    channel = task.ctx.channels.get(PREVIOUS)
    return channel.get() if channel is not None and channel.is_available() else None


class EntrypointPregel(Pregel):
    """The runnable an `@entrypoint` returns (default stream mode: `updates`)."""

    default_stream_mode = "updates"

    def __init__(self, func: Callable[..., Any], spec: GraphSpec, **kwargs: Any) -> None:
        super().__init__(spec, **kwargs)
        self.func = func
        functools.update_wrapper(self, func)  # type: ignore[arg-type]

    def output_values(self, st: Any) -> Any:
        return st.values.get(END)

    def stream_values(self, st: Any) -> Any:
        return st.values.get(END)

    def updates_chunk(self, task: Task) -> Any:
        return next((v for c, v in task.writes if c == END), None)

    def map_update(self, update: Any) -> list[tuple[str, Any]]:
        """`update_state(config, value)` sets the output and the next run's `previous`."""
        return [(END, update), (PREVIOUS, update)]

    def get_graph(self, config: Any = None, *, xray: int | bool = False) -> Any:
        """A drawable view: `__start__ -> <function> -.-> __end__`."""
        from graphrt.graph._draw import DrawableGraph, Edge, Node

        graph = DrawableGraph()
        graph.nodes[self.name] = Node(self.name, self.name, self.func, None)
        graph.nodes[START] = Node(START, START, None, None)
        graph.nodes[END] = Node(END, END, None, None)
        graph.edges = [Edge(START, self.name), Edge(self.name, END, conditional=True)]
        return graph


class entrypoint(Generic[T]):
    """Make a function of one input a runnable graph with persistence: `@entrypoint(checkpointer=...)`.

    The function may ask for `previous` (what the thread's last run returned or saved), `config`,
    `store`, `writer` and `runtime` as keyword parameters.
    """

    final = _Final

    def __init__(
        self,
        checkpointer: BaseCheckpointSaver[Any] | None = None,
        store: BaseStore | None = None,
        cache: BaseCache[Any] | None = None,
        context_schema: Any = None,
        cache_policy: CachePolicy | None = None,
        retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
        **kwargs: Any,
    ) -> None:
        retry_policy = kwargs.pop("retry", retry_policy)
        context_schema = kwargs.pop("config_schema", context_schema)
        if kwargs:
            raise TypeError(f"entrypoint() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
        self.checkpointer = checkpointer
        self.store = store
        self.cache = cache
        self.context_schema = context_schema
        self.cache_policy = cache_policy
        self.retry_policy = _policies(retry_policy)

    def __call__(self, func: Callable[..., Any]) -> EntrypointPregel:
        name = getattr(func, "__name__", type(func).__name__)
        params = list(inspect.signature(func).parameters.values())
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        services = {"previous", "config", "store", "writer", "runtime"}
        inputs = [p for p in positional if p.name not in services or p is positional[0]]
        if not inputs:
            raise ValueError(f"Entrypoint '{name}' must take one positional parameter: its input.")
        if len(inputs) > 1:
            raise ValueError(
                f"Entrypoint '{name}' takes {len(inputs)} positional parameters "
                f"({', '.join(p.name for p in inputs)}); it must take exactly one input. Pass several "
                "values as one dict, and ask for previous/config/store/writer/runtime as keyword-only parameters."
            )
        proc = _EntrypointProc(Call.of(func), any(p.name == "previous" for p in params))
        cache = None if self.cache_policy is None else UnitCache.of("node", name, func, self.cache_policy)
        node = PregelNode(name, (START,), START, proc, retry_policy=self.retry_policy, cache=cache)
        channels: dict[str, Any] = {
            START: EphemeralValue(Any),
            END: LastValue(Any),
            PREVIOUS: LastValue(Any),
            TASKS: Topic(Send, accumulate=False),
        }
        for key, channel in channels.items():
            channel.key = key
        spec = GraphSpec(
            nodes={name: node},
            channels=channels,
            trigger_to_nodes={START: (name,)},
            input_channels=START,
            output_channels=END,
            output_set=frozenset({END}),
            stream_channels=frozenset({END}),
            step_notified=frozenset(k for k, c in channels.items() if c.steps_without_writes),
            values_channels=END,
        )
        return EntrypointPregel(
            func,
            spec,
            checkpointer=self.checkpointer,
            store=self.store,
            cache=self.cache,
            name=name,
            context_schema=self.context_schema,
        )
