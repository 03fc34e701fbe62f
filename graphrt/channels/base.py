"""`BaseChannel`: the contract every channel keeps.

A channel holds one piece of graph state between supersteps. At the end of a step the runtime hands each
channel the step's writes in one `update` call; nodes read it with `get`; `checkpoint` and `from_checkpoint`
save and restore it. `consume` and `finish` let barrier- and after-finish channels react to the loop.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, Self, TypeVar

from graphrt.errors import EmptyChannelError

__all__ = ("BaseChannel",)

Value = TypeVar("Value")
Update = TypeVar("Update")
Checkpoint = TypeVar("Checkpoint")

MISSING: Any = object()
"""Marks an empty channel (distinct from a stored `None`)."""


class BaseChannel(Generic[Value, Update, Checkpoint], ABC):
    """Base class for channels: holds a value, takes a step's updates, saves and restores itself."""

    __slots__ = ("key", "typ")

    steps_without_writes: ClassVar[bool] = True
    """True when `update([])` can change the channel (ephemeral values); the runtime then notifies the
    channel of every step it was not written in. Built-in channels whose empty update is a no-op set
    this to False so a step costs nothing for them. A custom channel keeps the safe default."""

    def __init__(self, typ: Any, key: str = "") -> None:
        self.typ = typ
        self.key = key

    @property
    @abstractmethod
    def ValueType(self) -> Any:
        """The type of the value stored in the channel."""

    @property
    @abstractmethod
    def UpdateType(self) -> Any:
        """The type of the updates the channel accepts."""

    def copy(self) -> Self:
        """A copy of the channel; subclasses override with something cheaper than a checkpoint round-trip."""
        return self.from_checkpoint(self.checkpoint())

    def checkpoint(self) -> Checkpoint | Any:
        """A serializable representation of the channel's state, or MISSING when empty."""
        try:
            return self.get()
        except EmptyChannelError:
            return MISSING

    @abstractmethod
    def from_checkpoint(self, checkpoint: Checkpoint | Any) -> Self:
        """A new channel of the same kind, restored from `checkpoint` (MISSING: empty)."""

    @abstractmethod
    def get(self) -> Value:
        """The current value. Raises EmptyChannelError if nothing was written yet."""

    def is_available(self) -> bool:
        """True if the channel has a value; subclasses override with a cheaper check."""
        try:
            self.get()
            return True
        except EmptyChannelError:
            return False

    @abstractmethod
    def update(self, values: Sequence[Update]) -> bool:
        """Apply one step's writes (in deterministic order). Returns True if the channel changed."""

    def consume(self) -> bool:
        """A task subscribed to this channel ran. Returns True if the channel changed."""
        return False

    def finish(self) -> bool:
        """The graph is about to finish. Returns True if the channel changed."""
        return False
