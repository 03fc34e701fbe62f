"""`SqliteCache`: a cache in a SQLite file, shared by threads and by processes."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, Final

import orjson

from graphrt.cache.base import BaseCache, FullKey, Namespace, ValueT
from graphrt.checkpoint.serde.base import SerializerProtocol

__all__ = ("SqliteCache",)

BUSY_TIMEOUT_MS: Final = 5000
"""How long a write waits for another connection's write lock before failing ("database is locked")."""
_BATCH: Final = 400
"""Keys per SELECT (two parameters each, well under SQLite's parameter limit)."""

_SCHEMA = """CREATE TABLE IF NOT EXISTS graphrt_cache (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    expiry REAL,
    encoding TEXT NOT NULL,
    val BLOB NOT NULL,
    PRIMARY KEY (ns, key)
)"""


class SqliteCache(BaseCache[ValueT]):
    """A cache in a SQLite file: every process that opens the same file sees the same entries.

    The file is in WAL mode with a 5 s `busy_timeout`, so readers never block and concurrent writers
    from other processes wait their turn instead of failing. One connection serves this object's
    threads, under a lock. Expiry times are wall-clock seconds, so they hold across processes.
    Expired entries are deleted when a `get` finds them.

    Args:
        path: The database file (or ":memory:", private to this object).
        serde: Turns values into bytes and back; `JsonPlusSerializer()` by default.
        clock: The time source for expiry (`time.time` by default).
    """

    def __init__(
        self,
        *,
        path: str,
        serde: SerializerProtocol | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(serde=serde, clock=clock)
        self._conn = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
        )
        self._lock = threading.Lock()
        self._conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self._conn.execute("PRAGMA journal_mode = WAL")  # answers "memory" for ":memory:", which is fine
        self._conn.execute("PRAGMA synchronous = NORMAL")
        with self._write() as cur:
            cur.execute(_SCHEMA)

    def close(self) -> None:
        """Close the connection; the cache cannot be used afterwards."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SqliteCache[ValueT]:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        """A `BEGIN IMMEDIATE` transaction: takes the file's write lock up front (waiting on busy)."""
        with self._lock:
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE")
                try:
                    yield cur
                except BaseException:
                    self._conn.rollback()
                    raise
                self._conn.commit()
            finally:
                cur.close()

    def get(self, keys: Sequence[FullKey]) -> dict[FullKey, ValueT]:
        if not keys:
            return {}
        wanted = {(_ns_text(ns), key): (tuple(ns), key) for ns, key in keys}
        pairs = list(wanted)
        rows: list[tuple[str, str, float | None, str, bytes]] = []
        with self._lock:
            for start in range(0, len(pairs), _BATCH):
                chunk = pairs[start : start + _BATCH]
                marks = ",".join("(?, ?)" for _ in chunk)
                params = [part for pair in chunk for part in pair]
                rows.extend(
                    self._conn.execute(
                        f"SELECT ns, key, expiry, encoding, val FROM graphrt_cache WHERE (ns, key) IN ({marks})",
                        params,
                    )
                )
        now = self.clock()
        found: dict[FullKey, ValueT] = {}
        expired: list[tuple[str, str, float]] = []
        for ns, key, expiry, encoding, val in rows:
            if expiry is not None and now >= expiry:
                expired.append((ns, key, expiry))
                continue
            found[wanted[(ns, key)]] = self.serde.loads_typed((encoding, bytes(val)))
        if expired:
            with self._write() as cur:
                # Only the row we saw: another process may have stored a fresh entry meanwhile.
                cur.executemany("DELETE FROM graphrt_cache WHERE ns = ? AND key = ? AND expiry = ?", expired)
        return found

    def set(self, pairs: Mapping[FullKey, tuple[ValueT, int | None]]) -> None:
        if not pairs:
            return
        rows: list[tuple[Any, ...]] = []
        for (ns, key), (value, ttl) in pairs.items():
            encoding, data = self.serde.dumps_typed(value)
            rows.append((_ns_text(ns), key, self.expiry(ttl), encoding, data))
        with self._write() as cur:
            cur.executemany(
                "INSERT OR REPLACE INTO graphrt_cache (ns, key, expiry, encoding, val) VALUES (?, ?, ?, ?, ?)", rows
            )

    def clear(self, namespaces: Sequence[Namespace] | None = None) -> None:
        with self._write() as cur:
            if namespaces is None:
                cur.execute("DELETE FROM graphrt_cache")
            else:
                cur.executemany("DELETE FROM graphrt_cache WHERE ns = ?", [(_ns_text(ns),) for ns in namespaces])


def _ns_text(ns: Namespace) -> str:
    """A namespace as stored: a JSON array, so no separator inside a name can make two namespaces equal."""
    return orjson.dumps(list(ns)).decode()
