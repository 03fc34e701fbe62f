"""The run-scoped and task-scoped services a node reaches through a ContextVar (never through config keys)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from graphrt.errors import GraphInterrupt
from graphrt.runtime import Runtime
from graphrt.types import Interrupt

if TYPE_CHECKING:
    from graphrt.config import RunnableConfig
    from graphrt.store.base import BaseStore


def _drop(_chunk: Any) -> None:
    return None


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
    message_sink: Callable[[Any], None] | None = None
    """Sink for the `messages` stream mode (`(chunk, metadata)` pairs); None when that mode is off."""
    streamed_message_ids: set[str] = field(default_factory=set)
    """Ids of messages already streamed in `messages` mode, token by token or whole."""
    runtime: Runtime[Any] = field(init=False)

    def __post_init__(self) -> None:
        self.runtime = Runtime(
            context=self.context, store=self.store, stream_writer=self.stream_writer, previous=self.previous
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
    resume: list[Any] = field(default_factory=list)
    """Answers to this task's interrupts, in call order (from earlier resumes)."""
    null_resume: Any = None
    """A single `Command(resume=v)` answer, claimed by the first interrupt without an answer."""
    has_null_resume: bool = False
    interrupt_ns: str = ""
    node_metadata: Mapping[str, Any] = field(default_factory=dict)
    """`add_node(..., metadata=...)`, merged into the task config's metadata."""
    channels: Mapping[str, Any] = field(default_factory=dict)
    """The run's channels as of this step (read-only: a branch reads state through them)."""
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

    def interrupt(self, value: Any) -> Any:
        """Return the answer to this task's next interrupt, or raise GraphInterrupt asking for it."""
        idx = self._counter
        self._counter += 1
        if idx < len(self.resume):
            return self.resume[idx]
        if self.has_null_resume:
            self.has_null_resume = False
            self.resume.append(self.null_resume)
            return self.null_resume
        raise GraphInterrupt((Interrupt(value=value, id=interrupt_id(self.interrupt_ns, idx)),))


def interrupt_id(ns: str, idx: int) -> str:
    """A stable id for the `idx`-th interrupt of the task in namespace `ns`."""
    from hashlib import blake2b

    return blake2b(f"{ns}|{idx}".encode(), digest_size=16).hexdigest()


_current: ContextVar[TaskContext | None] = ContextVar("graphrt_task", default=None)


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


def current_task_or_none() -> TaskContext | None:
    """The task running in this context, or None outside a graph run (for code that also runs standalone)."""
    return _current.get()


def enter_task(task: TaskContext) -> Any:
    """Make `task` current; returns the token for `exit_task`."""
    return _current.set(task)


def exit_task(token: Any) -> None:
    _current.reset(token)
