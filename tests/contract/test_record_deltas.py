"""Checkpoint records stored as deltas on a snapshot record (`graphrt.checkpoint._record`), on every backend.

A saver that opts in (the SQL savers) stores a big record as the entries changed since a snapshot; whatever a
backend stores, every checkpoint must read back exactly as it was put: cold, listed, after a fork, a prune,
a copy, and when the snapshot was deleted behind the writer's back.
"""

from __future__ import annotations

import asyncio
import copy
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from graphrt.checkpoint._record import DELTA_TYPE, MIN_SNAPSHOT, Records
from graphrt.checkpoint.base import Checkpoint, empty_checkpoint
from graphrt.checkpoint.base.id import uuid6
from graphrt.checkpoint.sqlite import SqliteSaver
from graphrt.config import RunnableConfig

NODES = 60
"""Enough channels and nodes for a record well over `MIN_SNAPSHOT`."""


def config(thread_id: str = "t", checkpoint_id: str | None = None) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


class Chain:
    """Puts checkpoints as a chain of nodes makes them: each step moves one channel and one node's seen map."""

    def __init__(self, saver: Any, thread_id: str = "t") -> None:
        self.saver = saver
        self.thread_id = thread_id
        self.versions = {f"c{i}": saver.get_next_version(None, None) for i in range(NODES)}
        self.seen: dict[str, dict[str, Any]] = {f"n{i}": {f"c{i}": self.versions[f"c{i}"]} for i in range(NODES)}
        self.head: str | None = None
        self.saved: dict[str, Checkpoint] = {}
        self.step = 0

    def put(self, parent: str | None = None, *, new_node: bool = False) -> str:
        i = self.step % NODES
        self.step += 1
        channel = f"c{i}" if not new_node else f"extra{self.step}"
        self.versions = {**self.versions, channel: self.saver.get_next_version(self.versions.get(channel), None)}
        self.seen = {**self.seen, f"n{i}": {channel: self.versions[channel]}}
        checkpoint = empty_checkpoint()
        checkpoint["id"] = str(uuid6())
        checkpoint["channel_versions"] = self.versions
        checkpoint["versions_seen"] = self.seen
        checkpoint["channel_values"] = {channel: self.step}
        parent = self.head if parent is None else parent
        saved = self.saver.put(
            config(self.thread_id, parent), checkpoint, {"step": self.step}, {channel: self.versions[channel]}
        )
        self.head = str(saved["configurable"]["checkpoint_id"])
        self.saved[self.head] = copy.deepcopy(checkpoint)
        return self.head

    def check(self, saver: Any, checkpoint_id: str, thread_id: str | None = None) -> None:
        got = saver.get_tuple(config(thread_id or self.thread_id, checkpoint_id))
        assert got is not None
        want = self.saved[checkpoint_id]
        for key in ("id", "channel_versions", "versions_seen", "updated_channels", "v", "ts"):
            assert got.checkpoint[key] == want[key], key


def delta_rows(saver: Any) -> int:
    """How many stored records are deltas (SQL savers; -1 when the backend is not SQL)."""
    if isinstance(getattr(saver, "conn", None), sqlite3.Connection):
        return int(
            saver.conn.execute("SELECT count(*) FROM graphrt_checkpoints WHERE type = ?", (DELTA_TYPE,)).fetchone()[0]
        )
    connector = getattr(saver, "_connector", None)
    if connector is None or not hasattr(saver, "_knowledge"):
        return -1
    sql = "SELECT count(*) FROM graphrt_checkpoints WHERE type = %s"
    from graphrt._postgres import AsyncConnector

    if not isinstance(connector, AsyncConnector):
        with connector.connection() as conn:
            return int(conn.execute(sql, (DELTA_TYPE,)).fetchone()[0])

    async def count() -> int:
        from psycopg.rows import tuple_row

        async with connector.connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute(sql, (DELTA_TYPE,))
            row = await cur.fetchone()
            return int(row[0])

    return asyncio.run(count())


def test_every_checkpoint_reads_back_exactly_cold_and_listed(core_saver: Any) -> None:
    chain = Chain(core_saver)
    ids = [chain.put() for _ in range(3 * NODES)]
    if core_saver.record_deltas:
        assert delta_rows(core_saver) > len(ids) // 2  # most records are deltas; some are snapshots
    core_saver._records = Records()  # a cold saver: every snapshot is read from storage
    for checkpoint_id in [*ids[::7], ids[-1]]:
        chain.check(core_saver, checkpoint_id)
    listed = list(core_saver.list(config()))
    assert [t.checkpoint["id"] for t in listed] == ids[::-1]
    for item in listed:
        assert item.checkpoint["channel_versions"] == chain.saved[item.checkpoint["id"]]["channel_versions"]
        assert item.checkpoint["versions_seen"] == chain.saved[item.checkpoint["id"]]["versions_seen"]


def test_forks_new_channels_prune_and_copy_keep_every_record_whole(core_saver: Any) -> None:
    chain = Chain(core_saver)
    ids = [chain.put() for _ in range(NODES)]
    fork = chain.put(parent=ids[3])  # a fork from an old checkpoint: still a delta on a stored snapshot
    grown = chain.put(new_node=True)  # a channel the snapshot lacks
    for checkpoint_id in (fork, grown, ids[5]):
        chain.check(core_saver, checkpoint_id)
    core_saver.copy_thread("t", "copy")
    core_saver.prune(["t"], strategy="keep_latest")  # the head's snapshot is deleted: the head is rewritten whole
    remembered, core_saver._records = core_saver._records, Records()
    chain.check(core_saver, grown)
    assert [t.checkpoint["id"] for t in core_saver.list(config())] == [grown]
    kept = core_saver.get_tuple(config())
    assert kept is not None and kept.parent_config is None
    for checkpoint_id in (ids[0], ids[-1], fork, grown):
        chain.check(core_saver, checkpoint_id, "copy")
    # The writer still remembers the deleted snapshot: its next record is stored whole, and reads back.
    core_saver._records = remembered
    after = chain.put()
    core_saver._records = Records()
    chain.check(core_saver, after)


def test_a_snapshot_deleted_by_another_process_is_not_built_on(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sqlite")
    with SqliteSaver.from_conn_string(path) as ours, SqliteSaver.from_conn_string(path) as theirs:
        chain = Chain(ours)
        for _ in range(3):
            chain.put()
        assert delta_rows(ours) == 2
        theirs.delete_thread("t")
        head = chain.put()  # `ours` remembers the deleted snapshot; the record is stored whole
        assert delta_rows(ours) == 0
        ours._records = Records()
        chain.check(ours, head)


def test_records_written_whole_by_an_earlier_version_still_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "c.sqlite")
    with SqliteSaver.from_conn_string(path) as old:
        monkeypatch.setattr(old, "record_deltas", False)
        chain = Chain(old)
        ids = [chain.put() for _ in range(NODES // 2)]
        assert delta_rows(old) == 0
    with SqliteSaver.from_conn_string(path) as new:
        chain.saver = new
        ids += [chain.put() for _ in range(NODES // 2)]
        assert delta_rows(new) > 0
        new._records = Records()
        for checkpoint_id in ids:
            chain.check(new, checkpoint_id)
        assert [t.checkpoint["id"] for t in new.list(config())] == ids[::-1]


def test_small_records_and_removed_entries_are_stored_whole(tmp_path: Path) -> None:
    with SqliteSaver.from_conn_string(str(tmp_path / "c.sqlite")) as saver:
        checkpoint = empty_checkpoint()
        checkpoint["channel_versions"] = {"a": "1"}
        saver.put(config(), checkpoint, {}, {"a": "1"})
        saver.put(config(), {**checkpoint, "id": str(uuid6())}, {}, {})
        assert delta_rows(saver) == 0  # under MIN_SNAPSHOT bytes
        chain = Chain(saver, "big")
        chain.put()
        chain.put()
        assert delta_rows(saver) == 1
        chain.versions = {k: v for k, v in chain.versions.items() if k != "c30"}  # an entry removed
        removed = chain.put()
        assert delta_rows(saver) == 1
        saver._records = Records()
        chain.check(saver, removed)
    assert MIN_SNAPSHOT < 60 * 100
