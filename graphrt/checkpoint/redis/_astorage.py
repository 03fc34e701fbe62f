"""The storage primitives (`_primitives.AsyncWriteTx`) on redis-py's asyncio client, natively.

The same logic as the sync storage (`_tx.RedisTx`), its requests awaited on a `redis.asyncio`
connection instead of run blocking: no worker thread. `aread_tx` and `awrite_tx` mirror
`_storage.read_tx` and `_storage.write_tx` step for step (same keys, lock, WATCH and MULTI/EXEC).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import redis.asyncio as aredis
from redis.exceptions import WatchError

from graphrt.checkpoint._delta import Blob, StreamKey
from graphrt.checkpoint._primitives import CheckpointRow, Lease, ListQuery
from graphrt.checkpoint.base._storage import WriteRow
from graphrt.checkpoint.redis._layout import (
    BEGIN_ATTEMPTS,
    RELEASE,
    RETRYABLE,
    Ttl,
    commit_failed,
    lock_lost,
    new_token,
    thread_keys,
)
from graphrt.checkpoint.redis._tx import BATCH, SLEEP, RedisTx, Steps, refresh_ttl, take_lock

__all__ = ("AsyncTx", "arun", "aread_tx", "awrite_tx")

T = TypeVar("T")


async def settled(awaitable: Awaitable[T], then: Callable[[], object] | None = None) -> T:
    """`await awaitable` (and call `then()` once it returned), raising `CancelledError` if the task
    was cancelled meanwhile.

    redis-py 8.2 can let a command finish normally although its task was cancelled while it ran:
    the cancellation is swallowed, and a cancelled run would carry on. This delivers it.
    """
    task = asyncio.current_task()
    cancels = task.cancelling() if task is not None else 0
    result = await awaitable
    if then is not None:
        then()
    if task is not None and task.cancelling() > cancels:
        raise asyncio.CancelledError
    return result


async def arun(client: aredis.Redis, conn: Any, steps: Steps[T]) -> T:
    """Drive `steps` to its result: each request is awaited on `conn` (or a pipeline of `client`)."""
    try:
        request = next(steps)
        while True:
            op = request[0]
            if op is BATCH:
                pipe = client.pipeline(transaction=False)
                for name, *args in request[1:]:
                    getattr(pipe, name)(*args)
                reply = await settled(pipe.execute())
            elif op is SLEEP:
                await asyncio.sleep(request[1])
                reply = None
            else:
                reply = await settled(getattr(conn, op)(*request[1:]))
            request = steps.send(reply)
    except StopIteration as done:
        result: T = done.value
        return result


class AsyncTx:
    """`AsyncReadTx`/`AsyncWriteTx` over an asyncio connection: each primitive awaits `RedisTx`'s steps on it."""

    def __init__(self, client: aredis.Redis, conn: Any, *, writable: bool) -> None:
        self.client = client
        self.conn = conn
        """The client (read transaction) or the WATCHed pipeline (write transaction)."""
        self.state = RedisTx(writable=writable)

    async def _run(self, steps: Steps[T]) -> T:
        return await arun(self.client, self.conn, steps)

    async def head(self, thread_id: str, checkpoint_ns: str) -> str | None:
        return await self._run(self.state.head(thread_id, checkpoint_ns))

    async def checkpoint(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None) -> CheckpointRow | None:
        return await self._run(self.state.checkpoint(thread_id, checkpoint_ns, checkpoint_id))

    async def checkpoints(self, query: ListQuery) -> Iterable[CheckpointRow]:
        return await self._run(self.state.checkpoints(query))

    async def blobs(
        self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], Blob]:
        return await self._run(self.state.blobs(thread_id, checkpoint_ns, keys))

    async def chain(self, stream: StreamKey, version: str, stop_at: Collection[str]) -> list[tuple[str, Blob]]:
        return await self._run(self.state.chain(stream, version, stop_at))

    async def writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> list[WriteRow]:
        return await self._run(self.state.writes(thread_id, checkpoint_ns, checkpoint_id))

    async def lease(self, thread_id: str) -> Lease | None:
        return await self._run(self.state.lease(thread_id))

    async def insert_blobs(self, thread_id: str, checkpoint_ns: str, items: Sequence[tuple[str, str, Blob]]) -> int:
        return await self._run(self.state.insert_blobs(thread_id, checkpoint_ns, items))

    async def set_blob(self, stream: StreamKey, version: str, blob: Blob) -> None:
        await self._run(self.state.set_blob(stream, version, blob))

    async def dependents(self, stream: StreamKey, version: str) -> list[str]:
        return await self._run(self.state.dependents(stream, version))

    async def put_checkpoint(self, row: CheckpointRow) -> None:
        await self._run(self.state.put_checkpoint(row))

    async def put_writes(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, rows: Sequence[WriteRow]
    ) -> None:
        await self._run(self.state.put_writes(thread_id, checkpoint_ns, checkpoint_id, rows))

    async def delete_thread(self, thread_id: str) -> None:
        await self._run(self.state.delete_thread(thread_id))

    async def copy_thread(self, source: str, target: str) -> None:
        await self._run(self.state.copy_thread(source, target))

    async def heads(self, thread_id: str) -> dict[str, str]:
        return await self._run(self.state.heads(thread_id))

    async def blob_keys(self, thread_id: str, checkpoint_ns: str) -> list[tuple[str, str]]:
        return await self._run(self.state.blob_keys(thread_id, checkpoint_ns))

    async def delete_blobs(self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]) -> None:
        await self._run(self.state.delete_blobs(thread_id, checkpoint_ns, keys))

    async def drop_history(self, thread_id: str, checkpoint_ns: str, keep_id: str) -> None:
        await self._run(self.state.drop_history(thread_id, checkpoint_ns, keep_id))

    async def swap_lease(self, thread_id: str, expected: Lease | None, new: Lease | None) -> bool:
        return await self._run(self.state.swap_lease(thread_id, expected, new))


@asynccontextmanager
async def aread_tx(client: aredis.Redis, ttl: Ttl) -> AsyncIterator[AsyncTx]:
    """Reads on `client`; the threads read get their expiry pushed back (with `refresh_on_read`)."""
    tx = AsyncTx(client, client, writable=False)
    yield tx
    if tx.state.threads_read:
        await arun(client, client, refresh_ttl(tx.state.threads_read, ttl))


async def _abegin(client: aredis.Redis, pipe: Any, tx: AsyncTx, thread_id: str, token: bytes) -> None:
    """Take the lock and WATCH it; a dropped connection here is retried (nothing has happened yet)."""
    for attempt in range(BEGIN_ATTEMPTS):
        try:
            heads, lease = await arun(client, client, take_lock(thread_id, token))
            await settled(pipe.watch(thread_keys(thread_id)["lk"]))
            tx.state.prefill(thread_id, heads, lease)
            return
        except (*RETRYABLE, WatchError):
            await pipe.reset()
            if attempt == BEGIN_ATTEMPTS - 1:
                raise


@asynccontextmanager
async def awrite_tx(client: aredis.Redis, thread_id: str | None, ttl: Ttl) -> AsyncIterator[AsyncTx]:
    """A write transaction on `thread_id`'s keys, serialized by its lock, applied in one MULTI/EXEC."""
    thread = thread_id or ""
    lock = thread_keys(thread)["lk"]
    token = new_token()
    committed: list[bool] = []  # [True] once EXEC returned, even if a cancellation is delivered after it
    pipe: Any
    try:
        async with client.pipeline(transaction=True) as pipe:
            tx = AsyncTx(client, pipe, writable=True)
            await _abegin(client, pipe, tx, thread, token)
            yield tx
            pipe.multi()
            tx.state.queue_writes(pipe, ttl)
            pipe.delete(lock)
            try:
                await settled(pipe.execute(), then=lambda: committed.append(True))
            except WatchError:
                raise lock_lost() from None
            except RETRYABLE as exc:
                raise commit_failed(exc) from None

    finally:
        if not committed:
            await _release(client, lock, token)


async def _release(client: aredis.Redis, lock: bytes, token: bytes) -> None:
    """Drop our lock, also when the caller is being cancelled (the release then finishes on its own)."""
    release = asyncio.ensure_future(client.eval(RELEASE, 1, lock, token))
    release.add_done_callback(_consume)
    with contextlib.suppress(*RETRYABLE):  # else the lock expires by itself
        await asyncio.shield(release)


def _consume(task: asyncio.Future[Any]) -> None:
    """Retrieve a background release's outcome, so a failed one is not reported as unhandled."""
    if not task.cancelled():
        task.exception()
