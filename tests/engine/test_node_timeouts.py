"""Per-node timeouts (`add_node(..., timeout=...)`, `set_node_defaults(timeout=...)`) on async nodes.

Messages and outcomes were pinned from LangGraph 1.2.22 running the same graphs.
"""

from __future__ import annotations

import asyncio
import operator
from datetime import timedelta
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.errors import NodeError, NodeTimeoutError
from graphrt.graph import START, StateGraph
from graphrt.types import RetryPolicy, TimeoutPolicy
from tests.engine.conftest import exact


class S(TypedDict):
    log: Annotated[list[str], operator.add]


def one_node(action: Any, **node_kw: Any) -> StateGraph[S]:
    builder = StateGraph(S)
    builder.add_node("a", action, **node_kw)
    builder.add_edge(START, "a")
    return builder


async def slow(state: S) -> dict[str, Any]:
    await asyncio.sleep(5)
    return {"log": ["slow"]}


@pytest.mark.parametrize("timeout", [0.05, timedelta(milliseconds=50), TimeoutPolicy(run_timeout=0.05)])
def test_an_attempt_past_its_timeout_is_cancelled_and_fails(timeout: Any) -> None:
    graph = one_node(slow, timeout=timeout).compile()
    with pytest.raises(NodeTimeoutError) as caught:
        asyncio.run(asyncio.wait_for(graph.ainvoke({"log": []}), 2))  # cancelled, not waited for
    error = caught.value
    assert (error.node, error.kind, error.timeout, error.run_timeout, error.idle_timeout) == (
        "a",
        "run",
        0.05,
        0.05,
        None,
    )
    assert 0.05 <= error.elapsed < 2
    assert str(error).startswith("Node 'a' exceeded its run timeout of 0.050s (elapsed: ")
    assert not isinstance(error, TimeoutError)  # so the default retry policy retries it


def test_a_timed_out_node_s_task_calls_are_cancelled_with_it() -> None:
    """A node waits for the `@task` calls it started before it ends (as in LangGraph), except when it timed out:
    then they are cancelled with it rather than waited for."""
    from graphrt.func import task

    @task
    async def long_call(x: int) -> int:
        await asyncio.sleep(5)
        return x

    async def fire_and_wait(state: S) -> dict[str, Any]:
        long_call(1)  # not awaited: the node's own sleep times out
        await asyncio.sleep(5)
        return {"log": ["done"]}

    graph = one_node(fire_and_wait, timeout=0.05).compile()
    with pytest.raises(NodeTimeoutError):
        asyncio.run(asyncio.wait_for(graph.ainvoke({"log": []}), 2))  # fails at once, not after the call's 5 s


def test_the_retry_policy_retries_a_timed_out_attempt_and_a_handler_gets_the_last_failure() -> None:
    attempts: list[int] = []

    async def slow_once(state: S) -> dict[str, Any]:
        attempts.append(1)
        if len(attempts) < 2:
            await asyncio.sleep(5)
        return {"log": ["ok"]}

    retry = RetryPolicy(initial_interval=0.001, jitter=False)
    graph = one_node(slow_once, timeout=0.05, retry_policy=retry).compile()
    assert asyncio.run(graph.ainvoke({"log": []})) == {"log": ["ok"]} and len(attempts) == 2

    async def handler(state: S, error: NodeError) -> dict[str, Any]:
        return {"log": [f"{error.node}:{type(error.error).__name__}"]}

    graph = one_node(slow, timeout=0.05, error_handler=handler).compile()
    assert asyncio.run(graph.ainvoke({"log": []})) == {"log": ["a:NodeTimeoutError"]}


def test_a_fast_node_is_untouched_and_defaults_apply_to_nodes_without_their_own() -> None:
    async def fast(state: S) -> dict[str, Any]:
        return {"log": ["fast"]}

    assert asyncio.run(one_node(fast, timeout=5).compile().ainvoke({"log": []})) == {"log": ["fast"]}
    builder = StateGraph(S).set_node_defaults(timeout=0.05)
    builder.add_node("a", slow)
    builder.add_node("b", slow, timeout=5)
    builder.add_edge(START, "a")
    graph = builder.compile()
    assert (graph.nodes["a"].timeout, graph.nodes["b"].timeout) == (0.05, 5.0)
    with pytest.raises(NodeTimeoutError, match="Node 'a' exceeded"):
        asyncio.run(graph.ainvoke({"log": []}))


def test_a_sync_node_with_a_timeout_is_refused_when_compiled() -> None:
    message = (
        "Node timeouts are only supported for async nodes because sync Python execution cannot be safely "
        "cancelled in-process. Node 'a' is sync."
    )
    builder = one_node(lambda state: {"log": ["x"]}, timeout=0.1)
    with pytest.raises(ValueError, match=exact(message)):
        builder.compile()
    builder = StateGraph(S).set_node_defaults(timeout=0.1)
    builder.add_node("a", lambda state: {"log": ["x"]})
    builder.add_edge(START, "a")
    with pytest.raises(ValueError, match=exact(message)):
        builder.compile()


@pytest.mark.parametrize("bad", [0, -1, timedelta(0)])
def test_a_timeout_must_be_positive(bad: Any) -> None:
    with pytest.raises(ValueError, match=exact("run_timeout must be greater than 0")):
        one_node(slow, timeout=bad)
    with pytest.raises(ValueError, match=exact("idle_timeout must be greater than 0")):
        TimeoutPolicy.coerce(TimeoutPolicy(run_timeout=1, idle_timeout=bad))
    assert TimeoutPolicy.coerce(TimeoutPolicy()) is None and TimeoutPolicy.coerce(None) is None


def test_a_timeout_on_a_subgraph_node_is_refused() -> None:
    # Not pinned: LangGraph accepts it, but graphrt could not cancel the subgraph's sync nodes, and would
    # silently let the subgraph run past its limit.
    inner = StateGraph(S)
    inner.add_node("s", lambda state: {"log": ["s"]})
    inner.add_edge(START, "s")
    builder = one_node(inner.compile(), timeout=0.05)
    with pytest.raises(NotImplementedError, match="Node 'a': a timeout on a compiled graph added as a node"):
        builder.compile()
