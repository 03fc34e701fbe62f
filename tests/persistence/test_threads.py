"""Threads and checkpoints: a thread continues across runs; one checkpoint per superstep; metadata; durability."""

from __future__ import annotations

import itertools
import operator
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.checkpoint.sqlite import SqliteSaver
from graphrt.checkpoint.sqlite.aio import AsyncSqliteSaver
from graphrt.graph import END, START, StateGraph
from tests.persistence.conftest import exact, history, run, steps, thread


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


def test_thread_continues_across_invocations(saver: Any, mode: str) -> None:
    graph = two_step_graph(saver)
    assert run(graph, {"items": ["x"]}, mode, thread("1")) == {"items": ["x", "a", "b"], "count": 1}
    assert run(graph, {"items": ["y"]}, mode, thread("1")) == {
        "items": ["x", "a", "b", "y", "a", "b"],
        "count": 2,
    }
    # Another thread starts from nothing.
    assert run(graph, {"items": ["z"]}, mode, thread("2")) == {"items": ["z", "a", "b"], "count": 1}


def test_thread_survives_reopening_the_sqlite_file(tmp_path: Path, mode: str) -> None:
    path = str(tmp_path / "cp.sqlite")
    for turn, expected in ((1, ["x", "a", "b"]), (2, ["x", "a", "b", "x", "a", "b"])):
        # A new connection and a newly compiled graph each time, as after a process restart.
        if mode == "sync":
            with SqliteSaver.from_conn_string(path) as saver:
                assert run(two_step_graph(saver), {"items": ["x"]}, mode, thread()) == {
                    "items": expected,
                    "count": turn,
                }
        else:
            conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            try:
                graph = two_step_graph(AsyncSqliteSaver(conn))
                assert run(graph, {"items": ["x"]}, mode, thread()) == {"items": expected, "count": turn}
            finally:
                conn.close()
    with SqliteSaver.from_conn_string(path) as saver:
        assert [step for _, step in steps(history(two_step_graph(saver), thread(), "sync"))] == [
            6,
            5,
            4,
            3,
            2,
            1,
            0,
            -1,
        ]


@pytest.mark.parametrize("config", [None, {}, {"configurable": {}}])
def test_checkpointer_without_thread_id_raises(saver: Any, mode: str, config: Any) -> None:
    graph = two_step_graph(saver)
    with pytest.raises(
        ValueError,
        match=exact(
            "Checkpointer requires one or more of the following 'configurable' keys: "
            "thread_id, checkpoint_ns, checkpoint_id"
        ),
    ):
        run(graph, {"items": ["x"]}, mode, config)


def test_no_checkpointer_needs_no_thread_id(mode: str) -> None:
    graph = two_step_graph(None)
    assert run(graph, {"items": ["x"]}, mode) == {"items": ["x", "a", "b"], "count": 1}
    # Without a checkpointer nothing carries over, even with a thread_id.
    assert run(graph, {"items": ["y"]}, mode, thread("1")) == {"items": ["y", "a", "b"], "count": 1}


def test_one_input_checkpoint_then_one_per_superstep(saver: Any, mode: str) -> None:
    graph = two_step_graph(saver)
    run(graph, {"items": ["x"]}, mode, thread())
    snapshots = history(graph, thread(), mode)
    assert steps(snapshots) == [("loop", 2), ("loop", 1), ("loop", 0), ("input", -1)]
    assert [s.next for s in snapshots] == [(), ("b",), ("a",), ("__start__",)]
    assert [s.values for s in snapshots] == [
        {"items": ["x", "a", "b"], "count": 1},
        {"items": ["x", "a"], "count": 1},
        {"items": ["x"]},
        {"items": []},
    ]


def test_step_numbering_continues_on_the_next_run(saver: Any, mode: str) -> None:
    graph = two_step_graph(saver)
    run(graph, {"items": ["x"]}, mode, thread())
    run(graph, {"items": ["y"]}, mode, thread())
    snapshots = history(graph, thread(), mode)
    assert steps(snapshots) == [
        ("loop", 6),
        ("loop", 5),
        ("loop", 4),
        ("input", 3),
        ("loop", 2),
        ("loop", 1),
        ("loop", 0),
        ("input", -1),
    ]
    # The second run's input checkpoint holds the first run's result; its input is still pending.
    assert snapshots[3].values == {"items": ["x", "a", "b"], "count": 1}
    assert snapshots[3].next == ("__start__",)


def test_checkpoints_chain_through_parent_config(saver: Any, mode: str) -> None:
    graph = two_step_graph(saver)
    run(graph, {"items": ["x"]}, mode, thread())
    run(graph, {"items": ["y"]}, mode, thread())
    snapshots = history(graph, thread(), mode)
    for newer, older in itertools.pairwise(snapshots):
        assert newer.parent_config == older.config
    assert snapshots[-1].parent_config is None
    ids = [s.config["configurable"]["checkpoint_id"] for s in snapshots]
    assert ids == sorted(ids, reverse=True)  # ids sort by creation time
    assert len(set(ids)) == len(ids)
    for s in snapshots:
        assert s.config["configurable"]["thread_id"] == "1"
        assert s.config["configurable"]["checkpoint_ns"] == ""
        assert s.created_at is not None
        assert datetime.fromisoformat(s.created_at).tzinfo is not None


def test_metadata_has_source_step_parents(saver: Any, mode: str) -> None:
    graph = two_step_graph(saver)
    run(graph, {"items": ["x"]}, mode, thread())
    metadata = [s.metadata for s in history(graph, thread(), mode)]
    assert metadata == [
        {"source": "loop", "step": 2, "parents": {}},
        {"source": "loop", "step": 1, "parents": {}},
        {"source": "loop", "step": 0, "parents": {}},
        {"source": "input", "step": -1, "parents": {}},
    ]


def test_scalar_config_keys_are_copied_into_metadata(saver: Any, mode: str) -> None:
    graph = two_step_graph(saver)
    config: Any = {
        "configurable": {
            "thread_id": "1",
            "user_id": "u1",
            "n": 3,
            "ratio": 1.5,
            "flag": True,
            "nothing": None,
            "__private": "p",
            "listed": [1],
        },
        "metadata": {"run_name": "r", "num": 2, "nested": {"a": 1}, "listed": [1]},
    }
    run(graph, {"items": ["x"]}, mode, config)
    for snapshot in history(graph, thread(), mode):
        assert snapshot.metadata is not None
        extra = {k: v for k, v in snapshot.metadata.items() if k not in ("source", "step", "parents")}
        assert extra == {"run_name": "r", "num": 2, "user_id": "u1", "n": 3, "ratio": 1.5, "flag": True}


@pytest.mark.parametrize("durability", ["sync", "async"])
def test_durability_sync_and_async_save_every_step(saver: Any, mode: str, durability: str) -> None:
    graph = two_step_graph(saver)
    assert run(graph, {"items": ["x"]}, mode, thread(), durability=durability) == {
        "items": ["x", "a", "b"],
        "count": 1,
    }
    run(graph, {"items": ["y"]}, mode, thread(), durability=durability)
    assert [step for _, step in steps(history(graph, thread(), mode))] == [6, 5, 4, 3, 2, 1, 0, -1]


def test_durability_exit_saves_only_the_final_checkpoint(saver: Any, mode: str) -> None:
    graph = two_step_graph(saver)
    assert run(graph, {"items": ["x"]}, mode, thread(), durability="exit") == {
        "items": ["x", "a", "b"],
        "count": 1,
    }
    assert steps(history(graph, thread(), mode)) == [("loop", 2)]
    # The next run continues from it and again saves one checkpoint.
    assert run(graph, {"items": ["y"]}, mode, thread(), durability="exit") == {
        "items": ["x", "a", "b", "y", "a", "b"],
        "count": 2,
    }
    snapshots = history(graph, thread(), mode)
    assert steps(snapshots) == [("loop", 6), ("loop", 2)]
    assert snapshots[0].parent_config == snapshots[1].config
    assert snapshots[0].next == ()


def test_durability_exit_saves_the_interrupted_checkpoint(saver: Any, mode: str) -> None:
    graph = two_step_graph(saver)
    run(graph, {"items": ["x"]}, mode, thread(), durability="exit", interrupt_before=["b"])
    snapshots = history(graph, thread(), mode)
    assert steps(snapshots) == [("loop", 1)]
    assert snapshots[0].next == ("b",)
    assert snapshots[0].values == {"items": ["x", "a"], "count": 1}
    assert run(graph, None, mode, thread(), durability="exit") == {"items": ["x", "a", "b"], "count": 1}
    assert steps(history(graph, thread(), mode)) == [("loop", 2), ("loop", 1)]
