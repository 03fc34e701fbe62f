"""`PostgresStore`: the store in PostgreSQL, shared by many processes and machines.

The statements, schema and row mapping are the shared SQL store's (`graphrt.store._sql`); how PostgreSQL's SQL
differs is the shared SQL layer's `POSTGRES` dialect (`graphrt.checkpoint._dialect`); this package says how
connections are had (`graphrt._postgres`), how writes are ordered (a sequence read under the writer lock, see
`_UPSERT`) and other connections' vector changes noticed (a counter row, `version_sql`), how a lone put runs as
one statement (`_PUT_ALONE`), and which filters run in SQL (`graphrt.store.postgres._filter`), answered
from a GIN index (`_FILTER_INDEX`).
Vector search runs in SQL on pgvector when the server has the extension (`graphrt.store._pgvector`), and as the
shared exact scan otherwise; both give LangGraph's scores for the configured `distance_type`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypedDict, TypeVar

from graphrt._postgres import ConnectionLostError, Connector, require_psycopg

require_psycopg("PostgresStore")

from graphrt.checkpoint._dialect import POSTGRES  # noqa: E402
from graphrt.checkpoint._drive import Body, drive  # noqa: E402
from graphrt.store._indexed import ttl_micros  # noqa: E402
from graphrt.store._pgvector import DISTANCES, PgVector, parse_vector_config  # noqa: E402
from graphrt.store._plan import Plan, Put, Search  # noqa: E402
from graphrt.store._sql import (  # noqa: E402
    ALONE,
    READ,
    SETUP,
    UPSERT_CONFLICT,
    WRITE,
    Ranking,
    SqlStore,
    StoreOp,
    Txn,
    _ns_text,
    _prefix_clause,
)
from graphrt.store._ttl import ThreadSweeper  # noqa: E402
from graphrt.store.base import IndexConfig, Result, TTLConfig  # noqa: E402
from graphrt.store.postgres._filter import pushdown  # noqa: E402

__all__ = ("POSTGRES", "AsyncPostgresStore", "BasePostgresStore", "PoolConfig", "PostgresStore")

T = TypeVar("T")

_LOCK = POSTGRES.lock_store
"""The store's writer lock (a transaction-scoped advisory lock): every write transaction takes it first."""
_SEQ = "nextval('graphrt_store_seq_next')"
_UPSERT = (
    f"""
INSERT INTO graphrt_store (ns, key, value, created_at, updated_at, seq, ttl_minutes, expires_at)
VALUES (%s, %s, %s, %s, %s, {_SEQ}, %s, %s)"""
    + UPSERT_CONFLICT
)
"""Each write takes its `seq` from a sequence, after the transaction took the writer lock (`_LOCK`, held to
commit): numbers are handed out in commit order, without a row every writer updates."""
_PUT_ALONE = f"""
WITH lk AS ({_LOCK}),
up AS (
INSERT INTO graphrt_store (ns, key, value, created_at, updated_at, seq, ttl_minutes, expires_at)
SELECT %s, %s, %s, %s::bigint, %s::bigint, {_SEQ}, %s::double precision, %s::bigint
FROM lk{UPSERT_CONFLICT}RETURNING id),
gone AS (DELETE FROM graphrt_store_vectors WHERE item_id = (SELECT id FROM up) RETURNING item_id)
UPDATE graphrt_store_changes SET version = version + 1 WHERE one = 1 AND EXISTS (SELECT FROM gone)
"""
"""A batch of one put without vectors, as one autocommitted statement: take the writer lock, upsert (taking
`seq` once the lock is had: `FROM lk`), drop the vectors the item had (its pgvector rows go with them) and,
only if it had some, bump the change counter (vector caches reload). The upsert returns exactly one row: a
scalar subquery, not `IN`, spares the server a hash aggregate per put."""
_SEQ_SOURCE = (
    "CREATE SEQUENCE IF NOT EXISTS graphrt_store_seq_next",
    # Above every `seq` so far, whether taken from MAX(seq) or the change counter (older versions); never back.
    "SELECT setval('graphrt_store_seq_next', GREATEST((SELECT COALESCE(MAX(seq), 0) FROM graphrt_store),"
    " (SELECT MAX(version) FROM graphrt_store_changes), (SELECT last_value FROM graphrt_store_seq_next)))",
)

_FILTER_INDEX = (
    # A filter's plain fields become one `doc @> ...` containment test (see `_filter.pushdown`), which this
    # index answers; rows without a parsed copy pass that test too, and the small partial index finds them.
    # Each search also reads the index's list of not yet merged entries: kept short (128 kB, not 4 MB), a
    # search just after 10,000 puts took 2 ms, not 7-9 ms, and puts cost the same.
    "CREATE INDEX IF NOT EXISTS graphrt_store_doc ON graphrt_store USING gin (doc jsonb_path_ops)"
    " WITH (gin_pending_list_limit = 128)",
    "CREATE INDEX IF NOT EXISTS graphrt_store_no_doc ON graphrt_store (id) WHERE doc IS NULL",
)


class BasePostgresStore(SqlStore):
    """The PostgreSQL store's code, shared by `PostgresStore` and `AsyncPostgresStore`."""

    dialect = POSTGRES
    upsert = _UPSERT
    seq_source = _SEQ_SOURCE
    filter_index = _FILTER_INDEX
    version_sql = "SELECT version FROM graphrt_store_changes WHERE one = 1"
    """The change counter: bumped by every write transaction but a lone put that leaves the vectors alone
    (`_PUT_ALONE`), so it moves whenever what the vector cache holds may have changed (the only reader here:
    `get` keeps no rows in memory on this backend)."""
    distance_types = tuple(DISTANCES)

    def __init__(
        self,
        conn: Any,
        *,
        pipe: Any = None,
        deserializer: Callable[[bytes], dict[str, Any]] | None = None,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        pgvector: bool | None = None,
    ) -> None:
        """A store on `conn`; its tables are made by `setup()` (or the first call).

        Args:
            conn: A connection or pool (see the concrete class), or a connector of `graphrt._postgres`.
            pipe: LangGraph's pipeline (`Pipeline`/`AsyncPipeline`) of `conn`: accepted, not needed (graphrt
                pipelines each write transaction's statements by itself); refused with a pool, as LangGraph
                refuses it.
            index: As for every store, plus LangGraph's `distance_type` (`cosine`, `l2`, `inner_product`) and
                `ann_index_config` (`kind`: `hnsw`, `ivfflat` or `flat`; `m`, `ef_construction`, `nlist`;
                `vector_type`: `vector` or `halfvec`; graphrt's `ef_search` and `probes`).
            ttl: As for every store.
            pgvector: None (default) searches with pgvector when the server has the extension (setup creates
                it when it can), and with an exact scan otherwise; True requires it; False never uses it.
            deserializer: Turns a stored value's JSON (bytes) into the item's value (default: orjson's).

        Raises:
            ValueError: `pipe` with a pool; an unknown distance type, index kind, vector type or index parameter.
        """
        import psycopg_pool

        if pipe is not None and isinstance(conn, psycopg_pool.ConnectionPool | psycopg_pool.AsyncConnectionPool):
            pool = "AsyncConnectionPool" if isinstance(conn, psycopg_pool.AsyncConnectionPool) else "ConnectionPool"
            raise ValueError(f"Pipeline should be used only with a single {pool.removesuffix('Pool')}, not {pool}.")
        self.pipe = pipe
        vector_config = parse_vector_config(index)
        self._connector = self._connect(conn)
        super().__init__(None, index=index, ttl=ttl, deserializer=deserializer)
        self.metric = vector_config.metric
        if self._index is not None:
            self._index = dataclasses.replace(self._index, unit=False)  # stored as given, like LangGraph
        self._pgvector = pgvector
        self._embeddings = PgVector(vector_config, self._index.embedder.dims) if self._index else None
        self._mirror = False
        """Whether writes also go to the pgvector table (it exists)."""
        self._ann = False
        """Whether searches read the pgvector table."""

    def _connect(self, conn: Any) -> Any:
        """The connector lending `conn`'s connections (a backend hook: sync or async ones)."""
        return conn if isinstance(conn, Connector) else Connector(conn, type(self).__name__)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {'pooled' if self._connector.replaceable else 'single connection'}>"

    def _cursor_beside(self, cur: Any) -> Any:
        from psycopg.rows import tuple_row

        opener = getattr(cur, "cursor", None)  # a pipelined cursor (graphrt._postgres) opens its own
        return opener() if opener is not None else cur.connection.cursor(row_factory=tuple_row)

    def _migrate_op(self) -> Generator[Txn[Any], Any, None]:
        yield from super()._migrate_op()
        if self._embeddings is None:
            return
        try:
            yield Txn(self._setup_vectors, SETUP)
        except BaseException:
            self.is_setup = False
            raise

    def _setup_vectors(self, cur: Any) -> Body[None]:
        """Find (or create) the pgvector extension, then the embeddings table and index (under the write lock)."""
        assert self._embeddings is not None
        self._mirror = self._ann = False
        version = yield from self._vector_extension(cur)
        if version is None:
            return
        self._embeddings.iterative = version >= (0, 8)
        yield cur.execute("SELECT to_regclass('graphrt_store_embeddings') IS NOT NULL")
        exists = bool((yield cur.fetchone())[0])
        if self._pgvector is False and not exists:
            return
        # With pgvector off, an existing table is still kept up to date for the stores that search it.
        yield from self._embeddings.create(cur, with_index=self._pgvector is not False)
        self._mirror = True
        self._ann = self._pgvector is not False

    def _vector_extension(self, cur: Any) -> Body[tuple[int, ...] | None]:
        """The version of a usable `vector` extension in this database (created when allowed and possible).

        None: there is none, or it is older than 0.7 (`l2_normalize`, `halfvec`), or `pgvector=False` and it
        is not installed.

        Raises:
            RuntimeError: `pgvector=True` and no usable extension.
        """
        import psycopg

        version = yield from _extension_version(cur)
        problem = None
        if version is None and self._pgvector is not False:
            yield cur.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
            if (yield cur.fetchone()) is None:
                problem = "the server has no pgvector extension (see https://github.com/pgvector/pgvector)"
            else:
                yield cur.execute("SAVEPOINT graphrt_vector")
                try:
                    yield cur.execute("CREATE EXTENSION IF NOT EXISTS vector")
                    yield cur.execute("RELEASE SAVEPOINT graphrt_vector")
                except psycopg.Error as exc:
                    yield cur.execute("ROLLBACK TO SAVEPOINT graphrt_vector")
                    problem = f"CREATE EXTENSION vector failed ({exc}); a superuser can run it once in this database"
                # Also finds an extension created at the same moment by a session without the store's lock.
                version = yield from _extension_version(cur)
        if version is not None and version < (0, 7):
            problem = f"pgvector {'.'.join(map(str, version))} is too old (0.7 or later: ALTER EXTENSION vector UPDATE)"
            version = None
        if version is None and self._pgvector:
            raise RuntimeError(f"{type(self).__name__}(pgvector=True): {problem or 'no pgvector extension'}.")
        return version

    def _vectors_set(self, cur: Any, fresh: list[tuple[Put, Any]]) -> Body[None]:
        if self._mirror and fresh:
            assert self._embeddings is not None
            yield from self._embeddings.write(cur, [(_ns_text(step.namespace), step.key, rows) for step, rows in fresh])

    def _ranking(self, cur: Any, step: Search, query: Any) -> Body[Ranking]:
        if not self._ann:
            return (yield from super()._ranking(cur, step, query))
        assert self._embeddings is not None
        want = step.offset + step.limit
        if not step.prefix:
            return self._embeddings.ranking(cur, query, None, [], want)
        clause, args = _prefix_clause(step.prefix)
        return self._embeddings.ranking(cur, query, self.dialect.sql(clause), args, want)

    def _batch_op(self, plan: Plan) -> StoreOp[list[Result]]:
        steps = plan.steps
        if len(steps) == 1 and type(steps[0]) is Put and self._cache is None:
            put = steps[0]
            if not put.indexed or not len(plan.vectors_of(put)):
                return Txn(lambda cur: self._put_alone(cur, put), ALONE)
        return super()._batch_op(plan)

    def _put_alone(self, cur: Any, put: Put) -> Body[list[Result]]:
        """A batch of one put without vectors: one statement, one round trip, no transaction block."""
        now = self._clock.now()
        where = (_ns_text(put.namespace), put.key)
        expires = None if put.ttl is None else now + ttl_micros(put.ttl)
        yield cur.execute(_PUT_ALONE, (*where, put.raw.decode(), now, now, put.ttl, expires))
        if self._reads:
            self._reads.pop(where, None)
        return [None]

    def _pushdown(self, spec: Mapping[str, Any] | None) -> tuple[str, list[Any]]:
        return pushdown(spec)

    def _retry(self, exc: BaseException, attempt: int) -> bool:
        # A lost connection is replaced (with a pool) and the transaction run again once.
        return isinstance(exc, ConnectionLostError) and not attempt and self._connector.replaceable

    def _wrote(self, cur: Any, upserts: int) -> Body[None]:
        if self._cache is None:  # nothing to keep current: no need to wait for the new number
            yield cur.execute("UPDATE graphrt_store_changes SET version = version + 1 WHERE one = 1")
            return
        yield cur.execute("UPDATE graphrt_store_changes SET version = version + 1 WHERE one = 1 RETURNING version")
        version = (yield cur.fetchone())[0]
        if self._cache is not None and self._cache_version == version - 1:
            self._cache_version = version  # our own write: the cache is kept up to date by the caller


def _extension_version(cur: Any) -> Body[tuple[int, ...] | None]:
    yield cur.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    found = yield cur.fetchone()
    if found is None:
        return None
    return tuple(int(part) for part in found[0].split(".") if part.isdigit())


class PoolConfig(TypedDict, total=False):
    """LangGraph's pool settings for `from_conn_string(pool_config=...)`: sizes, and `kwargs` for each connection."""

    min_size: int
    max_size: int | None
    kwargs: dict[str, Any]


def pool_arguments(
    pool_config: Mapping[str, Any] | None, pool_size: int, prepare_threshold: int | None
) -> dict[str, Any]:
    """`Connector.open_pool`'s (or `AsyncConnector`'s) keyword arguments for a store's own pool, from LangGraph's
    `PoolConfig`: `min_size` (1), `max_size` (default `pool_size`), `kwargs` for each connection, and any other
    psycopg_pool argument (e.g. `timeout`, `max_idle`). The store makes one call at a time, so its pool keeps
    lending it the same connection (`keep`)."""
    config = dict(pool_config or {})
    min_size = int(config.pop("min_size", 1))
    max_size = int(config.pop("max_size", None) or max(pool_size, min_size))
    connect = {"prepare_threshold": prepare_threshold, **(config.pop("kwargs", None) or {})}
    return {"max_size": max_size, "min_size": min_size, "pool_options": config, "keep": True, **connect}


class PostgresStore(BasePostgresStore, ThreadSweeper):
    """A store in PostgreSQL; usable from sync code, and from async code through `abatch` (in a worker thread;
    for async code use `AsyncPostgresStore`, which runs on psycopg's async connections).

    Takes a psycopg `Connection` or a psycopg_pool `ConnectionPool`; with a pool (or `from_conn_string`) a
    connection the server dropped is replaced and the call retried once.
    """

    _alone: Any = None
    """The cursor of the last call outside a transaction, reused while its connection is lent again."""

    @classmethod
    @contextmanager
    def from_conn_string(
        cls,
        conn_string: str,
        *,
        pipeline: bool = False,
        pool_config: dict[str, Any] | None = None,
        index: IndexConfig | None = None,
        ttl: TTLConfig | None = None,
        pool_size: int = 4,
        prepare_threshold: int | None = 5,
        pgvector: bool | None = None,
    ) -> Iterator[PostgresStore]:
        """Connect to `conn_string` through a small pool, closed when the block ends.

        `pipeline` is accepted for LangGraph compatibility (write transactions are always pipelined);
        `pool_config` is LangGraph's `PoolConfig` (see `pool_arguments`); `prepare_threshold=None` turns prepared
        statements off (needed behind PgBouncer in transaction mode).
        """
        arguments = pool_arguments(pool_config, pool_size, prepare_threshold)
        with Connector.open_pool(conn_string, cls.__name__, **arguments) as connector:
            store = cls(connector, index=index, ttl=ttl, pgvector=pgvector)
            try:
                yield store
            finally:
                store.stop_ttl_sweeper(timeout=1)

    def setup(self) -> None:
        """Create or upgrade the store's tables; safe to call from many processes at once."""
        self._migrate()

    def _run_txn(self, kind: str, body_of: Callable[..., Body[T]], *args: Any) -> T:
        # One call at a time per store object (its vector cache and counters are shared state).
        with self.lock:
            attempt = 0
            while True:
                try:
                    with self._transaction(kind) as cur:
                        return drive(body_of(cur, *args))
                except BaseException as exc:
                    self._failed()
                    if not self._retry(exc, attempt):
                        raise
                    self._connector.recover()
                    attempt += 1

    @contextmanager
    def _transaction(self, kind: str) -> Iterator[Any]:
        """A cursor in a transaction of `kind` (see `graphrt.store._sql.READ` and kin), committed on exit and
        rolled back on error, on a connection of the connector."""
        if kind is ALONE:
            with self._connector.connection() as conn:
                cur = self._alone
                if cur is None or cur.connection is not conn or cur.closed:
                    cur = self._alone = conn.cursor()  # reused: making a cursor costs as much as a cheap statement
                yield cur
            return
        begin = self.dialect.begin_read if kind is READ else self.dialect.begin_write
        # Write transactions mostly write: pipelined, they cost a round trip or two, not one per statement.
        with self._connector.transaction(begin, pipeline=kind is WRITE) as cur:
            if kind is not READ:
                drive(self._lock_writers(cur))
            yield cur


def __getattr__(name: str) -> Any:
    """`AsyncPostgresStore` is importable from here too, as from LangGraph's module (loaded on first use)."""
    if name == "AsyncPostgresStore":
        from graphrt.store.postgres.aio import AsyncPostgresStore

        return AsyncPostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
