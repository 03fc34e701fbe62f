"""Node caching in a `StateGraph`: a cached node does not run again for the same input within its TTL.

Every behaviour runs on `InMemoryCache` and `SqliteCache`, with the sync and the async API. Counters
prove whether a node ran; expected stream chunks are LangGraph 1.2.22's output for the same graph.
"""

from __future__ import annotations

import asyncio
import operator
import threading
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.cache.base import BaseCache
from graphrt.cache.memory import InMemoryCache
from graphrt.checkpoint.memory import InMemorySaver
from graphrt.graph import END, START, StateGraph
from graphrt.types import CachePolicy, Send
from tests.cache.conftest import Clock
from tests.engine.conftest import run, stream

CACHED = {"__metadata__": {"cached": True}}


class State(TypedDict, total=False):
    x: int
    log: Annotated[list[str], operator.add]


def chain(cache: BaseCache[Any] | None, calls: list[str], policy: CachePolicy | None = None, **compile: Any) -> Any:
    """START -> a (cached) -> b -> END; each run of a node appends its name to `calls`."""

    def a(state: State) -> State:
        calls.append("a")
        return {"x": state["x"] + 1, "log": ["a"]}

    def b(state: State) -> State:
        calls.append("b")
        return {"log": ["b"]}

    builder = StateGraph(State)
    builder.add_node("a", a, cache_policy=policy or CachePolicy())
    builder.add_node("b", b)
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", END)
    return builder.compile(cache=cache, **compile)


def test_a_cached_node_runs_once_per_input(cache: BaseCache[Any], mode: str) -> None:
    calls: list[str] = []
    graph = chain(cache, calls)
    first = run(graph, {"x": 1, "log": []}, mode)
    again = run(graph, {"x": 1, "log": []}, mode)
    assert first == again == {"x": 2, "log": ["a", "b"]}
    assert calls == ["a", "b", "b"]
    assert run(graph, {"x": 5, "log": []}, mode) == {"x": 6, "log": ["a", "b"]}
    assert calls == ["a", "b", "b", "a", "b"]


def test_equal_inputs_hit_whatever_their_dict_order(cache: BaseCache[Any], mode: str) -> None:
    calls: list[str] = []
    graph = chain(cache, calls)
    run(graph, {"x": 1, "log": ["seed"]}, mode)
    run(graph, {"log": ["seed"], "x": 1}, mode)
    assert calls.count("a") == 1


def test_the_updates_stream_marks_a_hit_as_langgraph_does(cache: BaseCache[Any], mode: str) -> None:
    graph = chain(cache, [])
    assert stream(graph, {"x": 1, "log": []}, mode) == [{"a": {"x": 2, "log": ["a"]}}, {"b": {"log": ["b"]}}]
    assert stream(graph, {"x": 1, "log": []}, mode) == [{"a": {"x": 2, "log": ["a"]}, **CACHED}, {"b": {"log": ["b"]}}]
    assert stream(graph, {"x": 1, "log": []}, mode, stream_mode=["updates"], subgraphs=True) == [
        ((), "updates", {"a": {"x": 2, "log": ["a"]}, **CACHED}),
        ((), "updates", {"b": {"log": ["b"]}}),
    ]
    assert stream(graph, {"x": 1, "log": []}, mode, stream_mode="values") == [
        {"x": 1, "log": []},
        {"x": 2, "log": ["a"]},
        {"x": 2, "log": ["a", "b"]},
    ]


def test_tasks_and_debug_streams_show_a_hit_starting_but_not_its_result(cache: BaseCache[Any], mode: str) -> None:
    graph = chain(cache, [])
    stream(graph, {"x": 1, "log": []}, mode)
    chunks = stream(graph, {"x": 1, "log": []}, mode, stream_mode="tasks")
    shapes = [(c["name"], "result" if "result" in c else "start") for c in chunks]
    assert shapes == [("a", "start"), ("b", "start"), ("b", "result")]  # LangGraph's sequence
    debug = stream(graph, {"x": 1, "log": []}, mode, stream_mode="debug")
    events = [(c["type"], c["payload"]["name"]) for c in debug if c["type"] != "checkpoint"]
    assert events == [("task", "a"), ("task", "b"), ("task_result", "b")]


def test_a_hit_is_applied_and_saved_as_if_the_node_ran(cache: BaseCache[Any], mode: str) -> None:
    calls: list[str] = []
    graph = chain(cache, calls, checkpointer=InMemorySaver())
    histories = []
    for thread in ("t1", "t2"):
        config = {"configurable": {"thread_id": thread}}
        run(graph, {"x": 1, "log": []}, mode, config)
        histories.append(
            [
                (s.values, s.next, s.metadata, [(t.name, t.result) for t in s.tasks])
                for s in graph.get_state_history(config)
            ]
        )
    assert calls == ["a", "b", "b"]
    assert histories[0] == histories[1]
    assert [h[1] for h in histories[1]] == [(), ("b",), ("a",), ("__start__",)]


def test_a_hit_follows_the_route_its_node_chose(cache: BaseCache[Any], mode: str) -> None:
    calls: list[str] = []

    def pick(state: State) -> Any:
        calls.append("pick")
        return [Send("work", {"x": state["x"] * 10})]

    def work(state: State) -> State:
        calls.append(f"work:{state['x']}")
        return {"log": [f"w{state['x']}"]}

    builder = StateGraph(State)
    builder.add_node("pick", lambda state: {}, cache_policy=CachePolicy())
    builder.add_node("work", work)
    builder.add_edge(START, "pick")
    builder.add_conditional_edges("pick", pick)
    builder.add_edge("work", END)
    graph = builder.compile(cache=cache)
    assert run(graph, {"x": 1, "log": []}, mode) == run(graph, {"x": 1, "log": []}, mode) == {"x": 1, "log": ["w10"]}
    # The route is part of the node's writes, so it is cached with them (as in LangGraph).
    assert calls == ["pick", "work:10", "work:10"]
    assert stream(graph, {"x": 1, "log": []}, mode) == [{"pick": None, **CACHED}, {"work": {"log": ["w10"]}}]


def test_send_tasks_are_cached_by_their_argument(cache: BaseCache[Any], mode: str) -> None:
    calls: list[int] = []

    def work(arg: dict[str, int]) -> State:
        calls.append(arg["x"])
        return {"log": [str(arg["x"])]}

    builder = StateGraph(State)
    builder.add_node("fan", lambda state: {})
    builder.add_node("work", work, cache_policy=CachePolicy())
    builder.add_edge(START, "fan")
    builder.add_conditional_edges("fan", lambda state: [Send("work", {"x": x}) for x in (1, 2)])
    graph = builder.compile(cache=cache)
    assert run(graph, {"x": 0, "log": ["go"]}, mode) == {"x": 0, "log": ["go", "1", "2"]}
    assert run(graph, {"x": 0, "log": ["go"]}, mode) == {"x": 0, "log": ["go", "1", "2"]}
    assert sorted(calls) == [1, 2]


def test_a_custom_key_func_decides_what_counts_as_the_same_input(cache: BaseCache[Any], mode: str) -> None:
    calls: list[str] = []
    graph = chain(cache, calls, CachePolicy(key_func=lambda state: str(state["x"])))
    run(graph, {"x": 1, "log": ["one"]}, mode)
    assert run(graph, {"x": 1, "log": ["two"]}, mode) == {"x": 2, "log": ["two", "a", "b"]}
    assert calls.count("a") == 1


def test_a_hit_expires_after_the_ttl(cache: BaseCache[Any], clock: Clock, mode: str) -> None:
    calls: list[str] = []
    graph = chain(cache, calls, CachePolicy(ttl=30))
    run(graph, {"x": 1, "log": []}, mode)
    clock.advance(29.9)
    run(graph, {"x": 1, "log": []}, mode)
    assert calls.count("a") == 1
    clock.advance(0.1)
    run(graph, {"x": 1, "log": []}, mode)
    assert calls.count("a") == 2
    run(graph, {"x": 1, "log": []}, mode)
    assert calls.count("a") == 2  # the new result is cached again, with a fresh TTL


def test_concurrent_runs_in_threads_share_the_cache(cache: BaseCache[Any]) -> None:
    calls: list[str] = []
    graph = chain(cache, calls)
    run(graph, {"x": 7, "log": []}, "sync")
    results: list[Any] = []

    def work() -> None:
        results.append(graph.invoke({"x": 7, "log": []}))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [{"x": 8, "log": ["a", "b"]}] * 6
    assert calls.count("a") == 1 and calls.count("b") == 7


def test_clear_cache_makes_nodes_run_again(cache: BaseCache[Any], mode: str) -> None:
    calls: list[str] = []

    def node(name: str) -> Any:
        def act(state: State) -> State:
            calls.append(name)
            return {"log": [name]}

        return act

    builder = StateGraph(State)
    for name in ("a", "b"):
        builder.add_node(name, node(name), cache_policy=CachePolicy())
    builder.add_edge(START, "a")
    builder.add_edge(START, "b")
    graph = builder.compile(cache=cache)

    def clear(nodes: list[str] | None = None) -> None:
        graph.clear_cache(nodes) if mode == "sync" else asyncio.run(graph.aclear_cache(nodes))

    run(graph, {"x": 1}, mode)
    run(graph, {"x": 1}, mode)
    assert sorted(calls) == ["a", "b"]
    clear(["a"])
    run(graph, {"x": 1}, mode)
    assert sorted(calls) == ["a", "a", "b"]
    clear()
    run(graph, {"x": 1}, mode)
    assert sorted(calls) == ["a", "a", "a", "b", "b"]


def test_clear_cache_needs_a_cache_and_known_node_names(mode: str) -> None:
    graph = chain(None, [])
    with pytest.raises(ValueError, match=r"^No cache is set for this graph\. Cannot clear cache\.$"):
        graph.clear_cache() if mode == "sync" else asyncio.run(graph.aclear_cache())
    cached = chain(InMemoryCache(), [])
    with pytest.raises(
        ValueError, match=r"^Cannot clear the cache of unknown node\(s\) 'c'; the nodes are 'a', 'b'\.$"
    ):
        cached.clear_cache(["a", "c"]) if mode == "sync" else asyncio.run(cached.aclear_cache(["a", "c"]))


def test_without_a_cache_a_cache_policy_has_no_effect(mode: str) -> None:
    calls: list[str] = []
    graph = chain(None, calls)
    run(graph, {"x": 1, "log": []}, mode)
    run(graph, {"x": 1, "log": []}, mode)
    assert calls == ["a", "b", "a", "b"]


def test_a_failed_or_interrupted_node_is_not_cached(cache: BaseCache[Any], mode: str) -> None:
    from graphrt.types import Command, interrupt

    attempts: list[str] = []

    def flaky(state: State) -> State:
        attempts.append("flaky")
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")
        return {"log": ["ok"]}

    def ask(state: State) -> State:
        attempts.append("ask")
        return {"log": [interrupt("name?")]}

    builder = StateGraph(State)
    builder.add_node("flaky", flaky, cache_policy=CachePolicy())
    builder.add_node("ask", ask, cache_policy=CachePolicy())
    builder.add_edge(START, "flaky")
    builder.add_edge("flaky", "ask")
    graph = builder.compile(cache=cache, checkpointer=InMemorySaver())
    with pytest.raises(RuntimeError, match=r"^first attempt fails"):
        run(graph, {"x": 1, "log": []}, mode, {"configurable": {"thread_id": "1"}})
    run(graph, {"x": 1, "log": []}, mode, {"configurable": {"thread_id": "2"}})
    assert attempts == ["flaky", "flaky", "ask"]
    done = run(graph, Command(resume="Ada"), mode, {"configurable": {"thread_id": "2"}})
    assert done == {"x": 1, "log": ["ok", "Ada"]}
    assert attempts == ["flaky", "flaky", "ask", "ask"]
    # Now both are cached: a new thread neither fails, nor asks.
    assert run(graph, {"x": 1, "log": []}, mode, {"configurable": {"thread_id": "3"}}) == done
    assert attempts == ["flaky", "flaky", "ask", "ask"]


def test_sqlite_cache_hits_across_processes(tmp_path: Path) -> None:
    from graphrt.cache.sqlite import SqliteCache
    from tests.cache._worker import GRAPH_INPUT, counting_graph
    from tests.cache.test_backends import child

    database = tmp_path / "cache.sqlite"
    runs = tmp_path / "runs.log"
    assert child("graph", database, str(tmp_path)) == {"values": {"n": 3, "out": 6}}
    assert runs.read_text().split() == ["double"]
    with SqliteCache(path=str(database)) as cache:
        values = counting_graph(tmp_path, cache).invoke(dict(GRAPH_INPUT))
    assert values == {**GRAPH_INPUT, "out": 6}
    assert child("graph", database, str(tmp_path)) == {"values": {"n": 3, "out": 6}}
    assert runs.read_text().split() == ["double"]  # neither this process nor a third one ran it again
