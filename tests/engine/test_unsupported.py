"""LangGraph options graphrt does not support yet fail loudly instead of being ignored."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.graph import START, StateGraph


class State(TypedDict):
    x: int


def test_a_per_node_timeout_is_refused_with_the_alternative() -> None:
    with pytest.raises(NotImplementedError, match="step_timeout"):
        StateGraph(State).add_node("a", lambda state: state, timeout=5)
    StateGraph(State).add_node("a", lambda state: state, timeout=None)  # the default is fine


def test_invoke_version_v2_is_refused_v1_is_the_default() -> None:
    builder = StateGraph(State)
    builder.add_node("a", lambda state: {"x": 1})
    builder.add_edge(START, "a")
    graph = builder.compile()
    with pytest.raises(NotImplementedError, match="GraphOutput"):
        graph.invoke({"x": 0}, version="v2")
    assert graph.invoke({"x": 0}, version="v1") == {"x": 1}


@pytest.mark.parametrize("schema", [dict, int, list, Annotated[list, operator.add]])
def test_a_state_that_is_one_value_is_refused_at_construction(schema: Any) -> None:
    # LangGraph runs these as one root channel; graphrt refuses them instead of returning None or failing later.
    with pytest.raises(NotImplementedError, match="single value"):
        StateGraph(schema)
    with pytest.raises(NotImplementedError, match="single value"):
        StateGraph(State, output_schema=schema)


def test_message_graph_points_to_messages_state() -> None:
    from graphrt.graph import MessageGraph

    with pytest.raises(NotImplementedError, match="MessagesState"):
        MessageGraph()
