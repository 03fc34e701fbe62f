"""The PostgreSQL store survives dropped connections and restarts, and never shows a password."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import psycopg
import psycopg_pool
import pytest

from graphrt._postgres import ConnectionLostError
from graphrt.store.postgres import PostgresStore
from graphrt.store.postgres.aio import AsyncPostgresStore
from tests._pg import PgDatabases, free_port


def terminate_others(dsn: str) -> int:
    """`pg_terminate_backend` every other connection to this test's database; returns how many."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.parametrize("module", ["graphrt.store.postgres", "graphrt.store.postgres.aio"])
def test_import_without_psycopg_says_what_to_install(module: str) -> None:
    code = f"import sys; sys.modules['psycopg'] = None; import {module}"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "PostgresStore needs psycopg: pip install 'graphrt[postgres]'" in proc.stderr.splitlines()[-1]


def test_a_terminated_connection_is_replaced_and_the_call_completes(pg_dsn: str) -> None:
    with PostgresStore.from_conn_string(pg_dsn) as store:
        store.setup()
        store.put(("a",), "k", {"v": 1})
        assert terminate_others(pg_dsn) >= 1
        store.put(("a",), "k2", {"v": 2})
        assert terminate_others(pg_dsn) >= 1
        assert store.get(("a",), "k").value == {"v": 1}
        assert [item.key for item in store.search(("a",))] == ["k2", "k"]


def test_a_single_terminated_connection_fails_clearly(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        store = PostgresStore(conn)
        store.setup()
        store.put(("a",), "k", {"v": 1})
        terminate_others(pg_dsn)
        with pytest.raises(ConnectionLostError, match="the connection to PostgreSQL was lost") as info:
            store.get(("a",), "k")
        with pytest.raises(ConnectionLostError, match="pass a psycopg_pool ConnectionPool"):
            store.get(("a",), "k")
    assert isinstance(info.value, ConnectionError)


def test_a_server_restart_is_survived_by_the_same_store(pg_databases: PgDatabases, pg_dsn: str) -> None:
    if pg_databases.server is None:
        pytest.skip("the server comes from GRAPHRT_TEST_PG_DSN; only a server the tests started can be restarted")
    with PostgresStore.from_conn_string(pg_dsn) as store:
        store.put(("a",), "k", {"v": 1})
        pg_databases.server.restart()
        store.put(("a",), "k2", {"v": 2})
        assert store.get(("a",), "k").value == {"v": 1}


def test_the_async_store_survives_a_terminated_connection(pg_dsn: str) -> None:
    import asyncio

    async def main() -> list[str]:
        async with AsyncPostgresStore.from_conn_string(pg_dsn) as store:
            await store.setup()
            await store.aput(("a",), "k", {"v": 1})
            terminate_others(pg_dsn)
            await store.aput(("a",), "k2", {"v": 2})
            return [item.key for item in await store.asearch(("a",))]

    assert asyncio.run(main()) == ["k2", "k"]


def test_no_password_in_errors_or_reprs(pg_dsn: str) -> None:
    secret = "s3cr3t-Pa55"
    dead = f"postgresql://someone:{secret}@127.0.0.1:{free_port()}/nowhere?connect_timeout=1"
    with pytest.raises(ConnectionError) as info, PostgresStore.from_conn_string(dead):
        pass
    assert secret not in str(info.value)
    with (
        pytest.raises(ValueError, match="invalid connection string") as bad,
        PostgresStore.from_conn_string(f"password={secret} nonsense"),
    ):
        pass
    assert secret not in str(bad.value)
    with psycopg_pool.ConnectionPool(pg_dsn + f" password={secret}", min_size=1, kwargs={"autocommit": True}) as pool:
        store = PostgresStore(pool)
        assert secret not in repr(store) and secret not in repr(store._connector)


@pytest.mark.parametrize(
    "text",
    [
        "connect to postgresql://bob:s3cr3t-Pa55@db:5432/app failed",
        "postgres://bob:s3cr3t-Pa55@db/app",
        "host=db password=s3cr3t-Pa55 user=bob",
        "host=db password = 's3cr3t-Pa55 x' user=bob",
    ],
)
def test_redact_hides_passwords_in_both_dsn_forms(text: str) -> None:
    from graphrt._postgres import redact

    assert "s3cr3t-Pa55" not in redact(text)
    assert "***" in redact(text)


def test_a_socket_closed_before_the_connection_is_marked_broken_is_retried(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backend terminated just before a statement: psycopg raises "connection socket closed" (no SQLSTATE)
    while the connection does not look broken yet; the call still completes on a new connection."""
    with PostgresStore.from_conn_string(pg_dsn) as store:
        store.setup()
        real = psycopg.Cursor.execute
        failures = []

        def flaky(self: psycopg.Cursor[Any], *args: object, **kwargs: object) -> object:
            if not failures:
                failures.append(1)
                raise psycopg.OperationalError("connection socket closed")
            return real(self, *args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(psycopg.Cursor, "execute", flaky)
        store.put(("a",), "k", {"v": 1})
        monkeypatch.undo()
        assert failures == [1]
        item = store.get(("a",), "k")
        assert item is not None and item.value == {"v": 1}


def test_a_store_on_its_own_pool_keeps_its_connection_between_calls(pg_dsn: str) -> None:
    """One call at a time: no pool checkout per call, and a kept connection that died is replaced."""
    with PostgresStore.from_conn_string(pg_dsn) as store:
        store.setup()
        pool = store._connector.pool
        before = pool.get_stats().get("requests_num", 0)
        for i in range(10):
            store.put(("a",), f"k{i}", {"v": i})
            assert store.get(("a",), f"k{i}") is not None
            assert [item.key for item in store.search(("a",), limit=1)] == [f"k{i}"]
        assert pool.get_stats().get("requests_num", 0) - before <= 1
        terminate_others(pg_dsn)
        store.put(("a",), "k10", {"v": 10})
        assert len(store.search(("a",), limit=20)) == 11


def test_the_sync_store_takes_langgraphs_pool_config_pipeline_and_pipe(pg_dsn: str) -> None:
    """`PostgresStore.from_conn_string(pipeline=..., pool_config=...)` and `PostgresStore(conn, pipe=...)`, as
    LangGraph's take them (graphrt pipelines write transactions by itself); a pipeline with a pool is refused."""
    with PostgresStore.from_conn_string(
        pg_dsn, pipeline=True, pool_config={"min_size": 1, "max_size": 2, "kwargs": {"application_name": "grt"}}
    ) as store:
        store.setup()
        store.put(("a",), "k", {"v": 1})
        assert store.get(("a",), "k").value == {"v": 1}  # type: ignore[union-attr]
        with store._connector.connection() as conn:
            assert conn.execute("SHOW application_name").fetchone()[0] == "grt"
    with psycopg.connect(pg_dsn, autocommit=True) as conn, conn.pipeline() as pipe:
        store = PostgresStore(conn, pipe=pipe)
        store.put(("b",), "k", {"v": 2})
        assert store.get(("b",), "k").value == {"v": 2}  # type: ignore[union-attr]
    with (
        psycopg_pool.ConnectionPool(pg_dsn, min_size=1, open=True) as pool,
        pytest.raises(ValueError, match="Pipeline should be used only with a single Connection, not ConnectionPool"),
    ):
        PostgresStore(pool, pipe=object())
