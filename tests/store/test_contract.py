"""The store contract: every backend, sync and async, gives the same answers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC

import pytest

from graphrt.store.base import (
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    PutOp,
    SearchItem,
    SearchOp,
)
from tests.store.conftest import Driver, FakeTime, hash_embed, index_config

MakeStore = Callable[..., Driver]


def keys(items: list[SearchItem]) -> list[str]:
    return [item.key for item in items]


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return float(dot / ((sum(x * x for x in a) * sum(y * y for y in b)) ** 0.5))


def test_put_then_get_returns_the_item(store: Driver) -> None:
    store.put(("users", "u1"), "prefs", {"theme": "dark", "n": [1, 2]})
    item = store.get(("users", "u1"), "prefs")
    assert isinstance(item, Item)
    assert (item.namespace, item.key, item.value) == (
        ("users", "u1"),
        "prefs",
        {"theme": "dark", "n": [1, 2]},
    )
    assert item.created_at == item.updated_at
    assert item.created_at.tzinfo == UTC
    assert store.get(("users", "u1"), "missing") is None
    assert store.get(("users",), "prefs") is None


def test_overwrite_keeps_created_at_and_moves_updated_at(store: Driver) -> None:
    store.put(("a",), "k", {"v": 1})
    first = store.get(("a",), "k")
    store.put(("a",), "k", {"v": 2})
    second = store.get(("a",), "k")
    assert second.value == {"v": 2}
    assert second.created_at == first.created_at
    assert second.updated_at > first.updated_at


def test_delete_removes_the_item_and_missing_delete_is_quiet(store: Driver) -> None:
    store.put(("a",), "k", {"v": 1})
    store.delete(("a",), "k")
    store.delete(("a",), "never")
    assert store.get(("a",), "k") is None
    assert store.search(("a",)) == []
    assert store.list_namespaces() == []


def test_keys_are_converted_to_strings(store: Driver) -> None:
    store.put(("a",), 5, {"v": 1})  # type: ignore[arg-type]
    assert store.get(("a",), "5").key == "5"


def test_value_is_copied_on_put(store: Driver) -> None:
    value = {"list": [1]}
    store.put(("a",), "k", value)
    value["list"].append(2)
    assert store.get(("a",), "k").value == {"list": [1]}


@pytest.mark.parametrize("value", [[1, 2], "text", 5])
def test_non_dict_value_is_rejected(store: Driver, value: object) -> None:
    with pytest.raises(TypeError, match=r"^Store values must be dicts \(JSON objects\), got "):
        store.put(("a",), "k", value)  # type: ignore[arg-type]
    assert store.get(("a",), "k") is None


def test_non_json_value_is_rejected_and_nothing_is_written(store: Driver) -> None:
    with pytest.raises(TypeError, match="is not JSON-serializable"):
        store.batch([PutOp(("a",), "ok", {"v": 1}), PutOp(("a",), "bad", {"v": object()})])
    assert store.get(("a",), "ok") is None


@pytest.mark.parametrize(
    ("namespace", "message"),
    [
        ((), "Namespace cannot be empty."),
        (("",), "Namespace labels cannot be empty strings. Got  in ('',)"),
        (
            ("a.b",),
            "Invalid namespace label 'a.b' found in ('a.b',). Namespace labels cannot contain periods ('.').",
        ),
        (
            ("a", 1),
            "Invalid namespace label '1' found in ('a', 1). Namespace labels must be strings, but got int.",
        ),
        (("langgraph", "x"), "Root label for namespace cannot be \"langgraph\". Got: ('langgraph', 'x')"),
    ],
)
def test_invalid_namespaces_are_rejected(store: Driver, namespace: tuple[str, ...], message: str) -> None:
    with pytest.raises(InvalidNamespaceError) as caught:
        store.put(namespace, "k", {"v": 1})
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)


def test_reads_check_labels_too(store: Driver) -> None:
    for call in (
        lambda: store.get(("a.b",), "k"),
        lambda: store.search(("a", "")),
        lambda: store.delete((1,), "k"),  # type: ignore[arg-type]
        lambda: store.list_namespaces(prefix=("a.b",)),
        lambda: store.batch([GetOp(("x.y",), "k")]),
    ):
        with pytest.raises(InvalidNamespaceError):
            call()


def test_search_prefix_matches_whole_labels(store: Driver) -> None:
    store.put(("acme",), "1", {"v": 1})
    store.put(("acme", "team"), "2", {"v": 2})
    store.put(("acme-corp",), "3", {"v": 3})
    store.put(("acmex", "team"), "4", {"v": 4})
    assert sorted(keys(store.search(("acme",)))) == ["1", "2"]
    assert keys(store.search(("acme", "team"))) == ["2"]
    assert sorted(keys(store.search(()))) == ["1", "2", "3", "4"]


def test_search_without_query_is_newest_write_first(store: Driver) -> None:
    store.put(("a",), "k1", {"v": 1})
    store.put(("a", "b"), "k2", {"v": 2})
    store.put(("a",), "k3", {"v": 3})
    store.put(("a",), "k1", {"v": 4})
    assert keys(store.search(("a",))) == ["k1", "k3", "k2"]
    assert [item.score for item in store.search(("a",))] == [None, None, None]


def test_writes_in_one_batch_count_in_batch_order(store: Driver) -> None:
    store.batch([PutOp(("a",), "z", {"v": 1}), PutOp(("a",), "b", {"v": 2}), PutOp(("a",), "m", {"v": 3})])
    assert keys(store.search(("a",))) == ["m", "b", "z"]


def test_search_pages_with_limit_and_offset(store: Driver) -> None:
    for i in range(7):
        store.put(("p",), f"k{i}", {"i": i})
    assert keys(store.search(("p",), limit=3)) == ["k6", "k5", "k4"]
    assert keys(store.search(("p",), limit=3, offset=3)) == ["k3", "k2", "k1"]
    assert keys(store.search(("p",), limit=3, offset=6)) == ["k0"]
    assert store.search(("p",), limit=0) == []
    with pytest.raises(ValueError, match="search limit must be a non-negative int, got -1"):
        store.search(("p",), limit=-1)


def test_batch_runs_ops_in_order(store: Driver) -> None:
    results = store.batch(
        [
            PutOp(("a",), "k", {"v": 1}),
            GetOp(("a",), "k"),
            PutOp(("a",), "k", None),
            GetOp(("a",), "k"),
            SearchOp(("a",)),
            ListNamespacesOp(),
        ]
    )
    assert results[0] is None and results[2] is None
    assert results[1].value == {"v": 1}
    assert results[3:] == [None, [], []]


def test_item_shapes_match_langgraph(store: Driver) -> None:
    store.put(("a", "b"), "k", {"x": 1})
    item = store.get(("a", "b"), "k")
    found = store.search(("a",))[0]
    assert item.dict() == {
        "namespace": ["a", "b"],
        "key": "k",
        "value": {"x": 1},
        "created_at": item.created_at.isoformat(),
        "updated_at": item.updated_at.isoformat(),
    }
    assert found.dict() == {**item.dict(), "score": None}
    assert found == item and hash(found) == hash(item)
    assert repr(item).startswith("Item(namespace=['a', 'b'], key='k', value={'x': 1}, created_at='")
    rebuilt = Item(**{**item.dict(), "namespace": ("a", "b")})
    assert rebuilt == item


FILTER_DOCS = {
    "a": {"color": "red", "score": 4.5, "n": 1, "flag": True, "meta": {"lang": "en", "tags": ["x"]}},
    "b": {"color": "blue", "score": 3, "n": "1", "flag": False, "meta": {"lang": "fr"}},
    "c": {"color": "red", "score": 5, "flag": None, "meta": {"lang": "en", "tags": ["y", "z"]}},
    "d": {"color": "green", "n": 1.0},
}


@pytest.mark.parametrize(
    ("filter", "expected"),
    [
        ({"color": "red"}, ["a", "c"]),
        ({"color": {"$eq": "red"}}, ["a", "c"]),
        ({"color": {"$ne": "red"}}, ["b", "d"]),
        ({"score": {"$gt": 4}}, ["a", "c"]),
        ({"score": {"$gte": 4.5}}, ["a", "c"]),
        ({"score": {"$lt": 4.5}}, ["b"]),
        ({"score": {"$lte": 4.5, "$gt": 3}}, ["a"]),
        ({"color": {"$gt": "blue"}}, ["a", "c", "d"]),
        ({"color": {"$in": ["red", "green"]}}, ["a", "c", "d"]),
        ({"color": {"$nin": ["red", "green"]}}, ["b"]),
        ({"n": 1}, ["a", "d"]),
        ({"n": {"$in": [1]}}, ["a", "d"]),
        ({"flag": True}, ["a"]),
        ({"flag": None}, ["c", "d"]),
        ({"flag": {"$exists": True}}, ["a", "b", "c"]),
        ({"flag": {"$exists": False}}, ["d"]),
        ({"meta.lang": "en"}, ["a", "c"]),
        ({"meta": {"lang": "fr"}}, ["b"]),
        ({"meta.tags": ["y", "z"]}, ["c"]),
        ({"meta.tags": {"$exists": True}, "color": "red", "score": {"$gte": 5}}, ["c"]),
        ({"missing": {"$ne": 1}}, ["a", "b", "c", "d"]),
        ({"missing": {"$nin": [1]}}, ["a", "b", "c", "d"]),
        ({"score": {"$gt": "a"}}, []),
    ],
)
def test_filters(store: Driver, filter: dict[str, object], expected: list[str]) -> None:
    for key, value in FILTER_DOCS.items():
        store.put(("docs",), key, value)
    assert sorted(keys(store.search(("docs",), filter=filter))) == expected


@pytest.mark.parametrize(
    ("filter", "message"),
    [
        ({"x": {"$regex": "a"}}, "Unsupported operator: $regex. Supported operators: $eq, $ne, $gt, $gte, "),
        ({"x": {"$in": 3}}, "Filter operator $in needs a list of values, got int: 3."),
        ({"x": {"$gt": [1]}}, "Filter operator $gt needs a number or a string, got list: [1]."),
        ({"x": {"$exists": 1}}, "Filter operator $exists needs true or false, got 1."),
        ({"x": {"$gt": 1, "y": 2}}, "Filter at 'x' mixes operators ($gt) with field names"),
    ],
)
def test_bad_filters_raise_clear_errors(store: Driver, filter: dict[str, object], message: str) -> None:
    store.put(("docs",), "k", {"x": 1})
    with pytest.raises(ValueError) as caught:
        store.search(("docs",), filter=filter)
    assert str(caught.value).startswith(message)


def test_filtered_search_pages_after_filtering(store: Driver) -> None:
    for i in range(10):
        store.put(("p",), f"k{i}", {"even": i % 2 == 0})
    assert keys(store.search(("p",), filter={"even": True}, limit=2, offset=1)) == ["k6", "k4"]


def test_list_namespaces(store: Driver) -> None:
    for ns in [("a", "b", "c"), ("a", "b", "d", "e"), ("a", "b", "d", "i"), ("a", "b", "f"), ("a", "c", "f")]:
        store.put(ns, "k", {"v": 1})
    store.put(("a-b", "x"), "k", {"v": 1})
    store.put(("a",), "k", {"v": 1})
    assert store.list_namespaces() == [
        ("a",),
        ("a", "b", "c"),
        ("a", "b", "d", "e"),
        ("a", "b", "d", "i"),
        ("a", "b", "f"),
        ("a", "c", "f"),
        ("a-b", "x"),
    ]
    assert store.list_namespaces(prefix=("a", "b"), max_depth=3) == [
        ("a", "b", "c"),
        ("a", "b", "d"),
        ("a", "b", "f"),
    ]
    assert store.list_namespaces(prefix=("a", "*", "f")) == [("a", "b", "f"), ("a", "c", "f")]
    assert store.list_namespaces(suffix=("f",)) == [("a", "b", "f"), ("a", "c", "f")]
    assert store.list_namespaces(suffix=("b", "*")) == [("a", "b", "c"), ("a", "b", "f")]
    assert store.list_namespaces(prefix=("a",), suffix=("a",)) == [("a",)]
    assert store.list_namespaces(prefix=("a",), max_depth=1) == [("a",)]
    assert store.list_namespaces(prefix=("a",), limit=2, offset=1) == [("a", "b", "c"), ("a", "b", "d", "e")]
    assert store.list_namespaces(prefix=("a-b",)) == [("a-b", "x")]


def test_vector_search_ranks_by_cosine_similarity(vstore: Driver) -> None:
    vstore.put(("docs",), "cats", {"text": "cats purr and sleep"})
    vstore.put(("docs",), "dogs", {"text": "dogs bark loudly"})
    vstore.put(("docs",), "mixed", {"text": "cats and dogs"})
    results = vstore.search(("docs",), query="cats purr")
    texts = {"cats": "cats purr and sleep", "dogs": "dogs bark loudly", "mixed": "cats and dogs"}
    expected = {key: cosine(hash_embed([text])[0], hash_embed(["cats purr"])[0]) for key, text in texts.items()}
    assert keys(results) == sorted(expected, key=lambda k: -expected[k])
    assert [r.score for r in results] == pytest.approx([expected[k] for k in keys(results)], abs=1e-6)


def test_query_and_filter_combine(vstore: Driver) -> None:
    vstore.put(("docs",), "1", {"text": "red apples", "kind": "fruit"})
    vstore.put(("docs",), "2", {"text": "red cars", "kind": "vehicle"})
    vstore.put(("docs",), "3", {"text": "green apples", "kind": "fruit"})
    assert keys(vstore.search(("docs",), query="red", filter={"kind": "fruit"})) == ["1", "3"]
    assert keys(vstore.search(("docs",), query="red apples", limit=1, offset=1)) in (["2"], ["3"])


def test_unindexed_items_follow_scored_ones(vstore: Driver) -> None:
    vstore.put(("docs",), "plain", {"text": "cats"}, index=False)
    vstore.put(("docs",), "no-text", {"other": "cats"})
    vstore.put(("docs",), "cats", {"text": "cats"})
    vstore.put(("docs",), "dogs", {"text": "dogs"})
    results = vstore.search(("docs",), query="cats")
    assert keys(results) == ["cats", "dogs", "no-text", "plain"]
    assert [r.score is None for r in results] == [False, False, True, True]
    assert keys(vstore.search(("docs",), query="cats", offset=2, limit=1)) == ["no-text"]


def test_index_false_overwrite_drops_old_vectors(vstore: Driver) -> None:
    vstore.put(("docs",), "k", {"text": "cats"})
    vstore.put(("docs",), "k", {"text": "cats"}, index=False)
    assert [r.score for r in vstore.search(("docs",), query="cats")] == [None]


def test_put_can_name_its_own_fields(vstore: Driver) -> None:
    vstore.put(("docs",), "k", {"text": "dogs", "title": "cats"}, index=["title"])
    vstore.put(("docs",), "j", {"text": "dogs", "title": "cats"})
    assert keys(vstore.search(("docs",), query="cats")) == ["k", "j"]
    assert vstore.search(("docs",), query="cats")[0].score == pytest.approx(1.0, abs=1e-6)


def test_array_fields_give_one_vector_each_and_the_best_counts(make: MakeStore) -> None:
    store = make(index=index_config(fields=["notes[*].text", "meta.title"]))
    store.put(("docs",), "k", {"notes": [{"text": "dogs"}, {"text": "cats"}], "meta": {"title": "birds"}})
    store.put(("docs",), "j", {"notes": [{"text": "cats and dogs"}]})
    results = store.search(("docs",), query="cats")
    assert keys(results) == ["k", "j"]
    assert results[0].score == pytest.approx(1.0, abs=1e-6)
    assert keys(store.search(("docs",), query="birds", limit=1)) == ["k"]


def test_whole_value_is_embedded_by_default(make: MakeStore) -> None:
    store = make(index=index_config())
    store.put(("docs",), "k", {"text": "cats"})
    store.put(("docs",), "j", {"text": "dogs"})
    assert keys(store.search(("docs",), query="cats")) == ["k", "j"]


def test_query_without_index_is_ignored(store: Driver) -> None:
    store.put(("docs",), "1", {"text": "cats"})
    store.put(("docs",), "2", {"text": "dogs"})
    results = store.search(("docs",), query="cats")
    assert keys(results) == ["2", "1"]
    assert [r.score for r in results] == [None, None]


def test_vector_search_respects_prefix_and_deletes(vstore: Driver) -> None:
    vstore.put(("u", "1"), "k", {"text": "cats"})
    vstore.put(("u", "2"), "k", {"text": "cats"})
    vstore.put(("u-2",), "k", {"text": "cats"})
    assert [r.namespace for r in vstore.search(("u", "2"), query="cats")] == [("u", "2")]
    vstore.delete(("u", "2"), "k")
    assert [r.namespace for r in vstore.search(("u",), query="cats")] == [("u", "1")]


def test_embedder_objects_and_async_functions(make: MakeStore, mode: str, backend: str) -> None:
    from tests.store.conftest import HashEmbeddings, ahash_embed

    embeddings = HashEmbeddings()
    store = make(index=index_config(fields=["text"], embed=embeddings))
    store.put(("d",), "k", {"text": "cats"})
    assert store.search(("d",), query="cats")[0].score == pytest.approx(1.0, abs=1e-6)
    assert embeddings.calls == 2
    astore = make(index=index_config(fields=["text"], embed=ahash_embed))
    if mode == "sync" and backend != "postgres-aio":  # the async store's sync calls run on an event loop
        with pytest.raises(ValueError, match="embed function is async"):
            astore.put(("d",), "k", {"text": "cats"})
    else:
        astore.put(("d",), "k", {"text": "cats"})
        assert astore.search(("d",), query="cats")[0].score == pytest.approx(1.0, abs=1e-6)


def test_wrong_embedding_width_is_a_clear_error(make: MakeStore) -> None:
    store = make(index={"dims": 8, "embed": lambda texts: [[1.0, 0.0] for _ in texts]})
    with pytest.raises(ValueError, match=r"vectors of 2 dimensions, but the store's index was configured with dims=8"):
        store.put(("d",), "k", {"text": "x"})
    assert store.get(("d",), "k") is None


def test_ttl_expiry_hides_items_and_sweep_deletes_them(make: MakeStore, clock: FakeTime) -> None:
    store = make()
    store.put(("t",), "short", {"v": 1}, ttl=1)
    store.put(("t",), "long", {"v": 2}, ttl=10)
    store.put(("t2",), "short", {"v": 3}, ttl=1)
    store.put(("t",), "forever", {"v": 4})
    clock.advance(2)
    assert store.get(("t",), "short") is None
    assert sorted(keys(store.search(()))) == ["forever", "long"]
    assert store.list_namespaces() == [("t",)]
    assert store.sweep_ttl() == 2
    clock.advance(20)
    assert keys(store.search(())) == ["forever"]


def test_sweep_returns_the_number_deleted(make: MakeStore, clock: FakeTime) -> None:
    store = make()
    store.put(("t",), "a", {"v": 1}, ttl=1)
    store.put(("t",), "b", {"v": 1}, ttl=1)
    store.put(("t",), "c", {"v": 1})
    clock.advance(2)
    count = store.sweep_ttl()
    assert count == 2
    assert store.sweep_ttl() == 0
    assert keys(store.search(("t",))) == ["c"]


def test_reads_refresh_ttl_unless_told_not_to(make: MakeStore, clock: FakeTime) -> None:
    store = make()
    store.put(("t",), "read", {"v": 1}, ttl=10)
    store.put(("t",), "found", {"v": 1}, ttl=10)
    store.put(("t",), "peeked", {"v": 1}, ttl=10)
    clock.advance(8)
    assert store.get(("t",), "read") is not None
    assert keys(store.search(("t",), filter={"v": 1}, limit=3)) == ["peeked", "found", "read"]
    assert store.get(("t",), "peeked", refresh_ttl=False) is not None
    store.search(("t",), limit=1, offset=1, refresh_ttl=False)
    clock.advance(5)
    assert store.get(("t",), "read", refresh_ttl=False) is not None
    assert store.get(("t",), "found", refresh_ttl=False) is not None
    assert store.get(("t",), "peeked") is not None  # refreshed by the search at minute 8


def test_refresh_on_read_false_and_default_ttl(make: MakeStore, clock: FakeTime) -> None:
    store = make(ttl={"default_ttl": 10, "refresh_on_read": False})
    store.put(("t",), "k", {"v": 1})
    store.put(("t",), "kept", {"v": 1}, ttl=None)
    clock.advance(8)
    assert store.get(("t",), "k") is not None
    clock.advance(5)
    assert store.get(("t",), "k") is None
    assert store.get(("t",), "kept") is not None


def test_overwriting_an_expired_item_starts_fresh(make: MakeStore, clock: FakeTime) -> None:
    store = make()
    store.put(("t",), "k", {"v": 1}, ttl=1)
    clock.advance(2)
    store.put(("t",), "k", {"v": 2})
    item = store.get(("t",), "k")
    assert item.created_at == item.updated_at


@pytest.mark.parametrize("ttl", [0, -1, "5"])
def test_bad_ttl_is_rejected(store: Driver, ttl: object) -> None:
    with pytest.raises(ValueError, match="ttl must be a positive number of minutes or None"):
        store.put(("t",), "k", {"v": 1}, ttl=ttl)  # type: ignore[arg-type]
