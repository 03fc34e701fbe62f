"""durability="async" (the default): saves are committed by a background writer while the next step runs,
the saves that queue up behind a commit in flight are committed together (group commit), and the run
waits for all of them before it returns, raises, shows an interrupt or lets go of its thread.

Runs on every saver of the persistence suite (memory, SQLite files, Redis, PostgreSQL), sync and async.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.checkpoint._core import CoreSaver, PreparedSave
from graphrt.checkpoint.base import UnserializableValueError
from graphrt.checkpoint.memory import InMemorySaver
from graphrt.checkpoint.sqlite import SqliteSaver
from graphrt.errors import ThreadConflictError
from graphrt.func import entrypoint, task
from graphrt.graph import END, START, StateGraph
from graphrt.pregel import _io
from graphrt.pregel._timer import DelayedStarts
from graphrt.types import Command, interrupt
from tests.persistence.conftest import BACKENDS, mode, run, saver, thread

IO_SAVERS = pytest.mark.parametrize("saver", [b for b in BACKENDS if b != "memory"], indirect=True)
"""Savers that commit in the background under durability="async" (InMemorySaver always saves at once)."""

__all__ = ("mode", "saver")  # fixtures, imported for pytest

ROOT = Path(__file__).resolve().parents[1]


class Items(TypedDict, total=False):
    items: Annotated[list[str], operator.add]


def chain(saver: Any, size: int, hook: Any = None) -> Any:
    """START -> n0 -> ... -> n{size-1} -> END; each node appends its name (and calls `hook(i)` first)."""
    builder = StateGraph(Items)
    previous = START
    for i in range(size):

        def node(state: Items, i: int = i) -> Items:
            if hook is not None:
                hook(i)
            return {"items": [f"n{i}"]}

        builder.add_node(f"n{i}", node)
        builder.add_edge(previous, f"n{i}")
        previous = f"n{i}"
    builder.add_edge(previous, END)
    return builder.compile(checkpointer=saver)


class Recorder:
    """Wraps a saver's `prepare_save`/`commit_saves`: what the run produced, and the groups committed."""

    def __init__(self, saver: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.prepared: list[PreparedSave] = []
        self.groups: list[list[PreparedSave]] = []
        self.releases: list[str | None] = []
        """Per group: the claim whose lease it dropped (None: none)."""
        self.lock = threading.Lock()
        prepare, commit = saver.prepare_save, saver.commit_saves

        def prepare_save(*args: Any, **kwargs: Any) -> PreparedSave:
            save: PreparedSave = prepare(*args, **kwargs)
            with self.lock:
                self.prepared.append(save)
            return save

        def commit_saves(saves: Any, **kwargs: Any) -> None:
            self.before_commit(list(saves))
            commit(saves, **kwargs)
            with self.lock:
                self.groups.append(list(saves))
                self.releases.append(kwargs.get("release_owner"))

        monkeypatch.setattr(saver, "prepare_save", prepare_save)
        monkeypatch.setattr(saver, "commit_saves", commit_saves)
        if getattr(saver, "_native_async", False):
            acommit = saver.acommit_saves

            async def acommit_saves(saves: Any, **kwargs: Any) -> None:
                await asyncio.to_thread(self.before_commit, list(saves))
                await acommit(saves, **kwargs)
                with self.lock:
                    self.groups.append(list(saves))
                    self.releases.append(kwargs.get("release_owner"))

            monkeypatch.setattr(saver, "acommit_saves", acommit_saves)

    def before_commit(self, saves: list[PreparedSave]) -> None:
        """Called (off the event loop) before each group is committed; tests replace it."""

    @property
    def committed(self) -> list[PreparedSave]:
        return [save for group in self.groups for save in group]


def steps_saved(saver: Any, config: Any) -> list[int]:
    return [t.metadata["step"] for t in saver.list(config)]


# ---------------------------------------------------------------- which savers write in the background


def test_only_savers_that_do_io_write_in_the_background(tmp_path: Path) -> None:
    assert InMemorySaver.background_saves is False
    assert CoreSaver.background_saves is True
    with SqliteSaver.from_conn_string(str(tmp_path / "cp.sqlite")) as sqlite_saver:
        assert sqlite_saver.background_saves is True


def test_memory_saver_and_sync_durability_commit_before_the_next_step(mode: str) -> None:
    for memory, durability in ((InMemorySaver(), None), (InMemorySaver(), "sync")):
        seen: list[list[int]] = []

        def hook(i: int, memory: InMemorySaver = memory, seen: list[list[int]] = seen) -> None:
            seen.append(steps_saved(memory, thread()))

        run(chain(memory, 4, hook), {"items": []}, mode, thread(), durability=durability)
        # Each node sees every checkpoint before it saved: nothing runs ahead of a commit.
        assert seen == [[0, -1], [1, 0, -1], [2, 1, 0, -1], [3, 2, 1, 0, -1]]


@IO_SAVERS
def test_sync_durability_never_uses_the_background_writer(
    saver: Any, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(saver, monkeypatch)
    seen: list[int] = []
    graph = chain(saver, 3, hook=lambda i: seen.append(len(steps_saved(saver, thread()))))
    run(graph, {"items": []}, mode, thread(), durability="sync")
    assert recorder.prepared == [] and recorder.groups == []
    assert seen == [2, 3, 4]


# ---------------------------------------------------------------- overlap and group commit


@IO_SAVERS
def test_the_next_step_runs_while_the_previous_save_commits(
    saver: Any, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(saver, monkeypatch)
    in_flight, release = threading.Event(), threading.Event()
    overlapped: list[bool] = []

    def block_first(saves: list[PreparedSave]) -> None:
        if not in_flight.is_set():
            in_flight.set()
            assert release.wait(10), "the run waited for the commit instead of running its next step"

    recorder.before_commit = block_first  # type: ignore[method-assign]

    def hook(i: int) -> None:
        if i == 1:
            # n1 runs while the first commit (the input's checkpoint at least) is still in flight.
            overlapped.append(in_flight.wait(10) and not release.is_set())
            release.set()

    graph = chain(saver, 3, hook)
    assert run(graph, {"items": []}, mode, thread()) == {"items": ["n0", "n1", "n2"]}
    assert overlapped == [True]
    assert steps_saved(saver, thread()) == [3, 2, 1, 0, -1]


@IO_SAVERS
def test_saves_queued_behind_a_commit_are_committed_in_one_transaction(
    saver: Any, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(saver, monkeypatch)
    release = threading.Event()
    first = threading.Event()

    def block_first(saves: list[PreparedSave]) -> None:
        if not first.is_set():
            first.set()
            assert release.wait(10)

    recorder.before_commit = block_first  # type: ignore[method-assign]
    transactions = count_transactions(saver, monkeypatch)
    size = 20
    graph = chain(saver, size, hook=lambda i: release.set() if i == size - 1 else None)
    assert run(graph, {"items": []}, mode, thread())["items"] == [f"n{i}" for i in range(size)]
    # Every save was committed, in the order the run made them, in far fewer transactions than saves:
    # what the run made while a commit was held (or its writer not yet scheduled) went in one group.
    assert [id(s) for s in recorder.committed] == [id(s) for s in recorder.prepared]
    assert len(recorder.prepared) == size + 2  # the input's checkpoint, the first step's, one per node
    assert len(recorder.groups) <= 3, [len(g) for g in recorder.groups]
    assert max(len(g) for g in recorder.groups) >= size // 2, [len(g) for g in recorder.groups]
    # Claim, the groups, release (in the last group when it was still queued at the end): not one per step.
    assert transactions[0] == len(recorder.groups) + 2 - sum(owner is not None for owner in recorder.releases)
    saved = list(saver.list(thread()))
    assert [t.metadata["step"] for t in saved] == list(range(size, -2, -1))
    # Each task's writes are saved against the checkpoint it ran from (exactly-once replay keeps working).
    for newer, older in itertools.pairwise(saved[:-1]):
        assert [(c, v) for _, c, v in older.pending_writes if c == "items"] == [
            ("items", newer.checkpoint["channel_values"]["items"][-1:])
        ]


def test_lists_are_still_stored_as_deltas_when_steps_run_ahead(tmp_path: Path, mode: str) -> None:
    """The codec remembers a list when its save is prepared, so the next step (prepared before that save
    commits) is still a delta on it."""
    with SqliteSaver.from_conn_string(str(tmp_path / "cp.sqlite")) as saver:
        graph = chain(saver, 30)
        run(graph, {"items": []}, mode, thread())
        rows = saver.conn.execute(
            "SELECT base_version IS NOT NULL, depth FROM graphrt_checkpoint_blobs WHERE channel = 'items'"
        ).fetchall()
    deltas = [depth for is_delta, depth in rows if is_delta]
    assert len(deltas) >= 25
    assert max(deltas) >= 25  # one chain, not a snapshot per step


# ---------------------------------------------------------------- flush points


def slow_commits(saver: Any, monkeypatch: pytest.MonkeyPatch, seconds: float = 0.05) -> Recorder:
    recorder = Recorder(saver, monkeypatch)
    recorder.before_commit = lambda saves: time.sleep(seconds)  # type: ignore[method-assign]
    return recorder


def test_a_run_returns_only_after_every_save_is_committed(
    saver: Any, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if saver.background_saves:
        slow_commits(saver, monkeypatch)
    graph = chain(saver, 5)
    run(graph, {"items": []}, mode, thread())
    assert steps_saved(saver, thread()) == [5, 4, 3, 2, 1, 0, -1]


def test_a_run_raises_only_after_every_save_is_committed(
    saver: Any, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if saver.background_saves:
        slow_commits(saver, monkeypatch)

    def hook(i: int) -> None:
        if i == 3:
            raise ValueError("boom")

    graph = chain(saver, 5, hook)
    with pytest.raises(ValueError, match="boom"):
        run(graph, {"items": []}, mode, thread())
    head = saver.get_tuple(thread())
    assert head.metadata["step"] == 3
    assert [(c, v) for _, c, v in head.pending_writes] == [("__error__", "ValueError('boom')")]


def interrupting(saver: Any) -> Any:
    def ask(state: Items) -> Items:
        return {"items": [interrupt("name?")]}

    builder = StateGraph(Items)
    builder.add_node("a", lambda s: {"items": ["a"]})
    builder.add_node("b", lambda s: {"items": ["b"]})
    builder.add_node("ask", ask)
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "ask")
    builder.add_edge("ask", END)
    return builder.compile(checkpointer=saver)


@IO_SAVERS
def test_an_interrupt_is_shown_only_after_every_save_is_committed(
    saver: Any, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow_commits(saver, monkeypatch)
    graph = interrupting(saver)
    seen: list[Any] = []

    def look() -> None:
        state = graph.get_state(thread())
        seen.append((state.next, [i.value for i in state.interrupts]))

    if mode == "sync":
        for chunk in graph.stream({"items": []}, thread(), stream_mode="updates"):
            if "__interrupt__" in chunk:
                look()  # while the stream is suspended on the interrupt
    else:

        async def consume() -> None:
            async for chunk in graph.astream({"items": []}, thread(), stream_mode="updates"):
                if "__interrupt__" in chunk:
                    await asyncio.to_thread(look)

        asyncio.run(consume())
    assert seen == [(("ask",), ["name?"])]
    assert run(graph, Command(resume="x"), mode, thread()) == {"items": ["a", "b", "x"]}


@IO_SAVERS
def test_the_thread_is_released_only_after_every_save_is_committed(
    saver: Any, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = slow_commits(saver, monkeypatch)
    released_after: list[int] = []
    original = saver._claims._untrack

    def untrack(owner: str) -> None:
        released_after.append(len(recorder.committed))
        original(owner)

    monkeypatch.setattr(saver._claims, "_untrack", untrack)
    graph = chain(saver, 4)
    run(graph, {"items": []}, mode, thread())
    assert released_after == [len(recorder.prepared)] == [6]


@IO_SAVERS
def test_the_last_saves_and_the_thread_release_share_one_transaction(
    saver: Any, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(saver, monkeypatch)
    transactions = count_transactions(saver, monkeypatch)

    def hook(i: int) -> None:
        if i == 2:
            deadline = time.monotonic() + 10
            while saver_pending(recorder) and time.monotonic() < deadline:
                time.sleep(0.005)  # what came before is committed: the last checkpoint is queued alone at the end

    graph = chain(saver, 3, hook)
    run(graph, {"items": []}, mode, thread())
    assert recorder.releases[-1] is not None and all(owner is None for owner in recorder.releases[:-1])
    assert transactions[0] == 1 + len(recorder.groups)  # the claim, then the groups; no release of its own
    assert stored_lease(saver) is None
    # The thread is free: the next run claims it at once.
    assert run(graph, None, mode, thread(), durability="sync") == {"items": ["n0", "n1", "n2"]}
    assert stored_lease(saver) is None


def test_a_claim_held_around_runs_is_not_released_by_their_saves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with SqliteSaver.from_conn_string(str(tmp_path / "cp.sqlite")) as sqlite_saver:
        recorder = Recorder(sqlite_saver, monkeypatch)
        graph = chain(sqlite_saver, 2)
        with sqlite_saver.claim_thread(thread()):
            graph.invoke({"items": []}, thread())
            assert stored_lease(sqlite_saver) is not None  # still the caller's
            graph.invoke({"items": []}, thread())
        assert stored_lease(sqlite_saver) is None
        assert recorder.releases and all(owner is None for owner in recorder.releases)


def saver_pending(recorder: Recorder) -> bool:
    with recorder.lock:
        return len(recorder.committed) < len(recorder.prepared)


def count_transactions(saver: Any, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    transactions = [0]
    original = saver._write_tx

    def counted(thread_id: str | None = None) -> Any:
        transactions[0] += 1
        return original(thread_id)

    monkeypatch.setattr(saver, "_write_tx", counted)
    if getattr(saver, "_native_async", False):
        aoriginal = saver._awrite_tx

        def acounted(thread_id: str | None = None) -> Any:
            transactions[0] += 1
            return aoriginal(thread_id)

        monkeypatch.setattr(saver, "_awrite_tx", acounted)
    return transactions


def stored_lease(saver: Any) -> Any:
    if getattr(saver, "_async_only", False):
        return None  # read through its sync face only from another thread; covered by the sync savers
    with saver._read_tx() as tx:
        return tx.lease("1")


# ---------------------------------------------------------------- errors


@IO_SAVERS
def test_a_failed_background_commit_fails_the_run_at_its_next_step(
    saver: Any, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(saver, monkeypatch)
    failed = threading.Event()
    ran: list[int] = []

    def fail_second(saves: list[PreparedSave]) -> None:
        if len(recorder.prepared) > 2 and any(s is recorder.prepared[2] for s in saves):  # the checkpoint after n0
            failed.set()
            raise ThreadConflictError("1", "", expected="a", found="b")

    recorder.before_commit = fail_second  # type: ignore[method-assign]

    def hook(i: int) -> None:
        ran.append(i)
        if i == 0:
            time.sleep(0.05)  # the checkpoints before n0 are committed meanwhile
        if i == 2:
            assert failed.wait(10)

    graph = chain(saver, 10, hook)
    with pytest.raises(ThreadConflictError):
        run(graph, {"items": []}, mode, thread())
    # The error surfaced at a save right after it (n1's or n2's): no later node ran, nothing after it was committed.
    assert ran in ([0, 1], [0, 1, 2])
    assert steps_saved(saver, thread()) == [0, -1]


@IO_SAVERS
def test_a_failed_background_commit_is_raised_at_the_end(
    saver: Any, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(saver, monkeypatch)
    done = threading.Event()

    def fail_last(saves: list[PreparedSave]) -> None:
        if any(s.put is not None and s.put.checkpoint_id and done.is_set() for s in saves):
            raise ConnectionError("lost the connection")

    recorder.before_commit = fail_last  # type: ignore[method-assign]
    graph = chain(saver, 3, hook=lambda i: done.set() if i == 2 else None)
    with pytest.raises(ConnectionError, match="lost the connection"):
        run(graph, {"items": []}, mode, thread())
    # n2 runs at step 3, so step 3's save fails; the saves before it may be committed (in one group or several)
    # before n2 starts or after (then they fail too): what is saved is an unbroken history up to some step.
    saved = steps_saved(saver, thread())
    assert saved in ([2, 1, 0, -1], [1, 0, -1], [0, -1], [-1], [])


def test_an_unserializable_value_fails_at_its_step_naming_its_node(saver: Any, mode: str) -> None:
    ran: list[int] = []
    builder = StateGraph(Items)
    builder.add_node("good", lambda s: ran.append(0) or {"items": ["ok"]})
    builder.add_node("bad", lambda s: ran.append(1) or {"items": [object()]})
    builder.add_node("after", lambda s: ran.append(2) or {"items": ["after"]})
    builder.add_edge(START, "good")
    builder.add_edge("good", "bad")
    builder.add_edge("bad", "after")
    graph = builder.compile(checkpointer=saver)
    with pytest.raises(UnserializableValueError) as info:
        run(graph, {"items": []}, mode, thread())
    assert info.value.node == "bad"
    assert ran == [0, 1]
    # What came before it was committed.
    assert steps_saved(saver, thread()) == [1, 0, -1]


# ---------------------------------------------------------------- order across namespaces


class Sub(TypedDict, total=False):
    items: Annotated[list[str], operator.add]


def nested(saver: Any) -> Any:
    @task
    def double(x: str) -> str:
        return x * 2

    inner = StateGraph(Sub)
    inner.add_node("i1", lambda s: {"items": ["i1"]})
    inner.add_node("i2", lambda s: {"items": [double("i").result()]})
    inner.add_edge(START, "i1")
    inner.add_edge("i1", "i2")
    inner.add_edge("i2", END)
    sub = inner.compile()

    outer = StateGraph(Items)
    outer.add_node("before", lambda s: {"items": ["before"]})
    outer.add_node("sub", sub)
    outer.add_node("after", lambda s: {"items": [double("a").result()]})
    outer.add_edge(START, "before")
    outer.add_edge("before", "sub")
    outer.add_edge("sub", "after")
    outer.add_edge("after", END)
    return outer.compile(checkpointer=saver)


def snapshot(saver: Any) -> list[Any]:
    """Every namespace's history, without ids: (ns, step, source, values, pending writes)."""
    out = []
    for t in saver.list(None):
        ns = t.config["configurable"]["checkpoint_ns"].split(":")[0]
        writes = sorted((c, repr(v)) for _, c, v in t.pending_writes)
        out.append((ns, t.metadata["step"], t.metadata["source"], t.checkpoint["channel_values"].get("items"), writes))
    return sorted(out, key=repr)


@IO_SAVERS
def test_nested_runs_and_tasks_commit_in_the_order_they_were_made(
    saver: Any, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = nested(saver)
    expected = run(graph, {"items": []}, mode, thread("a"), durability="sync")
    assert expected == {"items": ["before", "before", "i1", "ii", "aa"]}
    sync_history = snapshot(saver)
    saver.delete_thread("a")
    recorder = slow_commits(saver, monkeypatch, 0.01)
    assert run(graph, {"items": []}, mode, thread("a")) == expected
    # One writer for the root and its nested runs: commits follow production order exactly.
    assert [id(s) for s in recorder.committed] == [id(s) for s in recorder.prepared]
    namespaces = [s.checkpoint_ns.split(":")[0] for s in recorder.committed]
    assert namespaces[0] == "" and "sub" in namespaces and namespaces[-1] == ""
    # A task's writes come before the checkpoint that follows them, in every namespace.
    for i, save in enumerate(recorder.committed):
        if save.put is not None and save.parent is not None:
            later = recorder.committed[i + 1 :]
            assert not any(s.parent == save.parent and s.writes and s.put is None for s in later)
    assert snapshot(saver) == sync_history


def test_functional_api_tasks_are_saved_in_order(saver: Any, mode: str) -> None:
    calls: list[int] = []

    @task
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    @entrypoint(checkpointer=saver)
    def main(n: int) -> list[int]:
        return [square(i).result() for i in range(n)]

    assert run(main, 6, mode, thread()) == [0, 1, 4, 9, 16, 25]
    assert saver.get_tuple(thread()).metadata["step"] == 0
    # Every task's result was saved against the checkpoint its entrypoint ran from, before the one after it.
    first = next(t for t in saver.list(thread()) if t.metadata["step"] == -1)
    assert sorted(v for _, c, v in first.pending_writes if c == "__return__") == [0, 1, 4, 9, 16, 25]
    assert calls == list(range(6))


# ---------------------------------------------------------------- a crash (kill -9) under "async"

CRASH_CHILD = """
import os, sys, time, operator
sys.path.insert(0, sys.argv[1])
from typing import Annotated, TypedDict
from graphrt.checkpoint.sqlite import SqliteSaver
from graphrt.graph import StateGraph, START, END

class S(TypedDict, total=False):
    items: Annotated[list, operator.add]

def make(i):
    def node(state):
        with open(sys.argv[3], "a") as log:
            log.write(f"n{i}\\n")
        if i >= 15:
            time.sleep(0.002)
        return {"items": [f"n{i}"]}
    return node

b = StateGraph(S)
prev = START
for i in range(200):
    b.add_node(f"n{i}", make(i))
    b.add_edge(prev, f"n{i}")
    prev = f"n{i}"
b.add_edge(prev, END)
with SqliteSaver.from_conn_string(sys.argv[2]) as saver:
    b.compile(checkpointer=saver).invoke({"items": []}, {"configurable": {"thread_id": "t"}})
print("finished")
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kill_after", [20, 60])
def test_a_crash_leaves_a_prefix_of_the_run_and_resuming_completes_it(tmp_path: Path, kill_after: int) -> None:
    database, log = tmp_path / "cp.sqlite", tmp_path / "ran.log"
    child = subprocess.Popen([sys.executable, "-c", CRASH_CHILD, str(ROOT), str(database), str(log)])
    try:
        deadline = time.monotonic() + 30
        while not (log.exists() and len(log.read_text().split()) >= kill_after):
            assert child.poll() is None, "the child ended before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.001)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait()
    assert child.returncode == -signal.SIGKILL

    with SqliteSaver.from_conn_string(str(database)) as saver:
        saved = list(saver.list(thread("t")))
        # A prefix of the steps: -1, 0, 1, ..., k with each checkpoint the parent of the next.
        steps = [t.metadata["step"] for t in reversed(saved)]
        assert steps == list(range(-1, len(steps) - 1))
        for older, newer in zip(reversed(saved), list(reversed(saved))[1:], strict=False):
            assert newer.parent_config["configurable"]["checkpoint_id"] == older.config["configurable"]["checkpoint_id"]
            assert newer.checkpoint["channel_values"]["items"] == [f"n{i}" for i in range(newer.metadata["step"])]
            if newer.metadata["step"] < 1:
                continue
            # Never a checkpoint without the writes of the task that produced it.
            assert ("items", newer.checkpoint["channel_values"]["items"][-1:]) in [
                (c, v) for _, c, v in older.pending_writes
            ]
        ran_before = len(log.read_text().split())
        committed = len(steps) - 1  # steps whose checkpoint was committed
        # Only saves not yet committed were lost: at most the few the writer had not reached.
        assert committed <= ran_before

        # Resuming completes the run exactly: every node's item once, in order. (A crash before the writer's
        # first commit, which starts a few milliseconds into the run, lost the whole run: it starts again.)
        graph = chain(saver, 200)
        result = graph.invoke(None if saved else {"items": []}, thread("t"))
        assert result == {"items": [f"n{i}" for i in range(200)]}
        conn = sqlite3.connect(str(database))
        try:
            (count,) = conn.execute("SELECT count(*) FROM graphrt_checkpoints WHERE thread_id = 't'").fetchone()
        finally:
            conn.close()
        assert count == 202  # the input, the first step, one per node: none twice


# ---------------------------------------------------------------- the writer itself


def test_the_writer_stops_at_its_first_error_and_keeps_raising_it() -> None:
    class Failing:
        def __init__(self) -> None:
            self.calls: list[int] = []

        def commit_saves(self, saves: list[Any], **kwargs: Any) -> None:
            self.calls.append(len(saves))
            raise ConnectionError("down")

    saver = Failing()
    committer = _io.Committer(saver, asynchronous=False)
    save: Any = PreparedSave("t", "", None, (), None, None, {"configurable": {}})
    committer.submit(save)
    committer.wait()
    with pytest.raises(ConnectionError, match="down"):
        committer.submit(save)
    with pytest.raises(ConnectionError, match="down"):
        committer.close()
    error = ValueError("the run's own error")
    committer.close(error)
    assert error.__notes__ == ["Also, a checkpoint save in the background failed: ConnectionError('down')"]
    assert saver.calls == [1]


def test_a_run_that_ends_before_the_delay_commits_its_saves_itself_and_starts_no_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A writer thread woken for a run that has ended already only takes the GIL from the next run.
    monkeypatch.setattr(_io._delayed, "delay", 60.0)
    started: list[int] = []
    monkeypatch.setattr(_io.Committer, "_start", lambda self, ticket: started.append(ticket))
    with SqliteSaver.from_conn_string(str(tmp_path / "cp.sqlite")) as saver:
        for i in range(3):
            config = {"configurable": {"thread_id": f"t{i}"}}
            assert chain(saver, 3).invoke({"items": []}, config)["items"] == ["n0", "n1", "n2"]
            assert steps_saved(saver, config) == [3, 2, 1, 0, -1]
    assert started == [] and _io._delayed._armed == {}


def test_the_timer_starts_what_is_armed_after_the_delay_unless_cancelled() -> None:
    timer = DelayedStarts(0.05)
    fired: dict[str, float] = {}
    done = threading.Event()

    def start(name: str) -> Any:
        return lambda: (fired.__setitem__(name, time.monotonic()), done.set() if name == "last" else None)

    armed = time.monotonic()
    timer.arm("kept", start("kept"))
    timer.arm("cancelled", start("cancelled"))
    timer.cancel("cancelled")
    timer.arm("replaced", start("first"))
    timer.arm("replaced", start("second"))
    timer.arm("boom", lambda: 1 / 0)  # a failing start stops nothing after it
    time.sleep(0.2)
    timer.arm("last", start("last"))
    assert done.wait(10)
    assert set(fired) == {"kept", "second", "last"}
    assert fired["kept"] - armed >= 0.05


def test_a_forked_child_gets_a_timer_of_its_own() -> None:
    timer = DelayedStarts(0.01)
    timer.arm("warm", lambda: None)  # the parent's timer thread runs

    def child() -> bool:  # the parent's thread is gone: the child's own must start
        ok = threading.Event()
        timer.arm("child", ok.set)
        return ok.wait(5)

    assert in_forked_child(child)


def in_forked_child(check: Any) -> bool:
    """`check()` in a forked child of this (threaded) process; a child that hangs is ended by an alarm."""
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+ warns of fork() with threads running
        pid = os.fork()
    if pid == 0:
        signal.alarm(20)
        os.write(write, b"1" if check() else b"0")
        os._exit(0)
    os.close(write)
    try:
        return os.read(read, 1) == b"1"
    finally:
        os.close(read)
        os.waitpid(pid, 0)


def test_a_forked_child_runs_parallel_tasks_and_commits_in_pools_of_its_own(tmp_path: Path) -> None:
    # The parent's pool threads do not exist in a forked child (a worker pool, a prefork server): work handed
    # to the parent's pools there would never run, and the child's run would wait forever.
    def graph(saver: Any) -> Any:
        builder = StateGraph(Items)
        for name in ("a", "b", "c"):
            builder.add_node(name, lambda state, name=name: (time.sleep(0.02), {"items": [name]})[1])
            builder.add_edge(START, name)
        return builder.compile(checkpointer=saver)

    with SqliteSaver.from_conn_string(str(tmp_path / "parent.sqlite")) as saver:
        assert graph(saver).invoke({"items": []}, thread())["items"] == ["a", "b", "c"]

    def child() -> bool:
        with SqliteSaver.from_conn_string(str(tmp_path / "child.sqlite")) as saver:
            return bool(graph(saver).invoke({"items": []}, thread())["items"] == ["a", "b", "c"])

    assert in_forked_child(child)
