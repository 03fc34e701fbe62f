"""The PostgreSQL saver's round trips: a step's write is one, and a stale guess never changes an outcome.

Write transactions answer the core's reads (head, lease, delta bases) from what the saver last committed and
let the server check those answers at commit (`graphrt.checkpoint.postgres._pipeline`). These tests count the
round trips, and make another saver (another process) change the thread behind the first one's back.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from graphrt.checkpoint._ownership import now_micros
from graphrt.checkpoint._primitives import Lease
from graphrt.checkpoint._record import DELTA_TYPE
from graphrt.checkpoint.base import ChannelVersions, Checkpoint, empty_checkpoint
from graphrt.checkpoint.base.id import uuid6
from graphrt.checkpoint.postgres import PostgresSaver
from graphrt.checkpoint.postgres._pipeline import BatchCursor
from graphrt.checkpoint.postgres._prepared import spelled_out
from graphrt.config import RunnableConfig
from graphrt.errors import ThreadConflictError
from graphrt.graph import START, StateGraph
from tests.pg._chat import Chat, chat_graph


@contextmanager
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts the batches sent to the server (each one round trip) inside the block."""
    count = [0]
    flush = BatchCursor.flush

    def counting(self: BatchCursor) -> None:
        if self.pending:
            count[0] += 1
        flush(self)

    with monkeypatch.context() as patch:
        patch.setattr(BatchCursor, "flush", counting)
        yield count


def test_a_chat_turn_costs_a_fixed_handful_of_round_trips(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with PostgresSaver.from_conn_string(pg_dsn) as saver:
        graph = chat_graph(saver)
        config: RunnableConfig = {"configurable": {"thread_id": "chat"}}
        for _ in range(3):
            graph.invoke({"log": ["hi"]}, config, durability="sync")
        turns = []
        for _ in range(3):
            with round_trips(monkeypatch) as count:
                # "sync": one commit per checkpoint (the default, "async", may group them: fewer round trips).
                graph.invoke({"log": ["hi"]}, config, durability="sync")
            turns.append(count[0])
        # Flat as the thread grows: claim 1; load the checkpoint 1 (it, its writes, the blobs the codec does not
        # hold with their delta bases, and the commit); 3 checkpoints (input, step, with writes) 1 each; release 1.
        assert turns == [6, 6, 6]
        assert len(graph.get_state(config).values["log"]) == 12


def test_a_chat_turn_with_the_default_durability_costs_three_round_trips(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the README says: the claim, the load, and the turn's saves committed with the release; plus one when
    the background writer commits the input checkpoint while the step still runs (a race for a quick step)."""
    with PostgresSaver.from_conn_string(pg_dsn) as saver:
        graph = chat_graph(saver)
        config: RunnableConfig = {"configurable": {"thread_id": "chat"}}
        for _ in range(3):
            graph.invoke({"log": ["hi"]}, config)
        turns = []
        for _ in range(3):
            with round_trips(monkeypatch) as count:
                graph.invoke({"log": ["hi"]}, config)  # returns after its saves committed
            turns.append(count[0])
        assert set(turns) <= {3, 4}
        assert len(graph.get_state(config).values["log"]) == 12


def test_a_slow_chat_step_commits_its_input_checkpoint_while_it_runs(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's four round trips: a step longer than the background writer's start commits the input early."""

    def slow_reply(state: Chat) -> Chat:
        time.sleep(0.2)
        return {"log": ["reply"]}

    builder: Any = StateGraph(Chat)
    builder.add_node("reply", slow_reply)
    builder.add_edge(START, "reply")
    with PostgresSaver.from_conn_string(pg_dsn) as saver:
        graph = builder.compile(checkpointer=saver)
        config: RunnableConfig = {"configurable": {"thread_id": "slow"}}
        graph.invoke({"log": ["hi"]}, config)
        with round_trips(monkeypatch) as count:
            graph.invoke({"log": ["hi"]}, config)
        assert count[0] == 4


@contextmanager
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[list[str]]]:
    """The statements of each batch sent to the server inside the block."""
    batches: list[list[str]] = []
    flush = BatchCursor.flush

    def recording(self: BatchCursor) -> None:
        if self.pending:
            batches.append([spelled_out(q) for q in self._queue])
        flush(self)

    with monkeypatch.context() as patch:
        patch.setattr(BatchCursor, "flush", recording)
        yield batches


@pytest.mark.parametrize("durability", ["async", "sync"])
def test_only_the_thread_claim_commits_without_waiting_for_the_disk(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch, durability: Any
) -> None:
    with PostgresSaver.from_conn_string(pg_dsn) as saver:
        graph = chat_graph(saver)
        config: RunnableConfig = {"configurable": {"thread_id": "lazy"}}
        graph.invoke({"log": ["hi"]}, config, durability=durability)
        with sent(monkeypatch) as batches:
            graph.invoke({"log": ["hi"]}, config, durability=durability)
        lazy = [b for b in batches if any("synchronous_commit = off" in q for q in b)]
        # The claim alone: a server crash may lose it (the run's next save then fails its fence), never a save.
        assert len(lazy) == 1 and any("INSERT INTO graphrt_thread_leases" in q for q in lazy[0])
        assert not any("graphrt_checkpoints" in q for q in lazy[0])
        assert any("DELETE FROM graphrt_thread_leases" in q for q in batches[-1])  # the release: synchronous


def test_a_guarded_step_is_one_round_trip(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with PostgresSaver.from_conn_string(pg_dsn) as saver:
        thread = Writer(saver, "t")
        thread.put({"log": ["a"]})
        with round_trips(monkeypatch) as count:
            thread.put({"log": ["a", "b"]})
            thread.put({"log": ["a", "b", "c"]})
        assert count[0] == 2


@pytest.mark.parametrize("prepare_threshold", [None, 5])
def test_a_steps_expectations_are_parsed_and_planned_once(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch, prepare_threshold: int | None
) -> None:
    """Prepared (each its own statement) where the connection allows; else one statement for them all."""
    with PostgresSaver.from_conn_string(pg_dsn, prepare_threshold=prepare_threshold) as saver:
        thread = Writer(saver, "t")
        with saver.claim_thread(_config("t")):
            thread.put({"log": ITEMS[:100]})
            with sent(monkeypatch) as batches:
                thread.put({"log": ITEMS[:101]})  # guessed: the head, the lease and the delta's base
        [batch] = batches
        expectations = [q for q in batch if q.startswith("SELECT graphrt_expect(")]
        if prepare_threshold is None:
            [one] = expectations
            assert one.count("graphrt_expect(") == 3
        else:
            assert len(expectations) == 3 and all(q.count("graphrt_expect(") == 1 for q in expectations)


def test_a_head_moved_by_another_process_is_a_conflict_and_nothing_is_saved(pg_dsn: str) -> None:
    with PostgresSaver.from_conn_string(pg_dsn) as ours, PostgresSaver.from_conn_string(pg_dsn) as theirs:
        mine = Writer(ours, "t")
        first = mine.put({"log": ["a"]})
        other = Writer(theirs, "t", mine)
        moved = other.put({"log": ["a", "theirs"]})
        # `ours` last saw `first` as the head: its guess is stale, the server refuses it, the exact retry conflicts.
        with pytest.raises(ThreadConflictError) as caught:
            mine.put({"log": ["a", "ours"]})
        assert caught.value.found == moved and mine.head == first
        saved = ours.get_tuple(_config("t"))
        assert saved is not None and saved.checkpoint["channel_values"]["log"] == ["a", "theirs"]
        # Having read the new head, the next guarded step goes through.
        mine.head = moved
        mine.put({"log": ["a", "theirs", "ours"]})


def test_a_claim_taken_over_by_another_process_fences_the_run(pg_dsn: str) -> None:
    with PostgresSaver.from_conn_string(pg_dsn) as ours, PostgresSaver.from_conn_string(pg_dsn) as theirs:
        mine = Writer(ours, "t")
        with ours.claim_thread(_config("t")):
            first = mine.put({"log": ["a"]})
            with theirs._write_tx("t") as tx:  # another machine takes the thread over (say, after a network split)
                assert tx.swap_lease("t", tx.lease("t"), Lease("thief", "elsewhere/boot", 1, now_micros() + 60_000_000))
            # `ours` still believes it holds the lease; the server refutes that, and the exact retry is fenced.
            with pytest.raises(ThreadConflictError):
                mine.put({"log": ["a", "b"]})
            with pytest.raises(ThreadConflictError):
                ours.put_writes_guarded(
                    {"configurable": {**_config("t")["configurable"], "checkpoint_id": first}}, [("log", ["x"])], "task"
                )
        assert ours.get_head_id(_config("t")) == first
        with theirs._read_tx() as tx:
            lease = tx.lease("t")
        assert lease is not None and lease.owner == "thief"  # not released by the fenced run


def test_a_delta_base_deleted_by_another_process_is_not_built_on(pg_dsn: str) -> None:
    with PostgresSaver.from_conn_string(pg_dsn) as ours, PostgresSaver.from_conn_string(pg_dsn) as theirs:
        mine = Writer(ours, "t")
        mine.put({"log": ["a"]}, guarded=False)
        mine.put({"log": ["a", "b"]}, guarded=False)
        theirs.delete_thread("t")
        # `ours` stores an append as a delta on the version it remembers; that one is gone, so it is stored whole.
        mine.put({"log": ["a", "b", "c"]}, guarded=False)
    with PostgresSaver.from_conn_string(pg_dsn) as fresh:
        saved = fresh.get_tuple(_config("t"))
        assert saved is not None and saved.checkpoint["channel_values"]["log"] == ["a", "b", "c"]


def test_a_record_snapshot_deleted_by_another_process_is_not_built_on(pg_dsn: str) -> None:
    with PostgresSaver.from_conn_string(pg_dsn) as ours, PostgresSaver.from_conn_string(pg_dsn) as theirs:
        mine = Writer(ours, "t")
        big = {f"c{i}": i for i in range(60)}  # a record over `MIN_SNAPSHOT`: the next ones are deltas on it
        mine.put(big, guarded=False)
        mine.put({"c0": -1}, guarded=False)
        with ours._read_tx() as tx:
            row = tx.checkpoint("t", "", None)
        assert row is not None and row.type == DELTA_TYPE
        theirs.delete_thread("t")
        # `ours` builds on the snapshot it remembers; the server refutes it, and the exact retry stores it whole.
        mine.put({"c0": -2}, guarded=False)
    with PostgresSaver.from_conn_string(pg_dsn) as fresh:
        saved = fresh.get_tuple(_config("t"))
        assert saved is not None and saved.checkpoint["channel_versions"] == mine.versions
        assert saved.checkpoint["channel_values"] == {"c0": -2}


def test_loading_the_head_this_saver_wrote_is_one_round_trip(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with PostgresSaver.from_conn_string(pg_dsn) as saver:
        graph = chat_graph(saver)
        config: RunnableConfig = {"configurable": {"thread_id": "ahead"}}
        graph.invoke({"log": ["hi"]}, config, durability="sync")
        with round_trips(monkeypatch) as count:
            saved = saver.get_tuple(config)
        assert count[0] == 1
        assert saved is not None and saved.checkpoint["channel_values"]["log"] == ["hi", "reply 1"]
        assert [w[1] for w in saved.pending_writes or []] == []


def test_a_head_written_by_another_process_is_read_exactly(pg_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with PostgresSaver.from_conn_string(pg_dsn) as ours, PostgresSaver.from_conn_string(pg_dsn) as theirs:
        mine = Writer(ours, "t")
        mine.put({"log": ["a"], "n": 1})
        other = Writer(theirs, "t", mine)
        other.put({"log": ["a", "theirs"], "m": 2})
        # `ours` guesses the blobs of the head it wrote; the head is another one: the load is done again exactly.
        with round_trips(monkeypatch) as count:
            saved = ours.get_tuple(_config("t"))
        assert saved is not None and saved.checkpoint["channel_values"] == {"log": ["a", "theirs"], "n": 1, "m": 2}
        assert count[0] > 1


def test_a_delta_chain_longer_than_the_read_ahead_is_read_exactly(pg_dsn: str) -> None:
    with PostgresSaver.from_conn_string(pg_dsn) as ours:
        mine = Writer(ours, "t")
        for n in range(100, 104):  # each append a delta on the one before: the chain outgrows one prefetched base
            mine.put({"log": ITEMS[:n]})
        saved = ours.get_tuple(_config("t"))
        assert saved is not None and saved.checkpoint["channel_values"] == {"log": ITEMS[:103]}


def test_a_read_the_read_ahead_did_not_cover_is_not_made_outside_its_snapshot(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with PostgresSaver.from_conn_string(pg_dsn) as ours, PostgresSaver.from_conn_string(pg_dsn) as theirs:
        mine = Writer(ours, "t")
        for n in range(100, 104):
            mine.put({"log": ITEMS[:n]})
        flush, deleted = BatchCursor.flush, []

        def deleting_after_the_read_ahead(self: BatchCursor) -> None:
            flush(self)
            if self.ended and not deleted:  # another process deletes the thread right after the read-ahead
                deleted.append(True)
                theirs.delete_thread("t")

        monkeypatch.setattr(BatchCursor, "flush", deleting_after_the_read_ahead)
        # The chain's older links are not in the read-ahead: the load runs again exactly, and finds no thread.
        assert ours.get_tuple(_config("t")) is None
        assert deleted


ITEMS = [f"item {i}" for i in range(200)]
"""The same items appended again and again: stored as deltas on the list before."""


def _config(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}


class Writer:
    """Saves a thread's checkpoints one after another, as a run does (versions move for changed channels)."""

    def __init__(self, saver: PostgresSaver, thread_id: str, after: Writer | None = None) -> None:
        self.saver = saver
        self.thread_id = thread_id
        self.head: str | None = after.head if after else None
        self.versions: ChannelVersions = dict(after.versions) if after else {}

    def put(self, values: dict[str, Any], *, guarded: bool = True) -> str:
        checkpoint: Checkpoint = empty_checkpoint()
        checkpoint["id"] = str(uuid6())
        new_versions: ChannelVersions = {}
        for channel, value in values.items():
            new_versions[channel] = self.saver.get_next_version(self.versions.get(channel), None)  # type: ignore[arg-type]
            checkpoint["channel_values"][channel] = value
        checkpoint["channel_versions"] = {**self.versions, **new_versions}
        config = _config(self.thread_id)
        if self.head is not None:
            config["configurable"]["checkpoint_id"] = self.head
        metadata: Any = {"source": "loop", "step": 0}
        if guarded:
            saved = self.saver.put_guarded(config, checkpoint, metadata, new_versions, expected_head=self.head)
        else:
            saved = self.saver.put(config, checkpoint, metadata, new_versions)
        self.versions = dict(checkpoint["channel_versions"])
        self.head = str(saved["configurable"]["checkpoint_id"])
        return self.head
