"""`AsyncPostgresStore` on psycopg's asyncio connections: natively async, built the ways LangGraph users build it."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Iterator
from typing import Any

import anyio.to_thread
import psycopg
import psycopg_pool
import pytest
from psycopg.rows import dict_row

from graphrt._postgres import ConnectionLostError
from graphrt.store.base import BaseStore, GetOp, IndexConfig, PutOp, SearchOp
from graphrt.store.postgres import PostgresStore
from graphrt.store.postgres.aio import AsyncPostgresStore
from tests._pg import free_port
from tests.pg.test_store_connections import terminate_others

DIMS = 16


def _vector(text: str) -> list[float]:
    vector = [0.0] * DIMS
    for word in text.split():
        vector[zlib.crc32(word.encode()) % DIMS] += 1.0
    return vector


class AsyncOnlyEmbeddings:
    """An embedder whose sync methods must not be called (they would need a worker thread)."""

    def __init__(self) -> None:
        self.calls = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        raise AssertionError("the sync embedder was called")

    def embed_query(self, text: str) -> list[float]:
        raise AssertionError("the sync embedder was called")

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return [_vector(text) for text in texts]

    async def aembed_query(self, text: str) -> list[float]:
        self.calls += 1
        return _vector(text)


def index(embeddings: Any) -> IndexConfig:
    return {"dims": DIMS, "embed": embeddings, "fields": ["text"]}


@pytest.fixture
def no_worker_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail any store call that would run in a worker thread."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a worker thread was used")

    monkeypatch.setattr(anyio.to_thread, "run_sync", refuse)
    monkeypatch.setattr(asyncio, "to_thread", refuse)
    yield


async def exercise(store: AsyncPostgresStore) -> None:
    """Every async method of the store, with TTL and vector search."""
    await store.aput(("docs", "a"), "1", {"text": "cats purr", "n": 1})
    await store.aput(("docs", "b"), "2", {"text": "dogs bark", "n": 2}, ttl=10)
    await store.aput(("docs", "b"), "3", {"text": "plain", "n": 3}, index=False)
    item = await store.aget(("docs", "a"), "1")
    assert item is not None and item.value == {"text": "cats purr", "n": 1}
    assert [i.key for i in await store.asearch(("docs",))] == ["3", "2", "1"]
    assert [i.key for i in await store.asearch(("docs",), filter={"n": 2})] == ["2"]
    found = await store.asearch(("docs",), query="cats purr")
    assert found[0].key == "1" and found[0].score == pytest.approx(1.0, abs=1e-6)
    assert found[-1].key == "3" and found[-1].score is None  # unindexed items come after the scored ones
    assert await store.alist_namespaces() == [("docs", "a"), ("docs", "b")]
    results = await store.abatch([GetOp(("docs", "b"), "2"), SearchOp(("docs", "a")), PutOp(("docs", "a"), "1", None)])
    assert results[0].value["n"] == 2  # type: ignore[union-attr]
    assert [i.key for i in results[1]] == ["1"]  # type: ignore[union-attr]
    assert await store.aget(("docs", "a"), "1") is None
    await store.adelete(("docs", "b"), "3")
    assert await store.alist_namespaces() == [("docs", "b")]
    assert await store.sweep_ttl() == 0
    task = await store.start_ttl_sweeper(sweep_interval_minutes=1)
    assert not task.done()
    assert await store.stop_ttl_sweeper(timeout=1)


@pytest.mark.parametrize("pgvector", [None, False], ids=["pgvector", "exact"])
def test_a_user_async_connection_as_langgraph_docs_make_it_runs_without_worker_threads(
    pg_dsn: str, no_worker_threads: None, pgvector: bool | None
) -> None:
    embeddings = AsyncOnlyEmbeddings()

    async def main() -> None:
        conn = await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True, prepare_threshold=0, row_factory=dict_row)
        async with conn:
            store = AsyncPostgresStore(conn, index=index(embeddings), ttl={"default_ttl": None}, pgvector=pgvector)
            await store.setup()
            assert store._ann is (pgvector is None)
            await exercise(store)
            assert conn.row_factory is dict_row  # the user's connection settings are left alone
            assert (await (await conn.execute("SELECT 1 AS one")).fetchone()) == {"one": 1}

    asyncio.run(main())
    assert embeddings.calls == 3  # two puts, one query: each on the async embedder


def test_an_async_connection_pool_runs_without_worker_threads_and_in_parallel(
    pg_dsn: str, no_worker_threads: None
) -> None:
    async def main() -> None:
        async with psycopg_pool.AsyncConnectionPool(
            pg_dsn, max_size=4, kwargs={"autocommit": True, "row_factory": dict_row}, open=False
        ) as pool:
            store = AsyncPostgresStore(pool, index=index(AsyncOnlyEmbeddings()))
            await store.setup()
            await exercise(store)
            # Calls in flight at once each run on a connection of their own.
            await asyncio.gather(*(store.aput(("p", str(i % 3)), f"k{i}", {"text": f"t{i}"}) for i in range(24)))
            got = await asyncio.gather(*(store.aget(("p", str(i % 3)), f"k{i}") for i in range(24)))
            assert [g.value for g in got if g is not None] == [{"text": f"t{i}"} for i in range(24)]
            assert len(await store.asearch(("p",), limit=50)) == 24

    asyncio.run(main())


def test_from_conn_string_runs_without_worker_threads(pg_dsn: str, no_worker_threads: None) -> None:
    async def main() -> None:
        async with AsyncPostgresStore.from_conn_string(
            pg_dsn, pipeline=True, pool_config={"min_size": 1, "max_size": 2}, index=index(AsyncOnlyEmbeddings())
        ) as store:
            await store.setup()
            await exercise(store)

    asyncio.run(main())


def test_sync_connections_are_refused_with_what_to_pass(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn, pytest.raises(TypeError) as info:
        AsyncPostgresStore(conn)
    assert "takes a psycopg AsyncConnection or a psycopg_pool AsyncConnectionPool" in str(info.value)
    assert "use PostgresStore" in str(info.value)
    with (
        psycopg_pool.ConnectionPool(pg_dsn, min_size=1, open=True) as pool,
        pytest.raises(TypeError, match="use PostgresStore"),
    ):
        AsyncPostgresStore(pool)
    with pytest.raises(TypeError, match="from_conn_string"):
        AsyncPostgresStore(pg_dsn)


def test_a_pipeline_with_a_pool_is_refused_as_langgraph_refuses_it(pg_dsn: str) -> None:
    async def main() -> None:
        async with psycopg_pool.AsyncConnectionPool(pg_dsn, open=False) as pool:
            with pytest.raises(ValueError, match="Pipeline should be used only with a single AsyncConnection"):
                AsyncPostgresStore(pool, pipe=object())

    asyncio.run(main())


def test_sync_methods_work_off_the_event_loop_and_refuse_on_it(pg_dsn: str) -> None:
    async def main() -> None:
        async with AsyncPostgresStore.from_conn_string(pg_dsn) as store:
            await store.aput(("a",), "k", {"v": 1})
            for call in (
                lambda: store.get(("a",), "k"),
                lambda: store.put(("a",), "k", {"v": 2}),
                lambda: store.search(("a",)),
                lambda: store.delete(("a",), "k"),
                lambda: store.list_namespaces(),
                lambda: store.batch([GetOp(("a",), "k")]),
            ):
                with pytest.raises(asyncio.InvalidStateError, match="Synchronous calls to AsyncPostgresStore"):
                    call()
            with pytest.raises(asyncio.InvalidStateError, match=r"replace `store.put\(...\)` with `await store.aput"):
                store.put(("a",), "k", {"v": 2})
            # From another thread, while the loop runs: the call runs on the loop.
            await asyncio.to_thread(lambda: store.put(("a",), "k2", {"v": 2}))
            got = await asyncio.to_thread(lambda: store.get(("a",), "k2"))
            assert got is not None and got.value == {"v": 2}
            assert [i.key for i in await asyncio.to_thread(lambda: store.search(("a",)))] == ["k2", "k"]

    asyncio.run(main())

    async def connect() -> psycopg.AsyncConnection[Any]:
        return await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True)

    conn = asyncio.run(connect())
    try:  # outside any event loop (a script, a sync test): on a private loop
        store = AsyncPostgresStore(conn)
        assert [i.key for i in store.search(("a",))] == ["k2", "k"]
        store.put(("b",), "k", {"v": 3})
        assert store.list_namespaces() == [("a",), ("b",)]
        assert store.sweep_ttl is not None and store._sweep() == 0
    finally:
        asyncio.run(conn.close())


def test_the_same_database_serves_the_sync_and_the_async_store(pg_dsn: str) -> None:
    with PostgresStore.from_conn_string(pg_dsn) as sync_store:
        sync_store.put(("shared",), "from-sync", {"v": 1})

        async def main() -> list[str]:
            async with AsyncPostgresStore.from_conn_string(pg_dsn) as store:
                await store.aput(("shared",), "from-async", {"v": 2})
                return [i.key for i in await store.asearch(("shared",))]

        assert asyncio.run(main()) == ["from-async", "from-sync"]
        assert [i.key for i in sync_store.search(("shared",))] == ["from-async", "from-sync"]


def test_a_deserializer_reads_the_stored_values(pg_dsn: str) -> None:
    seen: list[bytes] = []

    def deserializer(raw: bytes) -> dict[str, Any]:
        seen.append(raw)
        return {"raw": raw.decode()}

    async def main() -> None:
        conn = await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True)
        async with conn:
            store = AsyncPostgresStore(conn, deserializer=deserializer)
            await store.aput(("a",), "k", {"v": 1})
            item = await store.aget(("a",), "k")
            assert item is not None and item.value == {"raw": '{"v":1}'}
            assert [i.value for i in await store.asearch(("a",))] == [{"raw": '{"v":1}'}]

    asyncio.run(main())
    assert seen == [b'{"v":1}', b'{"v":1}']


def test_a_pooled_store_survives_terminated_connections(pg_dsn: str) -> None:
    async def main() -> list[str]:
        async with psycopg_pool.AsyncConnectionPool(
            pg_dsn, min_size=2, max_size=2, kwargs={"autocommit": True}, open=False
        ) as pool:
            store = AsyncPostgresStore(pool)
            await store.aput(("a",), "k", {"v": 1})
            for call in (
                lambda: store.aput(("a",), "k2", {"v": 2}),  # one statement, no transaction block
                lambda: store.aget(("a",), "k"),
                lambda: store.abatch([PutOp(("a",), "k3", {"v": 3}), PutOp(("a",), "k4", {"v": 4})]),
                lambda: store.asearch(("a",)),
            ):
                assert terminate_others(pg_dsn) >= 1
                await call()
            return [item.key for item in await store.asearch(("a",))]

    assert asyncio.run(main()) == ["k4", "k3", "k2", "k"]


def test_a_lost_single_async_connection_fails_clearly(pg_dsn: str) -> None:
    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as conn:
            store = AsyncPostgresStore(conn)
            await store.aput(("a",), "k", {"v": 1})
            terminate_others(pg_dsn)
            with pytest.raises(ConnectionLostError, match="the connection to PostgreSQL was lost"):
                await store.aget(("a",), "k")
            with pytest.raises(ConnectionLostError, match="pass a psycopg_pool AsyncConnectionPool"):
                await store.aget(("a",), "k")
        async with AsyncPostgresStore.from_conn_string(pg_dsn) as fresh:  # what was saved is intact
            item = await fresh.aget(("a",), "k")
            assert item is not None and item.value == {"v": 1}

    asyncio.run(main())


def test_no_password_in_errors_or_reprs(pg_dsn: str) -> None:
    secret = "s3cr3t-Pa55"
    dead = f"postgresql://someone:{secret}@127.0.0.1:{free_port()}/nowhere?connect_timeout=1"

    async def main() -> None:
        with pytest.raises(ConnectionError) as info:
            async with AsyncPostgresStore.from_conn_string(dead):
                pass
        assert secret not in str(info.value)
        with pytest.raises(ValueError, match="invalid connection string") as bad:
            async with AsyncPostgresStore.from_conn_string(f"password={secret} nonsense"):
                pass
        assert secret not in str(bad.value)
        async with psycopg_pool.AsyncConnectionPool(
            pg_dsn + f" password={secret}", kwargs={"autocommit": True}, open=False
        ) as pool:
            store = AsyncPostgresStore(pool)
            assert secret not in repr(store) and repr(store) == "<AsyncPostgresStore pooled>"
            assert await store.aget(("a",), "k") is None

    asyncio.run(main())


def test_is_a_base_store() -> None:
    assert issubclass(AsyncPostgresStore, BaseStore)


def test_from_conn_string_keeps_a_connection_for_calls_made_one_at_a_time(pg_dsn: str) -> None:
    async def main() -> None:
        async with AsyncPostgresStore.from_conn_string(pg_dsn) as store:
            await store.setup()
            pool = store._connector.pool
            before = pool.get_stats().get("requests_num", 0)
            for i in range(10):
                await store.aput(("a",), f"k{i}", {"v": i})
                assert await store.aget(("a",), f"k{i}") is not None
                assert [item.key for item in await store.asearch(("a",), limit=1)] == [f"k{i}"]
            assert pool.get_stats().get("requests_num", 0) - before <= 1
            terminate_others(pg_dsn)  # the kept connection dies: the next call runs on a new one
            await store.aput(("a",), "k10", {"v": 10})
            assert len(await store.asearch(("a",), limit=20)) == 11

    asyncio.run(main())


@pytest.mark.parametrize("node", ["async", "sync"])
def test_the_async_store_in_an_async_graph(pg_dsn: str, node: str) -> None:
    """The seeds' memory chatbot under `ainvoke`: an async node awaits the store; a sync node (run off the
    event loop's thread) calls its sync methods, which run on the loop."""
    from graphrt.embeddings import StaticEmbeddings
    from tests.test_store_in_graphs import acall_model, ask, call_model, chatbot

    async def main() -> None:
        index: IndexConfig = {"embed": StaticEmbeddings(), "dims": 256}
        async with AsyncPostgresStore.from_conn_string(pg_dsn, index=index) as store:
            await store.setup()
            graph = chatbot(store, acall_model if node == "async" else call_model)
            await graph.ainvoke(ask("Remember: my name is Bob"), {"configurable": {"thread_id": "1", "user_id": "u"}})
            out = await graph.ainvoke(ask("what is my name?"), {"configurable": {"thread_id": "2", "user_id": "u"}})
            assert out["messages"][-1].content == "User info: User name is Bob"

    asyncio.run(main())
