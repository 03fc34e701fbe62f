"""The storage core: every graphrt saver's algorithm, written once over the primitives of `_primitives`.

Append-only deltas with snapshots (`_delta`), guarded puts (a write applies only while the thread's
head is the one the run saw and, when the run claimed the thread, while its lease is still the
run's), exactly-once task writes, one transaction per step (`put_step`), prune/copy/delete, and
thread ownership (`claim_thread`, see `_ownership`). A backend subclasses `CoreSaver` and provides
`_read_tx()` and `_write_tx(thread_id)`; it never reimplements any of this.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, cast

from graphrt._log import log_checkpoint_saved
from graphrt.checkpoint._delta import MISSING, Blob, BrokenChainError, ChainFetcher, DeltaCodec, Memo, StreamKey
from graphrt.checkpoint._ownership import DEFAULT_LEASE_SECONDS, Claims, claim_options, held_owner
from graphrt.checkpoint._primitives import CheckpointRow, ListQuery, ReadTx, WriteTx
from graphrt.checkpoint.base._saver import BaseCheckpointSaver, check_prune_args
from graphrt.checkpoint.base._storage import (
    BlobWrite,
    PreparedPut,
    decode_metadata,
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

__all__ = ("CoreSaver", "TaskWrites")

TaskWrites = tuple[str, Sequence[tuple[str, Any]], str]
"""(task_id, [(channel, value), ...], task_path): one finished task's writes, for `put_step`."""


class CoreSaver(BaseCheckpointSaver[str]):
    """A saver whose algorithm lives here; subclasses supply transactions over their storage.

    Attributes:
        lease_seconds: How long a thread claim lives without renewal (None: storage that only this
            process can reach, whose claims never expire).
    """

    lease_seconds: float | None = DEFAULT_LEASE_SECONDS

    def __init__(self, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        self._codec = DeltaCodec(self.serde)
        self._claims = Claims(self)

    def _read_tx(self) -> AbstractContextManager[ReadTx]:
        """A consistent read-only view of the storage."""
        raise NotImplementedError

    def _write_tx(self, thread_id: str | None = None) -> AbstractContextManager[WriteTx]:
        """An atomic transaction, serialized with every other writer of `thread_id` (all, when None)."""
        raise NotImplementedError

    # -- ownership --------------------------------------------------------------------------------

    def claim_thread(self, config: RunnableConfig) -> AbstractContextManager[None]:
        """Hold `config`'s thread for a block: a second claim, in any process, is refused or waits.

        `config["configurable"]["multitask_strategy"]` chooses: "reject" (default) raises
        `ThreadConflictError` at once; "enqueue" waits up to `multitask_timeout` seconds. Re-entrant
        within one run context (nested runs on the held thread pass through).
        """
        thread_id, _ = config_thread(config)
        return self._claims.claim(thread_id, claim_options(config))

    def aclaim_thread(self, config: RunnableConfig) -> AbstractAsyncContextManager[None]:
        """Async twin of `claim_thread` (an "enqueue" wait sleeps on the event loop)."""
        thread_id, _ = config_thread(config)
        return cast(
            AbstractAsyncContextManager[None], self._claims.aclaim(thread_id, claim_options(config), self._offload)
        )

    def _check(self, tx: ReadTx, thread_id: str, checkpoint_ns: str, expected: str | None) -> None:
        """Refuse a guarded write: the head moved, or the run's claim on the thread was taken over."""
        found = tx.head(thread_id, checkpoint_ns)
        if found != expected:
            raise ThreadConflictError(thread_id, checkpoint_ns, expected=expected, found=found)
        owner = held_owner(self, thread_id)
        if owner is not None:
            lease = tx.lease(thread_id)
            if lease is None or lease.owner != owner:
                raise ThreadConflictError(thread_id, checkpoint_ns, expected=expected, found=found)

    # -- reading ----------------------------------------------------------------------------------

    def _fetcher(self, tx: ReadTx, stream: StreamKey, top: Blob | None) -> ChainFetcher:
        def fetch(version: str, stop_at: Collection[str]) -> list[tuple[str, Blob]]:
            if top is None:
                return tx.chain(stream, version, stop_at)
            if top.base is None or top.base in stop_at:
                return [(version, top)]
            return [(version, top), *tx.chain(stream, top.base, stop_at)]

        return fetch

    def _load(
        self, tx: ReadTx, row: CheckpointRow, config: RunnableConfig | None, memo: Memo | None
    ) -> CheckpointTuple:
        thread_id, checkpoint_ns = row.thread_id, row.checkpoint_ns
        data: dict[str, Any] = self.serde.loads_typed((row.type, row.checkpoint))
        versions = {ch: str(v) for ch, v in data.get("channel_versions", {}).items()}
        codec = self._codec
        wanted = [(ch, v) for ch, v in versions.items() if not codec.knows((thread_id, checkpoint_ns, ch), v)]
        tops = tx.blobs(thread_id, checkpoint_ns, wanted) if wanted else {}
        values: dict[str, Any] = {}
        for channel, version in versions.items():
            stream = (thread_id, checkpoint_ns, channel)
            value = codec.decode(stream, version, self._fetcher(tx, stream, tops.get((channel, version))), memo)
            if value is not MISSING:
                values[channel] = value
        data["channel_values"] = values
        key = (thread_id, checkpoint_ns, row.checkpoint_id)
        pending = sorted_pending_writes(self.serde, tx.writes(*key))
        metadata = decode_metadata(row.metadata)
        return make_tuple(key, cast(Checkpoint, data), metadata, row.parent_id, pending, config)

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint `config` points at (its newest if no `checkpoint_id`), or None."""
        thread_id, checkpoint_ns = config_thread(config)
        checkpoint_id = get_checkpoint_id(config)
        with self._read_tx() as tx:
            row = tx.checkpoint(thread_id, checkpoint_ns, str(checkpoint_id) if checkpoint_id else None)
            if row is None:
                return None
            return self._load(tx, row, config if checkpoint_id else None, None)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first (see `BaseCheckpointSaver.list`), read in one consistent view."""
        query = ListQuery(limit=None if filter else limit)
        if config is not None:
            thread_id, _ = config_thread(config)
            ns = config["configurable"].get("checkpoint_ns")
            query = ListQuery(thread_id, ns, get_checkpoint_id(config), None, query.limit)
        if before is not None and (before_id := get_checkpoint_id(before)):
            query = ListQuery(query.thread_id, query.checkpoint_ns, query.checkpoint_id, before_id, query.limit)
        out: builtins.list[CheckpointTuple] = []
        memo: Memo = {}
        with self._read_tx() as tx:
            for row in tx.checkpoints(query):
                if limit is not None and len(out) >= limit:
                    break
                if filter and not matches_filter(decode_metadata(row.metadata), filter):
                    continue
                out.append(self._load(tx, row, None, memo))
        return iter(out)

    def get_head_id(self, config: RunnableConfig) -> str | None:
        """The id of the namespace's newest checkpoint, without loading it."""
        thread_id, checkpoint_ns = config_thread(config)
        with self._read_tx() as tx:
            return tx.head(thread_id, checkpoint_ns)

    # -- writing ----------------------------------------------------------------------------------

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Save a checkpoint in one transaction; changed channels as blobs (appended lists as deltas)."""
        prepared = prepare_put(self._codec, config, checkpoint, metadata, new_versions)
        with self._write_tx(prepared.thread_id) as tx:
            depths = self._store(tx, prepared)
        self._remember(prepared, depths)
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
        """`put` if the namespace's newest checkpoint is `expected_head`, checked in the same transaction.

        Raises:
            ThreadConflictError: The newest checkpoint is another one, or this run's claim on the
                thread was taken over; nothing was saved.
        """
        return self.put_step(config, (), checkpoint, metadata, new_versions, expected_head=expected_head)

    def put_step(
        self,
        config: RunnableConfig,
        task_writes: Sequence[TaskWrites],
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        *,
        expected_head: str | None,
    ) -> RunnableConfig:
        """Save tasks' writes against `config`'s checkpoint and the checkpoint after them, in one transaction.

        graphrt only: a step's last finishing task and the checkpoint it completes cost one commit;
        both are guarded like `put_guarded`. Everything is serialized before storage is touched.

        Raises:
            ThreadConflictError: As `put_guarded`; nothing was saved.
        """
        # The writes first: a bad value is reported as the task's write, which is where it came from.
        batches = [prepare_writes(self._codec, config, w, task_id, path)[3] for task_id, w, path in task_writes]
        prepared = prepare_put(self._codec, config, checkpoint, metadata, new_versions)
        parent = config["configurable"].get("checkpoint_id")
        with self._write_tx(prepared.thread_id) as tx:
            self._check(tx, prepared.thread_id, prepared.checkpoint_ns, expected_head)
            for rows in batches:
                if rows:
                    tx.put_writes(prepared.thread_id, prepared.checkpoint_ns, str(parent), rows)
            depths = self._store(tx, prepared)
        self._remember(prepared, depths)
        return prepared.config

    def _remember(self, prepared: PreparedPut, depths: Sequence[int]) -> None:
        for item, depth in zip(prepared.blobs, depths, strict=True):
            if type(item.value) is list:  # only lists are remembered (to spot appends)
                stream = (prepared.thread_id, prepared.checkpoint_ns, item.channel)
                self._codec.remember(stream, item.version, item.value, depth)

    def _store(self, tx: WriteTx, p: PreparedPut) -> builtins.list[int]:
        """Insert a prepared checkpoint's blobs and row; returns each blob's stored chain depth."""
        thread_id, checkpoint_ns = p.thread_id, p.checkpoint_ns
        bases = [(item.channel, item.blob.base) for item in p.blobs if item.blob.base is not None]
        found = tx.blobs(thread_id, checkpoint_ns, bases) if bases else {}
        rows = [
            (item.channel, item.version, item.blob if item.blob.base is None else self._rebased(item, found))
            for item in p.blobs
        ]
        if rows and tx.insert_blobs(thread_id, checkpoint_ns, rows) != len(rows):
            # Some versions were stored already (a reused version number): overwrite those that differ.
            existing = tx.blobs(thread_id, checkpoint_ns, [(ch, v) for ch, v, _ in rows])
            for channel, version, blob in rows:
                old = existing.get((channel, version))
                if old is not None and old != blob:
                    stream = (thread_id, checkpoint_ns, channel)
                    for dependent in tx.dependents(stream, version):
                        self._rewrite_whole(tx, stream, dependent)
                    tx.set_blob(stream, version, blob)
        tx.put_checkpoint(
            CheckpointRow(thread_id, checkpoint_ns, p.checkpoint_id, p.parent_id, p.type, p.checkpoint, p.metadata)
        )
        log_checkpoint_saved(
            thread_id,
            checkpoint_ns,
            p.checkpoint_id,
            len(p.checkpoint) + len(p.metadata),
            [len(b.data) for _, _, b in rows],
        )
        return [blob.depth for _, _, blob in rows]

    def _rebased(self, item: BlobWrite, found: dict[tuple[str, str], Blob]) -> Blob:
        """The blob to store: a delta only while its base is still stored and its chain not full."""
        blob = item.blob
        if blob.base is None:
            return blob
        base = found.get((item.channel, blob.base))
        if base is None or blob.base == item.version or base.depth + 1 >= self._codec.max_depth_for(item.value):
            return self._codec.snapshot(item.value)
        return Blob(blob.type, blob.data, blob.base, base.depth + 1)

    def _rewrite_whole(self, tx: WriteTx, stream: StreamKey, version: str) -> None:
        """Store a delta version as a whole value, so it no longer needs the versions before it."""
        value = self._codec.decode(stream, version, lambda v, stop: tx.chain(stream, v, stop))
        tx.set_blob(stream, version, self._codec.snapshot(value))
        self._codec.remember(stream, version, value, 0, decoded=True)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Save a task's writes, committed before returning; a repeated ordinary write is ignored."""
        thread_id, checkpoint_ns, checkpoint_id, rows = prepare_writes(self._codec, config, writes, task_id, task_path)
        if rows:
            with self._write_tx(thread_id) as tx:
                tx.put_writes(thread_id, checkpoint_ns, checkpoint_id, rows)

    def put_writes_guarded(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """`put_writes` if `config`'s checkpoint is still the namespace's newest, in the same transaction.

        Raises:
            ThreadConflictError: Another checkpoint is newer, or the claim was lost; nothing was saved.
        """
        thread_id, checkpoint_ns, checkpoint_id, rows = prepare_writes(self._codec, config, writes, task_id, task_path)
        if rows:
            with self._write_tx(thread_id) as tx:
                self._check(tx, thread_id, checkpoint_ns, checkpoint_id)
                tx.put_writes(thread_id, checkpoint_ns, checkpoint_id, rows)

    # -- retention --------------------------------------------------------------------------------

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, write and value of a thread, in one transaction."""
        with self._write_tx(str(thread_id)) as tx:
            tx.delete_thread(str(thread_id))
        self._codec.forget({str(thread_id)})

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread's checkpoints, writes and values to another thread id, in one transaction.

        The target keeps what it had; rows with the same keys are replaced by the source's.
        """
        source, target = str(source_thread_id), str(target_thread_id)
        if source == target:
            return
        with self._write_tx(target) as tx:
            tx.copy_thread(source, target)
        self._codec.forget({target})

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Shrink threads: "keep_latest" keeps each namespace's newest checkpoint, "delete" removes all.

        A kept checkpoint keeps its pending writes and loses its (deleted) parent; list values stored
        as deltas are rewritten whole, since the versions they extended are deleted.
        """
        ids = check_prune_args(thread_ids, strategy)
        for thread_id in ids:
            with self._write_tx(thread_id) as tx:
                if strategy == "delete":
                    tx.delete_thread(thread_id)
                else:
                    self._keep_latest(tx, thread_id)
        if strategy == "delete" and ids:
            self._codec.forget(set(ids))

    def _keep_latest(self, tx: WriteTx, thread_id: str) -> None:
        for checkpoint_ns, head in tx.heads(thread_id).items():
            row = tx.checkpoint(thread_id, checkpoint_ns, head)
            if row is None:
                continue
            versions = self.serde.loads_typed((row.type, row.checkpoint)).get("channel_versions", {})
            keys = [(ch, str(v)) for ch, v in versions.items()]
            found = tx.blobs(thread_id, checkpoint_ns, keys)
            kept = set()
            for channel, version in keys:
                blob = found.get((channel, version))
                if blob is None:
                    continue
                if blob.base is not None:
                    try:
                        self._rewrite_whole(tx, (thread_id, checkpoint_ns, channel), version)
                    except BrokenChainError:
                        continue
                kept.add((channel, version))
            garbage = [k for k in tx.blob_keys(thread_id, checkpoint_ns) if k not in kept]
            tx.delete_blobs(thread_id, checkpoint_ns, garbage)
            tx.drop_history(thread_id, checkpoint_ns, head)

    def get_next_version(self, current: str | None, channel: None) -> str:
        """The next channel version: an increasing counter plus a random part unique to this fork."""
        return next_string_version(current)
