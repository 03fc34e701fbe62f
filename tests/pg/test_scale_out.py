"""Several worker processes, each with its own connections, serve many threads of one database at once."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from graphrt.checkpoint.postgres import PostgresSaver

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(120)
def test_workers_sharing_threads_lose_no_update_fork_or_run(pg_dsn: str) -> None:
    workers, threads, rounds = 4, 6, 3
    with PostgresSaver.from_conn_string(pg_dsn) as saver:
        saver.setup()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.pg._scale_worker", pg_dsn, str(w), str(threads), str(rounds)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(workers)
    ]
    totals: dict[str, int] = {}
    for proc in procs:
        out, err = proc.communicate(timeout=110)
        assert proc.returncode == 0, err
        for thread_id, n in json.loads(out)["runs"].items():
            totals[thread_id] = totals.get(thread_id, 0) + n
    assert sum(totals.values()) == workers * threads * rounds

    with PostgresSaver.from_conn_string(pg_dsn) as saver:
        for thread_id, n in totals.items():
            config = {"configurable": {"thread_id": thread_id}}
            history = list(saver.list(config))  # type: ignore[arg-type]
            latest = saver.get_tuple(config)  # type: ignore[arg-type]
            assert latest is not None
            values = latest.checkpoint["channel_values"]
            # Every run counted once, by exactly one execution of its node, on one unforked history.
            assert values["count"] == n
            assert len(values["log"]) == n
            assert len(history) == 3 * n
            parents = [t.parent_config["configurable"]["checkpoint_id"] for t in history if t.parent_config]
            assert len(parents) == len(set(parents)) == len(history) - 1
