"""Check a batch of store ops up front and turn it into steps a backend applies in order.

Everything that can be wrong with a batch (bad namespace, non-dict or non-JSON value, bad filter,
negative limit) is found here, before the backend writes anything.
"""

from __future__ import annotations

import functools
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
from graphrt.store._namespace import check_key, check_labels, check_put_namespace, known_writable
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
        now = time.time_ns() // 1000
        if now <= self._last:
            now = self._last + 1
        self._last = now
        return now


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


# Get, Put and Delete are built once per operation: plain (not frozen) dataclasses build faster.
@dataclass(slots=True)
class Get:
    namespace: tuple[str, ...]
    key: str
    refresh: bool


@dataclass(slots=True)
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


@dataclass(slots=True)
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
    text_rows: list[Any] | None = None
    """The embedder's rows for `texts`, checked (`Embedder.checked_rows`), filled in by `embed`/`aembed`."""
    query_vectors: dict[str, Matrix] = field(default_factory=dict)
    unit: bool = True
    """Whether vectors are scaled to unit length (the index's `IndexSpec.unit`), set by `embed`/`aembed`."""
    _unit: Matrix | None = None

    def rows_of(self, put: Put) -> list[Any]:
        """The embedder's rows for one put's texts (possibly none), not yet converted or normalized."""
        rows = self.text_rows
        if not put.texts or rows is None:
            return []
        return [rows[i] for i in put.texts]

    def vectors_of(self, put: Put) -> Matrix:
        """The vectors of one put's texts (possibly none; unit length unless `unit` is False); converted once."""
        texts = put.texts
        if not texts or self.text_rows is None:
            return np.zeros((0, 0), dtype=np.float32)
        if self._unit is None:
            matrix = np.asarray(self.text_rows, dtype=np.float32)
            self._unit = normalize(matrix) if self.unit else matrix
        if len(texts) == 1:  # a view, not a copy
            return self._unit[texts[0] : texts[0] + 1]
        return self._unit[list(texts)]

    def embed(self, spec: IndexSpec | None) -> None:
        """Embed the batch's texts and queries with the sync embedder."""
        if spec is None:
            return
        self.unit = spec.unit
        if self.texts:
            self.text_rows = spec.embedder.document_rows(self.texts)
        if self.queries:
            self._set_queries(_scaled(spec, spec.embedder.queries(self.queries)))

    async def aembed(self, spec: IndexSpec | None) -> None:
        """Embed the batch's texts and queries with the async embedder."""
        if spec is None:
            return
        self.unit = spec.unit
        if self.texts:
            self.text_rows = await spec.embedder.adocument_rows(self.texts)
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
    if type(value) is not dict and not isinstance(value, Mapping):
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


@functools.lru_cache(maxsize=256)
def _path_tokens(path: str) -> str | tuple[str, ...]:
    """A field path tokenized once ("$" stays "$")."""
    return "$" if path == "$" else tuple(tokenize_path(path))


@functools.lru_cache(maxsize=256)
def _plain_field(path: str) -> str | None:
    """The field name when `path` names one top-level field ("text"), else None ("a.b", "[0]", "*", "$")."""
    tokens = _path_tokens(path)
    if isinstance(tokens, str) or len(tokens) != 1 or tokens[0] == "*" or tokens[0][:1] in ("[", "{"):
        return None
    return tokens[0]


def _positive_number(ttl: Any) -> bool:
    return isinstance(ttl, int | float) and not isinstance(ttl, bool) and ttl > 0


def plain_put(
    namespace: Any, key: Any, value: Any, spec: IndexSpec | None, plan: Plan, text_ids: dict[str, int] | None = None
) -> Put | None:
    """The `Put` of a common, plainly valid put (known namespace, ASCII key, dict value, default index, no
    TTL), checked and encoded without building a `PutOp`; None for anything else (`put_step` checks that)."""
    if type(value) is dict and type(key) is str and key.isascii() and "\x00" not in key and known_writable(namespace):
        raw, decoded = _encode(namespace, key, value)
        texts = () if spec is None else _texts(decoded, spec.fields, plan, {} if text_ids is None else text_ids)
        return Put(namespace, key, raw, decoded, None, texts, spec is not None)
    return None


def _texts(value: dict[str, Any], paths: Iterable[str], plan: Plan, text_ids: dict[str, int]) -> tuple[int, ...]:
    """Add the texts `paths` pick from `value` to the plan (once each); their indexes in `plan.texts`."""
    texts: list[int] = []
    for path in paths:
        tokens = _path_tokens(path)
        field = _plain_field(path)
        found = value.get(field) if field is not None else None
        # A top-level string field (the usual index) needs no path walk.
        for text in (found,) if type(found) is str else get_text_at_path(value, tokens):
            if text not in text_ids:
                text_ids[text] = len(plan.texts)
                plan.texts.append(text)
            texts.append(text_ids[text])
    return tuple(texts)


def put_step(op: PutOp, spec: IndexSpec | None, plan: Plan, text_ids: dict[str, int]) -> Put | Delete:
    """Check a put (or delete) and encode its value; texts to embed are added to `plan`."""
    if op.index is None and op.ttl is None:
        put = plain_put(op.namespace, op.key, op.value, spec, plan, text_ids)
        if put is not None:
            return put
    check_key(op.key)
    if op.value is None:
        check_labels(op.namespace)
        return Delete(tuple(op.namespace), op.key)
    check_put_namespace(op.namespace)
    if op.ttl is not None and (type(op.ttl) not in (int, float) or op.ttl <= 0) and not _positive_number(op.ttl):
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
    texts: tuple[int, ...] = ()
    if indexed and spec is not None:
        texts = _texts(value, spec.fields if index is None or index is False else index, plan, text_ids)
    return Put(tuple(op.namespace), op.key, raw, value, op.ttl, texts, indexed)


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
    steps = plan.steps
    for op in ops:
        if type(op) is PutOp:  # the common case in big batches, first
            steps.append(put_step(op, spec, plan, text_ids))
        elif isinstance(op, GetOp):
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
