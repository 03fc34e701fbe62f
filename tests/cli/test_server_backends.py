"""The command line on the server backends: a thread written by real runs on PostgreSQL and on Redis."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from graphrt.messages import HumanMessage
from graphrt.types import Command
from tests.cli.conftest import build_chat, run_cli


@pytest.fixture(params=["postgres", "redis"])
def server_db(request: pytest.FixtureRequest) -> Iterator[tuple[str, Any]]:
    """(database argument, saver class) for a server holding thread "alice", interrupted then resumed."""
    if request.param == "postgres":
        from graphrt.checkpoint.postgres import PostgresSaver as saver_class

        url = request.getfixturevalue("pg_dsn")
    else:
        from _redis_server import fresh_url

        from graphrt.checkpoint.redis import RedisSaver as saver_class  # type: ignore[assignment]

        request.getfixturevalue("redis_url")  # the session server (skips, or fails under CI, without one)
        url = fresh_url()
    with saver_class.from_conn_string(url) as saver:
        graph = build_chat().compile(checkpointer=saver)
        alice = {"configurable": {"thread_id": "alice", "user": "u1"}}
        graph.invoke({"messages": [HumanMessage(content="Alice", id="h1")]}, alice)
        graph.invoke(Command(resume="yes"), alice)
    yield url, saver_class


def test_threads_history_show_diff_and_delete_on_a_server(server_db: tuple[str, Any]) -> None:
    url, saver_class = server_db
    with saver_class.from_conn_string(url) as saver:
        graph = build_chat().compile(checkpointer=saver)
        snapshots = list(graph.get_state_history({"configurable": {"thread_id": "alice"}}))
    threads = json.loads(run_cli("threads", url, "--json").out)
    assert [(t["thread_id"], t["checkpoints"], t["last_step"]) for t in threads] == [
        ("alice", len(snapshots), snapshots[0].metadata["step"])
    ]
    history = json.loads(run_cli("history", url, "alice", "--json").out)
    assert [h["checkpoint_id"] for h in history] == [s.config["configurable"]["checkpoint_id"] for s in snapshots]
    shown = json.loads(run_cli("show", url, "alice", "--json").out)
    assert json.dumps(shown, default=str).count("Alice") >= 1
    first, last = snapshots[-1].config["configurable"]["checkpoint_id"], history[0]["checkpoint_id"]
    assert run_cli("diff", url, "alice", first, last).code == 0
    assert run_cli("delete-thread", url, "alice", "--yes").code == 0
    assert json.loads(run_cli("threads", url, "--json").out) == []
