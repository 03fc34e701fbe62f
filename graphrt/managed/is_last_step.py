"""`RemainingSteps` and `IsLastStep`: how close a run is to its recursion limit, as state keys."""

from __future__ import annotations

from typing import Annotated

from graphrt.managed.base import ManagedValue, StepWindow

__all__ = ("IsLastStep", "IsLastStepManager", "RemainingSteps", "RemainingStepsManager")


class IsLastStepManager(ManagedValue[bool]):
    @staticmethod
    def get(scratchpad: StepWindow) -> bool:
        # LangGraph's definition: true one step before the last step the run may take.
        return scratchpad.step == scratchpad.stop - 1


class RemainingStepsManager(ManagedValue[int]):
    @staticmethod
    def get(scratchpad: StepWindow) -> int:
        return scratchpad.stop - scratchpad.step


IsLastStep = Annotated[bool, IsLastStepManager]
"""True in the step before the last one the recursion limit allows (route to the end there)."""
RemainingSteps = Annotated[int, RemainingStepsManager]
"""Steps the run may still take after this one before `GraphRecursionError` (0 in the last allowed step)."""
