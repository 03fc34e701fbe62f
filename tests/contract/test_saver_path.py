"""The per-step save path does no work twice: values serialized once per step, no lookups for what is absent."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from _checkpoint_helpers import config

from graphrt.checkpoint._ownership import held_owner
from graphrt.checkpoint._record import DELTA_TYPE
from graphrt.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from graphrt.checkpoint.base.id import uuid6
from graphrt.checkpoint.memory import InMemorySaver
from graphrt.checkpoint.memory._storage import MemoryStorage
from graphrt.checkpoint.serde.jsonplus import JsonPlusSerializer
from graphrt.checkpoint.sqlite import SqliteSaver
from graphrt.errors import ThreadConflictError


class CountingSerializer(JsonPlusSerializer):
    """Records every value it serializes."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Any] = []

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        self.seen.append(obj)
        return super().dumps_typed(obj)


@contextmanager
def open_saver(kind: str, tmp_path: Path, serde: Any = None) -> Iterator[BaseCheckpointSaver[Any]]:
    if kind == "memory":
        yield InMemorySaver(serde=serde)
        return
    with SqliteSaver.from_conn_string(str(tmp_path / "c.sqlite")) as saver:
        if serde is not None:
            saver = SqliteSaver(saver.conn, serde=serde)
        yield saver


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_a_steps_writes_and_checkpoint_serialize_each_value_once(kind: str, tmp_path: Path) -> None:
    serde = CountingSerializer()
    with open_saver(kind, tmp_path, serde) as saver:
        first, second = {"role": "user", "text": "hi"}, {"role": "ai", "text": "hello"}
        doc = {"title": "x" * 300}
        start = empty_checkpoint()
        start["channel_values"] = {"messages": [first]}
        start["channel_versions"] = {"messages": "1"}
        saved = saver.put(config(), start, {"step": -1}, {"messages": "1"})
        serde.seen.clear()

        step = empty_checkpoint()
        step["channel_values"] = {"messages": [first, second], "doc": doc}  # the very objects the task wrote
        step["channel_versions"] = {"messages": "2", "doc": "1"}
        writes = [("messages", [second]), ("doc", doc)]
        head = saver.put_step(
            saved,
            [("task", writes, "")],
            step,
            {"step": 0},
            {"messages": "2", "doc": "1"},
            expected_head=saved["configurable"]["checkpoint_id"],
        )

        assert [v for v in serde.seen if isinstance(v, list) and second in v] == [[second]]
        assert [v for v in serde.seen if v is doc] == [doc]
        got = saver.get_tuple(head)
        assert got is not None
        assert got.checkpoint["channel_values"] == {"messages": [first, second], "doc": doc}
        pending = saver.get_tuple(saved)
        assert pending is not None and pending.pending_writes == [("task", "messages", [second]), ("task", "doc", doc)]


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_equal_but_distinct_values_are_each_serialized(kind: str, tmp_path: Path) -> None:
    """Reuse is by identity only: a write equal to the stored value but not the same object is its own."""
    serde = CountingSerializer()
    with open_saver(kind, tmp_path, serde) as saver:
        written, stored = {"a": "x" * 300}, {"a": "x" * 300}
        step = empty_checkpoint()
        step["channel_values"] = {"doc": stored}
        step["channel_versions"] = {"doc": "1"}
        start = saver.put(config(), empty_checkpoint(), {}, {})
        serde.seen.clear()
        saver.put_step(
            start,
            [("task", [("doc", written)], "")],
            step,
            {},
            {"doc": "1"},
            expected_head=start["configurable"]["checkpoint_id"],
        )
        assert [v for v in serde.seen if v == written] == [written, stored]


def test_a_version_that_is_not_stored_costs_no_chain_lookup(tmp_path: Path) -> None:
    """A consumed channel's version has no blob: the read that asked for it already knows, and asks no more."""
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"a": [1, 2]}
    checkpoint["channel_versions"] = {"a": "1", "consumed": "3"}
    with SqliteSaver.from_conn_string(str(tmp_path / "c.sqlite")) as saver:
        saved = saver.put(config(), checkpoint, {}, {"a": "1"})
        saver._codec.forget()  # a cold read
        statements: list[str] = []
        saver.conn.set_trace_callback(statements.append)
        got = saver.get_tuple(saved)
        saver.conn.set_trace_callback(None)
        assert got is not None and got.checkpoint["channel_values"] == {"a": [1, 2]}
        assert not [s for s in statements if "RECURSIVE" in s]
    memory = InMemorySaver()
    saved = memory.put(config(), checkpoint, {}, {"a": "1"})
    memory._codec.forget()
    with mock.patch.object(MemoryStorage, "chain", autospec=True, side_effect=MemoryStorage.chain) as chain:
        got = memory.get_tuple(saved)
    assert got is not None and got.checkpoint["channel_values"] == {"a": [1, 2]}
    assert chain.call_count == 0


def test_a_claimed_guarded_put_reads_head_and_lease_in_one_statement(tmp_path: Path) -> None:
    with SqliteSaver.from_conn_string(str(tmp_path / "c.sqlite")) as saver, saver.claim_thread(config()):
        first = saver.put_guarded(config(), empty_checkpoint(), {}, {}, expected_head=None)
        statements: list[str] = []
        saver.conn.set_trace_callback(statements.append)
        saver.put_guarded(first, empty_checkpoint(), {}, {}, expected_head=first["configurable"]["checkpoint_id"])
        saver.conn.set_trace_callback(None)
        reads = [s for s in statements if s.startswith("SELECT")]
        assert len(reads) == 1 and "graphrt_thread_leases" in reads[0] and "graphrt_checkpoints" in reads[0]
        with pytest.raises(ThreadConflictError):  # a stale head is still refused in that one read
            saver.put_guarded(first, empty_checkpoint(), {}, {}, expected_head=first["configurable"]["checkpoint_id"])


def _wide_checkpoint(step: int, parent_versions: dict[str, str] | None) -> tuple[Any, dict[str, str]]:
    """A checkpoint of a 60-node graph (a record big enough to be stored as a delta), step `step` moving one channel."""
    versions = dict(parent_versions or {f"channel_{i}": "1" for i in range(60)})
    versions[f"channel_{step % 60}"] = str(step + 2)
    checkpoint = empty_checkpoint()
    checkpoint["id"] = str(uuid6())
    checkpoint["channel_versions"] = versions
    checkpoint["versions_seen"] = {f"node_{ch}": {ch: v} for ch, v in versions.items()}
    return checkpoint, versions


def test_a_group_commit_asks_storage_for_its_guard_and_snapshot_record_once(tmp_path: Path) -> None:
    """Saves committed together (`commit_saves`) read the head and lease, and confirm the snapshot record their
    deltas build on, once: later saves are checked against what the group wrote and read, and the release
    reuses the lease the guard read."""
    with SqliteSaver.from_conn_string(str(tmp_path / "c.sqlite")) as saver, saver.claim_thread(config()):
        checkpoint, versions = _wide_checkpoint(0, None)
        head = saver.put_guarded(config(), checkpoint, {}, {}, expected_head=None)
        saves = []
        for step in range(1, 4):
            checkpoint, versions = _wide_checkpoint(step, versions)
            expected = head["configurable"]["checkpoint_id"]
            saves.append(saver.prepare_save(head, [], checkpoint, {}, {}, expected_head=expected))
            head = saves[-1].new_config
        statements: list[str] = []
        saver.conn.set_trace_callback(statements.append)
        saver.commit_saves(saves, release_owner=held_owner(saver, "t1"))
        saver.conn.set_trace_callback(None)
        reads = [s for s in statements if s.startswith("SELECT")]
        assert len(reads) == 2, reads  # the guard (head and lease), and the snapshot record
        assert "graphrt_thread_leases" in reads[0] and reads[1].startswith("SELECT 1 FROM graphrt_checkpoints")
        assert [s for s in statements if s.startswith("DELETE FROM graphrt_thread_leases")]
        rows = saver.conn.execute("SELECT type FROM graphrt_checkpoints ORDER BY checkpoint_id").fetchall()
        assert [r[0] for r in rows] == ["json"] + [DELTA_TYPE] * 3
        got = saver.get_tuple(head)
        assert got is not None and got.checkpoint["channel_versions"] == versions


def test_a_group_commit_still_refuses_a_save_whose_head_moved(tmp_path: Path) -> None:
    """What a group answers from memory is what it wrote: a later save expecting another head fails the group."""
    with SqliteSaver.from_conn_string(str(tmp_path / "c.sqlite")) as saver, saver.claim_thread(config()):
        first = saver.put_guarded(config(), empty_checkpoint(), {}, {}, expected_head=None)
        expected = first["configurable"]["checkpoint_id"]
        a = saver.prepare_save(first, [], empty_checkpoint(), {}, {}, expected_head=expected)
        b = saver.prepare_save(first, [], empty_checkpoint(), {}, {}, expected_head=expected)  # a fork, not a's child
        with pytest.raises(ThreadConflictError):
            saver.commit_saves([a, b])
        assert saver.get_head_id(config()) == expected  # all or nothing


def test_a_read_of_a_list_grown_twice_since_the_last_read_costs_no_chain_lookup(tmp_path: Path) -> None:
    """A chat turn appends to its messages twice (the input, the reply): the read of the next turn gets the
    newest delta's base with it, and the version before that is the one the last read decoded."""
    with SqliteSaver.from_conn_string(str(tmp_path / "c.sqlite")) as saver:
        saved = config()
        for n, version in enumerate(["1", "2", "3"], start=1):
            checkpoint = empty_checkpoint()
            checkpoint["channel_values"] = {"messages": list(range(n)), "step": n}
            checkpoint["channel_versions"] = {"messages": version, "step": version}
            saved = saver.put(saved, checkpoint, {}, {"messages": version, "step": version})
            if n == 1:
                assert saver.get_tuple(saved) is not None  # the read of the previous turn
        statements: list[str] = []
        saver.conn.set_trace_callback(statements.append)
        got = saver.get_tuple(saved)
        saver.conn.set_trace_callback(None)
        assert got is not None and got.checkpoint["channel_values"] == {"messages": [0, 1, 2], "step": 3}
        assert not [s for s in statements if "RECURSIVE" in s]
        stored = saver.conn.execute(
            "SELECT version, base_version FROM graphrt_checkpoint_blobs WHERE channel = 'messages'"
        )
        assert sorted(stored.fetchall()) == [("1", None), ("2", "1"), ("3", "2")]  # deltas, as the test assumes


def test_memory_storage_leaves_saved_blobs_and_writes_to_the_garbage_collector_once(tmp_path: Path) -> None:
    """A long-lived InMemorySaver's full collections do not walk every blob and write it ever stored."""
    saver = InMemorySaver()
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"messages": ["hi", "there"], "n": 1}
    checkpoint["channel_versions"] = {"messages": "1", "n": "1"}
    saved = saver.put(config(), checkpoint, {}, {"messages": "1", "n": "1"})
    saver.put_writes(saved, [("messages", ["again"]), ("n", 2)], "task")
    gc.collect()
    blobs = [blob for rows in saver._storage.blob_rows.values() for blob in rows.values()]
    writes = [w for tasks in saver._storage.pending.values() for rows in tasks.values() for w in rows.values()]
    assert len(blobs) == 2 and len(writes) == 2
    assert not [row for row in blobs + writes if gc.is_tracked(row)]
    got = saver.get_tuple(saved)  # read back as the named tuples the core expects
    assert got is not None and got.checkpoint["channel_values"] == {"messages": ["hi", "there"], "n": 1}
    assert [(w[1], w[2]) for w in got.pending_writes] == [("messages", ["again"]), ("n", 2)]
