"""An in-process vector index: one contiguous float32 matrix, scores in one matrix product.

The in-memory store keeps its vectors here; the SQL stores keep a copy of their vector table here,
so a query costs one matrix-vector product and a partial sort instead of a scan in Python.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from graphrt.store._namespace import under_prefix

__all__ = ("METRICS", "VectorIndex", "normalize")

Matrix = npt.NDArray[np.float32]

METRICS = ("dot", "cosine", "l2")
"""How a row scores against a query: `dot` (the stored rows are already unit length, so this is cosine
similarity; raw rows make it the inner product), `cosine` (rows and query are scaled to unit length first),
`l2` (the negative Euclidean distance, so a higher score is still closer)."""

_FIRST_PASS = 256
"""How many best rows a query sorts before falling back to sorting them all."""


def normalize(vectors: Matrix) -> Matrix:
    """Scale rows to unit length (zero rows stay zero), so a dot product is the cosine similarity."""
    if len(vectors) == 1:  # one put or one query: skip the general (slower) path
        norm = math.sqrt(float(np.dot(vectors[0], vectors[0])))
        one: Matrix = (vectors / norm if norm else vectors.copy()).astype(np.float32, copy=False)
        return one
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    result: Matrix = (vectors / norms).astype(np.float32, copy=False)
    return result


class VectorIndex:
    """Vectors of many owners (items, by integer id); each owner may have several rows."""

    def __init__(self, dims: int, metric: str = "dot") -> None:
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}.")
        self.dims = dims
        self.metric = metric
        self._matrix: Matrix = np.zeros((64, dims), dtype=np.float32)
        self._row_owner = np.zeros(64, dtype=np.int64)
        self._row_ns = np.zeros(64, dtype=np.int32)
        self._size = 0
        self._rows: dict[int, list[int]] = {}
        self._ns_ids: dict[tuple[str, ...], int] = {}
        self._pending: dict[int, tuple[tuple[str, ...], list[Any]]] = {}
        """Owners staged by `stage`, not in the matrix yet: the next query adds them all at once."""

    def __len__(self) -> int:
        self._flush()
        return self._size

    def __contains__(self, owner: int) -> bool:
        return owner in self._rows or owner in self._pending

    def clear(self) -> None:
        """Forget every vector."""
        self._size = 0
        self._rows.clear()
        self._ns_ids.clear()
        self._pending.clear()

    def _ns_id(self, namespace: tuple[str, ...]) -> int:
        found = self._ns_ids.get(namespace)
        if found is None:
            found = self._ns_ids[namespace] = len(self._ns_ids)
        return found

    def _reserve(self, extra: int) -> None:
        need = self._size + extra
        if need <= len(self._row_owner):
            return
        capacity = max(need, 2 * len(self._row_owner))
        matrix = np.zeros((capacity, self.dims), dtype=np.float32)
        matrix[: self._size] = self._matrix[: self._size]
        self._matrix = matrix
        self._row_owner = np.resize(self._row_owner, capacity)
        self._row_ns = np.resize(self._row_ns, capacity)

    def set(self, owner: int, namespace: tuple[str, ...], vectors: Matrix) -> None:
        """Replace the owner's vectors with `vectors`; no rows removes the owner."""
        self.discard(owner)
        count = len(vectors)
        if count == 0:
            return
        if self.metric == "cosine":
            vectors = normalize(vectors)
        self._reserve(count)
        start = self._size
        self._matrix[start : start + count] = vectors
        self._row_owner[start : start + count] = owner
        self._row_ns[start : start + count] = self._ns_id(namespace)
        self._rows[owner] = list(range(start, start + count))
        self._size += count

    def stage(self, owner: int, namespace: tuple[str, ...], rows: list[Any]) -> None:
        """Like `set`, for rows as the embedder returned them (checked, not yet float32 nor unit length).

        They are converted and normalized together when the index is next queried: converting one
        put's vector costs about as much as converting it among thousands, and many are never queried.
        """
        self.discard(owner)
        if rows:
            # As tuples of floats, which the garbage collector stops tracking: thousands of staged lists
            # would make each full collection walk every number.
            self._pending[owner] = (namespace, [tuple(row) for row in rows])

    def _flush(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        owners: list[int] = []
        spaces: list[int] = []
        rows: list[Any] = []
        for owner, (namespace, owned) in pending.items():
            owners += [owner] * len(owned)
            spaces += [self._ns_id(namespace)] * len(owned)
            rows += owned
        self._reserve(len(rows))
        start, end = self._size, self._size + len(rows)
        self._matrix[start:end] = normalize(np.asarray(rows, dtype=np.float32))
        self._row_owner[start:end] = owners
        self._row_ns[start:end] = spaces
        for row, owner in enumerate(owners, start):
            self._rows.setdefault(owner, []).append(row)
        self._size = end

    def load(self, owners: Sequence[int], namespaces: Sequence[tuple[str, ...]], matrix: Matrix) -> None:
        """Replace everything with one row per entry of `owners` (bulk load; owners may repeat)."""
        self.clear()
        self._reserve(len(owners))
        self._size = len(owners)
        self._matrix[: self._size] = normalize(matrix) if self.metric == "cosine" and len(matrix) else matrix
        self._row_owner[: self._size] = owners
        self._row_ns[: self._size] = [self._ns_id(ns) for ns in namespaces]
        for row, owner in enumerate(owners):
            self._rows.setdefault(owner, []).append(row)

    def discard(self, owner: int) -> None:
        """Remove the owner's rows, moving the last rows into the holes to keep the matrix dense."""
        if self._pending and self._pending.pop(owner, None) is not None:
            return
        rows = self._rows.pop(owner, None)
        if not rows:
            return
        for row in sorted(rows, reverse=True):
            last = self._size - 1
            if row != last:
                moved = int(self._row_owner[last])
                self._matrix[row] = self._matrix[last]
                self._row_owner[row] = moved
                self._row_ns[row] = self._row_ns[last]
                moved_rows = self._rows[moved]
                moved_rows[moved_rows.index(last)] = row
            self._size = last

    def _scores(self, query: Matrix) -> Matrix:
        matrix = self._matrix[: self._size]
        if self.metric == "l2":
            distances: Matrix = np.linalg.norm(matrix - query, axis=1)
            return -distances
        if self.metric == "cosine":
            query = normalize(query.reshape(1, -1))[0]
        scores: Matrix = matrix @ query
        return scores

    def ranked(self, query: Matrix, prefix: tuple[str, ...]) -> Iterator[tuple[int, float]]:
        """Yield `(owner, best score)` under `prefix`, best first, each owner once."""
        self._flush()
        if self._size == 0:
            return
        scores = self._scores(query)
        rows: npt.NDArray[np.int64] | None = None
        if prefix:
            wanted = [i for ns, i in self._ns_ids.items() if under_prefix(ns, prefix)]
            if not wanted:
                return
            rows = np.flatnonzero(np.isin(self._row_ns[: self._size], wanted))
            scores = scores[rows]
        owners = self._row_owner[: self._size] if rows is None else self._row_owner[rows]
        seen: set[int] = set()
        count = len(scores)
        first = min(count, _FIRST_PASS)
        top = np.argpartition(-scores, first - 1)[:first] if first < count else np.arange(count)
        top = top[np.argsort(-scores[top], kind="stable")]
        for position in top.tolist():
            owner = int(owners[position])
            if owner not in seen:
                seen.add(owner)
                yield owner, float(scores[position])
        if first == count:
            return
        done = np.zeros(count, dtype=bool)
        done[top] = True
        for position in np.argsort(-scores, kind="stable").tolist():
            owner = int(owners[position])
            if not done[position] and owner not in seen:
                seen.add(owner)
                yield owner, float(scores[position])
