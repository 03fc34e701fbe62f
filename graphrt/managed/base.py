"""Managed values: state keys the runtime fills in for each task instead of storing them in a channel."""

from __future__ import annotations

from abc import ABC, abstractmethod
from inspect import isclass
from typing import Any, Generic, NamedTuple, TypeGuard, TypeVar

__all__ = ("ManagedValue", "ManagedValueSpec", "StepWindow", "is_managed_value")

V = TypeVar("V")


class StepWindow(NamedTuple):
    """What a managed value may look at: the task's step, and the last step the run may take."""

    step: int
    stop: int


class ManagedValue(ABC, Generic[V]):
    """A value computed for each task from its step (`RemainingSteps`, `IsLastStep`).

    Declared in a state schema as `Annotated[T, SomeManagedValue]`: the key is not a channel, is never saved,
    ignores writes, and is added to the input of every node (and conditional edge) that reads it.
    """

    @staticmethod
    @abstractmethod
    def get(scratchpad: StepWindow) -> V: ...


ManagedValueSpec = type[ManagedValue[Any]]


def is_managed_value(value: Any) -> TypeGuard[ManagedValueSpec]:
    return isclass(value) and issubclass(value, ManagedValue)
