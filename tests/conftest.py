"""Session-wide fixtures: a real PostgreSQL server (see `tests/_pg.py`, a fresh database per test) and a real
Redis server (see `tests/_redis_server.py`)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from _redis_server import _redis_session_server, private_redis, redis_server_url, redis_url

from tests._pg import PgDatabases, Unavailable, provide

__all__ = ("_redis_session_server", "pg_databases", "pg_dsn", "private_redis", "redis_server_url", "redis_url")


@pytest.fixture(scope="session")
def pg_databases() -> Iterator[PgDatabases]:
    """The session's PostgreSQL server; skips the test when there is none, except under CI where it fails."""
    try:
        with provide() as databases:
            yield databases
    except Unavailable as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"PostgreSQL is required under CI: {exc}")
        pytest.skip(f"no PostgreSQL server: {exc}")


@pytest.fixture
def pg_dsn(pg_databases: PgDatabases) -> Iterator[str]:
    """The DSN of a fresh, empty database on the session's server, dropped after the test."""
    with pg_databases.fresh() as dsn:
        yield dsn
