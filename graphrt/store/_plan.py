"""Check a batch of store ops up front and turn it into steps a backend applies in order.

Everything that can be wrong with a batch (bad namespace, non-dict or non-JSON value, bad filter,
negative limit) is found here, before the backend writes anything.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from graphrt.store._embed import Embedder, ensure_embeddings
from graphrt.store._filter import compile_filter
from graphrt.store._namespace import check_key, check_labels, check_put_namespace
from graphrt.store._paths import get_text_at_path, tokenize_path
from graphrt.store._vectors import normalize
from graphrt.store.base import GetOp, IndexConfig, ListNamespacesOp, MatchCondition, Op, PutOp, SearchOp

__all__ = (
    "Clock",
    "Delete",
    "Get",
    "IndexSpec",
    "ListNamespaces",
    "Plan",
    "Put",
    "Search",
    "Step",
    "plan_batch",
    "parse_index_config",
    "to_datetime",
)

Matrix = npt.NDArray[np.float32]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_datetime(micros: int) -> datetime:
    """A UTC datetime from microseconds since the epoch (exact, unlike float seconds)."""
    return _EPOCH + timedelta(microseconds=micros)


class Clock:
    """Microseconds since the epoch, strictly increasing across the batches of one store."""

    def __init__(self) -> None:
        self._last = 0

    def now(self) -> int:
        self._last = max(time.time_ns() // 1000, self._last + 1)
        return self._last


@dataclass(frozen=True, slots=True)
class IndexSpec:
    """A checked `index` configuration."""

    embedder: Embedder
    fields: tuple[str, ...]
    """Field paths embedded when a put does not name its own ("$" is the whole value)."""
    unit: bool = True
    """Whether texts' and queries' vectors are scaled to unit length (False: kept as the embedder gave them)."""


def parse_index_config(index: IndexConfig | None) -> IndexSpec | None:
    """Check `index` and build its embedder; `None` means the store has no vector search."""
    if not index:
        return None
    if not isinstance(index, Mapping):
        raise TypeError(f"index must be a dict with 'dims' and 'embed', got {type(index).__name__}.")
    dims = index.get("dims")
    if not isinstance(dims, int) or isinstance(dims, bool) or dims <= 0:
        raise ValueError(f"index['dims'] must be a positive int (the embedding width), got {dims!r}.")
    if "embed" not in index:
        raise ValueError("index['embed'] is required: an embeddings object or a function list[str] -> vectors.")
    # "text_fields" is what LangGraph's SQLite store calls "fields".
    raw_fields: Any = index.get("fields") or index.get("text_fields") or ["$"]
    if isinstance(raw_fields, str):
        raw_fields = [raw_fields]
    if not isinstance(raw_fields, list | tuple) or not all(isinstance(f, str) for f in raw_fields):
        raise ValueError(f"index['fields'] must be a list of field paths, got {raw_fields!r}.")
    return IndexSpec(Embedder(ensure_embeddings(index["embed"]), dims), tuple(raw_fields))


@dataclass(frozen=True, slots=True)
class Get:
    namespace: tuple[str, ...]
    key: str
    refresh: bool


@dataclass(frozen=True, slots=True)
class Put:
    namespace: tuple[str, ...]
    key: str
    raw: bytes
    """The value as JSON, what SQL backends store."""
    value: dict[str, Any]
    """The value decoded back from `raw`: a private copy in plain JSON types."""
    ttl: float | None
    texts: tuple[int, ...]
    """Indexes into `Plan.texts` of the texts to embed for this item."""
    indexed: bool
    """Whether the item gets vectors at all (False for `index=False` or a store without an index)."""


@dataclass(frozen=True, slots=True)
class Delete:
    namespace: tuple[str, ...]
    key: str


@dataclass(frozen=True, slots=True)
class Search:
    prefix: tuple[str, ...]
    predicate: Callable[[Any], bool] | None
    limit: int
    offset: int
    query: str | None
    """Only set when the store has an index; otherwise the query is ignored."""
    refresh: bool
    filter: Mapping[str, Any] | None = None
    """The filter as given: a SQL backend may narrow its scan with it (the predicate still decides)."""


@dataclass(frozen=True, slots=True)
class ListNamespaces:
    conditions: tuple[MatchCondition, ...]
    max_depth: int | None
    limit: int
    offset: int


Step = Get | Put | Delete | Search | ListNamespaces


@dataclass(slots=True)
class Plan:
    """A checked batch: steps in order plus the texts and queries it needs embedded."""

    steps: list[Step]
    texts: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    text_vectors: Matrix | None = None
    """Vectors of `texts` (unit length unless the index says otherwise), filled in by `embed`/`aembed`."""
    query_vectors: dict[str, Matrix] = field(default_factory=dict)

    def vectors_of(self, put: Put) -> Matrix:
        """The unit vectors of one put's texts (possibly none)."""
        if not put.texts or self.text_vectors is None:
            return np.zeros((0, 0), dtype=np.float32)
        return self.text_vectors[list(put.texts)]

    def embed(self, spec: IndexSpec | None) -> None:
        """Embed the batch's texts and queries with the sync embedder."""
        if spec is None:
            return
        if self.texts:
            self.text_vectors = _scaled(spec, spec.embedder.documents(self.texts))
        if self.queries:
            self._set_queries(_scaled(spec, spec.embedder.queries(self.queries)))

    async def aembed(self, spec: IndexSpec | None) -> None:
        """Embed the batch's texts and queries with the async embedder."""
        if spec is None:
            return
        if self.texts:
            self.text_vectors = _scaled(spec, await spec.embedder.adocuments(self.texts))
        if self.queries:
            self._set_queries(_scaled(spec, await spec.embedder.aqueries(self.queries)))

    def _set_queries(self, matrix: Matrix) -> None:
        self.query_vectors = {q: matrix[i] for i, q in enumerate(self.queries)}


def _scaled(spec: IndexSpec, matrix: Matrix) -> Matrix:
    return normalize(matrix) if spec.unit else matrix


def _check_page(limit: Any, offset: Any, what: str) -> None:
    for name, number in (("limit", limit), ("offset", offset)):
        if not isinstance(number, int) or isinstance(number, bool) or number < 0:
            raise ValueError(f"{what} {name} must be a non-negative int, got {number!r}.")


def _encode(namespace: tuple[str, ...], key: str, value: Any) -> tuple[bytes, dict[str, Any]]:
    if not isinstance(value, Mapping):
        raise TypeError(
            f"Store values must be dicts (JSON objects), got {type(value).__name__} for key {key!r} in "
            f"{namespace}. Wrap other values in a dict, e.g. {{'value': ...}}."
        )
    try:
        raw = orjson.dumps(value)
    except TypeError as exc:
        raise TypeError(
            f"The value for key {key!r} in {namespace} is not JSON-serializable ({exc}); store values "
            "must hold only dicts with string keys, lists, strings, numbers, booleans and None."
        ) from None
    if b"null" in raw and (where := _non_finite(value, "")) is not None:
        # orjson writes NaN and Infinity as null: the value would silently change.
        raise ValueError(
            f"The value for key {key!r} in {namespace} holds {where[1]} at {where[0] or 'the top level'!r}; "
            "JSON has no NaN or Infinity. Store None or a string instead."
        )
    decoded: dict[str, Any] = orjson.loads(raw)
    return raw, decoded


def _non_finite(value: Any, path: str) -> tuple[str, str] | None:
    """(path, repr) of the first NaN or infinite float in a JSON-like value, or None."""
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, repr(value))
    if isinstance(value, Mapping):
        items: Iterable[tuple[Any, Any]] = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for name, item in items:
        found = _non_finite(item, f"{path}.{name}" if path else str(name))
        if found is not None:
            return found
    return None


def put_step(op: PutOp, spec: IndexSpec | None, plan: Plan, text_ids: dict[str, int]) -> Put | Delete:
    """Check a put (or delete) and encode its value; texts to embed are added to `plan`."""
    check_key(op.key)
    if op.value is None:
        check_labels(op.namespace)
        return Delete(tuple(op.namespace), op.key)
    check_put_namespace(op.namespace)
    if op.ttl is not None and (not isinstance(op.ttl, int | float) or isinstance(op.ttl, bool) or op.ttl <= 0):
        raise ValueError(f"ttl must be a positive number of minutes or None, got {op.ttl!r}.")
    raw, value = _encode(op.namespace, op.key, op.value)
    index = op.index
    if (
        index is not None
        and index is not False
        and not (isinstance(index, list | tuple) and all(isinstance(p, str) for p in index))
    ):
        raise ValueError(f"index must be None, False or a list of field paths, got {index!r}.")
    indexed = spec is not None and index is not False
    texts: list[int] = []
    if indexed and spec is not None:
        paths = spec.fields if index is None or index is False else tuple(index)
        for path in paths:
            for text in get_text_at_path(value, "$" if path == "$" else tokenize_path(path)):
                if text not in text_ids:
                    text_ids[text] = len(plan.texts)
                    plan.texts.append(text)
                texts.append(text_ids[text])
    return Put(tuple(op.namespace), op.key, raw, value, op.ttl, tuple(texts), indexed)


def _search_step(op: SearchOp, spec: IndexSpec | None, plan: Plan) -> Search:
    check_labels(op.namespace_prefix)
    _check_page(op.limit, op.offset, "search")
    query = op.query if spec is not None and op.query else None
    if query is not None and query not in plan.queries:
        plan.queries.append(query)
    predicate = compile_filter(op.filter)
    return Search(tuple(op.namespace_prefix), predicate, op.limit, op.offset, query, op.refresh_ttl, op.filter)


def plan_batch(ops: Iterable[Op], spec: IndexSpec | None) -> Plan:
    """Check every op and build the plan; raises before anything is written."""
    plan = Plan([])
    text_ids: dict[str, int] = {}
    for op in ops:
        if isinstance(op, GetOp):
            check_labels(op.namespace)
            plan.steps.append(Get(tuple(op.namespace), check_key(str(op.key)), op.refresh_ttl))
        elif isinstance(op, PutOp):
            plan.steps.append(put_step(op, spec, plan, text_ids))
        elif isinstance(op, SearchOp):
            plan.steps.append(_search_step(op, spec, plan))
        elif isinstance(op, ListNamespacesOp):
            for condition in op.match_conditions or ():
                check_labels(condition.path)
            _check_page(op.limit, op.offset, "list_namespaces")
            if op.max_depth is not None and (not isinstance(op.max_depth, int) or op.max_depth < 0):
                raise ValueError(f"max_depth must be a non-negative int or None, got {op.max_depth!r}.")
            conditions = tuple(op.match_conditions or ())
            plan.steps.append(ListNamespaces(conditions, op.max_depth, op.limit, op.offset))
        else:
            raise ValueError(f"Unknown operation type: {type(op)}")
    return plan
