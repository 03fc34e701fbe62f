"""The storage primitives (`_primitives.WriteTx`) on redis-py's sync client: `_tx`'s logic, run blocking.

`SyncTx` is a thin face over `_tx.RedisTx`; `read_tx` and `write_tx` open and commit transactions
(see `_tx` for the lock, the overlay and the MULTI/EXEC commit; `_astorage` is the asyncio twin).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import redis
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

__all__ = ("SyncTx", "read_tx", "run", "write_tx")

T = TypeVar("T")


def run(client: redis.Redis, conn: Any, steps: Steps[T]) -> T:
    """Drive `steps` to its result: each request runs on `conn` (or a pipeline of `client`), blocking."""
    try:
        request = next(steps)
        while True:
            op = request[0]
            if op is BATCH:
                pipe = client.pipeline(transaction=False)
                for name, *args in request[1:]:
                    getattr(pipe, name)(*args)
                reply = pipe.execute()
            elif op is SLEEP:
                time.sleep(request[1])
                reply = None
            else:
                reply = getattr(conn, op)(*request[1:])
            request = steps.send(reply)
    except StopIteration as done:
        result: T = done.value
        return result


class SyncTx:
    """`ReadTx`/`WriteTx` over a sync connection: each primitive runs `RedisTx`'s steps on it."""

    def __init__(self, client: redis.Redis, conn: Any, *, writable: bool) -> None:
        self.client = client
        self.conn = conn
        """The client (read transaction) or the WATCHed pipeline (write transaction)."""
        self.state = RedisTx(writable=writable)

    def _run(self, steps: Steps[T]) -> T:
        return run(self.client, self.conn, steps)

    def head(self, thread_id: str, checkpoint_ns: str) -> str | None:
        return self._run(self.state.head(thread_id, checkpoint_ns))

    def checkpoint(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None) -> CheckpointRow | None:
        return self._run(self.state.checkpoint(thread_id, checkpoint_ns, checkpoint_id))

    def checkpoints(self, query: ListQuery) -> Iterable[CheckpointRow]:
        return self._run(self.state.checkpoints(query))

    def blobs(self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Blob]:
        return self._run(self.state.blobs(thread_id, checkpoint_ns, keys))

    def chain(self, stream: StreamKey, version: str, stop_at: Collection[str]) -> list[tuple[str, Blob]]:
        return self._run(self.state.chain(stream, version, stop_at))

    def writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> list[WriteRow]:
        return self._run(self.state.writes(thread_id, checkpoint_ns, checkpoint_id))

    def lease(self, thread_id: str) -> Lease | None:
        return self._run(self.state.lease(thread_id))

    def insert_blobs(self, thread_id: str, checkpoint_ns: str, items: Sequence[tuple[str, str, Blob]]) -> int:
        return self._run(self.state.insert_blobs(thread_id, checkpoint_ns, items))

    def set_blob(self, stream: StreamKey, version: str, blob: Blob) -> None:
        self._run(self.state.set_blob(stream, version, blob))

    def dependents(self, stream: StreamKey, version: str) -> list[str]:
        return self._run(self.state.dependents(stream, version))

    def put_checkpoint(self, row: CheckpointRow) -> None:
        self._run(self.state.put_checkpoint(row))

    def put_writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, rows: Sequence[WriteRow]) -> None:
        self._run(self.state.put_writes(thread_id, checkpoint_ns, checkpoint_id, rows))

    def delete_thread(self, thread_id: str) -> None:
        self._run(self.state.delete_thread(thread_id))

    def copy_thread(self, source: str, target: str) -> None:
        self._run(self.state.copy_thread(source, target))

    def heads(self, thread_id: str) -> dict[str, str]:
        return self._run(self.state.heads(thread_id))

    def blob_keys(self, thread_id: str, checkpoint_ns: str) -> list[tuple[str, str]]:
        return self._run(self.state.blob_keys(thread_id, checkpoint_ns))

    def delete_blobs(self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]) -> None:
        self._run(self.state.delete_blobs(thread_id, checkpoint_ns, keys))

    def drop_history(self, thread_id: str, checkpoint_ns: str, keep_id: str) -> None:
        self._run(self.state.drop_history(thread_id, checkpoint_ns, keep_id))

    def swap_lease(self, thread_id: str, expected: Lease | None, new: Lease | None) -> bool:
        return self._run(self.state.swap_lease(thread_id, expected, new))


@contextmanager
def read_tx(client: redis.Redis, ttl: Ttl) -> Iterator[SyncTx]:
    """Reads on `client`; the threads read get their expiry pushed back (with `refresh_on_read`)."""
    tx = SyncTx(client, client, writable=False)
    yield tx
    if tx.state.threads_read:
        run(client, client, refresh_ttl(tx.state.threads_read, ttl))


def _begin(client: redis.Redis, pipe: Any, tx: SyncTx, thread_id: str, token: bytes) -> None:
    """Take the lock and WATCH it; a dropped connection here is retried (nothing has happened yet)."""
    for attempt in range(BEGIN_ATTEMPTS):
        try:
            heads, lease = run(client, client, take_lock(thread_id, token))
            pipe.watch(thread_keys(thread_id)["lk"])
            tx.state.prefill(thread_id, heads, lease)
            return
        except (*RETRYABLE, WatchError):
            pipe.reset()
            if attempt == BEGIN_ATTEMPTS - 1:
                raise


@contextmanager
def write_tx(client: redis.Redis, thread_id: str | None, ttl: Ttl) -> Iterator[SyncTx]:
    """A write transaction on `thread_id`'s keys, serialized by its lock, applied in one MULTI/EXEC."""
    thread = thread_id or ""
    lock = thread_keys(thread)["lk"]
    token = new_token()
    committed = False
    pipe: Any
    try:
        with client.pipeline(transaction=True) as pipe:
            tx = SyncTx(client, pipe, writable=True)
            _begin(client, pipe, tx, thread, token)
            yield tx
            pipe.multi()
            tx.state.queue_writes(pipe, ttl)
            pipe.delete(lock)
            try:
                pipe.execute()
            except WatchError:
                raise lock_lost() from None
            except RETRYABLE as exc:
                raise commit_failed(exc) from None
            committed = True
    finally:
        if not committed:
            with contextlib.suppress(*RETRYABLE):  # else the lock expires by itself
                client.eval(RELEASE, 1, lock, token)
