"""Connections for the PostgreSQL checkpointer and store: one connection, a pool, or a pool built from a DSN.

Everything PostgreSQL-specific about *connecting* lives here, shared by `graphrt.checkpoint.postgres` and
`graphrt.store.postgres`: the import check naming the extra to install, autocommit and tuple rows on every
connection handed out, a pool that replaces connections the server dropped, and error messages and reprs
that never contain a password. `Connector` serves psycopg's sync connections and pools, `AsyncConnector`
its asyncio ones (`AsyncConnection`, `AsyncConnectionPool`), with the same behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import select
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

_ATTEMPTS = 3
"""How many connections a transaction start tries before giving up (each dead one is replaced)."""

__all__ = ("AsyncConnector", "Connector", "ConnectionLostError", "redact", "require_psycopg")


def require_psycopg(what: str) -> None:
    """Fail with the command that installs psycopg when it (or psycopg-pool) is missing."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"{what} needs psycopg: pip install 'graphrt[postgres]'") from exc


_PASSWORD_PATTERNS = (
    re.compile(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)"),
    re.compile(r"(?i)(postgres(?:ql)?://[^:/@\s]*:)([^@\s]*)(@)"),
)


def redact(text: str) -> str:
    """`text` with any password of a DSN (URL or key=value form) replaced by `***`."""
    text = _PASSWORD_PATTERNS[0].sub(r"\1***", text)
    return _PASSWORD_PATTERNS[1].sub(r"\1***\3", text)


class ConnectionLostError(ConnectionError):
    """The database connection broke (the server closed it, restarted, or the network failed) during a call.

    Nothing of the failed call is half-applied: its transaction was rolled back by the server, unless the
    connection broke while the commit itself was in flight. Calling again on the same object uses a new
    connection when the object has a pool (or a DSN), so the work can resume.
    """

    def __init__(self, what: str, detail: str) -> None:
        self.what = what
        super().__init__(f"{what}: the connection to PostgreSQL was lost ({redact(detail)}). Call again to resume.")


class Connector:
    """Hands out autocommit connections from a pool, or a single connection given by the user.

    A connection the server dropped is discarded by the pool and the next call gets a new one; a single
    connection cannot be replaced, so an error says to pass a pool (or use `from_conn_string`) instead.
    """

    def __init__(self, target: Any, what: str, *, keep: bool = False) -> None:
        """Lend `target`'s connections; with `keep` (a pool that only its owner's one-call-at-a-time user
        shares), the last connection is kept out of the pool for the next call (no checkout per call)."""
        import psycopg
        import psycopg_pool

        self.what = what
        self.pool: Any = None
        self.conn: Any = None
        self.keep = keep
        self._kept: Any = None
        self._keeping = threading.Lock()
        if isinstance(target, psycopg_pool.ConnectionPool):
            self.pool = target
        elif isinstance(target, psycopg.Connection):
            self.conn = target
        else:
            raise TypeError(
                f"{what} takes a psycopg Connection or a psycopg_pool ConnectionPool, got {type(target).__name__}; "
                f"to connect from a connection string use {what}.from_conn_string(...)"
            )

    @classmethod
    @contextlib.contextmanager
    def open_pool(
        cls,
        conn_string: str,
        what: str,
        *,
        max_size: int = 4,
        min_size: int = 1,
        pool_options: dict[str, Any] | None = None,
        keep: bool = False,
        **kwargs: Any,
    ) -> Iterator[Connector]:
        """A pool to `conn_string`, closed when the block ends. `kwargs` go to `psycopg.connect`, `pool_options`
        to `ConnectionPool` (e.g. `timeout`, `max_idle`); for `keep`, see the constructor."""
        import psycopg
        import psycopg_pool

        _check_conninfo(conn_string, what)
        try:  # one direct attempt first: a wrong host or password fails now, with the server's reason
            psycopg.connect(conn_string, **kwargs).close()
        except psycopg.OperationalError as exc:
            raise _unreachable(what, exc) from None
        options = _pool_options(conn_string, what, max_size, min_size, kwargs, pool_options)
        pool = psycopg_pool.ConnectionPool(**options)
        try:
            pool.open(wait=True, timeout=_POOL_OPEN_TIMEOUT)
        except psycopg_pool.PoolTimeout as exc:
            pool.close()
            raise _unreachable(what, exc, _POOL_OPEN_TIMEOUT) from None
        connector = cls(pool, what, keep=keep)
        try:
            yield connector
        finally:
            connector.release()
            pool.close()

    def release(self) -> None:
        """Give a kept connection back to the pool (see `keep`)."""
        with self._keeping:
            conn, self._kept = self._kept, None
        if conn is not None:
            self.pool.putconn(conn)

    @contextlib.contextmanager
    def connection(self) -> Iterator[Any]:
        """A connection in autocommit mode with tuple rows, idle (no transaction open) on entry and on exit.

        Raises:
            ConnectionLostError: No connection could be had, or it broke inside the block.
        """
        import psycopg_pool
        from psycopg.rows import tuple_row

        if self.pool is None:
            if self.conn.closed:
                raise ConnectionLostError(
                    self.what,
                    "the connection passed to it is closed; pass a psycopg_pool ConnectionPool, or use "
                    "from_conn_string, to get a new connection automatically",
                )
            with _lost_as_error(self.conn, self.what):
                _prepare(self.conn, tuple_row)
                yield self.conn
            return
        conn = None
        if self.keep:
            with self._keeping:
                conn, self._kept = self._kept, None
        try:
            if conn is None:
                conn = self.pool.getconn()
            while _looks_dead(conn):
                conn.close()  # returned closed, so the pool discards it and connects anew
                self.pool.putconn(conn)
                conn = self.pool.getconn()
        except psycopg_pool.PoolTimeout as exc:
            raise ConnectionLostError(self.what, f"no connection available: {exc}") from None
        try:
            with _lost_as_error(conn, self.what):
                _prepare(conn, tuple_row)
                yield conn
        finally:
            if self.keep and not _is_broken(conn) and conn.pgconn.transaction_status == _IDLE:
                with self._keeping:
                    conn, self._kept = self._kept, conn
            if conn is not None:
                self.pool.putconn(conn)  # rolls back a transaction left open, discards a broken connection

    @contextlib.contextmanager
    def transaction(
        self, begin: str, setup: Callable[[Any], None] | None = None, *, pipeline: bool = False
    ) -> Iterator[Any]:
        """A cursor inside a transaction opened with `begin`, committed on exit and rolled back on error.

        A connection found dead when the transaction starts (dropped while idle in the pool, or during a
        server restart) is replaced and the start retried, so callers only see `ConnectionLostError` when
        the connection breaks in the middle of their transaction. `setup(conn)` runs first on each connection.
        With `pipeline`, statements after `begin` are sent without waiting for their results until one is
        read (a fetch, or `rowcount`), and the commit goes with the last of them: fewer round trips.
        """
        import psycopg

        for attempt in range(_ATTEMPTS):
            with contextlib.ExitStack() as stack:
                conn = None
                try:
                    conn = stack.enter_context(self.connection())
                    if setup is not None:
                        setup(conn)
                    cur = stack.enter_context(conn.cursor())
                    cur.execute(begin)
                except (ConnectionLostError, psycopg.OperationalError) as exc:
                    lost = isinstance(exc, ConnectionLostError) or conn is None or _is_broken(conn)
                    if not lost or attempt == _ATTEMPTS - 1 or not self.replaceable:
                        raise
                    stack.close()  # hands the broken connection back, so the pool discards it
                    self.recover()
                    continue
                try:
                    if pipeline:
                        with conn.pipeline() as pipe:
                            yield _PipelinedCursor(cur, pipe)
                            cur.execute("COMMIT")
                    else:
                        yield cur
                        cur.execute("COMMIT")
                except BaseException:
                    if not _is_broken(conn) and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        cur.execute("ROLLBACK")
                    raise
                return

    def recover(self) -> None:
        """After a lost connection: drop the pool's idle connections that broke too (a restart drops them all)."""
        if self.pool is not None:
            with contextlib.suppress(Exception):
                self.pool.check()

    @property
    def replaceable(self) -> bool:
        """Whether a lost connection is replaced on the next call (a pool), or not (a single connection)."""
        return self.pool is not None

    def __repr__(self) -> str:
        kind = "pool" if self.pool is not None else "connection"
        return f"<Connector {self.what} ({kind})>"


_POOL_OPEN_TIMEOUT = 30
"""Seconds `open_pool` waits for its pool's first connection."""
_IDLE = 0
"""libpq's `PQTRANS_IDLE`: no transaction open on the connection."""


def _check_conninfo(conn_string: str, what: str) -> None:
    """A malformed connection string is a `ValueError` naming the caller (its text redacted)."""
    import psycopg

    try:
        psycopg.conninfo.conninfo_to_dict(conn_string)
    except psycopg.ProgrammingError as exc:
        raise ValueError(f"{what}: invalid connection string ({redact(str(exc))})") from None


def _unreachable(what: str, exc: Exception, waited: int | None = None) -> ConnectionError:
    within = "" if waited is None else f" within {waited} s"
    return ConnectionError(f"{what}: could not connect to PostgreSQL{within} ({redact(str(exc))})")


def _pool_options(
    conn_string: str,
    what: str,
    max_size: int,
    min_size: int,
    kwargs: dict[str, Any],
    pool_options: dict[str, Any] | None,
) -> dict[str, Any]:
    """The arguments of `open_pool`'s (sync or async) psycopg_pool pool: autocommit connections, opened later;
    `pool_options` add to them or replace them."""
    return {
        "conninfo": conn_string,
        "min_size": min_size,
        "max_size": max_size,
        "kwargs": {"autocommit": True, **kwargs},
        "open": False,
        "name": f"graphrt-{what}",
        **(pool_options or {}),
    }


@contextlib.contextmanager
def _lost_as_error(conn: Any, what: str) -> Iterator[None]:
    """Turn an error that left `conn` broken into `ConnectionLostError` (other errors pass unchanged).

    A socket closed under a statement (a terminated backend, a restart) may surface before psycopg marks the
    connection broken: an error with no SQLSTATE (the client's own), or a connection-class one, counts too.
    """
    import psycopg

    try:
        yield
    except psycopg.OperationalError as exc:
        if _is_broken(conn) or _names_a_lost_connection(exc):
            raise ConnectionLostError(what, str(exc)) from None
        raise


def _names_a_lost_connection(exc: Exception) -> bool:
    """Whether an error says the connection is gone (no SQLSTATE: raised by the client; 08xxx; 57P0x shutdown)."""
    state = getattr(exc, "sqlstate", None)
    return state is None or state.startswith("08") or state in ("57P01", "57P02", "57P03")


class _PipelinedCursor:
    """A cursor in pipeline mode whose `rowcount` waits for the results it depends on."""

    def __init__(self, cur: Any, pipe: Any) -> None:
        self._main = self._cur = cur
        self._pipe = pipe

    def execute(self, sql: str, params: Any = None, /) -> Any:
        self._cur = self._main
        return self._cur.execute(sql, params)

    def executemany(self, sql: str, params: Any, /) -> Any:
        # A cursor of its own: in pipeline mode psycopg adds an executemany's row count to the cursor's last one.
        self._cur = self._main.connection.cursor()
        return self._cur.executemany(sql, params)

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        rows: list[Any] = self._cur.fetchall()
        return rows

    def fetchmany(self, size: int) -> list[Any]:
        rows: list[Any] = self._cur.fetchmany(size)
        return rows

    def cursor(self) -> Any:
        """Another cursor on the connection, in the same transaction (and pipeline)."""
        return self._main.connection.cursor(row_factory=self._main.row_factory)

    @property
    def rowcount(self) -> int:
        self._pipe.sync()
        count: int = self._cur.rowcount
        return count


def _is_broken(conn: Any) -> bool:
    return bool(conn.closed or getattr(conn, "broken", False))


def _looks_dead(conn: Any) -> bool:
    """Whether an idle connection was dropped by the server (checked without a round trip).

    A terminated backend or a server shutting down sends an error and closes the socket, so an idle
    connection whose socket is readable is read: if that fails, or leaves it broken, it is dead.
    """
    import psycopg

    if conn.closed or getattr(conn, "broken", False):
        return True
    try:
        readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
        if not readable:
            return False
        conn.pgconn.consume_input()
    except (psycopg.OperationalError, OSError, ValueError):
        return True
    return bool(conn.pgconn.status != psycopg.pq.ConnStatus.OK)


def _prepare(conn: Any, tuple_row: Any) -> None:
    if not conn.autocommit:
        conn.autocommit = True  # statements below open and close their own transactions
    if conn.row_factory is not tuple_row:
        conn.row_factory = tuple_row


class AsyncConnector:
    """`Connector` for asyncio: a psycopg `AsyncConnection` given by the user, or an `AsyncConnectionPool`.

    Takes connections as LangGraph users make them (`autocommit=True`, any `row_factory` such as
    `dict_row`, any `prepare_threshold`): the connection's settings are left alone, graphrt's cursors
    read tuples. A pool's connection the server dropped is discarded and the call retried on a new one;
    a single connection carries one transaction at a time (from any event loop or thread).
    """

    def __init__(self, target: Any, what: str, *, keep: bool = False) -> None:
        """Lend `target`'s connections; with `keep` (a pool of the connector's own), a connection given back
        idle is kept for the next call instead of returning to the pool (the others still come from it)."""
        import psycopg
        import psycopg_pool

        self.what = what
        self.pool: Any = None
        self.conn: Any = None
        self.keep = keep
        self._kept: Any = None
        self._keeping = threading.Lock()
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()
        self._in_use = threading.Lock()
        if isinstance(target, psycopg_pool.AsyncConnectionPool):
            self.pool = target
        elif isinstance(target, psycopg.AsyncConnection):
            self.conn = target
        elif isinstance(target, psycopg.Connection | psycopg_pool.ConnectionPool):
            raise TypeError(
                f"{what} takes a psycopg AsyncConnection or a psycopg_pool AsyncConnectionPool, got a sync "
                f"{type(target).__name__}: pass `await psycopg.AsyncConnection.connect(dsn, autocommit=True)`, "
                f"or use {what}.from_conn_string(dsn); for a sync connection use {what.removeprefix('Async')}"
            )
        else:
            raise TypeError(
                f"{what} takes a psycopg AsyncConnection or a psycopg_pool AsyncConnectionPool, got "
                f"{type(target).__name__}; to connect from a connection string use {what}.from_conn_string(...)"
            )

    @classmethod
    @contextlib.asynccontextmanager
    async def open_pool(
        cls,
        conn_string: str,
        what: str,
        *,
        max_size: int = 4,
        min_size: int = 1,
        pool_options: dict[str, Any] | None = None,
        keep: bool = False,
        **kwargs: Any,
    ) -> AsyncIterator[AsyncConnector]:
        """An async pool to `conn_string`, closed when the block ends. `kwargs` go to `AsyncConnection.connect`,
        `pool_options` to `AsyncConnectionPool` (e.g. `timeout`, `max_idle`)."""
        import psycopg
        import psycopg_pool

        _check_conninfo(conn_string, what)
        try:  # one direct attempt first: a wrong host or password fails now, with the server's reason
            await (await psycopg.AsyncConnection.connect(conn_string, **kwargs)).close()
        except psycopg.OperationalError as exc:
            raise _unreachable(what, exc) from None
        options = _pool_options(conn_string, what, max_size, min_size, kwargs, pool_options)
        pool = psycopg_pool.AsyncConnectionPool(**options)
        try:
            await pool.open(wait=True, timeout=_POOL_OPEN_TIMEOUT)
        except psycopg_pool.PoolTimeout as exc:
            await pool.close()
            raise _unreachable(what, exc, _POOL_OPEN_TIMEOUT) from None
        connector = cls(pool, what, keep=keep)
        try:
            yield connector
        finally:
            await connector.release()
            await pool.close()

    async def release(self) -> None:
        """Give a kept connection back to the pool (see `keep`)."""
        with self._keeping:
            conn, self._kept = self._kept, None
        if conn is not None:
            await self.pool.putconn(conn)

    @contextlib.asynccontextmanager
    async def _exclusive(self) -> AsyncIterator[None]:
        """The single connection for one transaction: the callers of one event loop queue on an asyncio lock,
        and callers on other loops (other threads) wait their turn without blocking theirs."""
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            lock = self._locks[loop] = asyncio.Lock()
        async with lock:
            while not self._in_use.acquire(blocking=False):
                await asyncio.sleep(0.002)
            try:
                yield
            finally:
                self._in_use.release()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """An autocommit connection, idle (no transaction open) on entry and on exit.

        Raises:
            ConnectionLostError: No connection could be had, or it broke inside the block.
        """
        import psycopg_pool

        if self.pool is None:
            async with self._exclusive():
                if self.conn.closed:
                    raise ConnectionLostError(
                        self.what,
                        "the connection passed to it is closed; pass a psycopg_pool AsyncConnectionPool, or use "
                        "from_conn_string, to get a new connection automatically",
                    )
                async with _alost_as_error(self.conn, self.what):
                    if not self.conn.autocommit:
                        await self.conn.set_autocommit(True)  # statements below open and close their transactions
                    yield self.conn
            return
        # Unlike `Connector`, no `_looks_dead` probe: reading an idle async connection's socket behind
        # psycopg's back slows its next statements down; a dead one fails `BEGIN` and `transaction` retries.
        conn = None
        if self.keep:
            with self._keeping:
                conn, self._kept = self._kept, None
        try:
            if conn is None:
                conn = await self.pool.getconn()
        except psycopg_pool.PoolTimeout as exc:
            raise ConnectionLostError(self.what, f"no connection available: {exc}") from None
        try:
            async with _alost_as_error(conn, self.what):
                if not conn.autocommit:
                    await conn.set_autocommit(True)
                yield conn
        finally:
            if self.keep and not _is_broken(conn) and conn.pgconn.transaction_status == _IDLE:
                with self._keeping:
                    conn, self._kept = self._kept, conn
            if conn is not None:
                await self.pool.putconn(conn)  # rolls back a transaction left open, discards a broken one

    @contextlib.asynccontextmanager
    async def transaction(
        self, begin: str, setup: Callable[[Any], Awaitable[None]] | None = None, *, pipeline: bool = False
    ) -> AsyncIterator[Any]:
        """An async cursor (tuple rows) inside a transaction opened with `begin`; see `Connector.transaction`."""
        import psycopg
        from psycopg.rows import tuple_row

        for attempt in range(_ATTEMPTS):
            async with contextlib.AsyncExitStack() as stack:
                conn = None
                try:
                    conn = await stack.enter_async_context(self.connection())
                    if setup is not None:
                        await setup(conn)
                    cur = await stack.enter_async_context(conn.cursor(row_factory=tuple_row))
                    await cur.execute(begin)
                except (ConnectionLostError, psycopg.OperationalError) as exc:
                    lost = isinstance(exc, ConnectionLostError) or conn is None or _is_broken(conn)
                    if not lost or attempt == _ATTEMPTS - 1 or not self.replaceable:
                        raise
                    await stack.aclose()  # hands the broken connection back, so the pool discards it
                    await self.recover()
                    continue
                try:
                    if pipeline:
                        async with conn.pipeline() as pipe:
                            yield _AsyncPipelinedCursor(cur, pipe)
                            await cur.execute("COMMIT")
                    else:
                        yield cur
                        await cur.execute("COMMIT")
                except BaseException:
                    if not _is_broken(conn) and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        await cur.execute("ROLLBACK")
                    raise
                return

    async def recover(self) -> None:
        """After a lost connection: drop the pool's idle connections that broke too."""
        if self.pool is not None:
            with contextlib.suppress(Exception):
                await self.pool.check()

    @property
    def replaceable(self) -> bool:
        """Whether a lost connection is replaced on the next call (a pool), or not (a single connection)."""
        return self.pool is not None

    def __repr__(self) -> str:
        kind = "pool" if self.pool is not None else "connection"
        return f"<AsyncConnector {self.what} ({kind})>"


@contextlib.asynccontextmanager
async def _alost_as_error(conn: Any, what: str) -> AsyncIterator[None]:
    """Async twin of `_lost_as_error`."""
    import psycopg

    try:
        yield
    except psycopg.OperationalError as exc:
        if _is_broken(conn) or _names_a_lost_connection(exc):
            raise ConnectionLostError(what, str(exc)) from None
        raise


class _AsyncPipelinedCursor:
    """An async cursor in pipeline mode; `arowcount()` waits for the results the count depends on."""

    def __init__(self, cur: Any, pipe: Any) -> None:
        self._main = self._cur = cur
        self._pipe = pipe

    async def execute(self, sql: str, params: Any = None, /) -> Any:
        self._cur = self._main
        return await self._cur.execute(sql, params)

    async def executemany(self, sql: str, params: Any, /) -> Any:
        # A cursor of its own: in pipeline mode psycopg adds an executemany's row count to the cursor's last one.
        self._cur = self._main.connection.cursor(row_factory=self._main.row_factory)
        return await self._cur.executemany(sql, params)

    async def fetchone(self) -> Any:
        return await self._cur.fetchone()

    async def fetchall(self) -> list[Any]:
        rows: list[Any] = await self._cur.fetchall()
        return rows

    async def fetchmany(self, size: int) -> list[Any]:
        rows: list[Any] = await self._cur.fetchmany(size)
        return rows

    def cursor(self) -> Any:
        """Another cursor on the connection, in the same transaction (and pipeline)."""
        return self._main.connection.cursor(row_factory=self._main.row_factory)

    async def arowcount(self) -> int:
        await self._pipe.sync()
        count: int = self._cur.rowcount
        return count
