"""One writer per thread (graphrt only): a run that finds its thread advanced by another run stops with
`ThreadConflictError` and writes nothing more. LangGraph silently forks the history instead."""

from __future__ import annotations

import asyncio
import operator
import threading
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.errors import ThreadConflictError
from graphrt.graph import END, START, StateGraph
from tests.persistence.conftest import get_state, history, run, steps, thread, update_state


class Items(TypedDict, total=False):
    items: Annotated[list[str], operator.add]


class Gate:
    """A graph START -> slow -> END whose first `slow` call waits until released."""

    def __init__(self, saver: Any) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0
        builder = StateGraph(Items)
        builder.add_node("slow", self.slow)
        builder.add_edge(START, "slow")
        builder.add_edge("slow", END)
        self.graph = builder.compile(checkpointer=saver)

    def slow(self, state: Items) -> Items:
        self.calls += 1
        label = f"slow{self.calls}"
        if self.calls == 1:
            self.entered.set()
            assert self.release.wait(10), "never released"
        return {"items": [label]}


def run_in_thread(graph: Any, input: Any, mode: str) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            if mode == "sync":
                graph.invoke(input, thread())
            else:
                asyncio.run(graph.ainvoke(input, thread()))
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=target)
    worker.start()
    return worker, errors


def test_the_run_that_loses_a_race_raises_and_writes_nothing_more(saver: Any, mode: str) -> None:
    gate = Gate(saver)
    first, errors = run_in_thread(gate.graph, {"items": ["A"]}, mode)
    try:
        assert gate.entered.wait(10)
        # While the first run waits inside `slow`, a second run advances the thread to the end.
        assert run(gate.graph, {"items": ["B"]}, mode, thread()) == {"items": ["A", "B", "slow2"]}
        winner = history(gate.graph, thread(), mode)
    finally:
        gate.release.set()
        first.join(10)
    assert not first.is_alive()

    assert len(errors) == 1 and isinstance(errors[0], ThreadConflictError), errors
    error = errors[0]
    assert error.thread_id == "1"
    assert "thread '1'" in str(error)
    assert error.found == winner[0].config["configurable"]["checkpoint_id"]

    # The loser saved no checkpoint after the conflict: the thread is exactly as the winner left it.
    assert history(gate.graph, thread(), mode) == winner
    # As LangGraph numbers them (checked): the new input discards the pending `slow`, START re-triggers it.
    assert steps(winner) == [("loop", 3), ("loop", 2), ("input", 1), ("loop", 0), ("input", -1)]
    snapshot = get_state(gate.graph, thread(), mode)
    assert snapshot.values == {"items": ["A", "B", "slow2"]}
    assert snapshot.next == ()
    assert snapshot.tasks == ()
    assert saver.get_tuple(thread()).pending_writes == []


def test_after_a_conflict_the_thread_accepts_new_runs(saver: Any, mode: str) -> None:
    gate = Gate(saver)
    first, errors = run_in_thread(gate.graph, {"items": ["A"]}, mode)
    try:
        assert gate.entered.wait(10)
        run(gate.graph, {"items": ["B"]}, mode, thread())
    finally:
        gate.release.set()
        first.join(10)
    assert [type(e) for e in errors] == [ThreadConflictError]
    assert run(gate.graph, {"items": ["C"]}, mode, thread()) == {"items": ["A", "B", "slow2", "C", "slow3"]}


def test_runs_on_different_threads_do_not_conflict(saver: Any, mode: str) -> None:
    gate = Gate(saver)
    first, errors = run_in_thread(gate.graph, {"items": ["A"]}, mode)
    try:
        assert gate.entered.wait(10)
        assert run(gate.graph, {"items": ["B"]}, mode, thread("2")) == {"items": ["B", "slow2"]}
    finally:
        gate.release.set()
        first.join(10)
    assert errors == []
    assert get_state(gate.graph, thread("1"), mode).values == {"items": ["A", "slow1"]}


def test_update_state_on_an_advanced_thread_conflicts(saver: Any, mode: str) -> None:
    gate = Gate(saver)
    first, errors = run_in_thread(gate.graph, {"items": ["A"]}, mode)
    try:
        assert gate.entered.wait(10)
        update_state(gate.graph, thread(), {"items": ["U"]}, mode)
    finally:
        gate.release.set()
        first.join(10)
    assert [type(e) for e in errors] == [ThreadConflictError]
    snapshot = get_state(gate.graph, thread(), mode)
    assert snapshot.values == {"items": ["A", "U"]}
    assert snapshot.metadata is not None and snapshot.metadata["source"] == "update"


@pytest.mark.parametrize("durability", ["sync", "exit"])
def test_conflict_is_detected_with_any_durability(saver: Any, mode: str, durability: str) -> None:
    gate = Gate(saver)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            if mode == "sync":
                gate.graph.invoke({"items": ["A"]}, thread(), durability=durability)
            else:
                asyncio.run(gate.graph.ainvoke({"items": ["A"]}, thread(), durability=durability))
        except BaseException as exc:
            errors.append(exc)

    first = threading.Thread(target=target)
    first.start()
    try:
        assert gate.entered.wait(10)
        run(gate.graph, {"items": ["B"]}, mode, thread())
        winner = [s.config for s in history(gate.graph, thread(), mode)]
    finally:
        gate.release.set()
        first.join(10)
    assert [type(e) for e in errors] == [ThreadConflictError]
    assert [s.config for s in history(gate.graph, thread(), mode)] == winner
    # With durability="exit" the loser had saved nothing, so the winner started from an empty thread.
    expected = ["A", "B", "slow2"] if durability == "sync" else ["B", "slow2"]
    assert get_state(gate.graph, thread(), mode).values == {"items": expected}
