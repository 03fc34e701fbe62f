"""`AsyncPostgresSaver` sends `PostgresSaver`'s batches: the same round trips, each awaited on the event loop.

Before, each statement of an async transaction waited for its own answer (about 26 round trips a chat turn);
now a turn costs what a sync one does. A stale guess (another process moved the thread) still never changes
an outcome, and a connection whose prepared statements psycopg dropped still works.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from graphrt.checkpoint.postgres import PostgresSaver
from graphrt.checkpoint.postgres._pipeline import AsyncBatchCursor
from graphrt.checkpoint.postgres.aio import AsyncPostgresSaver
from graphrt.config import RunnableConfig
from graphrt.errors import ThreadConflictError
from tests.pg._chat import chat_graph


@contextmanager
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the batches the async saver sends (each one round trip) inside the block."""
    count = [0]
    flush = AsyncBatchCursor.flush

    async def counting(self: AsyncBatchCursor) -> None:
        if self.pending:
            count[0] += 1
        await flush(self)

    with monkeypatch.context() as patch:
        patch.setattr(AsyncBatchCursor, "flush", counting)
        yield count


def test_an_async_chat_turn_costs_what_a_sync_one_does(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async def main() -> tuple[list[int], list[int], int]:
        async with AsyncPostgresSaver.from_conn_string(pg_dsn) as saver:
            graph = chat_graph(saver)  # type: ignore[arg-type]
            config: RunnableConfig = {"configurable": {"thread_id": "chat"}}
            for _ in range(3):
                await graph.ainvoke({"log": ["hi"]}, config, durability="sync")
            exact, default = [], []
            for _ in range(3):
                with round_trips(monkeypatch) as count:
                    await graph.ainvoke({"log": ["hi"]}, config, durability="sync")
                exact.append(count[0])
            await graph.ainvoke({"log": ["hi"]}, config)  # the first turn of a durability may differ
            for _ in range(3):
                with round_trips(monkeypatch) as count:
                    await graph.ainvoke({"log": ["hi"]}, config)
                default.append(count[0])
            return exact, default, len((await graph.aget_state(config)).values["log"])

    exact, default, length = asyncio.run(main())
    # As `PostgresSaver` (tests/pg/test_saver_round_trips.py): claim 1, load 1, three checkpoints 1 each, release 1.
    # With the default durability the saves go with the release; the background writer may commit the input
    # checkpoint on its own while the step runs (+1, the usual case on the event loop), and on a busy machine
    # also the step's before the run ends, the release then going on its own (+1).
    assert exact == [6, 6, 6]
    assert set(default) <= {3, 4, 5}
    assert length == 20


def test_an_async_step_is_one_round_trip_and_a_stale_head_is_refused(pg_dsn: str) -> None:
    """A head another process moved fails the speculative step at the server; the exact retry refuses it."""

    async def main() -> None:
        async with AsyncPostgresSaver.from_conn_string(pg_dsn) as ours:
            graph = chat_graph(ours)  # type: ignore[arg-type]
            config: RunnableConfig = {"configurable": {"thread_id": "moved"}}
            await graph.ainvoke({"log": ["hi"]}, config, durability="sync")
            saved = await ours.aget_tuple(config)
            assert saved is not None
            with PostgresSaver.from_conn_string(pg_dsn) as theirs:
                chat_graph(theirs).invoke({"log": ["theirs"]}, config, durability="sync")
            head = saved.config["configurable"]["checkpoint_id"]
            checkpoint = {**saved.checkpoint, "id": "1" + head[1:]}
            with pytest.raises(ThreadConflictError):
                await ours.aput_guarded(saved.config, checkpoint, {}, {}, expected_head=head)
            # What the other process wrote is what a load reads (the guess of the head was stale).
            again = await ours.aget_tuple(config)
            assert again is not None and again.checkpoint["channel_values"]["log"][-2:] == ["theirs", "reply 3"]

    asyncio.run(main())


def test_a_user_connection_whose_prepared_statements_psycopg_dropped_goes_on_working(pg_dsn: str) -> None:
    """psycopg answers a ROLLBACK with `DEALLOCATE ALL` on a connection where it prepared statements itself
    (`prepare_threshold=0`): graphrt's are asked of the server again, in sync and async calls alike."""

    async def connect() -> Any:
        return await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True, prepare_threshold=0, row_factory=dict_row)

    conn = asyncio.run(connect())
    try:
        saver = AsyncPostgresSaver(conn)
        graph = chat_graph(saver)  # type: ignore[arg-type]
        config: RunnableConfig = {"configurable": {"thread_id": "dropped"}}
        graph.invoke({"log": ["hi"]}, config)
        saved = saver.get_tuple(config)
        assert saved is not None
        stale = {**saved.checkpoint, "id": "1" + saved.checkpoint["id"][1:]}
        for _ in range(2):  # each refusal rolls back: psycopg drops every prepared statement of the session
            with pytest.raises(ThreadConflictError):
                saver.put_guarded(saved.config, stale, {}, {}, expected_head=None)
            graph.invoke({"log": ["hi"]}, config)  # its claim is the first statement after the rollback
            saved = saver.get_tuple(config)
            assert saved is not None
        assert saved.checkpoint["channel_values"]["log"] == ["hi", "reply 1", "hi", "reply 3", "hi", "reply 5"]
    finally:
        asyncio.run(conn.close())
