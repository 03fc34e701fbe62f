"""LangGraph options graphrt does not support yet fail loudly instead of being ignored."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.graph import START, StateGraph


class State(TypedDict):
    x: int


def test_a_task_timeout_is_refused() -> None:
    from graphrt.func import task

    with pytest.raises(NotImplementedError, match=r"task\(timeout=...\)"):
        task(timeout=1)(lambda x: x)
    task(timeout=None)(lambda x: x)  # the default is fine


def test_an_idle_timeout_is_refused_with_the_alternative() -> None:
    from graphrt.types import TimeoutPolicy

    idle = TimeoutPolicy(idle_timeout=5)
    with pytest.raises(NotImplementedError, match=r"idle_timeout=.*run_timeout"):
        StateGraph(State).add_node("a", lambda state: state, timeout=idle)
    with pytest.raises(NotImplementedError, match=r"idle_timeout=.*run_timeout"):
        StateGraph(State).set_node_defaults(timeout=idle)
    StateGraph(State).add_node("a", lambda state: state, timeout=None)  # the default is fine


def test_trace_policy_is_refused_and_unknown_node_options_are_errors() -> None:
    builder = StateGraph(State)
    with pytest.raises(NotImplementedError, match=r"add_node\(trace_policy=...\)"):
        builder.add_node("a", lambda state: state, trace_policy=object())
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        builder.add_node("a", lambda state: state, bogus=1)  # LangGraph ignores it: a typo would go unnoticed
    assert "a" not in builder.nodes
    builder.add_node("a", lambda state: state, error_handler=None, trace_policy=None)  # the defaults are fine


def test_the_deprecated_retry_keyword_is_the_retry_policy() -> None:
    from graphrt.types import RetryPolicy

    attempts: list[int] = []

    def flaky(state: State) -> State:
        attempts.append(1)
        if len(attempts) < 2:
            raise ValueError("again")
        return {"x": 1}

    builder = StateGraph(State)
    builder.add_node("a", flaky, retry=RetryPolicy(initial_interval=0.001, retry_on=ValueError))
    builder.add_edge(START, "a")
    assert builder.compile().invoke({"x": 0}) == {"x": 1} and len(attempts) == 2


def test_v1_is_the_default_and_unknown_invoke_keywords_are_errors() -> None:
    builder = StateGraph(State)
    builder.add_node("a", lambda state: {"x": 1})
    builder.add_edge(START, "a")
    graph = builder.compile()
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        graph.invoke({"x": 0}, bogus=1)
    assert graph.invoke({"x": 0}, version="v1") == {"x": 1}
    assert list(graph.stream({"x": 0}, version="v1", stream_mode="values")) == [{"x": 0}, {"x": 1}]
    assert graph.invoke({"x": 0}, subgraphs=True) == {"x": 1}  # LangGraph passes it on to stream: same output


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
