"""The storage core: every graphrt saver's algorithm, written once over the primitives of `_primitives`.

Append-only deltas with snapshots (`_delta`), guarded puts (a write applies only while the thread's
head is the one the run saw and, when the run claimed the thread, while its lease is still the
run's), exactly-once task writes, one transaction per step (`put_step`), prune/copy/delete, and
thread ownership (`claim_thread`, see `_ownership`). A backend subclasses `CoreSaver` and provides
`_read_tx()` and `_write_tx(thread_id)`; it never reimplements any of this.

Each operation is written once, as generators over the primitives (`_drive`): the sync methods run it
on `_read_tx`/`_write_tx`. A backend with an async client may also provide `_aread_tx()` and
`_awrite_tx(thread_id)`: the `a*` methods then run the same operation on those, natively on the event
loop; otherwise they run the sync method in a worker thread (`BaseCheckpointSaver._offload`). A backend
with only the async transactions gets working sync methods too (`_drive.blocking`).
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from graphrt._log import checkpoint_logger, log_checkpoint_saved
from graphrt.checkpoint._delta import MISSING, Blob, BrokenChainError, DeltaCodec, Encoded, Memo, StreamKey
from graphrt.checkpoint._drive import Body, Op, OpGen, PrivateLoop, Tx, arun, blocking, blocking_call, run
from graphrt.checkpoint._ownership import (
    DEFAULT_LEASE_SECONDS,
    Claims,
    claim_options,
    held_owner,
    release_on,
    released_with,
)
from graphrt.checkpoint._primitives import AsyncReadTx, AsyncWriteTx, CheckpointRow, ListQuery, ReadTx, WriteTx
from graphrt.checkpoint._record import Records
from graphrt.checkpoint.base._saver import BaseCheckpointSaver, check_prune_args
from graphrt.checkpoint.base._storage import (
    PreparedPut,
    WriteRow,
    decode_metadata,
    make_tuple,
    matches_filter,
    new_row,
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

__all__ = ("CoreSaver", "PreparedSave", "TaskWrites")

T = TypeVar("T")

TaskWrites = tuple[str, Sequence[tuple[str, Any]], str]
"""(task_id, [(channel, value), ...], task_path): one finished task's writes, for `put_step`."""

AnyReadTx = ReadTx | AsyncReadTx
AnyWriteTx = WriteTx | AsyncWriteTx


class _NeedChain(Exception):
    """Raised through `DeltaCodec.decode` when it asks for chain links not fetched yet (see `_decode`)."""

    def __init__(self, version: str, stop_at: Collection[str]) -> None:
        self.version = version
        self.stop_at = frozenset(stop_at)


class _Links:
    """The `ChainFetcher` of one decode: serves the links fetched so far, asks for the others.

    `top` is the decoded version's blob when already read (None: it is fetched with its chain); `base` the
    blob `top` extends, when read with it (`SqlTx.blobs_with_bases`).
    """

    __slots__ = ("base", "fetched", "top")

    def __init__(self, top: Blob | None, base: Blob | None = None) -> None:
        self.top = top
        self.base = base
        self.fetched: dict[str, tuple[frozenset[str], builtins.list[tuple[str, Blob]]]] = {}

    def __call__(self, version: str, stop_at: Collection[str]) -> builtins.list[tuple[str, Blob]]:
        top, base = self.top, self.base
        if top is None:
            start, prefix = version, []
        elif top.base is None or top.base in stop_at:
            return [(version, top)]
        elif base is None:
            start, prefix = top.base, [(version, top)]
        elif base.base is None or base.base in stop_at:
            return [(version, top), (top.base, base)]
        else:
            start, prefix = base.base, [(version, top), (top.base, base)]
        got = self.fetched.get(start)
        if got is None or got[0] != stop_at:
            raise _NeedChain(start, stop_at)
        return prefix + got[1]


def _fetch(tx: AnyReadTx, stream: StreamKey, links: _Links, need: _NeedChain) -> Body[None]:
    """Fetch the chain link a decode asked for (`need`) into `links`."""
    links.fetched[need.version] = (need.stop_at, (yield tx.chain(stream, need.version, need.stop_at)))


class CoreSaver(BaseCheckpointSaver[str]):
    """A saver whose algorithm lives here; subclasses supply transactions over their storage.

    Attributes:
        lease_seconds: How long a thread claim lives without renewal (None: storage that only this
            process can reach, whose claims never expire).
    """

    lease_seconds: float | None = DEFAULT_LEASE_SECONDS
    background_saves = True
    """Whether a run with `durability="async"` commits its saves off its critical path (`commit_saves` in a
    background writer): worth it when a commit waits for I/O; a saver in memory sets it False."""
    record_deltas = False
    """Whether a checkpoint's record is stored as a delta on a snapshot record when that pays (`_record`):
    worth it where a record is serialized and sent to a database every step (the SQL savers). A saver that sets
    it needs the `has_record` write primitive (`SqlTx.has_record`), which checks a delta's snapshot."""
    holds_records = False
    """Whether a checkpoint saved by the runtime (`put_step`, `put_guarded`, `prepare_save`) keeps its record
    (versions, versions seen) as the runtime's dicts, serialized only when read (`HeldRecord`): worth it where
    storage is this process's memory, since a record grows with the graph and a step changes a few entries.
    The storage's `checkpoint`/`checkpoints` then serialize a held record when they return its row."""
    _native_async = False
    """Whether the class provides `_aread_tx`/`_awrite_tx` (set for each subclass)."""
    _loop: asyncio.AbstractEventLoop | None = None
    """The event loop of the last native async call (where sync calls of an async-only saver run)."""

    _async_only = False
    """Whether its sync transactions are only the async ones run blocking (no sync client)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._native_async = cls._aread_tx is not CoreSaver._aread_tx
        cls._async_only = cls._native_async and cls._read_tx is CoreSaver._read_tx

    def __init__(self, *, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        self._codec = DeltaCodec(self.serde)
        self._records = Records()
        self._claims = Claims(self)
        self._private = PrivateLoop()

    # -- transactions (a backend overrides these) -------------------------------------------------

    def _read_tx(self) -> AbstractContextManager[ReadTx]:
        """A consistent read-only view of the storage (by default: the async one, run blocking)."""
        if not self._native_async:
            raise NotImplementedError
        return blocking(self._aread_tx, self._loop, self._private, type(self).__name__)

    def _write_tx(self, thread_id: str | None = None) -> AbstractContextManager[WriteTx]:
        """An atomic transaction, serialized with every other writer of `thread_id` (all, when None)."""
        if not self._native_async:
            raise NotImplementedError
        return blocking(lambda: self._awrite_tx(thread_id), self._loop, self._private, type(self).__name__)

    def _aread_tx(self) -> AbstractAsyncContextManager[AsyncReadTx]:
        """Async twin of `_read_tx`, for backends with an async client (optional)."""
        raise NotImplementedError

    def _awrite_tx(self, thread_id: str | None = None) -> AbstractAsyncContextManager[AsyncWriteTx]:
        """Async twin of `_write_tx`, for backends with an async client (optional)."""
        raise NotImplementedError

    def _run(self, op: Op[T]) -> T:
        if self._async_only:  # the whole operation on an event loop, not one hop per primitive
            with blocking_call(self._loop, self._private, type(self).__name__) as call:
                result: T = call(self._arun(op))
                return result
        return run(op, self._read_tx, self._write_tx)

    async def _arun(self, op: Op[T]) -> T:
        """Run an operation natively on the async transactions (only when `_native_async`)."""
        loop = asyncio.get_running_loop()
        if loop is not self._private.loop:  # sync calls from other threads go to the caller's loop
            self._loop = loop
        return await arun(op, self._aread_tx, self._awrite_tx)

    async def _transact(self, thread_id: str, body: Callable[[Any], Body[T]]) -> T:
        """One write transaction running `body`: natively when possible, else in a worker thread."""
        op: Tx[T] = Tx(body, True, thread_id)
        if self._native_async:
            return await self._arun(op)
        return await self._offload(self._run, op)

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
            AbstractAsyncContextManager[None], self._claims.aclaim(thread_id, claim_options(config), self._transact)
        )

    def _check(self, tx: AnyReadTx, thread_id: str, checkpoint_ns: str, expected: str | None) -> Body[None]:
        """Refuse a guarded write: the head moved, or the run's claim on the thread was taken over.

        A transaction with a `head_and_lease` primitive (SQL's `GuardSqlTx`, `MemoryStorage`) reads both at once.
        """
        owner = held_owner(self, thread_id)
        both = getattr(tx, "head_and_lease", None) if owner is not None else None
        if both is not None:
            found, lease = yield both(thread_id, checkpoint_ns)
        else:
            found = yield tx.head(thread_id, checkpoint_ns)
        if found != expected:
            raise ThreadConflictError(thread_id, checkpoint_ns, expected=expected, found=found)
        if owner is not None:
            if both is None:
                lease = yield tx.lease(thread_id)
            if lease is None or lease.owner != owner:
                raise ThreadConflictError(thread_id, checkpoint_ns, expected=expected, found=found)

    # -- reading ----------------------------------------------------------------------------------

    def _decode(self, tx: AnyReadTx, stream: StreamKey, version: str, links: _Links, memo: Memo | None) -> Body[Any]:
        """`DeltaCodec.decode` of one version, fetching through `tx` the chain links it asks for.

        The codec asks for links synchronously, so a link not fetched yet interrupts it (`_NeedChain`):
        the link is fetched, then the decode runs again (it reads nothing before asking). Callers try
        `codec.decode` directly first (no generator when no link is needed) and come here on `_NeedChain`.
        """
        while True:
            try:
                return self._codec.decode(stream, version, links, memo)
            except _NeedChain as need:
                yield from _fetch(tx, stream, links, need)

    def _unheld_blobs(
        self, thread_id: str, checkpoint_ns: str, versions: dict[str, Any]
    ) -> builtins.list[tuple[str, str]]:
        """The (channel, version) blobs a load of a checkpoint with these channel versions (as strings) reads
        from storage: those the codec does not hold in memory."""
        knows = self._codec.knows
        return [(ch, v) for ch, v in versions.items() if not knows((thread_id, checkpoint_ns, ch), v)]

    def _load(
        self, tx: AnyReadTx, row: CheckpointRow, config: RunnableConfig | None, memo: Memo | None
    ) -> Body[CheckpointTuple]:
        thread_id, checkpoint_ns = row.thread_id, row.checkpoint_ns
        data = yield from self._records.load(self.serde, tx, row)
        versions = {ch: str(v) for ch, v in data.get("channel_versions", {}).items()}
        wanted = self._unheld_blobs(thread_id, checkpoint_ns, versions)
        codec = self._codec
        with_bases = getattr(tx, "blobs_with_bases", None) if wanted else None
        if with_bases is not None:  # a delta's base read with it: a chat's new messages cost no chain lookup
            tops, bases = yield with_bases(thread_id, checkpoint_ns, wanted)
        else:
            tops, bases = (yield tx.blobs(thread_id, checkpoint_ns, wanted)) if wanted else {}, {}
        # A version asked for and not found is not stored (a channel consumed, not written): no value, and
        # no chain to ask for.
        absent = set(wanted).difference(tops) if len(tops) < len(wanted) else ()
        values: dict[str, Any] = {}
        for channel, version in versions.items():
            top = tops.get((channel, version))
            if top is None and absent and (channel, version) in absent:
                continue
            stream = (thread_id, checkpoint_ns, channel)
            links = _Links(top, bases.get((channel, top.base)) if bases and top is not None else None)
            try:  # first without a generator: a whole value, or a delta on a version in memory, needs no link
                value = codec.decode(stream, version, links, memo)
            except _NeedChain as need:
                yield from _fetch(tx, stream, links, need)  # what the first attempt asked for, not asked again
                value = yield from self._decode(tx, stream, version, links, memo)
            if value is not MISSING:
                values[channel] = value
        data["channel_values"] = values
        key = (thread_id, checkpoint_ns, row.checkpoint_id)
        pending = sorted_pending_writes(self.serde, (yield tx.writes(*key)))
        metadata = decode_metadata(row.metadata)
        return make_tuple(key, cast(Checkpoint, data), metadata, row.parent_id, pending, config)

    def _get_tuple_op(self, config: RunnableConfig) -> Op[CheckpointTuple | None]:
        thread_id, checkpoint_ns = config_thread(config)
        checkpoint_id = get_checkpoint_id(config)

        def body(tx: AnyReadTx) -> Body[CheckpointTuple | None]:
            row = yield tx.checkpoint(thread_id, checkpoint_ns, str(checkpoint_id) if checkpoint_id else None)
            if row is None:
                return None
            return (yield from self._load(tx, row, config if checkpoint_id else None, None))

        return Tx(body)

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint `config` points at (its newest if no `checkpoint_id`), or None."""
        return self._run(self._get_tuple_op(config))

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Async `get_tuple`."""
        if not self._native_async:
            return await super().aget_tuple(config)
        return await self._arun(self._get_tuple_op(config))

    def _list_op(
        self,
        config: RunnableConfig | None,
        filter: dict[str, Any] | None,
        before: RunnableConfig | None,
        limit: int | None,
    ) -> Op[builtins.list[CheckpointTuple]]:
        query = ListQuery(limit=None if filter else limit)
        if config is not None:
            thread_id, _ = config_thread(config)
            ns = config["configurable"].get("checkpoint_ns")
            query = ListQuery(thread_id, ns, get_checkpoint_id(config), None, query.limit)
        if before is not None and (before_id := get_checkpoint_id(before)):
            query = ListQuery(query.thread_id, query.checkpoint_ns, query.checkpoint_id, before_id, query.limit)

        def body(tx: AnyReadTx) -> Body[builtins.list[CheckpointTuple]]:
            out: builtins.list[CheckpointTuple] = []
            memo: Memo = {}
            for row in (yield tx.checkpoints(query)):
                if limit is not None and len(out) >= limit:
                    break
                if filter and not matches_filter(decode_metadata(row.metadata), filter):
                    continue
                out.append((yield from self._load(tx, row, None, memo)))
            return out

        return Tx(body)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first (see `BaseCheckpointSaver.list`), read in one consistent view."""
        found: builtins.list[CheckpointTuple] = self._run(self._list_op(config, filter, before, limit))
        return iter(found)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Async `list` (read in one consistent view before the first item is yielded)."""
        if not self._native_async:
            async for item in super().alist(config, filter=filter, before=before, limit=limit):
                yield item
            return
        for item in await self._arun(self._list_op(config, filter, before, limit)):
            yield item

    def _head_op(self, config: RunnableConfig) -> Op[str | None]:
        thread_id, checkpoint_ns = config_thread(config)
        return Tx(lambda tx: (yield tx.head(thread_id, checkpoint_ns)))

    def get_head_id(self, config: RunnableConfig) -> str | None:
        """The id of the namespace's newest checkpoint, without loading it."""
        return self._run(self._head_op(config))

    async def aget_head_id(self, config: RunnableConfig) -> str | None:
        """Async `get_head_id`."""
        if not self._native_async:
            return await super().aget_head_id(config)
        return await self._arun(self._head_op(config))

    # -- writing ----------------------------------------------------------------------------------

    def _put_op(
        self,
        config: RunnableConfig,
        task_writes: Sequence[TaskWrites],
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        guarded: bool,
        expected_head: str | None,
    ) -> Op[RunnableConfig]:
        """Tasks' writes against `config`'s checkpoint, then the checkpoint after them, in one transaction
        (checked against `expected_head` and the thread's claim when `guarded`)."""
        # The writes first: a bad value is reported as the task's write, which is where it came from.
        encoded = Encoded() if task_writes else None  # each value serialized once per step
        codec = self._codec
        batches = []
        for task_id, w, path in task_writes:  # a loop, not a comprehension: usually one task
            batches.append(prepare_writes(codec, config, w, task_id, path, encoded)[3])
        prepared = prepare_put(
            codec,
            config,
            checkpoint,
            metadata,
            new_versions,
            encoded,
            self._deltas(),
            hold=guarded and self.holds_records,
        )
        parent = str(config["configurable"].get("checkpoint_id"))

        def body(tx: AnyWriteTx) -> Body[Sequence[int]]:
            if guarded:
                yield from self._check(tx, prepared.thread_id, prepared.checkpoint_ns, expected_head)
            for rows in batches:
                if rows:
                    yield tx.put_writes(prepared.thread_id, prepared.checkpoint_ns, parent, rows)
            return (yield from self._store(tx, prepared))

        def after(depths: Sequence[int]) -> RunnableConfig:
            if depths:
                self._remember(prepared, depths)
            return prepared.config

        return Tx(body, True, prepared.thread_id, after)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Save a checkpoint in one transaction; changed channels as blobs (appended lists as deltas)."""
        return self._run(self._put_op(config, (), checkpoint, metadata, new_versions, False, None))

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Async `put`."""
        if not self._native_async:
            return await super().aput(config, checkpoint, metadata, new_versions)
        return await self._arun(self._put_op(config, (), checkpoint, metadata, new_versions, False, None))

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

        The caller never changes the checkpoint's `channel_versions` and `versions_seen` dicts after the
        call (see `put_step`).

        Raises:
            ThreadConflictError: The newest checkpoint is another one, or this run's claim on the
                thread was taken over; nothing was saved.
        """
        return self.put_step(config, (), checkpoint, metadata, new_versions, expected_head=expected_head)

    async def aput_guarded(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        *,
        expected_head: str | None,
    ) -> RunnableConfig:
        """Async `put_guarded`."""
        return await self.aput_step(config, (), checkpoint, metadata, new_versions, expected_head=expected_head)

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
        both are guarded like `put_guarded`. Everything is serialized before storage is touched, except,
        on a saver that `holds_records`, the checkpoint's record: the caller (the runtime) never changes
        the checkpoint's `channel_versions` and `versions_seen` dicts after the call.

        Raises:
            ThreadConflictError: As `put_guarded`; nothing was saved.
        """
        return self._run(self._put_op(config, task_writes, checkpoint, metadata, new_versions, True, expected_head))

    async def aput_step(
        self,
        config: RunnableConfig,
        task_writes: Sequence[TaskWrites],
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        *,
        expected_head: str | None,
    ) -> RunnableConfig:
        """Async `put_step`."""
        if not self._native_async:
            return await super().aput_step(
                config, task_writes, checkpoint, metadata, new_versions, expected_head=expected_head
            )
        return await self._arun(
            self._put_op(config, task_writes, checkpoint, metadata, new_versions, True, expected_head)
        )

    def _deltas(self) -> Records | None:
        return self._records if self.record_deltas else None

    def _remember(self, prepared: PreparedPut, depths: Sequence[int]) -> None:
        """Remember the lists a put stored (`depths`: their stored chain depths), to spot appends to them."""
        blobs, remember = prepared.blobs, self._codec.remember
        for (index, value), depth in zip(prepared.lists, depths, strict=True):
            channel, version, _ = blobs[index]
            remember((prepared.thread_id, prepared.checkpoint_ns, channel), version, value, depth)

    def _store(self, tx: AnyWriteTx, p: PreparedPut) -> Body[Sequence[int]]:
        """Insert a prepared checkpoint's blobs and row; returns the stored chain depth of each list (`p.lists`)."""
        thread_id, checkpoint_ns = p.thread_id, p.checkpoint_ns
        rows: Sequence[tuple[str, str, Blob]] = p.blobs
        # Only lists are stored as deltas: a delta stays one while its base is still stored.
        deltas, bases = [], []
        for index, value in p.lists:
            channel, _, blob = rows[index]
            if blob.base is not None:
                deltas.append((index, value))
                bases.append((channel, blob.base))
        if deltas:
            found = yield tx.blobs(thread_id, checkpoint_ns, bases)
            rows = builtins.list(rows)
            for index, value in deltas:
                channel, version, blob = rows[index]
                rows[index] = (channel, version, self._rebased(channel, version, blob, value, found))
        if rows and (yield tx.insert_blobs(thread_id, checkpoint_ns, rows)) != len(rows):
            # Some versions were stored already (a reused version number): overwrite those that differ.
            existing = yield tx.blobs(thread_id, checkpoint_ns, [(ch, v) for ch, v, _ in rows])
            for channel, version, blob in rows:
                old = existing.get((channel, version))
                if old is not None and old != blob:
                    stream = (thread_id, checkpoint_ns, channel)
                    for dependent in (yield tx.dependents(stream, version)):
                        yield from self._rewrite_whole(tx, stream, dependent)
                    yield tx.set_blob(stream, version, blob)
        row = new_row(
            CheckpointRow, (thread_id, checkpoint_ns, p.checkpoint_id, p.parent_id, p.type, p.checkpoint, p.metadata)
        )
        if p.delta is not None:
            row = yield from self._records.checked(self.serde, tx, row, p.delta)
        yield tx.put_checkpoint(row)
        if checkpoint_logger.isEnabledFor(logging.DEBUG):
            sizes = [len(b.data) for _, _, b in rows]
            log_checkpoint_saved(thread_id, checkpoint_ns, p.checkpoint_id, len(p.checkpoint) + len(p.metadata), sizes)
        return [rows[index][2].depth for index, _ in p.lists] if p.lists else ()

    def _rebased(self, channel: str, version: str, blob: Blob, value: Any, found: dict[tuple[str, str], Blob]) -> Blob:
        """The blob to store for a delta: still one while its base is stored and its chain not full."""
        assert blob.base is not None
        base = found.get((channel, blob.base))
        if base is None or blob.base == version or base.depth + 1 >= self._codec.max_depth_for(value):
            return self._codec.snapshot(value)
        return Blob(blob.type, blob.data, blob.base, base.depth + 1)

    def _rewrite_whole(self, tx: AnyWriteTx, stream: StreamKey, version: str) -> Body[None]:
        """Store a delta version as a whole value, so it no longer needs the versions before it."""
        value = yield from self._decode(tx, stream, version, _Links(None), None)
        yield tx.set_blob(stream, version, self._codec.snapshot(value))
        self._codec.remember(stream, version, value, 0, decoded=True)

    def _put_writes_op(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str, guarded: bool
    ) -> Op[None]:
        thread_id, checkpoint_ns, checkpoint_id, rows = prepare_writes(self._codec, config, writes, task_id, task_path)
        if not rows:
            return _nothing()

        def body(tx: AnyWriteTx) -> Body[None]:
            if guarded:
                yield from self._check(tx, thread_id, checkpoint_ns, checkpoint_id)
            yield tx.put_writes(thread_id, checkpoint_ns, checkpoint_id, rows)

        return Tx(body, True, thread_id)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Save a task's writes, committed before returning; a repeated ordinary write is ignored."""
        self._run(self._put_writes_op(config, writes, task_id, task_path, False))

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async `put_writes`."""
        if not self._native_async:
            return await super().aput_writes(config, writes, task_id, task_path)
        await self._arun(self._put_writes_op(config, writes, task_id, task_path, False))

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
        self._run(self._put_writes_op(config, writes, task_id, task_path, True))

    async def aput_writes_guarded(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async `put_writes_guarded`."""
        if not self._native_async:
            return await super().aput_writes_guarded(config, writes, task_id, task_path)
        await self._arun(self._put_writes_op(config, writes, task_id, task_path, True))

    # -- saves prepared in the foreground, committed in groups -------------------------------------

    def prepare_save(
        self,
        config: RunnableConfig,
        task_writes: Sequence[TaskWrites],
        checkpoint: Checkpoint | None = None,
        metadata: CheckpointMetadata | None = None,
        new_versions: ChannelVersions | None = None,
        *,
        expected_head: str | None,
    ) -> PreparedSave:
        """Serialize what `put_step` (or, without a checkpoint, `put_writes_guarded`) would save, touching no storage.

        graphrt only: a run with `durability="async"` prepares each save on its own thread, so a value that
        cannot be serialized fails at its step, and hands the result to `commit_saves` in a background writer.
        Appended lists are remembered at once (not after the commit, as `put_step` does): the next step's
        lists are encoded as deltas on this one before it is committed; `commit_saves` stores a delta whole
        when its base turns out not to be stored.

        Raises:
            UnserializableValueError, UnsavableValueError: A value cannot be saved; nothing was prepared.
        """
        batches = tuple(prepare_writes(self._codec, config, w, task_id, path)[3] for task_id, w, path in task_writes)
        thread_id, checkpoint_ns = config_thread(config)
        parent = config["configurable"].get("checkpoint_id")
        put = None
        if checkpoint is not None:
            put = prepare_put(
                self._codec,
                config,
                checkpoint,
                metadata or {},
                new_versions or {},
                None,
                self._deltas(),
                hold=self.holds_records,
            )
            self._remember(put, [put.blobs[index][2].depth for index, _ in put.lists])
        return PreparedSave(
            thread_id, checkpoint_ns, None if parent is None else str(parent), batches, put, expected_head, config
        )

    def _commit_op(self, saves: Sequence[PreparedSave], asynchronous: bool, release_owner: str | None) -> Op[None]:
        """`asynchronous`: the body runs over an async transaction (its primitives return awaitables)."""
        thread_id = saves[0].thread_id

        def body(tx: AnyWriteTx) -> Body[None]:
            group = _GroupTx(tx, asynchronous=asynchronous)
            for save in saves:
                if save.put is None and not any(save.writes):
                    continue
                yield from self._check(cast(Any, group), save.thread_id, save.checkpoint_ns, save.expected_head)
                for rows in save.writes:
                    if rows:
                        # `prepare_writes` refused writes with no checkpoint to be pending on.
                        yield tx.put_writes(save.thread_id, save.checkpoint_ns, str(save.parent), rows)
                if save.put is not None:
                    yield from self._store(cast(Any, group), save.put)
            if release_owner is not None:
                yield from release_on(group, thread_id, release_owner)

        def after(_: None) -> None:
            if release_owner is not None:
                released_with(release_owner)

        return Tx(body, True, thread_id, after)

    def commit_saves(self, saves: Sequence[PreparedSave], *, release_owner: str | None = None) -> None:
        """Commit prepared saves of one thread, in order, in one transaction (a group commit).

        Each save is guarded as `put_step` is (the namespace's head must be the save's expected head and the
        run's claim must still hold); a save whose expected head is the checkpoint an earlier save of the
        group wrote is checked against that write. All or nothing: on error none of them is saved.
        `release_owner`: the run's last saves; the same transaction drops that claim's lease on the thread
        (the claim's block then ends without a transaction of its own).

        Raises:
            ThreadConflictError: A guard failed; nothing was saved.
        """
        if saves:
            self._run(self._commit_op(saves, self._async_only, release_owner))

    async def acommit_saves(self, saves: Sequence[PreparedSave], *, release_owner: str | None = None) -> None:
        """Async `commit_saves` (natively on the event loop when the saver can, else in a worker thread)."""
        if not saves:
            return
        if self._native_async:
            await self._arun(self._commit_op(saves, True, release_owner))
        else:
            await self._offload(lambda: self.commit_saves(saves, release_owner=release_owner))

    # -- retention --------------------------------------------------------------------------------

    def _delete_op(self, thread_id: str) -> Op[None]:
        return Tx(
            lambda tx: (yield tx.delete_thread(thread_id)), True, thread_id, lambda _: self._codec.forget({thread_id})
        )

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, write and value of a thread, in one transaction."""
        self._run(self._delete_op(str(thread_id)))

    async def adelete_thread(self, thread_id: str) -> None:
        """Async `delete_thread`."""
        if not self._native_async:
            return await super().adelete_thread(thread_id)
        await self._arun(self._delete_op(str(thread_id)))

    def _copy_op(self, source: str, target: str) -> Op[None]:
        if source == target:
            return _nothing()
        return Tx(
            lambda tx: (yield tx.copy_thread(source, target)), True, target, lambda _: self._codec.forget({target})
        )

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy a thread's checkpoints, writes and values to another thread id, in one transaction.

        The target keeps what it had; rows with the same keys are replaced by the source's.
        """
        self._run(self._copy_op(str(source_thread_id), str(target_thread_id)))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Async `copy_thread`."""
        if not self._native_async:
            return await super().acopy_thread(source_thread_id, target_thread_id)
        await self._arun(self._copy_op(str(source_thread_id), str(target_thread_id)))

    def _prune_op(self, thread_ids: Sequence[str], strategy: str) -> OpGen[None]:
        ids = check_prune_args(thread_ids, strategy)
        for thread_id in ids:

            def body(tx: AnyWriteTx, thread_id: str = thread_id) -> Body[None]:
                if strategy == "delete":
                    yield tx.delete_thread(thread_id)
                else:
                    yield from self._keep_latest(tx, thread_id)

            yield Tx(body, True, thread_id)
        if strategy == "delete" and ids:
            self._codec.forget(set(ids))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Shrink threads: "keep_latest" keeps each namespace's newest checkpoint, "delete" removes all.

        A kept checkpoint keeps its pending writes and loses its (deleted) parent; list values stored
        as deltas are rewritten whole, since the versions they extended are deleted.
        """
        self._run(self._prune_op(thread_ids, strategy))

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Async `prune`."""
        if not self._native_async:
            return await super().aprune(thread_ids, strategy=strategy)
        await self._arun(self._prune_op(thread_ids, strategy))

    def _keep_latest(self, tx: AnyWriteTx, thread_id: str) -> Body[None]:
        heads: dict[str, str] = yield tx.heads(thread_id)
        for checkpoint_ns, head in heads.items():
            row = yield tx.checkpoint(thread_id, checkpoint_ns, head)
            if row is None:
                continue
            versions = (yield from self._records.whole_head(self.serde, tx, row)).get("channel_versions", {})
            keys = [(ch, str(v)) for ch, v in versions.items()]
            found = yield tx.blobs(thread_id, checkpoint_ns, keys)
            kept = set()
            for channel, version in keys:
                blob = found.get((channel, version))
                if blob is None:
                    continue
                if blob.base is not None:
                    try:
                        yield from self._rewrite_whole(tx, (thread_id, checkpoint_ns, channel), version)
                    except BrokenChainError:
                        continue
                kept.add((channel, version))
            garbage = [k for k in (yield tx.blob_keys(thread_id, checkpoint_ns)) if k not in kept]
            yield tx.delete_blobs(thread_id, checkpoint_ns, garbage)
            yield tx.drop_history(thread_id, checkpoint_ns, head)

    def get_next_version(self, current: str | None, channel: None) -> str:
        """The next channel version: an increasing counter plus a random part unique to this fork."""
        return next_string_version(current)


@dataclass(frozen=True, slots=True)
class PreparedSave:
    """One save of a run, serialized (`CoreSaver.prepare_save`) and waiting for `commit_saves`."""

    thread_id: str
    checkpoint_ns: str
    parent: str | None
    """The checkpoint the writes are pending on (and the new checkpoint's parent)."""
    writes: tuple[builtins.list[WriteRow], ...]
    """Tasks' writes, serialized, one list per task."""
    put: PreparedPut | None
    """The checkpoint after the writes, or None (writes only)."""
    expected_head: str | None
    """The namespace's head the save is guarded on."""
    config: RunnableConfig
    """The config the save was prepared against."""

    @property
    def new_config(self) -> RunnableConfig:
        """The config of the checkpoint this save writes (the one it was prepared against, for writes only)."""
        return self.config if self.put is None else self.put.config


class _GroupTx:
    """A write transaction seen by the saves of one group commit: what an earlier save of the group wrote or
    read is answered from here (a namespace's head, a delta's base, the thread's lease, a snapshot record),
    not asked of the storage again.

    Storage would give the same answers (a transaction reads its own writes, and no one else writes the
    thread while it runs), but each answer costs a statement, and a backend that guesses its reads
    (PostgreSQL's speculative batches) only knows what was committed before the transaction.
    """

    __slots__ = ("_async", "_blobs", "_both", "_heads", "_leases", "_records", "_tx")

    def __init__(self, tx: Any, *, asynchronous: bool) -> None:
        self._tx = tx
        self._async = asynchronous
        self._both = getattr(tx, "head_and_lease", None)
        self._heads: dict[tuple[str, str], str] = {}
        self._blobs: dict[tuple[str, str, str, str], Blob] = {}
        self._leases: dict[str, Any] = {}
        self._records: dict[tuple[str, str, str], tuple[str, bytes]] = {}
        """(thread, namespace, checkpoint id) -> (type, record) stored, as written or checked in the group."""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    def _answer(self, value: Any) -> Any:
        return _ready(value) if self._async else value

    def head(self, thread_id: str, checkpoint_ns: str) -> Any:
        known = self._heads.get((thread_id, checkpoint_ns))
        return self._tx.head(thread_id, checkpoint_ns) if known is None else self._answer(known)

    def lease(self, thread_id: str) -> Any:
        if thread_id in self._leases:
            return self._answer(self._leases[thread_id])
        found = self._tx.lease(thread_id)
        if self._async:
            return self._alease(thread_id, found)
        self._leases[thread_id] = found
        return found

    async def _alease(self, thread_id: str, found: Awaitable[Any]) -> Any:
        lease = self._leases[thread_id] = await found
        return lease

    @property
    def head_and_lease(self) -> Callable[[str, str], Any] | None:
        """The storage's `head_and_lease` primitive, answered from here once the group knows both (None when
        the storage has none: `CoreSaver._check` then asks `head` and `lease`, which are answered from here too).
        """
        return None if self._both is None else self._head_and_lease

    def _head_and_lease(self, thread_id: str, checkpoint_ns: str) -> Any:
        head = self._heads.get((thread_id, checkpoint_ns))
        if head is not None and thread_id in self._leases:
            return self._answer((head, self._leases[thread_id]))
        assert self._both is not None
        found = self._both(thread_id, checkpoint_ns)
        if self._async:
            return self._aboth(thread_id, found)
        self._leases[thread_id] = found[1]
        return found

    async def _aboth(self, thread_id: str, found: Awaitable[tuple[str | None, Any]]) -> tuple[str | None, Any]:
        both = await found
        self._leases[thread_id] = both[1]
        return both

    def swap_lease(self, thread_id: str, expected: Any, new: Any) -> Any:
        self._leases.pop(thread_id, None)  # read again if asked: the swap may or may not apply
        return self._tx.swap_lease(thread_id, expected, new)

    def has_record(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, type_: str, data: bytes) -> Any:
        key = (thread_id, checkpoint_ns, checkpoint_id)
        if self._records.get(key) == (type_, data):
            return self._answer(True)
        found = self._tx.has_record(thread_id, checkpoint_ns, checkpoint_id, type_, data)
        if self._async:
            return self._ahas_record(key, (type_, data), found)
        if found:
            self._records[key] = (type_, data)
        return found

    async def _ahas_record(self, key: tuple[str, str, str], record: tuple[str, bytes], found: Awaitable[bool]) -> bool:
        has = await found
        if has:
            self._records[key] = record
        return has

    def blobs(self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]) -> Any:
        local = {k: b for k in keys if (b := self._blobs.get((thread_id, checkpoint_ns, *k))) is not None}
        rest = [k for k in keys if k not in local]
        if not rest:
            return self._answer(local)
        found = self._tx.blobs(thread_id, checkpoint_ns, rest)
        if self._async:
            return _merged(found, local)
        return {**found, **local}

    def insert_blobs(self, thread_id: str, checkpoint_ns: str, items: Sequence[tuple[str, str, Blob]]) -> Any:
        for channel, version, blob in items:
            self._blobs[(thread_id, checkpoint_ns, channel, version)] = blob
        return self._tx.insert_blobs(thread_id, checkpoint_ns, items)

    def set_blob(self, stream: StreamKey, version: str, blob: Blob) -> Any:
        self._blobs[(*stream, version)] = blob
        return self._tx.set_blob(stream, version, blob)

    def put_checkpoint(self, row: CheckpointRow) -> Any:
        key = (row.thread_id, row.checkpoint_ns)
        old = self._heads.get(key)
        if old is None or row.checkpoint_id > old:
            self._heads[key] = row.checkpoint_id
        self._records[(*key, row.checkpoint_id)] = (row.type, row.checkpoint)
        return self._tx.put_checkpoint(row)


async def _ready(value: T) -> T:
    return value


async def _merged(found: Awaitable[dict[Any, Blob]], local: dict[Any, Blob]) -> dict[Any, Blob]:
    return {**(await found), **local}


def _nothing() -> OpGen[None]:
    """An operation that touches no storage."""
    return None
    yield
