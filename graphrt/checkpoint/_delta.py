"""Append-only list values stored as deltas: each version keeps only its new tail, plus periodic snapshots.

A chat thread's `messages` list grows by a few items per step. Saving the whole list every step makes
a checkpoint cost O(history); here a version whose list starts with *the very same objects* as a
version this saver recently wrote or read is stored as just the appended tail and a reference to that
base version. Every `SNAPSHOT_EVERY` deltas (or whenever the new list is not an append) the whole list
is stored again, so reading a version follows at most that many links. A snapshot of a list that
extends a remembered version is not serialized again: it joins the JSON already written for that
version's snapshot and deltas with the new tail.

Identity, not equality, decides what is an append: comparing references is cheap, and the graph
runtime's reducers build the new list from the old one's items. Items are taken to be immutable once
saved, as messages are under `add_messages` (which replaces a message rather than editing it): an
item changed in place after it was saved is not noticed until the next snapshot.

Storage backends keep a `Blob` per (thread, namespace, channel, version) and hand this module a way
to fetch a chain of them; the encoding rules live only here.
"""

from __future__ import annotations

import operator
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from graphrt.checkpoint.serde.base import SerializerProtocol
from graphrt.checkpoint.serde.jsonplus import JsonPlusSerializer

__all__ = (
    "EMPTY",
    "MAX_CHAIN",
    "MISSING",
    "SNAPSHOT_EVERY",
    "Blob",
    "BrokenChainError",
    "ChainFetcher",
    "DeltaCodec",
    "Encoded",
    "Memo",
    "StreamKey",
)

SNAPSHOT_EVERY: Final = 64
"""A delta chain never grows longer than this: the next version is a snapshot."""

MAX_CHAIN: Final = 4096
"""Links a read follows before calling a chain broken: a guard against cycles, far above any chain
written with an earlier or later `SNAPSHOT_EVERY`."""

StreamKey = tuple[str, str, str]
"""(thread_id, checkpoint_ns, channel): the versions of one channel of one thread."""


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""What `DeltaCodec.decode` returns for a version that holds no value."""


class Blob(NamedTuple):
    """One stored channel version: a whole value, or the tail appended to the list at `base`.

    A named tuple rather than a frozen dataclass: one is built per changed value per step, and a
    tuple is several times cheaper to build; it is just as immutable (cached blobs are shared).
    """

    type: str
    """The serializer's type tag, or "empty" for a channel that has no value at this version."""
    data: bytes
    """The serialized value (or tail)."""
    base: str | None = None
    """The version this tail extends; None for a whole value."""
    depth: int = 0
    """How many deltas lie between this version and its snapshot (0 for a whole value)."""


EMPTY: Final = Blob("empty", b"")


class BrokenChainError(LookupError):
    """A delta's base version is gone from storage, so its value cannot be rebuilt."""

    def __init__(self, key: StreamKey, version: str, base: str) -> None:
        self.key = key
        thread_id, checkpoint_ns, channel = key
        super().__init__(
            f"Cannot read channel '{channel}' at version {version!r} of thread '{thread_id}'"
            f"{f' (namespace {checkpoint_ns!r})' if checkpoint_ns else ''}: its base version {base!r} "
            "is missing from storage. The thread's storage was changed outside graphrt; delete the "
            "thread or restore the missing rows."
        )


ChainFetcher = Callable[[str, Collection[str]], list[tuple[str, Blob]]]
"""fetch(version, stop_at) -> [(version, blob), ...] from `version` back along `base` links.

Stops after the first blob that is a whole value, whose base is in `stop_at`, or whose base is not
stored. Returns [] if `version` itself is not stored.
"""

Memo = dict[tuple[StreamKey, str], tuple[tuple[Any, ...], int]]
"""(stream, version) → (items, length): a version's list is items[:length] (chains only append)."""


@dataclass(frozen=True, slots=True)
class _Known:
    """A list version this saver wrote or read: its items (by reference) and its chain depth."""

    items: tuple[Any, ...]
    depth: int
    parts: tuple[bytes, ...] | None = None
    """JSON arrays written by `JsonPlusSerializer` that hold `items` between them, in order (the
    version's snapshot and deltas), when known: joined, they are the version's snapshot."""


@dataclass(slots=True)
class _Stream:
    """The versions of one stream remembered, kept apart by whose objects they hold.

    `written` holds the caller's own items (from `put`): fine for spotting an append, but never
    handed out by a read, since the caller may still change them. `read` holds items this codec
    decoded itself, which reads share (each gets a fresh list of them).
    """

    written: OrderedDict[str, _Known] = field(default_factory=OrderedDict)
    read: OrderedDict[str, _Known] = field(default_factory=OrderedDict)
    whole: tuple[list[Any], tuple[Any, ...]] | None = None
    """The list last encoded whole, and decoded copies of its items, until `remember` files them under
    its version in `read`."""
    pending: tuple[list[Any], tuple[bytes, ...]] | None = None
    """The list last encoded and its `_Known.parts`, until `remember` files them under its version."""


def _is_prefix(items: tuple[Any, ...], value: list[Any]) -> bool:
    """Whether `value` starts with the very objects `items` (and has at least one)."""
    n = len(items)
    # Cheap rejects first (ends, then whole prefix): the full scan is one pointer compare per item.
    return (
        0 < n <= len(value)
        and items[-1] is value[n - 1]
        and items[0] is value[0]
        and all(map(operator.is_, items, value))
    )


def _is_array(type_: str, data: bytes) -> bool:
    """Whether `JsonPlusSerializer` wrote `data` as a plain JSON array (not, say, a tagged value)."""
    return type_ == "json" and data[:1] == b"[" and data[-1:] == b"]"


def _join_arrays(parts: tuple[bytes, ...]) -> bytes:
    """One JSON array of the items of several: `[1,2]` and `[3]` give `[1,2,3]`."""
    return b"[" + b",".join([memoryview(part)[1:-1] for part in parts if len(part) > 2]) + b"]"


_MAX_REUSED_ITEMS: Final = 64
"""Lists longer than this are not looked up in `Encoded` (a write holds a step's new items, not a history)."""


class Encoded:
    """What one put has serialized already, by identity, so each value is serialized once per step.

    A step's writes and the checkpoint after them hold the very same objects: a task's returned list of
    messages is the tail appended to the channel's list, a value written to a last-value channel is the
    channel's value. Kept only while one put is prepared (no code runs in between that could change a
    value), and holding the values, so their ids stay theirs.
    """

    __slots__ = ("_items", "_objects")

    def __init__(self) -> None:
        self._items: dict[tuple[int, ...], tuple[list[Any], str, bytes]] = {}
        self._objects: dict[int, tuple[Any, str, bytes]] = {}

    def keep(self, value: Any, encoded: tuple[str, bytes]) -> None:
        """Note that `value` serializes to `encoded`."""
        if type(value) is list:
            if 0 < len(value) <= _MAX_REUSED_ITEMS:
                self._items[tuple(map(id, value))] = (value, *encoded)
        else:
            self._objects[id(value)] = (value, *encoded)

    def find(self, value: Any) -> tuple[str, bytes] | None:
        """What `value` serializes to, if a list of the very same items or the very same object was kept."""
        if type(value) is list:
            if not self._items or not 0 < len(value) <= _MAX_REUSED_ITEMS:
                return None
            hit = self._items.get(tuple(map(id, value)))
        else:
            hit = self._objects.get(id(value))
        return None if hit is None else (hit[1], hit[2])


SCALAR_KINDS: Final = frozenset({int, bool, str, type(None)})
"""The types of the values `DeltaCodec.scalars` holds (strings only up to 256 characters): looking up any value
of these types there is safe, and a miss costs one dict lookup."""


class DeltaCodec:
    """Turns channel values into `Blob`s and back, remembering recent lists to spot appends.

    One per saver. Per recently used stream it remembers the last few list versions written and
    read (by reference, not by copy) in a bounded LRU; it is only a speed-up, and storage alone
    always suffices to read a value back. Thread-safe.

    A read returns a fresh list, so appending to or reordering it cannot reach the saver; the items
    in it are shared with later reads of the same version, so change an item by replacing it in
    the list, not in place.
    """

    def __init__(
        self,
        serde: SerializerProtocol,
        *,
        snapshot_every: int | None = None,
        max_streams: int = 512,
        versions_per_stream: int = 2,
    ) -> None:
        self.serde = serde
        # Read at construction, not definition, so tests can shorten chains by patching the module.
        self.snapshot_every = snapshot_every or SNAPSHOT_EVERY
        self._max_streams = max_streams
        self._per_stream = versions_per_stream
        self._streams: OrderedDict[StreamKey, _Stream] = OrderedDict()
        self.scalars: dict[tuple[type, Any], Blob] = {}
        """(type, value) -> the blob of a small immutable scalar serialized before (`_scalar`); read-only for
        callers, which look one up inline on their hot paths (any value whose type is in `SCALAR_KINDS`)."""
        self._lock = threading.Lock()
        # Whether the serializer writes lists as plain JSON arrays, which join into one (`_Known.parts`).
        self._joins = getattr(type(serde), "dumps_typed", None) is JsonPlusSerializer.dumps_typed

    # -- writing ----------------------------------------------------------------------------------

    def max_depth_for(self, value: Any) -> int:
        """`max_depth` for a stored value (non-lists are never deltas)."""
        return self.max_depth(len(value) if type(value) is list else 0)

    def max_depth(self, size: int) -> int:
        """How many deltas a list of `size` items may chain before a snapshot.

        Growing with the list keeps the snapshot cost per appended item constant (a snapshot re-encodes
        the whole list, and so does the first read of it): at most one snapshot per `size // 8` appends.
        Never more than half of `MAX_CHAIN`, the links a read follows: a longer chain would read as broken.
        """
        return min(max(self.snapshot_every, size // 8), MAX_CHAIN // 2)

    def encode(self, key: StreamKey, value: Any, encoded: Encoded | None = None) -> Blob:
        """The blob to store for `value`: a delta on a remembered version when it appends to one.

        `encoded`: what the same put serialized already (its writes), reused instead of serializing again.
        """
        kind = type(value)
        if kind is int or kind is bool or value is None or (kind is str and len(value) <= 256):
            hit = self.scalars.get((kind, value))  # the common step writes a counter or a flag: one lookup
            return hit if hit is not None else self._scalar(kind, value)
        if kind is list:
            base = self._find_base(key, value)
            if base is not None:
                base_version, known = base
                room = known.depth + 1 < self.max_depth(len(value))
                if room or known.parts is not None:
                    tail = value[len(known.items) :]
                    found = encoded.find(tail) if encoded is not None else None
                    type_, data = found if found is not None else self.serde.dumps_typed(tail)
                    parts = (*known.parts, data) if known.parts is not None and _is_array(type_, data) else None
                    if room:
                        self._hold(key, value, parts)
                        return Blob(type_, data, base_version, known.depth + 1)
                    if parts is not None:
                        # The chain is full: a snapshot, made of the JSON written for the list already.
                        blob = Blob(type_, _join_arrays(parts))
                        self._hold(key, value, (blob.data,))
                        self._keep_decoded(key, value)
                        return blob
            blob = self.snapshot(value, encoded)
            self._hold(key, value, (blob.data,) if self._joins and _is_array(blob.type, blob.data) else None)
            self._keep_decoded(key, value)
            return blob
        return self.snapshot(value, encoded)

    def _hold(self, key: StreamKey, value: list[Any], parts: tuple[bytes, ...] | None) -> None:
        """Keep the JSON of the list just encoded for `remember`, which files it once the list is stored."""
        with self._lock:
            stream = self._streams.get(key) if parts is None else self._stream(key)
            if stream is not None:
                stream.pending = None if parts is None else (value, parts)

    def _keep_decoded(self, key: StreamKey, value: list[Any]) -> None:
        """A list stored whole that extends a version this codec decoded: prepare decoded items for it.

        Without them the next read of the list (a chat's next turn) would decode every item of the
        snapshot again; with them it decodes nothing. Only the items added since the decoded version
        are copied (through the serializer, as a read would), which is what the reads of the deltas
        they replace would have decoded.
        """
        with self._lock:
            stream = self._streams.get(key)
            if stream is None:
                return
            stream.whole = None
            reads = [known.items for known in stream.read.values()]
        prefix = max((items for items in reads if _is_prefix(items, value)), key=len, default=None)
        if prefix is None:
            return
        tail = value[len(prefix) :]
        copies = self.serde.loads_typed(self.serde.dumps_typed(tail)) if tail else []
        if type(copies) is not list or len(copies) != len(tail):
            return  # a serializer that does not give lists back: reads decode the snapshot
        with self._lock:
            stream.whole = (value, (*prefix, *copies))

    def snapshot(self, value: Any, encoded: Encoded | None = None) -> Blob:
        """The blob storing `value` whole (reusing what `encoded` holds for it)."""
        kind = type(value)
        if kind is int or kind is bool or (kind is str and len(value) <= 256) or value is None:
            return self._scalar(kind, value)
        found = encoded.find(value) if encoded is not None else None
        type_, data = found if found is not None else self.serde.dumps_typed(value)
        return Blob(type_, data)

    def dumps(self, value: Any, encoded: Encoded | None = None) -> tuple[str, bytes]:
        """`serde.dumps_typed`, remembering small immutable scalars (and other values in `encoded`).

        A step's writes and the checkpoint after it hold the same values: an int written by a task is
        serialized once for its write and reused for its channel's blob (and by later steps); anything
        else, for the blob of the same put (`Encoded`).
        """
        kind = type(value)
        if kind is int or kind is bool or value is None or (kind is str and len(value) <= 256):
            blob = self.scalars.get((kind, value)) or self._scalar(kind, value)
            return blob.type, blob.data
        result = self.serde.dumps_typed(value)
        if encoded is not None:
            encoded.keep(value, result)
        return result

    def _scalar(self, kind: type, value: Any) -> Blob:
        """The whole-value blob of a small immutable scalar, serialized once and then shared."""
        key = (kind, value)
        hit = self.scalars.get(key)
        if hit is None:
            hit = Blob(*self.serde.dumps_typed(value))
            if len(self.scalars) >= 4096:
                self.scalars.clear()
            self.scalars[key] = hit
        return hit

    def _find_base(self, key: StreamKey, value: list[Any]) -> tuple[str, _Known] | None:
        """The remembered version `value` extends the most (its chain may be full)."""
        with self._lock:
            stream = self._streams.get(key)
            if stream is None:
                return None
            candidates = sorted(
                [*stream.written.items(), *stream.read.items()], key=lambda c: len(c[1].items), reverse=True
            )
        for version, known in candidates:
            if _is_prefix(known.items, value):
                # Falling back to a shorter base would keep chains short but make every tail longer.
                return version, known
        return None

    def remember(
        self,
        key: StreamKey,
        version: str,
        value: Any,
        depth: int,
        *,
        decoded: bool = False,
        parts: tuple[bytes, ...] | None = None,
    ) -> None:
        """Note that `version` of a stream holds `value` (call after the write committed).

        Args:
            key: The stream.
            version: Its version.
            value: The list (anything else is not remembered).
            depth: The stored chain depth of that version.
            decoded: The items were decoded by this codec, so reads may share them.
            parts: See `_Known.parts`; for a list this codec just encoded, what `encode` held for it.
        """
        if type(value) is not list:
            return
        with self._lock:
            stream = self._stream(key)
            if not decoded:
                pending, stream.pending = stream.pending, None
                if parts is None and pending is not None and pending[0] is value:
                    parts = pending[1]
            self._file(stream.read if decoded else stream.written, version, _Known(tuple(value), depth, parts))
            whole = stream.whole
            if whole is not None and not decoded and depth == 0 and whole[0] is value:
                # The snapshot `_keep_decoded` prepared was stored: its next read needs no decoding.
                self._file(stream.read, version, _Known(whole[1], 0, parts))
            stream.whole = None

    def _stream(self, key: StreamKey) -> _Stream:
        """The remembered versions of a stream, now the most recently used (call holding the lock)."""
        stream = self._streams.get(key)
        if stream is None:
            stream = self._streams[key] = _Stream()
            if len(self._streams) > self._max_streams:
                self._streams.popitem(last=False)
        else:
            self._streams.move_to_end(key)
        return stream

    def _file(self, versions: OrderedDict[str, _Known], version: str, known: _Known) -> None:
        versions[version] = known
        versions.move_to_end(version)
        if len(versions) > self._per_stream:
            versions.popitem(last=False)

    def knows(self, key: StreamKey, version: str) -> bool:
        """Whether a read of `version` of the stream is served from memory, without storage access."""
        with self._lock:
            stream = self._streams.get(key)
            return stream is not None and version in stream.read

    def forget(self, thread_ids: Collection[str] | None = None) -> None:
        """Drop what is remembered of these threads (all threads when None)."""
        with self._lock:
            if thread_ids is None:
                self._streams.clear()
                return
            for key in [k for k in self._streams if k[0] in thread_ids]:
                del self._streams[key]

    # -- reading ----------------------------------------------------------------------------------

    def decode(self, key: StreamKey, version: str, fetch: ChainFetcher, memo: Memo | None = None) -> Any:
        """The value of a stream at `version` (a fresh list for lists), or MISSING.

        Args:
            key: The stream.
            version: The version to read.
            fetch: Reads the chain of blobs from storage.
            memo: Shared by the reads of one `list` call, so walking a thread's history decodes
                each chain once instead of once per checkpoint.
        """
        if memo is not None and (hit := memo.get((key, version))) is not None:
            return list(hit[0][: hit[1]])
        with self._lock:
            stream = self._streams.get(key)
            known = dict(stream.read) if stream else {}
        if (found := known.get(version)) is not None:
            return list(found.items)
        chain = fetch(version, known.keys())
        if not chain:
            return MISSING
        last_version, last = chain[-1]
        if last.base is None:
            if last.type == "empty":
                return MISSING
            value = self.serde.loads_typed((last.type, last.data))
            if len(chain) == 1 and type(value) is not list:
                return value
            start = list(value)
            parts: tuple[bytes, ...] | None = (last.data,) if self._joins and _is_array(last.type, last.data) else None
            chain = chain[:-1]
        elif last.base in known:
            start = list(known[last.base].items)
            parts = known[last.base].parts
        else:
            raise BrokenChainError(key, last_version, last.base)
        lengths = [len(start)]
        for _, blob in reversed(chain):
            start.extend(self.serde.loads_typed((blob.type, blob.data)))
            lengths.append(len(start))
            if parts is not None:
                parts = (*parts, blob.data) if _is_array(blob.type, blob.data) else None
        items = tuple(start)
        self.remember(key, version, start, chain[0][1].depth if chain else 0, decoded=True, parts=parts)
        if memo is not None:
            versions_oldest_first = [last_version] if last.base is None else []
            versions_oldest_first += [v for v, _ in reversed(chain)]
            offset = len(lengths) - len(versions_oldest_first)
            for i, v in enumerate(versions_oldest_first):
                memo[(key, v)] = (items, lengths[i + offset])
        return start
