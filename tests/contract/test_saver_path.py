"""The per-step save path does no work twice: values serialized once per step, no lookups for what is absent."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from _checkpoint_helpers import config

from graphrt.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
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
