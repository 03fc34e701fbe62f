"""Fixtures of the persistence suite: every behaviour runs on every saver, with the sync and the async API.

`saver` gives an `InMemorySaver` or a SQLite file saver; in async mode the SQLite one is an
`AsyncSqliteSaver`, so `ainvoke` and friends go through its async methods. The helpers below take
`mode` and call the sync method or await its async twin, so each behaviour is one test body.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio
from _redis_server import close_async_redis, fresh_url

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.checkpoint.redis import RedisSaver
from graphrt.checkpoint.redis.aio import AsyncRedisSaver
from graphrt.checkpoint.sqlite import SqliteSaver
from graphrt.checkpoint.sqlite.aio import AsyncSqliteSaver
from graphrt.config import RunnableConfig
from graphrt.types import StateSnapshot

MODES = ("sync", "async")
BACKENDS = ("memory", "sqlite", "redis", "postgres")


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """`sync` drives `invoke`/`get_state`/...; `async` drives `ainvoke`/`aget_state`/..."""
    value: str = request.param
    return value


@pytest.fixture(params=BACKENDS)
def saver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A fresh checkpointer: in memory, a SQLite file or Redis (async face when the test runs in async mode)."""
    if request.param == "memory":
        yield InMemorySaver()
        return
    is_async = "mode" in request.fixturenames and request.getfixturevalue("mode") == "async"
    if request.param == "redis":
        url = fresh_url()
        if is_async:
            client = redis.asyncio.Redis.from_url(url)
            async_saver = AsyncRedisSaver(client)
            yield async_saver
            asyncio.run(close_async_redis(async_saver, client))
            return
        with RedisSaver.from_conn_string(url) as redis_saver:
            yield redis_saver
        return
    if request.param == "postgres":
        import psycopg
        import psycopg_pool
        from psycopg.rows import dict_row

        from graphrt.checkpoint.postgres import PostgresSaver
        from graphrt.checkpoint.postgres.aio import AsyncPostgresSaver

        dsn = request.getfixturevalue("pg_dsn")
        if is_async:  # a user's AsyncConnection (each test call runs its own event loop, so no pool)
            conn = asyncio.run(psycopg.AsyncConnection.connect(dsn, autocommit=True, row_factory=dict_row))
            try:
                yield AsyncPostgresSaver(conn)
            finally:
                asyncio.run(conn.close())
            return
        with psycopg_pool.ConnectionPool(dsn, min_size=1, max_size=4, kwargs={"autocommit": True}) as pool:
            yield PostgresSaver(pool)
        return
    path = str(tmp_path / "cp.sqlite")
    if "mode" in request.fixturenames and request.getfixturevalue("mode") == "async":
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            yield AsyncSqliteSaver(conn)
        finally:
            conn.close()
        return
    with SqliteSaver.from_conn_string(path) as sqlite_saver:
        yield sqlite_saver


def thread(thread_id: str = "1", **configurable: Any) -> RunnableConfig:
    """A config naming `thread_id` (plus any other `configurable` keys)."""
    return {"configurable": {"thread_id": thread_id, **configurable}}


def run(graph: Any, input: Any, mode: str, config: RunnableConfig | None = None, **kw: Any) -> Any:
    """`graph.invoke(...)` or `graph.ainvoke(...)`."""
    if mode == "sync":
        return graph.invoke(input, config, **kw)
    return asyncio.run(graph.ainvoke(input, config, **kw))


def stream(graph: Any, input: Any, mode: str, config: RunnableConfig | None = None, **kw: Any) -> list[Any]:
    """Every chunk of `graph.stream(...)` or `graph.astream(...)`."""
    if mode == "sync":
        return list(graph.stream(input, config, **kw))

    async def collect() -> list[Any]:
        return [chunk async for chunk in graph.astream(input, config, **kw)]

    return asyncio.run(collect())


def get_state(graph: Any, config: RunnableConfig, mode: str) -> StateSnapshot:
    """`graph.get_state(config)` or `graph.aget_state(config)`."""
    if mode == "sync":
        snapshot: StateSnapshot = graph.get_state(config)
        return snapshot
    result: StateSnapshot = asyncio.run(graph.aget_state(config))
    return result


def history(graph: Any, config: RunnableConfig, mode: str, **kw: Any) -> list[StateSnapshot]:
    """`graph.get_state_history(config, ...)` or `aget_state_history`, as a list (newest first)."""
    if mode == "sync":
        return list(graph.get_state_history(config, **kw))

    async def collect() -> list[StateSnapshot]:
        return [snapshot async for snapshot in graph.aget_state_history(config, **kw)]

    return asyncio.run(collect())


def update_state(
    graph: Any, config: RunnableConfig, values: Any, mode: str, as_node: str | None = None
) -> RunnableConfig:
    """`graph.update_state(...)` or `graph.aupdate_state(...)`; returns the new checkpoint's config."""
    if mode == "sync":
        new: RunnableConfig = graph.update_state(config, values, as_node=as_node)
        return new
    result: RunnableConfig = asyncio.run(graph.aupdate_state(config, values, as_node=as_node))
    return result


def bulk_update_state(graph: Any, config: RunnableConfig, supersteps: Sequence[Any], mode: str) -> RunnableConfig:
    """`graph.bulk_update_state(...)` or `graph.abulk_update_state(...)`."""
    if mode == "sync":
        new: RunnableConfig = graph.bulk_update_state(config, supersteps)
        return new
    result: RunnableConfig = asyncio.run(graph.abulk_update_state(config, supersteps))
    return result


def steps(snapshots: Sequence[StateSnapshot]) -> list[tuple[str, int]]:
    """(source, step) of each snapshot's metadata, in the order given."""
    return [(s.metadata["source"], s.metadata["step"]) for s in snapshots if s.metadata is not None]


def exact(message: str) -> str:
    """A `match=` pattern that accepts exactly `message`."""
    return f"^{re.escape(message)}$"


def starts(message: str) -> str:
    """A `match=` pattern that accepts a message beginning with `message` (notes may follow)."""
    return f"^{re.escape(message)}"
