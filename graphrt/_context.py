"""The run-scoped and task-scoped services a node reaches through a ContextVar (never through config keys).

A run is a *scope* that can nest: a subgraph called from a task opens a child scope of that task, with the
same thread, a deeper checkpoint namespace, and the same event sink. The engine fills these in; the public
value modules (`types`, `config`, `runtime`) only read them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from graphrt.errors import GraphInterrupt
from graphrt.runtime import RunControl, Runtime
from graphrt.types import Interrupt

if TYPE_CHECKING:
    from graphrt.config import RunnableConfig
    from graphrt.store.base import BaseStore


def _drop(_chunk: Any) -> None:
    return None


class EventSink(Protocol):
    """Where a run's stream events go (the caller of the root run reads them)."""

    subgraphs: bool
    """The caller asked for nested runs' events too (`stream(..., subgraphs=True)`)."""

    def emit(self, mode: str, chunk: Any) -> None: ...


@dataclass(frozen=True, slots=True)
class RunScope:
    """Where a run sits: its thread, its checkpoint namespace and the scope it nests in."""

    thread_id: Any
    ns: str = ""
    """The checkpoint namespace: "" at the root, `node:task_id` parts joined by `|` below it."""
    parent: RunScope | None = None
    parents: Mapping[str, str] = field(default_factory=dict)
    """Each ancestor namespace -> its checkpoint id when this scope opened (checkpoint `metadata["parents"]`)."""
    saver: Any = None
    """The checkpointer that serves this scope; nested scopes inherit it."""
    sink: EventSink | None = None
    task_ns: str | None = None
    """The namespace of the task this scope nests in (None at the root): where `Command.PARENT` goes."""
    committer: Any = None
    """The root run's background writer (`_io.Committer`), shared by nested scopes; None: saves are synchronous."""

    @property
    def ns_path(self) -> tuple[str, ...]:
        """The namespace as the tuple `stream(..., subgraphs=True)` yields."""
        return tuple(self.ns.split("|")) if self.ns else ()


@dataclass(slots=True)
class RunContext:
    """Services shared by every task of one run."""

    config: RunnableConfig
    """The run's config, as given to invoke/stream (with defaults filled in)."""
    store: BaseStore | None = None
    context: Any = None
    """The `context=` of invoke/stream."""
    stream_writer: Callable[[Any], None] = _drop
    """Sink for the `custom` stream mode; drops chunks when that mode is not streamed."""
    previous: Any = None
    """The thread's previous return value (functional API), exposed as `Runtime.previous`."""
    scope: RunScope = field(default_factory=lambda: RunScope(None))
    units: Any = None
    """Runs the `@task` calls its tasks make (the engine's `UnitRunner`)."""
    resuming: bool = False
    """The run continues a saved checkpoint (so a task re-executed in it resumes what it nested)."""
    message_sink: Callable[[Any], None] | None = None
    """Sink for the `messages` stream mode (`(chunk, metadata)` pairs); None when that mode is off."""
    streamed_message_ids: set[str] = field(default_factory=set)
    """Ids of messages already streamed in `messages` mode, token by token or whole."""
    control: RunControl | None = None
    """Asked to drain, the run stops at its next step boundary (`invoke(..., control=...)`)."""
    runtime: Runtime[Any] = field(init=False)

    def __post_init__(self) -> None:
        self.runtime = Runtime(
            context=self.context,
            store=self.store,
            stream_writer=self.stream_writer,
            previous=self.previous,
            control=self.control,
        )


@dataclass(slots=True)
class TaskContext:
    """One task's view of its run: its config, and the answers to its interrupts."""

    run: RunContext
    name: str
    task_id: str
    step: int
    triggers: Sequence[str]
    path: tuple[Any, ...]
    resume: dict[str, Any] = field(default_factory=dict)
    """Answers to interrupts raised in this task (or in a run nested in it), by interrupt id."""
    null_resume: Any = None
    """A single `Command(resume=v)` answer, claimed by the first interrupt without an answer."""
    has_null_resume: bool = False
    interrupt_ns: str = ""
    """This task's namespace (`node:task_id` under the run's); a run nested in the task uses it."""
    checkpoint_id: str = ""
    """The checkpoint the task's step started from."""
    node_metadata: Mapping[str, Any] = field(default_factory=dict)
    """`add_node(..., metadata=...)`, merged into the task config's metadata."""
    channels: Mapping[str, Any] = field(default_factory=dict)
    """The run's channels as of this step (read-only: a branch reads state through them)."""
    calls: int = 0
    """How many `@task` calls this task made so far (a call's index is part of its id)."""
    nested_runs: int = 0
    """How many checkpointed subgraph runs this task opened (a second one is refused: same namespace)."""
    stop: int = 0
    """The last step the run may take (the recursion limit): managed values such as `RemainingSteps` use it."""
    attempt: int = 1
    """Which attempt at running the node this is (a retry policy's retries count on from 1)."""
    started_at: float | None = None
    """When the first attempt started (seconds since the epoch)."""
    node_error: Any = None
    """For an error handler's task: the `NodeError` of the task it stands in for."""
    units: list[Any] | None = None
    """The futures of the `@task` calls this task started (waited for before the task ends: `_units.settle`)."""
    _counter: int = 0
    _config: RunnableConfig | None = None

    @property
    def runtime(self) -> Runtime[Any]:
        return self.run.runtime

    @property
    def config(self) -> RunnableConfig:
        """The task's config: the run's, plus LangGraph's per-task metadata (built on first use)."""
        if self._config is None:
            base = self.run.config
            metadata = {
                **base.get("metadata", {}),
                **self.node_metadata,
                "langgraph_step": self.step,
                "langgraph_node": self.name,
                "langgraph_triggers": tuple(self.triggers),
                "langgraph_path": self.path,
                "langgraph_checkpoint_ns": self.interrupt_ns,
            }
            configurable = {**base.get("configurable", {}), "checkpoint_ns": self.interrupt_ns}
            configurable.pop("checkpoint_id", None)
            self._config = {**base, "metadata": metadata, "configurable": configurable}
        return self._config

    def interrupt(self, value: Any, response_schema: dict[str, Any] | type | None = None) -> Any:
        """Return the answer to this task's next interrupt, or raise GraphInterrupt asking for it."""
        idx = self._counter
        self._counter += 1
        key = interrupt_id(self.interrupt_ns, idx)
        check = None if response_schema is None or isinstance(response_schema, dict) else _adapter(response_schema)
        if key in self.resume:
            return self.resume[key] if check is None else _validated(check, self.resume[key])
        if self.has_null_resume:
            answer = self.null_resume if check is None else _validated(check, self.null_resume)
            self.has_null_resume = False
            self.resume[key] = self.null_resume
            return answer
        schema = response_schema if check is None else check.json_schema()
        raise GraphInterrupt((Interrupt(value=value, id=key, response_schema=schema),))


@functools.lru_cache(maxsize=256)
def _adapter(schema: type) -> Any:
    """The validator of a `response_schema` type (built once per type: building one costs milliseconds)."""
    from pydantic import TypeAdapter

    return TypeAdapter(schema)


def _validated(adapter: Any, answer: Any) -> Any:
    """`answer` as the interrupt's `response_schema` type; a mismatch is marked as an invalid resume."""
    from pydantic import ValidationError

    try:
        return adapter.validate_python(answer)
    except ValidationError as exc:
        from graphrt.errors import mark_invalid_resume

        mark_invalid_resume(exc)
        raise


def interrupt_id(ns: str, idx: int) -> str:
    """A stable id for the `idx`-th interrupt of the task in namespace `ns`."""
    from hashlib import blake2b

    return blake2b(f"{ns}|{idx}".encode(), digest_size=16).hexdigest()


_current: ContextVar[TaskContext | None] = ContextVar("graphrt_task", default=None)


def running_task() -> TaskContext | None:
    """The task running in this context, if any (a graph invoked inside it runs nested)."""
    return _current.get()


def message_chunk_sink(extra_metadata: Mapping[str, Any]) -> Callable[[Any], None] | None:
    """For a chat model called inside a task of a run streaming `messages`: a function streaming one chunk.

    The chunk goes out as `(chunk, metadata)` with the task's LangGraph metadata plus `extra_metadata`,
    and its id is recorded so that the node's returned message is not streamed a second time.
    Returns None outside a run, or when the run does not stream `messages`.
    """
    task = _current.get()
    if task is None or task.run.message_sink is None:
        return None
    sink, seen = task.run.message_sink, task.run.streamed_message_ids
    task_metadata = task.config.get("metadata", {})
    metadata = {
        "ls_integration": "langchain_chat_model",
        **task_metadata,
        "checkpoint_ns": task_metadata.get("langgraph_checkpoint_ns", ""),
        **extra_metadata,
    }

    def emit(chunk: Any) -> None:
        if chunk.id is not None:
            seen.add(chunk.id)
        sink((chunk, metadata))

    return emit


def current_task(caller: str) -> TaskContext:
    """The task running in this context; RuntimeError naming `caller` outside a graph run."""
    task = _current.get()
    if task is None:
        raise RuntimeError(f"Called {caller}() outside of a runnable context: call it from inside a graph node.")
    return task


def enter_task(task: TaskContext) -> Any:
    """Make `task` current; returns the token for `exit_task`."""
    return _current.set(task)


def exit_task(token: Any) -> None:
    _current.reset(token)
