"""What only the SQLite store has: files that outlive the process, other connections, setup."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest

from graphrt.store.base import PutOp
from graphrt.store.sqlite import SqliteStore, connect
from graphrt.store.sqlite.aio import AsyncSqliteStore
from tests.store.conftest import DIMS, FakeTime, hash_embed, index_config


def test_items_and_vectors_survive_reopening(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    with SqliteStore.from_conn_string(path, index=index_config(fields=["text"])) as store:
        store.setup()
        store.put(("d",), "k", {"text": "cats"})
        store.put(("d",), "j", {"text": "dogs"})
    with SqliteStore.from_conn_string(path, index=index_config(fields=["text"])) as store:
        assert store.get(("d",), "k").value == {"text": "cats"}
        assert [r.key for r in store.search(("d",), query="cats")] == ["k", "j"]


def test_memory_database_works() -> None:
    with SqliteStore.from_conn_string(":memory:", index=index_config(fields=["text"])) as store:
        store.put(("d",), "k", {"text": "cats"})
        assert store.search(("d",), query="cats")[0].key == "k"


def test_setup_is_idempotent_and_optional(tmp_path: Path) -> None:
    with SqliteStore.from_conn_string(str(tmp_path / "s.db")) as store:
        store.put(("d",), "k", {"v": 1})
        store.setup()
        store.setup()
        assert store.get(("d",), "k").value == {"v": 1}


def test_a_second_connection_sees_writes_and_new_vectors(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    index = index_config(fields=["text"])
    with SqliteStore.from_conn_string(path, index=index) as one, SqliteStore.from_conn_string(path, index=index) as two:
        one.put(("d",), "k", {"text": "dogs"})
        assert [r.key for r in two.search(("d",), query="cats")] == ["k"]  # loads two's vector cache
        one.put(("d",), "j", {"text": "cats"})
        one.delete(("d",), "k")
        assert [r.key for r in two.search(("d",), query="cats")] == ["j"]
        two.put(("d",), "k", {"text": "cats dogs"})
        assert [r.key for r in one.search(("d",), query="cats")] == ["j", "k"]


def test_a_connection_with_implicit_transactions_is_switched_to_autocommit(tmp_path: Path) -> None:
    conn = sqlite3.connect(str(tmp_path / "s.db"), check_same_thread=False)
    store = SqliteStore(conn)
    store.put(("d",), "k", {"v": 1})
    conn.close()
    with SqliteStore.from_conn_string(str(tmp_path / "s.db")) as again:
        assert again.get(("d",), "k").value == {"v": 1}


def test_vectors_of_another_width_are_a_clear_error(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    with SqliteStore.from_conn_string(path, index=index_config(fields=["text"])) as store:
        store.put(("d",), "k", {"text": "cats"})
    narrow = {"dims": DIMS // 2, "embed": lambda texts: [v[: DIMS // 2] for v in hash_embed(texts)]}
    message = f"saved vectors are {DIMS}-dimensional, not {DIMS // 2}-dimensional"
    with (
        SqliteStore.from_conn_string(path, index=narrow) as store,  # type: ignore[arg-type]
        pytest.raises(ValueError, match=message),
    ):
        store.search(("d",), query="cats")


def test_failed_batch_leaves_nothing_behind(tmp_path: Path) -> None:
    calls = []

    def flaky(texts: list[str]) -> list[list[float]]:
        calls.append(texts)
        if len(calls) == 2:
            raise RuntimeError("embedder down")
        return hash_embed(texts)

    with SqliteStore.from_conn_string(str(tmp_path / "s.db"), index={"dims": DIMS, "embed": flaky}) as store:
        store.put(("d",), "k", {"text": "cats"})
        with pytest.raises(RuntimeError, match="embedder down"):
            store.put(("d",), "j", {"text": "dogs"})
        assert store.get(("d",), "j") is None
        assert [r.key for r in store.search(("d",))] == ["k"]


def test_async_store_from_conn_string_and_sweeper(tmp_path: Path) -> None:
    async def main() -> None:
        async with AsyncSqliteStore.from_conn_string(str(tmp_path / "s.db"), ttl={"default_ttl": 0.001}) as store:
            await store.setup()
            await store.aput(("d",), "k", {"v": 1})
            task = await store.start_ttl_sweeper(sweep_interval_minutes=0.001)  # type: ignore[arg-type]
            assert await store.start_ttl_sweeper() is task
            for _ in range(100):
                await asyncio.sleep(0.02)
                if await store.aget(("d",), "k", refresh_ttl=False) is None and not await store.asearch(("d",)):
                    break
            assert await store.stop_ttl_sweeper(timeout=1) is True
            assert await store.sweep_ttl() == 0
            assert store.conn.execute("SELECT COUNT(*) FROM graphrt_store").fetchone()[0] == 0

    asyncio.run(main())


def test_sync_sweeper_thread_deletes_expired_items(tmp_path: Path) -> None:
    with SqliteStore.from_conn_string(str(tmp_path / "s.db")) as store:
        store.put(("d",), "k", {"v": 1}, ttl=0.001)
        future = store.start_ttl_sweeper(sweep_interval_minutes=0.001)  # type: ignore[arg-type]
        deadline = time.monotonic() + 5
        while store.conn.execute("SELECT COUNT(*) FROM graphrt_store").fetchone()[0] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert store.conn.execute("SELECT COUNT(*) FROM graphrt_store").fetchone()[0] == 0
        assert store.stop_ttl_sweeper(timeout=2) is True
        assert future.done()


def test_wal_and_busy_timeout_are_set(tmp_path: Path) -> None:
    conn = connect(str(tmp_path / "s.db"))
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    conn.close()


def test_get_after_get_sees_other_connections_writes_and_deletes(tmp_path: Path) -> None:
    path = str(tmp_path / "s.db")
    with SqliteStore.from_conn_string(path) as one, SqliteStore.from_conn_string(path) as two:
        one.put(("d",), "k", {"v": 1})
        assert two.get(("d",), "k").value == {"v": 1}  # remembered by two
        one.put(("d",), "k", {"v": 2})
        assert two.get(("d",), "k").value == {"v": 2}
        one.delete(("d",), "k")
        assert two.get(("d",), "k") is None


def test_get_after_get_sees_this_stores_own_writes(tmp_path: Path) -> None:
    with SqliteStore.from_conn_string(str(tmp_path / "s.db")) as store:
        store.put(("d",), "k", {"v": 1})
        first = store.get(("d",), "k")
        store.put(("d",), "k", {"v": 2})
        second = store.get(("d",), "k")
        assert second.value == {"v": 2}
        assert second.created_at == first.created_at and second.updated_at > first.updated_at
        store.batch([PutOp(("d",), "k", None)])
        assert store.get(("d",), "k") is None


def test_each_get_returns_its_own_copy_of_the_value(tmp_path: Path) -> None:
    with SqliteStore.from_conn_string(str(tmp_path / "s.db")) as store:
        store.put(("d",), "k", {"v": [1]})
        store.get(("d",), "k").value["v"].append(2)  # read from the database
        store.get(("d",), "k").value["v"].append(3)  # remembered
        assert store.get(("d",), "k").value == {"v": [1]}


def test_a_store_on_a_shared_connection_does_not_remember_reads(tmp_path: Path) -> None:
    conn = connect(str(tmp_path / "s.db"))
    store = SqliteStore(conn)
    store.put(("d",), "k", {"v": 1})
    assert store.get(("d",), "k").value == {"v": 1}
    # A change through the same connection does not move PRAGMA data_version: only a fresh read sees it.
    conn.execute("UPDATE graphrt_store SET value = ? WHERE key = 'k'", ('{"v": 2}',))
    assert store.get(("d",), "k").value == {"v": 2}
    conn.close()


def test_a_remembered_item_is_still_refreshed_by_get(tmp_path: Path, clock: FakeTime) -> None:
    with SqliteStore.from_conn_string(str(tmp_path / "s.db")) as store:
        store.put(("t",), "k", {"v": 1}, ttl=10)
        assert store.get(("t",), "k", refresh_ttl=False) is not None
        clock.advance(8)
        assert store.get(("t",), "k") is not None  # pushes expiry to minute 18
        clock.advance(5)
        assert store.get(("t",), "k", refresh_ttl=False) is not None


def test_setup_upgrades_a_database_numbered_with_the_old_dialect_steps(tmp_path: Path) -> None:
    # Stores from before the one portable schema recorded PostgreSQL-only steps as versions 1000 and up.
    path = str(tmp_path / "s.db")
    with SqliteStore.from_conn_string(path) as store:
        store.setup()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DROP TABLE graphrt_store_changes")
        conn.execute("DELETE FROM graphrt_store_migrations WHERE v >= 5")  # the counter table's step and later
        conn.execute("INSERT INTO graphrt_store_migrations (v) VALUES (1000), (1001)")
    conn.close()
    with SqliteStore.from_conn_string(path) as store:
        store.setup()
        version = store.conn.execute("SELECT version FROM graphrt_store_changes").fetchone()
        assert version == (0,)
        assert max(v for (v,) in store.conn.execute("SELECT v FROM graphrt_store_migrations")) < 1000


def test_the_last_write_of_a_key_in_a_batch_is_the_newest(tmp_path: Path) -> None:
    with SqliteStore.from_conn_string(str(tmp_path / "s.db")) as store:
        store.batch([PutOp(("d",), "a", {"v": 1}), PutOp(("d",), "b", {"v": 1}), PutOp(("d",), "a", {"v": 2})])
        assert [item.key for item in store.search(("d",))] == ["a", "b"]


def test_a_large_filtered_page_over_many_namespaces_is_newest_first(tmp_path: Path) -> None:
    # More namespaces than are merged one by one, and a page big enough to scan the table in storage order.
    with SqliteStore.from_conn_string(str(tmp_path / "s.db")) as store:
        for i in range(80):
            store.put(("p", f"n{i % 40}"), f"k{i}", {"kind": "odd" if i % 2 else "even", "i": i})
        for i in range(0, 80, 4):  # rewrite some old rows: write order no longer follows row ids
            store.put(("p", f"n{i % 40}"), f"k{i}", {"kind": "even", "i": i})
        hits = store.search(("p",), filter={"kind": "even"}, limit=100)
        assert [hit.key for hit in hits] == [f"k{i}" for i in range(76, -1, -4)] + [f"k{i}" for i in range(78, 0, -4)]


def test_get_is_one_statement(tmp_path: Path) -> None:
    conn = connect(str(tmp_path / "s.db"))
    store = SqliteStore(conn)
    store.put(("d",), "k", {"v": 1})
    statements: list[str] = []
    conn.set_trace_callback(statements.append)
    assert store.get(("d",), "k").value == {"v": 1}
    assert store.get(("d",), "missing") is None
    assert [s.split()[0] for s in statements] == ["SELECT", "SELECT"]
    conn.close()
