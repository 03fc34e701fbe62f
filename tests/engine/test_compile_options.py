"""compile(checkpointer=..., interrupt_before=..., interrupt_after=...): static breakpoints and threads."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.config import RunnableConfig
from graphrt.graph import START, StateGraph
from tests.engine.conftest import exact, run, stream

THREAD: RunnableConfig = {"configurable": {"thread_id": "t1"}}


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def abc(**compile_kw: Any) -> Any:
    builder = StateGraph(State)
    for name in "abc":
        builder.add_node(name, lambda s, name=name: {"log": [name]})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    return builder.compile(**compile_kw)


def test_interrupt_before_stops_and_none_resumes(mode: str) -> None:
    graph = abc(checkpointer=InMemorySaver(), interrupt_before=["b"])
    assert run(graph, {"log": []}, mode, THREAD) == {"log": ["a"]}
    assert graph.get_state(THREAD).next == ("b",)
    assert stream(graph, None, mode, THREAD) == [{"b": {"log": ["b"]}}, {"c": {"log": ["c"]}}]
    assert graph.get_state(THREAD).next == ()
    assert graph.get_state(THREAD).values == {"log": ["a", "b", "c"]}


def test_interrupt_after_stops_after_the_node(mode: str) -> None:
    graph = abc(checkpointer=InMemorySaver(), interrupt_after=["b"])
    assert run(graph, {"log": []}, mode, THREAD) == {"log": ["a", "b"]}
    assert graph.get_state(THREAD).next == ("c",)
    assert run(graph, None, mode, THREAD) == {"log": ["a", "b", "c"]}


def test_interrupt_before_every_node(mode: str) -> None:
    graph = abc(checkpointer=InMemorySaver(), interrupt_before="*")
    assert run(graph, {"log": []}, mode, THREAD) == {"log": []}
    assert graph.get_state(THREAD).next == ("a",)
    assert stream(graph, None, mode, THREAD) == [{"a": {"log": ["a"]}}, {"__interrupt__": ()}]
    assert graph.get_state(THREAD).next == ("b",)


def test_interrupt_given_to_stream_overrides_compile(mode: str) -> None:
    graph = abc(checkpointer=InMemorySaver())
    chunks = stream(graph, {"log": []}, mode, THREAD, interrupt_before=["c"])
    assert chunks == [{"a": {"log": ["a"]}}, {"b": {"log": ["b"]}}, {"__interrupt__": ()}]
    assert graph.get_state(THREAD).next == ("c",)


def test_checkpointer_needs_a_thread_id(mode: str) -> None:
    graph = abc(checkpointer=InMemorySaver())
    with pytest.raises(
        ValueError,
        match=exact(
            "Checkpointer requires one or more of the following 'configurable' keys: "
            "thread_id, checkpoint_ns, checkpoint_id"
        ),
    ):
        run(graph, {"log": []}, mode)


def test_threads_continue_from_their_saved_state(mode: str) -> None:
    graph = abc(checkpointer=InMemorySaver())
    assert run(graph, {"log": ["1"]}, mode, THREAD) == {"log": ["1", "a", "b", "c"]}
    assert run(graph, {"log": ["2"]}, mode, THREAD) == {"log": ["1", "a", "b", "c", "2", "a", "b", "c"]}
    other: RunnableConfig = {"configurable": {"thread_id": "t2"}}
    assert run(graph, {"log": []}, mode, other) == {"log": ["a", "b", "c"]}


def test_compile_store_is_used_by_every_run(mode: str) -> None:
    from graphrt.store.memory import InMemoryStore

    store = InMemoryStore()
    graph = abc(store=store)
    assert graph.store is store
    assert run(graph, {"log": []}, mode) == {"log": ["a", "b", "c"]}
