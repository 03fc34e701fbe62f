"""Across OS processes on one SQLite file: one writer per thread, and exactly-once after `kill -9`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from graphrt.checkpoint.sqlite import SqliteSaver
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

    def result(self) -> dict[str, Any]:
        """The JSON line the child printed (it must exit cleanly)."""
        out, err = self.proc.communicate(timeout=12)
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


@pytest.mark.timeout(15)
def test_two_processes_racing_on_one_thread(tmp_path: Path, children: list[Child]) -> None:
    database = tmp_path / "cp.sqlite"
    loser = Child("conflict", database, tmp_path)
    children.append(loser)
    loser.wait_for_file(tmp_path / "entered")

    # While the child waits inside `slow`, this process runs the same thread to the end.
    with SqliteSaver.from_conn_string(str(database)) as saver:
        graph = slow_graph(saver, tmp_path, block=False)
        assert graph.invoke({"items": ["B"]}, THREAD) == {"items": ["A", "B", "slow"]}
        winner = list(graph.get_state_history(THREAD))
        (tmp_path / "release").touch()
        result = loser.result()
        assert result["error"] == "ThreadConflictError", result
        assert result["thread_id"] == "t"
        assert "thread 't'" in result["message"]
        assert list(graph.get_state_history(THREAD)) == winner  # the loser wrote nothing more
        assert graph.get_state(THREAD).values == {"items": ["A", "B", "slow"]}
    assert runs(tmp_path) == ["slow", "slow"]


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


@pytest.mark.timeout(30)
def test_three_levels_deep_interrupt_resumes_in_another_process(tmp_path: Path, children: list[Child]) -> None:
    database = tmp_path / "cp.sqlite"
    first = Child("deep", database, tmp_path)
    children.append(first)
    assert first.result() == {"values": {"interrupts": ["deep"]}}
    second = Child("deep-resume", database, tmp_path)
    children.append(second)
    assert second.result() == {"values": {"items": ["before", "answer"]}}
    assert runs(tmp_path) == ["before", "leaf", "leaf"]  # `before` ran once across both processes


@pytest.mark.timeout(30)
def test_saved_task_result_never_reruns_after_kill_9(tmp_path: Path, children: list[Child]) -> None:
    database = tmp_path / "cp.sqlite"
    worker = Child("flow-crash", database, tmp_path)
    children.append(worker)
    worker.wait_for_file(tmp_path / "ready")
    os.kill(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait(10)
    assert runs(tmp_path) == ["first", "second"]
    resumer = Child("flow-resume", database, tmp_path)
    children.append(resumer)
    assert resumer.result() == {"values": "x12"}
    assert runs(tmp_path) == ["first", "second", "second"]  # `first` ran once in all
