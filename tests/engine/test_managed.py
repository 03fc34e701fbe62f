"""Managed values (`RemainingSteps`, `IsLastStep`) and how many steps a run may take.

Expected values are LangGraph 1.2.22's answers to the same graphs (pinned), not graphrt's own output.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest
from pydantic import BaseModel

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.errors import GraphRecursionError
from graphrt.graph import END, START, StateGraph
from graphrt.managed import IsLastStep, RemainingSteps
from graphrt.types import Command, interrupt


class Looping(TypedDict):
    log: Annotated[list[Any], operator.add]
    rem: RemainingSteps
    last: IsLastStep


def _record(state: Looping) -> dict[str, Any]:
    return {"log": [(state["rem"], state["last"])]}


def _forever(*, ask_first: bool = False) -> Any:
    """x -> x -> ... (and, with ask_first, an interrupting node before the loop)."""
    builder = StateGraph(Looping)
    builder.add_node("x", _record)
    builder.add_edge("x", "x")
    if ask_first:

        def ask(state: Looping) -> dict[str, Any]:
            interrupt("go on?")
            return {"log": [("ask", state["rem"], state["last"])]}

        builder.add_node("ask", ask)
        builder.add_edge(START, "ask")
        builder.add_edge("ask", "x")
    else:
        builder.add_edge(START, "x")
    return builder.compile(checkpointer=InMemorySaver())


def _run_until_limit(graph: Any, value: Any, config: Any) -> None:
    with pytest.raises(GraphRecursionError):
        graph.invoke(value, config)


def test_remaining_steps_count_down_to_the_limit_with_new_input() -> None:
    graph = _forever()
    config = {"configurable": {"thread_id": "t"}, "recursion_limit": 3}
    _run_until_limit(graph, {"log": []}, config)
    assert graph.get_state(config).values["log"] == [(2, False), (1, True), (0, False)]
    _run_until_limit(graph, {"log": []}, config)  # new input on the same thread: the count starts again
    assert graph.get_state(config).values["log"][3:] == [(2, False), (1, True), (0, False)]


def test_a_resumed_run_may_take_one_step_more_as_in_langgraph() -> None:
    graph = _forever()
    config = {"configurable": {"thread_id": "t"}, "recursion_limit": 3}
    _run_until_limit(graph, {"log": []}, config)
    _run_until_limit(graph, None, config)
    assert graph.get_state(config).values["log"][3:] == [(4, False), (3, False), (2, False), (1, True), (0, False)]

    asking = _forever(ask_first=True)
    asking.invoke({"log": []}, config)
    _run_until_limit(asking, Command(resume="yes"), config)
    assert asking.get_state(config).values["log"] == [("ask", 4, False), (3, False), (2, False), (1, True), (0, False)]


def test_conditional_edges_see_managed_values() -> None:
    builder = StateGraph(Looping)
    builder.add_node("x", _record)
    builder.add_edge(START, "x")
    builder.add_conditional_edges("x", lambda state: END if state["last"] else "x")
    out = builder.compile().invoke({"log": []}, {"recursion_limit": 5})
    assert out == {"log": [(4, False), (3, False), (2, False), (1, True)]}


class Counted(TypedDict):
    log: Annotated[list[Any], operator.add]
    rem: RemainingSteps


def test_managed_values_are_not_state_they_ignore_input_and_writes() -> None:
    def w(state: Counted) -> dict[str, Any]:
        return {"log": [state["rem"]], "rem": 100}

    builder = StateGraph(Counted)
    builder.add_node("w", w)
    builder.add_node("v", lambda state: {"log": [state["rem"]]})
    builder.add_edge(START, "w")
    builder.add_edge("w", "v")
    graph = builder.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}, "recursion_limit": 9}
    assert graph.invoke({"log": [], "rem": 3}, config) == {"log": [8, 7]}
    assert graph.get_state(config).values == {"log": [8, 7]}


def test_a_node_input_schema_and_a_pydantic_state_get_managed_values() -> None:
    class Only(TypedDict):
        rem: RemainingSteps

    builder = StateGraph(Counted)
    builder.add_node("y", lambda state: {"log": [("y", state["rem"])]}, input_schema=Only)
    builder.add_edge(START, "y")
    assert builder.compile().invoke({"log": []}, {"recursion_limit": 7}) == {"log": [("y", 6)]}
    assert builder.compile().invoke({"log": []}) == {"log": [("y", 10006)]}  # the default limit is 10007

    class Model(BaseModel):
        log: Annotated[list[Any], operator.add] = []
        rem: RemainingSteps = 25

    def x(state: Model) -> dict[str, Any]:
        return {"log": [state.rem]}

    pyd = StateGraph(Model)
    pyd.add_node("x", x)
    pyd.add_edge(START, "x")
    assert pyd.compile().invoke({"log": []}, {"recursion_limit": 9}) == {"log": [8]}


def test_a_subgraph_counts_from_the_parent_limit() -> None:
    sub = StateGraph(Counted)
    sub.add_node("s", lambda state: {"log": [("sub", state["rem"])]})
    sub.add_edge(START, "s")
    builder = StateGraph(Counted)
    builder.add_node("a", lambda state: {"log": [("a", state["rem"])]})
    builder.add_node("sub", sub.compile())
    builder.add_edge(START, "a")
    builder.add_edge("a", "sub")
    # The subgraph returns its whole log, which the parent's reducer appends again (as in LangGraph).
    assert builder.compile().invoke({"log": []}, {"recursion_limit": 10}) == {"log": [("a", 9), ("a", 9), ("sub", 9)]}
