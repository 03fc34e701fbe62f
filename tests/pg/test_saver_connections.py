"""The PostgreSQL saver survives dropped connections and restarts mid-run, and never shows a password."""

from __future__ import annotations

import asyncio
import operator
import subprocess
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

import psycopg
import psycopg_pool
import pytest

from graphrt._postgres import ConnectionLostError
from graphrt.checkpoint.postgres import PostgresSaver
from graphrt.checkpoint.postgres.aio import AsyncPostgresSaver
from graphrt.graph import END, START, StateGraph
from tests._pg import PgDatabases, free_port
from tests.pg.test_store_connections import terminate_others


class Items(TypedDict, total=False):
    items: Annotated[list[str], operator.add]


def chain(saver: Any, middle: Callable[[], None]) -> Any:
    """a -> b -> c; `b` calls `middle` (which breaks the connection) before returning."""

    def a(state: Items) -> Items:
        return {"items": ["a"]}

    def b(state: Items) -> Items:
        middle()
        return {"items": ["b"]}

    def c(state: Items) -> Items:
        return {"items": ["c"]}

    builder = StateGraph(Items)
    for name, fn in (("a", a), ("b", b), ("c", c)):
        builder.add_node(name, fn)
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    builder.add_edge("c", END)
    return builder.compile(checkpointer=saver)


CONFIG: Any = {"configurable": {"thread_id": "t"}}


@pytest.mark.parametrize("module", ["graphrt.checkpoint.postgres", "graphrt.checkpoint.postgres.aio"])
def test_import_without_psycopg_says_what_to_install(module: str) -> None:
    code = f"import sys; sys.modules['psycopg'] = None; import {module}"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 1
    assert "PostgresSaver needs psycopg: pip install 'graphrt[postgres]'" in proc.stderr.splitlines()[-1]


def test_a_run_completes_when_its_connections_are_terminated_mid_run(pg_dsn: str) -> None:
    with PostgresSaver.from_conn_string(pg_dsn) as saver:
        graph = chain(saver, lambda: terminate_others(pg_dsn))
        assert graph.invoke({"items": ["in"]}, CONFIG, durability="sync") == {"items": ["in", "a", "b", "c"]}
        assert len(list(saver.list(CONFIG))) == 5
        # The same objects go on: a second run on the thread after another terminate.
        terminate_others(pg_dsn)
        assert graph.invoke({"items": ["again"]}, CONFIG, durability="sync")["items"][-4:] == ["again", "a", "b", "c"]


def test_a_run_completes_across_a_server_restart(pg_databases: PgDatabases, pg_dsn: str) -> None:
    server = pg_databases.server
    if server is None:
        pytest.skip("the server comes from GRAPHRT_TEST_PG_DSN; only a server the tests started can be restarted")
    with PostgresSaver.from_conn_string(pg_dsn) as saver:
        graph = chain(saver, server.restart)
        assert graph.invoke({"items": ["in"]}, CONFIG, durability="sync") == {"items": ["in", "a", "b", "c"]}
        assert [t.metadata["step"] for t in saver.list(CONFIG)] == [3, 2, 1, 0, -1]


def test_the_async_saver_completes_a_run_whose_connections_are_terminated(pg_dsn: str) -> None:
    async def main() -> Any:
        async with AsyncPostgresSaver.from_conn_string(pg_dsn) as saver:
            graph = chain(saver, lambda: terminate_others(pg_dsn))
            return await graph.ainvoke({"items": ["in"]}, CONFIG, durability="sync")

    assert asyncio.run(main()) == {"items": ["in", "a", "b", "c"]}


def test_a_lost_single_connection_fails_clearly_and_a_pool_resumes_the_run(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        saver = PostgresSaver(conn)
        graph = chain(saver, lambda: terminate_others(pg_dsn))
        with pytest.raises(ConnectionLostError, match="the connection to PostgreSQL was lost"):
            graph.invoke({"items": ["in"]}, CONFIG, durability="sync")
        with pytest.raises(ConnectionLostError, match="pass a psycopg_pool ConnectionPool"):
            saver.get_tuple(CONFIG)
    # What was saved before the break is intact, and the run resumes from it (b and c run; a does not rerun).
    with PostgresSaver.from_conn_string(pg_dsn) as saver:
        graph = chain(saver, lambda: None)
        assert graph.invoke(None, CONFIG) == {"items": ["in", "a", "b", "c"]}


def test_setup_is_safe_from_many_callers_at_once(pg_dsn: str) -> None:
    code = (
        "import sys; from graphrt.checkpoint.postgres import PostgresSaver\n"
        "with PostgresSaver.from_conn_string(sys.argv[1]) as s: s.setup()"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, pg_dsn], stderr=subprocess.PIPE, text=True) for _ in range(4)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    with psycopg.connect(pg_dsn) as conn:
        versions = conn.execute("SELECT v FROM graphrt_checkpoint_migrations ORDER BY v").fetchall()
    assert versions == [(1,), (2,)]


def test_pipe_is_refused_clearly(pg_dsn: str) -> None:
    with (
        psycopg.connect(pg_dsn, autocommit=True) as conn,
        conn.pipeline() as pipe,
        pytest.raises(TypeError, match=r"PostgresSaver\(pipe=...\) is not supported"),
    ):
        PostgresSaver(conn, pipe=pipe)


def test_from_conn_string_takes_langgraphs_pipeline_flag(pg_dsn: str) -> None:
    """LangGraph's `from_conn_string(dsn, pipeline=True)`: accepted (graphrt batches every transaction anyway)."""
    with PostgresSaver.from_conn_string(pg_dsn, pipeline=True) as saver:
        assert saver.get_tuple({"configurable": {"thread_id": "none"}}) is None

    async def main() -> None:
        async with AsyncPostgresSaver.from_conn_string(pg_dsn, pipeline=True) as saver:
            assert await saver.aget_tuple({"configurable": {"thread_id": "none"}}) is None

    asyncio.run(main())


def test_no_password_in_errors_or_reprs(pg_dsn: str) -> None:
    secret = "s3cr3t-Pa55"
    dead = f"postgresql://someone:{secret}@127.0.0.1:{free_port()}/nowhere?connect_timeout=1"
    with pytest.raises(ConnectionError) as info, PostgresSaver.from_conn_string(dead):
        pass
    assert secret not in str(info.value)
    with psycopg_pool.ConnectionPool(pg_dsn + f" password={secret}", min_size=1, kwargs={"autocommit": True}) as pool:
        saver = PostgresSaver(pool)
        assert secret not in repr(saver)
        assert saver.get_tuple(CONFIG) is None
