"""What every graphrt saver does around its storage: encode a put, encode writes, build tuples."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple, cast

import orjson

from graphrt.checkpoint._delta import EMPTY, MISSING, SCALAR_KINDS, Blob, ChainFetcher, DeltaCodec, Encoded, Memo
from graphrt.checkpoint.base._saver import UnsavableValueError, UnserializableValueError
from graphrt.checkpoint.base._types import (
    EXCLUDED_METADATA_KEYS,
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    MissingConfigKeyError,
    PendingWrite,
    config_thread,
    get_checkpoint_metadata,
    writes_sort_key,
)
from graphrt.checkpoint.serde._codecs import MARK
from graphrt.checkpoint.serde._walk import exact
from graphrt.checkpoint.serde.base import SerializationError, SerializerProtocol
from graphrt.checkpoint.serde.jsonplus import JsonPlusSerializer
from graphrt.config import RunnableConfig

if TYPE_CHECKING:
    from graphrt.checkpoint._record import RecordDelta, Records

__all__ = (
    "HeldRecord",
    "PreparedPut",
    "WriteRow",
    "checkpoint_config",
    "decode_metadata",
    "encode_metadata",
    "load_checkpoint",
    "make_tuple",
    "matches_filter",
    "prepare_put",
    "prepare_writes",
    "sorted_pending_writes",
)


class PreparedPut(NamedTuple):
    """A checkpoint, fully serialized before any storage is touched, so a bad value writes nothing.

    A named tuple: one is built per step, several times cheaper than a frozen dataclass and as immutable.
    """

    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    parent_id: str | None
    type: str
    checkpoint: bytes
    """The checkpoint without its channel values (serialized, or a `HeldRecord`)."""
    metadata: bytes
    blobs: Sequence[tuple[str, str, Blob]]
    """(channel, version, blob) of each changed channel: the rows `WriteTx.insert_blobs` takes."""
    lists: Sequence[tuple[int, list[Any]]]
    """(index in `blobs`, value) of the changed channels holding a list, the only values stored as deltas
    and remembered (to spot the next step's appends)."""
    delta: RecordDelta | None = None
    """Set when `checkpoint` is a delta record (`_record`): stored only once its snapshot is confirmed."""

    @property
    def config(self) -> RunnableConfig:
        return checkpoint_config(self.thread_id, self.checkpoint_ns, self.checkpoint_id)


class HeldRecord(bytes):
    """A checkpoint's record kept as the runtime's own dicts, not serialized (`prepare_put(hold=True)`).

    An empty `bytes`, so it travels where a record's bytes do (`PreparedPut.checkpoint`, a stored row's
    `checkpoint`); a storage that keeps these serializes `record` when a read asks for the row
    (`MemoryStorage`). Holding is safe because the runtime never changes a map it handed to a saver
    (`pregel._algo.create_checkpoint` copies them, `seen_snapshot` copies a node's seen versions anew
    when they change), and versions are immutable (strings).
    """

    TYPE: Final = "graphrt-held"
    """The `type` of a row whose record is held (replaced by the serializer's when the row is read)."""
    record: dict[str, Any]

    @classmethod
    def of(cls, record: dict[str, Any]) -> HeldRecord:
        held = cls()
        held.record = record
        return held


class WriteRow(NamedTuple):
    """One pending write, serialized: keyed by (task_id, idx) within its checkpoint."""

    task_id: str
    idx: int
    channel: str
    type: str
    data: bytes
    task_path: str

    @property
    def replaces(self) -> bool:
        """Special channels replace an earlier write with the same key; others never do."""
        return self.idx < 0


def checkpoint_config(thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> RunnableConfig:
    """The config that points at one checkpoint."""
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": checkpoint_ns,
            "checkpoint_id": checkpoint_id,
        }
    }


def encode_metadata(metadata: Mapping[str, Any]) -> bytes:
    """Metadata as JSON, the same on every backend (and queryable in SQL)."""
    try:
        return exact(orjson.dumps(metadata))
    except TypeError as exc:
        raise TypeError(
            f"Cannot save checkpoint metadata: {exc}. Metadata values must be JSON: str, int, float, "
            "bool, None, list or dict."
        ) from None


def decode_metadata(data: bytes | str | None) -> CheckpointMetadata:
    """Metadata saved by `encode_metadata`."""
    return cast(CheckpointMetadata, orjson.loads(data) if data else {})


def matches_filter(metadata: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    """Whether every filter key is in the metadata with an equal value."""
    return not filter or all(k in metadata and metadata[k] == v for k, v in filter.items())


def encode_record(serde: SerializerProtocol, rest: dict[str, Any]) -> tuple[str, bytes]:
    """A checkpoint's record (ids, versions, versions seen): JSON-native, so one orjson call.

    The tagging serializer would walk every version in Python first; for graphrt's own serializer the
    bytes are the same whenever no key is its tag marker. Searching the bytes for the quoted marker rules
    that out in one C call (any occurrence, even inside a string, takes the serializer's path).
    """
    if type(serde) is JsonPlusSerializer:
        try:
            data = orjson.dumps(rest)
        except TypeError:
            pass  # a non-JSON version type: let the serializer tag it
        else:
            if _QUOTED_MARK not in data:
                return "json", exact(data)
    return serde.dumps_typed(rest)


_QUOTED_MARK: Final = f'"{MARK}"'.encode()


def prepare_put(
    codec: DeltaCodec,
    config: RunnableConfig,
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    new_versions: ChannelVersions,
    encoded: Encoded | None = None,
    records: Records | None = None,
    *,
    hold: bool = False,
) -> PreparedPut:
    """Serialize a checkpoint: the changed channels as blobs, the rest as one record.

    `encoded`: what the same put serialized already (its writes, see `prepare_writes`): reused, not redone.
    `records`: the saver's snapshot records, when it stores records as deltas on them (`_record`).
    `hold`: keep the record as it is (`HeldRecord`), for a storage that serializes it only when read; only
    for the runtime's own checkpoints (it never changes their maps afterwards).

    Raises:
        UnserializableValueError: A changed channel's value cannot be serialized.
    """
    thread_id, checkpoint_ns = config_thread(config)
    rest: dict[str, Any] = dict(checkpoint)
    values = rest.pop("channel_values")
    # Plain tuples, not a named tuple per channel: a wide state changes dozens of channels per step.
    blobs: list[tuple[str, str, Blob]] = []
    lists: list[tuple[int, list[Any]]] = []
    encode, scalars = codec.encode, codec.scalars
    for channel, version in new_versions.items():
        value = values.get(channel, MISSING)
        # `codec.encode` inline for a scalar serialized before (usually by this step's write)
        kind = type(value)
        hit = scalars.get((kind, value)) if kind in SCALAR_KINDS else None
        if hit is not None:
            blob = hit
        elif value is MISSING:
            blob = EMPTY
        else:
            try:
                blob = encode((thread_id, checkpoint_ns, channel), value, encoded)
            except SerializationError as exc:
                raise _named_error(codec, channel, value, exc) from None
            except (ValueError, RecursionError) as exc:
                raise _named_error(codec, channel, value, exc) from None
            if type(value) is list:
                lists.append((len(blobs), value))
        blobs.append((channel, version if type(version) is str else str(version), blob))
    delta = None
    data: bytes
    if hold:
        type_, data = HeldRecord.TYPE, HeldRecord.of(rest)
    elif records is None:
        type_, data = encode_record(codec.serde, rest)
    else:
        type_, data, delta = records.encode(codec.serde, thread_id, checkpoint_ns, checkpoint["id"], rest)
    fields = (
        thread_id,
        checkpoint_ns,
        checkpoint["id"],
        config["configurable"].get("checkpoint_id"),
        type_,
        data,
        _metadata_bytes(config, metadata),
        blobs,
        lists,
        delta,
    )
    return new_row(PreparedPut, fields)


def _metadata_bytes(config: RunnableConfig, metadata: CheckpointMetadata) -> bytes:
    """`encode_metadata(get_checkpoint_metadata(config, metadata))`, skipping the merge when it changes nothing.

    A run's steps after the first save against the previous checkpoint's config, which holds only keys
    that are never copied, and the loop's metadata holds no NUL (orjson writes one as an escape).
    """
    if not config.get("metadata") and EXCLUDED_METADATA_KEYS.issuperset(config["configurable"]):
        data = encode_metadata(metadata)
        if _ESCAPED_NUL not in data:
            return data
    return encode_metadata(get_checkpoint_metadata(config, metadata))


_ESCAPED_NUL: Final = b"\\u0000"


def _named_error(codec: DeltaCodec, channel: str, value: Any, exc: Exception) -> Exception:
    """The error for a channel's value; for the run's input (`__start__`), naming the input key that held it."""
    if channel == "__start__" and isinstance(value, Mapping):
        for key, item in value.items():
            try:
                codec.dumps({key: item})  # at the same depth as in the whole input
            except SerializationError as inner:
                return UnserializableValueError(
                    channel, inner.type_name, path=inner.path, reason=getattr(inner, "reason", ""), input_key=str(key)
                )
            except (ValueError, RecursionError) as inner:
                return UnsavableValueError(channel, str(inner), input_key=str(key))
    if isinstance(exc, SerializationError):
        return UnserializableValueError.from_error(channel, exc)
    return UnsavableValueError(channel, str(exc))


def prepare_writes(
    codec: DeltaCodec,
    config: RunnableConfig,
    writes: Sequence[tuple[str, Any]],
    task_id: str,
    task_path: str,
    encoded: Encoded | None = None,
) -> tuple[str, str, str, list[WriteRow]]:
    """(thread_id, checkpoint_ns, checkpoint_id, rows) for a task's writes, all serialized first.

    `encoded` collects what was serialized, for the checkpoint saved in the same put (`prepare_put`).
    """
    thread_id, checkpoint_ns = config_thread(config)
    checkpoint_id = config["configurable"].get("checkpoint_id")
    if checkpoint_id is None:
        raise MissingConfigKeyError("checkpoint_id")
    rows = []
    dumps, special, scalars = codec.dumps, WRITES_IDX_MAP.get, codec.scalars
    for idx, (channel, value) in enumerate(writes):
        # `codec.dumps` inline for a scalar serialized before (a wide state writes dozens per step)
        kind = type(value)
        hit = scalars.get((kind, value)) if kind in SCALAR_KINDS else None
        if hit is not None:
            rows.append(new_row(WriteRow, (task_id, special(channel, idx), channel, hit[0], hit[1], task_path)))
            continue
        try:
            type_, data = dumps(value, encoded)
        except SerializationError as exc:
            raise UnserializableValueError.from_error(channel, exc, task_id=task_id) from None
        except (ValueError, RecursionError) as exc:
            raise UnsavableValueError(channel, str(exc), task_id=task_id) from None
        rows.append(new_row(WriteRow, (task_id, special(channel, idx), channel, type_, data, task_path)))
    return thread_id, checkpoint_ns, str(checkpoint_id), rows


new_row: Final = tuple.__new__
"""`new_row(WriteRow, fields)` builds a named tuple from a plain tuple in C: `WriteRow(...)` runs a Python
`__new__`, about twice as slow, and a wide state writes dozens of rows per step (also used per step for
`CheckpointRow` and `PreparedPut`)."""


def sorted_pending_writes(serde: SerializerProtocol, rows: Sequence[WriteRow]) -> list[PendingWrite]:
    """Pending writes in the order a step applies them: (task_path, task_id, idx)."""
    ordered = sorted(rows, key=lambda r: writes_sort_key(r.task_path, r.task_id, r.idx))
    return [(r.task_id, r.channel, serde.loads_typed((r.type, r.data))) for r in ordered]


def load_checkpoint(
    codec: DeltaCodec,
    key: tuple[str, str, str],
    record: tuple[str, bytes],
    fetcher_for: Callable[[str], ChainFetcher],
    memo: Memo | None = None,
) -> Checkpoint:
    """A checkpoint rebuilt from its record and the blobs of its channel versions.

    Args:
        codec: Decodes the blobs.
        key: (thread_id, checkpoint_ns, checkpoint_id).
        record: The serialized checkpoint without values.
        fetcher_for: Gives the chain fetcher of a channel.
        memo: Shared across one `list` call.
    """
    thread_id, checkpoint_ns, _ = key
    data: dict[str, Any] = codec.serde.loads_typed(record)
    values: dict[str, Any] = {}
    for channel, version in data.get("channel_versions", {}).items():
        value = codec.decode((thread_id, checkpoint_ns, channel), str(version), fetcher_for(channel), memo)
        if value is not MISSING:
            values[channel] = value
    data["channel_values"] = values
    return cast(Checkpoint, data)


def make_tuple(
    key: tuple[str, str, str],
    checkpoint: Checkpoint,
    metadata: CheckpointMetadata,
    parent_id: str | None,
    pending: list[PendingWrite],
    config: RunnableConfig | None = None,
) -> CheckpointTuple:
    """The `CheckpointTuple` of a loaded checkpoint.

    `config` is returned as given when the caller asked for this checkpoint by id, as LangGraph does.
    """
    thread_id, checkpoint_ns, checkpoint_id = key
    return CheckpointTuple(
        config=config or checkpoint_config(thread_id, checkpoint_ns, checkpoint_id),
        checkpoint=checkpoint,
        metadata=metadata,
        parent_config=checkpoint_config(thread_id, checkpoint_ns, parent_id) if parent_id else None,
        pending_writes=pending,
    )
