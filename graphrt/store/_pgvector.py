"""Vector search in PostgreSQL with pgvector: the index config, the embeddings table, its ANN index, ranked reads.

The SQL store keeps every item's vectors as a float32 blob (`graphrt_store_vectors`); with pgvector the same
vectors are mirrored one per row into `graphrt_store_embeddings` (deleted with their blob by a foreign key) and
searched in SQL. Vectors are stored as the embedder gave them, as LangGraph does, so any distance type can be
used on the same data. Scores follow LangGraph's convention: cosine similarity, the negative L2 distance, the
inner product (higher is better for each).

Cosine is searched as the inner product of `l2_normalize(embedding)` with the unit query: the same order and
score as cosine distance, and a zero vector scores 0 as on every other backend (cosine distance would be NaN).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from graphrt.checkpoint._drive import Body
from graphrt.store._vectors import normalize

__all__ = ("EMBEDDINGS", "PgRanking", "PgVector", "VectorConfig", "parse_vector_config")

Matrix = npt.NDArray[np.float32]

EMBEDDINGS = "graphrt_store_embeddings"
DISTANCES = {"cosine": "cosine", "l2": "l2", "inner_product": "dot"}
"""LangGraph's distance types, and the in-process metric giving the same scores."""
_KINDS = {"hnsw": ("m", "ef_construction", "ef_search"), "ivfflat": ("nlist", "lists", "probes"), "flat": ()}
"""ANN index kinds and the integer parameters each takes (`lists` is pgvector's name for `nlist`). `ef_search`
and `probes` are graphrt's: search-time settings (candidates an HNSW search keeps; IVFFlat lists it reads)."""
_SEARCH_PARAMS = ("ef_search", "probes")
_VECTOR_TYPES = ("vector", "halfvec")
_FIRST_FETCH = 40
"""Fewest candidates one index read asks for (pgvector's default `hnsw.ef_search`)."""
_EF_SEARCH = 40
"""HNSW candidates kept by a search unless `ef_search` says otherwise: pgvector's default, as LangGraph searches.
An index read costs about in proportion (200 cost 2-2.5x as much); clustered vectors, like real embeddings, keep
a recall@10 of 0.99-1.00 at 40, while random ones (the hard case) fall from 0.87 at 200 to 0.39 (see
benchmarks/bench_pgvector.py): raise `ef_search` for such data."""
_MAX_EF_SEARCH = 1000


@dataclass(frozen=True, slots=True)
class VectorConfig:
    """The checked pgvector part of a PostgreSQL store's `index` config."""

    distance: str = "cosine"
    """`cosine`, `l2` or `inner_product`."""
    kind: str = "hnsw"
    """`hnsw`, `ivfflat`, or `flat` (no index: every search is an exact scan in SQL)."""
    vector_type: str = "vector"
    """`vector` (float32) or `halfvec` (float16 in the index: half the size, slightly rounded scores)."""
    params: tuple[tuple[str, int], ...] = ()
    """The index's build parameters (`m`, `ef_construction` for HNSW; `lists` for IVFFlat)."""
    search: tuple[tuple[str, int], ...] = ()
    """Search-time settings (`ef_search` for HNSW, `probes` for IVFFlat)."""

    @property
    def metric(self) -> str:
        """The in-process metric (`graphrt.store._vectors.METRICS`) giving the same scores."""
        return DISTANCES[self.distance]

    def expression(self, dims: int) -> str:
        """The indexed SQL expression a search orders by (the query uses the very same text)."""
        column = "l2_normalize(embedding)" if self.distance == "cosine" else "embedding"
        return f"({column})::{self.vector_type}({dims})"

    @property
    def operator(self) -> str:
        return "<->" if self.distance == "l2" else "<#>"

    def distance_sql(self, dims: int, *, scan: bool) -> str:
        """SQL for a row's distance to the query (`%s`, unit length for cosine): the index's expression, or
        with `scan` the same values computed 2.3x faster when no index is read (no vector allocated per row)."""
        query = f"%s::{self.vector_type}({dims})"
        if scan and self.distance == "cosine" and self.vector_type == "vector":
            return f"COALESCE((embedding <#> {query}) / NULLIF(vector_norm(embedding), 0), 0)"
        return f"{self.expression(dims)} {self.operator} {query}"

    def index_sql(self, dims: int) -> str | None:
        """`CREATE INDEX` for the configured ANN index, or None for `flat`."""
        if self.kind == "flat":
            return None
        ops = f"{self.vector_type}_{'l2' if self.distance == 'l2' else 'ip'}_ops"
        with_ = ", ".join(f"{name} = {value}" for name, value in self.params)
        suffix = "".join(f"_{name[:2]}{value}" for name, value in self.params)
        name = f"{EMBEDDINGS}_{self.kind}_{self.vector_type}_{self.distance}{suffix}"
        return (
            f"CREATE INDEX IF NOT EXISTS {name} ON {EMBEDDINGS} USING {self.kind} "
            f"(({self.expression(dims)}) {ops}){f' WITH ({with_})' if with_ else ''}"
        )


def parse_vector_config(index: Mapping[str, Any] | None) -> VectorConfig:
    """Check `distance_type` and `ann_index_config` (LangGraph's `PostgresIndexConfig` keys).

    Raises:
        ValueError: An unknown distance type, index kind, vector type or index parameter, or a parameter
            that is not a positive int.
    """
    if not index:
        return VectorConfig()
    distance = index.get("distance_type", "cosine")
    if distance not in DISTANCES:
        raise ValueError(f"index['distance_type'] must be one of {tuple(DISTANCES)}, got {distance!r}.")
    ann = index.get("ann_index_config") or {}
    if not isinstance(ann, Mapping):
        raise ValueError(f"index['ann_index_config'] must be a dict, got {type(ann).__name__}.")
    kind = ann.get("kind", "hnsw")
    if kind not in _KINDS:
        raise ValueError(f"index['ann_index_config']['kind'] must be one of {tuple(_KINDS)}, got {kind!r}.")
    vector_type = ann.get("vector_type", "vector")
    if vector_type not in _VECTOR_TYPES:
        raise ValueError(
            f"index['ann_index_config']['vector_type'] must be one of {_VECTOR_TYPES}, got {vector_type!r}."
        )
    params: list[tuple[str, int]] = []
    search: list[tuple[str, int]] = []
    for key, value in ann.items():
        if key in ("kind", "vector_type"):
            continue
        if key not in _KINDS[kind]:
            allowed = ", ".join(("kind", "vector_type", *_KINDS[kind]))
            raise ValueError(f"index['ann_index_config'] has {key!r}, which a {kind} index does not take ({allowed}).")
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ValueError(f"index['ann_index_config'][{key!r}] must be a positive int, got {value!r}.")
        (search if key in _SEARCH_PARAMS else params).append(("lists" if key == "nlist" else key, value))
    return VectorConfig(distance, kind, vector_type, tuple(sorted(params)), tuple(search))


def literal(vector: Matrix) -> str:
    """pgvector's text form of a vector.

    Nine significant digits round-trip every float32 exactly (pgvector stores float32 or less), and one
    `%` over the whole vector is about four times faster than `repr` per item (and the text a third shorter).
    """
    values = vector.tolist()
    return "[" + ("%.9g," * len(values) % tuple(values))[:-1] + "]"


class PgVector:
    """The embeddings table of one store: created at setup, written with each batch, read by searches."""

    def __init__(self, config: VectorConfig, dims: int) -> None:
        self.config = config
        self.dims = dims
        self.iterative = True
        """Whether the server's pgvector has iterative index scans (0.8+); without, the exact tail does more."""

    def create(self, cur: Any, *, with_index: bool) -> Body[None]:
        """Create the table (backfilled from the saved blobs) and, `with_index`, the ANN index, if missing.

        Raises:
            ValueError: The table holds vectors of another width.
        """
        yield cur.execute("SELECT to_regclass(%s) IS NULL", (EMBEDDINGS,))
        missing = (yield cur.fetchone())[0]
        if missing:
            yield cur.execute(
                f"""CREATE TABLE {EMBEDDINGS} (
                    item_id BIGINT NOT NULL REFERENCES graphrt_store_vectors (item_id) ON DELETE CASCADE,
                    n INTEGER NOT NULL,
                    ns TEXT COLLATE "C" NOT NULL,
                    embedding vector({self.dims}) NOT NULL,
                    PRIMARY KEY (item_id, n)
                )"""
            )
            yield from self._backfill(cur)
        yield cur.execute(
            "SELECT atttypmod FROM pg_attribute WHERE attrelid = %s::regclass AND attname = 'embedding'",
            (EMBEDDINGS,),
        )
        width = (yield cur.fetchone())[0]
        if width != self.dims:
            raise ValueError(
                f"The store's saved vectors are {width}-dimensional, not {self.dims}-dimensional; they were "
                "written with another index configuration. Use the same 'dims' and embedder, or a new database."
            )
        statement = self.config.index_sql(self.dims)
        if with_index and statement is not None:
            yield cur.execute(statement)

    def _backfill(self, cur: Any) -> Body[None]:
        yield cur.execute(
            "SELECT v.item_id, s.ns, v.vectors FROM graphrt_store_vectors v JOIN graphrt_store s ON s.id = v.item_id"
        )
        rows: list[tuple[int, int, str, str]] = []
        for item_id, ns, blob in (yield cur.fetchall()):
            if not blob or len(blob) % (4 * self.dims):
                raise ValueError(
                    f"The store's saved vectors are not {self.dims}-dimensional; they were written with another "
                    "index configuration. Use the same 'dims' and embedder, or a new database."
                )
            matrix = np.frombuffer(blob, dtype=np.float32).reshape(-1, self.dims)
            rows.extend((item_id, n, ns, literal(vector)) for n, vector in enumerate(matrix))
        if rows:
            yield cur.executemany(f"INSERT INTO {EMBEDDINGS} (item_id, n, ns, embedding) VALUES (%s, %s, %s, %s)", rows)

    def write(self, cur: Any, fresh: list[tuple[str, str, Matrix]]) -> Body[None]:
        """Replace the embeddings of items `(namespace text, key, vectors)` just written in this transaction."""
        lookup = "SELECT id FROM graphrt_store WHERE ns = %s AND key = %s"
        yield cur.executemany(
            f"DELETE FROM {EMBEDDINGS} WHERE item_id = ({lookup})", [(ns, key) for ns, key, _ in fresh]
        )
        rows = [(n, literal(vector), ns, key) for ns, key, matrix in fresh for n, vector in enumerate(matrix)]
        yield cur.executemany(
            f"INSERT INTO {EMBEDDINGS} (item_id, n, ns, embedding) "
            f"SELECT id, %s, ns, %s FROM graphrt_store WHERE ns = %s AND key = %s",
            rows,
        )

    def tune(self, cur: Any, fetch: int, force_index: bool) -> Body[str]:
        """Set this transaction's index scan settings (iterative scans, enough candidates for a page, and
        `enable_seqscan` off with `force_index`) in one round trip; return `enable_seqscan` as it was."""
        search = dict(self.config.search)
        if self.config.kind == "hnsw":
            ef_search = min(_MAX_EF_SEARCH, max(search.get("ef_search", _EF_SEARCH), fetch))
            settings = {"hnsw.ef_search": str(ef_search), "hnsw.iterative_scan": "strict_order"}
        else:
            probes = search.get("probes") or max(1, math.isqrt(dict(self.config.params).get("lists", 100)))
            settings = {"ivfflat.probes": str(probes), "ivfflat.iterative_scan": "relaxed_order"}
        if not self.iterative:
            settings.popitem()
        if force_index:
            settings["enable_seqscan"] = "off"
        calls = ", ".join("set_config(%s, %s, true)" for _ in settings)
        yield cur.execute(
            f"SELECT current_setting('enable_seqscan'), {calls}", [part for pair in settings.items() for part in pair]
        )
        previous: str = (yield cur.fetchone())[0]
        return previous

    def ranking(self, cur: Any, query: Matrix, where: str | None, where_args: list[Any], want: int) -> PgRanking:
        """`(item id, best score)` under the prefix, best first, each item once, ending with every item.

        `where` is an SQL condition on `ns` (the namespace prefix), with `where_args` its parameters, or None.
        """
        return PgRanking(self, cur, query, where, where_args, want)


class PgRanking:
    """A search's candidates from the embeddings table, best first, each item once, ending with every item.

    Reads the index in growing pages (with pgvector's iterative scan, so a prefix that the nearest
    vectors miss still fills the page); once the index has nothing more, an exact scan yields the items
    it never returned, so a filter that keeps few items gets the same answer as the exact path.
    """

    def __init__(
        self, vectors: PgVector, cur: Any, query: Matrix, where: str | None, where_args: list[Any], want: int
    ) -> None:
        config = vectors.config
        self._vectors = vectors
        self._cur = cur
        self._force_index = config.kind != "flat" and where is None
        self._where = where or "TRUE"
        self._args = where_args
        self._vector = literal(normalize(query.reshape(1, -1))[0] if config.distance == "cosine" else query)
        self._fetch = max(_FIRST_FETCH, 2 * want)
        self._seqscan: str | None = None
        self._stage = "start"
        self._seen: set[int] = set()
        self._pending: list[tuple[int, float]] = []

    def take(self, count: int) -> Body[list[tuple[int, float]]]:
        """The next `count` candidates (fewer only once every item was returned)."""
        while len(self._pending) < count and self._stage != "done":
            yield from self._more()
        taken, self._pending = self._pending[:count], self._pending[count:]
        return taken

    def _add(self, found: list[Any]) -> None:
        for item_id, distance in found:
            if item_id not in self._seen:
                self._seen.add(item_id)
                self._pending.append((item_id, -float(distance)))

    def _more(self) -> Body[None]:
        cur, config, dims = self._cur, self._vectors.config, self._vectors.dims
        if self._stage == "start":
            # Over the whole store the planner underrates a scan's per-row cost (l2_normalize of every row) and
            # picks a 3x slower sequential scan on 10k rows. Under a prefix it is left to choose: a scan of a
            # small namespace is faster than a filtered index scan, and exact.
            if config.kind != "flat":
                self._seqscan = yield from self._vectors.tune(cur, self._fetch, self._force_index)
            self._stage = "index"
        if self._stage == "index":
            target = config.distance_sql(dims, scan=config.kind == "flat")
            if self._force_index and self._seen:
                yield cur.execute("SELECT set_config('enable_seqscan', 'off', true)")
            yield cur.execute(
                f"SELECT item_id, {target} FROM {EMBEDDINGS} WHERE {self._where} ORDER BY {target} LIMIT %s",
                [self._vector, *self._args, self._vector, self._fetch],
            )
            found = yield cur.fetchall()
            if self._force_index:
                yield cur.execute("SELECT set_config('enable_seqscan', %s, true)", (self._seqscan,))
            if config.kind == "ivfflat":
                found.sort(key=lambda pair: pair[1])  # its iterative scan returns them in roughly that order
            self._add(found)
            if len(found) < self._fetch:
                self._stage = "done" if config.kind == "flat" else "tail"
            else:
                self._fetch *= 4
            return
        # `+ 0` keeps the planner off the ANN index: this scan must see every row.
        target = config.distance_sql(dims, scan=True)
        yield cur.execute(
            f"SELECT item_id, {target} FROM {EMBEDDINGS} WHERE {self._where} ORDER BY ({target}) + 0",
            [self._vector, *self._args, self._vector],
        )
        self._add((yield cur.fetchall()))
        self._stage = "done"
