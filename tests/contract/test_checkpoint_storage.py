"""Storage properties of graphrt's savers: delta chains, cold reads, atomic guards across processes."""

from __future__ import annotations

import copy
import multiprocessing
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import anyio
import pytest
from _checkpoint_helpers import Thread, call, config, race_put_guarded
from hypothesis import given, settings
from hypothesis import strategies as st

import graphrt.checkpoint.base as base_module
import graphrt.checkpoint.memory as memory_module
import graphrt.checkpoint.sqlite as sqlite_module
import graphrt.checkpoint.sqlite.aio as aio_module
from graphrt.checkpoint import _delta
from graphrt.checkpoint.base import BaseCheckpointSaver
from graphrt.checkpoint.memory import InMemorySaver, MemorySaver
from graphrt.checkpoint.sqlite import SqliteSaver
from graphrt.checkpoint.sqlite.aio import AsyncSqliteSaver
from graphrt.errors import ThreadConflictError


def blob_rows(saver: SqliteSaver, thread_id: str = "t1") -> list[tuple[str, str, int, int]]:
    rows = saver.conn.execute(
        "SELECT channel, version, depth, length(blob) FROM graphrt_checkpoint_blobs WHERE thread_id = ? "
        "ORDER BY version",
        (thread_id,),
    ).fetchall()
    return [tuple(r) for r in rows]


def test_public_surface_matches_langgraph_names() -> None:
    for module, names in [
        (
            base_module,
            {
                "BaseCheckpointSaver",
                "Checkpoint",
                "CheckpointMetadata",
                "CheckpointTuple",
                "ChannelVersions",
                "PendingWrite",
                "WRITES_IDX_MAP",
                "EXCLUDED_METADATA_KEYS",
                "empty_checkpoint",
                "copy_checkpoint",
                "get_checkpoint_id",
                "get_checkpoint_metadata",
                "SerializerProtocol",
            },
        ),
        (memory_module, {"InMemorySaver", "MemorySaver"}),
        (sqlite_module, {"SqliteSaver"}),
        (aio_module, {"AsyncSqliteSaver"}),
    ]:
        assert isinstance(module.__all__, tuple)
        assert names <= set(module.__all__)
        assert all(hasattr(module, name) for name in module.__all__)
    assert MemorySaver is InMemorySaver
    assert base_module.WRITES_IDX_MAP == {
        "__error__": -1,
        "__scheduled__": -2,
        "__interrupt__": -3,
        "__resume__": -4,
    }


def test_copy_checkpoint_and_empty_checkpoint_shapes() -> None:
    checkpoint = base_module.empty_checkpoint()
    assert set(checkpoint) == {
        "v",
        "id",
        "ts",
        "channel_values",
        "channel_versions",
        "versions_seen",
        "pending_sends",
        "updated_channels",
    }
    checkpoint["versions_seen"]["node"] = {"a": 1}
    copied = base_module.copy_checkpoint(checkpoint)
    copied["versions_seen"]["node"]["a"] = 2
    copied["channel_values"]["x"] = 1
    assert checkpoint["versions_seen"]["node"] == {"a": 1} and checkpoint["channel_values"] == {}


def test_checkpoint_ids_strictly_increase_within_a_tick() -> None:
    from graphrt.checkpoint.base.id import uuid6

    ids = [str(uuid6()) for _ in range(20_000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert uuid6().version == 6


def test_base_put_guarded_default_and_async_offload() -> None:
    class Delegating(BaseCheckpointSaver[str]):
        """A user's custom saver that implements only the sync methods."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = InMemorySaver()
            self.get_tuple = self.inner.get_tuple  # type: ignore[method-assign]
            self.put = self.inner.put  # type: ignore[method-assign]
            self.get_next_version = self.inner.get_next_version  # type: ignore[method-assign]

    saver = Delegating()
    thread = Thread(saver)
    checkpoint, versions = thread.checkpoint({"a": 1})
    saved = anyio.run(lambda: saver.aput_guarded(config(), checkpoint, {}, versions, expected_head=None))
    checkpoint, versions = thread.checkpoint({"a": 2})
    with pytest.raises(ThreadConflictError):
        saver.put_guarded(config(), checkpoint, {}, versions, expected_head=None)
    assert anyio.run(saver.aget, saved)["channel_values"] == {"a": 1}


def test_list_values_are_stored_as_deltas_with_periodic_snapshots(tmp_path: Path) -> None:
    with SqliteSaver.from_conn_string(str(tmp_path / "c.sqlite")) as saver:
        thread = Thread(saver)
        messages: list[Any] = []
        for turn in range(150):
            messages = [*messages, {"role": "user", "text": f"question {turn}" * 5}]
            thread.put("sync", {"messages": messages, "step": turn})
        rows = [r for r in blob_rows(saver) if r[0] == "messages"]
        assert len(rows) == 150
        assert [r[2] for r in rows][:66] == [*range(64), 0, 1]  # depth resets at each snapshot
        whole = [r for r in rows if r[2] == 0]
        assert len(whole) == 3
        assert max(r[3] for r in rows if r[2] > 0) < 200  # a delta holds one message
        head = saver.get_tuple(config())
        assert head is not None and head.checkpoint["channel_values"]["messages"] == messages


def test_only_changed_channels_are_written(tmp_path: Path) -> None:
    with SqliteSaver.from_conn_string(str(tmp_path / "c.sqlite")) as saver:
        thread = Thread(saver)
        thread.put("sync", {"a": "x" * 1000, "b": [1], "c": 3})
        before = len(blob_rows(saver))
        thread.put("sync", {"c": 4})
        assert len(blob_rows(saver)) == before + 1
        got = saver.get_tuple(config())
        assert got is not None and got.checkpoint["channel_values"] == {"a": "x" * 1000, "b": [1], "c": 4}


def test_a_fresh_saver_reads_delta_chains_cold_after_copy_and_prune(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sqlite")
    expected: dict[str, Any] = {}
    with SqliteSaver.from_conn_string(path) as saver:
        thread = Thread(saver)
        messages: list[Any] = []
        for turn in range(100):
            messages = [*messages, f"m{turn}"]
            saved = thread.put("sync", {"messages": messages})
            expected[saved["configurable"]["checkpoint_id"]] = list(messages)
        saver.copy_thread("t1", "copy")
        saver.copy_thread("t1", "pruned")
        saver.prune(["pruned"])
    with SqliteSaver.from_conn_string(path) as cold:
        for thread_id in ("t1", "copy"):
            listed = list(cold.list(config(thread_id)))
            assert {t.checkpoint["id"]: t.checkpoint["channel_values"]["messages"] for t in listed} == expected
    with SqliteSaver.from_conn_string(path) as cold:
        for checkpoint_id, value in reversed(expected.items()):
            got = cold.get_tuple(config("copy", checkpoint_id=checkpoint_id))
            assert got is not None and got.checkpoint["channel_values"]["messages"] == value
        head = cold.get_tuple(config("pruned"))
        assert head is not None and head.checkpoint["channel_values"]["messages"] == messages
        assert {
            r[2]
            for r in blob_rows(cold, "pruned")
            if r[0] == "messages" and r[1] == head.checkpoint["channel_versions"]["messages"]
        } == {0}


def test_reads_share_no_list_and_reread_is_served_from_memory(tmp_path: Path) -> None:
    with SqliteSaver.from_conn_string(str(tmp_path / "c.sqlite")) as saver:
        thread = Thread(saver)
        saved = thread.put("sync", {"messages": [{"a": 1}]})
        first = saver.get_tuple(saved)
        statements: list[str] = []
        saver.conn.set_trace_callback(statements.append)
        second = saver.get_tuple(saved)
        saver.conn.set_trace_callback(None)
        assert statements and not [s for s in statements if "graphrt_checkpoint_blobs" in s]
        assert first is not None and second is not None
        a, b = first.checkpoint["channel_values"]["messages"], second.checkpoint["channel_values"]["messages"]
        assert a == b and a is not b


def test_a_long_list_never_chains_past_what_a_read_follows(monkeypatch: pytest.MonkeyPatch) -> None:
    """A list long enough for `size // 8` appends to exceed `MAX_CHAIN` still snapshots in time."""
    import graphrt.checkpoint.memory._storage as memory_storage

    monkeypatch.setattr(_delta, "MAX_CHAIN", 40)
    monkeypatch.setattr(memory_storage, "MAX_CHAIN", 40)
    saver = InMemorySaver()
    thread = Thread(saver)
    items = list(range(1000))  # size // 8 = 125 links allowed by size alone
    for i in range(60):
        items = [*items, i]
        thread.put("sync", {"items": items})
    saver._codec.forget()  # a cold read follows the stored chain
    head = saver.get_tuple(config())
    assert head is not None and head.checkpoint["channel_values"]["items"] == items


def test_a_chat_turn_after_a_snapshot_reads_no_blob(tmp_path: Path) -> None:
    """Each turn reads the head and appends to it; the turn after a snapshot finds it decoded already."""
    with SqliteSaver.from_conn_string(str(tmp_path / "c.sqlite")) as saver:
        thread = Thread(saver)
        thread.put("sync", {"messages": [{"turn": -1}]})
        snapshot_reads = 0
        for turn in range(70):
            head = saver.get_tuple(config())
            assert head is not None
            history = head.checkpoint["channel_values"]["messages"]
            assert history == [{"turn": t} for t in range(-1, turn)]
            appended = {"turn": turn}
            thread.put("sync", {"messages": [*history, appended]})
            if blob_rows(saver)[-1][2] != 0:
                continue
            # This turn stored the whole list: the next read is served from memory...
            statements: list[str] = []
            saver.conn.set_trace_callback(statements.append)
            after = saver.get_tuple(config())
            saver.conn.set_trace_callback(None)
            assert not [s for s in statements if "graphrt_checkpoint_blobs" in s]
            # ...with copies of what the caller appended, not the caller's objects.
            assert after is not None
            got = after.checkpoint["channel_values"]["messages"]
            assert got[-1] == appended and got[-1] is not appended
            snapshot_reads += 1
        assert snapshot_reads == 1  # the snapshot after 64 deltas


def test_a_snapshot_joins_the_json_written_for_the_list_already(tmp_path: Path) -> None:
    """Each item is serialized once: a snapshot reuses the JSON of the snapshot and deltas it extends,
    whether the list was last written or read back, and stores what serializing it whole would."""
    with SqliteSaver.from_conn_string(str(tmp_path / "c.sqlite")) as saver:
        thread = Thread(saver)
        serialized: list[Any] = []
        dumps = saver.serde.dumps_typed

        def counting(value: Any) -> tuple[str, bytes]:
            serialized.extend(value)
            return dumps(value)

        messages: list[Any] = []
        with mock.patch.object(saver.serde, "dumps_typed", counting):
            for turn in range(140):
                if turn % 2:  # a chat turn: append to the history read back
                    head = saver.get_tuple(config())
                    assert head is not None
                    messages = head.checkpoint["channel_values"]["messages"]
                messages = [*messages, {"turn": turn, "text": "é\u2028" * (turn % 3)}]
                thread.put("sync", {"messages": messages})
        # Once each, but for the few appended since the last read, copied for the next one at each snapshot.
        assert len(serialized) <= len(messages) + 4
        rows = saver.conn.execute(
            "SELECT depth, blob FROM graphrt_checkpoint_blobs WHERE channel = 'messages' ORDER BY version"
        ).fetchall()
        assert [depth for depth, _ in rows[63:66]] == [63, 0, 1]
        assert bytes(rows[64][1]) == dumps(messages[:65])[1]
    with SqliteSaver.from_conn_string(str(tmp_path / "c.sqlite")) as cold:
        head = cold.get_tuple(config())
        assert head is not None and head.checkpoint["channel_values"]["messages"] == messages


def test_overwriting_a_reused_version_keeps_the_deltas_built_on_it(saver: Any, mode: str) -> None:
    inner = saver.inner
    checkpoint = base_module.empty_checkpoint()
    checkpoint["channel_values"] = {"m": ["a"]}
    checkpoint["channel_versions"] = {"m": "1"}
    first = call(inner, "put", mode, config(), checkpoint, {}, {"m": "1"})
    second_cp = base_module.empty_checkpoint()
    second_cp["channel_values"] = {"m": [*checkpoint["channel_values"]["m"], "b"]}
    second_cp["channel_versions"] = {"m": "2"}
    second = call(inner, "put", mode, first, second_cp, {}, {"m": "2"})
    third = base_module.empty_checkpoint()
    third["channel_values"] = {"m": ["replaced"]}
    third["channel_versions"] = {"m": "1"}
    call(inner, "put", mode, config(), third, {}, {"m": "1"})
    got = call(inner, "get_tuple", mode, second)
    assert got.checkpoint["channel_values"] == {"m": ["a", "b"]}


def test_put_guarded_threads_race_exactly_one_wins(saver: Any) -> None:
    thread = Thread(saver.inner)
    head = thread.put("sync", {"a": 0})["configurable"]["checkpoint_id"]
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def attempt(i: int) -> None:
        checkpoint, versions = Thread(saver.inner).checkpoint({"a": i})
        barrier.wait()
        try:
            saver.inner.put_guarded(config(checkpoint_id=head), checkpoint, {}, versions, expected_head=head)
            outcomes.append("won")
        except ThreadConflictError:
            outcomes.append("conflict")

    workers = [threading.Thread(target=attempt, args=(i,)) for i in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert sorted(outcomes) == ["conflict", "conflict", "conflict", "won"]
    assert len(list(saver.inner.list(config()))) == 2


def test_two_processes_racing_put_guarded_on_one_file(tmp_path: Path) -> None:
    path = str(tmp_path / "shared.sqlite")
    with SqliteSaver.from_conn_string(path) as saver:
        head = Thread(saver, "raced").put("sync", {"winner": "nobody"})["configurable"]["checkpoint_id"]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [ctx.Process(target=race_put_guarded, args=(path, head, name, barrier, results)) for name in ("p1", "p2")]
    for p in procs:
        p.start()
    outcomes = sorted([results.get(timeout=60) for _ in procs], key=lambda r: r[1])
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    (conflict_name, conflict, found), (winner_name, won, winner_id) = outcomes
    assert (conflict, won) == ("conflict", "won") and conflict_name != winner_name
    assert found == winner_id
    with SqliteSaver.from_conn_string(path) as saver:
        got = saver.get_tuple(config("raced"))
        assert got is not None and got.checkpoint["channel_values"] == {"winner": winner_name}
        assert len(list(saver.list(config("raced")))) == 2


def test_setup_is_idempotent_and_configures_the_file(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sqlite")
    conn = sqlite3.connect(path, check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    saver.setup()
    SqliteSaver(conn).setup()
    assert conn.execute("SELECT v FROM graphrt_checkpoint_migrations").fetchall() == [(1,), (2,)]
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (5000,)
    Thread(saver).put("sync", {"a": 1})  # a connection in Python's default transaction mode works too
    conn.close()


def test_sqlite_savers_reject_other_connections() -> None:
    with pytest.raises(TypeError, match=r"^AsyncSqliteSaver takes a sqlite3.Connection, got str\. "):
        AsyncSqliteSaver("checkpoints.sqlite")  # type: ignore[arg-type]


def test_async_sqlite_saver_from_conn_string(tmp_path: Path) -> None:
    async def main() -> Any:
        async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "a.sqlite")) as saver:
            await saver.setup()
            thread = Thread(saver)
            checkpoint, versions = thread.checkpoint({"a": [1]})
            saved = await saver.aput(config(), checkpoint, {"source": "input"}, versions)
            await saver.aput_writes(saved, [("a", 2)], "task")
            got = await saver.aget_tuple(config())
            return got, [t async for t in saver.alist(None)]

    got, listed = anyio.run(main)
    assert got.checkpoint["channel_values"] == {"a": [1]} and got.pending_writes == [("task", "a", 2)]
    assert len(listed) == 1


def test_in_memory_saver_is_a_context_manager() -> None:
    with InMemorySaver() as saver:
        Thread(saver).put("sync", {"a": 1})

    async def main() -> None:
        async with InMemorySaver() as saver:
            assert await saver.aget_tuple(config()) is None

    anyio.run(main)


# -- the law: whatever sequence of appends, replacements and forks, every checkpoint reads back -------

_items = st.lists(
    st.one_of(st.integers(), st.text(max_size=3), st.dictionaries(st.text(max_size=2), st.integers(), max_size=2)),
    max_size=3,
)
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("append"), _items),
        st.tuples(st.just("append_in_place"), _items),
        st.tuples(st.just("replace"), _items),
        st.tuples(st.just("reread_append"), _items),
        st.tuples(st.just("fork"), st.integers(min_value=0, max_value=50), _items),
        st.tuples(st.just("other"), st.integers()),
    ),
    min_size=1,
    max_size=30,
)


@contextmanager
def _law_saver(kind: str, path: Path) -> Iterator[Any]:
    if kind == "memory":
        yield InMemorySaver()
    else:
        with SqliteSaver.from_conn_string(":memory:" if kind == "sqlite_memory" else str(path)) as saver:
            yield saver


@pytest.mark.parametrize("kind", ["memory", "sqlite_memory", "sqlite_file"])
def test_law_every_checkpoint_reads_back_what_was_put(kind: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    @settings(max_examples=40, deadline=None)
    @given(ops=_ops)
    def law(ops: list[tuple[Any, ...]]) -> None:
        path = tmp_path_factory.mktemp("law") / "law.sqlite"
        with mock.patch.object(_delta, "SNAPSHOT_EVERY", 4), _law_saver(kind, path) as saver:
            run_law(saver, ops)
            if kind == "sqlite_file":
                with SqliteSaver.from_conn_string(str(path)) as cold:
                    check_all(cold, saved_by_saver[id(saver)])

    saved_by_saver: dict[int, list[tuple[Any, dict[str, Any]]]] = {}

    def run_law(saver: Any, ops: list[tuple[Any, ...]]) -> None:
        saved: list[tuple[Any, dict[str, Any]]] = []
        saved_by_saver[id(saver)] = saved
        parent: Any = config()
        values: dict[str, Any] = {}
        versions: dict[str, Any] = {}
        for op in ops:
            kind_, *args = op
            changed: dict[str, Any] = {}
            if kind_ == "append":
                changed["messages"] = [*values.get("messages", []), *args[0]]
            elif kind_ == "append_in_place":
                values.setdefault("messages", []).extend(args[0])
                changed["messages"] = values["messages"]
            elif kind_ == "replace":
                changed["messages"] = list(args[0])
            elif kind_ == "reread_append":
                got = saver.get_tuple(parent) if saved else None
                base = got.checkpoint["channel_values"].get("messages", []) if got else []
                changed["messages"] = [*base, *args[0]]
            elif kind_ == "fork" and saved:
                at_config, _ = saved[args[0] % len(saved)]
                got = saver.get_tuple(at_config)
                parent, values = at_config, dict(got.checkpoint["channel_values"])
                versions = dict(got.checkpoint["channel_versions"])
                changed["messages"] = [*values.get("messages", []), *args[1]]
            else:
                changed["other"] = args[-1] if kind_ == "other" else 0
            for channel, value in changed.items():
                versions[channel] = saver.get_next_version(versions.get(channel), None)
                values[channel] = value
            checkpoint = base_module.empty_checkpoint()
            checkpoint["channel_values"] = dict(values)
            checkpoint["channel_versions"] = dict(versions)
            parent = saver.put(parent, checkpoint, {}, {c: versions[c] for c in changed})
            saved.append((parent, copy.deepcopy(values)))
        check_all(saver, saved)

    law()


def check_all(saver: Any, saved: list[tuple[Any, dict[str, Any]]]) -> None:
    for saved_config, values in saved:
        got = saver.get_tuple(saved_config)
        assert got is not None and got.checkpoint["channel_values"] == values
    by_id = {c["configurable"]["checkpoint_id"]: v for c, v in saved}
    for tup in saver.list(config()):
        assert tup.checkpoint["channel_values"] == by_id[tup.checkpoint["id"]]


def test_wide_state_round_trips(saver: Any, mode: str) -> None:
    thread = Thread(saver.inner)
    values = {f"key{i}": [i] for i in range(450)}
    thread.put(mode, values)
    thread.put(mode, {"key7": [7, 8]})
    got = call(saver.inner, "get_tuple", mode, config())
    assert got.checkpoint["channel_values"] == {**values, "key7": [7, 8]}
    assert [len(t.checkpoint["channel_values"]) for t in call(saver.inner, "list", mode, config())] == [450, 450]


def test_put_writes_is_committed_before_it_returns(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sqlite")
    with SqliteSaver.from_conn_string(path) as saver:
        saved = Thread(saver).put("sync", {"a": 1})
        saver.put_writes(saved, [("a", 2), ("__error__", "boom")], "task", "~p")
        other = sqlite3.connect(path)  # another connection sees only committed data
        rows = other.execute("SELECT task_id, idx, channel FROM graphrt_checkpoint_writes ORDER BY idx").fetchall()
        other.close()
    assert rows == [("task", -1, "__error__"), ("task", 0, "a")]


def test_untyped_serializers_are_wrapped_like_langgraph() -> None:
    import orjson

    class Untyped:
        def dumps(self, obj: Any) -> bytes:
            return orjson.dumps(obj)

        def loads(self, data: bytes) -> Any:
            return orjson.loads(data)

    saver = InMemorySaver(serde=Untyped())  # type: ignore[arg-type]
    saved = Thread(saver).put("sync", {"a": [1, 2]})
    got = saver.get_tuple(saved)
    assert got is not None and got.checkpoint["channel_values"] == {"a": [1, 2]}


def test_a_broken_chain_is_reported_not_misread(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sqlite")
    with SqliteSaver.from_conn_string(path) as saver:
        thread = Thread(saver)
        first = thread.put("sync", {"messages": ["a"]})
        thread.put("sync", {"messages": [*thread.values["messages"], "b"]})
        base = saver.get_tuple(first)
        assert base is not None
        version = base.checkpoint["channel_versions"]["messages"]
        saver.conn.execute("DELETE FROM graphrt_checkpoint_blobs WHERE version = ?", (version,))
    with SqliteSaver.from_conn_string(path) as cold, pytest.raises(_delta.BrokenChainError) as info:
        cold.get_tuple(config())
    assert str(info.value).startswith("Cannot read channel 'messages' at version ")
    assert f"of thread 't1': its base version {version!r} is missing from storage." in str(info.value)
