"""Public value types: `Send`, `Command`, `Interrupt`, `RetryPolicy`, `StateSnapshot` and kin, plus `interrupt()`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Generic,
    Literal,
    NamedTuple,
    NotRequired,
    Protocol,
    TypedDict,
    TypeVar,
    final,
)

from graphrt.cache._key import default_cache_key

if TYPE_CHECKING:
    from graphrt.checkpoint.base import CheckpointMetadata
    from graphrt.config import RunnableConfig

__all__ = (
    "All",
    "CacheKey",
    "CachePolicy",
    "CheckpointPayload",
    "CheckpointStreamPart",
    "CheckpointTask",
    "Checkpointer",
    "Command",
    "CustomStreamPart",
    "DebugPayload",
    "DebugStreamPart",
    "Durability",
    "GraphOutput",
    "Interrupt",
    "MessagesStreamPart",
    "Overwrite",
    "PregelTask",
    "RetryPolicy",
    "Send",
    "StateSnapshot",
    "StateUpdate",
    "StreamMode",
    "StreamPart",
    "StreamWriter",
    "TaskPayload",
    "TaskResultPayload",
    "TasksStreamPart",
    "TimeoutPolicy",
    "UpdatesStreamPart",
    "ValuesStreamPart",
    "default_retry_on",
    "interrupt",
)

N = TypeVar("N")

All = Literal["*"]
"""Interrupt before or after every node."""

StreamMode = Literal["values", "updates", "checkpoints", "tasks", "debug", "messages", "custom"]
"""How `stream` emits: whole state, per-node updates, checkpoints, task events, or custom data."""

Durability = Literal["sync", "async", "exit"]
"""When checkpoints are written: before the next step starts, while it runs, or only when the run exits."""

Checkpointer = "BaseCheckpointSaver[Any] | bool | None"
"""What `compile(checkpointer=...)` accepts: a saver, True (inherit the parent's), False (none), or None."""


class StreamWriter(Protocol):
    """Writes a chunk to the `custom` stream."""

    def __call__(self, chunk: Any, /) -> None: ...


def default_retry_on(exc: Exception) -> bool:
    """LangGraph's default: retry anything but common programming errors; HTTP 5xx responses retry."""
    if isinstance(exc, ConnectionError):
        return True
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    if isinstance(status, int) and type(exc).__name__ in ("HTTPStatusError", "HTTPError"):
        return 500 <= status < 600
    return not isinstance(
        exc,
        (
            ValueError,
            TypeError,
            ArithmeticError,
            ImportError,
            LookupError,
            NameError,
            SyntaxError,
            RuntimeError,
            ReferenceError,
            StopIteration,
            StopAsyncIteration,
            OSError,
        ),
    )


class RetryPolicy(NamedTuple):
    """How a failing node is retried: exponential backoff with optional jitter."""

    initial_interval: float = 0.5
    """Seconds before the first retry."""
    backoff_factor: float = 2.0
    """Multiplier applied to the interval after each retry."""
    max_interval: float = 128.0
    """Upper bound on the interval, in seconds."""
    max_attempts: int = 3
    """Attempts in all, the first included."""
    jitter: bool = True
    """Add up to one second of random jitter to each interval."""
    retry_on: type[Exception] | Sequence[type[Exception]] | Callable[[Exception], bool] = default_retry_on
    """Exception class(es) to retry, or a predicate that says whether to retry."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CachePolicy:
    """Cache a node's (or a task's) writes, keyed by its input; used when the graph has a cache.

    A cached unit does not run again for the same input until `ttl` seconds have passed; its cached
    writes are applied as if it had run, and the `updates` stream marks them `cached: True`.
    """

    key_func: Callable[..., str | bytes] = default_cache_key
    """Makes the cache key from the input (a node's input; a task's arguments). The default hashes the
    input's type-tagged JSON, with dict keys and sets in sorted order, so equal inputs give equal keys
    in every process."""
    ttl: int | None = None
    """Seconds a cached entry stays valid; `None`: until the cache is cleared."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeoutPolicy:
    """How long one attempt of an async node may run (`add_node(..., timeout=...)`), in seconds.

    An attempt still running after `run_timeout` is cancelled and fails with `NodeTimeoutError`, which its
    retry policy may retry. `idle_timeout` (a limit renewed by progress) is not supported yet.
    """

    run_timeout: float | timedelta | None = None
    idle_timeout: float | timedelta | None = None
    refresh_on: Literal["auto", "heartbeat"] = "auto"

    @classmethod
    def coerce(cls, value: float | timedelta | TimeoutPolicy | None) -> TimeoutPolicy | None:
        """A policy with its limits in seconds (a number or `timedelta` is a `run_timeout`); None for none."""
        if value is None:
            return None
        policy = value if isinstance(value, TimeoutPolicy) else cls(run_timeout=value)
        if policy.refresh_on not in ("auto", "heartbeat"):
            raise ValueError("refresh_on must be 'auto' or 'heartbeat'")
        run, idle = _seconds(policy.run_timeout, "run_timeout"), _seconds(policy.idle_timeout, "idle_timeout")
        if run is None and idle is None:
            return None
        return cls(run_timeout=run, idle_timeout=idle, refresh_on=policy.refresh_on)


def _seconds(value: float | timedelta | None, name: str) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds <= 0:
        raise ValueError(f"{name} must be greater than 0")
    return seconds


_DEFAULT_INTERRUPT_ID = "placeholder-id"


@final
@dataclass(init=False, slots=True)
class Interrupt:
    """A value a node surfaced with `interrupt()`; answer it with `Command(resume=...)`."""

    value: Any
    """What the node asked."""
    id: str
    """Resume this interrupt directly with `Command(resume={id: answer})`."""
    response_schema: dict[str, Any] | type | None
    """JSON Schema of the answer the node expects, when it passed `interrupt(..., response_schema=...)`."""

    def __init__(
        self, value: Any, id: str = _DEFAULT_INTERRUPT_ID, *, response_schema: dict[str, Any] | type | None = None
    ) -> None:
        self.value = value
        self.id = id
        self.response_schema = response_schema


class Send:
    """Run `node` with `arg` as its input in the next step (map-reduce fan-out)."""

    __slots__ = ("arg", "node")

    node: str
    arg: Any

    def __init__(self, /, node: str, arg: Any) -> None:
        self.node = node
        self.arg = arg

    def __hash__(self) -> int:
        return hash((self.node, repr(self.arg)))

    def __repr__(self) -> str:
        return f"Send(node={self.node!r}, arg={self.arg!r})"

    def __eq__(self, value: object) -> bool:
        return isinstance(value, Send) and self.node == value.node and self.arg == value.arg


@dataclass(kw_only=True, slots=True, frozen=True)
class Command(Generic[N]):
    """Update state, resume an interrupt and/or route to nodes, from a node or as a graph input."""

    graph: str | None = None
    """`None` for the current graph, `Command.PARENT` for the closest parent graph."""
    update: Any | None = None
    """State update to apply."""
    resume: dict[str, Any] | Any | None = None
    """Answer to the pending interrupt, or a map from interrupt ids to answers."""
    goto: Send | Sequence[Send | N] | N = ()
    """Node name(s) or `Send`s to run next."""

    PARENT: ClassVar[Literal["__parent__"]] = "__parent__"

    def __repr__(self) -> str:
        parts = (
            f"{name}={getattr(self, name)!r}" for name in ("graph", "update", "resume", "goto") if getattr(self, name)
        )
        return f"Command({', '.join(parts)})"


@dataclass(frozen=True, slots=True)
class Overwrite:
    """Bypass a reducer: write `value` to the channel as is."""

    value: Any


class StateUpdate(NamedTuple):
    """One update for `bulk_update_state`."""

    values: dict[str, Any] | None
    as_node: str | None = None
    task_id: str | None = None


class PregelTask(NamedTuple):
    """A task of a snapshot: what is due to run, or ran and failed or interrupted."""

    id: str
    name: str
    path: tuple[str | int | tuple[Any, ...], ...]
    error: Exception | None = None
    interrupts: tuple[Interrupt, ...] = ()
    state: RunnableConfig | StateSnapshot | None = None
    result: Any | None = None


class StateSnapshot(NamedTuple):
    """The state of a graph at one checkpoint."""

    values: dict[str, Any] | Any
    """Current values of the channels."""
    next: tuple[str, ...]
    """The nodes due to run in the next step."""
    config: RunnableConfig
    """The config that names this checkpoint."""
    metadata: CheckpointMetadata | None
    """Metadata saved with this checkpoint."""
    created_at: str | None
    """When the checkpoint was created (ISO 8601)."""
    parent_config: RunnableConfig | None
    """The config of the previous checkpoint, if any."""
    tasks: tuple[PregelTask, ...]
    """The tasks due in the next step, with errors and interrupts where they happened."""
    interrupts: tuple[Interrupt, ...] = ()
    """Interrupts waiting for an answer."""


class TaskPayload(TypedDict):
    """A `tasks` chunk when a task starts (typing only)."""

    id: str
    name: str
    input: Any
    triggers: list[str]
    metadata: NotRequired[dict[str, Any]]


class TaskResultPayload(TypedDict):
    """A `tasks` chunk when a task ends: its writes, or its error or interrupts (typing only)."""

    id: str
    name: str
    error: Any
    interrupts: list[dict[str, Any]]
    result: dict[str, Any]


class CheckpointTask(TypedDict):
    """A task due after a checkpoint, in a `checkpoints` chunk (typing only)."""

    id: str
    name: str
    error: NotRequired[str]
    result: NotRequired[Any]
    interrupts: NotRequired[list[dict[str, Any]]]
    state: Any


class CheckpointPayload(TypedDict):
    """A `checkpoints` chunk (typing only)."""

    config: dict[str, Any] | None
    metadata: dict[str, Any]
    values: Any
    next: list[str]
    parent_config: dict[str, Any] | None
    tasks: list[CheckpointTask]


DebugPayload = dict[str, Any]
"""A `debug` chunk: `{"step", "timestamp", "type", "payload"}`, the payload one of the above (typing only)."""


class ValuesStreamPart(TypedDict):
    """A `values` part of `stream(..., version="v2")`: the state, and the interrupts raised at that point."""

    type: Literal["values"]
    ns: tuple[str, ...]
    data: Any
    """The state; an instance of the graph's output schema when that is a pydantic model or dataclass."""
    interrupts: tuple[Interrupt, ...]


class UpdatesStreamPart(TypedDict):
    """An `updates` part: `{node: update}`, or `{"__interrupt__": (...)}` when the run stops for input."""

    type: Literal["updates"]
    ns: tuple[str, ...]
    data: dict[str, Any]


class MessagesStreamPart(TypedDict):
    """A `messages` part: `(message chunk, metadata)`."""

    type: Literal["messages"]
    ns: tuple[str, ...]
    data: tuple[Any, dict[str, Any]]


class CustomStreamPart(TypedDict):
    """A `custom` part: what a node gave its stream writer."""

    type: Literal["custom"]
    ns: tuple[str, ...]
    data: Any


class CheckpointStreamPart(TypedDict):
    """A `checkpoints` part: a saved checkpoint, as `get_state` shows it."""

    type: Literal["checkpoints"]
    ns: tuple[str, ...]
    data: CheckpointPayload


class TasksStreamPart(TypedDict):
    """A `tasks` part: a task starting (`TaskPayload`) or ending (`TaskResultPayload`)."""

    type: Literal["tasks"]
    ns: tuple[str, ...]
    data: TaskPayload | TaskResultPayload


class DebugStreamPart(TypedDict):
    """A `debug` part: a checkpoint or task event with its step and time."""

    type: Literal["debug"]
    ns: tuple[str, ...]
    data: DebugPayload


StreamPart = (
    ValuesStreamPart
    | UpdatesStreamPart
    | MessagesStreamPart
    | CustomStreamPart
    | CheckpointStreamPart
    | TasksStreamPart
    | DebugStreamPart
)
"""What `stream(..., version="v2")` yields, whatever the modes: tell the parts apart by `part["type"]`."""


@dataclass(frozen=True)
class GraphOutput(Generic[N]):
    """What `invoke(..., version="v2")` returns: the output and the interrupts the run stopped on.

    `value` is an instance of the graph's output schema when that is a pydantic model or dataclass.
    Reading it as a dict (`result["key"]`, `"__interrupt__" in result`) still works, with a
    deprecation warning, as in LangGraph.
    """

    value: N
    interrupts: tuple[Interrupt, ...] = ()

    def __getitem__(self, key: str) -> Any:
        _warn_dict_access("`result[key]`")
        if key == "__interrupt__":
            return self.interrupts
        if isinstance(self.value, dict):
            return self.value[key]
        try:
            return getattr(self.value, key)
        except AttributeError:
            raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        _warn_dict_access("`key in result`")
        if key == "__interrupt__":
            return bool(self.interrupts)
        if isinstance(self.value, dict):
            return key in self.value
        return isinstance(key, str) and hasattr(self.value, key)


def _warn_dict_access(how: str) -> None:
    import warnings

    from graphrt.warnings import LangGraphDeprecatedSinceV11

    warnings.warn(
        f"Accessing GraphOutput via {how} is deprecated. Use `result.value` for the output "
        "and `result.interrupts` for the interrupts",
        LangGraphDeprecatedSinceV11,
        stacklevel=3,
    )


class CacheKey(NamedTuple):
    """Where a cached task result lives: namespace, key and time to live in seconds (None: no expiry)."""

    ns: tuple[str, ...]
    key: str
    ttl: int | None


def interrupt(value: Any, *, response_schema: dict[str, Any] | type | None = None) -> Any:
    """Pause the graph and surface `value` to the client; return the answer on resume.

    The first call in a node raises `GraphInterrupt`; the run stops with `__interrupt__` in its output.
    Resuming with `Command(resume=answer)` re-runs the node from the start, and this call then returns
    `answer`. Several calls in one node are matched to answers in call order. Needs a checkpointer.

    `response_schema` describes the answer for clients: a JSON Schema `dict` is surfaced as it is (the
    answer is not checked); a pydantic model, `TypedDict` or dataclass is surfaced as its JSON Schema, and
    the answer is validated against it and returned as that type. An answer that does not match raises
    `pydantic.ValidationError` (`graphrt.errors.is_invalid_resume` tells it apart); nothing of the
    failed resume is kept, so the interrupt can be answered again.
    """
    from graphrt._context import current_task

    return current_task("interrupt").interrupt(value, response_schema)
