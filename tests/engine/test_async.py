"""Async nodes under ainvoke/astream, sync nodes under the async API, and live streaming."""

from __future__ import annotations

import asyncio
import operator
import threading
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.graph import START, StateGraph
from tests.engine.conftest import run, starts, stream


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


async def async_node(state: State) -> dict[str, Any]:
    await asyncio.sleep(0)
    return {"log": ["async"]}


def sync_node(state: State) -> dict[str, Any]:
    return {"log": ["sync"]}


def test_async_nodes_run_under_ainvoke() -> None:
    builder = StateGraph(State)
    builder.add_node("a", async_node)
    builder.add_edge(START, "a")
    assert run(builder.compile(), {"log": []}, "async") == {"log": ["async"]}


def test_sync_and_async_nodes_mix_under_ainvoke() -> None:
    builder = StateGraph(State)
    builder.add_node("a", async_node)
    builder.add_node("s", sync_node)
    builder.add_node("both_a", async_node)
    builder.add_node("both_s", sync_node)
    builder.add_edge(START, "a")
    builder.add_edge("a", "s")
    builder.add_edge("s", "both_a")
    builder.add_edge("s", "both_s")
    assert run(builder.compile(), {"log": []}, "async") == {"log": ["async", "sync", "async", "sync"]}


def test_sync_node_under_ainvoke_runs_off_the_event_loop() -> None:
    # LangGraph runs sync nodes in a worker thread under the async API, so they may block or even call
    # asyncio.run() without touching the caller's running loop.
    def blocking(state: State) -> dict[str, Any]:
        async def inner() -> str:
            return "inner"

        return {"log": [asyncio.run(inner())]}

    builder = StateGraph(State)
    builder.add_node("blocking", blocking)
    builder.add_edge(START, "blocking")
    assert run(builder.compile(), {"log": []}, "async") == {"log": ["inner"]}


def test_async_conditional_edge() -> None:
    async def route(state: State) -> str:
        await asyncio.sleep(0)
        return "s"

    builder = StateGraph(State)
    builder.add_node("a", async_node)
    builder.add_node("s", sync_node)
    builder.add_edge(START, "a")
    builder.add_conditional_edges("a", route)
    assert run(builder.compile(), {"log": []}, "async") == {"log": ["async", "sync"]}


def test_async_node_under_sync_invoke_raises() -> None:
    builder = StateGraph(State)
    builder.add_node("a", async_node)
    builder.add_edge(START, "a")
    with pytest.raises(TypeError, match=starts('No synchronous function provided to "a".')):
        run(builder.compile(), {"log": []}, "sync")


def test_async_nodes_in_one_step_run_concurrently() -> None:
    started = asyncio.Event()

    async def waiter(state: State) -> dict[str, Any]:
        await asyncio.wait_for(started.wait(), timeout=5)
        return {"log": ["waiter"]}

    async def setter(state: State) -> dict[str, Any]:
        started.set()
        return {"log": ["setter"]}

    builder = StateGraph(State)
    builder.add_node("waiter", waiter)
    builder.add_node("setter", setter)
    builder.add_edge(START, "waiter")
    builder.add_edge(START, "setter")
    assert run(builder.compile(), {"log": []}, "async") == {"log": ["setter", "waiter"]}


def test_stream_chunks_arrive_while_the_run_goes_on(mode: str) -> None:
    # The second node waits until the consumer has received the first chunk.
    seen_first = threading.Event()
    async_seen_first: list[asyncio.Event] = []

    def second(state: State) -> dict[str, Any]:
        assert seen_first.wait(timeout=5), "the first chunk was not delivered before step 2"
        return {"log": ["second"]}

    async def asecond(state: State) -> dict[str, Any]:
        await asyncio.wait_for(async_seen_first[0].wait(), timeout=5)
        return {"log": ["second"]}

    builder = StateGraph(State)
    builder.add_node("first", sync_node)
    builder.add_node("second", second if mode == "sync" else asecond)
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    graph = builder.compile()

    if mode == "sync":
        chunks = []
        for chunk in graph.stream({"log": []}):
            chunks.append(chunk)
            seen_first.set()
    else:

        async def consume() -> list[Any]:
            async_seen_first.append(asyncio.Event())
            out = []
            async for chunk in graph.astream({"log": []}):
                out.append(chunk)
                async_seen_first[0].set()
            return out

        chunks = asyncio.run(consume())
    assert chunks == [{"first": {"log": ["sync"]}}, {"second": {"log": ["second"]}}]


def test_sync_stream_and_async_stream_agree() -> None:
    builder = StateGraph(State)
    builder.add_node("s1", sync_node)
    builder.add_node("s2", sync_node)
    builder.add_edge(START, "s1")
    builder.add_edge("s1", "s2")
    graph = builder.compile()
    for stream_mode in ("values", "updates", "debug"):
        sync_chunks = stream(graph, {"log": []}, "sync", stream_mode=stream_mode)
        async_chunks = stream(graph, {"log": []}, "async", stream_mode=stream_mode)
        if stream_mode == "debug":
            sync_chunks = [(c["type"], c["step"], c["payload"]["name"]) for c in sync_chunks]
            async_chunks = [(c["type"], c["step"], c["payload"]["name"]) for c in async_chunks]
        assert sync_chunks == async_chunks
