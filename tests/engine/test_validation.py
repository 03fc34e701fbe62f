"""Compile-time validation: LangGraph's message stems, and every problem reported in one error."""

from __future__ import annotations

from typing import Any, TypedDict

import pytest

from graphrt.graph import END, START, StateGraph
from tests.engine.conftest import exact


class State(TypedDict):
    a: int


def noop(state: State) -> dict[str, Any]:
    return {}


def test_edge_to_an_unknown_node() -> None:
    builder = StateGraph(State)
    builder.add_node("a", noop)
    builder.add_edge(START, "a")
    builder.add_edge("a", "x")
    with pytest.raises(ValueError, match="Found edge ending at unknown node `x`"):
        builder.compile()


def test_edge_from_an_unknown_node() -> None:
    builder = StateGraph(State)
    builder.add_node("a", noop)
    builder.add_edge(START, "a")
    builder.add_edge("y", "a")
    with pytest.raises(ValueError, match="Found edge starting at unknown node 'y'"):
        builder.compile()


def test_graph_without_entry_point() -> None:
    builder = StateGraph(State)
    builder.add_node("a", noop)
    with pytest.raises(ValueError, match="Graph must have an entrypoint"):
        builder.compile()


def test_branch_to_an_unknown_target() -> None:
    builder = StateGraph(State)
    builder.add_node("a", noop)
    builder.add_edge(START, "a")
    builder.add_conditional_edges("a", lambda s: "z", {"z": "zz"})
    with pytest.raises(ValueError, match="At 'a' node, 'condition' branch found unknown target 'zz'"):
        builder.compile()


def test_destination_to_an_unknown_node() -> None:
    builder = StateGraph(State)
    builder.add_node("a", noop, destinations=("zz",))
    builder.add_edge(START, "a")
    with pytest.raises(ValueError, match="Found edge ending at unknown node `zz`"):
        builder.compile()


def test_interrupt_on_an_unknown_node() -> None:
    builder = StateGraph(State)
    builder.add_node("a", noop)
    builder.add_edge(START, "a")
    with pytest.raises(ValueError, match="Interrupt node `q` not found"):
        builder.compile(interrupt_before=["q"])


def test_duplicate_node() -> None:
    builder = StateGraph(State)
    builder.add_node("a", noop)
    with pytest.raises(ValueError, match=exact("Node `a` already present.")):
        builder.add_node("a", noop)


@pytest.mark.parametrize("char", [":", "|"])
def test_reserved_characters_in_node_names(char: str) -> None:
    with pytest.raises(
        ValueError, match=exact(f"'{char}' is a reserved character and is not allowed in the node names.")
    ):
        StateGraph(State).add_node(f"a{char}b", noop)


@pytest.mark.parametrize("name", [START, END])
def test_reserved_node_names(name: str) -> None:
    with pytest.raises(ValueError, match=exact(f"Node `{name}` is reserved.")):
        StateGraph(State).add_node(name, noop)


def test_end_cannot_start_an_edge_and_start_cannot_end_one() -> None:
    builder = StateGraph(State)
    builder.add_node("a", noop)
    with pytest.raises(ValueError, match=exact("END cannot be a start node")):
        builder.add_edge(END, "a")
    with pytest.raises(ValueError, match=exact("START cannot be an end node")):
        builder.add_edge("a", START)


def test_join_from_a_node_not_yet_added() -> None:
    builder = StateGraph(State)
    builder.add_node("a", noop)
    with pytest.raises(ValueError, match=exact("Need to add_node `q` first")):
        builder.add_edge(["a", "q"], "a")


def test_every_problem_is_reported_at_once() -> None:
    builder = StateGraph(State)
    builder.add_node("a", noop)
    builder.add_edge("a", "x")
    builder.add_edge("a", "y")
    with pytest.raises(ValueError) as info:
        builder.compile()
    message = str(info.value)
    assert "Graph must have an entrypoint" in message
    assert "Found edge ending at unknown node `x`" in message
    assert "Found edge ending at unknown node `y`" in message


def test_a_valid_graph_compiles() -> None:
    builder = StateGraph(State)
    builder.add_node("a", noop)
    builder.add_edge(START, "a")
    builder.add_edge("a", END)
    assert builder.compile().invoke({"a": 1}) == {"a": 1}
