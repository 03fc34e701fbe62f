"""StateGraph building: nodes, edges, conditional edges, sequences, entry and finish points, compile."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.config import get_config
from graphrt.graph import END, START, StateGraph
from graphrt.types import Send
from tests.engine.conftest import exact, run, starts, stream


class Trace(TypedDict, total=False):
    trace: Annotated[list[str], operator.add]
    route: Any


def mark(name: str) -> Any:
    """A node that appends its name to `trace`."""

    def node(state: Trace) -> dict[str, Any]:
        return {"trace": [name]}

    node.__name__ = name
    return node


def test_add_node_takes_its_name_from_the_function(mode: str) -> None:
    def my_step(state: Trace) -> dict[str, Any]:
        return {"trace": ["ran"]}

    builder = StateGraph(Trace)
    builder.add_node(my_step)
    builder.add_edge(START, "my_step")
    graph = builder.compile()
    assert "my_step" in graph.nodes
    assert stream(graph, {"trace": []}, mode) == [{"my_step": {"trace": ["ran"]}}]


def test_add_node_returns_the_builder_for_chaining() -> None:
    builder = StateGraph(Trace)
    assert builder.add_node("a", mark("a")) is builder
    assert builder.add_edge(START, "a") is builder
    assert builder.add_conditional_edges("a", lambda s: END) is builder


def test_node_metadata_reaches_the_task_config(mode: str) -> None:
    seen: dict[str, Any] = {}

    def probe(state: Trace) -> dict[str, Any]:
        seen.update(get_config()["metadata"])
        return {}

    builder = StateGraph(Trace)
    builder.add_node("probe", probe, metadata={"owner": "team-x"})
    builder.add_edge(START, "probe")
    run(builder.compile(), {"trace": []}, mode)
    assert seen["owner"] == "team-x"
    assert seen["langgraph_node"] == "probe"
    assert seen["langgraph_step"] == 1


def test_edges_chain_nodes_in_order(mode: str) -> None:
    builder = StateGraph(Trace)
    for name in "abc":
        builder.add_node(name, mark(name))
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    builder.add_edge("c", END)
    assert run(builder.compile(), {"trace": []}, mode) == {"trace": ["a", "b", "c"]}


def test_fan_out_edges_run_targets_in_the_same_step(mode: str) -> None:
    builder = StateGraph(Trace)
    for name in "abc":
        builder.add_node(name, mark(name))
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("a", "c")
    chunks = stream(builder.compile(), {"trace": []}, mode, stream_mode="debug")
    steps = {c["payload"]["name"]: c["step"] for c in chunks if c["type"] == "task"}
    assert steps == {"a": 1, "b": 2, "c": 2}


def test_a_list_of_starts_is_a_join_that_waits_for_all(mode: str) -> None:
    builder = StateGraph(Trace)
    for name in ("a", "b", "b2", "join"):
        builder.add_node(name, mark(name))
    builder.add_edge(START, "a")
    builder.add_edge(START, "b")
    builder.add_edge("b", "b2")
    builder.add_edge(["a", "b2"], "join")
    result = run(builder.compile(), {"trace": []}, mode)
    # `join` runs once, only after the longer branch (b -> b2) finished.
    assert result == {"trace": ["a", "b", "b2", "join"]}


def test_a_plain_edge_from_each_branch_runs_the_target_each_time(mode: str) -> None:
    builder = StateGraph(Trace)
    for name in ("a", "b", "b2", "after"):
        builder.add_node(name, mark(name))
    builder.add_edge(START, "a")
    builder.add_edge(START, "b")
    builder.add_edge("b", "b2")
    builder.add_edge("a", "after")
    builder.add_edge("b2", "after")
    result = run(builder.compile(), {"trace": []}, mode)
    assert result == {"trace": ["a", "b", "after", "b2", "after"]}


def test_deferred_node_runs_once_after_all_other_work(mode: str) -> None:
    builder = StateGraph(Trace)
    for name in ("a", "b", "b2"):
        builder.add_node(name, mark(name))
    builder.add_node("after", mark("after"), defer=True)
    builder.add_edge(START, "a")
    builder.add_edge(START, "b")
    builder.add_edge("b", "b2")
    builder.add_edge("a", "after")
    builder.add_edge("b2", "after")
    result = run(builder.compile(), {"trace": []}, mode)
    assert result == {"trace": ["a", "b", "b2", "after"]}


@pytest.mark.parametrize(
    "path_map",
    [{"left": "l", "right": "r"}, ["l", "r"], None],
    ids=["dict", "list", "none"],
)
def test_conditional_edges_route_by_the_path_result(mode: str, path_map: Any) -> None:
    def choose(state: Trace) -> str:
        if isinstance(path_map, dict):
            return "right" if state["route"] == "r" else "left"
        return str(state["route"])

    builder = StateGraph(Trace)
    for name in ("start", "l", "r"):
        builder.add_node(name, mark(name))
    builder.add_edge(START, "start")
    builder.add_conditional_edges("start", choose, path_map)
    graph = builder.compile()
    assert run(graph, {"trace": [], "route": "r"}, mode)["trace"] == ["start", "r"]
    assert run(graph, {"trace": [], "route": "l"}, mode)["trace"] == ["start", "l"]


def test_conditional_edge_sees_the_state_after_the_source_wrote(mode: str) -> None:
    seen: list[Any] = []

    def choose(state: Trace) -> str:
        seen.append(list(state["trace"]))
        return END

    builder = StateGraph(Trace)
    builder.add_node("a", mark("a"))
    builder.add_edge(START, "a")
    builder.add_conditional_edges("a", choose)
    run(builder.compile(), {"trace": ["input"]}, mode)
    assert seen == [["input", "a"]]


def test_conditional_edge_returning_a_list_runs_all_in_parallel(mode: str) -> None:
    builder = StateGraph(Trace)
    for name in ("a", "x", "y", "z"):
        builder.add_node(name, mark(name))
    builder.add_edge(START, "a")
    builder.add_conditional_edges("a", lambda s: ["z", "x"])
    chunks = stream(builder.compile(), {"trace": []}, mode, stream_mode="debug")
    steps = {c["payload"]["name"]: c["step"] for c in chunks if c["type"] == "task"}
    assert steps == {"a": 1, "x": 2, "z": 2}


def test_conditional_edge_returning_end_stops(mode: str) -> None:
    builder = StateGraph(Trace)
    builder.add_node("a", mark("a"))
    builder.add_node("b", mark("b"))
    builder.add_edge(START, "a")
    builder.add_conditional_edges("a", lambda s: END, ["b", END])
    assert run(builder.compile(), {"trace": []}, mode) == {"trace": ["a"]}


def test_conditional_edge_can_return_sends(mode: str) -> None:
    class State(TypedDict):
        items: list[int]
        out: Annotated[list[int], operator.add]

    def double(x: int) -> dict[str, Any]:
        return {"out": [x * 2]}

    builder = StateGraph(State)
    builder.add_node("start", lambda s: {})
    builder.add_node("double", double)
    builder.add_edge(START, "start")
    builder.add_conditional_edges("start", lambda s: [Send("double", i) for i in s["items"]])
    assert run(builder.compile(), {"items": [1, 2, 3], "out": []}, mode) == {
        "items": [1, 2, 3],
        "out": [2, 4, 6],
    }


def test_path_result_missing_from_the_path_map_raises(mode: str) -> None:
    builder = StateGraph(Trace)
    builder.add_node("a", mark("a"))
    builder.add_node("b", mark("b"))
    builder.add_edge(START, "a")
    builder.add_conditional_edges("a", lambda s: "nowhere", {"there": "b"})
    with pytest.raises(KeyError):
        run(builder.compile(), {"trace": []}, mode)


def test_add_sequence_chains_functions_and_named_tuples(mode: str) -> None:
    builder = StateGraph(Trace)
    builder.add_sequence([mark("one"), ("two", mark("second")), mark("three")])
    builder.add_edge(START, "one")
    graph = builder.compile()
    assert set(graph.nodes) >= {"one", "two", "three"}
    assert run(graph, {"trace": []}, mode) == {"trace": ["one", "second", "three"]}


def test_add_sequence_rejects_empty_and_duplicate_names() -> None:
    with pytest.raises(ValueError, match=exact("Sequence requires at least one node.")):
        StateGraph(Trace).add_sequence([])
    builder = StateGraph(Trace)
    builder.add_node("a", mark("a"))
    with pytest.raises(ValueError, match=starts("Node names must be unique: node with the name 'a' already exists.")):
        builder.add_sequence([mark("a")])


def test_entry_and_finish_points(mode: str) -> None:
    builder = StateGraph(Trace)
    builder.add_node("a", mark("a"))
    builder.add_node("b", mark("b"))
    builder.set_entry_point("a")
    builder.add_edge("a", "b")
    builder.set_finish_point("b")
    assert run(builder.compile(), {"trace": []}, mode) == {"trace": ["a", "b"]}


@pytest.mark.parametrize("path_map", [{"go_a": "a", "go_b": "b"}, None], ids=["dict", "none"])
def test_conditional_entry_point(mode: str, path_map: Any) -> None:
    builder = StateGraph(Trace)
    builder.add_node("a", mark("a"))
    builder.add_node("b", mark("b"))
    if path_map is None:
        builder.set_conditional_entry_point(lambda s: s["route"])
    else:
        builder.set_conditional_entry_point(lambda s: "go_" + s["route"], path_map)
    graph = builder.compile()
    assert run(graph, {"trace": [], "route": "b"}, mode) == {"trace": ["b"], "route": "b"}
    assert run(graph, {"trace": [], "route": "a"}, mode) == {"trace": ["a"], "route": "a"}


def test_compile_name_and_builder() -> None:
    builder = StateGraph(Trace)
    builder.add_node("a", mark("a"))
    builder.add_edge(START, "a")
    assert builder.compile(name="my-graph").name == "my-graph"
    assert builder.compile().name == "LangGraph"
    assert builder.compile().builder is builder


def test_compiled_graph_runs_many_times_independently(mode: str) -> None:
    builder = StateGraph(Trace)
    builder.add_node("a", mark("a"))
    builder.add_edge(START, "a")
    graph = builder.compile()
    assert run(graph, {"trace": ["1"]}, mode) == {"trace": ["1", "a"]}
    assert run(graph, {"trace": ["2"]}, mode) == {"trace": ["2", "a"]}


def test_node_without_outgoing_edge_ends_the_branch(mode: str) -> None:
    builder = StateGraph(Trace)
    builder.add_node("a", mark("a"))
    builder.add_node("unreached", mark("unreached"))
    builder.add_edge(START, "a")
    assert run(builder.compile(), {"trace": []}, mode) == {"trace": ["a"]}


def test_lambda_node_and_callable_object(mode: str) -> None:
    class Step:
        def __call__(self, state: Trace) -> dict[str, Any]:
            return {"trace": ["obj"]}

    builder = StateGraph(Trace)
    builder.add_node("lam", lambda s: {"trace": ["lam"]})
    builder.add_node("obj", Step())
    builder.add_edge(START, "lam")
    builder.add_edge("lam", "obj")
    assert run(builder.compile(), {"trace": []}, mode) == {"trace": ["lam", "obj"]}


def test_destinations_describe_command_targets(mode: str) -> None:
    from graphrt.types import Command

    def hop(state: Trace) -> Command[str]:
        return Command(goto="b", update={"trace": ["hop"]})

    builder = StateGraph(Trace)
    builder.add_node("hop", hop, destinations=("b", "c"))
    builder.add_node("b", mark("b"))
    builder.add_node("c", mark("c"))
    builder.add_edge(START, "hop")
    assert run(builder.compile(), {"trace": []}, mode) == {"trace": ["hop", "b"]}
