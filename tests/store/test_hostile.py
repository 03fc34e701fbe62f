"""Hostile input gets the same outcome on every store backend: a clear error, or the right answer."""

from __future__ import annotations

import math
import re

import pytest

from graphrt.store.base import InvalidNamespaceError, PutOp
from tests.store.conftest import Driver


@pytest.mark.parametrize(("value", "where"), [(math.nan, "x"), (math.inf, "a.b"), (-math.inf, "l.1")])
def test_nan_and_infinity_are_refused_naming_the_key(store: Driver, value: float, where: str) -> None:
    item = {"x": value} if where == "x" else {"a": {"b": value}} if where == "a.b" else {"l": [1.0, value]}
    expected = rf"^The value for key 'k' in \('n',\) holds {re.escape(repr(value))} at '{where}'"
    with pytest.raises(ValueError, match=expected):
        store.put(("n",), "k", item)
    assert store.get(("n",), "k") is None
    store.put(("n",), "k", {"x": None})  # None itself is fine
    assert store.get(("n",), "k").value == {"x": None}


def test_a_dotted_filter_key_matches_a_literal_field_or_a_path(store: Driver) -> None:
    store.put(("n",), "literal", {"a.b": 1})
    store.put(("n",), "nested", {"a": {"b": 1}})
    store.put(("n",), "other", {"a": {"b": 2}})
    assert sorted(i.key for i in store.search(("n",), filter={"a.b": 1})) == ["literal", "nested"]
    assert [i.key for i in store.search(("n",), filter={"a.b": {"$eq": 2}})] == ["other"]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("$.a[0]", "Filter key '$.a[0]' looks like a JSON path or an operator"),
        ("a\x00b", "Filter key 'a\\x00b' contains a NUL character"),
        ("a\ud800", "Filter key 'a\\ud800' contains a lone surrogate"),
    ],
)
def test_filter_keys_no_field_can_have_are_refused(store: Driver, key: str, message: str) -> None:
    store.put(("n",), "k", {"a": [1]})
    with pytest.raises(ValueError, match=re.escape(message)):
        store.search(("n",), filter={key: 1})


def test_lone_surrogates_in_labels_and_keys_are_refused_everywhere(store: Driver) -> None:
    with pytest.raises(InvalidNamespaceError, match="lone surrogates"):
        store.put(("n\ud800",), "k", {"x": 1})
    with pytest.raises(ValueError, match="contains a lone surrogate"):
        store.put(("n",), "k\ud800", {"x": 1})
    with pytest.raises(ValueError, match="contains a lone surrogate"):
        store.get(("n",), "k\udfff")
    with pytest.raises(ValueError, match="contains a NUL character"):
        store.put(("n",), "k\x00", {"x": 1})
    with pytest.raises(TypeError, match="not JSON-serializable"):
        store.put(("n",), "k", {"x": "\ud800"})
    assert store.search(("n",)) == []


def test_a_filter_string_with_a_surrogate_just_matches_nothing(store: Driver) -> None:
    store.put(("n",), "k", {"x": "a"})
    assert store.search(("n",), filter={"x": "a\ud800"}) == []


def test_true_never_equals_one_in_filters(store: Driver) -> None:
    store.put(("n",), "bool", {"x": True})
    store.put(("n",), "int", {"x": 1})
    store.put(("n",), "float", {"x": 1.0})
    assert sorted(i.key for i in store.search(("n",), filter={"x": 1})) == ["float", "int"]
    assert [i.key for i in store.search(("n",), filter={"x": True})] == ["bool"]
    assert [i.key for i in store.search(("n",), filter={"x": {"$in": [True]}})] == ["bool"]
    assert sorted(i.key for i in store.search(("n",), filter={"x": {"$ne": True}})) == ["float", "int"]


@pytest.mark.parametrize("bad", [-1, True, 1.5])
def test_negative_or_non_integer_offsets_and_limits_are_refused(store: Driver, bad: object) -> None:
    with pytest.raises(ValueError, match=re.escape(f"search offset must be a non-negative int, got {bad!r}.")):
        store.search(("n",), offset=bad)
    with pytest.raises(ValueError, match=re.escape(f"search limit must be a non-negative int, got {bad!r}.")):
        store.search(("n",), limit=bad)


def test_writes_in_one_batch_share_one_timestamp(store: Driver) -> None:
    store.batch([PutOp(("n",), f"k{i}", {"i": i}) for i in range(20)])
    items = [store.get(("n",), f"k{i}") for i in range(20)]
    assert len({i.created_at for i in items}) == 1
    assert len({i.updated_at for i in items}) == 1
    store.batch([PutOp(("n",), "k0", {"i": -1}), PutOp(("n",), "new", {"i": 99})])
    again, new = store.get(("n",), "k0"), store.get(("n",), "new")
    assert again.updated_at == new.created_at == new.updated_at
    assert again.created_at == items[0].created_at < again.updated_at
