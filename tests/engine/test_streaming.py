"""invoke/stream and their async twins, in every stream mode."""

from __future__ import annotations

import asyncio
import itertools
import operator
import re
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.config import get_stream_writer
from graphrt.graph import START, StateGraph
from graphrt.runtime import Runtime
from graphrt.types import Command, StreamWriter, interrupt
from tests.engine.conftest import run, stream


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    a: int


def a(state: State) -> dict[str, Any]:
    get_stream_writer()({"progress": "a"})
    return {"log": ["a"]}


def b(state: State, writer: StreamWriter) -> dict[str, Any]:
    writer("from b")
    return {"a": 1}


def two_steps(**compile_kw: Any) -> Any:
    builder = StateGraph(State)
    builder.add_node("a", a)
    builder.add_node("b", b)
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    return builder.compile(**compile_kw)


def test_invoke_returns_the_final_state(mode: str) -> None:
    assert run(two_steps(), {"log": []}, mode) == {"log": ["a"], "a": 1}


def test_default_stream_mode_is_updates(mode: str) -> None:
    assert stream(two_steps(), {"log": []}, mode) == [{"a": {"log": ["a"]}}, {"b": {"a": 1}}]


def test_values_stream_starts_with_the_state_after_the_input(mode: str) -> None:
    chunks = stream(two_steps(), {"log": ["in"]}, mode, stream_mode="values")
    assert chunks == [{"log": ["in"]}, {"log": ["in", "a"]}, {"log": ["in", "a"], "a": 1}]


def test_updates_stream_has_one_chunk_per_task(mode: str) -> None:
    builder = StateGraph(State)
    builder.add_node("first", lambda s: None)
    builder.add_node("x", lambda s: {"a": 1})
    builder.add_node("y", lambda s: {"log": ["y"]})
    builder.add_edge(START, "first")
    builder.add_edge("first", "x")
    builder.add_edge("first", "y")
    graph = builder.compile()
    chunks = stream(graph, {"log": []}, mode)
    # x and y run in one step: their chunks come as each finishes, in either order.
    assert chunks[0] == {"first": None}
    assert sorted(chunks[1:], key=repr) == [{"x": {"a": 1}}, {"y": {"log": ["y"]}}]
    # A step that changed nothing emits no values chunk.
    assert stream(graph, {"log": []}, mode, stream_mode="values") == [{"log": []}, {"log": ["y"], "a": 1}]


def test_custom_stream_from_get_stream_writer_and_writer_param(mode: str) -> None:
    assert stream(two_steps(), {"log": []}, mode, stream_mode="custom") == [{"progress": "a"}, "from b"]


def test_custom_stream_from_an_async_node() -> None:
    async def node(state: State, writer: StreamWriter) -> dict[str, Any]:
        writer(1)
        get_stream_writer()(2)
        return {"a": 3}

    builder = StateGraph(State)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    assert stream(builder.compile(), {"log": []}, "async", stream_mode="custom") == [1, 2]


def test_custom_stream_from_the_runtime(mode: str) -> None:
    def node(state: State, runtime: Runtime[None]) -> dict[str, Any]:
        runtime.stream_writer("via runtime")
        return {}

    builder = StateGraph(State)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    assert stream(builder.compile(), {"log": []}, mode, stream_mode="custom") == ["via runtime"]


def test_stream_writer_is_a_no_op_without_the_custom_mode(mode: str) -> None:
    assert stream(two_steps(), {"log": []}, mode, stream_mode="updates") == [
        {"a": {"log": ["a"]}},
        {"b": {"a": 1}},
    ]
    assert run(two_steps(), {"log": []}, mode) == {"log": ["a"], "a": 1}


def test_several_modes_yield_mode_and_chunk_pairs_in_order(mode: str) -> None:
    chunks = stream(two_steps(), {"log": []}, mode, stream_mode=["updates", "custom", "values"])
    assert chunks == [
        ("values", {"log": []}),
        ("custom", {"progress": "a"}),
        ("updates", {"a": {"log": ["a"]}}),
        ("values", {"log": ["a"]}),
        ("custom", "from b"),
        ("updates", {"b": {"a": 1}}),
        ("values", {"log": ["a"], "a": 1}),
    ]


def test_a_list_of_one_mode_still_yields_pairs(mode: str) -> None:
    assert stream(two_steps(), {"log": []}, mode, stream_mode=["updates"]) == [
        ("updates", {"a": {"log": ["a"]}}),
        ("updates", {"b": {"a": 1}}),
    ]


@pytest.mark.parametrize("modes", [[], ()])
def test_an_empty_list_of_modes_streams_nothing_and_still_runs(mode: str, modes: Any) -> None:
    # LangGraph 1.2.22: nothing is yielded (not the default mode's chunks), and the run saves as usual.
    graph = two_steps(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    assert stream(graph, {"log": []}, mode, config, stream_mode=modes) == []
    assert stream(graph, {"log": []}, mode, config, stream_mode=modes, subgraphs=True) == []
    assert graph.get_state(config).values == {"log": ["a", "a"], "a": 1}
    assert run(graph, {"log": []}, mode, config, stream_mode=modes) == []


def test_subgraphs_flag_prefixes_a_namespace(mode: str) -> None:
    assert stream(two_steps(), {"log": []}, mode, subgraphs=True) == [
        ((), {"a": {"log": ["a"]}}),
        ((), {"b": {"a": 1}}),
    ]
    assert stream(two_steps(), {"log": []}, mode, stream_mode=["values"], subgraphs=True)[0] == (
        (),
        "values",
        {"log": []},
    )


def test_tasks_stream(mode: str) -> None:
    chunks = stream(two_steps(), {"log": []}, mode, stream_mode="tasks")
    assert [sorted(c) for c in chunks] == [
        ["id", "input", "name", "triggers"],
        ["error", "id", "interrupts", "name", "result"],
    ] * 2
    start, end = chunks[0], chunks[1]
    assert (start["name"], start["input"], start["triggers"]) == ("a", {"log": []}, ("branch:to:a",))
    assert (end["id"], end["name"], end["error"], end["result"], end["interrupts"]) == (
        start["id"],
        "a",
        None,
        {"log": ["a"]},
        [],
    )
    assert chunks[2]["input"] == {"log": ["a"]}
    assert chunks[3]["result"] == {"a": 1}


def _collect_until_raised(graph: Any, input: Any, mode: str, config: Any = None, **kw: Any) -> list[Any]:
    """The chunks streamed before the run raised (it must raise)."""
    chunks: list[Any] = []

    async def collect() -> None:
        async for chunk in graph.astream(input, config, **kw):
            chunks.append(chunk)

    with pytest.raises(ValueError, match="bad"):
        if mode == "sync":
            for chunk in graph.stream(input, config, **kw):
                chunks.append(chunk)
        else:
            asyncio.run(collect())
    return chunks


def test_a_failed_task_streams_its_result_with_the_error(mode: str) -> None:
    """LangGraph 1.2.22's chunks (ids aside): the task's start, then its result naming the error, then the raise."""

    def boom(state: State) -> State:
        raise ValueError("bad")

    builder = StateGraph(State)
    builder.add_node("boom", boom)
    builder.add_edge(START, "boom")
    chunks = _collect_until_raised(builder.compile(), {"log": []}, mode, stream_mode="tasks")
    assert [sorted(c) for c in chunks] == [
        ["id", "input", "name", "triggers"],
        ["error", "id", "interrupts", "name", "result"],
    ]
    end = chunks[1]
    assert (end["id"], end["name"], end["result"], end["interrupts"]) == (chunks[0]["id"], "boom", {}, [])
    assert isinstance(end["error"], ValueError) and str(end["error"]) == "bad"
    debug = _collect_until_raised(builder.compile(), {"log": []}, mode, stream_mode="debug")
    assert [(c["type"], c["step"], c["payload"]["name"]) for c in debug] == [
        ("task", 1, "boom"),
        ("task_result", 1, "boom"),
    ]
    assert isinstance(debug[1]["payload"]["error"], ValueError)


def test_an_interrupted_task_streams_its_result_with_what_it_asked(mode: str) -> None:
    """LangGraph 1.2.22's order: the interrupt's updates and values chunks, then the task's result."""

    def ask(state: State) -> State:
        return {"log": [interrupt({"q": "ok?"})]}

    builder = StateGraph(State)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    graph = builder.compile(checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "t"}}
    chunks = stream(graph, {"log": ["hi"]}, mode, config, stream_mode=["updates", "values", "tasks"])
    assert [m for m, _ in chunks] == ["values", "tasks", "updates", "values", "tasks"]
    (asked,) = chunks[2][1]["__interrupt__"]
    assert chunks[4][1] == {
        "id": chunks[1][1]["id"],
        "name": "ask",
        "error": None,
        "result": {},
        "interrupts": [{"value": {"q": "ok?"}, "id": asked.id, "response_schema": None}],
    }
    resumed = stream(graph, Command(resume="yes"), mode, config, stream_mode="tasks")
    assert [(c["name"], c.get("result"), c.get("interrupts")) for c in resumed] == [
        ("ask", None, None),
        ("ask", {"log": ["yes"]}, []),
    ]


def test_debug_stream_wraps_task_events_with_step_and_type(mode: str) -> None:
    chunks = stream(two_steps(), {"log": []}, mode, stream_mode="debug")
    assert [(c["type"], c["step"], c["payload"]["name"]) for c in chunks] == [
        ("task", 1, "a"),
        ("task_result", 1, "a"),
        ("task", 2, "b"),
        ("task_result", 2, "b"),
    ]
    assert all(sorted(c) == ["payload", "step", "timestamp", "type"] for c in chunks)
    assert all(isinstance(c["timestamp"], str) for c in chunks)


def test_debug_stream_with_a_checkpointer_includes_checkpoints(mode: str) -> None:
    graph = two_steps(checkpointer=InMemorySaver())
    chunks = stream(graph, {"log": []}, mode, {"configurable": {"thread_id": "t"}}, stream_mode="debug")
    assert [(c["type"], c["step"]) for c in chunks] == [
        ("checkpoint", -1),
        ("checkpoint", 0),
        ("task", 1),
        ("task_result", 1),
        ("checkpoint", 1),
        ("task", 2),
        ("task_result", 2),
        ("checkpoint", 2),
    ]
    checkpoint = chunks[-1]["payload"]
    assert sorted(checkpoint) == ["config", "metadata", "next", "parent_config", "tasks", "values"]


def test_checkpoints_stream_without_a_checkpointer_is_empty(mode: str) -> None:
    assert stream(two_steps(), {"log": []}, mode, stream_mode="checkpoints") == []


def test_checkpoints_stream_shape(mode: str) -> None:
    graph = two_steps(checkpointer=InMemorySaver())
    chunks = stream(graph, {"log": []}, mode, {"configurable": {"thread_id": "t"}}, stream_mode="checkpoints")
    assert [sorted(c) for c in chunks] == [["config", "metadata", "next", "parent_config", "tasks", "values"]] * 4
    assert [(c["metadata"]["source"], c["metadata"]["step"], c["next"]) for c in chunks] == [
        ("input", -1, ["__start__"]),
        ("loop", 0, ["a"]),
        ("loop", 1, ["b"]),
        ("loop", 2, []),
    ]
    assert [c["values"] for c in chunks] == [{"log": []}, {"log": []}, {"log": ["a"]}, {"log": ["a"], "a": 1}]
    assert chunks[0]["parent_config"] is None
    for previous, current in itertools.pairwise(chunks):
        assert current["parent_config"] == previous["config"]
    assert chunks[1]["config"]["configurable"]["thread_id"] == "t"
    assert [t["name"] for t in chunks[1]["tasks"]] == ["a"]
    assert sorted(chunks[1]["tasks"][0]) == ["id", "interrupts", "name", "state"]


def test_invoke_with_another_stream_mode_returns_its_chunks(mode: str) -> None:
    assert run(two_steps(), {"log": []}, mode, stream_mode="updates") == [{"a": {"log": ["a"]}}, {"b": {"a": 1}}]
    assert run(two_steps(), {"log": []}, mode, stream_mode="custom") == [{"progress": "a"}, "from b"]


TWO_STEPS_PRINTED = [
    "[values] {'log': []}",
    "[updates] {'a': {'log': ['a']}}",
    "[values] {'log': ['a']}",
    "[updates] {'b': {'a': 1}}",
    "[values] {'log': ['a'], 'a': 1}",
]
"""What `two_steps` prints in debug mode: each step's update and the values after it (LangGraph's lines)."""


def test_compile_debug_prints_values_and_updates(mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    chunks = stream(two_steps(debug=True), {"log": []}, mode)
    assert chunks == [{"a": {"log": ["a"]}}, {"b": {"a": 1}}]
    printed = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out).splitlines()
    assert printed == TWO_STEPS_PRINTED


def test_invoke_debug_prints_each_steps_values_and_updates(mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    """LangGraph 1.2.22 passes `invoke(debug=True)` on to its stream: every step's values are printed."""
    assert run(two_steps(), {"log": []}, mode, debug=True) == {"log": ["a"], "a": 1}
    printed = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out).splitlines()
    assert printed == TWO_STEPS_PRINTED


def test_output_keys_narrow_the_values(mode: str) -> None:
    chunks = stream(two_steps(), {"log": []}, mode, stream_mode="values", output_keys=["log"])
    assert chunks and all(set(c) <= {"log"} for c in chunks)
    assert run(two_steps(), {"log": []}, mode, output_keys="log") == ["a"]


def test_print_mode_prints_without_streaming_those_chunks(mode: str, capsys: pytest.CaptureFixture[str]) -> None:
    chunks = stream(two_steps(), {"log": []}, mode, stream_mode="values", print_mode="updates")
    assert chunks == [{"log": []}, {"log": ["a"]}, {"log": ["a"], "a": 1}]
    printed = re.sub(r"\x1b\[[0-9;]*m", "", capsys.readouterr().out).splitlines()
    assert printed == ["[updates] {'a': {'log': ['a']}}", "[updates] {'b': {'a': 1}}"]


def test_sync_stream_hands_over_a_steps_chunk_before_the_next_step_runs() -> None:
    seen_by_caller: list[str] = []
    seen_by_b: list[list[str]] = []

    def first(state: State) -> dict[str, Any]:
        return {"log": ["a"]}

    def second(state: State) -> dict[str, Any]:
        seen_by_b.append(list(seen_by_caller))
        return {"a": 1}

    builder = StateGraph(State)
    builder.add_node("a", first)
    builder.add_node("b", second)
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    graph = builder.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "lazy"}}
    for chunk in graph.stream({"log": []}, config, stream_mode="updates"):
        seen_by_caller.extend(chunk)
    assert seen_by_b == [["a"]]
    assert seen_by_caller == ["a", "b"]


def _asks_and_writes(*asking: str) -> Any:
    """START fans out to "w" (writes) and to each asking node (calls `interrupt(name)`)."""

    def ask(name: str) -> Any:
        return lambda state: {"log": [interrupt(name)]}

    builder = StateGraph(State)
    builder.add_node("w", lambda state: {"log": ["w"]})
    builder.add_edge(START, "w")
    for name in asking:
        builder.add_node(name, ask(name))
        builder.add_edge(START, name)
    return builder.compile(checkpointer=InMemorySaver())


def _shown(chunk: Any) -> Any:
    """A chunk with its interrupts shown by value (their ids are random)."""
    if isinstance(chunk, tuple):
        return (chunk[0], _shown(chunk[1]))
    if isinstance(chunk, dict) and "__interrupt__" in chunk:
        return {**chunk, "__interrupt__": [i.value for i in chunk["__interrupt__"]]}
    if isinstance(chunk, dict) and "interrupts" in chunk:
        return (chunk["name"], [i["value"] for i in chunk["interrupts"]])
    if isinstance(chunk, dict) and "triggers" in chunk:
        return (chunk["name"], "start")
    return chunk


def test_each_interrupted_task_streams_its_own_interrupt_then_the_step_s_finished_writes(mode: str) -> None:
    """LangGraph 1.2.22's chunks: per interrupted task an `updates` and a `values` chunk (the state before the
    step) and its result; then one `values` chunk with the finished sibling's writes applied."""
    graph = _asks_and_writes("x", "y")
    config: Any = {"configurable": {"thread_id": "t"}}
    chunks = stream(graph, {"log": []}, mode, config, stream_mode=["updates", "values", "tasks"])
    assert [_shown(c) for c in chunks] == [
        ("values", {"log": []}),
        ("tasks", ("w", "start")),
        ("tasks", ("x", "start")),
        ("tasks", ("y", "start")),
        ("updates", {"w": {"log": ["w"]}}),
        ("tasks", ("w", [])),
        ("updates", {"__interrupt__": ["x"]}),
        ("values", {"log": [], "__interrupt__": ["x"]}),
        ("tasks", ("x", ["x"])),
        ("updates", {"__interrupt__": ["y"]}),
        ("values", {"log": [], "__interrupt__": ["y"]}),
        ("tasks", ("y", ["y"])),
        ("values", {"log": ["w"]}),
    ]
    again = _asks_and_writes("x")
    assert [_shown(c) for c in stream(again, {"log": []}, mode, config, stream_mode="values")] == [
        {"log": []},
        {"log": [], "__interrupt__": ["x"]},
        {"log": ["w"]},
    ]
    # invoke returns the last values with every interrupt.
    result = run(_asks_and_writes("x", "y"), {"log": []}, mode, config)
    assert _shown(result) == {"log": ["w"], "__interrupt__": ["x", "y"]}


def test_a_task_s_triggers_are_all_its_node_s_sorted(mode: str) -> None:
    """LangGraph 1.2.22 shows every trigger channel of the node (sorted), not only those that fired, in the
    `tasks` stream and in the task's `langgraph_triggers` metadata."""
    seen: list[tuple[str, tuple[str, ...]]] = []

    def node(name: str) -> Any:
        def run_node(state: State, config: Any) -> State:
            seen.append((name, tuple(config["metadata"]["langgraph_triggers"])))
            return {"log": [name]}

        return run_node

    builder = StateGraph(State)
    for name in "abc":
        builder.add_node(name, node(name))
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("a", "c")
    builder.add_edge(["a", "b"], "c")
    chunks = stream(builder.compile(), {"log": []}, mode, stream_mode="tasks")
    expected = [
        ("a", ("branch:to:a",)),
        ("b", ("branch:to:b",)),
        ("c", ("branch:to:c", "join:a+b:c")),  # fired by a's edge
        ("c", ("branch:to:c", "join:a+b:c")),  # fired by the join
    ]
    assert [(c["name"], tuple(c["triggers"])) for c in chunks if "triggers" in c] == expected
    assert seen == expected


def test_only_the_root_run_streams_the_finished_siblings_writes_after_an_interrupt(mode: str) -> None:
    """LangGraph 1.2.22: a subgraph interrupted beside a finished sibling streams no extra `values` chunk."""
    inner = StateGraph(State)
    inner.add_node("w", lambda state: {"log": ["w"]})
    inner.add_node("x", lambda state: {"log": [interrupt("q")]})
    inner.add_edge(START, "w")
    inner.add_edge(START, "x")
    builder = StateGraph(State)
    builder.add_node("n", inner.compile())
    builder.add_edge(START, "n")
    graph = builder.compile(checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "t"}}
    chunks = stream(graph, {"log": []}, mode, config, stream_mode="values", subgraphs=True)
    assert [(len(ns), _shown(c)) for ns, c in chunks] == [
        (0, {"log": []}),
        (1, {"log": []}),
        (1, {"log": [], "__interrupt__": ["q"]}),
        (0, {"log": [], "__interrupt__": ["q"]}),
    ]
