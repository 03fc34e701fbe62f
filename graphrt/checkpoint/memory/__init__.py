"""`InMemorySaver`: checkpoints in this process's memory, for tests, notebooks and short-lived runs."""

from __future__ import annotations

import builtins
import threading
from collections import defaultdict
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any

from graphrt._log import log_checkpoint_saved
from graphrt.checkpoint._delta import MAX_CHAIN, Blob, BrokenChainError, ChainFetcher, DeltaCodec, Memo, StreamKey
from graphrt.checkpoint.base._saver import BaseCheckpointSaver, check_prune_args
from graphrt.checkpoint.base._storage import (
    BlobWrite,
    PreparedPut,
    WriteRow,
    decode_metadata,
    load_checkpoint,
    make_tuple,
    matches_filter,
    prepare_put,
    prepare_writes,
    sorted_pending_writes,
)
from graphrt.checkpoint.base._types import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    config_thread,
    get_checkpoint_id,
    next_string_version,
)
from graphrt.checkpoint.serde.base import SerializerProtocol
from graphrt.config import RunnableConfig
from graphrt.errors import ThreadConflictError

__all__ = ("InMemorySaver", "MemorySaver")

_Record = tuple[tuple[str, bytes], bytes, str | None]
"""A saved checkpoint: (serialized checkpoint without values, metadata JSON, parent id)."""


class InMemorySaver(BaseCheckpointSaver[str]):
    """Checkpoints kept in memory, as serialized bytes: later changes to a saved state can't leak in.

    Same contract as the SQL savers, including graphrt's additions: `put_guarded` checks the head
    and inserts under one lock; list values that only grew are stored as deltas; a value the
    serializer can't encode fails `put` with `UnserializableValueError` and saves nothing. Usable
    as a (async) context manager, like LangGraph's.

    Example:
        >>> saver = InMemorySaver()
        >>> graph = builder.compile(checkpointer=saver)  # doctest: +SKIP
    """

    storage: defaultdict[str, dict[str, dict[str, _Record]]]
    """thread id → namespace → checkpoint id → record."""
    writes: defaultdict[tuple[str, str, str], dict[tuple[str, int], WriteRow]]
    """(thread id, namespace, checkpoint id) → (task id, idx) → write."""
    blobs: dict[tuple[str, str, str, str], Blob]
    """(thread id, namespace, channel, version) → stored value or delta."""

    def __init__(self, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        self.storage = defaultdict(dict)
        self.writes = defaultdict(dict)
        self.blobs = {}
        self._lock = threading.RLock()
        self._codec = DeltaCodec(self.serde)
        self._heads: dict[tuple[str, str], str] = {}
        """Newest checkpoint id per (thread, namespace), so finding it doesn't grow with history."""

    def get_head_id(self, config: RunnableConfig) -> str | None:
        """The id of the namespace's newest checkpoint, without loading it."""
        thread_id, checkpoint_ns = config_thread(config)
        with self._lock:
            return self._newest(thread_id, checkpoint_ns)

    def _newest(self, thread_id: str, checkpoint_ns: str) -> str | None:
        """The namespace's newest checkpoint id (call under the lock)."""
        head = self._heads.get((thread_id, checkpoint_ns))
        if head is None:
            checkpoints = self.storage.get(thread_id, {}).get(checkpoint_ns)
            if checkpoints:
                head = self._heads[(thread_id, checkpoint_ns)] = max(checkpoints)
        return head

    def __enter__(self) -> InMemorySaver:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def __aenter__(self) -> InMemorySaver:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    # -- reading ----------------------------------------------------------------------------------

    def _fetcher(self, thread_id: str, checkpoint_ns: str, channel: str) -> ChainFetcher:
        blobs = self.blobs

        def fetch(version: str, stop_at: Any) -> list[tuple[str, Blob]]:
            chain: list[tuple[str, Blob]] = []
            current: str | None = version
            while current is not None and (blob := blobs.get((thread_id, checkpoint_ns, channel, current))):
                chain.append((current, blob))
                current = blob.base
                if current in stop_at or len(chain) > MAX_CHAIN:
                    break
            return chain

        return fetch

    def _load(
        self, key: tuple[str, str, str], record: _Record, config: RunnableConfig | None, memo: Memo | None
    ) -> CheckpointTuple:
        thread_id, checkpoint_ns, _ = key
        checkpoint = load_checkpoint(
            self._codec, key, record[0], lambda ch: self._fetcher(thread_id, checkpoint_ns, ch), memo
        )
        rows = list(self.writes.get(key, {}).values())
        pending = sorted_pending_writes(self.serde, rows)
        return make_tuple(key, checkpoint, decode_metadata(record[1]), record[2], pending, config)

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint `config` points at (its newest if no `checkpoint_id`), or None."""
        thread_id, checkpoint_ns = config_thread(config)
        checkpoint_id = get_checkpoint_id(config)
        with self._lock:
            checkpoints = self.storage.get(thread_id, {}).get(checkpoint_ns)
            if not checkpoints:
                return None
            if checkpoint_id is None:
                checkpoint_id, config_out = self._newest(thread_id, checkpoint_ns) or "", None
            else:
                config_out = config
            if (record := checkpoints.get(checkpoint_id)) is None:
                return None
            return self._load((thread_id, checkpoint_ns, checkpoint_id), record, config_out, None)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first (see `BaseCheckpointSaver.list`); a snapshot taken at the call."""
        with self._lock:
            return iter(self._list(config, filter, before, limit))

    def _list(
        self,
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> builtins.list[CheckpointTuple]:
        if config is not None:
            thread_id, _ = config_thread(config)
            thread_ids = [thread_id] if thread_id in self.storage else []
            ns_wanted = config["configurable"].get("checkpoint_ns")
            id_wanted = get_checkpoint_id(config)
        else:
            thread_ids, ns_wanted, id_wanted = list(self.storage), None, None
        before_id = get_checkpoint_id(before) if before else None
        # Newest first across threads and namespaces too, as the SQL savers order by id.
        found = sorted(
            (
                (checkpoint_id, thread_id, checkpoint_ns)
                for thread_id in thread_ids
                for checkpoint_ns, checkpoints in self.storage[thread_id].items()
                if ns_wanted is None or checkpoint_ns == ns_wanted
                for checkpoint_id in checkpoints
                if not (id_wanted and checkpoint_id != id_wanted) and not (before_id and checkpoint_id >= before_id)
            ),
            reverse=True,
        )
        memo: Memo = {}
        out: list[CheckpointTuple] = []
        for checkpoint_id, thread_id, checkpoint_ns in found:
            if limit is not None and len(out) >= limit:
                break
            record = self.storage[thread_id][checkpoint_ns][checkpoint_id]
            if filter and not matches_filter(decode_metadata(record[1]), filter):
                continue
            out.append(self._load((thread_id, checkpoint_ns, checkpoint_id), record, None, memo))
        return out

    # -- writing ----------------------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Save a checkpoint; its changed channels are stored as blobs (appended lists as deltas)."""
        prepared = prepare_put(self._codec, config, checkpoint, metadata, new_versions)
        with self._lock:
            self._store(prepared)
        return prepared.config

    def put_guarded(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        *,
        expected_head: str | None,
    ) -> RunnableConfig:
        """`put` if the namespace's newest checkpoint is `expected_head`, checked under the same lock.

        Raises:
            ThreadConflictError: The newest checkpoint is another one; nothing was saved.
        """
        prepared = prepare_put(self._codec, config, checkpoint, metadata, new_versions)
        with self._lock:
            found = self._newest(prepared.thread_id, prepared.checkpoint_ns)
            if found != expected_head:
                raise ThreadConflictError(
                    prepared.thread_id, prepared.checkpoint_ns, expected=expected_head, found=found
                )
            self._store(prepared)
        return prepared.config

    def _store(self, prepared: PreparedPut) -> None:
        thread_id, checkpoint_ns = prepared.thread_id, prepared.checkpoint_ns
        remembered = []
        for item in prepared.blobs:
            blob = self._rebase(thread_id, checkpoint_ns, item)
            key = (thread_id, checkpoint_ns, item.channel, item.version)
            old = self.blobs.get(key)
            if old is not None and old != blob:
                self._materialise_dependents(thread_id, checkpoint_ns, item.channel, item.version)
            self.blobs[key] = blob
            remembered.append((item, blob.depth))
        head = self._newest(thread_id, checkpoint_ns)
        if head is None or prepared.checkpoint_id > head:
            self._heads[(thread_id, checkpoint_ns)] = prepared.checkpoint_id
        self.storage[thread_id].setdefault(checkpoint_ns, {})[prepared.checkpoint_id] = (
            (prepared.type, prepared.checkpoint),
            prepared.metadata,
            prepared.parent_id,
        )
        for item, depth in remembered:
            self._codec.remember((thread_id, checkpoint_ns, item.channel), item.version, item.value, depth)
        log_checkpoint_saved(
            thread_id,
            checkpoint_ns,
            prepared.checkpoint_id,
            len(prepared.checkpoint) + len(prepared.metadata),
            [len(self.blobs[(thread_id, checkpoint_ns, item.channel, item.version)].data) for item, _ in remembered],
        )

    def _rebase(self, thread_id: str, checkpoint_ns: str, item: BlobWrite) -> Blob:
        """The blob to store: a delta only while its base is still stored and the chain is short."""
        blob = item.blob
        if blob.base is None:
            return blob
        base = self.blobs.get((thread_id, checkpoint_ns, item.channel, blob.base))
        if base is None or blob.base == item.version or base.depth + 1 >= self._codec.max_depth_for(item.value):
            return self._codec.snapshot(item.value)
        return Blob(blob.type, blob.data, blob.base, base.depth + 1)

    def _materialise_dependents(self, thread_id: str, checkpoint_ns: str, channel: str, version: str) -> None:
        """Turn deltas based on `version` into snapshots, before `version` is overwritten."""
        stream: StreamKey = (thread_id, checkpoint_ns, channel)
        dependents = [
            key for key, blob in self.blobs.items() if blob.base == version and key[:3] == stream and key[3] != version
        ]
        for key in dependents:
            value = self._codec.decode(stream, key[3], self._fetcher(*stream))
            self.blobs[key] = self._codec.snapshot(value)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Save a task's writes; a repeated ordinary write is ignored, a special-channel one replaces."""
        self._put_writes(config, writes, task_id, task_path, guarded=False)

    def put_writes_guarded(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """`put_writes` if `config`'s checkpoint is still the namespace's newest, checked under the lock.

        Raises:
            ThreadConflictError: Another checkpoint is newer; nothing was saved.
        """
        self._put_writes(config, writes, task_id, task_path, guarded=True)

    def _put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str, *, guarded: bool
    ) -> None:
        thread_id, checkpoint_ns, checkpoint_id, rows = prepare_writes(self._codec, config, writes, task_id, task_path)
        with self._lock:
            if guarded and (found := self._newest(thread_id, checkpoint_ns)) != checkpoint_id:
                raise ThreadConflictError(thread_id, checkpoint_ns, expected=checkpoint_id, found=found)
            saved = self.writes[(thread_id, checkpoint_ns, checkpoint_id)]
            for row in rows:
                key = (row.task_id, row.idx)
                if row.replaces or key not in saved:
                    saved[key] = row

    # -- retention --------------------------------------------------------------------------------

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, write and value of a thread."""
        thread_id = str(thread_id)
        with self._lock:
            self.storage.pop(thread_id, None)
            self._heads = {k: v for k, v in self._heads.items() if k[0] != thread_id}
            for wkey in [k for k in self.writes if k[0] == thread_id]:
                del self.writes[wkey]
            for bkey in [k for k in self.blobs if k[0] == thread_id]:
                del self.blobs[bkey]
            self._codec.forget({thread_id})

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread's checkpoints, writes and values to another thread id.

        The target keeps what it had; entries with the same keys are replaced by the source's.
        """
        source, target = str(source_thread_id), str(target_thread_id)
        if source == target:
            return
        with self._lock:
            for checkpoint_ns, checkpoints in self.storage.get(source, {}).items():
                self.storage[target].setdefault(checkpoint_ns, {}).update(checkpoints)
            for (t, ns, cid), rows in list(self.writes.items()):
                if t == source:
                    self.writes[(target, ns, cid)].update(rows)
            for (t, ns, ch, ver), blob in list(self.blobs.items()):
                if t == source:
                    self.blobs[(target, ns, ch, ver)] = blob
            self._codec.forget({target})

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Shrink threads: "keep_latest" keeps each namespace's newest checkpoint, "delete" removes all.

        A kept checkpoint keeps its pending writes; its parent is gone, so it gets none; list values
        stored as deltas are rewritten whole, since the versions they extended are deleted.
        """
        ids = check_prune_args(thread_ids, strategy)
        with self._lock:
            for thread_id in ids:
                if strategy == "delete":
                    self.delete_thread(thread_id)
                else:
                    self._keep_latest(thread_id)

    def _keep_latest(self, thread_id: str) -> None:
        for checkpoint_ns, checkpoints in self.storage.get(thread_id, {}).items():
            if not checkpoints:
                continue
            head = max(checkpoints)
            record, metadata, _ = checkpoints[head]
            data: dict[str, Any] = self.serde.loads_typed(record)
            kept: dict[tuple[str, str, str, str], Blob] = {}
            for channel, version in data.get("channel_versions", {}).items():
                key = (thread_id, checkpoint_ns, channel, str(version))
                blob = self.blobs.get(key)
                if blob is not None and blob.base is not None:
                    try:
                        value = self._codec.decode(key[:3], key[3], self._fetcher(*key[:3]))
                    except BrokenChainError:
                        continue
                    blob = self._codec.snapshot(value)
                    self._codec.remember(key[:3], key[3], value, 0, decoded=True)
                if blob is not None:
                    kept[key] = blob
            for bkey in [k for k in self.blobs if k[0] == thread_id and k[1] == checkpoint_ns]:
                del self.blobs[bkey]
            self.blobs.update(kept)
            for cid in [c for c in checkpoints if c != head]:
                del checkpoints[cid]
                self._heads.pop((thread_id, checkpoint_ns), None)
                self.writes.pop((thread_id, checkpoint_ns, cid), None)
            checkpoints[head] = (record, metadata, None)

    def get_next_version(self, current: str | None, channel: None) -> str:
        """The next channel version: an increasing counter plus a random part unique to this fork."""
        return next_string_version(current)


MemorySaver = InMemorySaver
"""LangGraph's older name for `InMemorySaver`."""
