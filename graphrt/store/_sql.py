"""The SQL store, written once: schema, statements, row mapping and batch application, sync or async.

Backend packages (`sqlite/`, `postgres/`) only connect and say how their SQL differs, through the `Dialect`
of graphrt's one SQL layer (`graphrt.checkpoint._dialect`, shared with the checkpoint savers: placeholders,
column types, how writers are serialized, JSON pushdown), plus hooks on `SqlStore` where behaviour rather
than SQL differs (`version_sql`, `_wrote`, `_vectors_set`, `_ranking`). Values are JSON text; vectors are
float32 blobs (all of an item's vectors in one blob; unit length unless the store's index keeps them as
given) in a side table, scored in numpy from an in-process copy that is refreshed when another connection
commits (a store may rank them another way: `_ranking`). Filters run in Python with the same compiled
predicate as every other backend, after SQL has narrowed the scan where it can (`_pushdown`).

Each operation is written once, as the checkpoint savers' are (`graphrt.checkpoint._drive`): a transaction
body is a generator that yields its cursor calls (`yield cur.execute(...)`, `rows = yield cur.fetchall()`)
and an operation yields `Txn` requests (a body and the kind of transaction it needs). `SqlStore._run` runs
them on DB-API cursors, where each call has already run when it is yielded; the async PostgreSQL store runs
the very same operations on psycopg's async cursors (`AsyncPostgresStore._arun`), awaiting each call.
"""

from __future__ import annotations

import functools
import heapq
import threading
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import orjson

from graphrt.checkpoint._dialect import Dialect, migrations
from graphrt.checkpoint._drive import Body, drive, steer
from graphrt.store._indexed import StoreCore, ttl_micros
from graphrt.store._namespace import check_key, check_labels, matches_condition
from graphrt.store._plan import Delete, Get, ListNamespaces, Plan, Put, Search, Step, to_datetime
from graphrt.store._vectors import VectorIndex
from graphrt.store.base import IndexConfig, Item, Result, SearchItem, TTLConfig, _refresh

__all__ = ("ALONE", "MIGRATIONS", "READ", "SETUP", "UPSERT_CONFLICT", "WRITE", "Dialect", "SqlStore", "StoreOp", "Txn")

T = TypeVar("T")

_COLUMNS = "id, ns, key, value, created_at, updated_at, ttl_minutes, expires_at, seq"
_MERGE_LIMIT = 32
"""Up to this many namespaces under a prefix are read one index range each and merged by `seq`."""
_LIVE = "(expires_at IS NULL OR expires_at > ?)"
_MIGRATIONS_TABLE = "graphrt_store_migrations"

SEQ_SOURCE: tuple[str, ...] = ("SELECT 1",)
"""The migration step a backend replaces with its own (`SqlStore.seq_source`); nothing by default."""
FILTER_INDEX: tuple[str, ...] = ("SELECT 2",)
"""The migration step a backend replaces with an index answering its pushed-down filters
(`SqlStore.filter_index`); nothing by default."""

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
        # The counter was also where PostgreSQL's writes took each `seq` from (before its `SEQ_SOURCE` step, a
        # sequence), so it starts above every `seq` written so far.
        "UPDATE graphrt_store_changes SET version = (SELECT COALESCE(MAX(seq), 0) FROM graphrt_store)"
        " WHERE one = 1 AND version < (SELECT COALESCE(MAX(seq), 0) FROM graphrt_store)",
    ),
    ("{json_doc}",),
    SEQ_SOURCE,
    FILTER_INDEX,
)
"""Schema steps in order (versions 0, 1, ...; only ever append), in the shared SQL layer's portable types
(`Dialect.ddl`): one schema for every dialect. `setup()` runs those a database has not seen yet. The
`SEQ_SOURCE` step is the backend's own (`SqlStore.seq_source`): where writes take their `seq` from; so is
`FILTER_INDEX` (`SqlStore.filter_index`)."""

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
no separate round trip to allocate it. (PostgreSQL takes it from a sequence instead: `upsert`, `seq_source`.)"""
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
    def of(row: Sequence[Any], loads: Callable[[str], Any] = orjson.loads) -> _Row:
        ns = tuple(row[1].split("."))
        return _Row(row[0], ns, row[2], loads(row[3]), row[4], row[5], row[6], row[7], row[8])

    def item(self) -> Item:
        created, updated = to_datetime(self.created), to_datetime(self.updated)
        return Item(value=self.value, key=self.key, namespace=self.namespace, created_at=created, updated_at=updated)

    def search_item(self, score: float | None) -> SearchItem:
        updated = to_datetime(self.updated)
        created = updated if self.created == self.updated else to_datetime(self.created)
        return SearchItem._trusted(self.namespace, self.key, self.value, created, updated, score)


READ = "read"
"""A `Txn` kind: a read-only transaction (a consistent snapshot)."""
WRITE = "write"
"""A `Txn` kind: a write transaction, serialized with the store's other writers (pipelined where the driver can)."""
SETUP = "setup"
"""A `Txn` kind: a write transaction whose statements wait for each other (schema changes)."""
ALONE = "alone"
"""A `Txn` kind: no transaction around the body; each statement is its own (a body may open one itself)."""


class Txn(Generic[T]):
    """Request: run `body(cur)` in a transaction of `kind` and send back what it returns.

    Yielded by an operation, or a whole one-transaction operation by itself (no operation generator).
    """

    __slots__ = ("body", "kind")

    def __init__(self, body: Callable[[Any], Body[T]], kind: str) -> None:
        self.body = body
        self.kind = kind


StoreOp = Generator[Txn[Any], Any, T] | Txn[T]
"""A store operation: a generator yielding `Txn` requests and returning the result, or a single `Txn`."""


class Ranking(Protocol):
    """Items with vectors under a search's prefix, best score first, each once, taken a batch at a time."""

    def take(self, count: int) -> Body[list[tuple[int, float]]]:
        """The next `count` `(item id, score)` pairs (fewer only once every item was returned)."""
        ...


class _Ranked:
    """A `Ranking` over an in-process iterator (no statements to run)."""

    __slots__ = ("_pairs",)

    def __init__(self, pairs: Iterator[tuple[int, float]]) -> None:
        self._pairs = pairs

    def take(self, count: int) -> Body[list[tuple[int, float]]]:
        return list(islice(self._pairs, count))
        yield  # a body that runs no statement


class _Stream:
    """The rows of one query, read `fetch` at a time from a cursor of their own (`rows[at:]` are unread,
    as the driver gave them: a row becomes a `_Row` only when it is used)."""

    __slots__ = ("at", "cur", "done", "fetch", "rows")

    def __init__(self, cur: Any, fetch: int) -> None:
        self.cur = cur
        self.fetch = fetch
        self.rows: Sequence[Any] = ()
        self.at = 0
        self.done = False

    def open(self, sql: str, params: Sequence[Any]) -> Body[None]:
        yield self.cur.execute(sql, params)
        yield from self.more()

    def more(self) -> Body[None]:
        self.rows = yield self.cur.fetchmany(self.fetch)
        self.at = 0
        self.done = len(self.rows) < self.fetch


def _listed(body: Body[T]) -> Body[list[T]]:
    return [(yield from body)]


class SqlStore(StoreCore):
    """A store in a SQL database: operations written once, run on DB-API cursors by `_run`.

    By default the store reaches the database through one DB-API connection shared under a lock
    (`_transaction`); a backend may lend connections another way, or run the operations asynchronously.
    """

    dialect: Dialect
    upsert = _UPSERT
    """The statement writing one item (see `_UPSERT`); a backend may take `seq` from elsewhere."""
    seq_source: tuple[str, ...] = SEQ_SOURCE
    """The migration step creating what `upsert` takes `seq` from, if anything (run in `SEQ_SOURCE`'s place)."""
    filter_index: tuple[str, ...] = FILTER_INDEX
    """The migration step creating an index that finds the rows a pushed-down filter keeps (run in
    `FILTER_INDEX`'s place). With one, a filtered search is one query the planner answers from it, not one
    query per namespace under the prefix."""
    metric = "dot"
    """How the in-process vector copy scores (see `graphrt.store._vectors.METRICS`)."""
    version_sql: str
    """A query whose one value changes whenever another connection commits (cache invalidation)."""

    def __init__(
        self,
        conn: Any,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        deserializer: Callable[[bytes], dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(index=index, ttl=ttl)
        self.conn = conn
        self.lock = threading.RLock()
        self.is_setup = False
        self._loads: Callable[[str], Any] = orjson.loads
        """How a stored value's JSON text becomes the item's value (a user's `deserializer`, given bytes)."""
        if deserializer is not None:
            self._loads = lambda text: deserializer(text.encode())
        self._cache: VectorIndex | None = None
        self._cache_version: Any = None
        self._reads: dict[tuple[str, str], tuple[str, datetime, datetime, int | None, float | None]] | None = None
        """Rows recently read by `get` (value JSON, timestamps, expiry, TTL), or None when off; a backend whose
        store owns its connection turns it on. Valid while `version_sql` answers `_reads_version`; this
        store's own writes drop what they touch."""
        self._reads_version: Any = None

    # -- running operations (sync) ----------------------------------------------------------------

    def _run(self, op: StoreOp[T]) -> T:
        """Run an operation on sync transactions, creating the schema first if needed."""
        if not self.is_setup:
            self._execute(self._migrate_op())
        return self._execute(op)

    def _execute(self, op: StoreOp[T]) -> T:
        if isinstance(op, Txn):
            return self._run_txn(op.kind, op.body)
        return steer(op, lambda request: self._run_txn(request.kind, request.body))

    def _run_txn(self, kind: str, body_of: Callable[..., Body[T]], *args: Any) -> T:
        """Run `body_of(cur, *args)` in a transaction of `kind`: on the store's one connection, under its
        lock (a backend may lend connections another way, see `graphrt.store.postgres`)."""
        with self.lock:
            cur = self.conn.cursor()
            if kind is not ALONE:
                cur.execute(self.dialect.begin_read if kind is READ else self.dialect.begin_write)
            try:
                if kind is not ALONE and kind is not READ:
                    drive(self._lock_writers(cur))
                body = body_of(cur, *args)
                try:  # `drive`, inline: this is every sync call's path
                    value = next(body)
                    while True:
                        value = body.send(value)
                except StopIteration as stop:
                    result: T = stop.value
                if kind is not ALONE:
                    cur.execute("COMMIT")
            except BaseException:
                if kind is not ALONE:
                    cur.execute("ROLLBACK")
                self._failed()
                raise
            return result

    def _failed(self) -> None:
        """After a transaction failed (and was rolled back): drop what may hold its uncommitted effects."""
        self._cache = None
        self._forget_reads()

    def _lock_writers(self, cur: Any) -> Body[None]:
        """Run first in each write transaction, after its BEGIN: serialize the store's writers."""
        if self.dialect.lock_store:
            yield cur.execute(self.dialect.lock_store)

    def _cursor_beside(self, cur: Any) -> Any:
        """Another cursor on `cur`'s connection, in its transaction (to read two result sets at once)."""
        return cur.connection.cursor()

    def _write_body(self, cur: Any, inner: Body[T]) -> Body[T]:
        """`inner` in a write transaction of its own, on a cursor outside one (an `ALONE` body's)."""
        yield cur.execute(self.dialect.begin_write)
        try:
            yield from self._lock_writers(cur)
            result = yield from inner
            yield cur.execute("COMMIT")
        except BaseException:
            yield cur.execute("ROLLBACK")
            raise
        return result

    # -- operations -------------------------------------------------------------------------------

    def _migrate(self) -> None:
        """Create the tables, running only the migrations this database has not seen."""
        self._execute(self._migrate_op())

    def _migrate_op(self) -> Generator[Txn[Any], Any, None]:
        yield Txn(self._migrate_body, SETUP)
        self.is_setup = True

    def _migrate_body(self, cur: Any) -> Body[None]:
        # Stores written before the schema was one for every dialect numbered PostgreSQL's own steps
        # from 1000; those steps are now shared ones (idempotent), so forget the old numbers.
        yield cur.execute(f"CREATE TABLE IF NOT EXISTS {_MIGRATIONS_TABLE} (v INTEGER PRIMARY KEY)")
        yield cur.execute(f"DELETE FROM {_MIGRATIONS_TABLE} WHERE v >= 1000")
        own = {id(SEQ_SOURCE): self.seq_source, id(FILTER_INDEX): self.filter_index}
        steps = [own.get(id(step), step) for step in MIGRATIONS]
        yield from migrations(cur, self.dialect, _MIGRATIONS_TABLE, steps, first=0)

    def get(self, namespace: tuple[str, ...], key: str, *, refresh_ttl: bool | None = None) -> Item | None:
        """Return the item at `namespace`/`key`, or `None`: one SELECT (see `_get_alone`), no batch plan."""
        step = self._get_step(namespace, key, refresh_ttl)
        if not self.is_setup:
            self._migrate()
        return self._run_txn(ALONE, self._get_alone, step)

    def _get_step(self, namespace: tuple[str, ...], key: str, refresh_ttl: bool | None) -> Get:
        check_labels(namespace)
        return Get(tuple(namespace), check_key(str(key)), _refresh(self.ttl_config, refresh_ttl))

    def _apply(self, plan: Plan) -> list[Result]:
        return self._run(self._batch_op(plan))

    def _batch_op(self, plan: Plan) -> StoreOp[list[Result]]:
        """A checked, embedded batch as one operation: one write transaction if it writes, else a read one
        (then a short write pushing back the expiry of what it read, if any)."""
        steps = plan.steps
        if len(steps) == 1 and type(steps[0]) is Get:  # e.g. `aget`, or `batch([GetOp(...)])`
            get = steps[0]
            return Txn(lambda cur: _listed(self._get_alone(cur, get)), ALONE)
        if any(isinstance(step, Put | Delete) for step in steps):
            return Txn(lambda cur: self._steps_body(cur, plan, True), WRITE)
        if len(steps) == 1 and type(steps[0]) is Search and self._one_query(steps[0]):
            return self._read_op(plan, ALONE)  # one SELECT is its own snapshot: no BEGIN/COMMIT round trips
        return self._read_op(plan, READ)

    def _one_query(self, search: Search) -> bool:
        """Whether `search` runs as one SELECT (no vector ranking, no namespaces to read one by one)."""
        return search.query is None and not self._merges(search, self._pushdown(search.filter)[0])

    def _read_op(self, plan: Plan, kind: str) -> Generator[Txn[Any], Any, list[Result]]:
        results, refresh, now = yield Txn(lambda cur: self._steps_body(cur, plan, False), kind)
        if refresh:
            # Reads stay in a read-only transaction; pushing expiry back is a short write after.
            self._forget_reads()
            yield Txn(lambda cur: self._run_many(cur, _REFRESH, [(now, i) for i in refresh]), WRITE)
        return results  # type: ignore[no-any-return]

    def _steps_body(self, cur: Any, plan: Plan, writes: bool) -> Body[Any]:
        """The plan's steps in order. With `writes`: their results, the expiry of what was read pushed
        back in the same transaction; else `(results, ids to refresh, now)`."""
        now = self._clock.now()
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
                yield from self._write_run(cur, steps[i:j], plan, now)
                results.extend([None] * (j - i))
                i = j
                continue
            if isinstance(step, Get):
                row = yield from self._get(cur, step.namespace, step.key, now)
                results.append(None if row is None else row.item())
                rows = [] if row is None else [row]
            elif isinstance(step, Search):
                found = yield from self._search(cur, step, plan, now)
                results.append([row.search_item(score) for row, score in found])
                rows = [row for row, _ in found]
            else:
                results.append((yield from self._list(cur, step, now)))
                rows = []
            if getattr(step, "refresh", False):
                refresh.extend(row.id for row in rows if row.ttl is not None)
            i += 1
        if not writes:
            return results, refresh, now
        if refresh:
            yield from self._run_many(cur, _REFRESH, [(now, i) for i in refresh])
        return results

    def _get_alone(self, cur: Any, step: Get) -> Body[Item | None]:
        """A batch of one get: a single SELECT in autocommit mode is its own consistent snapshot, so it
        needs no BEGIN/COMMIT around it (one statement, one round trip to a server). With `_reads` on, a
        row read before is served from memory once the database is known not to have changed since."""
        where = (_ns_text(step.namespace), step.key)
        now = self._clock.now()
        reads = self._reads
        if reads is not None:
            yield cur.execute(self.version_sql)
            version = (yield cur.fetchone())[0]
            if version != self._reads_version:
                reads.clear()
                self._reads_version = version
            hit = reads.get(where)
            if hit is not None and (hit[3] is None or hit[3] > now) and not (step.refresh and hit[4] is not None):
                return Item._trusted(self._loads(hit[0]), step.key, step.namespace, hit[1], hit[2])
        yield cur.execute(_render(self.dialect, _GET_ONE), (*where, now))
        found = yield cur.fetchone()
        if found is None:
            return None
        item_id, value, created, updated, ttl, expires = found
        updated_at = to_datetime(updated)
        created_at = updated_at if created == updated else to_datetime(created)
        if step.refresh and ttl is not None:
            self._forget_reads()
            yield from self._write_body(cur, self._run_many(cur, _REFRESH, [(now, item_id)]))
        elif reads is not None:
            if len(reads) >= _READS_LIMIT:
                reads.clear()
            reads[where] = (value, created_at, updated_at, expires, ttl)
        return Item._trusted(self._loads(value), step.key, step.namespace, created_at, updated_at)

    def _wrote(self, cur: Any, upserts: int) -> Body[None]:
        """Run in each transaction that puts or deletes items, after its `upserts` upserts, before it
        commits (a dialect hook)."""
        return
        yield

    def _get(self, cur: Any, namespace: tuple[str, ...], key: str, now: int) -> Body[_Row | None]:
        yield cur.execute(_render(self.dialect, _GET), (_ns_text(namespace), key, now))
        found = yield cur.fetchone()
        return None if found is None else _Row.of(found, self._loads)

    def _write_run(self, cur: Any, steps: Sequence[Step], plan: Plan, now: int) -> Body[None]:
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
        yield from self._forget_cached(cur, drop)
        if len(drop) > 1:  # a batch: skip one statement per item when no item has vectors at all
            yield cur.execute("SELECT 1 FROM graphrt_store_vectors LIMIT 1")
            if (yield cur.fetchone()) is None:
                drop = []
        yield from self._run_many(cur, _DROP_VECTORS, drop)
        yield from self._run_many(cur, _DELETE, deletes)
        upserts.sort(key=lambda found: found[0])  # in write order, so the last write gets the largest seq
        yield from self._run_many(cur, self.upsert, [row for _, row in upserts])
        yield from self._run_many(cur, _SET_VECTORS, vectors)
        yield from self._vectors_set(cur, fresh)
        yield from self._wrote(cur, len(upserts))
        yield from self._cache_fresh(cur, fresh)
        if self._reads:
            for namespace, key in last:
                self._reads.pop((_ns_text(namespace), key), None)

    def _forget_reads(self) -> None:
        if self._reads:
            self._reads.clear()

    def _run_many(self, cur: Any, statement: str, rows: Sequence[Sequence[Any]]) -> Body[None]:
        """Run `statement` once per row: nothing for no rows, a plain execute for one (a driver's
        `executemany` may cost a round trip of its own even when empty, e.g. psycopg's pipeline)."""
        if len(rows) == 1:
            yield cur.execute(_render(self.dialect, statement), rows[0])
        elif rows:
            yield cur.executemany(_render(self.dialect, statement), rows)

    def _vectors_set(self, cur: Any, fresh: list[tuple[Put, Any]]) -> Body[None]:
        """Run after a batch's new vectors are saved, in its transaction (a hook for a second vector index)."""
        return
        yield

    def _item_id(self, cur: Any, ns_text: str, key: str) -> Body[int | None]:
        yield cur.execute(self.dialect.sql("SELECT id FROM graphrt_store WHERE ns = ? AND key = ?"), (ns_text, key))
        found = yield cur.fetchone()
        return None if found is None else int(found[0])

    def _forget_cached(self, cur: Any, where: list[tuple[str, str]]) -> Body[None]:
        if self._cache is None:
            return
        for ns_text, key in where:
            item_id = yield from self._item_id(cur, ns_text, key)
            if item_id is not None and self._cache is not None:
                self._cache.discard(item_id)

    def _cache_fresh(self, cur: Any, fresh: list[tuple[Put, Any]]) -> Body[None]:
        """Put this batch's new vectors into the loaded cache (our own commits do not invalidate it)."""
        if self._cache is None:
            return
        for step, rows in fresh:
            item_id = yield from self._item_id(cur, _ns_text(step.namespace), step.key)
            if item_id is not None and self._cache is not None:
                self._cache.set(item_id, step.namespace, rows)

    def _rows_by_id(self, cur: Any, ids: list[int]) -> Body[dict[int, _Row]]:
        found: dict[int, _Row] = {}
        loads = self._loads
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            yield cur.execute(self.dialect.sql(f"SELECT {_COLUMNS} FROM graphrt_store WHERE id IN ({marks})"), chunk)
            for row in (yield cur.fetchall()):
                found[row[0]] = _Row.of(row, loads)
        return found

    def _vectors(self, cur: Any) -> Body[VectorIndex]:
        """The cached vector matrix, reloaded when another connection has committed since it was read."""
        assert self._index is not None
        yield cur.execute(self.version_sql)
        version = (yield cur.fetchone())[0]
        if self._cache is not None and version == self._cache_version:
            return self._cache
        dims = self._index.embedder.dims
        yield cur.execute(
            "SELECT v.item_id, s.ns, v.dims, v.vectors FROM graphrt_store_vectors v"
            " JOIN graphrt_store s ON s.id = v.item_id"
        )
        owners: list[int] = []
        spaces: list[tuple[str, ...]] = []
        blobs: list[bytes] = []
        parsed: dict[str, tuple[str, ...]] = {}
        for item_id, ns, width, blob in (yield cur.fetchall()):
            count, rest = divmod(len(blob), 4 * dims)
            if width != dims or rest or not count:
                raise ValueError(
                    f"The store's saved vectors are {width}-dimensional, not {dims}-dimensional; they were "
                    "written with another index configuration. Use the same 'dims' and embedder, or a new database."
                )
            namespace = parsed.get(ns) or parsed.setdefault(ns, tuple(ns.split(".")))
            owners.extend([item_id] * count)
            spaces.extend([namespace] * count)
            blobs.append(bytes(blob))
        cache = VectorIndex(dims, self.metric)
        cache.load(owners, spaces, np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(-1, dims))
        self._cache, self._cache_version = cache, version
        return cache

    def _scored(self, cur: Any, step: Search, plan: Plan, now: int, want: int) -> Body[list[tuple[_Row, float]]]:
        """Up to `want` rows with vectors, best score first, that are live and pass the filter."""
        assert step.query is not None
        ranking = yield from self._ranking(cur, step, plan.query_vectors[step.query])
        found: list[tuple[_Row, float]] = []
        chunk = max(16, want)
        while len(found) < want:
            batch = yield from ranking.take(chunk)
            if not batch:
                break
            rows = yield from self._rows_by_id(cur, [owner for owner, _ in batch])
            for owner, score in batch:
                row = rows.get(owner)
                if row is not None and _accept(row, step, now):
                    found.append((row, score))
                    if len(found) == want:
                        break
            chunk *= 2
        return found

    def _ranking(self, cur: Any, step: Search, query: Any) -> Body[Ranking]:
        """The items with vectors under the search's prefix, best first (see `Ranking`)."""
        cache = yield from self._vectors(cur)
        return _Ranked(cache.ranked(query, step.prefix))

    def _namespaces_under(self, cur: Any, prefix: tuple[str, ...]) -> Body[list[str] | None]:
        """Namespaces at or below `prefix` (as text), or `None` when there are more than `_MERGE_LIMIT`."""
        text = _ns_text(prefix)
        yield cur.execute(self.dialect.sql("SELECT 1 FROM graphrt_store WHERE ns = ? LIMIT 1"), (text,))
        found = [text] if (yield cur.fetchone()) else []
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
        yield cur.execute(self.dialect.sql(skip), (text + ".", text + "/", text + "/", _MERGE_LIMIT + 1))
        found.extend(row[0] for row in (yield cur.fetchall()))
        return found if len(found) <= _MERGE_LIMIT else None

    def _newest(self, cur: Any, step: Search, now: int, want: int, extra: str = "") -> Body[list[_Row]]:
        """Up to `want` live rows under the prefix that pass the filter, newest write first, read lazily."""
        fetch = max(16, step.offset + step.limit)
        narrow, narrow_args = self._pushdown(step.filter)
        live = f"{_LIVE}{extra}{narrow} ORDER BY seq DESC"
        spaces = (yield from self._namespaces_under(cur, step.prefix)) if self._merges(step, narrow) else None
        if spaces is None:
            clause, args = _prefix_clause(step.prefix)
            # A large filtered page reads the table in storage order and sorts what matches; otherwise follow
            # the seq index newest first, which stops as soon as the page is full.
            order = self.dialect.by_storage if narrow and fetch >= _SCAN_PAGE else self.dialect.by_seq
            sql = f"SELECT {_COLUMNS} FROM graphrt_store {order} WHERE {clause} AND {live}"
            queries = [(sql, [*args, now, *narrow_args])]
        else:
            sql = f"SELECT {_COLUMNS} FROM graphrt_store WHERE ns = ? AND {live}"
            queries = [(sql, [ns, now, *narrow_args]) for ns in spaces]
        streams: list[_Stream] = []
        for sql, params in queries:
            stream = _Stream(self._cursor_beside(cur), fetch)
            streams.append(stream)
            yield from stream.open(self.dialect.sql(sql), params)
        found = yield from _merged(streams, step.predicate, want, self._loads)
        for stream in streams:
            yield stream.cur.close()
        return found

    def _merges(self, step: Search, narrow: str) -> bool:
        """Whether `_newest` reads each namespace under the prefix by itself (and merges them): when there
        is a prefix, and no index answers the filter's pushed-down part `narrow` (see `filter_index`)."""
        return bool(step.prefix) and not (narrow and self.filter_index is not FILTER_INDEX)

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

    def _search(self, cur: Any, step: Search, plan: Plan, now: int) -> Body[list[tuple[_Row, float | None]]]:
        """The search's page: scored rows first (best first), then, with a query, rows without vectors."""
        want = step.offset + step.limit
        if step.query is None:
            rows = yield from self._newest(cur, step, now, want)
            return [(row, None) for row in rows[step.offset :]]
        found: list[tuple[_Row, float | None]] = list((yield from self._scored(cur, step, plan, now, want)))
        if len(found) < want:
            # Items without vectors (index=False), newest first: they follow every scored one.
            extra = " AND id NOT IN (SELECT item_id FROM graphrt_store_vectors)"
            rest = yield from self._newest(cur, step, now, want - len(found), extra)
            found.extend((row, None) for row in rest)
        return found[step.offset :]

    def _list(self, cur: Any, step: ListNamespaces, now: int) -> Body[list[tuple[str, ...]]]:
        yield cur.execute(self.dialect.sql(f"SELECT DISTINCT ns FROM graphrt_store WHERE {_LIVE}"), (now,))
        names = [tuple(found[0].split(".")) for found in (yield cur.fetchall())]
        names = [ns for ns in names if all(matches_condition(ns, c) for c in step.conditions)]
        if step.max_depth is not None:
            names = list({ns[: step.max_depth] for ns in names})
        names.sort()
        return names[step.offset : step.offset + step.limit]

    def _sweep(self) -> int:
        return self._run(self._sweep_txn())

    def _sweep_txn(self) -> Txn[int]:
        return Txn(self._sweep_body, WRITE)

    def _sweep_body(self, cur: Any) -> Body[int]:
        """Delete expired items (and their vectors); return how many."""
        now = self._clock.now()
        self._forget_reads()
        expired = "SELECT id FROM graphrt_store WHERE expires_at IS NOT NULL AND expires_at <= ?"
        yield cur.execute(self.dialect.sql(expired), (now,))
        ids = [int(found[0]) for found in (yield cur.fetchall())]
        if ids:
            sql = f"DELETE FROM graphrt_store_vectors WHERE item_id IN ({expired})"
            yield cur.execute(self.dialect.sql(sql), (now,))
            yield cur.execute(self.dialect.sql(expired.replace("SELECT id", "DELETE")), (now,))
        cache = self._cache
        if cache is not None:
            for item_id in ids:
                cache.discard(item_id)
        return len(ids)


def _merged(
    streams: list[_Stream], predicate: Callable[[Any], bool] | None, want: int, loads: Callable[[str], Any]
) -> Body[list[_Row]]:
    """Up to `want` rows passing `predicate` from `streams` (each newest first), newest first overall."""
    found: list[_Row] = []
    if want <= 0:
        return found
    if len(streams) == 1:
        stream = streams[0]
        while True:
            for raw in stream.rows:
                row = _Row.of(raw, loads)
                if predicate is None or predicate(row.value):
                    found.append(row)
                    if len(found) == want:
                        return found
            if stream.done:
                return found
            yield from stream.more()
    heap = [(-stream.rows[0][8], i) for i, stream in enumerate(streams) if stream.rows]  # 8: seq
    heapq.heapify(heap)
    while heap:
        i = heap[0][1]
        stream = streams[i]
        row = _Row.of(stream.rows[stream.at], loads)
        stream.at += 1
        if predicate is None or predicate(row.value):
            found.append(row)
            if len(found) == want:
                break
        if stream.at == len(stream.rows) and not stream.done:
            yield from stream.more()
        if stream.at < len(stream.rows):
            heapq.heapreplace(heap, (-stream.rows[stream.at][8], i))
        else:
            heapq.heappop(heap)
    return found


def _accept(row: _Row, step: Search, now: int) -> bool:
    return (row.expires is None or row.expires > now) and (step.predicate is None or step.predicate(row.value))
