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


def test_get_subgraphs_and_aget_subgraphs_name_nested_graphs_as_langgraph_does() -> None:
    """LangGraph 1.2.22's answers for a graph holding `mid` (which holds `inner`) and `other`."""

    def leaf(name: str) -> object:
        builder = StateGraph(State)
        builder.add_node("n", lambda state: state)
        builder.add_edge(START, "n")
        return builder.compile(name=name)

    mid = StateGraph(State)
    mid.add_node("inner", leaf("inner"))
    mid.add_node("plain", lambda state: state)
    mid.add_edge(START, "inner")
    mid.add_edge("inner", "plain")
    top = StateGraph(State)
    top.add_node("mid", mid.compile())
    top.add_node("other", leaf("other"))
    top.add_edge(START, "mid")
    top.add_edge("mid", "other")
    graph = top.compile()
    assert [n for n, _ in graph.get_subgraphs()] == ["mid", "other"]
    assert [n for n, _ in graph.get_subgraphs(recurse=True)] == ["mid", "mid|inner", "other"]
    assert [n for n, _ in graph.get_subgraphs(namespace="mid")] == ["mid"]
    assert [n for n, _ in graph.get_subgraphs(namespace="mid|inner", recurse=True)] == ["mid|inner"]
    assert list(graph.get_subgraphs(namespace="nope")) == []
    inner = dict(graph.get_subgraphs(recurse=True))["mid|inner"]
    assert inner.get_name() == "inner"

    async def collect(**kwargs: object) -> list[str]:
        return [n async for n, _ in graph.aget_subgraphs(**kwargs)]  # type: ignore[arg-type]

    assert asyncio.run(collect(recurse=True)) == ["mid", "mid|inner", "other"]
    assert asyncio.run(collect(namespace="other")) == ["other"]
