"""The storage-primitive contract (`graphrt.checkpoint._primitives`), on every backend.

A backend implements these few operations and inherits the whole algorithm, so each is pinned here
on its own, through the saver's `_read_tx()`/`_write_tx()`.
"""

from __future__ import annotations

from typing import Any

import pytest

from graphrt.checkpoint._delta import MAX_CHAIN, Blob
from graphrt.checkpoint._primitives import CheckpointRow, Lease, ListQuery
from graphrt.checkpoint.base._storage import WriteRow


def row(thread_id: str, checkpoint_id: str, ns: str = "", parent: str | None = None) -> CheckpointRow:
    return CheckpointRow(thread_id, ns, checkpoint_id, parent, "json", b"{}", b'{"k": 1}')


def test_head_checkpoint_and_listing_order(core_saver: Any) -> None:
    with core_saver._write_tx("t") as tx:
        for cid in ("2", "1", "3"):
            tx.put_checkpoint(row("t", cid))
        tx.put_checkpoint(row("t", "9", ns="sub"))
        tx.put_checkpoint(row("u", "5"))
    with core_saver._read_tx() as tx:
        assert tx.head("t", "") == "3"
        assert tx.head("t", "sub") == "9"
        assert tx.head("t", "other") is None
        assert tx.checkpoint("t", "", None) == row("t", "3")
        assert tx.checkpoint("t", "", "1") == row("t", "1")
        assert tx.checkpoint("t", "", "7") is None
        assert [r.checkpoint_id for r in tx.checkpoints(ListQuery())] == ["9", "5", "3", "2", "1"]
        assert [r.checkpoint_id for r in tx.checkpoints(ListQuery("t", ""))] == ["3", "2", "1"]
        assert [r.checkpoint_id for r in tx.checkpoints(ListQuery("t", None, before="3"))] == ["2", "1"]
        assert [r.checkpoint_id for r in tx.checkpoints(ListQuery("t", "", limit=2))] == ["3", "2"]
        assert [r.checkpoint_id for r in tx.checkpoints(ListQuery("t", None, "2"))] == ["2"]


def test_put_checkpoint_replaces_the_same_key(core_saver: Any) -> None:
    with core_saver._write_tx("t") as tx:
        tx.put_checkpoint(row("t", "1"))
        tx.put_checkpoint(CheckpointRow("t", "", "1", "0", "json", b"[]", b"{}"))
    with core_saver._read_tx() as tx:
        assert tx.checkpoint("t", "", "1") == CheckpointRow("t", "", "1", "0", "json", b"[]", b"{}")


def test_insert_blobs_keeps_existing_keys_and_counts_new_ones(core_saver: Any) -> None:
    first, other = Blob("json", b"1"), Blob("json", b"2")
    with core_saver._write_tx("t") as tx:
        assert tx.insert_blobs("t", "", [("a", "v1", first), ("b", "v1", first)]) == 2
        assert tx.insert_blobs("t", "", [("a", "v1", other), ("a", "v2", other)]) == 1
    with core_saver._read_tx() as tx:
        found = tx.blobs("t", "", [("a", "v1"), ("a", "v2"), ("a", "v9"), ("b", "v1")])
    assert found == {("a", "v1"): first, ("a", "v2"): other, ("b", "v1"): first}


def test_set_blob_and_dependents(core_saver: Any) -> None:
    stream = ("t", "", "a")
    with core_saver._write_tx("t") as tx:
        tx.insert_blobs("t", "", [("a", "1", Blob("json", b"[1]")), ("a", "2", Blob("json", b"[2]", "1", 1))])
        tx.insert_blobs("t", "", [("a", "3", Blob("json", b"[3]", "1", 1)), ("b", "2", Blob("json", b"[]", "1", 1))])
        assert sorted(tx.dependents(stream, "1")) == ["2", "3"]
        tx.set_blob(stream, "2", Blob("json", b"[1,2]"))
        assert tx.dependents(stream, "1") == ["3"]
    with core_saver._read_tx() as tx:
        assert tx.blobs("t", "", [("a", "2")]) == {("a", "2"): Blob("json", b"[1,2]")}


def test_chain_follows_bases_and_stops(core_saver: Any) -> None:
    stream = ("t", "", "a")
    blobs = [
        ("a", "1", Blob("json", b"[1]")),
        ("a", "2", Blob("json", b"[2]", "1", 1)),
        ("a", "3", Blob("json", b"[3]", "2", 2)),
        ("a", "5", Blob("json", b"[5]", "4", 1)),  # base 4 is not stored
    ]
    with core_saver._write_tx("t") as tx:
        tx.insert_blobs("t", "", blobs)
    with core_saver._read_tx() as tx:
        assert [v for v, _ in tx.chain(stream, "3", ())] == ["3", "2", "1"]
        assert tx.chain(stream, "3", ())[0] == ("3", Blob("json", b"[3]", "2", 2))
        assert [v for v, _ in tx.chain(stream, "3", {"2"})] == ["3"]
        assert [v for v, _ in tx.chain(stream, "5", ())] == ["5"]
        assert tx.chain(stream, "9", ()) == []
        assert tx.chain(("t", "", "b"), "3", ()) == []


def test_chain_gives_up_on_a_cycle(core_saver: Any) -> None:
    with core_saver._write_tx("t") as tx:
        tx.insert_blobs("t", "", [("a", "1", Blob("json", b"[]", "2", 1)), ("a", "2", Blob("json", b"[]", "1", 1))])
    with core_saver._read_tx() as tx:
        assert len(tx.chain(("t", "", "a"), "1", ())) <= MAX_CHAIN


def test_put_writes_is_exactly_once_except_for_special_channels(core_saver: Any) -> None:
    def w(idx: int, data: bytes) -> WriteRow:
        return WriteRow("task", idx, "c", "json", data, "p")

    with core_saver._write_tx("t") as tx:
        tx.put_writes("t", "", "1", [w(0, b"first"), w(-1, b"first")])
        tx.put_writes("t", "", "1", [w(0, b"second"), w(-1, b"second"), w(1, b"new")])
    with core_saver._read_tx() as tx:
        saved = {r.idx: r.data for r in tx.writes("t", "", "1")}
        assert tx.writes("t", "", "2") == []
    assert saved == {0: b"first", -1: b"second", 1: b"new"}


def test_put_writes_keys_each_row_by_its_own_task_within_one_batch(core_saver: Any) -> None:
    """One call may carry several tasks' rows and repeat a key: the same outcome as one row per call."""

    def w(task: str, idx: int, data: bytes) -> WriteRow:
        return WriteRow(task, idx, "c", "json", data, "p")

    with core_saver._write_tx("t") as tx:
        tx.put_writes("t", "", "1", [w("a", 0, b"a0"), w("b", 1, b"b1"), w("a", 2, b"a2")])
        tx.put_writes("t", "", "1", [w("b", 1, b"again")])  # already saved: ignored
        tx.put_writes("t", "", "2", [w("a", 0, b"first"), w("a", 0, b"second"), w("a", -1, b"x"), w("a", -1, b"y")])
    with core_saver._read_tx() as tx:
        one = sorted((r.task_id, r.idx, r.data) for r in tx.writes("t", "", "1"))
        two = sorted((r.task_id, r.idx, r.data) for r in tx.writes("t", "", "2"))
    assert one == [("a", 0, b"a0"), ("a", 2, b"a2"), ("b", 1, b"b1")]
    assert two == [("a", -1, b"y"), ("a", 0, b"first")]


def test_swap_lease_is_compare_and_set(core_saver: Any) -> None:
    a = Lease("a", "h", 1, 100)
    b = Lease("b", "h", 2, None)
    with core_saver._write_tx("t") as tx:
        assert tx.lease("t") is None
        assert tx.swap_lease("t", None, a)
        assert not tx.swap_lease("t", None, b)  # taken
        assert not tx.swap_lease("t", Lease("a", "h", 1, 99), b)  # a stale view of a
        assert tx.lease("t") == a
        assert tx.swap_lease("t", a, b)
        assert tx.lease("t") == b
        assert not tx.swap_lease("t", a, None)
        assert tx.swap_lease("t", b, None)
        assert tx.lease("t") is None


def test_a_failed_write_transaction_leaves_nothing(core_saver: Any) -> None:
    with core_saver._write_tx("t") as tx:
        tx.put_checkpoint(row("t", "1"))
    with pytest.raises(RuntimeError), core_saver._write_tx("t") as tx:
        tx.put_checkpoint(row("t", "2"))
        tx.insert_blobs("t", "", [("a", "1", Blob("json", b"1"))])
        tx.put_writes("t", "", "1", [WriteRow("x", 0, "c", "json", b"1", "")])
        tx.swap_lease("t", None, Lease("a", "h", 1, None))
        tx.delete_thread("u")
        raise RuntimeError("boom")
    with core_saver._read_tx() as tx:
        assert tx.head("t", "") == "1"
        assert tx.blobs("t", "", [("a", "1")]) == {}
        assert tx.writes("t", "", "1") == []
        assert tx.lease("t") is None


def test_retention_primitives(core_saver: Any) -> None:
    with core_saver._write_tx("t") as tx:
        tx.put_checkpoint(row("t", "1"))
        tx.put_checkpoint(row("t", "2", parent="1"))
        tx.put_checkpoint(row("t", "3", ns="sub"))
        tx.put_writes("t", "", "1", [WriteRow("x", 0, "c", "json", b"1", "")])
        tx.put_writes("t", "", "2", [WriteRow("x", 0, "c", "json", b"2", "")])
        tx.insert_blobs("t", "", [("a", "1", Blob("json", b"1")), ("a", "2", Blob("json", b"2"))])
        assert tx.heads("t") == {"": "2", "sub": "3"}
        assert sorted(tx.blob_keys("t", "")) == [("a", "1"), ("a", "2")]
        tx.delete_blobs("t", "", [("a", "1")])
        tx.drop_history("t", "", "2")
        tx.copy_thread("t", "copy")
    with core_saver._read_tx() as tx:
        for thread_id in ("t", "copy"):
            assert [r.checkpoint_id for r in tx.checkpoints(ListQuery(thread_id, ""))] == ["2"]
            assert tx.checkpoint(thread_id, "", "2") == CheckpointRow(
                thread_id, "", "2", None, "json", b"{}", b'{"k": 1}'
            )
            assert [r.data for r in tx.writes(thread_id, "", "2")] == [b"2"]
            assert tx.writes(thread_id, "", "1") == []
            assert tx.blobs(thread_id, "", [("a", "1"), ("a", "2")]) == {("a", "2"): Blob("json", b"2")}
            assert tx.head(thread_id, "sub") == "3"
    with core_saver._write_tx("t") as tx:
        tx.delete_thread("t")
    with core_saver._read_tx() as tx:
        assert tx.head("t", "") is None and tx.head("t", "sub") is None
        assert tx.blob_keys("t", "") == [] and tx.writes("t", "", "2") == []
        assert tx.head("copy", "") == "2"
