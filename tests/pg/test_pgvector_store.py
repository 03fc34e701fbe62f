"""PostgresStore vector search: every distance type and index kind gives LangGraph's scores and the exact answer.

Most tests run the pgvector path and the exact in-process path (`pgvector=False`) on the same data.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphrt.store._pgvector import literal
from graphrt.store.base import IndexConfig, PutOp, SearchItem
from graphrt.store.memory import InMemoryStore
from graphrt.store.postgres import PostgresStore
from graphrt.store.postgres.aio import AsyncPostgresStore

DIMS = 16
_rng = np.random.default_rng(7)
VECTORS: dict[str, list[float]] = {f"t{i}": (_rng.normal(size=DIMS) * _rng.uniform(0.5, 3)).tolist() for i in range(80)}
VECTORS["zero"] = [0.0] * DIMS
for _i in range(400):  # near t41: in another namespace, they crowd the index's first candidates
    VECTORS[f"noise{_i}"] = (np.asarray(VECTORS["t41"]) + _rng.normal(scale=0.05, size=DIMS)).tolist()
QUERIES = ("t3", "t41", "t77")
PATHS = [None, False]
"""`pgvector=None` uses pgvector (the test server has it); False is the exact path a server without it gets."""


def embed(texts: list[str]) -> list[list[float]]:
    return [VECTORS[text] for text in texts]


def config(distance: str = "cosine", **ann: Any) -> IndexConfig:
    index: dict[str, Any] = {"dims": DIMS, "embed": embed, "fields": ["text"], "distance_type": distance}
    if ann:
        index["ann_index_config"] = ann
    return index  # type: ignore[return-value]


@contextmanager
def opened(dsn: str, index: IndexConfig, pgvector: bool | None = None, **kwargs: Any) -> Iterator[PostgresStore]:
    with PostgresStore.from_conn_string(dsn, index=index, pgvector=pgvector, **kwargs) as store:
        store.setup()
        yield store


def fill(store: Any, count: int = 80) -> None:
    for i in range(count):
        store.put(("docs", "ab"[i % 2]), f"k{i}", {"text": f"t{i}", "n": i % 5})


def expected(distance: str, query: str, count: int = 80, keep: Any = lambda i: True) -> list[tuple[str, float]]:
    """Every kept item and its score, best first, computed here from the raw vectors (LangGraph's convention)."""
    q = np.asarray(VECTORS[query], dtype=np.float64)
    scored = []
    for i in range(count):
        if not keep(i):
            continue
        v = np.asarray(VECTORS[f"t{i}"], dtype=np.float64)
        if distance == "cosine":
            score = float(v @ q / (np.linalg.norm(v) * np.linalg.norm(q)))
        elif distance == "l2":
            score = -float(np.linalg.norm(v - q))
        else:
            score = float(v @ q)
        scored.append((f"k{i}", score))
    return sorted(scored, key=lambda pair: -pair[1])


def pairs(items: list[SearchItem]) -> list[tuple[str, float]]:
    assert all(item.score is not None for item in items)
    return [(item.key, float(item.score)) for item in items]  # type: ignore[arg-type]


def assert_same(found: list[tuple[str, float]], want: list[tuple[str, float]], tol: float = 1e-4) -> None:
    assert [key for key, _ in found] == [key for key, _ in want]
    assert [score for _, score in found] == pytest.approx([score for _, score in want], rel=tol, abs=tol)


@contextmanager
def index_scans_only(dsn: str, **settings: Any) -> Iterator[None]:
    """New connections to the test database avoid sequential scans, so a small table is searched by its index."""
    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for setting, value in {"enable_seqscan": "off", **settings}.items():
            conn.execute(f'ALTER DATABASE "{name}" SET {setting} = {value}'.encode())
    yield


@pytest.mark.parametrize("kind", ["hnsw", "flat", "exact"])
@pytest.mark.parametrize("distance", ["cosine", "l2", "inner_product"])
def test_each_distance_type_scores_like_langgraph(pg_dsn: str, distance: str, kind: str) -> None:
    pgvector = False if kind == "exact" else None
    with opened(pg_dsn, config(distance, kind="flat" if kind == "flat" else "hnsw"), pgvector) as store:
        fill(store)
        assert store._ann is (pgvector is None)
        for query in QUERIES:
            assert_same(pairs(store.search(("docs",), query=query, limit=10)), expected(distance, query)[:10])
            assert_same(pairs(store.search(("docs",), query=query, limit=5, offset=7)), expected(distance, query)[7:12])


@pytest.mark.parametrize("pgvector", PATHS)
def test_cosine_matches_the_in_memory_store(pg_dsn: str, pgvector: bool | None) -> None:
    memory = InMemoryStore(index=config())
    with opened(pg_dsn, config(), pgvector) as store:
        fill(store)
        fill(memory)
        for query in QUERIES:
            assert_same(
                pairs(store.search(("docs", "a"), query=query, limit=12)),
                pairs(memory.search(("docs", "a"), query=query, limit=12)),
                tol=1e-5,
            )


@pytest.mark.parametrize("distance", ["cosine", "l2", "inner_product"])
@pytest.mark.parametrize("ann", [{"kind": "hnsw", "m": 8, "ef_construction": 32}, {"kind": "ivfflat", "nlist": 1}])
def test_an_ann_index_gives_the_flat_answer_on_a_small_set(pg_dsn: str, distance: str, ann: dict[str, Any]) -> None:
    # HNSW is exact on a set this small; IVFFlat with one list reads every row (more lists trade recall for speed).
    with index_scans_only(pg_dsn), opened(pg_dsn, config(distance, kind="flat")) as flat:
        fill(flat)
        flat_answers = [pairs(flat.search(("docs",), query=q, limit=10)) for q in QUERIES]
    with opened(pg_dsn, config(distance, **ann)) as indexed:
        # The index is there and is what a search reads.
        with psycopg.connect(pg_dsn) as conn:
            sql = f"SELECT item_id FROM graphrt_store_embeddings ORDER BY {indexed._embeddings.config.expression(DIMS)}"
            sql += f" {indexed._embeddings.config.operator} %s::vector({DIMS}) LIMIT 10"
            plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {sql}".encode(), (str(VECTORS["t3"]),)))
        assert f"graphrt_store_embeddings_{ann['kind']}_vector_{distance}" in plan
        for q, want in zip(QUERIES, flat_answers, strict=True):
            assert_same(pairs(indexed.search(("docs",), query=q, limit=10)), want)


@pytest.mark.parametrize("path", ["pgvector", "exact", "starved-index", "no-iterative-scan"])
def test_filter_and_prefix_give_the_exact_answer(pg_dsn: str, path: str) -> None:
    if path == "starved-index":
        # The nearest vectors are all outside the prefix and the HNSW scan gives up after 10 more rows, so
        # the answers come from the exact scan that follows it.
        index_scans_only(pg_dsn, **{"hnsw.max_scan_tuples": 10}).__enter__()
    elif path == "no-iterative-scan":
        index_scans_only(pg_dsn).__enter__()
    with opened(pg_dsn, config("l2"), False if path == "exact" else None) as store:
        if path == "no-iterative-scan":  # pgvector before 0.8: an index scan stops after ef_search rows
            assert store._embeddings is not None
            store._embeddings.iterative = False
        fill(store)
        store.batch([PutOp(("noise",), f"n{i}", {"text": f"noise{i}"}) for i in range(400)])
        # A filter keeping 1 item in 10 (n == 3 under "b"): the nearest vectors are mostly filtered out.
        found = store.search(("docs", "b"), query="t41", filter={"n": 3}, limit=10)
        want = expected("l2", "t41", keep=lambda i: i % 2 == 1 and i % 5 == 3)
        assert len(want) == 8
        assert_same(pairs(found), want)
        found = store.search(("docs",), query="t41", filter={"n": {"$in": [1, 2]}}, limit=6, offset=3)
        assert_same(pairs(found), expected("l2", "t41", keep=lambda i: i % 5 in (1, 2))[3:9])
        assert store.search(("nowhere",), query="t41") == []


@pytest.mark.parametrize("pgvector", PATHS)
def test_expired_items_are_not_found_and_hits_refresh_their_ttl(
    pg_dsn: str, pgvector: bool | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.store.conftest import FakeTime

    clock = FakeTime()
    monkeypatch.setattr("graphrt.store._plan.time", clock)
    with opened(pg_dsn, config(), pgvector, ttl={"refresh_on_read": True}) as store:
        store.put(("docs",), "short", {"text": "t3"}, ttl=1)
        store.put(("docs",), "long", {"text": "t4"}, ttl=10)
        store.put(("docs",), "kept", {"text": "t5"})
        clock.advance(0.5)
        assert {item.key for item in store.search(("docs",), query="t3")} == {"short", "long", "kept"}
        clock.advance(0.9)  # "short" was refreshed by the search half a minute in
        assert store.search(("docs",), query="t3")[0].key == "short"
        clock.advance(2)
        assert {item.key for item in store.search(("docs",), query="t3")} == {"long", "kept"}
        assert store.sweep_ttl() == 1
        assert {item.key for item in store.search(("docs",), query="t3")} == {"long", "kept"}


@pytest.mark.parametrize("pgvector", PATHS)
def test_items_rewritten_deleted_or_unindexed_leave_the_vector_search(pg_dsn: str, pgvector: bool | None) -> None:
    with opened(pg_dsn, config(), pgvector) as store:
        fill(store, 10)
        store.put(("docs", "a"), "k0", {"text": "t41"})  # new vector
        store.delete(("docs", "b"), "k1")
        store.put(("docs", "a"), "k2", {"text": "t3"}, index=False)
        found = store.search(("docs",), query="t41", limit=20)
        assert found[0].key == "k0" and found[0].score == pytest.approx(1.0, abs=1e-5)
        assert "k1" not in [item.key for item in found]
        assert (found[-1].key, found[-1].score) == ("k2", None)
        if pgvector is None:
            with psycopg.connect(pg_dsn) as conn:
                row = conn.execute("SELECT count(*), count(DISTINCT item_id) FROM graphrt_store_embeddings").fetchone()
            assert row == (8, 8)


def test_a_plain_put_from_another_store_leaves_the_exact_search(pg_dsn: str) -> None:
    with opened(pg_dsn, config(), pgvector=False) as exact, PostgresStore.from_conn_string(pg_dsn) as plain:
        fill(exact, 10)
        assert exact.search(("docs",), query="t3", limit=1)[0].key == "k3"  # the vector cache is loaded
        plain.put(("docs", "b"), "k3", {"text": "t3"})  # a store without an index drops k3's vectors
        found = exact.search(("docs",), query="t3", limit=20)
        assert [item.key for item in found].count("k3") == 1
        assert (found[-1].key, found[-1].score) == ("k3", None)


@pytest.mark.parametrize("pgvector", PATHS)
def test_an_item_with_several_vectors_is_found_once_with_its_best_score(pg_dsn: str, pgvector: bool | None) -> None:
    index = config("inner_product")
    index["fields"] = ["text", "other"]
    with opened(pg_dsn, index, pgvector) as store:
        store.put(("docs",), "both", {"text": "t1", "other": "t3"})
        store.put(("docs",), "one", {"text": "t2"})
        scores = dict(expected("inner_product", "t3", count=4))
        want = [("both", max(scores["k1"], scores["k3"])), ("one", scores["k2"])]
        assert_same(pairs(store.search(("docs",), query="t3")), sorted(want, key=lambda pair: -pair[1]))


@pytest.mark.parametrize("kind", ["hnsw", "flat", "exact"])
def test_a_zero_vector_scores_zero_under_cosine(pg_dsn: str, kind: str) -> None:
    index = config(kind="flat" if kind == "flat" else "hnsw")
    with opened(pg_dsn, index, False if kind == "exact" else None) as store:
        store.put(("docs",), "zero", {"text": "zero"})
        store.put(("docs",), "one", {"text": "t1"})
        assert [(item.key, item.score) for item in store.search(("docs",), query="t1")] == [
            ("one", pytest.approx(1.0, abs=1e-5)),
            ("zero", 0.0),
        ]


def test_halfvec_stores_half_precision_in_the_index_and_keeps_the_order(pg_dsn: str) -> None:
    with index_scans_only(pg_dsn), opened(pg_dsn, config("cosine", vector_type="halfvec")) as store:
        fill(store)
        for query in QUERIES:
            assert_same(pairs(store.search(("docs",), query=query, limit=5)), expected("cosine", query)[:5], tol=2e-3)
    with psycopg.connect(pg_dsn) as conn:
        names = [row[0] for row in conn.execute("SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%halfvec%'")]
    assert names == ["graphrt_store_embeddings_hnsw_halfvec_cosine"]


def test_items_saved_before_pgvector_was_used_are_found_by_it(pg_dsn: str) -> None:
    with opened(pg_dsn, config(), pgvector=False) as exact:
        fill(exact, 40)
    with opened(pg_dsn, config()) as ann, opened(pg_dsn, config(), pgvector=False) as exact:
        assert ann._ann and not exact._ann
        # A store with pgvector off still keeps the table it found up to date.
        exact.put(("docs", "a"), "late", {"text": "t77"})
        assert [item.key for item in ann.search(("docs",), query="t77", limit=1)] == ["late"]
        assert_same(
            pairs(ann.search(("docs",), query="t3", limit=10)), pairs(exact.search(("docs",), query="t3", limit=10))
        )


def test_another_width_in_the_same_database_is_refused(pg_dsn: str) -> None:
    with opened(pg_dsn, config()):
        pass
    narrow = config()
    narrow["dims"] = 8
    with (
        PostgresStore.from_conn_string(pg_dsn, index=narrow) as store,
        pytest.raises(ValueError, match="saved vectors are 16-dimensional, not 8-dimensional"),
    ):
        store.setup()


def test_async_store_searches_with_pgvector(pg_dsn: str) -> None:
    async def main() -> list[tuple[str, float]]:
        async with AsyncPostgresStore.from_conn_string(pg_dsn, index=config("l2")) as store:
            await store.setup()
            assert store._ann
            for i in range(20):
                await store.aput(("docs",), f"k{i}", {"text": f"t{i}"})
            return pairs(await store.asearch(("docs",), query="t3", limit=4))

    assert_same(asyncio.run(main()), expected("l2", "t3", count=20)[:4])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"distance_type": "hamming"}, "index['distance_type'] must be one of ('cosine', 'l2', 'inner_product')"),
        ({"ann_index_config": {"kind": "diskann"}}, "['kind'] must be one of ('hnsw', 'ivfflat', 'flat')"),
        ({"ann_index_config": {"vector_type": "bit"}}, "['vector_type'] must be one of ('vector', 'halfvec')"),
        ({"ann_index_config": {"kind": "hnsw", "nlist": 4}}, "has 'nlist', which a hnsw index does not take"),
        ({"ann_index_config": {"kind": "flat", "m": 4}}, "has 'm', which a flat index does not take"),
        ({"ann_index_config": {"m": 0}}, "['m'] must be a positive int, got 0"),
        ({"ann_index_config": {"kind": "ivfflat", "ef_search": 9}}, "has 'ef_search', which a ivfflat index does not"),
        ({"ann_index_config": ["hnsw"]}, "index['ann_index_config'] must be a dict, got list"),
    ],
)
def test_bad_vector_settings_are_refused_up_front(extra: dict[str, Any], message: str) -> None:
    import re

    with pytest.raises(ValueError, match=re.escape(message)):
        PostgresStore(None, index={**config(), **extra})  # type: ignore[typeddict-item]


@pytest.mark.parametrize(
    ("extra", "ef_search"),
    [({"ef_search": 321}, "321"), ({}, "40")],  # 40: pgvector's default, and LangGraph's
    ids=["set", "default"],
)
def test_search_settings_reach_the_server(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], ef_search: str
) -> None:
    from graphrt.store._pgvector import PgRanking

    index = config("l2", kind="hnsw", **extra)
    original = PgRanking.take
    settings = []

    def spy(ranking: PgRanking, count: int) -> Any:
        taken = yield from original(ranking, count)
        settings.append(ranking._cur.execute("SHOW hnsw.ef_search").fetchone()[0])
        return taken

    with opened(pg_dsn, index) as store:
        fill(store, 5)
        monkeypatch.setattr(PgRanking, "take", spy)
        assert len(store.search(("docs",), query="t1", limit=10)) == 5
    assert settings and set(settings) == {ef_search}


def test_concurrent_setups_create_the_extension_table_and_index_once(pg_dsn: str) -> None:
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM pg_extension WHERE extname = 'vector'").fetchone() == (0,)
    errors: list[BaseException] = []

    def setup() -> None:
        try:
            with opened(pg_dsn, config()) as store:
                assert store._ann
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=setup) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


@given(
    st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False, allow_subnormal=True), min_size=0, max_size=64)
)
def test_the_vector_literal_round_trips_every_float32_exactly(values: list[float]) -> None:
    vector = np.asarray(values, dtype=np.float32)
    text = literal(vector)
    assert text.startswith("[") and text.endswith("]")
    parsed = np.asarray([float(part) for part in text[1:-1].split(",") if part], dtype=np.float32)
    assert parsed.tobytes() == vector.tobytes()
