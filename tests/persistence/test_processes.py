"""Across OS processes on one SQLite file: one owner per thread, takeover after `kill -9`, exactly-once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from graphrt.checkpoint.sqlite import SqliteSaver
from graphrt.errors import ThreadConflictError
from tests.persistence._workers import SCRIPT, THREAD, pair_graph, runs, saved_writes, slow_graph, wait_for

ROOT = Path(__file__).resolve().parents[2]


class Child:
    """A child process running one `_workers` command."""

    def __init__(self, command: str, database: Path, directory: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SCRIPT, str(ROOT), command, str(database), str(directory)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def wait_for_file(self, path: Path) -> None:
        """Wait until `path` exists; fail with the child's stderr if it exits first."""

        def ready() -> bool:
            if self.proc.poll() is not None:
                _, err = self.proc.communicate()
                raise AssertionError(f"child exited with {self.proc.returncode} before {path.name}:\n{err}")
            return path.exists()

        wait_for(ready, path.name, timeout=12)

    def result(self, timeout: float = 12) -> dict[str, Any]:
        """The JSON line the child printed (it must exit cleanly)."""
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err
        value: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return value

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.stop()


@pytest.mark.timeout(20)
def test_a_second_process_is_refused_while_the_owner_runs(tmp_path: Path, children: list[Child]) -> None:
    database = tmp_path / "cp.sqlite"
    owner = Child("conflict", database, tmp_path)
    children.append(owner)
    owner.wait_for_file(tmp_path / "entered")

    # While the child waits inside `slow`, this process tries the same thread: refused, nothing written.
    with SqliteSaver.from_conn_string(str(database)) as saver:
        graph = slow_graph(saver, tmp_path, block=False)
        before = list(graph.get_state_history(THREAD))
        with pytest.raises(
            ThreadConflictError, match=r"^Concurrent run on thread 't': another run is using"
        ) as refused:
            graph.invoke({"items": ["B"]}, THREAD)
        assert refused.value.busy
        assert list(graph.get_state_history(THREAD)) == before
        (tmp_path / "release").touch()
        assert owner.result() == {"values": {"items": ["A", "slow"]}}
        # Retrying the refused run is safe: it is applied once.
        assert graph.invoke({"items": ["B"]}, THREAD) == {"items": ["A", "slow", "B", "slow"]}
        assert len(list(graph.get_state_history(THREAD))) == 6
    assert runs(tmp_path) == ["slow", "slow"]


@pytest.mark.timeout(20)
def test_a_killed_owner_is_taken_over_at_once(tmp_path: Path, children: list[Child]) -> None:
    database = tmp_path / "cp.sqlite"
    owner = Child("conflict", database, tmp_path)
    children.append(owner)
    owner.wait_for_file(tmp_path / "entered")
    os.kill(owner.proc.pid, signal.SIGKILL)
    owner.proc.wait(10)
    with SqliteSaver.from_conn_string(str(database)) as saver:
        assert saver.lease_seconds is not None and saver.lease_seconds >= 10  # so "at once" is not the expiry
        graph = slow_graph(saver, tmp_path, block=False)
        started = time.monotonic()
        # The dead owner's run never finished: its pending `slow` is dropped by the new input.
        assert graph.invoke({"items": ["B"]}, THREAD) == {"items": ["A", "B", "slow"]}
        assert time.monotonic() - started < 2


def _race(tmp_path: Path, children: list[Child], strategy: str, processes: int, rounds: int) -> list[dict[str, Any]]:
    database = tmp_path / "cp.sqlite"
    with SqliteSaver.from_conn_string(str(database)) as saver:
        saver.setup()
    racers = [Child(f"race:{rounds}:{strategy}", database, tmp_path) for _ in range(processes)]
    children.extend(racers)
    (tmp_path / "go").touch()
    return [racer.result(timeout=60) for racer in racers]


@pytest.mark.timeout(90)
def test_processes_racing_with_reject_leave_only_completed_calls(tmp_path: Path, children: list[Child]) -> None:
    results = _race(tmp_path, children, "reject", processes=4, rounds=10)
    applied = [label for r in results for label in r["applied"]]
    assert len(applied) + sum(r["refused"] for r in results) == 40
    assert applied, "no call completed"
    with SqliteSaver.from_conn_string(str(tmp_path / "cp.sqlite")) as saver:
        graph = slow_graph(saver, tmp_path, block=False)
        history = list(graph.get_state_history(THREAD))
        items = graph.get_state(THREAD).values["items"]
    # Every completed call left exactly its 3 checkpoints and its two items; refused calls left nothing.
    assert len(history) == 3 * len(applied)
    assert sorted(items[0::2]) == sorted(applied) and items[1::2] == ["slow"] * len(applied)
    assert len(runs(tmp_path)) == len(applied)


@pytest.mark.timeout(120)
def test_processes_racing_with_enqueue_all_run_in_some_order(tmp_path: Path, children: list[Child]) -> None:
    results = _race(tmp_path, children, "enqueue", processes=4, rounds=5)
    assert [r["refused"] for r in results] == [0, 0, 0, 0]
    with SqliteSaver.from_conn_string(str(tmp_path / "cp.sqlite")) as saver:
        graph = slow_graph(saver, tmp_path, block=False)
        items = graph.get_state(THREAD).values["items"]
        assert len(list(graph.get_state_history(THREAD))) == 3 * 20
    assert sorted(items[0::2]) == sorted(label for r in results for label in r["applied"])
    assert len(items) == 40
    for r in results:  # each process's calls in its own order
        mine = [x for x in items[0::2] if x in r["applied"]]
        assert mine == r["applied"]


@pytest.mark.timeout(20)
def test_a_stale_head_stops_the_run_across_processes(tmp_path: Path, children: list[Child]) -> None:
    """The engine (default durability) refuses to build on a head another process moved without a claim."""
    database = tmp_path / "cp.sqlite"
    with SqliteSaver.from_conn_string(str(database)) as saver:
        graph = slow_graph(saver, tmp_path, block=True)
        errors: list[BaseException] = []

        def target() -> None:
            try:
                graph.invoke({"items": ["A"]}, THREAD)
            except BaseException as exc:
                errors.append(exc)

        worker = threading.Thread(target=target)
        worker.start()
        try:
            wait_for((tmp_path / "entered").exists, "entered")
            intruder = Child("intrude", database, tmp_path)
            children.append(intruder)
            written = intruder.result()["values"]["checkpoint_id"]
        finally:
            (tmp_path / "release").touch()
            worker.join(10)
        assert [type(e) for e in errors] == [ThreadConflictError] and not errors[0].busy
        assert saver.get_head_id(THREAD) == written


@pytest.mark.timeout(15)
def test_saved_task_never_reruns_after_kill_9(tmp_path: Path, children: list[Child]) -> None:
    database = tmp_path / "cp.sqlite"
    worker = Child("crash", database, tmp_path)
    children.append(worker)
    worker.wait_for_file(tmp_path / "ready")
    with SqliteSaver.from_conn_string(str(database)) as saver:
        assert ("items", ["fast"]) in saved_writes(saver)  # durable before the crash
    os.kill(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait(10)
    assert worker.proc.returncode == -signal.SIGKILL
    assert sorted(runs(tmp_path)) == ["blocker", "fast"]

    resumer = Child("resume", database, tmp_path)
    children.append(resumer)
    # Writes of one step apply in task-path order (LangGraph sorts them), hence blocker before fast.
    assert resumer.result() == {"values": {"items": ["x", "blocker", "fast"]}}
    assert sorted(runs(tmp_path)) == ["blocker", "blocker", "fast"]  # fast ran once in all

    with SqliteSaver.from_conn_string(str(database)) as saver:
        graph = pair_graph(saver, tmp_path, block=False)
        snapshot = graph.get_state(THREAD)
        assert snapshot.values == {"items": ["x", "blocker", "fast"]}
        assert snapshot.next == ()
        assert [(s.metadata or {}).get("step") for s in graph.get_state_history(THREAD)] == [1, 0, -1]
