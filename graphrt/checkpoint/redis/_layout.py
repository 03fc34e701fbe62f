"""What the sync and async Redis storage share and never do I/O with: key names, row encodings, scripts.

Key layout, per thread (`{t}` is the thread id in braces, so a thread's keys share one Redis Cluster
slot); `ns`, `cid`, `ch`, `ver` are joined with NUL:

- `graphrt:{t}:cp`  hash   `ns cid` -> checkpoint row (parent, type, record, metadata)
- `graphrt:{t}:ix`  zset   `ns cid` (score 0, ordered by bytes: a namespace's ids in order)
- `graphrt:{t}:hd`  hash   `ns` -> newest checkpoint id (the head: O(1), whatever the history)
- `graphrt:{t}:bl`  hash   `ns ch ver` -> blob (type, base, depth, data)
- `graphrt:{t}:wr`  hash   `ns cid` -> the checkpoint's pending writes, packed together
- `graphrt:{t}:ls`  hash   `l` -> the thread's lease (the key also expires a minute after the lease)
- `graphrt:{t}:lk`  string the write lock (`SET NX PX`), held for one write transaction
- `graphrt:threads` set    every thread id with checkpoints (for listing all threads)

Values are length-prefixed fields (`pack`/`unpack`), so any bytes round-trip.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable
from typing import Final

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from graphrt.checkpoint._delta import Blob
from graphrt.checkpoint._primitives import CheckpointRow, Lease
from graphrt.checkpoint.base._storage import WriteRow

__all__ = ("LOCK_MS", "RedisWriteLost", "Ttl")

LOCK_MS: Final = 30_000
"""A write transaction's lock lives this long at most (a crashed writer frees the thread after it)."""
LEASE_GRACE_MS: Final = 60_000
"""A lease key outlives its `expires_at` by this much, then Redis drops it."""
BEGIN_ATTEMPTS: Final = 3
"""Taking the lock and WATCHing it is tried this often when the connection drops (nothing happened yet)."""
SEP: Final = b"\x00"
_NONE: Final = 0xFFFFFFFF
_LEN = struct.Struct(">I")

Ttl = tuple[int, bool] | None
"""(milliseconds, refresh_on_read) of a thread's keys, or None to keep them forever."""

RETRYABLE: Final = (RedisConnectionError, RedisTimeoutError)
"""Errors of a dropped or stalled connection."""

RELEASE: Final = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"
"""Drop a write lock only if this transaction's token still holds it."""

DATA_KEYS: Final = ("cp", "ix", "hd", "bl", "wr")
"""The keys that hold a thread's checkpoints (and get its TTL); not its lease or lock."""
THREADS: Final = b"graphrt:threads"


class RedisWriteLost(RuntimeError):
    """A write transaction could not commit; nothing of it was applied."""


def lock_lost() -> RedisWriteLost:
    return RedisWriteLost(
        f"A Redis write transaction held its thread lock longer than {LOCK_MS} ms and lost it; "
        "nothing of it was written. Retry the call."
    )


def commit_failed(exc: BaseException) -> RedisWriteLost:
    return RedisWriteLost(
        f"The connection to Redis failed while committing ({type(exc).__name__}); the write may "
        "or may not have been applied."
    )


def lock_timeout() -> RedisWriteLost:
    return RedisWriteLost("Timed out waiting for a Redis thread lock; nothing was written.")


def new_token() -> bytes:
    """A random token naming one write transaction's hold on a lock."""
    return uuid.uuid4().hex.encode()


def enc(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def dec(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


def pack(*fields: bytes | None) -> bytes:
    out = bytearray()
    for field in fields:
        if field is None:
            out += _LEN.pack(_NONE)
        else:
            out += _LEN.pack(len(field))
            out += field
    return bytes(out)


def unpack(data: bytes) -> list[bytes | None]:
    out: list[bytes | None] = []
    pos, end = 0, len(data)
    while pos < end:
        (n,) = _LEN.unpack_from(data, pos)
        pos += 4
        if n == _NONE:
            out.append(None)
        else:
            out.append(data[pos : pos + n])
            pos += n
    return out


def _s(data: bytes | None) -> str:
    assert data is not None
    return dec(data)


def thread_keys(thread_id: str) -> dict[str, bytes]:
    tag = b"graphrt:{" + enc(thread_id) + b"}:"
    return {name: tag + enc(name) for name in ("cp", "ix", "hd", "bl", "wr", "ls", "lk")}


# -- row codecs -------------------------------------------------------------------------------------


def load_row(thread_id: str, member: bytes, data: bytes) -> CheckpointRow:
    ns, cid = member.split(SEP, 1)
    parent, type_, record, metadata = unpack(data)
    return CheckpointRow(
        thread_id, dec(ns), dec(cid), None if parent is None else dec(parent), _s(type_), record or b"", metadata or b""
    )


def dump_row(row: CheckpointRow) -> bytes:
    parent = None if row.parent_id is None else enc(row.parent_id)
    return pack(parent, enc(row.type), row.checkpoint, row.metadata)


def load_blob(data: bytes) -> Blob:
    type_, base, depth, payload = unpack(data)
    return Blob(_s(type_), payload or b"", None if base is None else dec(base), int(depth or b"0"))


def dump_blob(blob: Blob) -> bytes:
    return pack(enc(blob.type), None if blob.base is None else enc(blob.base), str(blob.depth).encode(), blob.data)


def load_writes(data: bytes | None) -> dict[tuple[str, int], WriteRow]:
    if not data:
        return {}
    fields = unpack(data)
    rows = {}
    for i in range(0, len(fields), 6):
        task_id, idx, channel, type_, payload, path = fields[i : i + 6]
        row = WriteRow(_s(task_id), int(_s(idx)), _s(channel), _s(type_), payload or b"", _s(path))
        rows[(row.task_id, row.idx)] = row
    return rows


def dump_writes(rows: Iterable[WriteRow]) -> bytes:
    fields: list[bytes | None] = []
    for r in rows:
        fields += [enc(r.task_id), str(r.idx).encode(), enc(r.channel), enc(r.type), r.data, enc(r.task_path)]
    return pack(*fields)


def load_lease(data: bytes | None) -> Lease | None:
    if data is None:
        return None
    owner, host, pid, expires = unpack(data)
    return Lease(_s(owner), _s(host), int(_s(pid)), None if expires is None else int(_s(expires)))


def dump_lease(lease: Lease) -> bytes:
    expires = None if lease.expires_at is None else str(lease.expires_at).encode()
    return pack(enc(lease.owner), enc(lease.host), str(lease.pid).encode(), expires)
