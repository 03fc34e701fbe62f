"""`Send` fan-out (map-reduce) and `Command` returned from nodes."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.errors import GraphBubbleUp, ParentCommand
from graphrt.graph import END, START, StateGraph
from graphrt.types import Command, Send
from tests.engine.conftest import run, stream


class MapReduce(TypedDict, total=False):
    subjects: list[str]
    jokes: Annotated[list[str], operator.add]
    best: str


class Log(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    a: int


def map_reduce_graph() -> Any:
    def write_joke(arg: dict[str, Any]) -> dict[str, Any]:
        return {"jokes": [f"joke about {arg['subject']}"]}

    def pick(state: MapReduce) -> dict[str, Any]:
        return {"best": max(state["jokes"])}

    builder = StateGraph(MapReduce)
    builder.add_node("plan", lambda s: {})
    builder.add_node("write_joke", write_joke)
    builder.add_node("pick", pick)
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", lambda s: [Send("write_joke", {"subject": x}) for x in s["subjects"]])
    builder.add_edge("write_joke", "pick")
    return builder.compile()


def test_send_fans_out_and_the_reducer_collects_in_send_order(mode: str) -> None:
    result = run(map_reduce_graph(), {"subjects": ["cats", "dogs", "ants"]}, mode)
    assert result == {
        "subjects": ["cats", "dogs", "ants"],
        "jokes": ["joke about cats", "joke about dogs", "joke about ants"],
        "best": "joke about dogs",
    }


def test_each_send_is_its_own_task_in_one_step(mode: str) -> None:
    chunks = stream(map_reduce_graph(), {"subjects": ["a", "b"]}, mode, stream_mode="debug")
    sends = [c for c in chunks if c["type"] == "task" and c["payload"]["name"] == "write_joke"]
    assert [c["payload"]["input"] for c in sends] == [{"subject": "a"}, {"subject": "b"}]
    assert {c["step"] for c in sends} == {2}
    assert all(c["payload"]["triggers"] == ("__pregel_push",) for c in sends)


def test_edge_after_sent_tasks_runs_the_target_once(mode: str) -> None:
    calls: list[int] = []

    def count(state: MapReduce) -> dict[str, Any]:
        calls.append(len(state["jokes"]))
        return {}

    builder = StateGraph(MapReduce)
    builder.add_node("write_joke", lambda arg: {"jokes": [arg]})
    builder.add_node("count", count)
    builder.add_conditional_edges(START, lambda s: [Send("write_joke", x) for x in s["subjects"]])
    builder.add_edge("write_joke", "count")
    run(builder.compile(), {"subjects": ["x", "y", "z"]}, mode)
    assert calls == [3]


def test_sends_to_the_same_node_with_equal_args_all_run(mode: str) -> None:
    builder = StateGraph(MapReduce)
    builder.add_node("write_joke", lambda arg: {"jokes": [arg]})
    builder.add_conditional_edges(START, lambda s: [Send("write_joke", "same")] * 3)
    assert run(builder.compile(), {"subjects": []}, mode)["jokes"] == ["same"] * 3


def test_send_arg_is_the_nodes_input_not_the_state(mode: str) -> None:
    seen: list[Any] = []

    def worker(arg: Any) -> dict[str, Any]:
        seen.append(arg)
        return {"log": ["w"]}

    builder = StateGraph(Log)
    builder.add_node("worker", worker)
    builder.add_conditional_edges(START, lambda s: Send("worker", {"log": ["private"]}))
    assert run(builder.compile(), {"log": ["state"]}, mode) == {"log": ["state", "w"]}
    assert seen == [{"log": ["private"]}]


def test_pull_task_writes_apply_before_push_task_writes(mode: str) -> None:
    def hop(state: Log) -> Command[str]:
        return Command(goto=[Send("x", {"log": ["sent"]}), "y"], update={"log": ["hop"]})

    builder = StateGraph(Log)
    builder.add_node("hop", hop)
    builder.add_node("x", lambda s: {"log": ["x:" + ",".join(s["log"])]})
    builder.add_node("y", lambda s: {"log": ["y"]})
    builder.add_edge(START, "hop")
    assert run(builder.compile(), {"log": []}, mode) == {"log": ["hop", "y", "x:sent"]}


def test_send_str_repr_and_equality() -> None:
    assert Send("node", {"k": 1}) == Send("node", {"k": 1})
    assert Send("node", 1) != Send("other", 1)
    assert repr(Send("node", 1)) == "Send(node='node', arg=1)"


def test_send_to_an_unknown_node_is_ignored(mode: str) -> None:
    builder = StateGraph(Log)
    builder.add_node("p", lambda s: {"log": ["p"]})
    builder.add_edge(START, "p")
    builder.add_conditional_edges("p", lambda s: [Send("nope", 1)])
    assert run(builder.compile(), {"log": []}, mode) == {"log": ["p"]}


# ---------------------------------------------------------------- Command


def test_command_updates_and_routes(mode: str) -> None:
    def decide(state: Log) -> Command[str]:
        return Command(goto="b" if state["a"] > 0 else "c", update={"log": ["decide"]})

    builder = StateGraph(Log)
    builder.add_node("decide", decide)
    builder.add_node("b", lambda s: {"log": ["b"]})
    builder.add_node("c", lambda s: {"log": ["c"]})
    builder.add_edge(START, "decide")
    graph = builder.compile()
    assert run(graph, {"log": [], "a": 1}, mode) == {"log": ["decide", "b"], "a": 1}
    assert run(graph, {"log": [], "a": -1}, mode) == {"log": ["decide", "c"], "a": -1}


def test_command_update_appears_in_the_updates_stream(mode: str) -> None:
    builder = StateGraph(Log)
    builder.add_node("p", lambda s: Command(update={"a": 1}, goto="q"))
    builder.add_node("q", lambda s: {"a": s["a"] + 1})
    builder.add_edge(START, "p")
    assert stream(builder.compile(), {"log": []}, mode) == [{"p": {"a": 1}}, {"q": {"a": 2}}]


def test_command_goto_many_nodes_and_sends(mode: str) -> None:
    builder = StateGraph(Log)
    builder.add_node("p", lambda s: Command(goto=["x", Send("y", {"log": ["arg"]})]))
    builder.add_node("x", lambda s: {"log": ["x"]})
    builder.add_node("y", lambda arg: {"log": ["y:" + arg["log"][0]]})
    builder.add_edge(START, "p")
    assert run(builder.compile(), {"log": []}, mode) == {"log": ["x", "y:arg"]}


def test_command_goto_and_static_edges_both_fire(mode: str) -> None:
    builder = StateGraph(Log)
    builder.add_node("p", lambda s: Command(goto="x", update={"log": ["p"]}))
    builder.add_node("x", lambda s: {"log": ["x"]})
    builder.add_node("y", lambda s: {"log": ["y"]})
    builder.add_edge(START, "p")
    builder.add_edge("p", "y")
    assert run(builder.compile(), {"log": []}, mode) == {"log": ["p", "x", "y"]}


def test_command_update_as_pairs_and_goto_end(mode: str) -> None:
    builder = StateGraph(Log)
    builder.add_node("p", lambda s: Command(goto=END, update=[("log", ["p"]), ("a", 3)]))
    builder.add_node("x", lambda s: {"log": ["x"]})
    builder.add_edge(START, "p")
    assert run(builder.compile(), {"log": []}, mode) == {"log": ["p"], "a": 3}


def test_a_list_of_commands_from_one_node(mode: str) -> None:
    def many(state: Log) -> list[Command[str]]:
        return [Command(goto="x", update={"log": ["one"]}), Command(update={"log": ["two"]})]

    builder = StateGraph(Log)
    builder.add_node("many", many)
    builder.add_node("x", lambda s: {"log": ["x"]})
    builder.add_edge(START, "many")
    assert run(builder.compile(), {"log": []}, mode) == {"log": ["one", "two", "x"]}


def test_command_to_the_parent_at_the_top_level_raises(mode: str) -> None:
    builder = StateGraph(Log)
    builder.add_node("p", lambda s: Command(graph=Command.PARENT, goto="x"))
    builder.add_edge(START, "p")
    with pytest.raises(ParentCommand) as info:
        run(builder.compile(), {"log": []}, mode)
    assert isinstance(info.value, GraphBubbleUp)
    assert info.value.args[0].goto == "x"


def test_command_parent_constant() -> None:
    assert Command.PARENT == "__parent__"
    assert Command(goto="x").graph is None
