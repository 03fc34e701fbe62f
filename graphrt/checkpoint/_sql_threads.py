"""`list_threads` for the SQL savers: aggregate queries over graphrt's checkpoint tables (any dialect)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from graphrt.checkpoint._drive import Body
from graphrt.checkpoint._record import record_field
from graphrt.checkpoint.base._storage import decode_metadata, matches_filter
from graphrt.checkpoint.base._threads import ThreadInfo, ThreadTally
from graphrt.checkpoint.serde.base import SerializerProtocol

__all__ = ("list_sql_threads",)

_SELECT_HEAD_ROW = (
    "SELECT type, checkpoint, metadata FROM graphrt_checkpoints "
    "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
)


def list_sql_threads(
    cur: Any,
    q: Callable[[str], str],
    serde: SerializerProtocol,
    filter: Mapping[str, Any] | None,
    limit: int | None,
) -> Body[list[ThreadInfo]]:
    """The threads newest first; `cur` is a read transaction's cursor (sync or async: a transaction body,
    see `_drive`) and `q` adapts "?" placeholders."""
    tallies = yield from _thread_tallies(cur)
    ordered = sorted(tallies.values(), key=lambda t: (t.newest_id, t.thread_id), reverse=True)
    picked: list[ThreadTally] = []
    for tally in ordered:
        if limit is not None and len(picked) >= limit:
            break
        yield cur.execute(q(_SELECT_HEAD_ROW), (tally.thread_id, tally.head_ns, tally.head_key[1]))
        type_, data, metadata = yield cur.fetchone()
        tally.metadata = decode_metadata(bytes(metadata))
        if filter and not matches_filter(tally.metadata, filter):
            continue
        tally.updated_at = record_field(serde, type_, bytes(data), "ts")
        picked.append(tally)
    return [tally.info() for tally in picked]


def _thread_tallies(cur: Any) -> Body[dict[str, ThreadTally]]:
    """Every thread's checkpoint count, newest ids and stored bytes, from a few aggregate queries."""
    tallies: dict[str, ThreadTally] = {}
    yield cur.execute(
        "SELECT thread_id, checkpoint_ns, COUNT(*), MAX(checkpoint_id), "
        "SUM(LENGTH(checkpoint) + LENGTH(metadata)) FROM graphrt_checkpoints GROUP BY thread_id, checkpoint_ns"
    )
    for thread_id, checkpoint_ns, count, newest, size in (yield cur.fetchall()):
        tally = tallies.setdefault(thread_id, ThreadTally(thread_id, size=0))
        tally.see(checkpoint_ns, newest)
        tally.checkpoints += int(count) - 1
        tally.size = (tally.size or 0) + int(size or 0)
    for table in ("graphrt_checkpoint_blobs", "graphrt_checkpoint_writes"):
        yield cur.execute(f"SELECT thread_id, SUM(COALESCE(LENGTH(blob), 0)) FROM {table} GROUP BY thread_id")
        for thread_id, size in (yield cur.fetchall()):
            if thread_id in tallies:
                tallies[thread_id].size = (tallies[thread_id].size or 0) + int(size or 0)
    return tallies
