"""The compiled-graph spec: what a builder (`graph/`, `func/`) hands the engine, and reserved channel names.

The builder decides channel names and node procs; the engine only reads this spec.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from graphrt._context import TaskContext
from graphrt.channels.base import MISSING, BaseChannel
from graphrt.channels.last_value import LastValue
from graphrt.managed.base import ManagedValueSpec
from graphrt.pregel._cache import CacheKey, UnitCache
from graphrt.pregel._call import Call
from graphrt.types import All, RetryPolicy

__all__ = (
    "ERROR",
    "INPUT",
    "INTERRUPT",
    "NO_WRITES",
    "NULL_TASK_ID",
    "PULL",
    "PUSH",
    "RESERVED",
    "RESUME",
    "TASKS",
    "Call",
    "GraphSpec",
    "NodeProc",
    "PregelNode",
    "Task",
)

TASKS = "__pregel_tasks"
"""The Topic channel holding `Send` packets for the next step."""
INTERRUPT = "__interrupt__"
RESUME = "__resume__"
ERROR = "__error__"
NO_WRITES = "__no_writes__"
"""Marks a task that finished with no writes, so a resumed run does not run it again."""
INPUT = "__input__"
RETURN = "__return__"
"""A `@task` call's result, saved against the checkpoint like a task's writes."""
UNIT_NAME = "__task__"
"""The name of the `@task` that made a saved result (a replay that calls another task there is refused)."""
NULL_TASK_ID = "00000000-0000-0000-0000-000000000000"
RESERVED = frozenset({TASKS, INTERRUPT, RESUME, ERROR, NO_WRITES})
PULL, PUSH = "__pregel_pull", "__pregel_push"


class NodeProc(Protocol):
    """What a node does with its input: runs the user's function and appends writes to the task."""

    def run(self, task: Task) -> None: ...

    async def arun(self, task: Task) -> None: ...

    def write_command(self, task: Task, command: Any) -> None:
        """Write `command` as if the node had returned it (a `Command.PARENT` from a nested run)."""
        ...


@dataclass(frozen=True, slots=True)
class PregelNode:
    """A compiled node: what triggers it, what it reads, and what it runs."""

    name: str
    triggers: tuple[str, ...]
    """Channels whose update schedules the node (PULL tasks)."""
    reads: tuple[str, ...] | str
    """A channel name: its value is the input. A tuple: a dict of those channels that have values."""
    proc: NodeProc
    mapper: Callable[[Any], Any] | None = None
    """Turns the read dict into the node's input type (a pydantic model, a dataclass)."""
    retry_policy: tuple[RetryPolicy, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    hidden: bool = False
    """Internal nodes (`__start__`): not streamed in `updates`/`tasks`, not matched by `interrupt_*="*"`."""
    reads_state: bool = False
    """`reads` is exactly the graph's state keys: the input is a copy of the loop's state mirror."""
    subgraph: Any = None
    """The compiled graph this node runs, when it is one (for state snapshots and drawing)."""
    cache: UnitCache | None = None
    """How the node's writes are cached (its `cache_policy`), when the run has a cache."""
    managed: tuple[tuple[str, ManagedValueSpec], ...] = ()
    """Managed values (`RemainingSteps`) added to the read dict, by key, before `mapper`."""
    error_handler: str | None = None
    """The node run in this one's place, in the same step, when it fails (`add_node(..., error_handler=)`)."""
    timeout: float | None = None
    """Seconds one attempt of this (async) node may run (`add_node(..., timeout=)`)."""


@dataclass(frozen=True, slots=True)
class GraphSpec:
    """Everything about a compiled graph that the loop needs, precomputed once."""

    nodes: Mapping[str, PregelNode]
    channels: Mapping[str, BaseChannel[Any, Any, Any]]
    """Empty channels; each run starts from copies restored from the checkpoint."""
    trigger_to_nodes: Mapping[str, tuple[str, ...]]
    input_channels: str | tuple[str, ...]
    output_channels: str | tuple[str, ...]
    """What `invoke` returns (the output schema's keys)."""
    output_set: frozenset[str]
    stream_channels: frozenset[str]
    """Channels whose writes appear in `updates` chunks."""
    step_notified: frozenset[str]
    """Channels whose `update([])` may change them (ephemeral values): notified of steps they missed."""
    interrupt_before: All | tuple[str, ...] = ()
    interrupt_after: All | tuple[str, ...] = ()
    values_channels: str | tuple[str, ...] = ()
    """What the `values` stream shows (the state schema's keys; LangGraph filters only invoke's result)."""
    state_keys: frozenset[str] = frozenset()
    """Channels mirrored in `LoopState.state`, for nodes that read the whole state."""
    route: Callable[[Sequence[Any]], list[tuple[str, Any]]] | None = None
    """The builder's writes that schedule nodes (names or `Send`s) for the next step, for `Command(goto=)`."""
    consumers: frozenset[str] = field(init=False)
    """Derived: channels whose `consume()` can change them (barriers, deferred values); a step skips the rest."""
    finishers: tuple[str, ...] = field(init=False)
    """Derived: channels whose `finish()` can change them, in channel order (deferred nodes wait on these)."""
    last_values: frozenset[str] = field(init=False)
    """Derived: `LastValue` channels (most state keys): a step sets their one value directly."""
    initially_set: tuple[str, ...] = field(init=False)
    """Derived: channels that hold a value (or a checkpoint) before anything is written, e.g. a reducer's
    empty list: all a new thread's mirrors start with."""

    def __post_init__(self) -> None:
        # Which channels override the no-op `consume`/`finish` of `BaseChannel` is known at compile time.
        chans = self.channels
        consumers = frozenset(
            k for k, c in chans.items() if type(c).consume is not BaseChannel.consume and k not in RESERVED
        )
        finishers = tuple(k for k, c in chans.items() if type(c).finish is not BaseChannel.finish)
        object.__setattr__(self, "consumers", consumers)
        object.__setattr__(self, "finishers", finishers)
        object.__setattr__(self, "last_values", frozenset(k for k, c in chans.items() if type(c) is LastValue))
        initially_set = tuple(k for k, c in chans.items() if c.is_available() or c.checkpoint() is not MISSING)
        object.__setattr__(self, "initially_set", initially_set)


@dataclass(slots=True)
class Task:
    """One node invocation in one step. `writes` fills in as it runs (hence not frozen)."""

    name: str
    input: Any
    node: PregelNode
    id: str
    path: tuple[Any, ...]
    triggers: tuple[str, ...]
    ctx: TaskContext
    writes: list[tuple[str, Any]] = field(default_factory=list)
    cache_key: CacheKey | None = None
    """Set before the task runs when its node is cached and the run has a cache."""
