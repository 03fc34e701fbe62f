"""`Runtime`: what a node can reach of its run — context, store, stream writer, previous return value."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

if TYPE_CHECKING:
    from graphrt.store.base import BaseStore
    from graphrt.types import StreamWriter

__all__ = ("ExecutionInfo", "RunControl", "Runtime", "ServerInfo", "get_runtime")

ContextT = TypeVar("ContextT")


def _no_op_writer(_chunk: Any) -> None:
    return None


@dataclass(frozen=True, slots=True)
class ExecutionInfo:
    """Where the running node is: its checkpoint, namespace and task, its thread and run, and its attempt."""

    checkpoint_id: str
    """The checkpoint the node's step started from."""
    checkpoint_ns: str
    """The node's checkpoint namespace (`node:task_id`, under its parents' for a subgraph or a `@task`)."""
    task_id: str
    thread_id: str | None = None
    """The config's `thread_id` (None when it has none)."""
    run_id: str | None = None
    """The config's `run_id` (None when it has none; a subgraph's runs have none, as in LangGraph)."""
    node_attempt: int = 1
    """Which attempt at the node this is: 1, then 2, 3... under a retry policy."""
    node_first_attempt_time: float | None = None
    """When the first attempt started (seconds since the epoch)."""

    def patch(self, **overrides: Any) -> ExecutionInfo:
        """A copy with some fields replaced."""
        return replace(self, **overrides)


class RunControl:
    """Asks a run to stop at its next step boundary (`invoke(..., control=RunControl())`), e.g. on SIGTERM.

    `request_drain()` may be called from any thread or from a node (`runtime.control`). The run then saves its
    checkpoint, runs no further step and raises `GraphDrained`; `invoke(None, config)` resumes it. Use one per run.
    """

    __slots__ = ("_drain_reason",)

    def __init__(self) -> None:
        self._drain_reason: str | None = None

    def request_drain(self, reason: str = "shutdown") -> None:
        self._drain_reason = reason

    @property
    def drain_requested(self) -> bool:
        return self._drain_reason is not None

    @property
    def drain_reason(self) -> str | None:
        return self._drain_reason


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What LangGraph Server tells a run about its deployment; graphrt has no server, so `Runtime.server_info` is
    always None (the type exists for code that names it)."""

    assistant_id: str
    graph_id: str
    user: Any = None


@dataclass(frozen=True, slots=True)
class Runtime(Generic[ContextT]):
    """Run-scoped values injected into nodes that declare a `runtime: Runtime[Ctx]` parameter."""

    __graphrt_inject__: ClassVar[str] = "runtime"

    context: ContextT = field(default=None)  # type: ignore[assignment]
    """The `context=` passed to `invoke`/`stream`, typed by the graph's `context_schema`."""
    store: BaseStore | None = None
    """The store given to `compile(store=...)`."""
    stream_writer: StreamWriter = field(default=_no_op_writer)
    """Writes to the `custom` stream mode."""
    previous: Any = None
    """The previous return value of this thread's entrypoint (functional API)."""
    control: RunControl | None = None
    """The run's `RunControl` (the one given to invoke/stream, else the run's own): `request_drain()` stops it."""

    @property
    def execution_info(self) -> ExecutionInfo | None:
        """The running node's `ExecutionInfo` (None outside a graph task), read when asked for."""
        from graphrt._context import running_task

        task = running_task()
        if task is None:
            return None
        config = task.run.config
        thread_id = config.get("configurable", {}).get("thread_id")
        run_id = config.get("run_id")
        return ExecutionInfo(
            checkpoint_id=task.checkpoint_id,
            checkpoint_ns=task.interrupt_ns,
            task_id=task.task_id,
            thread_id=None if thread_id is None else str(thread_id),
            run_id=None if run_id is None or task.run.scope.parent is not None else str(run_id),
            node_attempt=task.attempt,
            node_first_attempt_time=task.started_at,
        )

    @property
    def server_info(self) -> ServerInfo | None:
        """Always None: graphrt runs without LangGraph Server."""
        return None

    def override(self, **overrides: Any) -> Runtime[ContextT]:
        """A copy with some fields replaced."""
        return replace(self, **overrides)


def get_runtime(context_schema: type[ContextT] | None = None) -> Runtime[ContextT]:
    """The runtime of the task running now. Raises RuntimeError outside a graph run."""
    from graphrt._context import current_task

    runtime: Runtime[ContextT] = current_task("get_runtime").runtime
    return runtime
