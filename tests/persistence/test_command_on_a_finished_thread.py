"""`invoke(Command(update=...))` on a thread with nothing left to run, on every saver: the update is kept as the
head checkpoint's pending writes and applied once by every read, as in LangGraph (expected values are LangGraph
1.2.22's answers for the same graph). graphrt used to save the head again with the update applied, so the next
read applied it twice, and a second Command's update was lost."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.graph import START, StateGraph
from graphrt.types import Command, interrupt
from tests.persistence.conftest import get_state, history, run, stream, thread


class Log(TypedDict):
    log: Annotated[list[str], operator.add]


def one_node(saver: Any) -> Any:
    builder = StateGraph(Log)
    builder.add_node("a", lambda s: {"log": ["a"]})
    builder.add_edge(START, "a")
    return builder.compile(checkpointer=saver)


@pytest.mark.parametrize("durability", ["async", "sync", "exit"])
def test_each_update_is_applied_once_and_kept_until_new_input(saver: Any, mode: str, durability: str) -> None:
    graph = one_node(saver)
    run(graph, {"log": []}, mode, thread())
    saved = len(history(graph, thread(), mode))
    assert run(graph, Command(update={"log": ["u1"]}), mode, thread(), durability=durability) == {"log": ["a", "u1"]}
    assert get_state(graph, thread(), mode).values == {"log": ["a", "u1"]}
    assert run(graph, Command(update={"log": ["u2"]}), mode, thread(), durability=durability) == {
        "log": ["a", "u1", "u2"]
    }
    assert get_state(graph, thread(), mode).values == {"log": ["a", "u1", "u2"]}
    assert len(history(graph, thread(), mode)) == saved  # no checkpoint of their own, as in LangGraph
    # New input starts from the updated state.
    assert run(graph, {"log": ["new"]}, mode, thread()) == {"log": ["a", "u1", "u2", "new", "a"]}
    assert get_state(graph, thread(), mode).values == {"log": ["a", "u1", "u2", "new", "a"]}


def test_the_checkpoints_stream_shows_the_head_once(saver: Any, mode: str) -> None:
    graph = one_node(saver)
    run(graph, {"log": []}, mode, thread())
    head, parent = history(graph, thread(), mode)[:2]
    [event] = stream(graph, Command(update={"log": ["u"]}), mode, thread(), stream_mode="checkpoints")
    assert event["config"]["configurable"]["checkpoint_id"] == head.config["configurable"]["checkpoint_id"]
    assert event["parent_config"]["configurable"]["checkpoint_id"] == parent.config["configurable"]["checkpoint_id"]
    assert event["values"] == {"log": ["a", "u"]}
    assert (event["metadata"]["step"], event["next"], event["tasks"]) == (1, [], [])


@pytest.mark.parametrize("durability", ["async", "exit"])
def test_a_command_whose_step_does_not_finish_keeps_its_tasks_writes(saver: Any, mode: str, durability: str) -> None:
    """Answering one of two interrupted tasks, with an update, while the other asks again: no step finishes,
    so the checkpoint is not saved again, but the finished task's write and the new interrupt are (also
    under durability="exit"). Values and runs are LangGraph 1.2.22's."""
    runs: list[str] = []

    def x(state: Log) -> dict[str, Any]:
        runs.append("x")
        return {"log": ["x:" + interrupt("qx")]}

    def y(state: Log) -> dict[str, Any]:
        runs.append("y")
        first = interrupt("qy")
        return {"log": ["y:" + first + interrupt("qy2")]}

    builder = StateGraph(Log)
    builder.add_node("x", x)
    builder.add_node("y", y)
    builder.add_edge(START, "x")
    builder.add_edge(START, "y")
    graph = builder.compile(checkpointer=saver)
    run(graph, {"log": []}, mode, thread(), durability=durability)
    asked = {i.value: i.id for i in get_state(graph, thread(), mode).interrupts}
    resume = {asked["qx"]: "A", asked["qy"]: "B"}
    run(graph, Command(resume=resume, update={"log": ["u"]}), mode, thread(), durability=durability)
    asked = {i.value: i.id for i in get_state(graph, thread(), mode).interrupts}
    assert list(asked) == ["qy2"]
    done = run(graph, Command(resume={asked["qy2"]: "C"}), mode, thread(), durability=durability)
    assert done == {"log": ["u", "x:A", "y:BC"]}
    assert sorted(runs) == ["x", "x", "y", "y", "y"]  # x never ran again after it finished
