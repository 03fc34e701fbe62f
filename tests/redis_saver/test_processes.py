"""Across OS processes on one Redis: one owner per thread, takeover after `kill -9`, exactly-once replay."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from graphrt.checkpoint.redis import RedisSaver
from graphrt.errors import ThreadConflictError
from tests.persistence._workers import THREAD, pair_graph, runs, saved_writes, slow_graph
from tests.persistence.test_processes import Child, children

__all__ = ("children",)


@pytest.mark.timeout(30)
def test_a_second_process_is_refused_and_leaves_no_trace(redis_url: str, tmp_path: Path, children: list[Any]) -> None:
    owner = Child("conflict", redis_url, tmp_path)  # type: ignore[arg-type]
    children.append(owner)
    owner.wait_for_file(tmp_path / "entered")
    with RedisSaver.from_conn_string(redis_url) as saver:
        graph = slow_graph(saver, tmp_path, block=False)
        before = list(graph.get_state_history(THREAD))
        with pytest.raises(ThreadConflictError) as refused:
            graph.invoke({"items": ["B"]}, THREAD)
        assert refused.value.busy
        assert list(graph.get_state_history(THREAD)) == before
        (tmp_path / "release").touch()
        assert owner.result() == {"values": {"items": ["A", "slow"]}}
        assert graph.invoke({"items": ["B"]}, THREAD) == {"items": ["A", "slow", "B", "slow"]}
        assert len(list(graph.get_state_history(THREAD))) == 6
    assert runs(tmp_path) == ["slow", "slow"]


@pytest.mark.timeout(30)
def test_a_killed_owner_is_taken_over_at_once(redis_url: str, tmp_path: Path, children: list[Any]) -> None:
    owner = Child("conflict", redis_url, tmp_path)  # type: ignore[arg-type]
    children.append(owner)
    owner.wait_for_file(tmp_path / "entered")
    os.kill(owner.proc.pid, signal.SIGKILL)
    owner.proc.wait(10)
    with RedisSaver.from_conn_string(redis_url) as saver:
        graph = slow_graph(saver, tmp_path, block=False)
        started = time.monotonic()
        assert graph.invoke({"items": ["B"]}, THREAD) == {"items": ["A", "B", "slow"]}
        assert time.monotonic() - started < 2


@pytest.mark.timeout(120)
def test_processes_racing_with_reject_leave_only_completed_calls(
    redis_url: str, tmp_path: Path, children: list[Any]
) -> None:
    racers = [Child("race:8:reject", redis_url, tmp_path) for _ in range(4)]  # type: ignore[arg-type]
    children.extend(racers)
    (tmp_path / "go").touch()
    results = [racer.result(timeout=90) for racer in racers]
    applied = [label for r in results for label in r["applied"]]
    assert len(applied) + sum(r["refused"] for r in results) == 32
    assert applied
    with RedisSaver.from_conn_string(redis_url) as saver:
        graph = slow_graph(saver, tmp_path, block=False)
        history = list(graph.get_state_history(THREAD))
        items = graph.get_state(THREAD).values["items"]
    assert len(history) == 3 * len(applied)
    assert sorted(items[0::2]) == sorted(applied) and items[1::2] == ["slow"] * len(applied)


@pytest.mark.timeout(30)
def test_saved_task_never_reruns_after_kill_9(redis_url: str, tmp_path: Path, children: list[Any]) -> None:
    worker = Child("crash", redis_url, tmp_path)  # type: ignore[arg-type]
    children.append(worker)
    worker.wait_for_file(tmp_path / "ready")
    with RedisSaver.from_conn_string(redis_url) as saver:
        assert ("items", ["fast"]) in saved_writes(saver)
    os.kill(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait(10)
    resumer = Child("resume", redis_url, tmp_path)  # type: ignore[arg-type]
    children.append(resumer)
    assert resumer.result() == {"values": {"items": ["x", "blocker", "fast"]}}
    assert sorted(runs(tmp_path)) == ["blocker", "blocker", "fast"]
    with RedisSaver.from_conn_string(redis_url) as saver:
        snapshot = pair_graph(saver, tmp_path, block=False).get_state(THREAD)
        assert snapshot.values == {"items": ["x", "blocker", "fast"]}
