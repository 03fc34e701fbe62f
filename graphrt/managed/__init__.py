"""State keys the runtime fills in per task: `RemainingSteps`, `IsLastStep` (as in `langgraph.managed`)."""

from graphrt.managed.is_last_step import IsLastStep, RemainingSteps

__all__ = ("IsLastStep", "RemainingSteps")
