"""One commit per step: a step's last finishing task's writes and the checkpoint after it share one
transaction, without weakening exactly-once (held-back writes are saved whenever no checkpoint follows)."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.graph import END, START, StateGraph
from tests.persistence.conftest import history, run, stream, thread


class Items(TypedDict, total=False):
    items: Annotated[list[str], operator.add]


def chain(saver: Any, calls: list[str], size: int = 5, fail_at: int | None = None) -> Any:
    builder = StateGraph(Items)
    previous = START
    for i in range(size):

        def node(state: Items, i: int = i) -> Items:
            calls.append(f"n{i}")
            if i == fail_at:
                raise ValueError("boom")
            return {"items": [f"n{i}"]}

        builder.add_node(f"n{i}", node)
        builder.add_edge(previous, f"n{i}")
        previous = f"n{i}"
    builder.add_edge(previous, END)
    return builder.compile(checkpointer=saver)


def count_write_transactions(saver: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    counter = [0]
    original = saver._write_tx

    def counted(thread_id: str | None = None) -> Any:
        counter[0] += 1
        return original(thread_id)

    monkeypatch.setattr(saver, "_write_tx", counted)
    if getattr(saver, "_native_async", False):  # its async methods open the async transactions
        aoriginal = saver._awrite_tx

        def acounted(thread_id: str | None = None) -> Any:
            counter[0] += 1
            return aoriginal(thread_id)

        monkeypatch.setattr(saver, "_awrite_tx", acounted)
    return counter


def test_a_step_costs_one_write_transaction(saver: Any, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = count_write_transactions(saver, monkeypatch)
    graph = chain(saver, [])
    # durability="sync": each step's commit on its own (the default, "async", groups them: test_durability.py).
    result = run(graph, {"items": ["a"]}, mode, thread(), durability="sync")
    assert result == {"items": ["a", "n0", "n1", "n2", "n3", "n4"]}
    saved = history(graph, thread(), mode)
    assert len(saved) == 7
    # One per checkpoint, plus claiming and releasing the thread.
    assert counter[0] == len(saved) + 2
    # Each task's writes are still saved against the checkpoint it ran from.
    assert [[(c, v) for _, c, v in saver.get_tuple(s.config).pending_writes] for s in saved[1:3]] == [
        [("items", ["n4"])],
        [("items", ["n3"]), ("branch:to:n4", None)],
    ]


def test_writes_held_back_are_saved_when_the_stream_is_closed(saver: Any, mode: str) -> None:
    calls: list[str] = []
    graph = chain(saver, calls, size=3)
    if mode == "sync":
        chunks = graph.stream({"items": ["a"]}, thread(), stream_mode="updates")
        assert next(chunks) == {"n0": {"items": ["n0"]}}
        chunks.close()
    else:
        import asyncio

        async def first() -> None:
            chunks = graph.astream({"items": ["a"]}, thread(), stream_mode="updates")
            assert await anext(chunks) == {"n0": {"items": ["n0"]}}
            await chunks.aclose()

        asyncio.run(first())
    # n0 finished but its checkpoint was never written: its writes were saved on close, so it never reruns.
    assert calls == ["n0"]
    assert run(graph, None, mode, thread()) == {"items": ["a", "n0", "n1", "n2"]}
    assert calls == ["n0", "n1", "n2"]


def test_a_failing_last_task_still_saves_its_error(saver: Any, mode: str) -> None:
    calls: list[str] = []
    graph = chain(saver, calls, size=2, fail_at=1)
    with pytest.raises(ValueError, match="boom"):
        run(graph, {"items": ["a"]}, mode, thread())
    head = saver.get_tuple(thread())
    assert [(c, v) for _, c, v in head.pending_writes] == [("__error__", "ValueError('boom')")]
    # Resuming re-runs only the failed task (as LangGraph does), never the finished one before it.
    with pytest.raises(ValueError, match="boom"):
        stream(graph, None, mode, thread(), stream_mode="updates")
    assert calls == ["n0", "n1", "n1"]
