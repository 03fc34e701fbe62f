"""`PostgresStore`: the store in PostgreSQL, shared by many processes and machines.

The statements, schema and row mapping are the shared SQL store's (`graphrt.store._sql`); how PostgreSQL's SQL
differs is the shared SQL layer's `POSTGRES` dialect (`graphrt.checkpoint._dialect`); this package says how
connections are had (`graphrt._postgres`), how other connections' commits are noticed and writes are ordered
(a counter row, see `_UPSERT`), how a lone put runs as one statement (`_PUT_ALONE`) and which filters run in SQL
(`graphrt.store.postgres._filter`).
Vector search runs in SQL on pgvector when the server has the extension (`graphrt.store._pgvector`), and as the
shared exact scan otherwise; both give LangGraph's scores for the configured `distance_type`.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from graphrt._postgres import ConnectionLostError, Connector, require_psycopg

require_psycopg("PostgresStore")

from graphrt.checkpoint._dialect import POSTGRES  # noqa: E402
from graphrt.store._indexed import ttl_micros  # noqa: E402
from graphrt.store._pgvector import DISTANCES, PgVector, parse_vector_config  # noqa: E402
from graphrt.store._plan import Plan, Put, Search  # noqa: E402
from graphrt.store._sql import UPSERT_CONFLICT, SqlStore, _ns_text, _prefix_clause  # noqa: E402
from graphrt.store._ttl import ThreadSweeper  # noqa: E402
from graphrt.store.base import IndexConfig, Result, TTLConfig  # noqa: E402
from graphrt.store.postgres._filter import pushdown  # noqa: E402

__all__ = ("BasePostgresStore", "POSTGRES", "PostgresStore")

T = TypeVar("T")

_BUMP = "bump AS (UPDATE graphrt_store_changes SET version = version + 1 WHERE one = 1 RETURNING version)"
_INSERT = (
    """
INSERT INTO graphrt_store (ns, key, value, created_at, updated_at, seq, ttl_minutes, expires_at)
SELECT %s, %s, %s, %s::bigint, %s::bigint, version, %s::double precision, %s::bigint FROM bump"""
    + UPSERT_CONFLICT
)
_UPSERT = f"WITH {_BUMP} {_INSERT}"
"""Each write takes its `seq` from the change counter it bumps: the counter's row lock serializes writers
(held to commit; every write transaction takes it first, see `_begin_write`), and the new number is read
after the lock is had, so `seq` follows commit order without a store-wide lock or a `MAX(seq)` that a
statement's snapshot could have taken before an earlier writer committed."""
_PUT_ALONE = f"""
WITH {_BUMP}, up AS ({_INSERT.strip()} RETURNING id)
DELETE FROM graphrt_store_vectors WHERE item_id IN (SELECT id FROM up)
"""
"""A batch of one put without vectors, as one autocommitted statement: bump the counter (taking `seq`),
upsert, and drop the vectors the item had (its pgvector rows go with them)."""


class BasePostgresStore(SqlStore):
    """The PostgreSQL store's code, shared by `PostgresStore` and `AsyncPostgresStore`."""

    dialect = POSTGRES
    upsert = _UPSERT
    distance_types = tuple(DISTANCES)

    def __init__(
        self,
        conn: Any,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        pgvector: bool | None = None,
    ) -> None:
        """A store on `conn`; its tables are made by `setup()` (or the first call).

        Args:
            conn: A psycopg `Connection` or a psycopg_pool `ConnectionPool` (or a `Connector`).
            index: As for every store, plus LangGraph's `distance_type` (`cosine`, `l2`, `inner_product`) and
                `ann_index_config` (`kind`: `hnsw`, `ivfflat` or `flat`; `m`, `ef_construction`, `nlist`;
                `vector_type`: `vector` or `halfvec`; graphrt's `ef_search` and `probes`).
            ttl: As for every store.
            pgvector: None (default) searches with pgvector when the server has the extension (setup creates
                it when it can), and with an exact scan otherwise; True requires it; False never uses it.

        Raises:
            ValueError: An unknown distance type, index kind, vector type or index parameter.
        """
        vector_config = parse_vector_config(index)
        self._connector = conn if isinstance(conn, Connector) else Connector(conn, type(self).__name__)
        super().__init__(None, index=index, ttl=ttl)
        self.metric = vector_config.metric
        if self._index is not None:
            self._index = dataclasses.replace(self._index, unit=False)  # stored as given, like LangGraph
        self._pgvector = pgvector
        self._embeddings = PgVector(vector_config, self._index.embedder.dims) if self._index else None
        self._mirror = False
        """Whether writes also go to the pgvector table (it exists)."""
        self._ann = False
        """Whether searches read the pgvector table."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {'pooled' if self._connector.replaceable else 'single connection'}>"

    def _bound(self, action: Callable[[], T]) -> T:
        """Run `action` with `self.conn` set to a live connection; once more on a new one if it was lost."""
        with self.lock:
            for attempt in range(2):
                try:
                    with self._connector.connection() as conn:
                        self.conn = conn
                        try:
                            return action()
                        finally:
                            self.conn = None
                except ConnectionLostError:
                    self._cache = None
                    if attempt or not self._connector.replaceable:
                        raise
                    self._connector.recover()
            raise AssertionError("unreachable")

    def _migrate(self) -> None:
        self._bound(self._migrate_bound)

    def _migrate_bound(self) -> None:
        SqlStore._migrate(self)
        if self._embeddings is None:
            return
        cur = self.conn.cursor()
        try:
            self._write(cur, lambda: self._setup_vectors(cur))
        except BaseException:
            self.is_setup = False
            raise

    def _setup_vectors(self, cur: Any) -> None:
        """Find (or create) the pgvector extension, then the embeddings table and index (under the write lock)."""
        assert self._embeddings is not None
        self._mirror = self._ann = False
        version = self._vector_extension(cur)
        if version is None:
            return
        self._embeddings.iterative = version >= (0, 8)
        cur.execute("SELECT to_regclass('graphrt_store_embeddings') IS NOT NULL")
        exists = bool(cur.fetchone()[0])
        if self._pgvector is False and not exists:
            return
        # With pgvector off, an existing table is still kept up to date for the stores that search it.
        self._embeddings.create(cur, with_index=self._pgvector is not False)
        self._mirror = True
        self._ann = self._pgvector is not False

    def _vector_extension(self, cur: Any) -> tuple[int, ...] | None:
        """The version of a usable `vector` extension in this database (created when allowed and possible).

        None: there is none, or it is older than 0.7 (`l2_normalize`, `halfvec`), or `pgvector=False` and it
        is not installed.

        Raises:
            RuntimeError: `pgvector=True` and no usable extension.
        """
        import psycopg

        version = _extension_version(cur)
        problem = None
        if version is None and self._pgvector is not False:
            cur.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
            if cur.fetchone() is None:
                problem = "the server has no pgvector extension (see https://github.com/pgvector/pgvector)"
            else:
                cur.execute("SAVEPOINT graphrt_vector")
                try:
                    cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
                    cur.execute("RELEASE SAVEPOINT graphrt_vector")
                except psycopg.Error as exc:
                    cur.execute("ROLLBACK TO SAVEPOINT graphrt_vector")
                    problem = f"CREATE EXTENSION vector failed ({exc}); a superuser can run it once in this database"
                # Also finds an extension created at the same moment by a session without the store's lock.
                version = _extension_version(cur)
        if version is not None and version < (0, 7):
            problem = f"pgvector {'.'.join(map(str, version))} is too old (0.7 or later: ALTER EXTENSION vector UPDATE)"
            version = None
        if version is None and self._pgvector:
            raise RuntimeError(f"{type(self).__name__}(pgvector=True): {problem or 'no pgvector extension'}.")
        return version

    def _vectors_set(self, cur: Any, fresh: list[tuple[Put, Any]]) -> None:
        if self._mirror and fresh:
            assert self._embeddings is not None
            self._embeddings.write(cur, [(_ns_text(step.namespace), step.key, rows) for step, rows in fresh])

    def _ranked(self, cur: Any, step: Search, query: Any) -> Iterator[tuple[int, float]]:
        if not self._ann:
            return super()._ranked(cur, step, query)
        assert self._embeddings is not None
        want = step.offset + step.limit
        if not step.prefix:
            return self._embeddings.ranked(cur, query, None, [], want)
        clause, args = _prefix_clause(step.prefix)
        return self._embeddings.ranked(cur, query, self.dialect.sql(clause), args, want)

    def _apply(self, plan: Plan) -> list[Result]:
        if not self.is_setup:
            self._migrate()
        steps = plan.steps
        if len(steps) == 1 and type(steps[0]) is Put and self._cache is None:
            put = steps[0]
            if not put.indexed or not len(plan.vectors_of(put)):
                return self._bound(lambda: self._put_alone(put))
        return self._bound(lambda: SqlStore._apply(self, plan))

    def _put_alone(self, put: Put) -> list[Result]:
        """A batch of one put without vectors: one statement, one round trip, no transaction block."""
        now = self._clock.now()
        where = (_ns_text(put.namespace), put.key)
        expires = None if put.ttl is None else now + ttl_micros(put.ttl)
        self.conn.execute(_PUT_ALONE, (*where, put.raw.decode(), now, now, put.ttl, expires))
        if self._reads:
            self._reads.pop(where, None)
        return [None]

    def _begin_write(self, cur: Any) -> None:
        super()._begin_write(cur)
        if self.is_setup:
            # The change counter's row lock first, as the one-statement put takes it: writers never wait
            # for each other in opposite orders.
            cur.execute("SELECT 1 FROM graphrt_store_changes WHERE one = 1 FOR UPDATE")

    def _pushdown(self, spec: Mapping[str, Any] | None) -> tuple[str, list[Any]]:
        return pushdown(spec)

    def _pipelined(self) -> contextlib.AbstractContextManager[Any]:
        return self.conn.pipeline()  # type: ignore[no-any-return]

    def _connected(self, action: Callable[[], T]) -> T:
        if not self.is_setup:
            self._migrate()
        return self._bound(action)

    def _sweep(self) -> int:
        if not self.is_setup:
            self._migrate()
        return self._bound(super()._sweep)

    def _external_version(self, cur: Any) -> Any:
        cur.execute("SELECT version FROM graphrt_store_changes WHERE one = 1")
        return cur.fetchone()[0]

    def _wrote(self, cur: Any, upserts: int) -> None:
        if self._cache is None:  # nothing to keep current: no need to wait for the new number
            cur.execute("UPDATE graphrt_store_changes SET version = version + 1 WHERE one = 1")
            return
        cur.execute("UPDATE graphrt_store_changes SET version = version + 1 WHERE one = 1 RETURNING version")
        version = cur.fetchone()[0]
        # Each upsert bumped the counter once more (taking its `seq`).
        if self._cache is not None and self._cache_version == version - 1 - upserts:
            self._cache_version = version  # our own write: the cache is kept up to date by the caller


def _extension_version(cur: Any) -> tuple[int, ...] | None:
    cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    found = cur.fetchone()
    if found is None:
        return None
    return tuple(int(part) for part in found[0].split(".") if part.isdigit())


class PostgresStore(BasePostgresStore, ThreadSweeper):
    """A store in PostgreSQL; usable from sync code, and from async code through `abatch`.

    Takes a psycopg `Connection` or a psycopg_pool `ConnectionPool`; with a pool (or `from_conn_string`) a
    connection the server dropped is replaced and the call retried once.
    """

    @classmethod
    @contextmanager
    def from_conn_string(
        cls,
        conn_string: str,
        *,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        pool_size: int = 4,
        prepare_threshold: int | None = 5,
        pgvector: bool | None = None,
    ) -> Iterator[PostgresStore]:
        """Connect to `conn_string` through a small pool, closed when the block ends.

        `prepare_threshold=None` turns prepared statements off (needed behind PgBouncer in transaction mode).
        """
        with Connector.open_pool(
            conn_string, cls.__name__, max_size=pool_size, prepare_threshold=prepare_threshold
        ) as connector:
            store = cls(connector, index=index, ttl=ttl, pgvector=pgvector)
            try:
                yield store
            finally:
                store.stop_ttl_sweeper(timeout=1)

    def setup(self) -> None:
        """Create or upgrade the store's tables; safe to call from many processes at once."""
        self._migrate()
