"""The SQL store, written once: schema, statements, row mapping and batch application.

Backend packages (`sqlite/`, `postgres/`) only connect and say how their SQL differs, through the `Dialect`
of graphrt's one SQL layer (`graphrt.checkpoint._dialect`, shared with the checkpoint savers: placeholders,
column types, how writers are serialized, JSON pushdown), plus hooks on `SqlStore` where behaviour rather
than SQL differs (`_external_version`, `_wrote`, `_vectors_set`, `_ranked`). Values are JSON text; vectors
are float32 blobs (all of an item's vectors in one blob; unit length unless the store's index keeps them as
given) in a side table, scored in numpy from an in-process copy that is refreshed when another connection
commits (a store may rank them another way: `_ranked`). Filters run in Python with the same compiled
predicate as every other backend, after SQL has narrowed the scan where it can (`_pushdown`).
"""

from __future__ import annotations

import contextlib
import functools
import heapq
import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
import orjson

from graphrt.checkpoint._dialect import Dialect, apply_migrations
from graphrt.store._indexed import StoreCore, page, ttl_micros
from graphrt.store._namespace import check_key, check_labels, matches_condition
from graphrt.store._plan import Delete, Get, ListNamespaces, Plan, Put, Search, Step, to_datetime
from graphrt.store._vectors import VectorIndex
from graphrt.store.base import IndexConfig, Item, Result, SearchItem, TTLConfig, _refresh

__all__ = ("MIGRATIONS", "UPSERT_CONFLICT", "Dialect", "SqlStore")

T = TypeVar("T")

_COLUMNS = "id, ns, key, value, created_at, updated_at, ttl_minutes, expires_at, seq"
_MERGE_LIMIT = 32
"""Up to this many namespaces under a prefix are read one index range each and merged by `seq`."""
_LIVE = "(expires_at IS NULL OR expires_at > ?)"
_MIGRATIONS_TABLE = "graphrt_store_migrations"

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS graphrt_store (
        id {id},
        ns {text} NOT NULL,
        key {text} NOT NULL,
        value TEXT NOT NULL,
        created_at {bigint} NOT NULL,
        updated_at {bigint} NOT NULL,
        seq {bigint} NOT NULL,
        ttl_minutes {float},
        expires_at {bigint},
        UNIQUE (ns, key)
    )""",
    ),
    ("CREATE INDEX IF NOT EXISTS graphrt_store_seq ON graphrt_store (seq)",),
    ("CREATE INDEX IF NOT EXISTS graphrt_store_ns_seq ON graphrt_store (ns, seq)",),
    ("CREATE INDEX IF NOT EXISTS graphrt_store_expires ON graphrt_store (expires_at) WHERE expires_at IS NOT NULL",),
    (
        """CREATE TABLE IF NOT EXISTS graphrt_store_vectors (
        item_id {bigint} PRIMARY KEY,
        dims INTEGER NOT NULL,
        vectors {blob} NOT NULL
    )""",
    ),
    (
        # A counter bumped by writing transactions, for backends that cannot otherwise tell that another
        # connection committed (SQLite has `PRAGMA data_version` and leaves it alone).
        "CREATE TABLE IF NOT EXISTS graphrt_store_changes (one INTEGER PRIMARY KEY, version {bigint} NOT NULL)",
        "INSERT INTO graphrt_store_changes (one, version) VALUES (1, 0) ON CONFLICT DO NOTHING",
    ),
    (
        # The counter is also where a backend whose writes run without a global lock takes each write's
        # `seq` from (PostgreSQL: one row lock serializes them), so it starts above every `seq` written so far.
        "UPDATE graphrt_store_changes SET version = (SELECT COALESCE(MAX(seq), 0) FROM graphrt_store)"
        " WHERE one = 1 AND version < (SELECT COALESCE(MAX(seq), 0) FROM graphrt_store)",
    ),
    ("{json_doc}",),
)
"""Schema steps in order (versions 0, 1, ...; only ever append), in the shared SQL layer's portable types
(`Dialect.ddl`): one schema for every dialect. `setup()` runs those a database has not seen yet."""

UPSERT_CONFLICT = """
ON CONFLICT (ns, key) DO UPDATE SET
    value = excluded.value,
    created_at = CASE WHEN graphrt_store.expires_at IS NOT NULL
        AND graphrt_store.expires_at <= excluded.updated_at
        THEN excluded.created_at ELSE graphrt_store.created_at END,
    updated_at = excluded.updated_at,
    seq = excluded.seq,
    ttl_minutes = excluded.ttl_minutes,
    expires_at = excluded.expires_at
"""
"""How an upsert of the store's row updates an existing key (a live item keeps its `created_at`)."""
_UPSERT = (
    """
INSERT INTO graphrt_store (ns, key, value, created_at, updated_at, seq, ttl_minutes, expires_at)
VALUES (?, ?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM graphrt_store), ?, ?)"""
    + UPSERT_CONFLICT
)
"""Each write takes the next `seq` (the write order) in the statement itself, under the store's write lock:
no separate round trip to allocate it. (PostgreSQL takes it from the change counter instead: `upsert`.)"""
_SET_VECTORS = """
INSERT INTO graphrt_store_vectors (item_id, dims, vectors)
SELECT id, ?, ? FROM graphrt_store WHERE ns = ? AND key = ?
ON CONFLICT (item_id) DO UPDATE SET dims = excluded.dims, vectors = excluded.vectors
"""
_DROP_VECTORS = (
    "DELETE FROM graphrt_store_vectors WHERE item_id IN (SELECT id FROM graphrt_store WHERE ns = ? AND key = ?)"
)
_DELETE = "DELETE FROM graphrt_store WHERE ns = ? AND key = ?"
_REFRESH = (
    "UPDATE graphrt_store SET expires_at = ? + CAST(ttl_minutes * 60000000 AS BIGINT) "
    "WHERE id = ? AND ttl_minutes IS NOT NULL"
)
_GET = f"SELECT {_COLUMNS} FROM graphrt_store WHERE ns = ? AND key = ? AND {_LIVE}"
_GET_ONE = (
    "SELECT id, value, created_at, updated_at, ttl_minutes, expires_at FROM graphrt_store"
    f" WHERE ns = ? AND key = ? AND {_LIVE}"
)
_SCAN_PAGE = 64
"""A filtered search asking for at least this many rows scans the table rather than the seq index."""
_READS_LIMIT = 16_384
"""At most this many rows are kept for `get` (see `SqlStore._reads`); past it, the memory starts over."""


def _render(dialect: Dialect, statement: str) -> str:
    """`statement` in the dialect's placeholder style, adapted once (keyed by strings, which hash fast)."""
    return _adapt(dialect.placeholder, statement)


@functools.lru_cache(maxsize=1024)
def _adapt(placeholder: str, statement: str) -> str:
    return statement if placeholder == "?" else statement.replace("?", placeholder)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _ns_text(namespace: tuple[str, ...]) -> str:
    # Labels never contain ".", so the joined text is unambiguous.
    return ".".join(namespace)


def _prefix_clause(prefix: tuple[str, ...]) -> tuple[str, list[Any]]:
    """SQL matching a namespace and its descendants on whole labels, as an index range."""
    if not prefix:
        return "1 = 1", []
    text = _ns_text(prefix)
    # Every descendant's text starts with "<prefix>." and so sorts between "<prefix>." and "<prefix>/".
    return "(ns = ? OR (ns > ? AND ns < ?))", [text, text + ".", text + "/"]


@dataclass(frozen=True, slots=True)
class _Row:
    id: int
    namespace: tuple[str, ...]
    key: str
    value: dict[str, Any]
    created: int
    updated: int
    ttl: float | None
    expires: int | None
    seq: int

    @staticmethod
    def of(row: Sequence[Any]) -> _Row:
        ns = tuple(row[1].split("."))
        return _Row(row[0], ns, row[2], orjson.loads(row[3]), row[4], row[5], row[6], row[7], row[8])

    def item(self) -> Item:
        created, updated = to_datetime(self.created), to_datetime(self.updated)
        return Item(value=self.value, key=self.key, namespace=self.namespace, created_at=created, updated_at=updated)

    def search_item(self, score: float | None) -> SearchItem:
        updated = to_datetime(self.updated)
        created = updated if self.created == self.updated else to_datetime(self.created)
        return SearchItem._trusted(self.namespace, self.key, self.value, created, updated, score)


class SqlStore(StoreCore):
    """A store in a SQL database reached through one DB-API connection, shared under a lock."""

    dialect: Dialect
    upsert = _UPSERT
    """The statement writing one item (see `_UPSERT`); a backend may take `seq` from elsewhere."""
    metric = "dot"
    """How the in-process vector copy scores (see `graphrt.store._vectors.METRICS`)."""

    def __init__(self, conn: Any, *, index: IndexConfig | None = None, ttl: TTLConfig | None = None) -> None:
        super().__init__(index=index, ttl=ttl)
        self.conn = conn
        self.lock = threading.RLock()
        self.is_setup = False
        self._cache: VectorIndex | None = None
        self._cache_version: Any = None
        self._reads: dict[tuple[str, str], tuple[str, datetime, datetime, int | None, float | None]] | None = None
        """Rows recently read by `get` (value JSON, timestamps, expiry, TTL), or None when off; a backend whose
        store owns its connection turns it on. Valid while `_external_version` stays `_reads_version`; this
        store's own writes drop what they touch."""
        self._reads_version: Any = None

    def _external_version(self, cur: Any) -> Any:
        """A value that changes whenever another connection commits (cache invalidation)."""
        raise NotImplementedError

    def _begin_write(self, cur: Any) -> None:
        cur.execute(self.dialect.begin_write)
        if self.dialect.lock_store:
            cur.execute(self.dialect.lock_store)

    def _wrote(self, cur: Any, upserts: int) -> None:
        """Called in each transaction that puts or deletes items, after its `upserts` upserts, before it
        commits (a dialect hook)."""

    def _migrate(self) -> None:
        """Create the tables, running only the migrations this database has not seen."""
        with self.lock:
            cur = self.conn.cursor()
            self._begin_write(cur)
            try:
                # Stores written before the schema was one for every dialect numbered PostgreSQL's own steps
                # from 1000; those steps are now shared ones (idempotent), so forget the old numbers.
                cur.execute(f"CREATE TABLE IF NOT EXISTS {_MIGRATIONS_TABLE} (v INTEGER PRIMARY KEY)")
                cur.execute(f"DELETE FROM {_MIGRATIONS_TABLE} WHERE v >= 1000")
                apply_migrations(cur, self.dialect, _MIGRATIONS_TABLE, MIGRATIONS, first=0)
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            self.is_setup = True

    def get(self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None) -> Item | None:
        """Return the item at `namespace`/`key`, or `None`: one SELECT (see `_get_alone`), no batch plan."""
        check_labels(namespace)
        step = Get(tuple(namespace), check_key(str(key)), _refresh(self.ttl_config, refresh_ttl))
        return self._connected(lambda: self._get_alone(step))

    def _connected(self, action: Callable[[], T]) -> T:
        """Run `action` once the schema exists, with `self.conn` usable (a pooled backend lends one)."""
        if not self.is_setup:
            self._migrate()
        return action()

    def _apply(self, plan: Plan) -> list[Result]:
        if not self.is_setup:
            self._migrate()
        steps = plan.steps
        if len(steps) == 1 and type(steps[0]) is Get:  # e.g. `aget`, or `batch([GetOp(...)])`
            return [self._get_alone(steps[0])]
        writes = any(isinstance(step, Put | Delete) for step in steps)
        with self.lock:
            cur = self.conn.cursor()
            now = self._clock.now()
            try:
                # A write transaction may go to a server in one round trip (see `_pipelined`); an error shows
                # at the latest when the block ends, and the transaction is rolled back below.
                with self._pipelined() if writes else contextlib.nullcontext():
                    if writes:
                        self._begin_write(cur)
                    else:
                        cur.execute("BEGIN")
                    results, refresh = self._run_steps(cur, plan, now)
                    if refresh and writes:
                        cur.executemany(_render(self.dialect, _REFRESH), [(now, i) for i in refresh])
                    cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                self._cache = None  # it may hold vectors of writes that were just rolled back
                self._forget_reads()
                raise
            if refresh and not writes:
                # Reads stay in a shared-lock transaction; pushing expiry back is a short write after.
                self._refresh(cur, refresh, now)
            return results

    def _pipelined(self) -> contextlib.AbstractContextManager[Any]:
        """Where a driver can queue statements and send them together (psycopg's pipeline), a context doing
        so for a write transaction's statements; results are still read where the code asks for them."""
        return contextlib.nullcontext()

    def _get_alone(self, step: Get) -> Item | None:
        """A batch of one get: a single SELECT in autocommit mode is its own consistent snapshot, so it
        needs no BEGIN/COMMIT around it (one statement, one round trip to a server). With `_reads` on, a
        row read before is served from memory once the database is known not to have changed since."""
        where = (_ns_text(step.namespace), step.key)
        with self.lock:
            cur = self.conn.cursor()
            now = self._clock.now()
            reads = self._reads
            if reads is not None:
                version = self._external_version(cur)
                if version != self._reads_version:
                    reads.clear()
                    self._reads_version = version
                hit = reads.get(where)
                if hit is not None and (hit[3] is None or hit[3] > now) and not (step.refresh and hit[4] is not None):
                    return Item._trusted(orjson.loads(hit[0]), step.key, step.namespace, hit[1], hit[2])
            cur.execute(_render(self.dialect, _GET_ONE), (*where, now))
            found = cur.fetchone()
            if found is None:
                return None
            item_id, value, created, updated, ttl, expires = found
            updated_at = to_datetime(updated)
            created_at = updated_at if created == updated else to_datetime(created)
            if step.refresh and ttl is not None:
                self._refresh(cur, [item_id], now)
            elif reads is not None:
                if len(reads) >= _READS_LIMIT:
                    reads.clear()
                reads[where] = (value, created_at, updated_at, expires, ttl)
        return Item._trusted(orjson.loads(value), step.key, step.namespace, created_at, updated_at)

    def _refresh(self, cur: Any, ids: list[int], now: int) -> None:
        """Push back the expiry of the items `ids` that have a TTL, in a short write transaction."""
        self._forget_reads()
        self._write(cur, lambda: cur.executemany(_render(self.dialect, _REFRESH), [(now, i) for i in ids]))

    def _write(self, cur: Any, action: Any) -> Any:
        self._begin_write(cur)
        try:
            result = action()
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return result

    def _run_steps(self, cur: Any, plan: Plan, now: int) -> tuple[list[Result], list[int]]:
        results: list[Result] = []
        refresh: list[int] = []
        steps = plan.steps
        i = 0
        while i < len(steps):
            step = steps[i]
            if isinstance(step, Put | Delete):
                j = i
                while j < len(steps) and isinstance(steps[j], Put | Delete):
                    j += 1
                self._write_run(cur, steps[i:j], plan, now)
                results.extend([None] * (j - i))
                i = j
                continue
            if isinstance(step, Get):
                row = self._get(cur, step.namespace, step.key, now)
                results.append(None if row is None else row.item())
                rows = [] if row is None else [row]
            elif isinstance(step, Search):
                found = self._search(cur, step, plan, now)
                results.append([row.search_item(score) for row, score in found])
                rows = [row for row, _ in found]
            else:
                results.append(self._list(cur, step, now))
                rows = []
            if getattr(step, "refresh", False):
                refresh.extend(row.id for row in rows if row.ttl is not None)
            i += 1
        return results, refresh

    def _get(self, cur: Any, namespace: tuple[str, ...], key: str, now: int) -> _Row | None:
        cur.execute(_render(self.dialect, _GET), (_ns_text(namespace), key, now))
        found = cur.fetchone()
        return None if found is None else _Row.of(found)

    def _write_run(self, cur: Any, steps: Sequence[Step], plan: Plan, now: int) -> None:
        """Apply consecutive puts and deletes with one statement each (the last write of a key wins)."""
        last: dict[tuple[tuple[str, ...], str], tuple[int, Step]] = {}
        deleted: set[tuple[tuple[str, ...], str]] = set()
        for position, step in enumerate(steps):
            last[(step.namespace, step.key)] = (position, step)  # type: ignore[union-attr]
            if not isinstance(step, Put):
                deleted.add((step.namespace, step.key))  # type: ignore[union-attr]
        upserts: list[tuple[int, tuple[Any, ...]]] = []
        deletes: list[tuple[str, str]] = []
        drop: list[tuple[str, str]] = []  # deleted, or rewritten without vectors
        vectors: list[tuple[int, bytes, str, str]] = []
        fresh: list[tuple[Put, Any]] = []
        for position, step in last.values():
            where = (_ns_text(step.namespace), step.key)  # type: ignore[union-attr]
            if not isinstance(step, Put):
                deletes.append(where)
                drop.append(where)
                continue
            if (step.namespace, step.key) in deleted:
                # Deleted earlier in this batch: the put makes a new item (a fresh created_at).
                deletes.append(where)
            expires = None if step.ttl is None else now + ttl_micros(step.ttl)
            upserts.append((position, (*where, step.raw.decode(), now, now, step.ttl, expires)))
            rows = plan.vectors_of(step) if step.indexed else None
            if rows is not None and len(rows):
                vectors.append((rows.shape[1], rows.tobytes(), *where))
                fresh.append((step, rows))
            else:
                drop.append(where)
        self._forget_cached(cur, drop)
        if len(drop) > 1:  # a batch: skip one statement per item when no item has vectors at all
            cur.execute("SELECT 1 FROM graphrt_store_vectors LIMIT 1")
            if cur.fetchone() is None:
                drop = []
        self._run_many(cur, _DROP_VECTORS, drop)
        self._run_many(cur, _DELETE, deletes)
        upserts.sort(key=lambda found: found[0])  # in write order, so the last write gets the largest seq
        self._run_many(cur, self.upsert, [row for _, row in upserts])
        self._run_many(cur, _SET_VECTORS, vectors)
        self._vectors_set(cur, fresh)
        self._wrote(cur, len(upserts))
        self._cache_fresh(cur, fresh)
        if self._reads:
            for namespace, key in last:
                self._reads.pop((_ns_text(namespace), key), None)

    def _forget_reads(self) -> None:
        if self._reads:
            self._reads.clear()

    def _run_many(self, cur: Any, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run `statement` once per row: nothing for no rows, a plain execute for one (a driver's
        `executemany` may cost a round trip of its own even when empty, e.g. psycopg's pipeline)."""
        if len(rows) == 1:
            cur.execute(_render(self.dialect, statement), rows[0])
        elif rows:
            cur.executemany(_render(self.dialect, statement), rows)

    def _vectors_set(self, cur: Any, fresh: list[tuple[Put, Any]]) -> None:
        """Called after a batch's new vectors are saved, in its transaction (a hook for a second vector index)."""

    def _item_id(self, cur: Any, ns_text: str, key: str) -> int | None:
        cur.execute(self.dialect.sql("SELECT id FROM graphrt_store WHERE ns = ? AND key = ?"), (ns_text, key))
        found = cur.fetchone()
        return None if found is None else int(found[0])

    def _forget_cached(self, cur: Any, where: list[tuple[str, str]]) -> None:
        if self._cache is None:
            return
        for ns_text, key in where:
            item_id = self._item_id(cur, ns_text, key)
            if item_id is not None:
                self._cache.discard(item_id)

    def _cache_fresh(self, cur: Any, fresh: list[tuple[Put, Any]]) -> None:
        """Put this batch's new vectors into the loaded cache (our own commits do not invalidate it)."""
        if self._cache is None:
            return
        for step, rows in fresh:
            item_id = self._item_id(cur, _ns_text(step.namespace), step.key)
            if item_id is not None:
                self._cache.set(item_id, step.namespace, rows)

    def _rows(self, sql: str, params: Sequence[Any], fetch: int = 256) -> Generator[_Row, None, None]:
        """Stream rows from their own cursor, so other statements can run while this one is read."""
        cur = self.conn.cursor()
        try:
            cur.execute(self.dialect.sql(sql), params)
            while chunk := cur.fetchmany(fetch):
                for found in chunk:
                    yield _Row.of(found)
        finally:
            cur.close()

    def _rows_by_id(self, cur: Any, ids: list[int]) -> dict[int, _Row]:
        found: dict[int, _Row] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            cur.execute(self.dialect.sql(f"SELECT {_COLUMNS} FROM graphrt_store WHERE id IN ({marks})"), chunk)
            for row in cur.fetchall():
                found[row[0]] = _Row.of(row)
        return found

    def _vectors(self, cur: Any) -> VectorIndex:
        """The cached vector matrix, reloaded when another connection has committed since it was read."""
        assert self._index is not None
        version = self._external_version(cur)
        if self._cache is not None and version == self._cache_version:
            return self._cache
        dims = self._index.embedder.dims
        cur.execute(
            "SELECT v.item_id, s.ns, v.dims, v.vectors FROM graphrt_store_vectors v"
            " JOIN graphrt_store s ON s.id = v.item_id"
        )
        owners: list[int] = []
        spaces: list[tuple[str, ...]] = []
        blobs: list[bytes] = []
        parsed: dict[str, tuple[str, ...]] = {}
        for item_id, ns, width, blob in cur.fetchall():
            count, rest = divmod(len(blob), 4 * dims)
            if width != dims or rest or not count:
                raise ValueError(
                    f"The store's saved vectors are {width}-dimensional, not {dims}-dimensional; they were "
                    "written with another index configuration. Use the same 'dims' and embedder, or a new database."
                )
            namespace = parsed.get(ns) or parsed.setdefault(ns, tuple(ns.split(".")))
            owners.extend([item_id] * count)
            spaces.extend([namespace] * count)
            blobs.append(blob)
        cache = VectorIndex(dims, self.metric)
        cache.load(owners, spaces, np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(-1, dims))
        self._cache, self._cache_version = cache, version
        return cache

    def _scored(self, cur: Any, step: Search, plan: Plan, now: int) -> Iterator[tuple[_Row, float | None]]:
        """Rows with vectors, best score first, that are live and pass the filter."""
        assert step.query is not None
        ranked = self._ranked(cur, step, plan.query_vectors[step.query])
        chunk = max(16, step.offset + step.limit)
        while batch := [pair for _, pair in zip(range(chunk), ranked, strict=False)]:
            rows = self._rows_by_id(cur, [owner for owner, _ in batch])
            for owner, score in batch:
                row = rows.get(owner)
                if row is not None and _accept(row, step, now):
                    yield row, score
            chunk *= 2

    def _ranked(self, cur: Any, step: Search, query: Any) -> Iterator[tuple[int, float]]:
        """`(item id, best score)` of items with vectors under the search's prefix, best first, each once."""
        return self._vectors(cur).ranked(query, step.prefix)

    def _namespaces_under(self, cur: Any, prefix: tuple[str, ...]) -> list[str] | None:
        """Namespaces at or below `prefix` (as text), or `None` when there are more than `_MERGE_LIMIT`."""
        text = _ns_text(prefix)
        cur.execute(self.dialect.sql("SELECT 1 FROM graphrt_store WHERE ns = ? LIMIT 1"), (text,))
        found = [text] if cur.fetchone() else []
        # Skip from one distinct namespace to the next along the (ns, ...) index: O(namespaces x log n).
        skip = """
            WITH RECURSIVE spaces(ns) AS (
                SELECT (SELECT MIN(ns) FROM graphrt_store WHERE ns > ? AND ns < ?)
                UNION ALL
                SELECT (SELECT MIN(ns) FROM graphrt_store WHERE ns > spaces.ns AND ns < ?)
                FROM spaces WHERE spaces.ns IS NOT NULL
            )
            SELECT ns FROM spaces WHERE ns IS NOT NULL LIMIT ?
        """
        cur.execute(self.dialect.sql(skip), (text + ".", text + "/", text + "/", _MERGE_LIMIT + 1))
        found.extend(row[0] for row in cur.fetchall())
        return found if len(found) <= _MERGE_LIMIT else None

    def _newest(self, cur: Any, step: Search, now: int, stack: ExitStack, extra: str = "") -> Iterator[_Row]:
        """Live rows under the prefix, newest write first, read lazily."""
        fetch = max(16, step.offset + step.limit)
        narrow, narrow_args = self._pushdown(step.filter)
        live = f"{_LIVE}{extra}{narrow} ORDER BY seq DESC"
        spaces = self._namespaces_under(cur, step.prefix) if step.prefix else None
        if spaces is None:
            clause, args = _prefix_clause(step.prefix)
            # A large filtered page reads the table in storage order and sorts what matches; otherwise follow
            # the seq index newest first, which stops as soon as the page is full.
            order = self.dialect.by_storage if narrow and fetch >= _SCAN_PAGE else self.dialect.by_seq
            sql = f"SELECT {_COLUMNS} FROM graphrt_store {order} WHERE {clause} AND {live}"
            return stack.enter_context(closing(self._rows(sql, [*args, now, *narrow_args], fetch)))
        sql = f"SELECT {_COLUMNS} FROM graphrt_store WHERE ns = ? AND {live}"
        streams = [stack.enter_context(closing(self._rows(sql, [ns, now, *narrow_args], fetch))) for ns in spaces]
        return streams[0] if len(streams) == 1 else heapq.merge(*streams, key=lambda row: -row.seq)

    def _pushdown(self, spec: Mapping[str, Any] | None) -> tuple[str, list[Any]]:
        """SQL keeping only rows whose plain fields equal the filter's strings or numbers.

        Only narrows the scan: every row that passes still goes through the compiled predicate, so
        the answer is the same as without it (and as on the other backends).
        """
        field, kind = self.dialect.json_field, self.dialect.json_type
        if not spec or field is None or kind is None:
            return "", []
        parts: list[str] = []
        args: list[Any] = []
        for key, condition in spec.items():
            if isinstance(condition, Mapping) and set(condition) == {"$eq"}:
                condition = condition["$eq"]
            if not isinstance(key, str) or not key or '"' in key or "\\" in key or "." in key:
                continue  # a dotted key may also name a literal field: left to the compiled predicate
            if type(condition) is str and not condition.isascii() and not _encodable(condition):
                continue
            path = "$." + ".".join(f'"{part}"' for part in key.split("."))
            if type(condition) is str:
                parts.append(f"{field} = ? AND {kind} = 'text'")
            elif type(condition) is int or type(condition) is float:
                parts.append(f"{field} = ? AND {kind} IN ('integer', 'real')")
            else:
                continue
            args += [path, condition, path]
        return "".join(f" AND {p}" for p in parts), args

    def _search(self, cur: Any, step: Search, plan: Plan, now: int) -> list[tuple[_Row, float | None]]:
        with ExitStack() as stack:
            if step.query is None:
                return [
                    (row, None)
                    for row in page(_passing(self._newest(cur, step, now, stack), step), step.offset, step.limit)
                ]
            return page(
                _chain(self._scored(cur, step, plan, now), self._unscored(cur, step, now, stack)),
                step.offset,
                step.limit,
            )

    def _unscored(self, cur: Any, step: Search, now: int, stack: ExitStack) -> Iterator[tuple[_Row, None]]:
        """Items without vectors (index=False), newest first: they follow every scored one (queried only then)."""
        extra = " AND id NOT IN (SELECT item_id FROM graphrt_store_vectors)"
        for row in _passing(self._newest(cur, step, now, stack, extra), step):
            yield row, None

    def _list(self, cur: Any, step: ListNamespaces, now: int) -> list[tuple[str, ...]]:
        cur.execute(self.dialect.sql(f"SELECT DISTINCT ns FROM graphrt_store WHERE {_LIVE}"), (now,))
        names = [tuple(found[0].split(".")) for found in cur.fetchall()]
        names = [ns for ns in names if all(matches_condition(ns, c) for c in step.conditions)]
        if step.max_depth is not None:
            names = list({ns[: step.max_depth] for ns in names})
        names.sort()
        return names[step.offset : step.offset + step.limit]

    def _sweep(self) -> int:
        if not self.is_setup:
            self._migrate()
        with self.lock:
            cur = self.conn.cursor()
            now = self._clock.now()
            self._forget_reads()

            def delete_expired() -> int:
                expired = "SELECT id FROM graphrt_store WHERE expires_at IS NOT NULL AND expires_at <= ?"
                cur.execute(self.dialect.sql(expired), (now,))
                ids = [int(found[0]) for found in cur.fetchall()]
                if ids:
                    sql = f"DELETE FROM graphrt_store_vectors WHERE item_id IN ({expired})"
                    cur.execute(self.dialect.sql(sql), (now,))
                    cur.execute(self.dialect.sql(expired.replace("SELECT id", "DELETE")), (now,))
                cache = self._cache
                if cache is not None:
                    for item_id in ids:
                        cache.discard(item_id)
                return len(ids)

            deleted: int = self._write(cur, delete_expired)
            return deleted


def _accept(row: _Row, step: Search, now: int) -> bool:
    return (row.expires is None or row.expires > now) and (step.predicate is None or step.predicate(row.value))


def _passing(rows: Iterator[_Row], step: Search) -> Iterator[_Row]:
    predicate = step.predicate
    return rows if predicate is None else (row for row in rows if predicate(row.value))


def _chain(
    first: Iterator[tuple[_Row, float | None]], then: Iterator[tuple[_Row, None]]
) -> Iterator[tuple[_Row, float | None]]:
    yield from first
    yield from then
