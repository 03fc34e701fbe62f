"""Supersteps: parallel tasks, write ordering at the end of a step, update errors, recursion limit."""

from __future__ import annotations

import asyncio
import itertools
import operator
import threading
import time
from typing import Annotated, Any, TypedDict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.errors import GraphRecursionError, InvalidUpdateError
from graphrt.graph import END, START, StateGraph
from tests.engine.conftest import exact, run, starts, stream

RECURSION_MESSAGE = (
    "Recursion limit of {} reached without hitting a stop condition. You can increase the limit by setting "
    "the `recursion_limit` config key."
)


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    a: int


def fan_out(nodes: dict[str, Any]) -> Any:
    """A graph where START triggers every node in `nodes` in the same step."""
    builder = StateGraph(State)
    for name, action in nodes.items():
        builder.add_node(name, action)
        builder.add_edge(START, name)
    return builder.compile()


def test_parallel_sync_nodes_run_concurrently(mode: str) -> None:
    # Both nodes must be inside `wait` at the same time, or the barrier breaks after its timeout.
    barrier = threading.Barrier(2, timeout=5)

    def meet(name: str) -> Any:
        def node(state: State) -> dict[str, Any]:
            barrier.wait()
            return {"log": [name]}

        return node

    assert run(fan_out({"x": meet("x"), "y": meet("y")}), {"log": []}, mode) == {"log": ["x", "y"]}


def test_parallel_sync_nodes_that_finish_quickly_run_in_the_callers_thread() -> None:
    # Handing the GIL between threads costs more than such tasks: invoke runs them one after another itself,
    # and brings in pool workers only for a task that takes longer (the barrier test above).
    threads: list[threading.Thread] = []

    def node(state: State) -> dict[str, Any]:
        threads.append(threading.current_thread())
        return {}

    graph = fan_out({name: node for name in ("n1", "n2", "n3", "n4")})
    for _ in range(3):
        graph.invoke({"log": []})
    assert threads == [threading.current_thread()] * 12
    # With a checkpointer the caller's thread saves each finished task's writes at once: tasks run in the pool.
    threads.clear()
    fan_out_saved = StateGraph(State)
    for name in ("n1", "n2"):
        fan_out_saved.add_node(name, node)
        fan_out_saved.add_edge(START, name)
    fan_out_saved.compile(checkpointer=InMemorySaver()).invoke({"log": []}, {"configurable": {"thread_id": "t"}})
    assert len(threads) == 2 and threading.current_thread() not in threads


def test_a_parallel_node_that_waits_brings_in_workers_for_its_siblings_at_most_max_concurrency() -> None:
    release = threading.Event()
    threads: set[threading.Thread] = set()

    def waits(state: State) -> dict[str, Any]:
        threads.add(threading.current_thread())
        assert release.wait(5), "no worker ran the sibling that releases this node"
        return {"log": ["waits"]}

    def releases(state: State) -> dict[str, Any]:
        threads.add(threading.current_thread())
        release.set()
        return {"log": ["releases"]}

    graph = fan_out({"a": waits, "b": releases, "c": releases})
    assert graph.invoke({"log": []}, {"max_concurrency": 2}) == {"log": ["waits", "releases", "releases"]}
    assert threading.current_thread() in threads and len(threads) == 2


def test_parallel_async_nodes_run_concurrently() -> None:
    barrier = asyncio.Barrier(2)

    def meet(name: str) -> Any:
        async def node(state: State) -> dict[str, Any]:
            await asyncio.wait_for(barrier.wait(), timeout=5)
            return {"log": [name]}

        return node

    assert run(fan_out({"x": meet("x"), "y": meet("y")}), {"log": []}, "async") == {"log": ["x", "y"]}


@pytest.mark.parametrize("limit", [1, 2])
def test_max_concurrency_bounds_parallel_tasks(mode: str, limit: int) -> None:
    lock = threading.Lock()
    running = [0]
    peak = [0]

    def node(state: State) -> dict[str, Any]:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.03)
        with lock:
            running[0] -= 1
        return {}

    graph = fan_out({name: node for name in ("n1", "n2", "n3", "n4")})
    run(graph, {"log": []}, mode, {"max_concurrency": limit})
    assert 1 <= peak[0] <= limit


def test_writes_apply_in_a_stable_order_whatever_the_finish_order(mode: str) -> None:
    def slow(name: str, delay: float) -> Any:
        def node(state: State) -> dict[str, Any]:
            time.sleep(delay)
            return {"log": [name]}

        return node

    # Added as c, a, b and finishing c, b, a: the reducer still sees a, b, c.
    graph = fan_out({"c": slow("c", 0.0), "a": slow("a", 0.04), "b": slow("b", 0.02)})
    results = [run(graph, {"log": []}, mode)["log"] for _ in range(3)]
    assert results == [["a", "b", "c"]] * 3


def test_parallel_nodes_see_the_state_before_the_step(mode: str) -> None:
    seen: dict[str, list[str]] = {}

    def look(name: str) -> Any:
        def node(state: State) -> dict[str, Any]:
            seen[name] = list(state["log"])
            return {"log": [name]}

        return node

    assert run(fan_out({"x": look("x"), "y": look("y")}), {"log": ["in"]}, mode) == {"log": ["in", "x", "y"]}
    assert seen == {"x": ["in"], "y": ["in"]}


def test_updates_of_a_step_are_visible_only_in_the_next_step(mode: str) -> None:
    seen: list[list[str]] = []

    builder = StateGraph(State)
    builder.add_node("first", lambda s: {"log": ["first"]})
    builder.add_node("second", lambda s: seen.append(list(s["log"])) or {})
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    run(builder.compile(), {"log": []}, mode)
    assert seen == [["first"]]


def test_two_writes_to_a_plain_key_in_one_step_raise(mode: str) -> None:
    graph = fan_out({"x": lambda s: {"a": 1}, "y": lambda s: {"a": 2}})
    with pytest.raises(
        InvalidUpdateError,
        match=starts(
            "At key 'a': Can receive only one value per step. Use an Annotated key to handle multiple values."
        ),
    ):
        run(graph, {"log": []}, mode)


def test_one_node_writing_a_plain_key_twice_raises(mode: str) -> None:
    # Two Commands from one node: the one-task step groups its writes too, not only parallel tasks'.
    from graphrt.types import Command

    graph = fan_out({"x": lambda s: [Command(update={"a": 1}), Command(update={"a": 2})]})
    with pytest.raises(InvalidUpdateError, match=starts("At key 'a': Can receive only one value per step.")):
        run(graph, {"log": []}, mode)


def test_one_node_writing_a_reducer_key_twice_folds_both_in_order(mode: str) -> None:
    from graphrt.types import Command

    graph = fan_out({"x": lambda s: [Command(update={"log": ["1"]}), Command(update={"log": ["2"], "a": 3})]})
    assert run(graph, {"log": []}, mode) == {"a": 3, "log": ["1", "2"]}


def test_one_write_per_step_to_a_plain_key_is_fine(mode: str) -> None:
    graph = fan_out({"x": lambda s: {"a": 1}, "y": lambda s: {"log": ["y"]}})
    assert run(graph, {"log": []}, mode) == {"a": 1, "log": ["y"]}


def test_non_dict_result_raises_invalid_update(mode: str) -> None:
    graph = fan_out({"x": lambda s: 42})
    with pytest.raises(InvalidUpdateError, match=starts("Expected dict, got 42")):
        run(graph, {"log": []}, mode)


def chain(length: int) -> Any:
    builder = StateGraph(State)
    names = [f"n{i}" for i in range(length)]
    for name in names:
        builder.add_node(name, lambda s, name=name: {"log": [name]})
    builder.add_edge(START, names[0])
    for left, right in itertools.pairwise(names):
        builder.add_edge(left, right)
    return builder.compile()


@pytest.mark.parametrize("limit", [3, 4])
def test_recursion_limit_too_low_for_a_chain_raises(mode: str, limit: int) -> None:
    with pytest.raises(GraphRecursionError, match=starts(RECURSION_MESSAGE.format(limit))):
        run(chain(4), {"log": []}, mode, {"recursion_limit": limit})


def test_recursion_limit_raises_from_stream_too(mode: str) -> None:
    with pytest.raises(GraphRecursionError, match=starts(RECURSION_MESSAGE.format(4))):
        stream(chain(4), {"log": []}, mode, {"recursion_limit": 4})


def test_limit_is_checked_before_looking_for_more_work(mode: str) -> None:
    # LangGraph's quirk: at limit 4 the chain's last node (step 4) still runs, then the run raises.
    ran: list[str] = []
    builder = StateGraph(State)
    for name in ("n0", "n1", "n2", "n3"):
        builder.add_node(name, lambda s, name=name: ran.append(name) or {})
    builder.add_edge(START, "n0")
    for left, right in itertools.pairwise(["n0", "n1", "n2", "n3"]):
        builder.add_edge(left, right)
    with pytest.raises(GraphRecursionError):
        run(builder.compile(), {"log": []}, mode, {"recursion_limit": 4})
    assert ran == ["n0", "n1", "n2", "n3"]


def test_a_four_node_chain_needs_recursion_limit_five(mode: str) -> None:
    result = run(chain(4), {"log": []}, mode, {"recursion_limit": 5})
    assert result == {"log": ["n0", "n1", "n2", "n3"]}


def test_recursion_limit_is_a_recursion_error() -> None:
    assert issubclass(GraphRecursionError, RecursionError)


def test_recursion_limit_below_one_is_rejected(mode: str) -> None:
    with pytest.raises(ValueError, match=exact("recursion_limit must be at least 1")):
        run(chain(1), {"log": []}, mode, {"recursion_limit": 0})


def test_endless_loop_stops_at_the_recursion_limit(mode: str) -> None:
    calls = [0]

    def again(state: State) -> dict[str, Any]:
        calls[0] += 1
        return {}

    builder = StateGraph(State)
    builder.add_node("again", again)
    builder.add_edge(START, "again")
    builder.add_conditional_edges("again", lambda s: "again")
    with pytest.raises(GraphRecursionError, match=starts(RECURSION_MESSAGE.format(25))):
        run(builder.compile(), {"log": []}, mode, {"recursion_limit": 25})
    # Step 0 is START's; the node runs in steps 1..25, and step 26 would exceed the limit.
    assert calls[0] == 25


def test_default_recursion_limit_is_langgraphs_10007(mode: str) -> None:
    # LangGraph 1.x defaults to 10007 steps (LANGGRAPH_DEFAULT_RECURSION_LIMIT), no longer 25.
    builder = StateGraph(State)
    builder.add_node("count", lambda s: {"a": s.get("a", 0) + 1})
    builder.add_edge(START, "count")
    builder.add_conditional_edges("count", lambda s: END if s["a"] >= 100 else "count")
    assert run(builder.compile(), {"log": []}, mode) == {"log": [], "a": 100}


def test_loop_with_exit_condition(mode: str) -> None:
    builder = StateGraph(State)
    builder.add_node("count", lambda s: {"a": s.get("a", 0) + 1})
    builder.add_edge(START, "count")
    builder.add_conditional_edges("count", lambda s: END if s["a"] >= 10 else "count")
    assert run(builder.compile(), {"log": []}, mode) == {"log": [], "a": 10}


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    writes=st.dictionaries(
        st.text(alphabet="abcdefgh", min_size=1, max_size=3),
        st.lists(st.integers(), max_size=3),
        min_size=1,
        max_size=5,
    ),
    order=st.randoms(use_true_random=False),
)
def test_fan_out_fold_is_the_concatenation_in_node_name_order(
    mode: str, writes: dict[str, list[int]], order: Any
) -> None:
    class Numbers(TypedDict):
        numbers: Annotated[list[int], operator.add]

    names = list(writes)
    order.shuffle(names)
    builder = StateGraph(Numbers)
    for name in names:
        builder.add_node(name, lambda s, name=name: {"numbers": writes[name]})
        builder.add_edge(START, name)
    expected = [n for name in sorted(writes) for n in writes[name]]
    assert run(builder.compile(), {"numbers": [-1]}, mode) == {"numbers": [-1, *expected]}


def test_a_join_fires_again_in_the_next_round_of_a_loop(mode: str) -> None:
    # The join's barrier is reset (consumed) when its node runs; otherwise the second round would never
    # complete it and the loop would stop after `a` and `b`.
    builder = StateGraph(State)
    builder.add_node("a", lambda s: {"log": ["a"]})
    builder.add_node("b", lambda s: {"log": ["b"]})
    builder.add_node("c", lambda s: {"log": ["c"]})
    builder.add_edge(START, "a")
    builder.add_edge(START, "b")
    builder.add_edge(["a", "b"], "c")
    builder.add_conditional_edges("c", lambda s: ["a", "b"] if s["log"].count("c") < 2 else END, ["a", "b", END])
    assert run(builder.compile(), {"log": []}, mode)["log"] == ["a", "b", "c", "a", "b", "c"]


def test_parallel_nodes_with_branches_each_see_only_their_own_write(mode: str) -> None:
    seen: dict[str, list[str]] = {}

    def route(name: str) -> Any:
        return lambda s: seen.setdefault(name, s["log"]) and END

    builder = StateGraph(State)
    for name in ("x", "y"):
        builder.add_node(name, lambda s, name=name: {"log": [name]})
        builder.add_edge(START, name)
        builder.add_conditional_edges(name, route(name), [END])
    assert run(builder.compile(), {"log": ["in"]}, mode) == {"log": ["in", "x", "y"]}
    assert seen == {"x": ["in", "x"], "y": ["in", "y"]}


def test_a_retried_node_with_a_branch_applies_the_write_of_its_last_attempt(mode: str) -> None:
    from graphrt.types import RetryPolicy

    attempts = itertools.count()

    def node(s: State) -> dict[str, Any]:
        return {"log": [f"attempt {next(attempts)}"]}

    def route(s: State) -> str:
        if s["log"] == ["attempt 0"]:
            raise ConnectionError("the first attempt fails after its branch read its write")
        return END

    builder = StateGraph(State)
    builder.add_node("a", node, retry_policy=RetryPolicy(initial_interval=0.0, jitter=False))
    builder.add_edge(START, "a")
    builder.add_conditional_edges("a", route, [END])
    assert run(builder.compile(), {"log": []}, mode) == {"log": ["attempt 1"]}
