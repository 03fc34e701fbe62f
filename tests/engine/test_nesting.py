"""Nested runs without a checkpointer: nesting never deadlocks, and events arrive as they happen."""

from __future__ import annotations

import asyncio
import operator
import threading
import time
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.config import get_stream_writer
from graphrt.errors import ParentCommand
from graphrt.graph import START, StateGraph
from graphrt.types import Command, Send
from tests.engine.conftest import run, stream


class Fan(TypedDict):
    x: int
    out: Annotated[list[int], operator.add]


def _pair_child() -> Any:
    """Two parallel nodes that each take 10 ms."""

    def a(state: Fan) -> dict[str, Any]:
        time.sleep(0.01)
        return {"out": [state["x"]]}

    def b(state: Fan) -> dict[str, Any]:
        time.sleep(0.01)
        return {"out": [-state["x"]]}

    return StateGraph(Fan).add_node(a).add_node(b).add_edge(START, "a").add_edge(START, "b").compile()


@pytest.mark.timeout(60)
def test_wide_fan_out_of_subgraph_calls_finishes(mode: str) -> None:
    """64 Sends, each invoking a child with two parallel nodes: more than the shared pool's 32 threads."""
    child = _pair_child()

    def call(state: Fan) -> dict[str, Any]:
        return {"out": child.invoke(state)["out"]}

    def fan(state: Fan) -> list[Send]:
        return [Send("call", {"x": i, "out": []}) for i in range(1, 65)]

    graph = StateGraph(Fan).add_node(call).add_conditional_edges(START, fan).compile()
    out = run(graph, {"x": 0, "out": []}, mode)
    assert sorted(out["out"]) == sorted([*range(1, 65), *range(-64, 0)])


@pytest.mark.timeout(60)
def test_deep_and_wide_nesting_finishes(mode: str) -> None:
    """Three levels, each fanning out 8 ways with Send into the next level: 512 leaves."""

    def level(depth: int) -> Any:
        if depth == 0:
            return _pair_child()
        inner = level(depth - 1)

        def call(state: Fan) -> dict[str, Any]:
            return {"out": [sum(inner.invoke({"x": state["x"], "out": []})["out"]) + 1]}

        def fan(state: Fan) -> list[Send]:
            return [Send("call", {"x": state["x"], "out": []}) for _ in range(8)]

        return StateGraph(Fan).add_node(call).add_conditional_edges(START, fan).compile()

    out = run(level(3), {"x": 1, "out": []}, mode)
    # each pair child sums to 0; each level adds 1 per call and sums 8 of them
    assert sum(out["out"]) == 8 * (1 + 8 * (1 + 8 * 1))


def test_async_stream_yields_a_fast_tasks_update_before_a_slow_sibling_ends() -> None:
    """The slow node waits until the consumer has seen the fast node's update: held events would hang."""

    class S(TypedDict):
        log: Annotated[list[str], operator.add]

    async def main() -> list[Any]:
        gate = asyncio.Event()

        async def fast(state: S) -> dict[str, Any]:
            return {"log": ["fast"]}

        async def slow(state: S) -> dict[str, Any]:
            await asyncio.wait_for(gate.wait(), 10)
            return {"log": ["slow"]}

        graph = StateGraph(S).add_node(fast).add_node(slow).add_edge(START, "fast").add_edge(START, "slow").compile()
        seen = []
        async for chunk in graph.astream({"log": []}, stream_mode="updates"):
            seen.append(chunk)
            if "fast" in chunk:
                gate.set()
        return seen

    assert asyncio.run(main()) == [{"fast": {"log": ["fast"]}}, {"slow": {"log": ["slow"]}}]


def test_sync_subgraph_events_reach_the_caller_while_the_subgraph_runs() -> None:
    """The child's second node waits until the caller has read the child's first custom event."""

    class S(TypedDict):
        log: Annotated[list[str], operator.add]

    gate = threading.Event()

    def first(state: S) -> dict[str, Any]:
        get_stream_writer()("first")
        return {"log": ["first"]}

    def second(state: S) -> dict[str, Any]:
        assert gate.wait(10), "the caller never saw the first event"
        return {"log": ["second"]}

    child = StateGraph(S).add_node(first).add_node(second).add_edge(START, "first").add_edge("first", "second")
    graph = StateGraph(S).add_node("sub", child.compile()).add_edge(START, "sub").compile()
    seen = []
    for ns, chunk in graph.stream({"log": []}, stream_mode="custom", subgraphs=True):
        seen.append((len(ns), chunk))
        gate.set()
    assert seen == [(1, "first")]


def test_async_nested_stream_events_arrive_in_order(mode: str) -> None:
    class S(TypedDict):
        log: Annotated[list[str], operator.add]

    def node(name: str) -> Any:
        def write(state: S) -> dict[str, Any]:
            return {"log": [name]}

        return write

    inner = StateGraph(S).add_node("i1", node("i1")).add_node("i2", node("i2"))
    inner_graph = inner.add_edge(START, "i1").add_edge("i1", "i2").compile()
    graph = StateGraph(S).add_node("o1", node("o1")).add_node("sub", inner_graph)
    compiled = graph.add_edge(START, "o1").add_edge("o1", "sub").compile()
    chunks = stream(compiled, {"log": []}, mode, stream_mode="updates", subgraphs=True)
    assert [(len(ns), next(iter(chunk))) for ns, chunk in chunks] == [(0, "o1"), (1, "i1"), (1, "i2"), (0, "sub")]


def test_command_parent_at_the_root_keeps_travelling(mode: str) -> None:
    """LangGraph raises ParentCommand out of a root graph too."""

    class S(TypedDict):
        log: Annotated[list[str], operator.add]

    def jump(state: S) -> Command[str]:
        return Command(graph=Command.PARENT, goto="x")

    graph = StateGraph(S).add_node(jump).add_edge(START, "jump").compile()
    with pytest.raises(ParentCommand):
        run(graph, {"log": []}, mode)


def test_command_parent_without_a_checkpointer(mode: str) -> None:
    class S(TypedDict):
        log: Annotated[list[str], operator.add]

    def jump(state: S) -> Command[str]:
        return Command(graph=Command.PARENT, goto="after", update={"log": ["jump"]})

    def after(state: S) -> dict[str, Any]:
        return {"log": ["after"]}

    child = StateGraph(S).add_node(jump).add_edge(START, "jump").compile()
    graph = StateGraph(S).add_node("sub", child).add_node(after).add_edge(START, "sub").compile()
    assert run(graph, {"log": []}, mode) == {"log": ["jump", "after"]}


@pytest.mark.parametrize("name", ["a|b", "a:b"])
def test_reserved_characters_in_node_names(name: str) -> None:
    with pytest.raises(
        ValueError, match=f"^'{name[1]}' is a reserved character and is not allowed in the node names.$"
    ):
        StateGraph(Fan).add_node(name, lambda s: s)
