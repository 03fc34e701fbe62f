"""One writer per thread (graphrt only): a run claims its thread before it writes anything; a second run
on a busy thread is refused before it writes anything (or waits, with `multitask_strategy="enqueue"`).
A write that finds the thread advanced without a claim is refused too. LangGraph silently forks the
history instead."""

from __future__ import annotations

import asyncio
import operator
import re
import threading
import time
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.checkpoint.base import copy_checkpoint, empty_checkpoint
from graphrt.checkpoint.base.id import uuid6
from graphrt.errors import ThreadConflictError
from graphrt.graph import END, START, StateGraph
from graphrt.types import StateUpdate
from tests.persistence.conftest import bulk_update_state, exact, get_state, history, run, steps, thread, update_state


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


def run_in_thread(
    graph: Any, input: Any, mode: str, config: Any = None, **kw: Any
) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            if mode == "sync":
                graph.invoke(input, config or thread(), **kw)
            else:
                asyncio.run(graph.ainvoke(input, config or thread(), **kw))
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=target)
    worker.start()
    return worker, errors


BUSY = (
    "Concurrent run on thread '1': another run is using this thread. This run was not applied: nothing of it "
    "was written, so retrying it is safe. Retry after the other run finishes, use a different thread_id, or pass "
    "config={'configurable': {..., 'multitask_strategy': 'enqueue'}} to wait for the thread."
)


def test_a_run_on_a_busy_thread_is_refused_before_it_writes_anything(saver: Any, mode: str) -> None:
    gate = Gate(saver)
    first, errors = run_in_thread(gate.graph, {"items": ["A"]}, mode)
    try:
        assert gate.entered.wait(10)
        deadline = time.monotonic() + 10
        while len(before := history(gate.graph, thread(), mode)) < 2 and time.monotonic() < deadline:
            time.sleep(0.002)  # the first run's saves so far are committed in the background
        assert len(before) == 2
        with pytest.raises(ThreadConflictError, match=exact(BUSY)) as refused:
            run(gate.graph, {"items": ["B"]}, mode, thread())
        assert refused.value.busy and refused.value.thread_id == "1"
        assert history(gate.graph, thread(), mode) == before  # the refused run left nothing
    finally:
        gate.release.set()
        first.join(10)
    assert errors == []
    assert get_state(gate.graph, thread(), mode).values == {"items": ["A", "slow1"]}
    assert steps(history(gate.graph, thread(), mode)) == [("loop", 1), ("loop", 0), ("input", -1)]
    assert gate.calls == 1


def test_retrying_a_refused_run_applies_it_once(saver: Any, mode: str) -> None:
    gate = Gate(saver)
    first, _ = run_in_thread(gate.graph, {"items": ["A"]}, mode)
    try:
        assert gate.entered.wait(10)
        with pytest.raises(ThreadConflictError):
            run(gate.graph, {"items": ["B"]}, mode, thread())
    finally:
        gate.release.set()
        first.join(10)
    # Following the error's advice: retry after the other run finished. B appears once.
    assert run(gate.graph, {"items": ["B"]}, mode, thread()) == {"items": ["A", "slow1", "B", "slow2"]}
    assert len(history(gate.graph, thread(), mode)) == 6


def test_enqueue_waits_for_the_thread_and_then_runs(saver: Any, mode: str) -> None:
    gate = Gate(saver)
    first, errors = run_in_thread(gate.graph, {"items": ["A"]}, mode)
    try:
        assert gate.entered.wait(10)
        second, second_errors = run_in_thread(
            gate.graph, {"items": ["B"]}, mode, thread(multitask_strategy="enqueue", multitask_timeout=10)
        )
        second.join(0.3)
        assert second.is_alive()  # waiting, not refused
        assert len(history(gate.graph, thread(), mode)) == 2  # and it wrote nothing while waiting
    finally:
        gate.release.set()
        first.join(10)
    second.join(10)
    assert errors == [] and second_errors == []
    assert get_state(gate.graph, thread(), mode).values == {"items": ["A", "slow1", "B", "slow2"]}
    # The option is per call and never lands in the checkpoint metadata.
    assert all("multitask_strategy" not in (s.metadata or {}) for s in history(gate.graph, thread(), mode))


def test_enqueue_gives_up_after_its_timeout_and_writes_nothing(saver: Any, mode: str) -> None:
    gate = Gate(saver)
    first, _ = run_in_thread(gate.graph, {"items": ["A"]}, mode)
    try:
        assert gate.entered.wait(10)
        config = thread(multitask_strategy="enqueue", multitask_timeout=0.2)
        with pytest.raises(ThreadConflictError, match=r"another run is using this thread \(waited 0.2 s\)"):
            run(gate.graph, {"items": ["B"]}, mode, config)
        assert len(history(gate.graph, thread(), mode)) == 2
    finally:
        gate.release.set()
        first.join(10)
    assert get_state(gate.graph, thread(), mode).values == {"items": ["A", "slow1"]}


@pytest.mark.parametrize(
    ("configurable", "message"),
    [
        ({"multitask_strategy": "interrupt"}, "Unknown multitask_strategy 'interrupt'"),
        ({"multitask_timeout": 0}, "multitask_timeout must be a positive number of seconds, got 0"),
    ],
)
def test_bad_ownership_options_are_refused_before_anything_is_written(
    saver: Any, mode: str, configurable: dict[str, Any], message: str
) -> None:
    gate = Gate(saver)
    gate.calls = 1  # never block
    with pytest.raises(ValueError, match=re.escape(message)):
        run(gate.graph, {"items": ["A"]}, mode, thread(**configurable))
    assert history(gate.graph, thread(), mode) == []


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


def test_update_state_honours_the_owner(saver: Any, mode: str) -> None:
    gate = Gate(saver)
    first, errors = run_in_thread(gate.graph, {"items": ["A"]}, mode)
    try:
        assert gate.entered.wait(10)
        with pytest.raises(ThreadConflictError, match=exact(BUSY)):
            update_state(gate.graph, thread(), {"items": ["U"]}, mode)
        with pytest.raises(ThreadConflictError, match=exact(BUSY)):
            bulk_update_state(gate.graph, thread(), [[StateUpdate({"items": ["U"]})]], mode)
    finally:
        gate.release.set()
        first.join(10)
    assert errors == []
    update_state(gate.graph, thread(multitask_strategy="enqueue"), {"items": ["U"]}, mode)
    snapshot = get_state(gate.graph, thread(), mode)
    assert snapshot.values == {"items": ["A", "slow1", "U"]}
    assert snapshot.metadata is not None and snapshot.metadata["source"] == "update"


@pytest.mark.parametrize("durability", ["sync", "exit"])
def test_a_write_behind_the_owners_back_stops_the_run(saver: Any, mode: str, durability: str) -> None:
    """Someone writes the thread without claiming it (a raw saver call): the run is refused at its next write."""
    gate = Gate(saver)
    first, errors = run_in_thread(gate.graph, {"items": ["A"]}, mode, durability=durability)
    try:
        assert gate.entered.wait(10)
        head = saver.get_tuple(thread())
        checkpoint = copy_checkpoint(head.checkpoint) if head else empty_checkpoint()
        checkpoint["id"] = str(uuid6())
        parent = head.config if head else thread()
        intruder = saver.put(parent, checkpoint, {"source": "update", "step": 99}, {})
    finally:
        gate.release.set()
        first.join(10)
    assert [type(e) for e in errors] == [ThreadConflictError]
    assert not errors[0].busy
    assert (
        saver.get_tuple(thread()).config["configurable"]["checkpoint_id"] == intruder["configurable"]["checkpoint_id"]
    )
