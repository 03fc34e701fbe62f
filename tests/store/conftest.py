"""Store backends for the contract suite, a tiny deterministic embedder, and a sync/async driver."""

from __future__ import annotations

import asyncio
import inspect
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from graphrt.store.base import BaseStore, IndexConfig, TTLConfig
from graphrt.store.memory import InMemoryStore
from graphrt.store.sqlite import SqliteStore, connect
from graphrt.store.sqlite.aio import AsyncSqliteStore

DIMS = 32


def hash_embed(texts: list[str]) -> list[list[float]]:
    """Bag of words hashed into DIMS buckets: texts sharing words are similar, deterministically."""
    vectors = []
    for text in texts:
        vector = [0.0] * DIMS
        for word in text.lower().replace('"', " ").replace(",", " ").split():
            vector[zlib.crc32(word.encode()) % DIMS] += 1.0
        vectors.append(vector)
    return vectors


async def ahash_embed(texts: list[str]) -> list[list[float]]:
    return hash_embed(texts)


class HashEmbeddings:
    """An object with LangChain's Embeddings methods; counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return hash_embed(texts)

    def embed_query(self, text: str) -> list[float]:
        self.calls += 1
        return hash_embed([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        return self.embed_query(text)


def index_config(fields: list[str] | None = None, embed: Any = hash_embed) -> IndexConfig:
    config: IndexConfig = {"dims": DIMS, "embed": embed}
    if fields is not None:
        config["fields"] = fields
    return config


Factory = Callable[[Path, IndexConfig | None, TTLConfig | None], Any]


@contextmanager
def _memory(path: Path, index: IndexConfig | None, ttl: TTLConfig | None) -> Iterator[BaseStore]:
    store = InMemoryStore(index=index, ttl=ttl)
    yield store
    store.stop_ttl_sweeper(timeout=1)


@contextmanager
def _sqlite(path: Path, index: IndexConfig | None, ttl: TTLConfig | None) -> Iterator[BaseStore]:
    with SqliteStore.from_conn_string(str(path / "store.db"), index=index, ttl=ttl) as store:
        store.setup()
        yield store


@contextmanager
def _postgres(path: Path, index: IndexConfig | None, ttl: TTLConfig | None) -> Iterator[BaseStore]:
    from graphrt.store.postgres import PostgresStore

    with PostgresStore.from_conn_string(pg_dsn_for(path), index=index, ttl=ttl) as store:
        store.setup()
        yield store


@contextmanager
def _postgres_aio(path: Path, index: IndexConfig | None, ttl: TTLConfig | None) -> Iterator[BaseStore]:
    """`AsyncPostgresStore` on a user's `AsyncConnection`, natively async: no call may use a worker thread
    (the test's event loops come and go, one per call, so one connection rather than a pool). Searches use
    the exact vector scan a server without pgvector gets ("postgres" searches with pgvector)."""
    import psycopg
    from psycopg.rows import dict_row

    from graphrt.store.postgres.aio import AsyncPostgresStore

    conn = asyncio.run(psycopg.AsyncConnection.connect(pg_dsn_for(path), autocommit=True, row_factory=dict_row))
    try:
        with _threads_refused():
            yield AsyncPostgresStore(conn, index=index, ttl=ttl, pgvector=False)
    finally:
        asyncio.run(conn.close())


@contextmanager
def _threads_refused() -> Iterator[None]:
    """Fail any store call that would run in a worker thread (a sync embedder's calls excepted)."""
    import anyio.to_thread

    real = anyio.to_thread.run_sync

    def refuse(func: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(func, "__name__", "") in ("embed_documents", "embed_query"):
            return real(func, *args, **kwargs)  # a sync embedder's call, as on every store
        raise AssertionError(f"a worker thread was used for {func!r}")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(anyio.to_thread, "run_sync", refuse)
        yield


@contextmanager
def _sqlite_aio(path: Path, index: IndexConfig | None, ttl: TTLConfig | None) -> Iterator[BaseStore]:
    conn = connect(str(path / "store.db"))
    try:
        yield AsyncSqliteStore(conn, index=index, ttl=ttl)
    finally:
        conn.close()


BACKENDS: dict[str, Factory] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "sqlite-aio": _sqlite_aio,
    "postgres": _postgres,
    "postgres-aio": _postgres_aio,
}
"""Every store backend; a new backend adds one line here and runs the whole contract suite."""


class Driver:
    """Calls a store's sync methods, or runs their async twins, from one test body."""

    def __init__(self, store: BaseStore, mode: str) -> None:
        self.store = store
        self.mode = mode

    def __getattr__(self, name: str) -> Callable[..., Any]:
        twin = getattr(self.store, "a" + name, None)
        method = twin if self.mode == "async" and twin is not None else getattr(self.store, name)

        def run(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            # Methods without an `a` twin (sweep_ttl) are async on the async store itself.
            return asyncio.run(result) if inspect.iscoroutine(result) else result

        return run


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


_PG_DSNS: dict[Path, str] = {}
"""The test database of each store folder (Postgres stores of one test share the test's database)."""


def pg_dsn_for(folder: Path) -> str:
    return _PG_DSNS[folder.parent]


@pytest.fixture
def make(backend: str, mode: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Driver]]:
    """Build a store of the current backend (index/ttl optional), driven in the current mode."""
    opened: list[Any] = []
    if backend.startswith("postgres"):
        _PG_DSNS[tmp_path] = request.getfixturevalue("pg_dsn")

    def build(index: IndexConfig | None = None, ttl: TTLConfig | None = None) -> Driver:
        folder = tmp_path / f"s{len(opened)}"
        folder.mkdir()
        context = BACKENDS[backend](folder, index, ttl)
        opened.append(context)
        return Driver(context.__enter__(), mode)

    yield build
    for context in reversed(opened):
        context.__exit__(None, None, None)
    _PG_DSNS.pop(tmp_path, None)


@pytest.fixture
def store(make: Callable[..., Driver]) -> Driver:
    return make()


@pytest.fixture
def vstore(make: Callable[..., Driver]) -> Driver:
    return make(index=index_config(fields=["text"]))


class FakeTime:
    """Stands in for the `time` module inside the store's clock, so TTL tests need no sleeping."""

    def __init__(self) -> None:
        self.ns = 1_800_000_000 * 10**9

    def time_ns(self) -> int:
        return self.ns

    def advance(self, minutes: float) -> None:
        self.ns += int(minutes * 60 * 10**9)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr("graphrt.store._plan.time", fake)
    return fake
