"""A resumed run streams the checkpoint it starts from first, in `checkpoints` and `debug` mode, as LangGraph 1.x
does (each of its steps streams the checkpoint it starts from): pinned from LangGraph 1.2.22's answers."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.graph import START, StateGraph
from graphrt.types import Command, interrupt


class Log(TypedDict):
    log: Annotated[list[str], operator.add]


def _graph() -> Any:
    builder = StateGraph(Log)
    builder.add_node("a", lambda s: {"log": ["a"]})
    builder.add_node("ask", lambda s: {"log": [interrupt("q")]})
    builder.add_node("z", lambda s: {"log": ["z"]})
    builder.add_edge(START, "a")
    builder.add_edge("a", "ask")
    builder.add_edge("ask", "z")
    return builder.compile(checkpointer=InMemorySaver(), interrupt_before=["z"])


def _id(config: Any) -> str:
    return str(config["configurable"]["checkpoint_id"])


def test_a_resume_streams_the_checkpoint_it_resumes_with_its_interrupt_then_the_new_ones() -> None:
    graph = _graph()
    config = {"configurable": {"thread_id": "1"}}
    graph.invoke({"log": []}, config)
    paused = graph.get_state(config)
    chunks = list(graph.stream(Command(resume="R"), config, stream_mode=["checkpoints", "tasks"]))
    assert [mode for mode, _ in chunks] == ["checkpoints", "tasks", "tasks", "checkpoints"]
    first, task = chunks[0][1], chunks[1][1]
    assert _id(first["config"]) == _id(paused.config)
    assert _id(first["parent_config"]) == _id(paused.parent_config)
    assert (first["values"], first["metadata"]["step"], first["next"]) == ({"log": ["a"]}, 1, ["ask"])
    [pending] = first["tasks"]
    assert pending["id"] == task["id"] == paused.tasks[0].id
    assert [i["value"] for i in pending["interrupts"]] == ["q"]
    assert chunks[3][1]["values"] == {"log": ["a", "R"]} and chunks[3][1]["next"] == ["z"]


def test_debug_mode_starts_with_the_checkpoint_a_run_continues() -> None:
    graph = _graph()
    config = {"configurable": {"thread_id": "1"}}
    graph.invoke({"log": []}, config)
    graph.invoke(Command(resume="R"), config)
    before_z = graph.get_state(config)
    events = list(graph.stream(None, config, stream_mode="debug"))
    assert [(e["type"], e["step"]) for e in events] == [
        ("checkpoint", 2),
        ("task", 3),
        ("task_result", 3),
        ("checkpoint", 3),
    ]
    assert _id(events[0]["payload"]["config"]) == _id(before_z.config)
    assert events[0]["payload"]["tasks"][0]["interrupts"] == ()  # a tuple, as LangGraph 1.2.22 gives it


def test_new_input_and_a_replay_stream_only_the_checkpoints_they_write() -> None:
    graph = _graph()
    config = {"configurable": {"thread_id": "1"}}
    fresh = list(graph.stream({"log": []}, config, stream_mode="checkpoints"))
    assert [(c["metadata"]["source"], c["metadata"]["step"]) for c in fresh] == [
        ("input", -1),
        ("loop", 0),
        ("loop", 1),
    ]
    older = next(s for s in graph.get_state_history(config) if s.metadata["step"] == 0)
    replay = list(graph.stream(None, older.config, stream_mode="checkpoints"))
    assert [(c["metadata"]["source"], c["metadata"]["step"]) for c in replay] == [("fork", 1), ("loop", 2)]


def test_the_resumed_checkpoint_shows_a_finished_task_s_result() -> None:
    """LangGraph 1.2.22: a finished task shows its result; the interrupted one, what it asked."""
    builder = StateGraph(Log)
    builder.add_node("w", lambda s: {"log": ["w"]})
    builder.add_node("x", lambda s: {"log": [interrupt("q")]})
    builder.add_edge(START, "w")
    builder.add_edge(START, "x")
    graph = builder.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "1"}}
    graph.invoke({"log": []}, config)
    first = next(iter(graph.stream(Command(resume="A"), config, stream_mode="checkpoints")))
    shown = [{k: v for k, v in t.items() if k != "id"} for t in first["tasks"]]
    asked = shown[1]["interrupts"][0]
    assert shown == [
        {"name": "w", "result": {"log": ["w"]}, "interrupts": (), "state": None},
        {"name": "x", "interrupts": ({"value": "q", "id": asked["id"], "response_schema": None},), "state": None},
    ]


def test_the_resumed_checkpoint_shows_a_failed_task_s_error() -> None:
    """LangGraph 1.2.22: a task that failed beside a finished one shows the saved error (its repr)."""
    failing = [True]

    def flaky(state: Log) -> Log:
        if failing[0]:
            raise ValueError("bad")
        return {"log": ["y"]}

    builder = StateGraph(Log)
    builder.add_node("w", lambda s: {"log": ["w"]})
    builder.add_node("y", flaky)
    builder.add_edge(START, "w")
    builder.add_edge(START, "y")
    graph = builder.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "1"}}
    with pytest.raises(ValueError, match="bad"):
        graph.invoke({"log": []}, config)
    failing[0] = False
    first = next(iter(graph.stream(None, config, stream_mode="checkpoints")))
    assert [{k: v for k, v in t.items() if k != "id"} for t in first["tasks"]] == [
        {"name": "w", "result": {"log": ["w"]}, "interrupts": (), "state": None},
        {"name": "y", "error": "ValueError('bad')", "state": None},
    ]
