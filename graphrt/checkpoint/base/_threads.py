"""Listing a saver's threads: `ThreadInfo` and the generic way to build it from `list()`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphrt.checkpoint.base._types import CheckpointMetadata, CheckpointTuple

__all__ = ("ThreadInfo", "ThreadTally", "check_list_threads_args", "select_threads", "threads_from_checkpoints")


@dataclass(frozen=True, slots=True)
class ThreadInfo:
    """What `BaseCheckpointSaver.list_threads` says about one thread (graphrt only)."""

    thread_id: str
    checkpoints: int
    """How many checkpoints the thread has, in all its namespaces."""
    last_step: int | None
    """The `step` metadata of the thread's newest checkpoint (None if it has none)."""
    updated_at: str | None
    """When the newest checkpoint was made (its `ts`, ISO 8601)."""
    size: int | None
    """Bytes the saver stores for the thread (checkpoints, values, writes); None when it cannot tell."""
    metadata: CheckpointMetadata = field(default_factory=lambda: CheckpointMetadata())
    """The newest checkpoint's metadata."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields."""
        return {
            "thread_id": self.thread_id,
            "checkpoints": self.checkpoints,
            "last_step": self.last_step,
            "updated_at": self.updated_at,
            "size": self.size,
            "metadata": dict(self.metadata),
        }


def check_list_threads_args(limit: int | None) -> None:
    """Reject a negative limit."""
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a non-negative int or None, got {limit!r}")


@dataclass(slots=True)
class ThreadTally:
    """A thread's counts while its checkpoints are read.

    The thread's head is its newest root-namespace checkpoint (its newest checkpoint of any namespace
    if it has no root one): its step, time and metadata describe the thread.
    """

    thread_id: str
    newest_id: str = ""
    """The newest checkpoint id in any namespace: threads are ordered by it."""
    head_key: tuple[bool, str] = (False, "")
    """(is in the root namespace, checkpoint id) of the head: the largest wins."""
    head_ns: str = ""
    updated_at: str | None = None
    metadata: CheckpointMetadata = field(default_factory=lambda: CheckpointMetadata())
    checkpoints: int = 0
    size: int | None = None

    def see(self, checkpoint_ns: str, checkpoint_id: str) -> bool:
        """Count a checkpoint; True if it is the new head (the caller then sets its time and metadata)."""
        self.checkpoints += 1
        self.newest_id = max(self.newest_id, checkpoint_id)
        key = (checkpoint_ns == "", checkpoint_id)
        if key > self.head_key:
            self.head_key, self.head_ns = key, checkpoint_ns
            return True
        return False

    def info(self) -> ThreadInfo:
        step = self.metadata.get("step")
        return ThreadInfo(
            thread_id=self.thread_id,
            checkpoints=self.checkpoints,
            last_step=step if isinstance(step, int) and not isinstance(step, bool) else None,
            updated_at=self.updated_at,
            size=self.size,
            metadata=self.metadata,
        )


def select_threads(
    tallies: Iterable[ThreadTally], filter: Mapping[str, Any] | None, limit: int | None
) -> Iterator[ThreadInfo]:
    """Threads newest first (by their newest checkpoint id), those whose head's metadata matches `filter`."""
    ordered = sorted(tallies, key=lambda t: (t.newest_id, t.thread_id), reverse=True)
    count = 0
    for tally in ordered:
        if limit is not None and count >= limit:
            return
        metadata: Mapping[str, Any] = tally.metadata
        if filter and not all(k in metadata and metadata[k] == v for k, v in filter.items()):
            continue
        count += 1
        yield tally.info()


def threads_from_checkpoints(
    tuples: Iterable[CheckpointTuple], filter: Mapping[str, Any] | None, limit: int | None
) -> Iterator[ThreadInfo]:
    """`list_threads` from every checkpoint of every thread, as `list(None)` gives them (any order)."""
    tallies: dict[str, ThreadTally] = {}
    for item in tuples:
        conf = item.config["configurable"]
        thread_id = str(conf["thread_id"])
        tally = tallies.setdefault(thread_id, ThreadTally(thread_id))
        if tally.see(str(conf.get("checkpoint_ns") or ""), str(conf["checkpoint_id"])):
            tally.updated_at, tally.metadata = item.checkpoint.get("ts"), item.metadata
    return select_threads(tallies.values(), filter, limit)
