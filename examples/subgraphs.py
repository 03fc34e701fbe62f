"""Subgraphs and persistence (the seeds' "Use with subgraphs"): the parent's checkpointer reaches the
subgraph; a subgraph compiled with `checkpointer=True` keeps its own memory across the parent's runs.

Run: python examples/subgraphs.py
"""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.graph import START, StateGraph


class State(TypedDict):
    foo: str


# Subgraph


def subgraph_node_1(state: State) -> dict:
    return {"foo": state["foo"] + "bar"}


subgraph_builder = StateGraph(State)
subgraph_builder.add_node(subgraph_node_1)
subgraph_builder.add_edge(START, "subgraph_node_1")
subgraph = subgraph_builder.compile()

# Parent graph


def node_1(state: State) -> dict:
    return {"foo": "hi! " + state["foo"]}


builder = StateGraph(State)
builder.add_node("node_1", subgraph)
builder.add_edge(START, "node_1")

checkpointer = InMemorySaver()
graph = builder.compile(checkpointer=checkpointer)


# A subgraph with its own memory: it appends every note it was given, across the parent's runs.
class Notes(TypedDict):
    note: str
    seen: Annotated[list[str], operator.add]


def remember(state: Notes) -> dict:
    return {"seen": [state["note"]]}


notes_builder = StateGraph(Notes)
notes_builder.add_node(remember)
notes_builder.add_edge(START, "remember")
notes = notes_builder.compile(checkpointer=True)


class Parent(TypedDict):
    note: str
    count: int


def call_notes(state: Parent) -> dict:
    out = notes.invoke({"note": state["note"]})
    return {"count": len(out["seen"])}


parent_builder = StateGraph(Parent)
parent_builder.add_node(call_notes)
parent_builder.add_edge(START, "call_notes")
parent = parent_builder.compile(checkpointer=InMemorySaver())

if __name__ == "__main__":
    config = {"configurable": {"thread_id": "1"}}
    for chunk in graph.stream({"foo": "hi"}, config, subgraphs=True):
        print("stream:", chunk)
    print("state:", graph.get_state(config).values)
    config = {"configurable": {"thread_id": "notes"}}
    for note in ("a", "b", "c"):
        print("notes seen by the subgraph:", parent.invoke({"note": note}, config)["count"])
