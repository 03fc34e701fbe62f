"""Shared pieces of the checkpoint saver contract tests: the sync/async `call` helper, checkpoint
builders, and a saver wrapper that fails when a saved checkpoint ever reads back differently."""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from typing import Any

import anyio
import anyio.to_thread

from graphrt.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    empty_checkpoint,
)
from graphrt.checkpoint.base.id import uuid6
from graphrt.config import RunnableConfig

MODES = ("sync", "async")


def call(saver: BaseCheckpointSaver[Any], name: str, mode: str, *args: Any, **kwargs: Any) -> Any:
    """Call `saver.<name>` (sync) or `await saver.a<name>` (async); `list` comes back as a list."""
    if mode == "sync":
        result = getattr(saver, name)(*args, **kwargs)
        return list(result) if name == "list" else result

    async def run() -> Any:
        method = getattr(saver, "a" + name)
        if name == "list":
            return [item async for item in method(*args, **kwargs)]
        return await method(*args, **kwargs)

    return anyio.run(run)


def config(thread_id: str = "t1", checkpoint_ns: str = "", checkpoint_id: str | None = None) -> RunnableConfig:
    conf: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": checkpoint_ns}
    if checkpoint_id is not None:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


class Thread:
    """Builds a thread's checkpoints the way the runtime does: versions move only for changed channels."""

    def __init__(self, saver: BaseCheckpointSaver[Any], thread_id: str = "t1", checkpoint_ns: str = "") -> None:
        self.saver = saver
        self.config = config(thread_id, checkpoint_ns)
        self.values: dict[str, Any] = {}
        self.versions: ChannelVersions = {}

    def checkpoint(self, updates: dict[str, Any]) -> tuple[Checkpoint, ChannelVersions]:
        new_versions: ChannelVersions = {}
        for channel, value in updates.items():
            version = self.saver.get_next_version(self.versions.get(channel), None)  # type: ignore[arg-type]
            self.versions[channel] = new_versions[channel] = version
            self.values[channel] = value
        checkpoint = empty_checkpoint()
        checkpoint["id"] = str(uuid6())
        checkpoint["channel_values"] = dict(self.values)
        checkpoint["channel_versions"] = dict(self.versions)
        return checkpoint, new_versions

    def put(self, mode: str, updates: dict[str, Any], metadata: dict[str, Any] | None = None) -> RunnableConfig:
        checkpoint, new_versions = self.checkpoint(updates)
        meta = metadata if metadata is not None else {"source": "loop", "step": 0}
        self.config = call(self.saver, "put", mode, self.config, checkpoint, meta, new_versions)
        return self.config


class AssertingSaver(BaseCheckpointSaver[str]):
    """Wraps a saver; after every put it re-reads every checkpoint saved so far and fails if any changed.

    Also checks that a checkpoint reads back with exactly the values it was saved with.
    """

    def __init__(self, inner: BaseCheckpointSaver[Any]) -> None:
        super().__init__(serde=inner.serde)
        self.inner = inner
        self.saved: dict[tuple[str, str, str], tuple[Checkpoint, CheckpointMetadata]] = {}

    def _check_all(self) -> None:
        for (thread_id, ns, cid), (checkpoint, metadata) in self.saved.items():
            got = self.inner.get_tuple(config(thread_id, ns, cid))
            assert got is not None, f"checkpoint {cid} of {thread_id!r} disappeared"
            assert got.checkpoint == checkpoint, f"checkpoint {cid} of {thread_id!r} changed after it was saved"
            assert got.metadata == metadata

    def _record(self, saved_config: RunnableConfig, checkpoint: Checkpoint, new_versions: ChannelVersions) -> None:
        conf = saved_config["configurable"]
        got = self.inner.get_tuple(saved_config)
        assert got is not None
        for channel in new_versions:
            if channel in checkpoint["channel_values"]:
                assert got.checkpoint["channel_values"][channel] == checkpoint["channel_values"][channel]
        key = (conf["thread_id"], conf["checkpoint_ns"], conf["checkpoint_id"])
        self.saved[key] = (copy.deepcopy(got.checkpoint), copy.deepcopy(got.metadata))
        self._check_all()

    def _forget(self, thread_ids: Sequence[str]) -> None:
        for key in [k for k in self.saved if k[0] in thread_ids]:
            del self.saved[key]

    def _after_prune(self, thread_ids: Sequence[str], strategy: str) -> None:
        if strategy == "delete":
            self._forget(thread_ids)
            return
        heads = {}
        for key in self.saved:
            if key[0] in thread_ids and key[2] > heads.get(key[:2], ""):
                heads[key[:2]] = key[2]
        for key in [k for k in self.saved if k[0] in thread_ids and heads[k[:2]] != k[2]]:
            del self.saved[key]
        self._check_all()

    # sync
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.inner.get_tuple(config)

    def list(self, config: RunnableConfig | None, **kwargs: Any) -> Iterator[CheckpointTuple]:
        return self.inner.list(config, **kwargs)

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        saved = self.inner.put(config, checkpoint, metadata, new_versions)
        self._record(saved, checkpoint, new_versions)
        return saved

    def put_guarded(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        *,
        expected_head: str | None,
    ) -> RunnableConfig:
        try:
            saved = self.inner.put_guarded(config, checkpoint, metadata, new_versions, expected_head=expected_head)
        finally:
            self._check_all()
        self._record(saved, checkpoint, new_versions)
        return saved

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        self.inner.put_writes(config, writes, task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        self.inner.delete_thread(thread_id)
        self._forget([thread_id])
        self._check_all()

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self.inner.copy_thread(source_thread_id, target_thread_id)
        self._check_all()

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self.inner.prune(thread_ids, strategy=strategy)
        self._after_prune(thread_ids, strategy)

    def get_next_version(self, current: Any, channel: None) -> Any:
        return self.inner.get_next_version(current, channel)

    # async: the inner saver's own async path, then the same checks, from a worker thread (an async-only
    # saver's sync methods refuse the event loop's thread)
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self.inner.aget_tuple(config)

    async def alist(self, config: RunnableConfig | None, **kwargs: Any) -> Any:  # type: ignore[override]
        async for item in self.inner.alist(config, **kwargs):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        saved = await self.inner.aput(config, checkpoint, metadata, new_versions)
        await anyio.to_thread.run_sync(self._record, saved, checkpoint, new_versions)
        return saved

    async def aput_guarded(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
        *,
        expected_head: str | None,
    ) -> RunnableConfig:
        try:
            saved = await self.inner.aput_guarded(
                config, checkpoint, metadata, new_versions, expected_head=expected_head
            )
        finally:
            await anyio.to_thread.run_sync(self._check_all)
        await anyio.to_thread.run_sync(self._record, saved, checkpoint, new_versions)
        return saved

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = ""
    ) -> None:
        await self.inner.aput_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await self.inner.adelete_thread(thread_id)
        self._forget([thread_id])
        await anyio.to_thread.run_sync(self._check_all)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self.inner.acopy_thread(source_thread_id, target_thread_id)
        await anyio.to_thread.run_sync(self._check_all)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self.inner.aprune(thread_ids, strategy=strategy)
        await anyio.to_thread.run_sync(self._after_prune, thread_ids, strategy)


def race_put_guarded(path: str, expected_head: str | None, name: str, barrier: Any, results: Any) -> None:
    """One process of the two-process race: wait for the other, then try to advance the thread."""
    from graphrt.checkpoint.sqlite import SqliteSaver
    from graphrt.errors import ThreadConflictError

    with SqliteSaver.from_conn_string(path) as saver:
        saver.setup()
        thread = Thread(saver, "raced")
        parent = config("raced", checkpoint_id=expected_head)
        checkpoint, versions = thread.checkpoint({"winner": name})
        barrier.wait(timeout=30)
        try:
            saver.put_guarded(parent, checkpoint, {}, versions, expected_head=expected_head)
            results.put((name, "won", checkpoint["id"]))
        except ThreadConflictError as exc:
            results.put((name, "conflict", exc.found))
