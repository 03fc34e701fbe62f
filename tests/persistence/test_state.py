"""Inspecting and editing a thread: get_state, get_state_history, update_state, bulk_update_state."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.errors import InvalidUpdateError
from graphrt.graph import END, START, StateGraph
from graphrt.types import PregelTask, StateSnapshot, StateUpdate, interrupt
from tests.persistence.conftest import (
    bulk_update_state,
    exact,
    get_state,
    history,
    run,
    steps,
    thread,
    update_state,
)


class Items(TypedDict, total=False):
    items: Annotated[list[str], operator.add]
    count: int


def two_step_graph(saver: Any) -> Any:
    """START -> a -> b -> END; each node appends its name, `a` counts its runs."""
    builder = StateGraph(Items)
    builder.add_node("a", lambda s: {"items": ["a"], "count": s.get("count", 0) + 1})
    builder.add_node("b", lambda s: {"items": ["b"]})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", END)
    return builder.compile(checkpointer=saver)


def counts(snapshots: list[StateSnapshot]) -> list[tuple[str, int]]:
    return steps(snapshots)


# ---------------------------------------------------------------- get_state


def test_get_state_of_an_unknown_thread_is_empty(saver: Any, mode: str) -> None:
    graph = two_step_graph(saver)
    assert get_state(graph, thread("nobody"), mode) == StateSnapshot(
        values={},
        next=(),
        config=thread("nobody"),
        metadata=None,
        created_at=None,
        parent_config=None,
        tasks=(),
        interrupts=(),
    )
    assert history(graph, thread("nobody"), mode) == []


def test_state_snapshot_fields() -> None:
    assert StateSnapshot._fields == (
        "values",
        "next",
        "config",
        "metadata",
        "created_at",
        "parent_config",
        "tasks",
        "interrupts",
    )
    assert PregelTask._fields == ("id", "name", "path", "error", "interrupts", "state", "result")


def test_get_state_is_the_newest_checkpoint(saver: Any, mode: str) -> None:
    graph = two_step_graph(saver)
    run(graph, {"items": ["x"]}, mode, thread())
    snapshot = get_state(graph, thread(), mode)
    newest = history(graph, thread(), mode)[0]
    assert snapshot == newest
    assert snapshot.values == {"items": ["x", "a", "b"], "count": 1}
    assert snapshot.next == ()
    assert snapshot.tasks == ()
    assert snapshot.interrupts == ()
    assert snapshot.metadata == {"source": "loop", "step": 2, "parents": {}}
    assert set(snapshot.config["configurable"]) == {"thread_id", "checkpoint_ns", "checkpoint_id"}


def test_get_state_of_a_named_checkpoint(saver: Any, mode: str) -> None:
    graph = two_step_graph(saver)
    run(graph, {"items": ["x"]}, mode, thread())
    older = history(graph, thread(), mode)[1]
    snapshot = get_state(graph, older.config, mode)
    assert snapshot == older
    assert snapshot.values == {"items": ["x", "a"], "count": 1}
    assert snapshot.next == ("b",)
    assert [(t.name, t.path, t.error, t.interrupts, t.result) for t in snapshot.tasks] == [
        ("b", ("__pregel_pull", "b"), None, (), {"items": ["b"]})
    ]  # an older checkpoint's task shows what it went on to write
    assert isinstance(snapshot.tasks[0], PregelTask)


def test_get_state_while_paused_lists_the_next_tasks(saver: Any, mode: str) -> None:
    graph = two_step_graph(saver)
    run(graph, {"items": ["x"]}, mode, thread(), interrupt_before=["b"])
    snapshot = get_state(graph, thread(), mode)
    assert snapshot.values == {"items": ["x", "a"], "count": 1}
    assert snapshot.next == ("b",)
    assert [t.name for t in snapshot.tasks] == ["b"]
    assert snapshot.metadata is not None and snapshot.metadata["step"] == 1


# ---------------------------------------------------------------- get_state_history


def test_history_filter_before_limit(saver: Any, mode: str) -> None:
    graph = two_step_graph(saver)
    run(graph, {"items": ["x"]}, mode, thread(user_id="u1"))
    update_state(graph, thread(), {"items": ["u"]}, mode)
    full = history(graph, thread(), mode)
    assert counts(full) == [("update", 3), ("loop", 2), ("loop", 1), ("loop", 0), ("input", -1)]
    assert counts(history(graph, thread(), mode, filter={"source": "loop"})) == [
        ("loop", 2),
        ("loop", 1),
        ("loop", 0),
    ]
    assert counts(history(graph, thread(), mode, filter={"step": 1})) == [("loop", 1)]
    assert counts(history(graph, thread(), mode, filter={"user_id": "u1"})) == [
        ("loop", 2),
        ("loop", 1),
        ("loop", 0),
        ("input", -1),
    ]
    assert counts(history(graph, thread(), mode, filter={"source": "nothing"})) == []
    assert counts(history(graph, thread(), mode, limit=2)) == [("update", 3), ("loop", 2)]
    assert counts(history(graph, thread(), mode, before=full[1].config)) == [("loop", 1), ("loop", 0), ("input", -1)]
    assert counts(history(graph, thread(), mode, before=full[1].config, limit=1)) == [("loop", 1)]
    assert counts(history(graph, thread(), mode, before=full[1].config, filter={"step": 0})) == [("loop", 0)]


def test_history_is_per_thread(saver: Any, mode: str) -> None:
    graph = two_step_graph(saver)
    run(graph, {"items": ["x"]}, mode, thread("1"))
    run(graph, {"items": ["y"]}, mode, thread("2"))
    run(graph, {"items": ["y"]}, mode, thread("2"))
    assert len(history(graph, thread("1"), mode)) == 4
    assert len(history(graph, thread("2"), mode)) == 8
    assert {s.config["configurable"]["thread_id"] for s in history(graph, thread("2"), mode)} == {"2"}


# ---------------------------------------------------------------- update_state


def test_update_state_applies_reducers_as_the_last_node(saver: Any, mode: str) -> None:
    graph = two_step_graph(saver)
    run(graph, {"items": ["x"]}, mode, thread())
    before = get_state(graph, thread(), mode)
    new_config = update_state(graph, thread(), {"items": ["u"], "count": 10}, mode)
    snapshot = get_state(graph, thread(), mode)
    assert new_config == snapshot.config
    assert new_config["configurable"]["thread_id"] == "1"
    assert snapshot.values == {"items": ["x", "a", "b", "u"], "count": 10}
    assert snapshot.next == ()  # as the last node to run (b), whose successor is END
    assert snapshot.metadata == {"source": "update", "step": 3, "parents": {}}
    assert snapshot.parent_config == before.config


def test_update_state_as_node_schedules_its_successors(saver: Any, mode: str) -> None:
    graph = two_step_graph(saver)
    run(graph, {"items": ["x"]}, mode, thread())
    update_state(graph, thread(), {"items": ["u"]}, mode, as_node="a")
    snapshot = get_state(graph, thread(), mode)
    assert snapshot.values == {"items": ["x", "a", "b", "u"], "count": 1}
    assert snapshot.next == ("b",)
    assert snapshot.metadata == {"source": "update", "step": 3, "parents": {}}
    # Continuing runs the successor only.
    assert run(graph, None, mode, thread()) == {"items": ["x", "a", "b", "u", "b"], "count": 1}
    assert counts(history(graph, thread(), mode))[:2] == [("loop", 4), ("update", 3)]


def test_update_state_of_a_new_thread(saver: Any, mode: str) -> None:
    graph = two_step_graph(saver)
    update_state(graph, thread("1"), {"items": ["z"]}, mode)
    snapshot = get_state(graph, thread("1"), mode)
    assert snapshot.values == {"items": ["z"]}
    assert snapshot.next == ("a",)  # as START
    assert snapshot.metadata == {"source": "update", "step": 0, "parents": {}}
    assert snapshot.parent_config is None

    update_state(graph, thread("2"), {"items": ["z"]}, mode, as_node="a")
    snapshot = get_state(graph, thread("2"), mode)
    assert snapshot.next == ("b",)
    assert run(graph, None, mode, thread("2")) == {"items": ["z", "b"]}
    assert counts(history(graph, thread("2"), mode)) == [("loop", 1), ("update", 0)]


def test_update_state_unknown_node_raises(saver: Any, mode: str) -> None:
    graph = two_step_graph(saver)
    run(graph, {"items": ["x"]}, mode, thread())
    with pytest.raises(InvalidUpdateError, match=exact("Node nope does not exist")):
        update_state(graph, thread(), {"items": ["u"]}, mode, as_node="nope")
    assert len(history(graph, thread(), mode)) == 4


def test_bulk_update_state_one_checkpoint_per_superstep(saver: Any, mode: str) -> None:
    graph = two_step_graph(saver)
    new_config = bulk_update_state(
        graph,
        thread(),
        [
            [StateUpdate({"items": ["p"]}, "a")],
            [StateUpdate({"items": ["q"]}, "b"), StateUpdate({"count": 5}, "a")],
        ],
        mode,
    )
    snapshots = history(graph, thread(), mode)
    assert new_config == snapshots[0].config
    assert [(s.metadata, s.next, s.values) for s in snapshots] == [
        ({"source": "update", "step": 1, "parents": {}}, ("b",), {"items": ["p", "q"], "count": 5}),
        ({"source": "update", "step": 0, "parents": {}}, ("b",), {"items": ["p"]}),
    ]


def asker_and_sibling(saver: Any) -> Any:
    """START -> ask (interrupts) and fine, in parallel -> after."""
    builder = StateGraph(Items)
    builder.add_node("ask", lambda s: {"items": ["ask:" + interrupt("q?")]})
    builder.add_node("fine", lambda s: {"items": ["fine"]})
    builder.add_node("after", lambda s: {"items": ["after"]})
    builder.add_edge(START, "ask")
    builder.add_edge(START, "fine")
    builder.add_edge("ask", "after")
    builder.add_edge("fine", "after")
    return builder.compile(checkpointer=saver)


def test_update_state_none_as_end_ends_the_current_tasks(saver: Any, mode: str) -> None:
    # Pinned from LangGraph 1.2.22: the finished sibling's write is kept, the interrupted task never runs and
    # its interrupt is gone, and the step's successors are scheduled as if both tasks had finished.
    graph = asker_and_sibling(saver)
    run(graph, {"items": ["in"]}, mode, thread())
    assert get_state(graph, thread(), mode).next == ("ask",)
    update_state(graph, thread(), None, mode, as_node=END)
    snapshot = get_state(graph, thread(), mode)
    assert (snapshot.values, snapshot.next, snapshot.interrupts) == ({"items": ["in", "fine"]}, ("after",), ())
    assert snapshot.metadata == {"source": "update", "step": 1, "parents": {}}
    assert run(graph, None, mode, thread()) == {"items": ["in", "fine", "after"]}
    assert counts(history(graph, thread(), mode)) == [("loop", 2), ("update", 1), ("loop", 0), ("input", -1)]
    # On a new thread it saves an empty checkpoint; with values, or with other updates, it is refused.
    update_state(graph, thread("2"), None, mode, as_node=END)
    assert [(s.values, s.next, s.metadata["step"]) for s in history(graph, thread("2"), mode)] == [
        ({"items": []}, (), 0)
    ]
    with pytest.raises(InvalidUpdateError, match=exact("Node __end__ does not exist")):
        update_state(graph, thread(), {"items": ["z"]}, mode, as_node=END)
    with pytest.raises(InvalidUpdateError, match=exact("Cannot apply multiple updates when clearing state")):
        bulk_update_state(graph, thread(), [[StateUpdate(None, END), StateUpdate({"items": ["z"]}, "fine")]], mode)
    assert len(history(graph, thread(), mode)) == 4


@pytest.mark.parametrize(("supersteps", "message"), [([], "No supersteps provided"), ([[]], "No updates provided")])
def test_bulk_update_state_rejects_empty_input(saver: Any, mode: str, supersteps: Any, message: str) -> None:
    graph = two_step_graph(saver)
    with pytest.raises(ValueError, match=exact(message)):
        bulk_update_state(graph, thread(), supersteps, mode)
    assert history(graph, thread(), mode) == []


# ---------------------------------------------------------------- isolation


class Data(TypedDict, total=False):
    data: list[int]
    log: Annotated[list[int], operator.add]


def test_saved_values_are_isolated_from_later_mutation(saver: Any, mode: str) -> None:
    kept: list[list[int]] = []

    def produce(state: Data) -> Data:
        value = [1, 2]
        kept.append(value)
        return {"data": value, "log": [1]}

    builder = StateGraph(Data)
    builder.add_node("produce", produce)
    builder.add_edge(START, "produce")
    graph = builder.compile(checkpointer=saver)

    out = run(graph, {"data": [0], "log": [0]}, mode, thread())
    assert out == {"data": [1, 2], "log": [0, 1]}
    out["data"].append(99)
    out["log"].append(99)
    kept[0].append(98)
    snapshot = get_state(graph, thread(), mode)
    assert snapshot.values == {"data": [1, 2], "log": [0, 1]}
    # Mutating a snapshot's values does not change the saved checkpoint either.
    snapshot.values["data"].append(97)
    snapshot.values["log"].append(97)
    assert get_state(graph, thread(), mode).values == {"data": [1, 2], "log": [0, 1]}
    assert [s.values for s in history(graph, thread(), mode)] == [
        {"data": [1, 2], "log": [0, 1]},
        {"data": [0], "log": [0]},
        {"log": []},
    ]
    # The next run starts from the saved values, not the mutated objects.
    assert run(graph, {"log": [2]}, mode, thread()) == {"data": [1, 2], "log": [0, 1, 2, 1]}
