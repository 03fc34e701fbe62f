"""`RunControl`: a run asked to drain stops at its next step boundary with its checkpoint saved.

Expected values were pinned from LangGraph 1.2.22 running the same graphs.
"""

from __future__ import annotations

import asyncio
import operator
import threading
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.errors import GraphBubbleUp, GraphDrained
from graphrt.graph import START, StateGraph
from graphrt.runtime import RunControl, Runtime
from tests.engine.conftest import run


class S(TypedDict):
    log: Annotated[list[str], operator.add]


def chain(first: Any = None, checkpointer: Any = True) -> Any:
    """a -> b -> c; `first` runs inside a with its runtime."""

    def a(state: S, runtime: Runtime) -> dict[str, Any]:
        if first is not None:
            first(runtime)
        return {"log": ["a"]}

    builder = StateGraph(S)
    builder.add_node("a", a)
    builder.add_node("b", lambda state: {"log": ["b"]})
    builder.add_node("c", lambda state: {"log": ["c"]})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    return builder.compile(checkpointer=InMemorySaver() if checkpointer else None)


def drain(runtime: Runtime) -> None:
    assert runtime.control is not None
    runtime.control.request_drain("deploy")


def test_a_drained_run_stops_after_the_step_and_resumes_where_it_stopped(mode: str) -> None:
    graph, config, control = chain(drain), {"configurable": {"thread_id": "1"}}, RunControl()
    with pytest.raises(GraphDrained) as caught:
        run(graph, {"log": []}, mode, config, control=control)
    assert (caught.value.reason, str(caught.value)) == ("deploy", "Graph drained: deploy")
    assert isinstance(caught.value, GraphBubbleUp)
    assert (control.drain_requested, control.drain_reason) == (True, "deploy")
    state = graph.get_state(config)
    assert (state.values, state.next) == ({"log": ["a"]}, ("b",))
    assert run(graph, None, mode, config) == {"log": ["a", "b", "c"]}

    # With durability="exit" nothing was saved before: the drain saves the run as it stands.
    graph, config = chain(drain), {"configurable": {"thread_id": "2"}}
    with pytest.raises(GraphDrained):
        run(graph, {"log": []}, mode, config, control=RunControl(), durability="exit")
    state = graph.get_state(config)
    assert (state.values, state.next) == ({"log": ["a"]}, ("b",))
    assert run(graph, None, mode, config) == {"log": ["a", "b", "c"]}


def test_a_stream_yields_what_ran_before_the_drain(mode: str) -> None:
    graph, config = chain(drain), {"configurable": {"thread_id": "1"}}
    seen: list[Any] = []

    async def consume() -> None:
        async for chunk in graph.astream({"log": []}, config, control=RunControl(), stream_mode="updates"):
            seen.append(chunk)

    with pytest.raises(GraphDrained, match="deploy"):
        if mode == "sync":
            for chunk in graph.stream({"log": []}, config, control=RunControl(), stream_mode="updates"):
                seen.append(chunk)
        else:
            asyncio.run(consume())
    assert seen == [{"a": {"log": ["a"]}}]


def test_a_drain_asked_before_the_run_saves_the_input_and_runs_nothing(mode: str) -> None:
    graph, config, control = chain(), {"configurable": {"thread_id": "1"}}, RunControl()
    control.request_drain()
    with pytest.raises(GraphDrained, match=r"^Graph drained: shutdown$"):
        run(graph, {"log": []}, mode, config, control=control)
    state = graph.get_state(config)
    assert (state.values, state.next) == ({"log": []}, ("__start__",))
    with pytest.raises(GraphDrained):  # without a checkpointer too (nothing to resume, but it stops)
        run(chain(drain, checkpointer=False), {"log": []}, mode, control=RunControl())


def test_a_drain_from_another_thread_stops_the_run_at_the_next_boundary() -> None:
    started, release = threading.Event(), threading.Event()

    def wait(runtime: Runtime) -> None:
        started.set()
        assert release.wait(5)

    graph, config, control = chain(wait), {"configurable": {"thread_id": "1"}}, RunControl()
    outcome: list[BaseException] = []

    def invoke() -> None:
        try:
            graph.invoke({"log": []}, config, control=control)
        except GraphDrained as exc:
            outcome.append(exc)

    worker = threading.Thread(target=invoke)
    worker.start()
    assert started.wait(5)
    control.request_drain("sigterm")
    release.set()
    worker.join(5)
    assert [e.reason for e in outcome] == ["sigterm"]  # type: ignore[attr-defined]
    assert graph.get_state(config).next == ("b",)


def test_every_run_has_a_control_in_its_runtime() -> None:
    seen: list[Any] = []
    chain(seen.append, checkpointer=False).invoke({"log": []})
    assert isinstance(seen[0].control, RunControl) and not seen[0].control.drain_requested


def test_a_nested_run_obeys_its_own_control_and_otherwise_sees_its_callers() -> None:
    inner = StateGraph(S)
    inner.add_node("s1", lambda state, runtime: runtime.control.request_drain("inner") or {"log": ["s1"]})
    inner.add_node("s2", lambda state: {"log": ["s2"]})
    inner.add_edge(START, "s1")
    inner.add_edge("s1", "s2")
    sub = inner.compile()
    seen: list[Any] = []

    def call(state: S, runtime: Runtime) -> dict[str, Any]:
        seen.append(runtime.control)
        return {"log": sub.invoke({"log": []}, control=RunControl())["log"]}

    builder = StateGraph(S)
    builder.add_node("call", call)
    builder.add_edge(START, "call")
    with pytest.raises(GraphDrained, match="inner"):  # the subgraph stopped after s1, before s2
        builder.compile().invoke({"log": []})
    assert isinstance(seen[0], RunControl) and not seen[0].drain_requested  # the parent's was not asked
