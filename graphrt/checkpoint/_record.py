"""Checkpoint records stored as deltas on a snapshot record of the same thread and namespace.

A checkpoint's *record* is everything but its channel values: ids, `channel_versions`, `versions_seen`.
In a graph of many nodes those two maps hold an entry per channel and per node, and a step changes a few
of them; writing the record whole every step makes each step's write grow with the graph (a 100-node
chain writes ~8 KB of record per step). Here a record is stored, when it pays, as only the entries that
differ from a *snapshot* record written earlier on the same stream (thread, namespace), plus the fields
that always change (id, timestamp, updated channels):

- the delta is computed against the snapshot this saver last wrote on the stream, so reading one costs at
  most one extra row (the snapshot), which a saver that wrote or read it recently holds in memory;
- a new snapshot is written when the stream has none here, when an entry was removed, or when the delta
  outgrows a quarter of the snapshot's entries (so a delta stays small and snapshots are rare);
- the delta is stored only if its snapshot is still stored, with the same bytes, in the transaction that
  writes it (`Records.checked`); otherwise the record is stored whole. Retention keeps the invariant:
  `prune` rewrites each kept head whole before deleting the rest (`whole_head`), `delete_thread` deletes
  deltas and snapshots together, and `copy_thread` copies both under the same ids.

Records under `MIN_SNAPSHOT` bytes are stored whole (a delta would save less than its check costs), as is a
record whose changed entries are not JSON-native (a delta is plain JSON; a snapshot is whatever the
serializer makes of the record), and every record of a saver that does not opt in
(`CoreSaver.record_deltas`: the SQL savers do; `InMemorySaver` would pay the comparison and save nothing
worth it, and Redis expires keys one by one). Whole records, including those written before this format
existed, load as they always did.

The entries of `versions_seen` are compared by identity first: the runtime hands each checkpoint the very
same dict for a node whose seen versions did not change (`pregel._algo.seen_snapshot`), and never changes
a dict it handed to a saver.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from itertools import compress
from operator import is_not, ne
from typing import Any, Final, NamedTuple, TypeVar

import orjson

from graphrt.checkpoint._drive import Body
from graphrt.checkpoint._primitives import CheckpointRow
from graphrt.checkpoint.base._storage import encode_record
from graphrt.checkpoint.serde.base import SerializerProtocol

K = TypeVar("K")
V = TypeVar("V")

__all__ = ("DELTA_TYPE", "MIN_SNAPSHOT", "BrokenRecordError", "RecordDelta", "Records", "record_field")

DELTA_TYPE: Final = "graphrt-record-delta"
"""The `type` of a stored record that is a delta (JSON: the changed entries and `base`, its snapshot)."""

_MIN_DELTA: Final = 16
"""A delta may always hold this many entries before a snapshot is due (small records)."""
MIN_SNAPSHOT: Final = 2048
"""Records smaller than this many bytes are always stored whole: a delta would save less than checking its
snapshot costs."""


class BrokenRecordError(LookupError):
    """A stored record is a delta whose snapshot record is no longer stored (storage changed behind graphrt)."""

    def __init__(self, key: tuple[str, str, str], base: str) -> None:
        self.key = key
        self.base = base
        super().__init__(
            f"Checkpoint {key[2]!r} of thread {key[0]!r} (namespace {key[1]!r}) is stored as a delta on "
            f"checkpoint {base!r}, which is not stored any more"
        )


class _Snapshot:
    """A snapshot record this saver wrote (or read) on a stream, kept to build and read deltas on it."""

    __slots__ = ("_digest", "data", "id", "seen", "seen_keys", "type", "versions", "versions_keys")

    def __init__(
        self, checkpoint_id: str, type_: str, data: bytes, versions: dict[str, Any], seen: dict[str, Any]
    ) -> None:
        self.id = checkpoint_id
        self.type = type_
        self.data = data
        self.versions = versions
        self.seen = seen
        self.versions_keys = list(versions)
        self.seen_keys = list(seen)
        self._digest: str | None = None

    @property
    def digest(self) -> str:
        """SHA-256 of the stored bytes, in hex (what PostgreSQL's `sha256()` checks a speculative answer by)."""
        if self._digest is None:
            self._digest = hashlib.sha256(self.data).hexdigest()
        return self._digest


class RecordDelta(NamedTuple):
    """How a prepared put's record is a delta: on which snapshot, and the whole record to store instead."""

    base: _Snapshot
    whole: dict[str, Any]
    """The record itself (not serialized), for when the snapshot turns out not to be stored."""


class Records:
    """One saver's snapshot records: which one each stream builds deltas on, and recent ones for reads.

    Only a speed-up, bounded (least recently used streams are dropped) and thread-safe: storage alone always
    suffices to read a record, and a delta is checked against storage before it is stored. Each stream's last
    encoded `channel_versions` is kept too (`versions`).
    """

    def __init__(self, max_streams: int = 512) -> None:
        self._streams: OrderedDict[tuple[str, str], _Snapshot] = OrderedDict()
        self._versions: OrderedDict[tuple[str, str], tuple[str, dict[str, Any]]] = OrderedDict()
        self._known: OrderedDict[tuple[str, str, str], tuple[str, bytes]] = OrderedDict()
        self._max = max_streams
        self._lock = threading.Lock()

    # -- writing ----------------------------------------------------------------------------------

    def encode(
        self, serde: SerializerProtocol, thread_id: str, checkpoint_ns: str, checkpoint_id: str, rest: dict[str, Any]
    ) -> tuple[str, bytes, RecordDelta | None]:
        """(type, data, delta) of a record to store: a delta on the stream's snapshot when that pays.

        `delta` is None when `data` is the whole record; otherwise `Records.checked` must confirm the
        snapshot in the transaction that stores it.
        """
        key = (thread_id, checkpoint_ns)
        versions, seen = rest.get("channel_versions"), rest.get("versions_seen")
        with self._lock:
            snapshot = self._streams.get(key)
            if type(versions) is dict:  # the runtime hands each checkpoint a new dict
                _keep_recent(self._versions, key, (checkpoint_id, versions), self._max)
        if snapshot is not None and type(versions) is dict and type(seen) is dict:
            changed = _changes(snapshot, versions, seen)
            if changed is not None:
                delta = {k: v for k, v in rest.items() if k != "channel_versions" and k != "versions_seen"}
                delta["channel_versions"], delta["versions_seen"] = changed
                delta["base"] = [snapshot.id, len(snapshot.data)]
                try:
                    data = orjson.dumps(delta)
                except TypeError:
                    pass  # not JSON-native: the record is stored whole, as the serializer encodes it
                else:
                    return DELTA_TYPE, data, RecordDelta(snapshot, rest)
        type_, data = encode_record(serde, rest)
        if len(data) >= MIN_SNAPSHOT and type(versions) is dict and type(seen) is dict:
            self._keep(key, _Snapshot(checkpoint_id, type_, data, dict(versions), dict(seen)))
        elif snapshot is not None:
            with self._lock:
                self._streams.pop(key, None)
        return type_, data, None

    def checked(
        self, serde: SerializerProtocol, tx: Any, row: CheckpointRow, delta: RecordDelta
    ) -> Body[CheckpointRow]:
        """The row to store for a delta record: as is while its snapshot is stored with the same bytes
        (checked in the storing transaction `tx`), else with the record whole (a transaction body)."""
        base = delta.base
        expect = getattr(tx, "expect_record", None)  # PostgreSQL's speculative batches: checked at commit
        if expect is not None and expect(row.thread_id, row.checkpoint_ns, base):
            return row
        # Compared by the database, the bytes not read back (`SqlTx.has_record`: the savers that opt in are SQL).
        if (yield tx.has_record(row.thread_id, row.checkpoint_ns, base.id, base.type, base.data)):
            return row
        type_, data = encode_record(serde, delta.whole)
        return row._replace(type=type_, checkpoint=data)

    def _keep(self, key: tuple[str, str], snapshot: _Snapshot) -> None:
        with self._lock:
            _keep_recent(self._streams, key, snapshot, self._max)
            self._remember((*key, snapshot.id), (snapshot.type, snapshot.data))

    def _remember(self, key: tuple[str, str, str], record: tuple[str, bytes]) -> None:
        """Keep a snapshot's (type, bytes) for reads of the deltas on it (call with the lock held)."""
        _keep_recent(self._known, key, record, self._max)

    # -- reading ----------------------------------------------------------------------------------

    def versions(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None) -> dict[str, Any] | None:
        """The `channel_versions` of the stream's record this saver encoded last, if that is `checkpoint_id`'s
        (encoded, not necessarily stored: a guess of what a read of the head needs, see `postgres._pipeline`)."""
        with self._lock:
            last = self._versions.get((thread_id, checkpoint_ns))
        return last[1] if last is not None and last[0] == checkpoint_id else None

    def load(self, serde: SerializerProtocol, tx: Any, row: CheckpointRow) -> Body[dict[str, Any]]:
        """A stored record, whole: a delta is merged onto its snapshot (read through `tx` unless held here).

        Raises:
            BrokenRecordError: The record is a delta whose snapshot is not stored.
        """
        if row.type != DELTA_TYPE:
            record: dict[str, Any] = serde.loads_typed((row.type, row.checkpoint))
            return record
        delta: dict[str, Any] = orjson.loads(row.checkpoint)
        base_id, size = delta.pop("base")
        key = (row.thread_id, row.checkpoint_ns, base_id)
        with self._lock:
            known = self._known.get(key)
        if known is None or len(known[1]) != size:
            stored = yield tx.checkpoint(row.thread_id, row.checkpoint_ns, base_id)
            if stored is None or stored.type == DELTA_TYPE:
                raise BrokenRecordError((row.thread_id, row.checkpoint_ns, row.checkpoint_id), base_id)
            known = (stored.type, stored.checkpoint)
            with self._lock:
                self._remember(key, known)
        base = serde.loads_typed(known)
        delta["channel_versions"] = {**base.get("channel_versions", {}), **delta["channel_versions"]}
        delta["versions_seen"] = {**base.get("versions_seen", {}), **delta["versions_seen"]}
        return delta

    def whole_head(self, serde: SerializerProtocol, tx: Any, row: CheckpointRow) -> Body[dict[str, Any]]:
        """`load`, and a delta rewritten whole in storage (`prune` keeps `row` and deletes the rest)."""
        record = yield from self.load(serde, tx, row)
        if row.type == DELTA_TYPE:
            type_, data = encode_record(serde, record)
            yield tx.put_checkpoint(row._replace(type=type_, checkpoint=data))
        return record


def record_field(serde: SerializerProtocol, type_: str, data: bytes, name: str) -> Any:
    """One top-level field of a stored record (`id`, `ts`: a delta holds them too), without its snapshot."""
    record = orjson.loads(data) if type_ == DELTA_TYPE else serde.loads_typed((type_, data))
    return record.get(name)


def _changes(
    snapshot: _Snapshot, versions: dict[str, Any], seen: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The entries of `versions` and `seen` that differ from the snapshot's, or None when a snapshot is due
    (an entry was removed or reordered, or the delta outgrew a quarter of the snapshot)."""
    limit = max(_MIN_DELTA, (len(snapshot.versions) + len(snapshot.seen)) // 4)
    changed_versions = _changed(versions, snapshot.versions, snapshot.versions_keys, ne, limit)
    if changed_versions is None:
        return None
    changed_seen = _changed(seen, snapshot.seen, snapshot.seen_keys, is_not, limit - len(changed_versions))
    if changed_seen is None:
        return None
    return changed_versions, changed_seen


def _changed(
    new: dict[str, Any], old: dict[str, Any], old_keys: list[str], differ: Callable[[Any, Any], bool], limit: int
) -> dict[str, Any] | None:
    """The entries of `new` not in `old` or different there (`differ`, then `!=`), or None when `new` lacks
    one of `old`'s keys, orders them otherwise, or differs in more than `limit` entries.

    The runtime keeps a map's order from one checkpoint to the next (new keys come last), so both maps are
    walked side by side in C (`map`, `compress`): a few nanoseconds per unchanged entry.
    """
    size = len(old_keys)
    keys = list(new)
    if len(keys) < size or keys[:size] != old_keys or len(keys) - size > limit:
        return None
    changed = {}
    for key in compress(keys, map(differ, new.values(), old.values())):
        value = new[key]
        if value != old[key]:  # `is_not` found a new object: an equal one is no change
            changed[key] = value
    if len(changed) + len(keys) - size > limit:
        return None
    for key in keys[size:]:
        changed[key] = new[key]
    return changed


def _keep_recent(cache: OrderedDict[K, V], key: K, value: V, limit: int) -> None:
    """Set `cache[key]` as its most recent entry, dropping the least recent one beyond `limit`."""
    cache[key] = value
    cache.move_to_end(key)
    if len(cache) > limit:
        cache.popitem(last=False)
