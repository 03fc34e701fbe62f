"""Index configuration, embedder adapters and the public surface of graphrt.store."""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

import pytest

from graphrt.store.base import Embeddings, ensure_embeddings, get_text_at_path, tokenize_path
from graphrt.store.memory import InMemoryStore
from tests.store.conftest import DIMS, HashEmbeddings, ahash_embed, hash_embed


@pytest.mark.parametrize(
    ("index", "error", "message"),
    [
        ({"embed": hash_embed}, ValueError, "index['dims'] must be a positive int (the embedding width), got None."),
        ({"dims": 0, "embed": hash_embed}, ValueError, "index['dims'] must be a positive int"),
        ({"dims": 4}, ValueError, "index['embed'] is required"),
        ({"dims": 4, "embed": hash_embed, "fields": "text"}, None, ""),
        ({"dims": 4, "embed": hash_embed, "fields": [1]}, ValueError, "index['fields'] must be a list of field paths"),
        ({"dims": 4, "embed": 42}, TypeError, "index['embed'] must be an embeddings object, a function"),
    ],
)
def test_index_config_is_checked(index: Any, error: type[Exception] | None, message: str) -> None:
    if error is None:
        InMemoryStore(index=index)
        return
    with pytest.raises(error) as caught:
        InMemoryStore(index=index)
    assert str(caught.value).startswith(message)


def test_an_unknown_provider_string_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^Unknown embeddings 'nope:model': use one of"):
        InMemoryStore(index={"dims": 4, "embed": "nope:model"})


def test_ensure_embeddings_adapts_functions_and_keeps_objects() -> None:
    obj = HashEmbeddings()
    assert ensure_embeddings(obj) is obj
    sync = ensure_embeddings(hash_embed)
    assert sync.embed_query("cats") == hash_embed(["cats"])[0]
    assert asyncio.run(sync.aembed_documents(["cats"])) == hash_embed(["cats"])
    async_fn = ensure_embeddings(ahash_embed)
    assert asyncio.run(async_fn.aembed_query("dogs")) == hash_embed(["dogs"])[0]
    with pytest.raises(ValueError, match="The store's embed function is async"):
        async_fn.embed_documents(["dogs"])
    with pytest.raises(ValueError, match="embed must be provided"):
        ensure_embeddings(None)


def test_embeddings_base_class_runs_sync_methods_for_async_calls() -> None:
    class Mine(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return hash_embed(texts)

        def embed_query(self, text: str) -> list[float]:
            return hash_embed([text])[0]

    store = InMemoryStore(index={"dims": DIMS, "embed": Mine()})
    asyncio.run(store.aput(("d",), "k", {"text": "cats"}))
    assert asyncio.run(store.asearch(("d",), query='{"text": "cats"}'))[0].score == pytest.approx(1.0, abs=1e-6)


def test_callable_objects_with_async_call_are_async() -> None:
    class Caller:
        async def __call__(self, texts: list[str]) -> list[list[float]]:
            return hash_embed(texts)

    store = InMemoryStore(index={"dims": DIMS, "embed": Caller(), "fields": ["text"]})
    asyncio.run(store.aput(("d",), "k", {"text": "cats"}))
    with pytest.raises(ValueError, match="The store's embed function is async"):
        store.put(("d",), "j", {"text": "dogs"})


def test_store_exposes_its_config_and_embeddings() -> None:
    store = InMemoryStore(index={"dims": DIMS, "embed": hash_embed}, ttl={"default_ttl": 5})
    assert store.index_config == {"dims": DIMS, "embed": hash_embed}
    assert store.ttl_config == {"default_ttl": 5}
    assert store.supports_ttl is True
    assert store.embeddings.embed_query("cats") == hash_embed(["cats"])[0]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", ['{"a": {"b": "x"}, "arr": [{"x": 1}, {"x": "two"}], "t": true}']),
        ("a.b", ["x"]),
        ("arr[*].x", ["1", "two"]),
        ("arr[-1].x", ["two"]),
        ("arr[5].x", []),
        ("{a.b,t}", ["x", "True"]),
        ("missing", []),
    ],
)
def test_field_paths(path: str, expected: list[str]) -> None:
    doc = {"a": {"b": "x"}, "arr": [{"x": 1}, {"x": "two"}], "t": True}
    assert get_text_at_path(doc, path) == expected


def test_tokenize_path() -> None:
    assert tokenize_path("a.b[*].c{d,e.f}") == ["a", "b", "[*]", "c", "{d,e.f}"]


PUBLIC = {
    "graphrt.store": ("BaseStore", "Item", "SearchItem"),
    "graphrt.store.base": (
        "BaseStore",
        "GetOp",
        "IndexConfig",
        "InvalidNamespaceError",
        "Item",
        "ListNamespacesOp",
        "MatchCondition",
        "NamespacePath",
        "Op",
        "PutOp",
        "Result",
        "SearchItem",
        "SearchOp",
        "TTLConfig",
        "ensure_embeddings",
        "get_text_at_path",
        "tokenize_path",
        "validate_op_namespace",
    ),
    "graphrt.store.memory": ("InMemoryStore",),
    "graphrt.store.sqlite": ("SqliteStore",),
    "graphrt.store.sqlite.aio": ("AsyncSqliteStore",),
}


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_public_surface(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert isinstance(module.__all__, tuple)
    for name in (*PUBLIC[module_name], *module.__all__):
        assert hasattr(module, name), name
    assert set(PUBLIC[module_name]) <= set(module.__all__)


def test_base_store_methods_go_through_batch_and_abatch_defaults_to_a_thread() -> None:
    import threading

    from graphrt.store.base import BaseStore, GetOp, Op, PutOp, Result

    class Recorder(BaseStore):
        def __init__(self) -> None:
            self.seen: list[tuple[Op, str]] = []

        def batch(self, ops: Any) -> list[Result]:
            ops = list(ops)
            self.seen.extend((op, threading.current_thread().name) for op in ops)
            return [None for _ in ops]

    store = Recorder()
    store.put(("a",), 1, {"v": 1})  # type: ignore[arg-type]
    assert store.get(("a",), "1") is None
    asyncio.run(store.aget(("a",), "1", refresh_ttl=False))
    assert [op for op, _ in store.seen] == [
        PutOp(("a",), "1", {"v": 1}, None, None),
        GetOp(("a",), "1", True),
        GetOp(("a",), "1", False),
    ]
    assert store.seen[-1][1] != threading.current_thread().name
    with pytest.raises(NotImplementedError, match="TTL is not supported by Recorder"):
        store.put(("a",), "k", {"v": 1}, ttl=5)


@pytest.mark.parametrize("distance", ["l2", "inner_product", "bogus"])
def test_a_distance_type_the_store_cannot_score_by_is_refused_not_ignored(distance: str, tmp_path: Any) -> None:
    from graphrt.store.sqlite import SqliteStore

    index = {"dims": DIMS, "embed": hash_embed, "distance_type": distance}
    with pytest.raises(ValueError, match=f"InMemoryStore scores vectors by cosine, not .*{distance!r}"):
        InMemoryStore(index=index)  # type: ignore[arg-type]
    with (
        pytest.raises(ValueError, match="SqliteStore scores vectors by cosine"),
        SqliteStore.from_conn_string(str(tmp_path / "s.sqlite"), index=index),  # type: ignore[arg-type]
    ):
        pass
    # cosine, said or not, is what they do
    InMemoryStore(index={"dims": DIMS, "embed": hash_embed, "distance_type": "cosine"})  # type: ignore[typeddict-unknown-key]
