"""`BaseCheckpointSaver`: the interface every checkpointer implements, sync first, with async twins."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager, nullcontext
from typing import Any, Generic, TypeVar

import anyio
import anyio.to_thread

from graphrt.checkpoint.base._types import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    V,
    config_thread,
)
from graphrt.checkpoint.serde.base import SerializationError, SerializerProtocol, maybe_add_typed_methods
from graphrt.checkpoint.serde.jsonplus import JsonPlusSerializer
from graphrt.config import RunnableConfig
from graphrt.errors import ThreadConflictError

__all__ = ("PRUNE_STRATEGIES", "BaseCheckpointSaver", "UnserializableValueError", "check_prune_args")

T = TypeVar("T")

PRUNE_STRATEGIES = ("keep_latest", "delete")


class UnserializableValueError(SerializationError):
    """A channel value or task write the serializer cannot encode; the saver saved nothing of it.

    A `TypeError` (through `SerializationError`, whose `type_name` and `path` it keeps) whose
    message names the channel, the type and how to fix it.
    """

    channel: str
    """The channel whose value could not be saved."""
    task_id: str | None
    """The task that wrote the value, for `put_writes`; None for a checkpoint's channel value."""

    def __init__(
        self, channel: str, type_name: str, *, path: str = "", reason: str = "", task_id: str | None = None
    ) -> None:
        super().__init__(type_name, path=path, reason=reason)
        self.channel = channel
        self.task_id = task_id
        what = f"write to channel '{channel}' of task '{task_id}'" if task_id else f"channel '{channel}'"
        self.args = (f"Cannot save {what}: {self.args[0]}",)

    @classmethod
    def from_error(
        cls, channel: str, cause: SerializationError, *, task_id: str | None = None
    ) -> UnserializableValueError:
        """The error for `channel`, from the serializer's error about its value."""
        return cls(channel, cause.type_name, path=cause.path, reason=getattr(cause, "reason", ""), task_id=task_id)

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_unserializable,
            (self.channel, self.type_name, self.path, getattr(self, "reason", ""), self.task_id),
        )


def _rebuild_unserializable(
    channel: str, type_name: str, path: str, reason: str, task_id: str | None
) -> UnserializableValueError:
    return UnserializableValueError(channel, type_name, path=path, reason=reason, task_id=task_id)


def check_prune_args(thread_ids: Sequence[str], strategy: str) -> list[str]:
    """The thread ids to prune, as strings; rejects a bare string and unknown strategies."""
    if isinstance(thread_ids, str):
        raise TypeError("thread_ids must be a sequence of thread IDs, not a str")
    if strategy not in PRUNE_STRATEGIES:
        raise ValueError(f"Unknown prune strategy: {strategy!r}; use 'keep_latest' or 'delete'")
    return [str(t) for t in thread_ids]


class BaseCheckpointSaver(Generic[V]):
    """Base class of checkpointers: they save a thread's checkpoints and the writes pending on them.

    Pass a `thread_id` in `config["configurable"]` to every call; `checkpoint_ns` (default "")
    separates a subgraph's checkpoints, and `checkpoint_id` picks one checkpoint (absent: the
    newest). Subclasses implement the sync methods; every `a*` twin runs its sync method in a
    worker thread, one call at a time per saver, unless a backend overrides it with a native async
    path. (LangGraph's base raises `NotImplementedError` from the async methods instead.)

    graphrt adds `put_guarded`/`aput_guarded` (one writer per thread) and implements `prune`,
    `copy_thread` and `delete_thread` on every saver it ships.

    Attributes:
        serde: Turns values into `(type, bytes)` and back.
    """

    serde: SerializerProtocol = JsonPlusSerializer()

    def __init__(self, *, serde: SerializerProtocol | None = None) -> None:
        self.serde = maybe_add_typed_methods(serde or self.serde)
        self._limiter_lock = threading.Lock()

    @property
    def config_specs(self) -> list[Any]:
        """Configuration options of the saver (none)."""
        return []

    # -- sync interface ---------------------------------------------------------------------------

    def get(self, config: RunnableConfig) -> Checkpoint | None:
        """The checkpoint `config` points at, or None."""
        if value := self.get_tuple(config):
            return value.checkpoint
        return None

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """The checkpoint `config` points at with its metadata, parent and pending writes, or None.

        Pending writes come sorted by (task_path, task_id, idx).
        """
        raise NotImplementedError

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first: of `config`'s thread (and namespace, if given), or of all threads.

        Args:
            config: Whose checkpoints; None lists every thread.
            filter: Only checkpoints whose metadata has each of these keys equal to its value.
            before: Only checkpoints older than this config's `checkpoint_id`.
            limit: At most this many.
        """
        raise NotImplementedError

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Save a checkpoint whose parent is `config`'s `checkpoint_id`; returns the config of the new one.

        Args:
            config: The thread, namespace and parent checkpoint.
            checkpoint: What to save.
            metadata: Saved with `get_checkpoint_metadata(config, metadata)`.
            new_versions: The channels whose value changed since the parent, with their new versions.
        """
        raise NotImplementedError

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Save a task's writes, as (channel, value) pairs, pending on `config`'s checkpoint."""
        raise NotImplementedError

    def put_guarded(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        *,
        expected_head: str | None,
    ) -> RunnableConfig:
        """`put`, but only if the thread's newest checkpoint in this namespace is still `expected_head`.

        graphrt only. The runtime passes the id of the checkpoint its run last saw, so two runs on
        one thread never fork its history silently: the second gets the error and nothing it tried
        to save is written. `expected_head=None` means the namespace has no checkpoint yet.

        This default reads the head and then puts, which is not atomic: a writer in between goes
        unnoticed. Savers that can check and insert in one step (all of graphrt's) override it.

        Raises:
            ThreadConflictError: The newest checkpoint is another one.
        """
        thread_id, checkpoint_ns = config_thread(config)
        head = self.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns}})
        found = head.config["configurable"]["checkpoint_id"] if head else None
        if found != expected_head:
            raise ThreadConflictError(thread_id, checkpoint_ns, expected=expected_head, found=found)
        return self.put(config, checkpoint, metadata, new_versions)

    def put_step(
        self,
        config: RunnableConfig,
        task_writes: Sequence[tuple[str, Sequence[tuple[str, Any]], str]],
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        *,
        expected_head: str | None,
    ) -> RunnableConfig:
        """Save tasks' writes (task_id, writes, task_path) against `config`'s checkpoint, then the next one.

        graphrt only. graphrt's savers do both in one transaction; this default makes one call each
        (`put_writes_guarded`, then `put_guarded`), which keeps the same guarantees at more cost.
        """
        for task_id, writes, task_path in task_writes:
            self.put_writes_guarded(config, writes, task_id, task_path)
        return self.put_guarded(config, checkpoint, metadata, new_versions, expected_head=expected_head)

    async def aput_step(
        self,
        config: RunnableConfig,
        task_writes: Sequence[tuple[str, Sequence[tuple[str, Any]], str]],
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        *,
        expected_head: str | None,
    ) -> RunnableConfig:
        """Async twin of `put_step`."""

        def call() -> RunnableConfig:
            return self.put_step(config, task_writes, checkpoint, metadata, new_versions, expected_head=expected_head)

        return await self._offload(call)

    def claim_thread(self, config: RunnableConfig) -> AbstractContextManager[None]:
        """Hold `config`'s thread for the block, so no other run writes it meanwhile (graphrt only).

        graphrt's savers implement it across processes (see the README's "Thread ownership"). This
        default claims nothing: a saver that does not override it keeps only the weaker guard of
        `put_guarded` (a second run is refused at its first write, after it may have saved some).
        """
        return nullcontext()

    def aclaim_thread(self, config: RunnableConfig) -> AbstractAsyncContextManager[None]:
        """Async twin of `claim_thread`."""
        return nullcontext()

    def get_head_id(self, config: RunnableConfig) -> str | None:
        """The id of the newest checkpoint of `config`'s thread and namespace (graphrt only).

        This default loads that checkpoint; graphrt's savers look the id up without decoding anything.
        """
        thread_id, checkpoint_ns = config_thread(config)
        head = self.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns}})
        return head.config["configurable"]["checkpoint_id"] if head else None

    async def aget_head_id(self, config: RunnableConfig) -> str | None:
        """Async twin of `get_head_id`."""
        return await self._offload(self.get_head_id, config)

    def put_writes_guarded(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """`put_writes`, but only if `config`'s checkpoint is still the newest of its namespace.

        graphrt only: a run that lost its thread to another run saves none of its tasks' writes.
        This default reads the head and then writes (not atomic); graphrt's savers override it.

        Raises:
            ThreadConflictError: Another checkpoint is newer.
        """
        thread_id, checkpoint_ns = config_thread(config)
        head = self.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns}})
        found = head.config["configurable"]["checkpoint_id"] if head else None
        expected = config["configurable"].get("checkpoint_id")
        if found != expected:
            raise ThreadConflictError(thread_id, checkpoint_ns, expected=expected, found=found)
        self.put_writes(config, writes, task_id, task_path)

    async def aput_writes_guarded(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async twin of `put_writes_guarded`."""
        await self._offload(self.put_writes_guarded, config, writes, task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        """Delete every checkpoint, write and value of a thread, in all namespaces."""
        raise NotImplementedError

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete the checkpoints and writes of the given runs (not supported by graphrt's savers)."""
        raise NotImplementedError

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Copy every checkpoint, write and value of one thread into another."""
        raise NotImplementedError

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Shrink threads: "keep_latest" keeps the newest checkpoint of each namespace, "delete" all."""
        raise NotImplementedError

    def get_next_version(self, current: V | None, channel: None) -> V:
        """The version after `current` (integers here; graphrt's savers use increasing strings)."""
        if isinstance(current, str):
            raise NotImplementedError
        if current is None:
            return 1  # type: ignore[return-value]
        return current + 1

    # -- async twins ------------------------------------------------------------------------------

    def _limiter(self) -> anyio.CapacityLimiter:
        """One worker thread at a time per saver and event loop.

        A limiter belongs to one event loop: sharing it between loops (runs driven by `asyncio.run`
        in several threads) can deadlock, so each loop gets its own; the storage's own lock
        serializes the calls of different loops.
        """
        try:
            loop: object = asyncio.get_running_loop()
        except RuntimeError:  # another async backend (trio): one limiter
            loop = self
        lock = self.__dict__.setdefault("_limiter_lock", threading.Lock())
        with lock:
            limiters = self.__dict__.setdefault("_async_limiters", weakref.WeakKeyDictionary())
            limiter: anyio.CapacityLimiter | None = limiters.get(loop)
            if limiter is None:
                limiter = limiters[loop] = anyio.CapacityLimiter(1)
        return limiter

    async def _offload(self, func: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(func, *args, limiter=self._limiter())

    async def aget(self, config: RunnableConfig) -> Checkpoint | None:
        """Async `get`."""
        if value := await self.aget_tuple(config):
            return value.checkpoint
        return None

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        """Async `get_tuple`."""
        return await self._offload(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        """Async `list`."""

        def collect() -> list[CheckpointTuple]:
            return [*self.list(config, filter=filter, before=before, limit=limit)]

        for item in await self._offload(collect):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        """Async `put`."""
        return await self._offload(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Async `put_writes`."""
        await self._offload(self.put_writes, config, writes, task_id, task_path)

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

        def call() -> RunnableConfig:
            return self.put_guarded(config, checkpoint, metadata, new_versions, expected_head=expected_head)

        return await self._offload(call)

    async def adelete_thread(self, thread_id: str) -> None:
        """Async `delete_thread`."""
        await self._offload(self.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Async `delete_for_runs`."""
        await self._offload(self.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Async `copy_thread`."""
        await self._offload(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """Async `prune`."""

        def call() -> None:
            self.prune(thread_ids, strategy=strategy)

        await self._offload(call)
