"""`AsyncPostgresSaver` on psycopg's asyncio connections: natively async, built the ways LangGraph users build it."""

from __future__ import annotations

import asyncio
import contextvars
import operator
from collections.abc import Iterator
from typing import Annotated, Any, TypedDict

import anyio.to_thread
import psycopg
import psycopg_pool
import pytest
from psycopg.rows import dict_row

from graphrt._postgres import ConnectionLostError
from graphrt.checkpoint.base import BaseCheckpointSaver
from graphrt.checkpoint.postgres.aio import AsyncPostgresSaver
from graphrt.errors import ThreadConflictError
from graphrt.graph import END, START, StateGraph
from tests._pg import free_port
from tests.pg.test_store_connections import terminate_others

CONFIG: Any = {"configurable": {"thread_id": "t"}}


class Items(TypedDict, total=False):
    items: Annotated[list[str], operator.add]


def build(saver: Any, before_b: Any = None) -> Any:
    """a -> b -> c, all async nodes; `before_b()` runs inside b (to break connections mid-run)."""

    async def a(state: Items) -> Items:
        return {"items": ["a"]}

    async def b(state: Items) -> Items:
        if before_b is not None:
            await asyncio.to_thread(before_b)
        return {"items": ["b"]}

    async def c(state: Items) -> Items:
        return {"items": ["c"]}

    builder = StateGraph(Items)
    for name, fn in (("a", a), ("b", b), ("c", c)):
        builder.add_node(name, fn)
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    builder.add_edge("c", END)
    return builder.compile(checkpointer=saver)


@pytest.fixture
def no_worker_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any checkpoint call that would run in a worker thread."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a worker thread was used")

    monkeypatch.setattr(anyio.to_thread, "run_sync", refuse)
    monkeypatch.setattr(BaseCheckpointSaver, "_offload", refuse)
    yield


async def exercise(saver: AsyncPostgresSaver) -> None:
    """Every async method of the saver, through a graph run and directly."""
    graph = build(saver)
    assert await graph.ainvoke({"items": ["in"]}, CONFIG, durability="sync") == {"items": ["in", "a", "b", "c"]}
    assert (await graph.aget_state(CONFIG)).values == {"items": ["in", "a", "b", "c"]}
    history = [s async for s in graph.aget_state_history(CONFIG)]
    assert [s.metadata["step"] for s in history if s.metadata] == [3, 2, 1, 0, -1]
    await graph.aupdate_state(CONFIG, {"items": ["edit"]})
    head = await saver.aget_tuple(CONFIG)
    assert head is not None and head.checkpoint["channel_values"]["items"][-1] == "edit"
    assert await saver.aget_head_id(CONFIG) == head.config["configurable"]["checkpoint_id"]
    await saver.aput_writes(head.config, [("items", ["pending"])], "task-1")
    assert [w[1:] for w in (await saver.aget_tuple(CONFIG)).pending_writes] == [("items", ["pending"])]  # type: ignore[union-attr]
    await saver.acopy_thread("t", "copy")
    assert sorted([t.thread_id async for t in saver.alist_threads()]) == ["copy", "t"]
    await saver.aprune(["copy"])
    assert len([c async for c in saver.alist({"configurable": {"thread_id": "copy"}})]) == 1
    await saver.adelete_thread("copy")
    assert await saver.aget_tuple({"configurable": {"thread_id": "copy"}}) is None
    async with saver.aclaim_thread(CONFIG):
        with pytest.raises(ThreadConflictError):
            await claim_elsewhere(saver)


async def claim_elsewhere(saver: AsyncPostgresSaver) -> None:
    """Claim thread "t" from another run (a fresh context: claims are re-entrant within one)."""

    async def claim() -> None:
        async with saver.aclaim_thread(CONFIG):
            pass

    await asyncio.get_running_loop().create_task(claim(), context=contextvars.Context())


def test_a_user_async_connection_as_langgraph_docs_make_it_runs_without_worker_threads(
    pg_dsn: str, no_worker_threads: None
) -> None:
    async def main() -> None:
        conn = await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True, prepare_threshold=0, row_factory=dict_row)
        async with conn:
            saver = AsyncPostgresSaver(conn)
            await saver.setup()
            await exercise(saver)
            assert conn.row_factory is dict_row  # the user's connection settings are left alone
            assert (await (await conn.execute("SELECT 1 AS one")).fetchone()) == {"one": 1}

    asyncio.run(main())


def test_an_async_connection_pool_runs_without_worker_threads(pg_dsn: str, no_worker_threads: None) -> None:
    async def main() -> None:
        async with psycopg_pool.AsyncConnectionPool(
            pg_dsn, max_size=4, kwargs={"autocommit": True, "row_factory": dict_row}, open=False
        ) as pool:
            saver = AsyncPostgresSaver(pool)
            await saver.setup()
            await exercise(saver)
            # Runs on different threads go in parallel, each in its own transactions.
            graph = build(saver)
            results = await asyncio.gather(
                *(graph.ainvoke({"items": [str(i)]}, {"configurable": {"thread_id": f"p{i}"}}) for i in range(6))
            )
            assert [r["items"] for r in results] == [[str(i), "a", "b", "c"] for i in range(6)]

    asyncio.run(main())


def test_from_conn_string_runs_without_worker_threads(pg_dsn: str, no_worker_threads: None) -> None:
    async def main() -> None:
        async with AsyncPostgresSaver.from_conn_string(pg_dsn) as saver:
            await saver.setup()
            await exercise(saver)

    asyncio.run(main())


def test_a_pooled_saver_completes_a_run_whose_connections_are_terminated(pg_dsn: str) -> None:
    async def main() -> Any:
        async with psycopg_pool.AsyncConnectionPool(pg_dsn, kwargs={"autocommit": True}, open=False) as pool:
            saver = AsyncPostgresSaver(pool)
            graph = build(saver, lambda: terminate_others(pg_dsn))
            first = await graph.ainvoke({"items": ["in"]}, CONFIG, durability="sync")
            terminate_others(pg_dsn)  # and while idle between runs
            second = await graph.ainvoke({"items": ["again"]}, CONFIG, durability="sync")
            return first, second, len([c async for c in saver.alist(CONFIG)])

    first, second, saved = asyncio.run(main())
    assert first == {"items": ["in", "a", "b", "c"]}
    assert second["items"][-4:] == ["again", "a", "b", "c"]
    assert saved == 10


def test_a_lost_single_async_connection_fails_clearly(pg_dsn: str) -> None:
    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
            saver = AsyncPostgresSaver(conn)
            graph = build(saver, lambda: terminate_others(pg_dsn))
            with pytest.raises(ConnectionLostError, match="the connection to PostgreSQL was lost"):
                await graph.ainvoke({"items": ["in"]}, CONFIG, durability="sync")
            with pytest.raises(ConnectionLostError, match="pass a psycopg_pool AsyncConnectionPool"):
                await saver.aget_tuple(CONFIG)
        # What was saved before the break is intact: the run resumes from it on a new saver.
        async with AsyncPostgresSaver.from_conn_string(pg_dsn) as fresh:
            assert await build(fresh).ainvoke(None, CONFIG) == {"items": ["in", "a", "b", "c"]}

    asyncio.run(main())


def test_sync_connections_are_refused_with_what_to_pass(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn, pytest.raises(TypeError) as info:
        AsyncPostgresSaver(conn)
    assert "takes a psycopg AsyncConnection or a psycopg_pool AsyncConnectionPool" in str(info.value)
    assert "use PostgresSaver" in str(info.value)
    with pytest.raises(TypeError, match="from_conn_string"):
        AsyncPostgresSaver(pg_dsn)


def test_sync_methods_work_off_the_event_loop_and_refuse_on_it(pg_dsn: str) -> None:
    async def main() -> None:
        async with AsyncPostgresSaver.from_conn_string(pg_dsn) as saver:
            graph = build(saver)
            await graph.ainvoke({"items": ["in"]}, CONFIG, durability="sync")
            with pytest.raises(RuntimeError, match="cannot run on the event loop's thread"):
                saver.get_tuple(CONFIG)
            # From another thread, while the loop runs: the call runs on the loop.
            got = await asyncio.to_thread(lambda: saver.get_tuple(CONFIG))
            assert got is not None and got.checkpoint["channel_values"]["items"] == ["in", "a", "b", "c"]
            assert await asyncio.to_thread(lambda: len(list(saver.list(CONFIG)))) == 5

    asyncio.run(main())

    async def connect() -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True)

    conn = asyncio.run(connect())
    try:  # outside any event loop (a script, a sync test): on a private loop
        saver = AsyncPostgresSaver(conn)
        got = saver.get_tuple(CONFIG)
        assert got is not None and got.checkpoint["channel_values"]["items"] == ["in", "a", "b", "c"]
        assert [t.thread_id for t in saver.list_threads()] == ["t"]
        saver.copy_thread("t", "s")
        assert saver.get_head_id({"configurable": {"thread_id": "s"}}) == got.config["configurable"]["checkpoint_id"]
    finally:
        asyncio.run(conn.close())


def test_a_claim_is_renewed_while_an_async_run_holds_it(pg_dsn: str) -> None:
    """The renewal thread reaches the async-only saver through its event loop."""

    async def main() -> None:
        async with AsyncPostgresSaver.from_conn_string(pg_dsn) as saver:
            saver.lease_seconds = 0.6
            async with saver.aclaim_thread(CONFIG):
                await asyncio.sleep(1.5)  # well past the lease: only renewal keeps it
                with pytest.raises(ThreadConflictError):
                    await claim_elsewhere(saver)
            await claim_elsewhere(saver)  # released at the end of the block

    asyncio.run(main())


def test_no_password_in_errors_or_reprs(pg_dsn: str) -> None:
    secret = "s3cr3t-Pa55"
    dead = f"postgresql://someone:{secret}@127.0.0.1:{free_port()}/nowhere?connect_timeout=1"

    async def main() -> None:
        with pytest.raises(ConnectionError) as info:
            async with AsyncPostgresSaver.from_conn_string(dead):
                pass
        assert secret not in str(info.value)
        async with psycopg_pool.AsyncConnectionPool(
            pg_dsn + f" password={secret}", kwargs={"autocommit": True}, open=False
        ) as pool:
            saver = AsyncPostgresSaver(pool)
            assert secret not in repr(saver)
            assert await saver.aget_tuple(CONFIG) is None

    asyncio.run(main())
