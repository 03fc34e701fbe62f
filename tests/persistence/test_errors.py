"""A failing node: the error is saved with the step, and after a fix only the failed task runs again."""

from __future__ import annotations

import operator
import time
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.graph import END, START, StateGraph
from tests.persistence.conftest import get_state, history, run, starts, steps, thread


class Items(TypedDict, total=False):
    items: Annotated[list[str], operator.add]


class Flaky:
    """Graph START -> (good, bad) -> after -> END, where `bad` raises until `broken` is cleared.

    `bad` fails only once `good`'s writes are saved, so the failure always finds a finished sibling.
    """

    def __init__(self, saver: Any) -> None:
        self.saver = saver
        self.calls: list[str] = []
        self.broken = True
        builder = StateGraph(Items)
        builder.add_node("good", self.node("good"))
        builder.add_node("bad", self.node("bad"))
        builder.add_node("after", self.node("after"))
        builder.add_edge(START, "good")
        builder.add_edge(START, "bad")
        builder.add_edge(["good", "bad"], "after")
        builder.add_edge("after", END)
        self.graph = builder.compile(checkpointer=saver)

    def node(self, name: str) -> Any:
        def call(state: Items) -> Items:
            self.calls.append(name)
            if name == "bad" and self.broken:
                self.wait_for_good()
                raise ValueError("boom")
            return {"items": [name]}

        return call

    def wait_for_good(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            saved = self.saver.get_tuple(thread())  # None until the first save commits (in the background)
            if saved is not None and any(value == ["good"] for _, _, value in saved.pending_writes or ()):
                return
            time.sleep(0.002)
        raise TimeoutError("good's writes were never saved")


def test_a_failing_node_raises_its_own_exception(saver: Any, mode: str) -> None:
    flaky = Flaky(saver)
    with pytest.raises(ValueError, match=starts("boom")):
        run(flaky.graph, {"items": ["x"]}, mode, thread())
    assert sorted(flaky.calls) == ["bad", "good"]
    # The step that failed saved no checkpoint after it.
    assert steps(history(flaky.graph, thread(), mode)) == [("loop", 0), ("input", -1)]


def test_get_state_shows_the_error_in_tasks(saver: Any, mode: str) -> None:
    flaky = Flaky(saver)
    with pytest.raises(ValueError):
        run(flaky.graph, {"items": ["x"]}, mode, thread())
    snapshot = get_state(flaky.graph, thread(), mode)
    assert snapshot.values == {"items": ["x", "good"]}  # the sibling's saved writes
    assert snapshot.next == ("bad",)
    tasks = {t.name: t for t in snapshot.tasks}
    assert set(tasks) == {"good", "bad"}
    assert tasks["good"].error is None
    assert tasks["good"].result == {"items": ["good"]}
    assert tasks["bad"].result is None
    assert tasks["bad"].error is not None
    assert "ValueError" in repr(tasks["bad"].error) and "boom" in str(tasks["bad"].error)


def test_a_checkpoint_lists_its_tasks_in_node_order(saver: Any, mode: str) -> None:
    flaky = Flaky(saver)
    with pytest.raises(ValueError):
        run(flaky.graph, {"items": ["x"]}, mode, thread())
    snapshot = history(flaky.graph, thread(), mode)[0]
    assert snapshot.next == ("good", "bad")  # as added to the builder, not alphabetical
    assert [t.name for t in snapshot.tasks] == ["good", "bad"]


def test_saved_task_error_reads_back_as_its_repr(saver: Any, mode: str) -> None:
    flaky = Flaky(saver)
    with pytest.raises(ValueError):
        run(flaky.graph, {"items": ["x"]}, mode, thread())
    bad = next(t for t in get_state(flaky.graph, thread(), mode).tasks if t.name == "bad")
    assert bad.error == "ValueError('boom')"


def test_after_a_fix_only_the_failed_task_runs_again(saver: Any, mode: str) -> None:
    flaky = Flaky(saver)
    with pytest.raises(ValueError):
        run(flaky.graph, {"items": ["x"]}, mode, thread())
    flaky.broken = False
    flaky.calls.clear()
    assert run(flaky.graph, None, mode, thread()) == {"items": ["x", "bad", "good", "after"]}
    assert flaky.calls == ["bad", "after"]
    assert steps(history(flaky.graph, thread(), mode)) == [("loop", 2), ("loop", 1), ("loop", 0), ("input", -1)]
    snapshot = get_state(flaky.graph, thread(), mode)
    assert snapshot.next == ()
    assert snapshot.tasks == ()


def test_a_failure_that_persists_keeps_the_thread_where_it_was(saver: Any, mode: str) -> None:
    flaky = Flaky(saver)
    for _ in range(2):
        with pytest.raises(ValueError, match=starts("boom")):
            run(flaky.graph, {"items": ["x"]} if not flaky.calls else None, mode, thread())
    assert sorted(flaky.calls) == ["bad", "bad", "good"]
    assert steps(history(flaky.graph, thread(), mode)) == [("loop", 0), ("input", -1)]
    assert get_state(flaky.graph, thread(), mode).next == ("bad",)
