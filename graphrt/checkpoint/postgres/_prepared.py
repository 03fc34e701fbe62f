"""The saver's fixed-shape statements, prepared once per connection and run with `EXECUTE` inside its batches.

A batch travels as one simple-protocol query (`_pipeline.BatchCursor`), so the server parses and plans every
statement in it each time; for the short lookups of a chat turn (the head, its writes, its blobs, the
expectations, the lease) planning costs more than running them. SQL-level `PREPARE` keeps the single round
trip: a statement is prepared by the first batch that uses it on a connection (the `PREPARE` rides in that
batch) and later batches send `EXECUTE name(values)`. The blob lookup (an `unnest` of arrays, which the server
would otherwise plan afresh at every call) runs with `plan_cache_mode = force_generic_plan` (`SET LOCAL`, its
transaction only); every statement here is an index lookup whose plan does not depend on its values.

Prepared statements live in a server session, which PgBouncer in transaction mode does not keep: on a
connection whose `prepare_threshold` is None (`from_conn_string(..., prepare_threshold=None)`) statements are
sent as they are. A `PREPARE` is not undone by a rollback: after a batch that carried one failed, the
connection's prepared statements are asked of the server (`pg_prepared_statements`, one round trip) before it
next runs one. A statement found missing (a pool that runs `DISCARD ALL`, a proxy that hands each transaction
another session) or already prepared fails its batch before anything is applied: that connection prepares no
more statements, and the saver runs the operation again (`Mispredicted`).
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from typing import Any

from graphrt.checkpoint._drive import Body

__all__ = (
    "GENERIC_PLANS",
    "STALE_SESSION",
    "Prepared",
    "doubt",
    "give_up",
    "preparable",
    "prepared_on",
    "registered",
    "spelled_out",
)

STALE_SESSION = ("26000", "42P05")
"""SQLSTATEs of a session whose prepared statements are not what this process believes (missing; already there)."""

GENERIC_PLANS = "SET LOCAL plan_cache_mode = force_generic_plan"


class Prepared:
    """How one statement is prepared and executed."""

    __slots__ = ("execute", "generic", "name", "prepare")

    def __init__(self, sql: str, generic: bool) -> None:
        parts = sql.split("%s")
        # Named after the text: a session that somehow kept another version's statement never runs it as this one.
        self.name = "graphrt_" + hashlib.sha1(sql.encode()).hexdigest()[:16]
        self.prepare = f"PREPARE {self.name} AS " + "".join(
            part if i == 0 else f"${i}{part}" for i, part in enumerate(parts)
        )
        self.execute = f"EXECUTE {self.name}" + (f"({', '.join(['%s'] * (len(parts) - 1))})" if len(parts) > 1 else "")
        self.generic = generic
        """Run with generic plans forced (`GENERIC_PLANS`)."""


_STATEMENTS: dict[str, Prepared] = {}


def preparable(sql: str, *, generic: bool = False) -> Prepared:
    """Register `sql` (psycopg `%s` placeholders, no `%%`) as prepared wherever connections allow it."""
    assert "%%" not in sql
    prepared = _STATEMENTS.get(sql)
    if prepared is None:
        prepared = _STATEMENTS[sql] = Prepared(sql, generic)
    return prepared


def registered(sql: str) -> Prepared | None:
    """The registered statement `sql`, if it is one."""
    return _STATEMENTS.get(sql)


def spelled_out(statement: str) -> str:
    """`statement` with an `EXECUTE` of a registered statement shown as that statement's text (for tests, logs)."""
    if statement.startswith("EXECUTE graphrt_"):
        name = statement[len("EXECUTE ") :].split("(", 1)[0]
        for prepared in _STATEMENTS.values():
            if prepared.name == name:
                return prepared.prepare.split(" AS ", 1)[1] + statement[len("EXECUTE ") + len(name) :]
    return statement


_lock = threading.Lock()
_known: weakref.WeakKeyDictionary[Any, set[str] | None] = weakref.WeakKeyDictionary()
"""connection -> the names prepared on its session (None: it prepares none any more)."""
_doubtful: weakref.WeakSet[Any] = weakref.WeakSet()
"""Connections whose prepared statements are to be asked of the server before use."""


def prepared_on(conn: Any, cur: Any) -> Body[set[str] | None]:
    """The names prepared on `conn` (updated by its user, who holds the connection), or None when it prepares
    no statements. Asks the server first (with `cur`, sync or async, outside any transaction) when in doubt.

    A transaction body (`_drive`): `drive` it with a sync cursor, `adrive` it with an async one."""
    if getattr(conn, "prepare_threshold", None) is None:
        return None
    with _lock:
        known = _known.get(conn, set())
        doubtful = conn in _doubtful
        if not doubtful:
            _known[conn] = known
            return known
    yield cur.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE 'graphrt\\_%'")
    names = {row[0] for row in (yield cur.fetchall())}
    with _lock:
        _known[conn] = names
        _doubtful.discard(conn)
    return names


def doubt(conn: Any) -> None:
    """`conn`'s prepared statements are no longer known: a batch that prepared one failed."""
    with _lock:
        if _known.get(conn, set()) is not None:
            _doubtful.add(conn)


def give_up(conn: Any) -> None:
    """`conn` prepares no more statements: its session lost them, or had them already (a pool that discards
    sessions' state, a proxy that hands each transaction another server session)."""
    with _lock:
        _known[conn] = None
        _doubtful.discard(conn)
