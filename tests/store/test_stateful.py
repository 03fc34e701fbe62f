"""Random put/delete/get/search/list sequences: every backend answers exactly like a plain model."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from graphrt.store.base import BaseStore, PutOp, SearchItem
from graphrt.store.memory import InMemoryStore
from graphrt.store.sqlite import SqliteStore, connect
from graphrt.store.sqlite.aio import AsyncSqliteStore
from tests.store.conftest import hash_embed, index_config

NAMESPACES = [("a",), ("a", "b"), ("a", "b", "c"), ("a-b",), ("b", "a"), ("b",)]
PREFIXES = [(), ("a",), ("a", "b"), ("b",), ("a-b",), ("c",)]
KEYS = ["k1", "k2", "k3", "k4"]
WORDS = ["cats", "dogs", "birds", "fish"]
COLORS = ["red", "blue", "green"]

values = st.fixed_dictionaries(
    {"text": st.lists(st.sampled_from(WORDS), min_size=0, max_size=3).map(" ".join)},
    optional={"color": st.sampled_from(COLORS), "n": st.integers(0, 5) | st.none(), "flag": st.booleans()},
)
filters = st.sampled_from(
    [
        None,
        {"color": "red"},
        {"n": {"$gt": 2}},
        {"n": {"$lte": 2}},
        {"color": {"$in": ["red", "blue"]}},
        {"color": {"$nin": ["red"]}},
        {"n": {"$exists": False}},
        {"flag": True},
        {"n": None},
        {"color": {"$ne": "green"}, "n": {"$gte": 1}},
    ]
)


def _matches(value: dict[str, Any], spec: dict[str, Any] | None) -> bool:
    """A deliberately plain reading of the filter subset used here."""
    for field, condition in (spec or {}).items():
        present = field in value
        have = value.get(field)
        if not isinstance(condition, dict):
            if have != condition or type(have) is not type(condition):
                return False
            continue
        for op, arg in condition.items():
            if op in ("$gt", "$gte", "$lte"):
                if type(have) is not int:
                    return False
                ok = have > arg if op == "$gt" else have >= arg if op == "$gte" else have <= arg
            elif op == "$in":
                ok = have in arg
            elif op == "$nin":
                ok = have not in arg
            elif op == "$ne":
                ok = have != arg
            else:
                ok = present == arg
            if not ok:
                return False
    return True


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norms = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norms if norms else 0.0


class StoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        index = index_config(fields=["text"])
        self.conns = [connect(":memory:"), connect(":memory:")]
        self.stores: list[tuple[str, BaseStore]] = [
            ("memory", InMemoryStore(index=index)),
            ("sqlite", SqliteStore(self.conns[0], index=index)),
            ("sqlite-aio", AsyncSqliteStore(self.conns[1], index=index)),
        ]
        # (namespace, key) -> [value, write number, batch that created it, indexed?, batch that wrote it]
        self.model: dict[tuple[tuple[str, ...], str], list[Any]] = {}
        self.writes = 0
        self.batches = 0

    def teardown(self) -> None:
        for conn in self.conns:
            conn.close()

    def _run(self, name: str, store: BaseStore, method: str, *args: Any, **kwargs: Any) -> Any:
        if name == "sqlite-aio":
            return asyncio.run(getattr(store, "a" + method)(*args, **kwargs))
        return getattr(store, method)(*args, **kwargs)

    def _all(self, method: str, *args: Any, **kwargs: Any) -> list[Any]:
        self.batches += 1
        return [self._run(name, store, method, *args, **kwargs) for name, store in self.stores]

    def _model_put(self, ns: tuple[str, ...], key: str, value: dict[str, Any] | None, indexed: bool) -> None:
        self.writes += 1
        if value is None:
            self.model.pop((ns, key), None)
        else:
            # An overwrite keeps created_at; writes in one batch share one timestamp.
            created = self.model[(ns, key)][2] if (ns, key) in self.model else self.batches
            self.model[(ns, key)] = [value, self.writes, created, indexed, self.batches]

    @rule(ns=st.sampled_from(NAMESPACES), key=st.sampled_from(KEYS), value=values, indexed=st.booleans())
    def put(self, ns: tuple[str, ...], key: str, value: dict[str, Any], indexed: bool) -> None:
        self._all("put", ns, key, value, index=None if indexed else False)
        self._model_put(ns, key, value, indexed)

    @rule(ns=st.sampled_from(NAMESPACES), key=st.sampled_from(KEYS))
    def delete(self, ns: tuple[str, ...], key: str) -> None:
        self._all("delete", ns, key)
        self._model_put(ns, key, None, False)

    @rule(
        writes=st.lists(
            st.tuples(st.sampled_from(NAMESPACES[:3]), st.sampled_from(KEYS), values | st.none()), max_size=5
        )
    )
    def batch(self, writes: list[tuple[tuple[str, ...], str, dict[str, Any] | None]]) -> None:
        self._all("batch", [PutOp(ns, key, value) for ns, key, value in writes])
        for ns, key, value in writes:
            self._model_put(ns, key, value, True)

    @rule(ns=st.sampled_from(NAMESPACES), key=st.sampled_from(KEYS))
    def get(self, ns: tuple[str, ...], key: str) -> None:
        expected = self.model.get((ns, key))
        for item in self._all("get", ns, key):
            if expected is None:
                assert item is None
            else:
                assert (item.namespace, item.key, item.value) == (ns, key, expected[0])
                assert (item.created_at == item.updated_at) == (expected[2] == expected[4])

    @rule(
        prefix=st.sampled_from(PREFIXES),
        spec=filters,
        limit=st.integers(0, 6),
        offset=st.integers(0, 4),
        query=st.none() | st.sampled_from(["cats", "dogs fish", "birds cats dogs"]),
    )
    def search(
        self, prefix: tuple[str, ...], spec: dict[str, Any] | None, limit: int, offset: int, query: str | None
    ) -> None:
        candidates = [
            (ns, key, entry)
            for (ns, key), entry in self.model.items()
            if ns[: len(prefix)] == prefix and _matches(entry[0], spec)
        ]
        candidates.sort(key=lambda c: -c[2][1])  # newest write first
        scores: dict[tuple[tuple[str, ...], str], float | None] = {}
        if query is not None:
            q = hash_embed([query])[0]
            for ns, key, entry in candidates:
                scores[(ns, key)] = _cosine(hash_embed([entry[0]["text"]])[0], q) if entry[3] else None
            scored = sorted((c for c in candidates if c[2][3]), key=lambda c: -scores[(c[0], c[1])])  # type: ignore[operator]
            candidates = scored + [c for c in candidates if not c[2][3]]
        expected = candidates[offset : offset + limit]
        for (name, _), found in zip(
            self.stores,
            self._all("search", prefix, query=query, filter=spec, limit=limit, offset=offset),
            strict=True,
        ):
            self._check_search(name, found, expected, scores, query)

    def _check_search(
        self,
        name: str,
        found: list[SearchItem],
        expected: list[Any],
        scores: dict[tuple[tuple[str, ...], str], float | None],
        query: str | None,
    ) -> None:
        assert len(found) == len(expected), name
        for item, (ns, key, _) in zip(found, expected, strict=True):
            want = scores.get((ns, key)) if query is not None else None
            if want is None or item.score is None:
                # Unscored items come in one exact order: newest write first.
                assert (item.namespace, item.key, item.score) == (ns, key, want), name
            else:
                # Equal scores may tie in any order; the score at each rank must match.
                assert abs(item.score - want) < 1e-5, name
                assert abs(item.score - scores[(item.namespace, item.key)]) < 1e-5, name  # type: ignore[operator]
            assert item.value == self.model[(item.namespace, item.key)][0], name

    @rule(
        prefix=st.none() | st.sampled_from([("a",), ("*", "b"), ("a", "*"), ("b",)]),
        suffix=st.none() | st.sampled_from([("b",), ("a",), ("*",)]),
        max_depth=st.none() | st.integers(1, 3),
        limit=st.integers(1, 5),
        offset=st.integers(0, 2),
    )
    def list_namespaces(
        self,
        prefix: tuple[str, ...] | None,
        suffix: tuple[str, ...] | None,
        max_depth: int | None,
        limit: int,
        offset: int,
    ) -> None:
        names = set()
        for ns, _ in self.model:
            if prefix and (len(ns) < len(prefix) or any(p not in ("*", n) for p, n in zip(prefix, ns, strict=False))):
                continue
            if suffix and (
                len(ns) < len(suffix) or any(s not in ("*", n) for s, n in zip(suffix[::-1], ns[::-1], strict=False))
            ):
                continue
            names.add(ns if max_depth is None else ns[:max_depth])
        expected = sorted(names)[offset : offset + limit]
        for found in self._all(
            "list_namespaces", prefix=prefix, suffix=suffix, max_depth=max_depth, limit=limit, offset=offset
        ):
            assert found == expected

    @precondition(lambda self: self.writes > 0)
    @invariant()
    def everything_is_listed(self) -> None:
        expected = sorted({ns for ns, _ in self.model})
        for found in self._all("list_namespaces", limit=1000):
            assert found == expected


StoreMachine.TestCase.settings = settings(
    max_examples=25, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestStoreMachine = StoreMachine.TestCase
