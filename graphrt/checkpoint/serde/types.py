"""Reserved write-channel names and the structural types the checkpoint layer relies on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Protocol, Self, TypeVar, runtime_checkable

__all__ = (
    "ERROR",
    "INTERRUPT",
    "RESUME",
    "SCHEDULED",
    "TASKS",
    "ChannelProtocol",
    "SendProtocol",
)

ERROR: Final = "__error__"
"""Pending-write channel that records the error a task raised."""
SCHEDULED: Final = "__scheduled__"
"""Pending-write channel that marks a task as scheduled."""
INTERRUPT: Final = "__interrupt__"
"""Pending-write channel that records a task's interrupts."""
RESUME: Final = "__resume__"
"""Pending-write channel that carries the answers to interrupts."""
TASKS: Final = "__pregel_tasks"
"""Channel that carries the `Send`s of a step."""

Value = TypeVar("Value", covariant=True)
Update = TypeVar("Update", contravariant=True)
C = TypeVar("C")


class ChannelProtocol(Protocol[Value, Update, C]):
    """What a saver may call on a channel (the shape of `graphrt.channels.BaseChannel`)."""

    @property
    def ValueType(self) -> Any: ...

    @property
    def UpdateType(self) -> Any: ...

    def checkpoint(self) -> C | None: ...

    def from_checkpoint(self, checkpoint: C | None) -> Self: ...

    def update(self, values: Sequence[Update]) -> bool: ...

    def get(self) -> Value: ...

    def consume(self) -> bool: ...


@runtime_checkable
class SendProtocol(Protocol):
    """The shape of `graphrt.types.Send`: run `node` with `arg`."""

    node: str
    arg: Any

    def __hash__(self) -> int: ...

    def __repr__(self) -> str: ...

    def __eq__(self, value: object) -> bool: ...
