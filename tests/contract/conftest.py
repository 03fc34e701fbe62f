"""Fixtures of the checkpoint saver contract: every backend, each in sync and async mode."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis.asyncio
from _checkpoint_helpers import MODES, AssertingSaver
from _redis_server import close_async_redis, fresh_url

from graphrt.checkpoint.base import BaseCheckpointSaver
from graphrt.checkpoint.memory import InMemorySaver
from graphrt.checkpoint.redis import RedisSaver
from graphrt.checkpoint.redis.aio import AsyncRedisSaver
from graphrt.checkpoint.sqlite import SqliteSaver, connect
from graphrt.checkpoint.sqlite.aio import AsyncSqliteSaver


@contextmanager
def _memory(tmp_path: Path) -> Iterator[BaseCheckpointSaver[Any]]:
    with InMemorySaver() as saver:
        yield saver


@contextmanager
def _sqlite_file(tmp_path: Path) -> Iterator[BaseCheckpointSaver[Any]]:
    with SqliteSaver.from_conn_string(str(tmp_path / "checkpoints.sqlite")) as saver:
        yield saver


@contextmanager
def _sqlite_memory(tmp_path: Path) -> Iterator[BaseCheckpointSaver[Any]]:
    with SqliteSaver.from_conn_string(":memory:") as saver:
        yield saver


@contextmanager
def _async_sqlite_file(tmp_path: Path) -> Iterator[BaseCheckpointSaver[Any]]:
    conn = connect(str(tmp_path / "async.sqlite"))
    try:
        yield AsyncSqliteSaver(conn)
    finally:
        conn.close()


@contextmanager
def _redis(tmp_path: Path) -> Iterator[BaseCheckpointSaver[Any]]:
    with RedisSaver.from_conn_string(fresh_url()) as saver:
        yield saver


@contextmanager
def _async_redis(tmp_path: Path) -> Iterator[BaseCheckpointSaver[Any]]:
    client = redis.asyncio.Redis.from_url(fresh_url())
    saver = AsyncRedisSaver(client)
    try:
        yield saver
    finally:
        anyio.run(close_async_redis, saver, client)


_PG_DSNS: dict[Path, str] = {}
"""The test database of each test (keyed by its tmp_path), for the Postgres backends."""


@contextmanager
def _postgres(tmp_path: Path) -> Iterator[BaseCheckpointSaver[Any]]:
    from graphrt.checkpoint.postgres import PostgresSaver

    with PostgresSaver.from_conn_string(_PG_DSNS[tmp_path]) as saver:
        yield saver


@contextmanager
def _async_postgres(tmp_path: Path) -> Iterator[BaseCheckpointSaver[Any]]:
    """A user's `AsyncConnection` as LangGraph's docs make it (each async call runs on its own event loop)."""
    import asyncio

    import psycopg
    from psycopg.rows import dict_row

    from graphrt.checkpoint.postgres.aio import AsyncPostgresSaver

    conn = asyncio.run(
        psycopg.AsyncConnection.connect(_PG_DSNS[tmp_path], autocommit=True, prepare_threshold=0, row_factory=dict_row)
    )
    try:
        yield AsyncPostgresSaver(conn)
    finally:
        asyncio.run(conn.close())


BACKENDS: dict[str, Callable[[Path], AbstractContextManager[BaseCheckpointSaver[Any]]]] = {
    "memory": _memory,
    "sqlite_file": _sqlite_file,
    "sqlite_memory": _sqlite_memory,
    "async_sqlite_file": _async_sqlite_file,
    "redis": _redis,
    "async_redis": _async_redis,
    "postgres": _postgres,
    "async_postgres": _async_postgres,
}
"""A new backend adds one line here (the Postgres ones skip when no server is available, except under CI)."""


@contextmanager
def _open(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseCheckpointSaver[Any]]:
    if request.param.endswith("postgres"):
        _PG_DSNS[tmp_path] = request.getfixturevalue("pg_dsn")
    try:
        with BACKENDS[request.param](tmp_path) as inner:
            yield inner
    finally:
        _PG_DSNS.pop(tmp_path, None)


@pytest.fixture(params=list(BACKENDS))
def saver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AssertingSaver]:
    """Every backend, wrapped so any change to an already saved checkpoint fails the test."""
    with _open(request, tmp_path) as inner:
        yield AssertingSaver(inner)


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=list(BACKENDS))
def core_saver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """Every backend, unwrapped: the storage-primitive and ownership contracts drive it directly."""
    with _open(request, tmp_path) as inner:
        yield inner
