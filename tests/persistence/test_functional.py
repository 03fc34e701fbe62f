"""The functional API on every saver, sync and async: `@entrypoint`, `@task`, durability and interrupts.

Checkpoint counts, sources, steps and stream shapes were produced by LangGraph 1.2.22 for the same code.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, TypedDict

import pytest

from graphrt.func import entrypoint, task
from graphrt.graph import START, StateGraph
from graphrt.pregel._units import UnitOrderError
from graphrt.types import Command, RetryPolicy, interrupt
from tests.persistence.conftest import get_state, history, run, steps, stream, thread


@task
def double(x: int) -> int:
    return 2 * x


def test_previous_and_final_across_invocations(saver: Any, mode: str) -> None:
    @entrypoint(checkpointer=saver)
    def workflow(inputs: int, *, previous: int | None) -> Any:
        a = double(inputs)
        b = double(inputs + 1)
        total = a.result() + b.result()
        return entrypoint.final(value=total, save=(previous or 0) + total)

    assert run(workflow, 3, mode, thread()) == 14
    assert run(workflow, 1, mode, thread()) == 6
    snapshot = get_state(workflow, thread(), mode)
    assert snapshot.values == 6 and snapshot.next == ()
    assert steps(history(workflow, thread(), mode)) == [("loop", 2), ("input", 1), ("loop", 0), ("input", -1)]


def test_previous_is_the_last_return_value_without_final(saver: Any, mode: str) -> None:
    @entrypoint(checkpointer=saver)
    def count(inputs: str, *, previous: list[str] | None) -> list[str]:
        return [*(previous or []), inputs]

    run(count, "a", mode, thread())
    assert run(count, "b", mode, thread()) == ["a", "b"]


def test_stream_modes_match_langgraph(saver: Any, mode: str) -> None:
    @entrypoint(checkpointer=saver)
    def workflow(inputs: int) -> int:
        return double(inputs).result() + double(inputs + 1).result()

    assert stream(workflow, 2, mode, thread("u"), stream_mode="updates") == [
        {"double": 4},
        {"double": 6},
        {"workflow": 10},
    ]
    assert stream(workflow, 2, mode, thread("v"), stream_mode="values") == [10]
    debug = stream(workflow, 2, mode, thread("d"), stream_mode="debug")
    assert [(c["type"], c["step"], c["payload"].get("name")) for c in debug] == [
        ("checkpoint", -1, None),
        ("task", 0, "workflow"),
        ("task", 0, "double"),
        ("task_result", 0, "double"),
        ("task", 0, "double"),
        ("task_result", 0, "double"),
        ("task_result", 0, "workflow"),
        ("checkpoint", 0, None),
    ]


def test_a_failed_task_streams_its_result_with_the_error_before_the_entrypoints(saver: Any, mode: str) -> None:
    """LangGraph 1.2.22's `tasks` chunks when a task raises (ids aside)."""

    @task
    def boom(x: int) -> int:
        raise ValueError("bad")

    @entrypoint(checkpointer=saver)
    def workflow(x: int) -> int:
        return boom(x).result()

    chunks: list[Any] = []

    async def collect() -> None:
        async for chunk in workflow.astream(1, thread("f"), stream_mode="tasks"):
            chunks.append(chunk)

    with pytest.raises(ValueError, match="bad"):
        if mode == "sync":
            chunks.extend(workflow.stream(1, thread("f"), stream_mode="tasks"))
        else:
            asyncio.run(collect())
    assert [(c["name"], "input" in c, repr(c.get("error")), c.get("result")) for c in chunks] == [
        ("workflow", True, "None", None),
        ("boom", True, "None", None),
        ("boom", False, "ValueError('bad')", {}),
        ("workflow", False, "ValueError('bad')", {}),
    ]


def test_tasks_called_before_any_result_run_in_parallel(saver: Any, mode: str) -> None:
    """Three tasks wait on one barrier: they only get past it if they run at the same time."""
    barrier = threading.Barrier(3, timeout=10)

    @task
    def meet(i: int) -> int:
        barrier.wait()
        return i

    @task
    async def ameet(i: int) -> int:
        await asyncio.sleep(0)
        return i

    @entrypoint(checkpointer=saver)
    def sync_flow(n: int) -> list[int]:
        futures = [meet(i) for i in range(n)]
        return [f.result() for f in futures]

    @entrypoint(checkpointer=saver)
    async def async_flow(n: int) -> list[int]:
        futures = [meet(i) for i in range(n)]
        return [await f for f in futures] + [await ameet(9)]

    if mode == "sync":
        assert run(sync_flow, 3, mode, thread()) == [0, 1, 2]
    else:
        assert run(async_flow, 3, mode, thread()) == [0, 1, 2, 9]


def test_a_failed_run_resumes_without_rerunning_finished_tasks(saver: Any, mode: str) -> None:
    ran: list[str] = []

    @task
    def step_one(x: int) -> int:
        ran.append("one")
        return x + 1

    @task
    def flaky(x: int) -> int:
        ran.append("flaky")
        if ran.count("flaky") == 1:
            raise ValueError("first time")
        return x * 10

    @entrypoint(checkpointer=saver)
    def workflow(x: int) -> int:
        return flaky(step_one(x).result()).result()

    with pytest.raises(ValueError, match=r"^first time"):
        run(workflow, 1, mode, thread())
    assert run(workflow, None, mode, thread()) == 20
    assert ran == ["one", "flaky", "flaky"]


def test_interrupts_in_a_task_and_in_the_entrypoint_resume_one_by_one(saver: Any, mode: str) -> None:
    ran: list[str] = []

    @task
    def ask(x: int) -> Any:
        ran.append("ask")
        return interrupt(f"ok {x}?")

    @task
    def before(x: int) -> int:
        ran.append("before")
        return x

    @entrypoint(checkpointer=saver)
    def workflow(x: int) -> list[Any]:
        before(x).result()
        a = ask(x).result()
        b = interrupt("second")
        return [a, b]

    out = run(workflow, 5, mode, thread())
    assert [i.value for i in out["__interrupt__"]] == ["ok 5?"]
    out = run(workflow, Command(resume="A"), mode, thread())
    assert [i.value for i in out["__interrupt__"]] == ["second"]
    assert run(workflow, Command(resume="B"), mode, thread()) == ["A", "B"]
    assert ran == ["before", "ask", "ask"]
    assert steps(history(workflow, thread(), mode)) == [("loop", 0), ("input", -1)]


def test_a_task_s_interrupt_streams_an_updates_and_a_values_chunk(saver: Any, mode: str) -> None:
    @task
    def ask(q: str) -> Any:
        return interrupt(q)

    @entrypoint(checkpointer=saver)
    def workflow(x: int) -> list[Any]:
        return [ask("one").result(), double(x).result()]

    chunks = stream(workflow, 3, mode, thread(), stream_mode=["updates", "values"])
    shown = [(m, {k: [i.value for i in v] if k == "__interrupt__" else v for k, v in c.items()}) for m, c in chunks]
    # LangGraph 1.2.22: the entrypoint has no value yet, so the values chunk holds only the interrupt.
    assert shown == [("updates", {"__interrupt__": ["one"]}), ("values", {"__interrupt__": ["one"]})]


def test_a_task_still_running_when_the_entrypoint_is_interrupted_finishes_and_is_not_run_again(
    saver: Any, mode: str
) -> None:
    """As in LangGraph 1.2.22: the step waits for every task call it started, so `slow` (still running when `ask`
    interrupted the entrypoint) finishes, its result is saved and the resumed run reuses it. Before, it was left
    running, its save failed once the run had released the thread, and the resume ran it again."""
    calls: list[str] = []

    @task
    def ask(q: str) -> Any:
        calls.append("ask")
        return interrupt(q)

    @task
    def slow(x: int) -> int:
        time.sleep(0.05)
        calls.append("slow")
        return x

    @entrypoint(checkpointer=saver)
    def workflow(x: int) -> list[Any]:
        a, b = ask("q"), slow(x)
        return [a.result(), b.result()]

    chunks = stream(workflow, 1, mode, thread(), stream_mode="updates")
    assert {"slow": 1} in chunks and calls == ["ask", "slow"]
    assert run(workflow, Command(resume="A"), mode, thread()) == ["A", 1]
    assert calls == ["ask", "slow", "ask"]


@pytest.mark.parametrize("retried", ["entrypoint", "task"])
def test_a_retry_reuses_what_the_failed_attempt_s_task_calls_return(saver: Any, mode: str, retried: str) -> None:
    """graphrt only: a retried entrypoint or task first waits for the `@task` calls its failed attempt started, and
    the retry gets their results instead of starting them again (LangGraph 1.2.22 runs `slow` twice here)."""
    calls: list[str] = []
    attempts: list[int] = []
    policy = RetryPolicy(initial_interval=0.001, jitter=False, max_attempts=2, retry_on=ValueError)

    @task
    def slow(x: int) -> int:
        time.sleep(0.05)
        calls.append("slow")
        return x

    def flaky(x: int) -> int:
        attempts.append(1)
        future = slow(x)
        if len(attempts) == 1:
            raise ValueError("the first attempt fails")
        return future.result()

    if retried == "entrypoint":
        workflow = entrypoint(checkpointer=saver, retry_policy=policy)(flaky)
    else:
        flaky_task = task(retry_policy=policy)(flaky)
        workflow = entrypoint(checkpointer=saver)(lambda x: flaky_task(x).result())
    assert run(workflow, 1, mode, thread()) == 1
    assert (len(attempts), calls) == (2, ["slow"])


def test_tasks_called_in_another_order_on_replay_are_refused(saver: Any, mode: str) -> None:
    first = [True]

    @task
    def a() -> str:
        return "a"

    @task
    def b() -> str:
        return "b"

    @entrypoint(checkpointer=saver)
    def workflow(x: int) -> Any:
        if first[0]:
            first[0] = False
            a().result()
            return interrupt("wait")
        b().result()
        return "done"

    run(workflow, 1, mode, thread())
    with pytest.raises(UnitOrderError, match=r"^Task call #1 in 'workflow' is 'b', but the saved run called 'a'"):
        run(workflow, Command(resume="x"), mode, thread())


def test_unserializable_task_result_names_the_task(saver: Any, mode: str) -> None:
    @task
    def make() -> object:
        return threading.Lock()

    @entrypoint(checkpointer=saver)
    def workflow(x: int) -> Any:
        return make().result() is not None

    with pytest.raises(Exception) as info:
        run(workflow, 1, mode, thread())
    text = "\n".join([str(info.value), *getattr(info.value, "__notes__", [])])
    assert "lock" in text and "task 'make'" in text
    assert get_state(workflow, thread(), mode).next == ("workflow",)  # the thread stays resumable


def test_tasks_inside_state_graph_nodes_and_entrypoint_as_a_node(saver: Any, mode: str) -> None:
    class S(TypedDict):
        x: int

    def node(state: S) -> dict[str, int]:
        return {"x": double(state["x"]).result()}

    async def anode(state: S) -> dict[str, int]:
        return {"x": await double(state["x"])}

    @entrypoint()
    def inner(state: dict[str, int]) -> dict[str, int]:
        return {"x": state["x"] + 1}

    builder = StateGraph(S).add_node("n", node if mode == "sync" else anode).add_node("inner", inner)
    graph = builder.add_edge(START, "n").add_edge("n", "inner").compile(checkpointer=saver)
    assert run(graph, {"x": 2}, mode, thread()) == {"x": 5}


def test_nested_tasks_never_deadlock(mode: str) -> None:
    @task
    def leaf(x: int) -> int:
        time.sleep(0.001)
        return x + 1

    @task
    def mid(x: int) -> int:
        futures = [leaf(x + i) for i in range(8)]
        return sum(f.result() for f in futures)

    @entrypoint()
    def top(x: int) -> int:
        futures = [mid(i) for i in range(64)]
        return sum(f.result() for f in futures)

    expected = sum(sum(i + k + 1 for k in range(8)) for i in range(64))
    assert run(top, 0, mode) == expected


def test_calling_a_task_outside_a_run_is_an_error() -> None:
    with pytest.raises(RuntimeError, match=r"^Called get_config\(\) outside of a runnable context"):
        double(1)


def test_an_entrypoint_takes_exactly_one_input() -> None:
    with pytest.raises(ValueError, match=r"^Entrypoint 'two' takes 2 positional parameters \(a, b\)"):

        @entrypoint()
        def two(a: int, b: int) -> int:
            return a + b


def test_entrypoint_graph_draws_like_langgraph() -> None:
    @entrypoint()
    def wf(x: int) -> int:
        return x

    text = wf.get_graph().draw_mermaid()
    assert "\t__start__ --> wf;\n\twf -.-> __end__;\n" in text


def test_cached_task_does_not_run_again_for_the_same_input(saver: Any, mode: str) -> None:
    from graphrt.cache.memory import InMemoryCache
    from graphrt.types import CachePolicy

    calls: list[int] = []

    @task(cache_policy=CachePolicy(ttl=60))
    def expensive(x: int) -> int:
        calls.append(x)
        return x * x

    @entrypoint(checkpointer=saver, cache=InMemoryCache())
    def workflow(x: int) -> int:
        return expensive(x).result()

    assert run(workflow, 3, mode, thread("a")) == 9
    assert run(workflow, 3, mode, thread("b")) == 9  # another thread: served from the cache
    assert run(workflow, 4, mode, thread("c")) == 16
    assert calls == [3, 4]
    chunks = stream(workflow, 3, mode, thread("d"), stream_mode="updates")
    assert chunks[0] == {"expensive": 9, "__metadata__": {"cached": True}}
