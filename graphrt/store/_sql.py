"""The SQL store, written once: schema, statements, row mapping and batch application.

Dialect packages (`sqlite/`, `postgres/`) only connect and say how their SQL differs. Values
are JSON text; vectors are float32 blobs (all of an item's vectors in one blob; unit length unless the
store's index keeps them as given) in a side table, scored in numpy from an in-process copy that is
refreshed when another connection commits (a store may rank them another way: `_ranked`). Filters
run in Python with the same compiled predicate as every other backend.
"""

from __future__ import annotations

import functools
import heapq
import threading
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from graphrt.store._indexed import StoreCore, page, ttl_micros
from graphrt.store._namespace import matches_condition
from graphrt.store._plan import Delete, Get, ListNamespaces, Plan, Put, Search, Step, to_datetime
from graphrt.store._vectors import VectorIndex
from graphrt.store.base import IndexConfig, Item, Result, SearchItem, TTLConfig

__all__ = ("Dialect", "MIGRATIONS", "SqlStore")

_COLUMNS = "id, ns, key, value, created_at, updated_at, ttl_minutes, expires_at, seq"
_MERGE_LIMIT = 32
"""Up to this many namespaces under a prefix are read one index range each and merged by `seq`."""
_DIALECT_MIGRATIONS = 1000
"""Version number of a dialect's first own migration (the shared ones count from 0)."""
_LIVE = "(expires_at IS NULL OR expires_at > ?)"

MIGRATIONS: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS graphrt_store (
        id {pk},
        ns {text} NOT NULL,
        key {text} NOT NULL,
        value TEXT NOT NULL,
        created_at {int} NOT NULL,
        updated_at {int} NOT NULL,
        seq {int} NOT NULL,
        ttl_minutes {float},
        expires_at {int},
        UNIQUE (ns, key)
    )""",
    "CREATE INDEX IF NOT EXISTS graphrt_store_seq ON graphrt_store (seq)",
    "CREATE INDEX IF NOT EXISTS graphrt_store_ns_seq ON graphrt_store (ns, seq)",
    "CREATE INDEX IF NOT EXISTS graphrt_store_expires ON graphrt_store (expires_at) WHERE expires_at IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS graphrt_store_vectors (
        item_id {int} PRIMARY KEY,
        dims INTEGER NOT NULL,
        vectors {blob} NOT NULL
    )""",
)
"""Schema steps in order, with `{pk}`/`{int}`/`{float}`/`{text}`/`{blob}` standing for the dialect's column
types; `setup()` runs those a database has not seen yet."""

_UPSERT = """
INSERT INTO graphrt_store (ns, key, value, created_at, updated_at, seq, ttl_minutes, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
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
    "UPDATE graphrt_store SET expires_at = ? + CAST(ttl_minutes * 60000000 AS {int}) "
    "WHERE id = ? AND ttl_minutes IS NOT NULL"
)


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one database's SQL differs from the statements above."""

    name: str
    param: str
    """Placeholder for a bound parameter (`?` for SQLite, `%s` for psycopg)."""
    begin_write: str
    """Statement starting a transaction that will write."""
    lock_write: str = ""
    """Statement run right after `begin_write` to serialize writers, where `begin_write` alone does not."""
    by_seq: str = ""
    """Hint after the table name that makes a scan follow the `seq` index (newest first)."""
    json_field: str | None = None
    """SQL reading a JSON field as text-or-number, with `{path}` for the bound path parameter(s), and
    `json_type` its type check; None: filters are not pushed into SQL."""
    json_type: str | None = None
    types: tuple[tuple[str, str], ...] = (
        ("pk", "INTEGER PRIMARY KEY"),
        ("int", "INTEGER"),
        ("float", "REAL"),
        ("text", "TEXT"),
        ("blob", "BLOB"),
    )
    """Column types standing in for `{pk}` (an auto-numbered 64-bit key), `{int}` (64-bit), `{float}` (double),
    `{text}` (text compared byte by byte: namespace ranges rely on it) and `{blob}` in the statements."""
    migrations: tuple[str, ...] = ()
    """Schema steps only this dialect needs, after the shared ones (numbered from 1000 in the migrations table)."""

    def sql(self, statement: str) -> str:
        return _render(self, statement)


@functools.lru_cache(maxsize=1024)
def _render(dialect: Dialect, statement: str) -> str:
    for name, sql_type in dialect.types:
        statement = statement.replace("{" + name + "}", sql_type)
    return statement if dialect.param == "?" else statement.replace("?", dialect.param)


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
        created, updated = to_datetime(self.created), to_datetime(self.updated)
        return SearchItem(self.namespace, self.key, self.value, created, updated, score)


class SqlStore(StoreCore):
    """A store in a SQL database reached through one DB-API connection, shared under a lock."""

    dialect: Dialect
    metric = "dot"
    """How the in-process vector copy scores (see `graphrt.store._vectors.METRICS`)."""

    def __init__(self, conn: Any, *, index: IndexConfig | None = None, ttl: TTLConfig | None = None) -> None:
        super().__init__(index=index, ttl=ttl)
        self.conn = conn
        self.lock = threading.RLock()
        self.is_setup = False
        self._cache: VectorIndex | None = None
        self._cache_version: Any = None

    def _external_version(self, cur: Any) -> Any:
        """A value that changes whenever another connection commits (cache invalidation)."""
        raise NotImplementedError

    def _begin_write(self, cur: Any) -> None:
        cur.execute(self.dialect.begin_write)
        if self.dialect.lock_write:
            cur.execute(self.dialect.lock_write)

    def _wrote(self, cur: Any) -> None:
        """Called in each transaction that puts or deletes items, before it commits (a dialect hook)."""

    def _migrate(self) -> None:
        """Create the tables, running only the migrations this database has not seen."""
        with self.lock:
            cur = self.conn.cursor()
            self._begin_write(cur)
            try:
                cur.execute("CREATE TABLE IF NOT EXISTS graphrt_store_migrations (v INTEGER PRIMARY KEY)")
                cur.execute("SELECT v FROM graphrt_store_migrations")
                done = {int(found[0]) for found in cur.fetchall()}
                steps = [*enumerate(MIGRATIONS), *enumerate(self.dialect.migrations, start=_DIALECT_MIGRATIONS)]
                for version, statement in steps:
                    if version not in done:
                        cur.execute(self.dialect.sql(statement))
                        cur.execute(
                            self.dialect.sql("INSERT INTO graphrt_store_migrations (v) VALUES (?)"),
                            (version,),
                        )
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            self.is_setup = True

    def _apply(self, plan: Plan) -> list[Result]:
        if not self.is_setup:
            self._migrate()
        writes = any(isinstance(step, Put | Delete) for step in plan.steps)
        with self.lock:
            cur = self.conn.cursor()
            now = self._clock.now()
            if writes:
                self._begin_write(cur)
            else:
                cur.execute("BEGIN")
            try:
                results, refresh = self._run_steps(cur, plan, now)
                if refresh and writes:
                    cur.executemany(self.dialect.sql(_REFRESH), [(now, i) for i in refresh])
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                self._cache = None  # it may hold vectors of writes that were just rolled back
                raise
            if refresh and not writes:
                # Reads stay in a shared-lock transaction; pushing expiry back is a short write after.
                self._write(cur, lambda: cur.executemany(self.dialect.sql(_REFRESH), [(now, i) for i in refresh]))
            return results

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
        sql = f"SELECT {_COLUMNS} FROM graphrt_store WHERE ns = ? AND key = ? AND {_LIVE}"
        cur.execute(self.dialect.sql(sql), (_ns_text(namespace), key, now))
        found = cur.fetchone()
        return None if found is None else _Row.of(found)

    def _write_run(self, cur: Any, steps: Sequence[Step], plan: Plan, now: int) -> None:
        """Apply consecutive puts and deletes with one statement each (the last write of a key wins)."""
        cur.execute("SELECT COALESCE(MAX(seq), 0) FROM graphrt_store")
        base = int(cur.fetchone()[0])
        last: dict[tuple[tuple[str, ...], str], tuple[int, Step]] = {}
        deleted: set[tuple[tuple[str, ...], str]] = set()
        for position, step in enumerate(steps):
            last[(step.namespace, step.key)] = (position, step)  # type: ignore[union-attr]
            if not isinstance(step, Put):
                deleted.add((step.namespace, step.key))  # type: ignore[union-attr]
        upserts: list[tuple[Any, ...]] = []
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
            upserts.append((*where, step.raw.decode(), now, now, base + position + 1, step.ttl, expires))
            rows = plan.vectors_of(step) if step.indexed else None
            if rows is not None and len(rows):
                vectors.append((rows.shape[1], rows.tobytes(), *where))
                fresh.append((step, rows))
            else:
                drop.append(where)
        self._forget_cached(cur, drop)
        cur.executemany(self.dialect.sql(_DROP_VECTORS), drop)
        cur.executemany(self.dialect.sql(_DELETE), deletes)
        cur.executemany(self.dialect.sql(_UPSERT), upserts)
        cur.executemany(self.dialect.sql(_SET_VECTORS), vectors)
        self._vectors_set(cur, fresh)
        self._wrote(cur)
        self._cache_fresh(cur, fresh)

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
            sql = f"SELECT {_COLUMNS} FROM graphrt_store {self.dialect.by_seq} WHERE {clause} AND {live}"
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
