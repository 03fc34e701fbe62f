"""Time travel: replaying from an older checkpoint, and forking a thread with update_state or new input."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from graphrt.graph import END, START, StateGraph
from graphrt.types import StateSnapshot
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
