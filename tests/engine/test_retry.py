"""RetryPolicy: LangGraph's defaults, and retry_on as a class, a tuple or a predicate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict

import pytest

from graphrt.graph import START, StateGraph
from graphrt.types import RetryPolicy, default_retry_on
from tests.engine.conftest import run, starts


class State(TypedDict, total=False):
    a: int
    out: str


class Flaky(Exception):
    pass


class Other(Exception):
    pass


def fast(**kw: Any) -> RetryPolicy:
    return RetryPolicy(initial_interval=0.01, jitter=False, **kw)


def failing(errors: list[BaseException]) -> tuple[Callable[[State], dict[str, Any]], list[int]]:
    """A node raising `errors` one per call, then succeeding; and its list of attempt numbers."""
    attempts: list[int] = []

    def node(state: State) -> dict[str, Any]:
        attempts.append(len(attempts) + 1)
        if len(attempts) <= len(errors):
            raise errors[len(attempts) - 1]
        return {"out": f"ok after {len(attempts)}"}

    return node, attempts


def graph_with(node: Any, policy: RetryPolicy | list[RetryPolicy] | None) -> Any:
    builder = StateGraph(State)
    builder.add_node("node", node, retry_policy=policy)
    builder.add_edge(START, "node")
    return builder.compile()


def test_langgraph_defaults() -> None:
    policy = RetryPolicy()
    assert policy.initial_interval == 0.5
    assert policy.backoff_factor == 2.0
    assert policy.max_interval == 128.0
    assert policy.max_attempts == 3
    assert policy.jitter is True
    assert policy.retry_on is default_retry_on
    assert RetryPolicy._fields == (
        "initial_interval",
        "backoff_factor",
        "max_interval",
        "max_attempts",
        "jitter",
        "retry_on",
    )


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (ConnectionError(), True),
        (Exception(), True),
        (Flaky(), True),
        (ValueError(), False),
        (TypeError(), False),
        (KeyError(), False),
        (ZeroDivisionError(), False),
        (RuntimeError(), False),
        (OSError(), False),
        (ImportError(), False),
        (NameError(), False),
    ],
)
def test_default_retry_on(exc: Exception, expected: bool) -> None:
    assert default_retry_on(exc) is expected


def test_succeeds_after_retries(mode: str) -> None:
    node, attempts = failing([Flaky(), Flaky()])
    assert run(graph_with(node, fast(retry_on=Flaky)), {"a": 1}, mode) == {"a": 1, "out": "ok after 3"}
    assert attempts == [1, 2, 3]


def test_gives_up_after_max_attempts_with_the_last_error(mode: str) -> None:
    errors = [Flaky("1"), Flaky("2"), Flaky("3"), Flaky("4")]
    node, attempts = failing(errors)
    with pytest.raises(Flaky) as info:
        run(graph_with(node, fast(retry_on=Flaky, max_attempts=3)), {"a": 1}, mode)
    assert info.value is errors[2]
    assert attempts == [1, 2, 3]


def test_retry_on_a_class_does_not_retry_other_errors(mode: str) -> None:
    node, attempts = failing([Other()])
    with pytest.raises(Other):
        run(graph_with(node, fast(retry_on=Flaky)), {"a": 1}, mode)
    assert attempts == [1]


def test_retry_on_a_tuple_of_classes(mode: str) -> None:
    node, attempts = failing([Flaky(), Other()])
    result = run(graph_with(node, fast(retry_on=(Flaky, Other))), {"a": 1}, mode)
    assert result["out"] == "ok after 3"
    assert attempts == [1, 2, 3]


def test_retry_on_a_predicate(mode: str) -> None:
    node, attempts = failing([Flaky("again"), Flaky("stop")])
    with pytest.raises(Flaky, match=starts("stop")):
        run(graph_with(node, fast(retry_on=lambda e: str(e) == "again")), {"a": 1}, mode)
    assert attempts == [1, 2]


def test_default_retry_on_retries_connection_errors_only(mode: str) -> None:
    node, attempts = failing([ConnectionError("down")])
    assert run(graph_with(node, fast()), {"a": 1}, mode)["out"] == "ok after 2"
    node, attempts = failing([ValueError("bad")])
    with pytest.raises(ValueError, match=starts("bad")):
        run(graph_with(node, fast()), {"a": 1}, mode)
    assert attempts == [1]


def test_first_matching_policy_of_a_list_applies(mode: str) -> None:
    node, attempts = failing([Other(), Other(), Other()])
    policies = [fast(retry_on=Flaky, max_attempts=5), fast(retry_on=Other, max_attempts=2)]
    with pytest.raises(Other):
        run(graph_with(node, policies), {"a": 1}, mode)
    assert attempts == [1, 2]


def test_no_policy_means_no_retry(mode: str) -> None:
    node, attempts = failing([ConnectionError()])
    with pytest.raises(ConnectionError):
        run(graph_with(node, None), {"a": 1}, mode)
    assert attempts == [1]


def test_async_node_is_retried() -> None:
    attempts: list[int] = []

    async def node(state: State) -> dict[str, Any]:
        attempts.append(1)
        if len(attempts) < 3:
            raise Flaky()
        return {"out": "async ok"}

    assert run(graph_with(node, fast(retry_on=Flaky)), {"a": 1}, "async")["out"] == "async ok"
    assert len(attempts) == 3


def test_only_the_failing_node_is_retried(mode: str) -> None:
    calls: list[str] = []
    flaky, attempts = failing([Flaky()])

    def steady(state: State) -> dict[str, Any]:
        calls.append("steady")
        return {"a": 2}

    builder = StateGraph(State)
    builder.add_node("steady", steady)
    builder.add_node("flaky", flaky, retry_policy=fast(retry_on=Flaky))
    builder.add_edge(START, "steady")
    builder.add_edge(START, "flaky")
    assert run(builder.compile(), {"a": 1}, mode) == {"a": 2, "out": "ok after 2"}
    assert calls == ["steady"]
    assert attempts == [1, 2]
