"""A compiled graph added as a node runs with the parent's state (the seeds' subgraph example)."""

from __future__ import annotations

import asyncio
from typing import TypedDict

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.graph import START, StateGraph


class State(TypedDict):
    foo: str


def build() -> object:
    def subgraph_node_1(state: State) -> State:
        return {"foo": state["foo"] + "bar"}

    subgraph_builder = StateGraph(State)
    subgraph_builder.add_node(subgraph_node_1)
    subgraph_builder.add_edge(START, "subgraph_node_1")
    subgraph = subgraph_builder.compile()

    builder = StateGraph(State)
    builder.add_node("node_1", subgraph)
    builder.add_edge(START, "node_1")
    return builder.compile(checkpointer=InMemorySaver())


def test_compiled_graph_as_a_node_sync_and_async() -> None:
    graph = build()
    assert graph.invoke({"foo": "hi"}, {"configurable": {"thread_id": "1"}}) == {"foo": "hibar"}  # type: ignore[attr-defined]
    out = asyncio.run(graph.ainvoke({"foo": "yo"}, {"configurable": {"thread_id": "2"}}))  # type: ignore[attr-defined]
    assert out == {"foo": "yobar"}
    assert graph.get_state({"configurable": {"thread_id": "1"}}).values == {"foo": "hibar"}  # type: ignore[attr-defined]
