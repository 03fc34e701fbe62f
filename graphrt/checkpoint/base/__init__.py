"""The checkpointer contract: `BaseCheckpointSaver` and the checkpoint shapes, at LangGraph's path."""

from graphrt.checkpoint.base._saver import BaseCheckpointSaver, UnserializableValueError
from graphrt.checkpoint.base._threads import ThreadInfo
from graphrt.checkpoint.base._types import (
    EXCLUDED_METADATA_KEYS,
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    PendingWrite,
    V,
    copy_checkpoint,
    empty_checkpoint,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from graphrt.checkpoint.serde.base import SerializerProtocol

__all__ = (
    "EXCLUDED_METADATA_KEYS",
    "WRITES_IDX_MAP",
    "BaseCheckpointSaver",
    "ChannelVersions",
    "Checkpoint",
    "CheckpointMetadata",
    "CheckpointTuple",
    "PendingWrite",
    "SerializerProtocol",
    "ThreadInfo",
    "UnserializableValueError",
    "V",
    "copy_checkpoint",
    "empty_checkpoint",
    "get_checkpoint_id",
    "get_checkpoint_metadata",
    "writes_sort_key",
)
