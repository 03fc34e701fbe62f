"""`step_timeout`: a step still running after it fails with TimeoutError; finished siblings' writes are kept."""

from __future__ import annotations

import threading
import time
from typing import Any, TypedDict

import anyio
import pytest

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.graph import START, StateGraph


class State(TypedDict, total=False):
    x: int
    log: list[str]


def _graph(slow: Any) -> Any:
    """fast -> (slow, side) in one step."""
    builder = StateGraph(State)
    builder.add_node("fast", lambda state: {"x": 2})
    builder.add_node("slow", slow)
    builder.add_node("side", lambda state: {"log": ["side"]})
    builder.add_edge(START, "fast")
    builder.add_edge("fast", "slow")
    builder.add_edge("fast", "side")
    graph = builder.compile(checkpointer=InMemorySaver())
    graph.step_timeout = 0.2
    return graph


def test_a_step_past_its_timeout_fails_and_keeps_what_finished() -> None:
    release, ran = threading.Event(), []

    def slow(state: State) -> dict[str, Any]:
        ran.append("slow")
        release.wait(10)
        return {"x": 1}

    graph = _graph(slow)
    config = {"configurable": {"thread_id": "t"}}
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"step_timeout=0.2s \(still running: 'slow'\)"):
        graph.invoke({"x": 0}, config)
    assert time.monotonic() - started < 5  # did not wait for the slow task
    release.set()  # the abandoned task finishes in the background; what it returns is dropped
    time.sleep(0.2)
    state = graph.get_state(config)
    assert (state.next, state.values) == (("slow",), {"x": 2, "log": ["side"]})
    assert graph.invoke(None, config) == {"x": 1, "log": ["side"]}  # only the late task runs again
    assert ran == ["slow", "slow"]


def test_a_single_task_step_times_out_too_and_with_config_keeps_the_timeout() -> None:
    release = threading.Event()
    builder = StateGraph(State)
    builder.add_node("slow", lambda state: {"x": int(release.wait(10))})
    builder.add_edge(START, "slow")
    graph = builder.compile()
    graph.step_timeout = 0.2
    with pytest.raises(TimeoutError):
        graph.with_config(recursion_limit=5).invoke({"x": 0})
    release.set()


def test_async_a_step_past_its_timeout_is_cancelled() -> None:
    cancelled = []

    async def slow(state: State) -> dict[str, Any]:
        try:
            await anyio.sleep(10)
        except BaseException:
            cancelled.append(True)
            raise
        return {"x": 1}

    graph = _graph(slow)
    config = {"configurable": {"thread_id": "t"}}

    async def main() -> None:
        with pytest.raises(TimeoutError, match="still running: 'slow'"):
            await graph.ainvoke({"x": 0}, config)

    anyio.run(main)
    assert cancelled == [True]
    state = graph.get_state(config)
    assert (state.next, state.values) == (("slow",), {"x": 2, "log": ["side"]})


def test_without_a_timeout_a_slow_step_just_runs() -> None:
    builder = StateGraph(State)
    builder.add_node("slow", lambda state: (time.sleep(0.3), {"x": 1})[1])
    builder.add_edge(START, "slow")
    assert builder.compile().invoke({"x": 0}) == {"x": 1}
