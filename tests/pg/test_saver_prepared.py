"""The PostgreSQL saver's prepared statements: a chat turn's lookups are planned once per connection, never
behind a proxy that cannot keep them (`prepare_threshold=None`), and a session that lost or kept them behind the
saver's back costs a retry, never an error (`graphrt.checkpoint.postgres._prepared`)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from graphrt.checkpoint._dialect import POSTGRES
from graphrt.checkpoint._ownership import now_micros
from graphrt.checkpoint._primitives import Lease
from graphrt.checkpoint.postgres import PostgresSaver
from graphrt.checkpoint.postgres._pipeline import BatchCursor
from graphrt.checkpoint.postgres._prepared import registered
from graphrt.config import RunnableConfig
from graphrt.errors import ThreadConflictError
from tests.pg._chat import chat_graph

CONFIG: RunnableConfig = {"configurable": {"thread_id": "chat"}}


@contextmanager
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement sent by the saver's batches inside the block (the PREPAREs included)."""
    statements: list[str] = []
    flush = BatchCursor.flush

    def recording(self: BatchCursor) -> None:
        statements.extend(self._head + self._queue)
        flush(self)

    with monkeypatch.context() as patch:
        patch.setattr(BatchCursor, "flush", recording)
        yield statements


def prepared(conn: psycopg.Connection[Any]) -> dict[str, tuple[str, int, int]]:
    """name -> (statement, generic plans, custom plans) of the session's graphrt statements."""
    rows = conn.execute(
        "SELECT name, statement, generic_plans, custom_plans FROM pg_prepared_statements WHERE name LIKE 'graphrt%'"
    ).fetchall()
    return {name: (statement, generic, custom) for name, statement, generic, custom in rows}


def test_a_chat_turns_statements_are_prepared_once_per_connection(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        graph = chat_graph(PostgresSaver(conn))
        turns = []
        for _ in range(7):
            with sent(monkeypatch) as statements:
                graph.invoke({"log": ["hi"]}, CONFIG)
            turns.append(statements)
        prepares = [q.split(" AS ")[0] for turn in turns for q in turn if q.startswith("PREPARE")]
        assert prepares and len(prepares) == len(set(prepares))  # each statement prepared once, by the first use
        for turn in turns[2:]:  # once a turn loads a checkpoint, every statement it sends has been seen
            assert not any(q.startswith("PREPARE") for q in turn)
            executed = [q for q in turn if q.startswith("EXECUTE graphrt_")]
            assert len(executed) >= 8  # the lock, the expectations, the lease, the load's three lookups
        assert len(graph.get_state(CONFIG).values["log"]) == 14
        statements = prepared(conn)
        [blobs] = [v for v in statements.values() if "unnest(" in v[0]]
        assert blobs[1] >= 6 and blobs[2] == 0  # the blob lookup is never planned again


def test_no_statement_is_prepared_without_a_prepare_threshold(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """PgBouncer in transaction mode hands each transaction another server session: nothing may be prepared."""
    with psycopg.connect(pg_dsn, autocommit=True, prepare_threshold=None) as conn:
        graph = chat_graph(PostgresSaver(conn))
        with sent(monkeypatch) as statements:
            for _ in range(3):
                graph.invoke({"log": ["hi"]}, CONFIG)
        assert not any(q.startswith(("PREPARE", "EXECUTE", "SET LOCAL plan_cache_mode")) for q in statements)
        assert prepared(conn) == {}
        assert len(graph.get_state(CONFIG).values["log"]) == 6


def test_a_session_that_lost_its_prepared_statements_is_retried(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        graph = chat_graph(PostgresSaver(conn))
        graph.invoke({"log": ["hi"]}, CONFIG)
        conn.execute("DEALLOCATE ALL")  # as a pool's reset (DISCARD ALL) would
        graph.invoke({"log": ["hi"]}, CONFIG)
        graph.invoke({"log": ["hi"]}, CONFIG)
        assert graph.get_state(CONFIG).values["log"] == ["hi", "reply 1", "hi", "reply 3", "hi", "reply 5"]
        assert prepared(conn) == {}  # that connection prepares no more


def test_a_session_that_kept_prepared_statements_is_retried(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        lock = registered(POSTGRES.sql(POSTGRES.lock_thread or ""))
        assert lock is not None
        conn.execute(lock.prepare)  # left by an earlier client of the session (a proxy that does not reset them)
        graph = chat_graph(PostgresSaver(conn))
        graph.invoke({"log": ["hi"]}, CONFIG)
        graph.invoke({"log": ["hi"]}, CONFIG)
        assert graph.get_state(CONFIG).values["log"] == ["hi", "reply 1", "hi", "reply 3"]


def test_a_failed_batch_that_prepared_statements_leaves_them_in_use(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with PostgresSaver.from_conn_string(pg_dsn) as theirs, theirs._write_tx("chat") as tx:
        # another machine holds the thread
        assert tx.swap_lease("chat", None, Lease("other", "elsewhere/boot", 1, now_micros() + 60_000_000))
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        graph = chat_graph(PostgresSaver(conn))
        # The first batch on this connection prepares the claim's statements, then fails its expectation.
        with sent(monkeypatch) as refused, pytest.raises(ThreadConflictError):
            graph.invoke({"log": ["hi"]}, CONFIG)
        conn.execute("DELETE FROM graphrt_thread_leases")
        with sent(monkeypatch) as statements:
            graph.invoke({"log": ["hi"]}, CONFIG)
        # The statements that did get prepared are known (asked of the server), so none is prepared twice.
        before = {q.split(" AS ")[0] for q in refused if q.startswith("PREPARE")}
        assert before and not before & {q.split(" AS ")[0] for q in statements if q.startswith("PREPARE")}
        assert any(q.startswith("EXECUTE graphrt_") for q in statements)
        assert graph.get_state(CONFIG).values["log"] == ["hi", "reply 1"]
