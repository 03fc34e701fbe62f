"""The asyncio Redis transactions against the sync ones: same results, same stored bytes, same locking.

Each scenario runs once through `_storage` (redis-py's sync client) into database 0 and once through
`_astorage` (its asyncio client, awaited on the event loop) into database 1; every reply and then
every key, field, member and expiry of the two databases must be equal.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import anyio
import pytest
import redis
import redis.asyncio

from graphrt.checkpoint._delta import Blob
from graphrt.checkpoint._primitives import CheckpointRow, Lease, ListQuery
from graphrt.checkpoint.base._storage import WriteRow
from graphrt.checkpoint.redis._astorage import aread_tx, awrite_tx
from graphrt.checkpoint.redis._layout import LOCK_MS, thread_keys
from graphrt.checkpoint.redis._storage import read_tx, write_tx

Op = tuple[str, tuple[Any, ...]]


def row(thread_id: str, checkpoint_id: str, ns: str = "", parent: str | None = None) -> CheckpointRow:
    return CheckpointRow(
        thread_id, ns, checkpoint_id, parent, "json", b"{}", b'{"step": ' + checkpoint_id.encode() + b"}"
    )


def write(task: str, idx: int, data: bytes) -> WriteRow:
    return WriteRow(task, idx, "c", "json", data, "p")


WRITES: list[tuple[str, list[Op]]] = [
    (
        "t",
        [
            ("put_checkpoint", (row("t", "1"),)),
            ("put_checkpoint", (row("t", "2", parent="1"),)),
            ("put_checkpoint", (row("t", "3", ns="sub\x00ns"),)),
            ("insert_blobs", ("t", "", [("a", "1", Blob("json", b"[1]")), ("a", "2", Blob("json", b"[2]", "1", 1))])),
            ("insert_blobs", ("t", "", [("a", "1", Blob("json", b"x")), ("b", "1", Blob("json", b"\xff\x00"))])),
            ("dependents", (("t", "", "a"), "1")),
            ("chain", (("t", "", "a"), "2", ())),
            ("put_writes", ("t", "", "1", [write("x", 0, b"first"), write("x", -1, b"first")])),
            ("put_writes", ("t", "", "1", [write("x", 0, b"again"), write("x", -1, b"second")])),
            ("writes", ("t", "", "1")),
            ("swap_lease", ("t", None, Lease("a", "h", 1, 4_102_444_800_000_000))),
            ("swap_lease", ("t", None, Lease("b", "h", 2, None))),
            ("lease", ("t",)),
            ("heads", ("t",)),
            ("checkpoints", (ListQuery("t", ""),)),
        ],
    ),
    ("u", [("put_checkpoint", (row("u", "5"),)), ("put_writes", ("u", "", "5", [write("y", 0, b"u")]))]),
    ("v", [("copy_thread", ("t", "v")), ("heads", ("v",)), ("blob_keys", ("v", ""))]),
    (
        "t",
        [
            ("set_blob", (("t", "", "a"), "2", Blob("json", b"[1,2]"))),
            ("delete_blobs", ("t", "", [("b", "1")])),
            ("drop_history", ("t", "", "2")),
            ("checkpoint", ("t", "", None)),
            ("checkpoints", (ListQuery(),)),
        ],
    ),
    ("u", [("delete_thread", ("u",)), ("checkpoints", (ListQuery(),)), ("head", ("u", ""))]),
]
"""(thread to lock, operations in one write transaction), in order."""

READS: list[Op] = [
    ("head", ("t", "")),
    ("head", ("t", "sub\x00ns")),
    ("checkpoint", ("t", "", "2")),
    ("checkpoint", ("v", "", None)),
    ("checkpoints", (ListQuery(),)),
    ("checkpoints", (ListQuery("v", "", before="2"),)),
    ("checkpoints", (ListQuery("v", "", limit=1),)),
    ("checkpoints", (ListQuery("v", None, "1"),)),
    ("blobs", ("t", "", [("a", "1"), ("a", "2"), ("b", "1"), ("z", "9")])),
    ("chain", (("v", "", "a"), "2", ())),
    ("writes", ("t", "", "2")),
    ("writes", ("v", "", "1")),
    ("lease", ("t",)),
    ("lease", ("u",)),
]


def dump(client: redis.Redis) -> dict[bytes, Any]:
    """Every key's type, content and whether it expires."""
    out: dict[bytes, Any] = {}
    for key in sorted(client.keys("*")):
        kind = client.type(key)
        content: Any
        if kind == b"hash":
            content = client.hgetall(key)
        elif kind == b"zset":
            content = client.zrange(key, 0, -1, withscores=True)
        elif kind == b"set":
            content = sorted(client.smembers(key))
        else:
            content = client.get(key)
        out[key] = (kind, content, client.pttl(key) > 0)
    return out


def run_sync(url: str, ttl: Any) -> list[Any]:
    client = redis.Redis.from_url(url)
    replies: list[Any] = []
    for thread_id, ops in WRITES:
        with write_tx(client, thread_id, ttl) as tx:
            replies += [getattr(tx, name)(*args) for name, args in ops]
    with read_tx(client, ttl) as tx:
        replies += [getattr(tx, name)(*args) for name, args in READS]
    client.close()
    return replies


async def run_async(url: str, ttl: Any) -> list[Any]:
    client = redis.asyncio.Redis.from_url(url)
    replies: list[Any] = []
    for thread_id, ops in WRITES:
        async with awrite_tx(client, thread_id, ttl) as tx:
            replies += [await getattr(tx, name)(*args) for name, args in ops]
    async with aread_tx(client, ttl) as tx:
        replies += [await getattr(tx, name)(*args) for name, args in READS]
    await client.aclose()
    return replies


def db(url: str, index: int) -> str:
    return url.rsplit("/", 1)[0] + f"/{index}"


@pytest.mark.parametrize("ttl", [None, (60_000, True)])
def test_async_transactions_reply_and_store_exactly_like_sync_ones(redis_url: str, ttl: Any) -> None:
    sync_url, async_url = db(redis_url, 0), db(redis_url, 1)
    redis.Redis.from_url(async_url).flushdb()
    sync_replies = run_sync(sync_url, ttl)
    async_replies = asyncio.run(run_async(async_url, ttl))
    assert [type(r) for r in async_replies] == [type(r) for r in sync_replies]
    assert async_replies == sync_replies
    sync_client, async_client = redis.Redis.from_url(sync_url), redis.Redis.from_url(async_url)
    stored = dump(sync_client)
    assert stored and stored == dump(async_client)
    data = [expires for key, (_, _, expires) in stored.items() if key.endswith((b":cp", b":bl", b":hd"))]
    assert data and all(data) == (ttl is not None) and any(data) == (ttl is not None)
    sync_client.close()
    async_client.close()


def test_a_failed_async_write_leaves_nothing_and_frees_the_lock(redis_url: str) -> None:
    async def main() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        with pytest.raises(RuntimeError, match="boom"):
            async with awrite_tx(client, "t", None) as tx:
                await tx.put_checkpoint(row("t", "1"))
                await tx.insert_blobs("t", "", [("a", "1", Blob("json", b"1"))])
                raise RuntimeError("boom")
        assert await client.keys("*") == []  # nothing written, and the lock was dropped at once
        await client.aclose()

    asyncio.run(main())


def test_a_cancelled_async_write_frees_the_lock(redis_url: str) -> None:
    async def main() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        entered = asyncio.Event()

        async def stuck() -> None:
            async with awrite_tx(client, "t", None) as tx:
                await tx.put_checkpoint(row("t", "1"))
                entered.set()
                await asyncio.sleep(60)

        task = asyncio.create_task(stuck())
        await entered.wait()
        assert await client.exists(thread_keys("t")["lk"])
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(100):  # the release finishes on its own task
            if not await client.exists(thread_keys("t")["lk"]):
                break
            await asyncio.sleep(0.01)
        assert await client.keys("*") == []
        await client.aclose()

    asyncio.run(main())


@pytest.mark.parametrize("kind", ["read", "write"])
def test_a_cancelled_task_stays_cancelled(redis_url: str, kind: str) -> None:
    """A cancellation landing while a command runs reaches the caller (redis-py 8.2 alone may drop it)."""

    async def main() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)

        async def busy() -> None:
            for i in range(100_000):
                if kind == "read":
                    async with aread_tx(client, None) as tx:
                        await tx.head("t", "")
                else:
                    async with awrite_tx(client, "t", None) as tx:
                        await tx.put_checkpoint(row("t", str(i)))

        for i in range(150):
            task = asyncio.create_task(busy())
            await asyncio.sleep((i % 30) / 10_000)
            task.cancel()
            done, _ = await asyncio.wait([task], timeout=5)
            assert done and task.cancelled(), f"cancellation {i} was lost"
        await client.aclose()

    asyncio.run(main())


def test_async_and_sync_writers_of_one_thread_take_turns(redis_url: str) -> None:
    """The async transaction holds the same lock as the sync one: a sync writer waits for its commit."""
    sync_client = redis.Redis.from_url(redis_url)
    order: list[str] = []

    def sync_writer(started: threading.Event) -> None:
        started.wait()
        with write_tx(sync_client, "t", None) as tx:
            order.append(f"sync saw head {tx.head('t', '')}")
            tx.put_checkpoint(row("t", "2"))

    async def main() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        started = threading.Event()
        worker = threading.Thread(target=sync_writer, args=(started,))
        worker.start()
        async with awrite_tx(client, "t", None) as tx:
            started.set()
            await asyncio.sleep(0.3)  # the sync writer is blocked on the lock meanwhile
            await tx.put_checkpoint(row("t", "1"))
            order.append("async committed")
        await asyncio.to_thread(worker.join)
        async with aread_tx(client, None) as read:
            assert await read.head("t", "") == "2"
        await client.aclose()

    asyncio.run(main())
    assert order == ["async committed", "sync saw head 1"]
    sync_client.close()


def test_an_async_write_that_outlived_its_lock_applies_nothing(redis_url: str) -> None:
    async def main() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        lock = thread_keys("t")["lk"]
        with pytest.raises(RuntimeError, match=f"longer than {LOCK_MS} ms"):
            async with awrite_tx(client, "t", None) as tx:
                await tx.put_checkpoint(row("t", "1"))
                await client.set(lock, b"someone else")  # as if ours expired and another writer took it
        assert await client.keys("*") == [lock]
        await client.aclose()

    asyncio.run(main())


def test_the_async_path_starts_no_thread(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every Redis command is awaited on the loop: starting a thread or using an executor fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the async Redis path used a thread")

    started = threading.active_count()
    monkeypatch.setattr(threading.Thread, "start", refuse)
    monkeypatch.setattr(anyio.to_thread, "run_sync", refuse)
    monkeypatch.setattr(asyncio.BaseEventLoop, "run_in_executor", refuse)
    replies = asyncio.run(run_async(redis_url, (60_000, True)))
    assert replies and threading.active_count() == started
