"""Time travel: replaying from an older checkpoint, and forking a thread with update_state or new input."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.errors import InvalidUpdateError
from graphrt.graph import END, START, StateGraph
from graphrt.types import Command, StateSnapshot, interrupt
from tests.persistence.conftest import get_state, history, run, stream, thread, update_state


class Items(TypedDict, total=False):
    items: Annotated[list[str], operator.add]


def chain(saver: Any, calls: list[str]) -> Any:
    """START -> a -> b -> c -> END; each node appends its name to the state and to `calls`."""
    builder = StateGraph(Items)
    for name in "abc":
        builder.add_node(name, lambda s, name=name: calls.append(name) or {"items": [name]})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    builder.add_edge("c", END)
    return builder.compile(checkpointer=saver)


def checkpoint_id(snapshot: StateSnapshot | None) -> str | None:
    return snapshot.config["configurable"]["checkpoint_id"] if snapshot else None


def summary(snapshots: list[StateSnapshot]) -> list[tuple[str, int, tuple[str, ...], list[str]]]:
    return [(s.metadata["source"], s.metadata["step"], s.next, s.values["items"]) for s in snapshots]  # type: ignore[index]


def test_replay_from_an_older_checkpoint_forks_and_reruns_from_there(saver: Any, mode: str) -> None:
    calls: list[str] = []
    graph = chain(saver, calls)
    run(graph, {"items": ["x"]}, mode, thread())
    original = history(graph, thread(), mode)
    before_b = next(s for s in original if s.next == ("b",))
    calls.clear()

    assert run(graph, None, mode, before_b.config) == {"items": ["x", "a", "b", "c"]}
    assert calls == ["b", "c"]  # b re-executes although it ran on that checkpoint before

    after = history(graph, thread(), mode)
    assert after[len(after) - len(original) :] == original  # nothing older was changed
    branch = after[: len(after) - len(original)]
    assert summary(branch) == [
        ("loop", 4, (), ["x", "a", "b", "c"]),
        ("loop", 3, ("c",), ["x", "a", "b"]),
        ("fork", 2, ("b",), ["x", "a"]),
    ]
    assert branch[2].parent_config == before_b.config
    assert get_state(graph, thread(), mode) == branch[0]


def test_replay_streams_only_the_rerun_steps(saver: Any, mode: str) -> None:
    calls: list[str] = []
    graph = chain(saver, calls)
    run(graph, {"items": ["x"]}, mode, thread())
    before_b = next(s for s in history(graph, thread(), mode) if s.next == ("b",))
    chunks = stream(graph, None, mode, before_b.config, stream_mode="updates")
    assert chunks == [{"b": {"items": ["b"]}}, {"c": {"items": ["c"]}}]


def test_replay_from_the_final_checkpoint_runs_nothing(saver: Any, mode: str) -> None:
    calls: list[str] = []
    graph = chain(saver, calls)
    run(graph, {"items": ["x"]}, mode, thread())
    final = get_state(graph, thread(), mode)
    calls.clear()
    assert run(graph, None, mode, final.config) == {"items": ["x", "a", "b", "c"]}
    assert calls == []
    newest = get_state(graph, thread(), mode)
    assert summary([newest]) == [("fork", 4, (), ["x", "a", "b", "c"])]
    assert newest.parent_config == final.config


def test_update_state_at_an_older_checkpoint_forks_the_thread(saver: Any, mode: str) -> None:
    calls: list[str] = []
    graph = chain(saver, calls)
    run(graph, {"items": ["x"]}, mode, thread())
    original = history(graph, thread(), mode)
    before_a = next(s for s in original if s.next == ("a",))

    fork_config = update_state(graph, before_a.config, {"items": ["fork"]}, mode)
    fork = get_state(graph, fork_config, mode)
    assert summary([fork]) == [("update", 1, ("a",), ["x", "fork"])]
    assert fork.parent_config == before_a.config
    assert get_state(graph, thread(), mode) == fork  # the fork is now the thread's newest checkpoint

    calls.clear()
    assert run(graph, None, mode, fork_config) == {"items": ["x", "fork", "a", "b", "c"]}
    assert calls == ["a", "b", "c"]
    # An update checkpoint is a fork already: the run continues it without another `fork` checkpoint.
    after = history(graph, thread(), mode)
    assert summary(after[:4]) == [
        ("loop", 4, (), ["x", "fork", "a", "b", "c"]),
        ("loop", 3, ("c",), ["x", "fork", "a", "b"]),
        ("loop", 2, ("b",), ["x", "fork", "a"]),
        ("update", 1, ("a",), ["x", "fork"]),
    ]
    assert after[4:] == original


def test_new_input_at_an_older_checkpoint_drops_its_pending_tasks(saver: Any, mode: str) -> None:
    calls: list[str] = []
    graph = chain(saver, calls)
    run(graph, {"items": ["x"]}, mode, thread())
    before_b = next(s for s in history(graph, thread(), mode) if s.next == ("b",))
    calls.clear()
    assert run(graph, {"items": ["new"]}, mode, before_b.config) == {"items": ["x", "a", "new", "a", "b", "c"]}
    assert calls == ["a", "b", "c"]
    branch = history(graph, thread(), mode)[:5]
    assert summary(branch) == [
        ("loop", 6, (), ["x", "a", "new", "a", "b", "c"]),
        ("loop", 5, ("c",), ["x", "a", "new", "a", "b"]),
        ("loop", 4, ("b",), ["x", "a", "new", "a"]),
        ("loop", 3, ("a",), ["x", "a", "new"]),
        ("input", 2, ("__start__",), ["x", "a"]),
    ]
    assert branch[-1].parent_config == before_b.config


def test_continuing_without_checkpoint_id_follows_the_newest_branch(saver: Any, mode: str) -> None:
    calls: list[str] = []
    graph = chain(saver, calls)
    run(graph, {"items": ["x"]}, mode, thread())
    before_a = next(s for s in history(graph, thread(), mode) if s.next == ("a",))
    update_state(graph, before_a.config, {"items": ["fork"]}, mode)
    calls.clear()
    assert run(graph, None, mode, thread()) == {"items": ["x", "fork", "a", "b", "c"]}
    assert calls == ["a", "b", "c"]
    assert run(graph, {"items": ["y"]}, mode, thread()) == {"items": ["x", "fork", "a", "b", "c", "y", "a", "b", "c"]}


def test_a_command_at_an_older_checkpoint_is_carried_by_the_fork(saver: Any, mode: str) -> None:
    """LangGraph 1.2.22: the fork holds the Command's update and goto; nothing is stored on the older checkpoint."""
    calls: list[str] = []
    graph = chain(saver, calls)
    run(graph, {"items": []}, mode, thread())
    original = history(graph, thread(), mode)
    before_b = next(s for s in original if s.next == ("b",))
    out = run(graph, Command(update={"items": ["X"]}, goto="c"), mode, before_b.config)
    assert out == {"items": ["a", "X", "b", "c", "c"]}
    after = history(graph, thread(), mode)
    assert after[len(after) - len(original) :] == original
    assert summary(after[: len(after) - len(original)]) == [
        ("loop", 4, (), ["a", "X", "b", "c", "c"]),
        ("loop", 3, ("c",), ["a", "X", "b", "c"]),
        ("fork", 2, ("b", "c"), ["a", "X"]),
    ]


def test_replay_streams_the_values_then_the_fork_checkpoint(saver: Any, mode: str) -> None:
    graph = chain(saver, [])
    run(graph, {"items": []}, mode, thread())
    before_c = next(s for s in history(graph, thread(), mode) if s.next == ("c",))
    chunks = stream(graph, None, mode, before_c.config, stream_mode=["values", "checkpoints"])
    assert [(m, c["metadata"]["source"] if m == "checkpoints" else c) for m, c in chunks] == [
        ("values", {"items": ["a", "b"]}),
        ("checkpoints", "fork"),
        ("values", {"items": ["a", "b", "c"]}),
        ("checkpoints", "loop"),
    ]
    # The fork's parent is named by thread, namespace and id only, as in LangGraph.
    assert chunks[1][1]["parent_config"] == {
        "configurable": {
            "thread_id": thread()["configurable"]["thread_id"],
            "checkpoint_ns": "",
            **{"checkpoint_id": checkpoint_id(before_c)},
        }
    }


def asking_chain(saver: Any) -> Any:
    builder = StateGraph(Items)
    builder.add_node("a", lambda s: {"items": ["a"]})
    builder.add_node("ask", lambda s: {"items": [interrupt("q")]})
    builder.add_node("c", lambda s: {"items": ["c"]})
    builder.add_edge(START, "a")
    builder.add_edge("a", "ask")
    builder.add_edge("ask", "c")
    return builder.compile(checkpointer=saver)


def test_resume_with_the_newest_checkpoint_s_config_answers_the_interrupt(saver: Any, mode: str) -> None:
    graph = asking_chain(saver)
    run(graph, {"items": []}, mode, thread())
    snapshot = get_state(graph, thread(), mode)
    assert run(graph, Command(resume="R"), mode, snapshot.config) == {"items": ["a", "R", "c"]}
    assert summary(history(graph, thread(), mode)) == [
        ("loop", 3, (), ["a", "R", "c"]),
        ("loop", 2, ("c",), ["a", "R"]),
        ("loop", 1, ("ask",), ["a"]),
        ("loop", 0, ("a",), []),
        ("input", -1, ("__start__",), []),
    ]


def test_resume_at_an_older_checkpoint_is_refused_and_writes_nothing(saver: Any, mode: str) -> None:
    graph = asking_chain(saver)
    run(graph, {"items": []}, mode, thread())
    asked = get_state(graph, thread(), mode)
    run(graph, Command(resume="R1"), mode, thread())
    before = history(graph, thread(), mode)
    with pytest.raises(InvalidUpdateError, match="not the thread's newest"):
        run(graph, Command(resume="R2"), mode, asked.config)
    assert history(graph, thread(), mode) == before
    # Branching from it runs the interrupted node again, whose interrupt is then answered.
    out = run(graph, None, mode, asked.config)
    assert [i.value for i in out["__interrupt__"]] == ["q"]
    assert run(graph, Command(resume="R2"), mode, thread()) == {"items": ["a", "R2", "c"]}
