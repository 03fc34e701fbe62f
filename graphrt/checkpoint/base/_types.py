"""The checkpoint value shapes (LangGraph's, field for field) and the config helpers savers share."""

from __future__ import annotations

import random
import time
from typing import Any, Literal, NamedTuple, TypedDict, TypeVar, cast

from graphrt.checkpoint.base.id import uuid6
from graphrt.config import RunnableConfig

__all__ = (
    "EXCLUDED_METADATA_KEYS",
    "ERROR",
    "INTERRUPT",
    "LATEST_VERSION",
    "RESUME",
    "SCHEDULED",
    "TASKS",
    "WRITES_IDX_MAP",
    "ChannelVersions",
    "Checkpoint",
    "CheckpointMetadata",
    "CheckpointTuple",
    "MissingConfigKeyError",
    "PendingWrite",
    "V",
    "config_thread",
    "copy_checkpoint",
    "empty_checkpoint",
    "get_checkpoint_id",
    "get_checkpoint_metadata",
    "next_string_version",
    "writes_sort_key",
)

V = TypeVar("V", int, float, str)
PendingWrite = tuple[str, str, Any]
"""One write a task made: (task_id, channel, value)."""
ChannelVersions = dict[str, str | int | float]
"""Channel name → version; versions of one channel compare in the order they were made."""

ERROR = "__error__"
SCHEDULED = "__scheduled__"
INTERRUPT = "__interrupt__"
RESUME = "__resume__"
TASKS = "__pregel_tasks"

WRITES_IDX_MAP: dict[str, int] = {ERROR: -1, SCHEDULED: -2, INTERRUPT: -3, RESUME: -4}
"""Fixed (negative) write indexes of the special channels.

A write to one of these channels replaces an earlier one of the same task; an ordinary write whose
(task_id, idx) is already saved is kept as first saved, so a retried task cannot change its past.
"""

EXCLUDED_METADATA_KEYS = frozenset(
    {
        "thread_id",
        "checkpoint_id",
        "checkpoint_ns",
        "checkpoint_map",
        "langgraph_step",
        "langgraph_node",
        "langgraph_triggers",
        "langgraph_path",
        "langgraph_checkpoint_ns",
    }
)
"""Config keys `get_checkpoint_metadata` never copies into a checkpoint's metadata."""

LATEST_VERSION = 2
"""The `v` of `empty_checkpoint()`, as in LangGraph's `checkpoint.base`."""


class CheckpointMetadata(TypedDict, total=False):
    """What a checkpoint records about how it was made; savers keep any extra keys too."""

    source: Literal["input", "loop", "update", "fork"]
    """"input" (from the run's input), "loop" (after a step), "update" (`update_state`), "fork" (a copy)."""
    step: int
    """-1 for the first "input" checkpoint, 0 for the first "loop" checkpoint, then one more per step."""
    parents: dict[str, str]
    """Checkpoint namespace → id of the parent graphs' checkpoints."""
    run_id: str
    """The id of the run that made this checkpoint."""


class Checkpoint(TypedDict):
    """The state of a graph's channels at one point of a thread."""

    v: int
    """The checkpoint format version."""
    id: str
    """Unique and increasing within a thread (a v6 UUID), so it also sorts checkpoints oldest first."""
    ts: str
    """When it was made, ISO 8601."""
    channel_values: dict[str, Any]
    """Channel name → value."""
    channel_versions: ChannelVersions
    """Channel name → version of the value above."""
    versions_seen: dict[str, ChannelVersions]
    """Node name → the channel versions that node has already seen."""
    updated_channels: list[str] | None
    """The channels written by the step that made this checkpoint."""


class CheckpointTuple(NamedTuple):
    """A checkpoint as a saver returns it, with where it is and what is pending on it."""

    config: RunnableConfig
    checkpoint: Checkpoint
    metadata: CheckpointMetadata
    parent_config: RunnableConfig | None = None
    pending_writes: list[PendingWrite] | None = None


class MissingConfigKeyError(KeyError):
    """A saver was given a config without a key it needs (`thread_id`, or `checkpoint_id` for writes).

    A `KeyError` whose `args[0]` is the key, as LangGraph's savers raise, with a message saying how
    to pass it.
    """

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return (
            f"'{self.key}': the checkpointer needs config['configurable']['{self.key}']; "
            f"pass it as {{'configurable': {{'{self.key}': ...}}}}"
        )


def config_thread(config: RunnableConfig) -> tuple[str, str]:
    """The (thread_id, checkpoint_ns) a config points at; thread ids are stored as strings."""
    conf = config.get("configurable") or {}
    thread_id = conf.get("thread_id")
    if thread_id is None:
        raise MissingConfigKeyError("thread_id")
    return str(thread_id), str(conf.get("checkpoint_ns") or "")


def get_checkpoint_id(config: RunnableConfig) -> str | None:
    """The checkpoint id a config points at, or None for "the newest"."""
    checkpoint_id: str | None = config["configurable"].get("checkpoint_id")
    return checkpoint_id


_RUN_OPTIONS = frozenset({"multitask_strategy", "multitask_timeout"})
"""graphrt's per-call options in `configurable`: how a run claims its thread, not facts about it."""


def get_checkpoint_metadata(config: RunnableConfig, metadata: CheckpointMetadata) -> CheckpointMetadata:
    """The metadata to save: `metadata` plus the run's scalar config values (e.g. `user_id`).

    Strings, numbers and booleans from `config["metadata"]` and then `config["configurable"]` are
    added under their own key unless the key is already present, starts with "__", or is one of
    `EXCLUDED_METADATA_KEYS`. NUL characters are dropped from strings, since databases refuse them.
    """
    result: dict[str, Any] = {k: v.replace("\u0000", "") if isinstance(v, str) else v for k, v in metadata.items()}
    for source in (config.get("metadata"), config.get("configurable")):
        if not source:
            continue
        for key, value in source.items():
            if key in result or key in EXCLUDED_METADATA_KEYS or key in _RUN_OPTIONS or key.startswith("__"):
                continue
            if isinstance(value, str):
                result[key] = value.replace("\u0000", "")
            elif isinstance(value, int | float | bool):
                result[key] = value
    return cast(CheckpointMetadata, result)


def writes_sort_key(task_path: str, task_id: str = "", idx: int = 0) -> tuple[str, str, int]:
    """The order pending writes are returned in, which is the order a step applies them."""
    return (task_path, task_id, idx)


def empty_checkpoint() -> Checkpoint:
    """A checkpoint with no channels, a fresh id and the current time."""
    data: dict[str, Any] = {
        "v": LATEST_VERSION,
        "id": str(uuid6(clock_seq=-2)),
        "ts": utc_now_iso(),
        "channel_values": {},
        "channel_versions": {},
        "versions_seen": {},
        "pending_sends": [],
        "updated_channels": None,
    }
    return cast(Checkpoint, data)


def copy_checkpoint(checkpoint: Checkpoint) -> Checkpoint:
    """A copy whose dicts can be changed without touching the original (values are shared)."""
    data: dict[str, Any] = {
        "v": checkpoint["v"],
        "ts": checkpoint["ts"],
        "id": checkpoint["id"],
        "channel_values": checkpoint["channel_values"].copy(),
        "channel_versions": checkpoint["channel_versions"].copy(),
        "versions_seen": {k: v.copy() for k, v in checkpoint["versions_seen"].items()},
        "pending_sends": cast(dict[str, Any], checkpoint).get("pending_sends", []).copy(),
        "updated_channels": checkpoint.get("updated_channels"),
    }
    return cast(Checkpoint, data)


_last_version: tuple[str, int] = ("", 0)
"""The last version `next_string_version` made and its counter: the next call is usually given it back."""


def next_string_version(current: str | int | float | None) -> str:
    """LangGraph's string channel versions: a zero-padded counter, a dot, and a random fraction.

    They compare as strings in the order they were made, and the random part keeps two forks of
    a thread from giving different values the same version. (The fraction is `f"{random():016}"`,
    spelled as `repr` plus padding because that is cheaper.)
    """
    global _last_version
    if current is None:
        major = 1
    elif isinstance(current, str):
        last = _last_version  # one read: another thread may replace it meanwhile
        major = (last[1] if current is last[0] else int(current.split(".", 1)[0])) + 1
    else:
        major = int(current) + 1
    fraction = repr(random.random())
    if len(fraction) < 16:
        fraction = fraction.zfill(16)
    version = f"{major:032}.{fraction}"
    _last_version = (version, major)
    return version


_last_second: tuple[int, str] = (-1, "")
"""A second (Unix time) and its ISO 8601 text, so most timestamps format only the microseconds."""


def utc_now_iso() -> str:
    """`datetime.now(UTC).isoformat()`, about five times cheaper (a checkpoint's `ts`)."""
    global _last_second
    second, micros = divmod(time.time_ns() // 1000, 1_000_000)
    cached = _last_second
    if cached[0] != second:
        cached = _last_second = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    # isoformat() leaves out a zero microsecond part
    return f"{cached[1]}.{micros:06d}+00:00" if micros else f"{cached[1]}+00:00"
