"""Exceptions raised by graphrt, with LangGraph's class names, bases and message stems.

The tree::

    Exception
    ├── GraphBubbleUp                  signals, not errors: never swallowed, never wrapped
    │   ├── GraphInterrupt             a node called `interrupt()`
    │   │   └── NodeInterrupt          (deprecated spelling)
    │   ├── ParentCommand              a `Command(graph=Command.PARENT)` travelling up
    │   └── GraphDrained               a `RunControl` asked the run to stop at a step boundary
    ├── InvalidUpdateError             a step produced writes a channel cannot accept
    ├── EmptyChannelError              a channel was read before it was written
    ├── EmptyInputError
    ├── NodeTimeoutError               a node attempt ran past its `timeout`
    ├── TaskNotFound
    ├── ThreadConflictError            another run advanced the thread (graphrt only)
    └── GraphRtError                   base of graphrt's own usage errors
        └── MultipleSubgraphsError     a node ran two checkpointed subgraphs
    RecursionError
    └── GraphRecursionError            `recursion_limit` reached
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from graphrt.types import Command, Interrupt

__all__ = (
    "EmptyChannelError",
    "EmptyInputError",
    "ErrorCode",
    "GraphBubbleUp",
    "GraphDrained",
    "GraphInterrupt",
    "GraphRecursionError",
    "GraphRtError",
    "InvalidUpdateError",
    "NodeError",
    "NodeInterrupt",
    "NodeTimeoutError",
    "ParentCommand",
    "MultipleSubgraphsError",
    "TaskNotFound",
    "ThreadConflictError",
    "create_error_message",
    "is_invalid_resume",
)


class ErrorCode(Enum):
    GRAPH_RECURSION_LIMIT = "GRAPH_RECURSION_LIMIT"
    INVALID_CONCURRENT_GRAPH_UPDATE = "INVALID_CONCURRENT_GRAPH_UPDATE"
    INVALID_GRAPH_NODE_RETURN_VALUE = "INVALID_GRAPH_NODE_RETURN_VALUE"
    MULTIPLE_SUBGRAPHS = "MULTIPLE_SUBGRAPHS"
    INVALID_CHAT_HISTORY = "INVALID_CHAT_HISTORY"


def create_error_message(*, message: str, error_code: ErrorCode) -> str:
    """Append the troubleshooting pointer LangGraph puts after its messages."""
    return f"{message}\nFor troubleshooting, visit: https://docs.langchain.com/oss/python/langgraph/errors/{error_code.value}"


class GraphRtError(Exception):
    """Base of graphrt's own usage errors (those LangGraph has no class for)."""


class GraphBubbleUp(Exception):
    """A signal travelling up the call stack; graphrt never swallows or wraps it."""


class GraphDrained(GraphBubbleUp):
    """The run stopped at a step boundary because its `RunControl` asked it to drain; its checkpoint is saved and
    `invoke(None, config)` resumes it."""

    def __init__(self, reason: str = "shutdown") -> None:
        self.reason = reason
        super().__init__(f"Graph drained: {reason}")


class GraphRecursionError(RecursionError):
    """The graph ran `recursion_limit` supersteps without finishing.

    Raise the limit with `graph.invoke(inputs, {"recursion_limit": 100})`.
    """


class InvalidUpdateError(Exception):
    """A step produced writes a channel cannot accept."""


class EmptyChannelError(Exception):
    """A channel was read before anything was written to it."""


class GraphInterrupt(GraphBubbleUp):
    """A node interrupted the run; the root graph turns it into `__interrupt__` output."""

    def __init__(self, interrupts: Sequence[Interrupt] = ()) -> None:
        super().__init__(interrupts)

    @property
    def interrupts(self) -> Sequence[Interrupt]:
        value: Sequence[Interrupt] = self.args[0]
        return value


class NodeInterrupt(GraphInterrupt):
    """Deprecated: call `graphrt.types.interrupt` instead."""

    def __init__(self, value: Any, id: str | None = None) -> None:
        from graphrt.types import Interrupt

        super().__init__([Interrupt(value=value) if id is None else Interrupt(value=value, id=id)])


class ParentCommand(GraphBubbleUp):
    """A `Command(graph=Command.PARENT)` on its way to the parent graph."""

    args: tuple[Command[Any]]

    def __init__(self, command: Command[Any]) -> None:
        super().__init__(command)


class MultipleSubgraphsError(GraphRtError):
    """A node ran a second subgraph that saves checkpoints: both would share the node's namespace."""

    def __init__(self, node: str) -> None:
        self.node = node
        super().__init__(
            create_error_message(
                message=f"Multiple subgraphs called inside the same node '{node}' with a checkpointer: they would "
                "save under one namespace and a resumed run could not tell them apart. Call each subgraph from its "
                "own node, or compile the extra ones with checkpointer=False.",
                error_code=ErrorCode.MULTIPLE_SUBGRAPHS,
            )
        )


@dataclass(frozen=True, slots=True)
class NodeError:
    """What a node's error handler is told: which node failed, and with what exception.

    A handler added with `add_node(..., error_handler=handler)` gets it in a parameter annotated
    `NodeError` (`def handler(state, error: NodeError)`); it is not an exception.
    """

    node: str
    error: BaseException


class NodeTimeoutError(Exception):
    """A node's attempt ran past its `timeout` (`add_node(..., timeout=...)`) and was cancelled.

    Not a `TimeoutError` (an `OSError`, which the default retry policy never retries): a node with a retry
    policy is tried again.
    """

    def __init__(
        self,
        node: str,
        elapsed: float,
        *,
        kind: Literal["idle", "run"],
        idle_timeout: float | None = None,
        run_timeout: float | None = None,
    ) -> None:
        limit = run_timeout if kind == "run" else idle_timeout
        if kind not in ("idle", "run"):
            raise ValueError("kind must be 'idle' or 'run'")
        if limit is None:
            raise ValueError(f"{kind}_timeout is required when kind={kind!r}")
        progress = " without making progress" if kind == "idle" else ""
        super().__init__(
            f"Node '{node}' exceeded its {kind} timeout of {limit:.3f}s{progress} (elapsed: {elapsed:.3f}s)."
        )
        self.node, self.elapsed, self.kind, self.timeout = node, elapsed, kind, limit
        self.idle_timeout, self.run_timeout = idle_timeout, run_timeout


class EmptyInputError(Exception):
    """The graph received an empty input."""


class TaskNotFound(Exception):
    """The executor could not find a task."""


class ThreadConflictError(GraphRtError):
    """Another run holds or advanced this thread; this run wrote nothing (more).

    Raised in two cases. `busy=True`: the thread is owned by another run (in any process), so this
    run was refused before it wrote anything and retrying it is safe. Otherwise: the thread's newest
    checkpoint moved since this run read it (someone wrote without claiming the thread).
    LangGraph silently forks the history in both cases and one run's update is lost.
    """

    def __init__(
        self,
        thread_id: str,
        checkpoint_ns: str = "",
        *,
        expected: str | None = None,
        found: str | None = None,
        busy: bool = False,
        waited: float | None = None,
    ):
        self.thread_id = thread_id
        self.checkpoint_ns = checkpoint_ns
        self.expected = expected
        self.found = found
        self.busy = busy
        where = f"thread '{thread_id}'" + (f" (namespace '{checkpoint_ns}')" if checkpoint_ns else "")
        if busy:
            after = f" (waited {waited:g} s)" if waited else ""
            message = (
                f"Concurrent run on {where}: another run is using this thread{after}. This run was not "
                "applied: nothing of it was written, so retrying it is safe. Retry after the other run "
                "finishes, use a different thread_id, or pass "
                "config={'configurable': {..., 'multitask_strategy': 'enqueue'}} to wait for the thread."
            )
        else:
            message = (
                f"Concurrent run on {where}: its newest checkpoint is {found!r}, but this run started from "
                f"{expected!r}. Only one run may write a thread at a time; retry this run after the other "
                "finishes, or use a different thread_id."
            )
        super().__init__(message)


_INVALID_RESUME = "_graphrt_invalid_resume"


def mark_invalid_resume(error: BaseException) -> None:
    """Mark `error` as raised by an answer that did not match its interrupt's `response_schema`."""
    setattr(error, _INVALID_RESUME, True)


def is_invalid_resume(error: BaseException) -> bool:
    """Whether `error` was raised because a resume answer did not match the interrupt's `response_schema`.

    `interrupt()` raises `pydantic.ValidationError` then; `ToolNode` lets it propagate (it is not a tool
    error), so the interrupt stays pending and can be answered again.
    """
    return getattr(error, _INVALID_RESUME, False) is True
