"""Connections for the PostgreSQL checkpointer and store: one connection, a pool, or a pool built from a DSN.

Everything PostgreSQL-specific about *connecting* lives here, shared by `graphrt.checkpoint.postgres` and
`graphrt.store.postgres`: the import check naming the extra to install, autocommit and tuple rows on every
connection handed out, a pool that replaces connections the server dropped, and error messages and reprs
that never contain a password.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

__all__ = ("Connector", "ConnectionLostError", "redact", "require_psycopg")


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

    def __init__(self, target: Any, what: str) -> None:
        import psycopg
        import psycopg_pool

        self.what = what
        self.pool: Any = None
        self.conn: Any = None
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
    def open_pool(cls, conn_string: str, what: str, *, max_size: int = 4, **kwargs: Any) -> Iterator[Connector]:
        """A pool to `conn_string`, closed when the block ends. `kwargs` go to `psycopg.connect`."""
        import psycopg
        import psycopg_pool

        try:
            psycopg.conninfo.conninfo_to_dict(conn_string)
        except psycopg.ProgrammingError as exc:
            raise ValueError(f"{what}: invalid connection string ({redact(str(exc))})") from None
        pool = psycopg_pool.ConnectionPool(
            conn_string,
            min_size=1,
            max_size=max_size,
            kwargs={"autocommit": True, **kwargs},
            open=False,
            name=f"graphrt-{what}",
        )
        try:
            pool.open(wait=True, timeout=30)
        except psycopg_pool.PoolTimeout as exc:
            pool.close()
            raise ConnectionError(f"{what}: could not connect to PostgreSQL within 30 s ({redact(str(exc))})") from None
        try:
            yield cls(pool, what)
        finally:
            pool.close()

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
        try:
            with self.pool.connection() as conn, _lost_as_error(conn, self.what):
                _prepare(conn, tuple_row)
                yield conn
        except psycopg_pool.PoolTimeout as exc:
            raise ConnectionLostError(self.what, f"no connection available: {exc}") from None

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


@contextlib.contextmanager
def _lost_as_error(conn: Any, what: str) -> Iterator[None]:
    """Turn an error that left `conn` broken into `ConnectionLostError` (other errors pass unchanged)."""
    import psycopg

    try:
        yield
    except psycopg.OperationalError as exc:
        if conn.closed or getattr(conn, "broken", False):
            raise ConnectionLostError(what, str(exc)) from None
        raise


def _prepare(conn: Any, tuple_row: Any) -> None:
    if not conn.autocommit:
        conn.autocommit = True  # statements below open and close their own transactions
    if conn.row_factory is not tuple_row:
        conn.row_factory = tuple_row
