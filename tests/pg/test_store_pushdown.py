"""The PostgreSQL store's SQL filter pushdown and one-statement put: same answers as the in-memory store."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import pq

from graphrt.checkpoint._dialect import POSTGRES
from graphrt.store import _sql
from graphrt.store.base import PutOp
from graphrt.store.memory import InMemoryStore
from graphrt.store.postgres import PostgresStore
from graphrt.store.postgres._filter import pushdown

VALUES: list[dict[str, Any]] = [
    {"a": 1},
    {"a": 1.0},
    {"a": True},
    {"a": False},
    {"a": 0},
    {"a": -0.0},
    {"a": 0.1},
    {"a": "1"},
    {"a": None},
    {},
    {"a": [1]},
    {"a": {"b": 2}},
    {"a.b": 2},
    {"a.b": 3, "a": {"b": 2}},
    {"a": {"b": {"c": 1}}},
    {"a.b.c": 1},
    {"a": "é"},
    {"a": "e\u0301"},
    {"a": "\x00x", "b": 1},  # jsonb cannot hold it: the row has no parsed copy and is always read
    {"a": 2**60},
    {"a": float(2**60)},
    {"a": 2**53 + 1},
    {"a": float(2**53)},
    {'q"\\': 1, "b": 1},
    {"k.": {"": 1}},
    {"é": "ü", "b": 2},
    {"a": 1, "b": 1},
]
FILTERS: list[dict[str, Any]] = [
    {"a": 1},
    {"a": 1.0},
    {"a": True},
    {"a": False},
    {"a": 0},
    {"a": 0.0},
    {"a": -0.0},
    {"a": 0.1},
    {"a": "1"},
    {"a": None},
    {"a": {"$eq": 1}},
    {"a": {"$eq": True}},
    {"a": {"$ne": 1}},
    {"a": {"$gt": 0}},
    {"a": [1]},
    {"a": {"b": 2}},
    {"a.b": 2},
    {"a.b": 3},
    {"a.b.c": 1},
    {"a": "é"},
    {"a": "e\u0301"},
    {"a": "\x00x"},
    {"b": 1},
    {"a": 2**60},
    {"a": float(2**60)},
    {"a": 2**53 + 1},
    {"a": 2**53},
    {"a": float("nan")},
    {'q"\\': 1},
    {"k.": 1},
    {"é": "ü"},
    {"a": 1, "b": 1},
    {"a.b": 2, "b": 1},
    {"missing": 1},
]


@pytest.fixture
def stores(pg_dsn: str) -> Iterator[tuple[PostgresStore, InMemoryStore]]:
    with PostgresStore.from_conn_string(pg_dsn) as store:
        store.setup()
        yield store, InMemoryStore()


def put_both(stores: tuple[PostgresStore, InMemoryStore], namespace: tuple[str, ...], values: list[Any]) -> None:
    for store in stores:
        store.batch([PutOp(namespace, f"k{i:03d}", value) for i, value in enumerate(values)])


def keys(store: Any, namespace: tuple[str, ...], spec: dict[str, Any], limit: int = 100) -> list[str]:
    return [item.key for item in store.search(namespace, filter=spec, limit=limit)]


@pytest.mark.parametrize("spec", FILTERS, ids=repr)
def test_filters_find_what_the_memory_store_finds(
    stores: tuple[PostgresStore, InMemoryStore], spec: dict[str, Any]
) -> None:
    put_both(stores, ("t",), VALUES)
    pg, memory = stores
    assert keys(pg, ("t",), spec) == keys(memory, ("t",), spec)
    assert keys(pg, ("t",), spec, limit=2) == keys(memory, ("t",), spec, limit=2)


def test_the_pushdown_reads_only_matching_rows(
    stores: tuple[PostgresStore, InMemoryStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    put_both(stores, ("t", "a"), [{"g": i % 50, "s": f"s{i % 50}"} for i in range(500)])
    read: list[int] = []
    real = _sql._Row.of
    monkeypatch.setattr(_sql._Row, "of", staticmethod(lambda row, *rest: read.append(1) or real(row, *rest)))
    pg, memory = stores
    for spec in ({"g": 7}, {"s": "s7"}, {"g": 7.0, "s": {"$eq": "s7"}}):
        read.clear()
        assert keys(pg, ("t",), spec) == keys(memory, ("t",), spec)
        assert len(read) == 10, spec
    read.clear()
    keys(pg, ("t",), {"g": {"$gt": 48}})  # not pushed down: every row is read
    assert len(read) == 500


def test_only_safe_conditions_are_pushed_down() -> None:
    assert pushdown({"a": 1})[0]
    assert pushdown({"a.b": "x"})[0]
    for spec in ({"a": None}, {"a": 2**53}, {"a": -(2**53)}, {"a": 1e300}, {"a": "\x00"}, {"a": [1]}, {"a": {"b": 1}}):
        assert pushdown(spec) == ("", []), spec


SCALARS = st.one_of(
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.0, -0.0, 1.0, 2.5, float(2**53), float(2**60), 2**53, 2**53 + 1, 2**60]),
    st.sampled_from(["", "1", "x", "é", "e\u0301", "\x00", '"', "\\"]),
    st.none(),
)
FIELDS = st.sampled_from(["a", "b", "a.b", "é"])
DOCS = st.recursive(
    st.dictionaries(FIELDS, SCALARS, max_size=3), lambda inner: st.dictionaries(FIELDS, inner, max_size=3), max_leaves=6
)
SPECS = st.dictionaries(FIELDS, st.one_of(SCALARS, st.fixed_dictionaries({"$eq": SCALARS})), min_size=1, max_size=2)


def test_random_filters_agree_with_the_memory_store(pg_dsn: str) -> None:
    counter = iter(range(10**6))
    with PostgresStore.from_conn_string(pg_dsn) as pg:
        pg.setup()

        @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
        @given(st.lists(DOCS, max_size=8), SPECS)
        def check(values: list[dict[str, Any]], spec: dict[str, Any]) -> None:
            namespace = ("h", f"n{next(counter)}")
            memory = InMemoryStore()
            put_both((pg, memory), namespace, values)  # type: ignore[arg-type]
            assert keys(pg, namespace, spec) == keys(memory, namespace, spec)

        check()


def trace_messages(conn: psycopg.Connection[Any], action: Any) -> list[str]:
    """The protocol messages the client sent while `action` ran (libpq's trace)."""
    with tempfile.TemporaryFile("w+") as log:
        conn.pgconn.trace(log.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            action()
        finally:
            conn.pgconn.untrace()
        log.seek(0)
        return [line.split("\t")[2].split()[0] for line in log if line.startswith("F\t")]


def test_a_put_is_one_statement_in_one_round_trip(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        store = PostgresStore(conn)
        store.setup()
        store.put(("t",), "k", {"v": 1}, ttl=5)
        sent = trace_messages(conn, lambda: store.put(("t",), "k", {"v": 2}))
        assert sent.count("Execute") == 1
        assert sent.count("Sync") == 1
        assert "Query" not in sent
        item = store.get(("t",), "k")
        assert item is not None and item.value == {"v": 2}


def test_concurrent_puts_get_distinct_seqs(pg_dsn: str) -> None:
    with PostgresStore.from_conn_string(pg_dsn, pool_size=4) as store:
        store.setup()

        def writer(w: int) -> None:
            for i in range(40):
                store.put(("c", f"w{w}"), f"k{i}", {"i": i})

        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with psycopg.connect(pg_dsn) as conn:
            seqs = conn.execute("SELECT count(*), count(DISTINCT seq) FROM graphrt_store").fetchone()
        assert seqs == (160, 160)
        # Each writer's own puts come back newest first.
        for w in range(4):
            assert [item.value["i"] for item in store.search(("c", f"w{w}"), limit=50)] == list(range(39, -1, -1))


def test_a_put_takes_its_seq_after_the_writers_before_it_commit(pg_dsn: str) -> None:
    with PostgresStore.from_conn_string(pg_dsn) as store:
        store.setup()
        with psycopg.connect(pg_dsn) as writer:
            assert POSTGRES.lock_store is not None
            writer.execute(POSTGRES.lock_store)  # another writer's transaction, under way
            late = threading.Thread(target=store.put, args=(("o",), "late", {"v": 1}))
            late.start()
            late.join(0.5)
            assert late.is_alive()  # the put waits for the writer lock
            writer.execute(
                "INSERT INTO graphrt_store (ns, key, value, created_at, updated_at, seq)"
                " VALUES ('o', 'early', '{}', 1, 1, nextval('graphrt_store_seq_next'))"
            )
        late.join()
        # The put committed last, so it is the newest, although it started before the other write took its seq.
        assert [item.key for item in store.search(("o",))] == ["late", "early"]


def test_upgrading_starts_the_counter_above_every_seq(pg_dsn: str) -> None:
    with PostgresStore.from_conn_string(pg_dsn) as store:
        store.setup()
        store.batch([PutOp(("u",), f"k{i}", {"i": i}) for i in range(5)])
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        # As a database from before the counter gave `seq`: the counter behind, the newer steps not run.
        conn.execute("UPDATE graphrt_store_changes SET version = 0")
        conn.execute("ALTER TABLE graphrt_store DROP COLUMN doc")
        conn.execute("DROP SEQUENCE graphrt_store_seq_next")
        conn.execute("DELETE FROM graphrt_store_migrations WHERE v >= 6")
    with PostgresStore.from_conn_string(pg_dsn) as store:
        store.setup()
        store.put(("u",), "new", {"i": 9})
        assert [item.key for item in store.search(("u",), limit=2)] == ["new", "k4"]
        assert [item.key for item in store.search(("u",), filter={"i": 9})] == ["new"]


def test_a_filtered_search_under_a_prefix_is_one_statement(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        store = PostgresStore(conn)
        store.setup()
        store.batch([PutOp(("one", f"n{i}"), "k", {"g": i % 2}) for i in range(5)])
        found: list[Any] = []
        sent = trace_messages(conn, lambda: found.extend(store.search(("one",), filter={"g": 1})))
        assert [item.namespace for item in found] == [("one", "n3"), ("one", "n1")]
        # No BEGIN/COMMIT and no namespace lookups: one query, which the index answers.
        assert (sent.count("Execute"), sent.count("Sync"), "Query" in sent) == (1, 1, False)
        # Without a filter the namespaces are still read one by one, in a snapshot.
        sent = trace_messages(conn, lambda: store.search(("one",)))
        assert sent.count("Execute") > 1


def test_the_filter_index_finds_what_a_scan_finds(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        store, memory = PostgresStore(conn), InMemoryStore()
        store.setup()
        put_both((store, memory), ("ix",), VALUES)  # type: ignore[arg-type]
        conn.execute("SET enable_seqscan = off")  # as on a large table: the planner reads the indexes
        narrow, args = pushdown({"b": 1})
        query = POSTGRES.sql(f"EXPLAIN SELECT id FROM graphrt_store WHERE TRUE{narrow}")
        plan = "\n".join(row[0] for row in conn.execute(query, args))  # type: ignore[call-overload]
        # Both arms of "doc IS NULL OR doc @> ..." come from an index: no sequential scan.
        assert "graphrt_store_doc" in plan and "graphrt_store_no_doc" in plan and "Seq Scan" not in plan, plan
        # Searches read its unmerged entries too: a short list keeps them fast right after many puts.
        options = conn.execute("SELECT reloptions FROM pg_class WHERE relname = 'graphrt_store_doc'").fetchone()
        assert options == (["gin_pending_list_limit=128"],)
        # The whole database is this test's: a search without a prefix is answered from those indexes.
        for spec in ({"b": 1}, {"a": 1}, {"a": "é"}, {"a.b": 2, "b": 1}, {"a": True}):
            assert keys(store, (), spec) == keys(memory, (), spec), spec
