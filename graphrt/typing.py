"""Type variables for annotating graphs, nodes and contexts, as `langgraph.typing` names them (typing only)."""

from __future__ import annotations

from typing_extensions import TypeVar

__all__ = ("ContextT", "InputT", "OutputT", "StateT", "StateT_co", "StateT_contra")

StateT = TypeVar("StateT")
"""A graph's state: a TypedDict, dataclass or pydantic model."""
StateT_co = TypeVar("StateT_co", covariant=True)
StateT_contra = TypeVar("StateT_contra", contravariant=True)
ContextT = TypeVar("ContextT", default=None)
"""A run's static context (`context_schema`); None when the graph has none."""
InputT = TypeVar("InputT", default=StateT)
"""What a graph accepts as input (its `input_schema`; the state schema when not given)."""
OutputT = TypeVar("OutputT", default=StateT)
"""What a graph returns (its `output_schema`; the state schema when not given)."""
