"""The storage primitives (`_primitives.WriteTx`) over plain Redis 7: hashes, a sorted set, MULTI/EXEC.

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

A write transaction takes the thread's lock, WATCHes it, reads through a local overlay of its own
writes (so it reads what it wrote), and applies every write at the end in one MULTI/EXEC that also
drops the lock: all or nothing, also after a crash (Redis loads a transaction from its AOF whole or
not at all). If the lock expired meanwhile and someone else took it, EXEC applies nothing.
"""

from __future__ import annotations

import contextlib
import struct
import time
import uuid
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.exceptions import WatchError

from graphrt.checkpoint._delta import MAX_CHAIN, Blob, StreamKey
from graphrt.checkpoint._primitives import CheckpointRow, Lease, ListQuery
from graphrt.checkpoint.base._storage import WriteRow

__all__ = ("LOCK_MS", "RedisTx", "Ttl", "read_tx", "write_tx")

LOCK_MS: Final = 30_000
"""A write transaction's lock lives this long at most (a crashed writer frees the thread after it)."""
LEASE_GRACE_MS: Final = 60_000
"""A lease key outlives its `expires_at` by this much, then Redis drops it."""
SEP: Final = b"\x00"
_NONE: Final = 0xFFFFFFFF
_LEN = struct.Struct(">I")

Ttl = tuple[int, bool] | None
"""(milliseconds, refresh_on_read) of a thread's keys, or None to keep them forever."""


class RedisWriteLost(RuntimeError):
    """A write transaction could not commit; nothing of it was applied."""


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


DATA_KEYS: Final = ("cp", "ix", "hd", "bl", "wr")
"""The keys that hold a thread's checkpoints (and get its TTL); not its lease or lock."""
THREADS: Final = b"graphrt:threads"


# -- row codecs -------------------------------------------------------------------------------------


def _row(thread_id: str, member: bytes, data: bytes) -> CheckpointRow:
    ns, cid = member.split(SEP, 1)
    parent, type_, record, metadata = unpack(data)
    return CheckpointRow(
        thread_id, dec(ns), dec(cid), None if parent is None else dec(parent), _s(type_), record or b"", metadata or b""
    )


def _pack_row(row: CheckpointRow) -> bytes:
    parent = None if row.parent_id is None else enc(row.parent_id)
    return pack(parent, enc(row.type), row.checkpoint, row.metadata)


def _blob(data: bytes) -> Blob:
    type_, base, depth, payload = unpack(data)
    return Blob(_s(type_), payload or b"", None if base is None else dec(base), int(depth or b"0"))


def _pack_blob(blob: Blob) -> bytes:
    return pack(enc(blob.type), None if blob.base is None else enc(blob.base), str(blob.depth).encode(), blob.data)


def _writes(data: bytes | None) -> dict[tuple[str, int], WriteRow]:
    if not data:
        return {}
    fields = unpack(data)
    rows = {}
    for i in range(0, len(fields), 6):
        task_id, idx, channel, type_, payload, path = fields[i : i + 6]
        row = WriteRow(_s(task_id), int(_s(idx)), _s(channel), _s(type_), payload or b"", _s(path))
        rows[(row.task_id, row.idx)] = row
    return rows


def _pack_writes(rows: Iterable[WriteRow]) -> bytes:
    fields: list[bytes | None] = []
    for r in rows:
        fields += [enc(r.task_id), str(r.idx).encode(), enc(r.channel), enc(r.type), r.data, enc(r.task_path)]
    return pack(*fields)


def _lease(data: bytes | None) -> Lease | None:
    if data is None:
        return None
    owner, host, pid, expires = unpack(data)
    return Lease(_s(owner), _s(host), int(_s(pid)), None if expires is None else int(_s(expires)))


def _pack_lease(lease: Lease) -> bytes:
    expires = None if lease.expires_at is None else str(lease.expires_at).encode()
    return pack(enc(lease.owner), enc(lease.host), str(lease.pid).encode(), expires)


# -- the transaction --------------------------------------------------------------------------------


class RedisTx:
    """Reads (and, in a write transaction, buffered writes) over one Redis client.

    Reads go to Redis unless this transaction wrote or already read the field: `_local[key]` maps
    field -> bytes (None: deleted here), `_cleared` holds keys this transaction emptied.
    """

    def __init__(self, client: redis.Redis | redis.client.Pipeline, *, writable: bool) -> None:
        self.r: Any = client  # bytes in, bytes out (decode_responses=False)
        self.writable = writable
        self._local: dict[bytes, dict[bytes, bytes | None]] = {}
        self._read: dict[bytes, dict[bytes, bytes | None]] = {}
        self._cleared: set[bytes] = set()
        self._complete: set[bytes] = set()
        """Keys whose every field is in `_read`: an absent field is known to be absent."""
        self._dirty: dict[bytes, set[bytes]] = {}
        """key -> fields written (or deleted) here."""
        self.threads_read: set[str] = set()
        self.threads_written: set[str] = set()
        self.threads_deleted: set[str] = set()

    # -- field access with the overlay --

    def _hmget(self, key: bytes, fields: Sequence[bytes]) -> list[bytes | None]:
        local, cache = self._local.get(key, {}), self._read.setdefault(key, {})
        cleared = key in self._cleared
        known = cleared or key in self._complete
        missing = [f for f in fields if f not in local and f not in cache and not known]
        if missing:
            got = self.r.hmget(key, missing) if len(missing) > 1 else [self.r.hget(key, missing[0])]
            if self.writable:
                cache.update(zip(missing, got, strict=True))
            else:
                fetched = dict(zip(missing, got, strict=True))
                return [local[f] if f in local else fetched.get(f, cache.get(f)) for f in fields]
        return [local[f] if f in local else (None if cleared else cache.get(f)) for f in fields]

    def _hget(self, key: bytes, field: bytes) -> bytes | None:
        return self._hmget(key, [field])[0]

    def _hall(self, key: bytes) -> dict[bytes, bytes]:
        if key in self._cleared:
            base: dict[bytes, bytes] = {}
        elif key in self._complete:
            base = {f: v for f, v in self._read[key].items() if v is not None}
        else:
            base = dict(self.r.hgetall(key))
        for field, value in self._local.get(key, {}).items():
            if value is None:
                base.pop(field, None)
            else:
                base[field] = value
        return base

    def _hset(self, key: bytes, field: bytes, value: bytes | None) -> None:
        assert self.writable, "a read transaction cannot write"
        self._local.setdefault(key, {})[field] = value
        self._dirty.setdefault(key, set()).add(field)

    def _clear(self, key: bytes) -> None:
        assert self.writable, "a read transaction cannot write"
        self._cleared.add(key)
        self._local[key] = {}
        self._dirty[key] = set()

    def prefill(self, key: bytes, fields: dict[bytes, bytes]) -> None:
        """Take `fields` as the whole content of `key` (read under this transaction's lock)."""
        self._read[key] = dict(fields)
        self._complete.add(key)

    # -- ReadTx --

    def head(self, thread_id: str, checkpoint_ns: str) -> str | None:
        self.threads_read.add(thread_id)
        found = self._hget(thread_keys(thread_id)["hd"], enc(checkpoint_ns))
        return None if found is None else dec(found)

    def checkpoint(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None) -> CheckpointRow | None:
        if checkpoint_id is None:
            checkpoint_id = self.head(thread_id, checkpoint_ns)
            if checkpoint_id is None:
                return None
        self.threads_read.add(thread_id)
        member = enc(checkpoint_ns) + SEP + enc(checkpoint_id)
        data = self._hget(thread_keys(thread_id)["cp"], member)
        return None if data is None else _row(thread_id, member, data)

    def checkpoints(self, query: ListQuery) -> Iterable[CheckpointRow]:
        if query.thread_id is not None:
            threads = [query.thread_id]
        else:
            threads = sorted({dec(t) for t in self.r.smembers(THREADS)} | self.threads_written)
        found: list[tuple[bytes, str, bytes]] = []
        for thread_id in threads:
            self.threads_read.add(thread_id)
            found += [(m.split(SEP, 1)[1], thread_id, m) for m in self._members(thread_id, query)]
        found.sort(key=lambda f: (f[0], f[1], f[2]), reverse=True)
        if query.limit is not None:
            found = found[: query.limit]
        rows = []
        for thread_id, group in _group_by_thread(found):
            datas = self._hmget(thread_keys(thread_id)["cp"], group)
            rows += [(m, thread_id, d) for m, d in zip(group, datas, strict=True) if d is not None]
        order = {(t, m): i for i, (_, t, m) in enumerate(found)}
        rows.sort(key=lambda r: order[(r[1], r[0])])
        return [_row(t, m, d) for m, t, d in rows]

    def _members(self, thread_id: str, query: ListQuery) -> list[bytes]:
        """The thread's `ns cid` members matching the query (without its limit across threads)."""
        keys = thread_keys(thread_id)
        if self._local.get(keys["cp"]) or keys["cp"] in self._cleared:
            members = list(self._hall(keys["cp"]))  # this transaction changed them: read through it
        elif query.checkpoint_ns is not None and query.checkpoint_id is None:
            prefix = b"[" + enc(query.checkpoint_ns) + SEP
            top = b"(" + enc(query.checkpoint_ns) + (SEP + enc(query.before) if query.before else b"\x01")
            limit = {} if query.limit is None else {"start": 0, "num": query.limit}
            members = self.r.zrevrangebylex(keys["ix"], top, prefix, **limit)
        else:
            members = self.r.zrange(keys["ix"], 0, -1)
        out = []
        for m in members:
            ns, cid = m.split(SEP, 1)
            if query.checkpoint_ns is not None and ns != enc(query.checkpoint_ns):
                continue
            if query.checkpoint_id is not None and cid != enc(query.checkpoint_id):
                continue
            if query.before is not None and cid >= enc(query.before):
                continue
            out.append(m)
        return out

    def blobs(self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Blob]:
        if not keys:
            return {}
        self.threads_read.add(thread_id)
        ns = enc(checkpoint_ns) + SEP
        fields = [ns + enc(ch) + SEP + enc(v) for ch, v in keys]
        got = self._hmget(thread_keys(thread_id)["bl"], fields)
        return {k: _blob(d) for k, d in zip(keys, got, strict=True) if d is not None}

    def chain(self, stream: StreamKey, version: str, stop_at: Collection[str]) -> list[tuple[str, Blob]]:
        thread_id, checkpoint_ns, channel = stream
        self.threads_read.add(thread_id)
        key = thread_keys(thread_id)["bl"]
        prefix = enc(checkpoint_ns) + SEP + enc(channel) + SEP
        chain: list[tuple[str, Blob]] = []
        current: str | None = version
        while current is not None and (data := self._hget(key, prefix + enc(current))) is not None:
            blob = _blob(data)
            chain.append((current, blob))
            current = blob.base
            if current in stop_at or len(chain) >= MAX_CHAIN:
                break
        return chain

    def writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> list[WriteRow]:
        self.threads_read.add(thread_id)
        data = self._hget(thread_keys(thread_id)["wr"], enc(checkpoint_ns) + SEP + enc(checkpoint_id))
        return list(_writes(data).values())

    def lease(self, thread_id: str) -> Lease | None:
        return _lease(self._hget(thread_keys(thread_id)["ls"], b"l"))

    # -- WriteTx --

    def insert_blobs(self, thread_id: str, checkpoint_ns: str, items: Sequence[tuple[str, str, Blob]]) -> int:
        key = thread_keys(thread_id)["bl"]
        ns = enc(checkpoint_ns) + SEP
        fields = [ns + enc(ch) + SEP + enc(v) for ch, v, _ in items]
        new = 0
        for field, old, (_, _, blob) in zip(fields, self._hmget(key, fields), items, strict=True):
            if old is None and self._local.get(key, {}).get(field) is None:
                self._hset(key, field, _pack_blob(blob))
                new += 1
        self.threads_written.add(thread_id)
        return new

    def set_blob(self, stream: StreamKey, version: str, blob: Blob) -> None:
        thread_id, checkpoint_ns, channel = stream
        field = enc(checkpoint_ns) + SEP + enc(channel) + SEP + enc(version)
        self._hset(thread_keys(thread_id)["bl"], field, _pack_blob(blob))
        self.threads_written.add(thread_id)

    def dependents(self, stream: StreamKey, version: str) -> list[str]:
        thread_id, checkpoint_ns, channel = stream
        prefix = enc(checkpoint_ns) + SEP + enc(channel) + SEP
        out = []
        for field, data in self._hall(thread_keys(thread_id)["bl"]).items():
            v = dec(field[len(prefix) :]) if field.startswith(prefix) else version
            if v != version and _blob(data).base == version:
                out.append(v)
        return out

    def put_checkpoint(self, row: CheckpointRow) -> None:
        keys = thread_keys(row.thread_id)
        self._hset(keys["cp"], enc(row.checkpoint_ns) + SEP + enc(row.checkpoint_id), _pack_row(row))
        head = self.head(row.thread_id, row.checkpoint_ns)
        if head is None or row.checkpoint_id > head:
            self._hset(keys["hd"], enc(row.checkpoint_ns), enc(row.checkpoint_id))
        self.threads_written.add(row.thread_id)

    def put_writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, rows: Sequence[WriteRow]) -> None:
        key, field = thread_keys(thread_id)["wr"], enc(checkpoint_ns) + SEP + enc(checkpoint_id)
        saved = _writes(self._hget(key, field))
        for row in rows:
            if row.replaces or (row.task_id, row.idx) not in saved:
                saved[(row.task_id, row.idx)] = row
        self._hset(key, field, _pack_writes(saved.values()))
        self.threads_written.add(thread_id)

    def delete_thread(self, thread_id: str) -> None:
        keys = thread_keys(thread_id)
        for name in DATA_KEYS:
            self._clear(keys[name])
        self.threads_deleted.add(thread_id)
        self.threads_written.discard(thread_id)

    def copy_thread(self, source: str, target: str) -> None:
        src, dst = thread_keys(source), thread_keys(target)
        for field, data in self._hall(src["cp"]).items():
            ns, cid = field.split(SEP, 1)
            self.put_checkpoint(_row(target, field, data))
            del ns, cid
        for name in ("bl", "wr"):
            for field, data in self._hall(src[name]).items():
                self._hset(dst[name], field, data)
        self.threads_written.add(target)
        self.threads_deleted.discard(target)

    def heads(self, thread_id: str) -> dict[str, str]:
        return {dec(k): dec(v) for k, v in self._hall(thread_keys(thread_id)["hd"]).items()}

    def blob_keys(self, thread_id: str, checkpoint_ns: str) -> list[tuple[str, str]]:
        prefix = enc(checkpoint_ns) + SEP
        out = []
        for field in self._hall(thread_keys(thread_id)["bl"]):
            if field.startswith(prefix):
                channel, version = field[len(prefix) :].split(SEP, 1)
                out.append((dec(channel), dec(version)))
        return out

    def delete_blobs(self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]) -> None:
        key, ns = thread_keys(thread_id)["bl"], enc(checkpoint_ns) + SEP
        for channel, version in keys:
            self._hset(key, ns + enc(channel) + SEP + enc(version), None)

    def drop_history(self, thread_id: str, checkpoint_ns: str, keep_id: str) -> None:
        keys = thread_keys(thread_id)
        ns, keep = enc(checkpoint_ns) + SEP, enc(checkpoint_ns) + SEP + enc(keep_id)
        for name in ("cp", "wr"):
            for field in self._hall(keys[name]):
                if field.startswith(ns) and field != keep:
                    self._hset(keys[name], field, None)
        if (kept := self.checkpoint(thread_id, checkpoint_ns, keep_id)) is not None:
            self._hset(keys["cp"], keep, _pack_row(CheckpointRow(*_replace_parent(kept))))
        self.threads_written.add(thread_id)

    def swap_lease(self, thread_id: str, expected: Lease | None, new: Lease | None) -> bool:
        if self.lease(thread_id) != expected:
            return False
        self._hset(thread_keys(thread_id)["ls"], b"l", None if new is None else _pack_lease(new))
        return True

    # -- commit --

    def queue_writes(self, pipe: Any, ttl: Ttl) -> None:
        """Queue every buffered write on a MULTI pipeline."""
        for key in self._cleared:
            pipe.delete(key)
        for key, fields in self._dirty.items():
            local = self._local[key]
            sets = {f: local[f] for f in fields if local[f] is not None}
            dels = [f for f in fields if local[f] is None]
            if key.endswith(b":ix"):
                continue
            if sets:
                pipe.hset(key, mapping=sets)
            if dels:
                pipe.hdel(key, *dels)
            if key.endswith(b":cp"):
                ix = key[:-2] + b"ix"
                if key in self._cleared:
                    pipe.delete(ix)
                if sets:
                    pipe.zadd(ix, dict.fromkeys(sets, 0))
                if dels:
                    pipe.zrem(ix, *dels)
            elif key.endswith(b":ls"):
                value = local.get(b"l")
                lease = _lease(value)
                if lease is not None and lease.expires_at is not None:
                    pipe.pexpireat(key, lease.expires_at // 1000 + LEASE_GRACE_MS)
                elif lease is not None:
                    pipe.persist(key)
        for thread_id in self.threads_deleted:
            pipe.srem(THREADS, enc(thread_id))
        if self.threads_written:
            pipe.sadd(THREADS, *[enc(t) for t in self.threads_written])
        if ttl is not None:
            for thread_id in self.threads_written:
                keys = thread_keys(thread_id)
                for name in DATA_KEYS:
                    pipe.pexpire(keys[name], ttl[0])


def _replace_parent(row: CheckpointRow) -> tuple[Any, ...]:
    return (row.thread_id, row.checkpoint_ns, row.checkpoint_id, None, row.type, row.checkpoint, row.metadata)


def _group_by_thread(found: list[tuple[bytes, str, bytes]]) -> Iterator[tuple[str, list[bytes]]]:
    groups: dict[str, list[bytes]] = {}
    for _, thread_id, member in found:
        groups.setdefault(thread_id, []).append(member)
    yield from groups.items()


def refresh_ttl(client: redis.Redis, thread_ids: Iterable[str], ttl: Ttl) -> None:
    """Push back the expiry of these threads' keys (a read with `refresh_on_read`)."""
    if ttl is None or not ttl[1]:
        return
    pipe = client.pipeline(transaction=False)
    for thread_id in thread_ids:
        keys = thread_keys(thread_id)
        for name in DATA_KEYS:
            pipe.pexpire(keys[name], ttl[0])
    pipe.execute()


@contextmanager
def read_tx(client: redis.Redis, ttl: Ttl) -> Iterator[RedisTx]:
    tx = RedisTx(client, writable=False)
    yield tx
    if tx.threads_read:
        refresh_ttl(client, tx.threads_read, ttl)


_RETRYABLE = (RedisConnectionError, RedisTimeoutError)


def _acquire_lock(client: redis.Redis, keys: dict[str, bytes], token: bytes) -> tuple[dict[bytes, bytes], Any]:
    """Take the thread's write lock; returns its heads and lease, read right after."""
    delay = 0.0005
    deadline = time.monotonic() + LOCK_MS / 1000 + 5
    while True:
        pipe = client.pipeline(transaction=False)
        pipe.set(keys["lk"], token, nx=True, px=LOCK_MS)
        pipe.get(keys["lk"])
        pipe.hgetall(keys["hd"])
        pipe.hget(keys["ls"], b"l")
        _, holder, heads, lease = pipe.execute()
        # A resent SET whose first attempt did succeed finds our own token: that is ours too.
        if holder == token:
            return heads, lease
        if time.monotonic() > deadline:
            raise RedisWriteLost("Timed out waiting for a Redis thread lock; nothing was written.")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)


def _begin(client: redis.Redis, pipe: Any, thread_id: str, token: bytes) -> RedisTx:
    """Take the lock and WATCH it; a dropped connection here is retried (nothing has happened yet).

    The thread's heads and lease are read in the same round trip as the lock: once the lock is
    ours nobody else writes them, and every guarded write reads both.
    """
    keys = thread_keys(thread_id)
    lock = keys["lk"]
    for attempt in range(3):
        try:
            heads, lease = _acquire_lock(client, keys, token)
            pipe.watch(lock)
            tx = RedisTx(pipe, writable=True)
            tx.prefill(keys["hd"], heads)
            tx.prefill(keys["ls"], {b"l": lease} if lease is not None else {})
            return tx
        except (*_RETRYABLE, WatchError):
            pipe.reset()
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


@contextmanager
def write_tx(client: redis.Redis, thread_id: str | None, ttl: Ttl) -> Iterator[RedisTx]:
    """A write transaction on `thread_id`'s keys, serialized by its lock, applied in one MULTI/EXEC."""
    lock = thread_keys(thread_id or "")["lk"]
    token = uuid.uuid4().hex.encode()
    committed = False
    pipe: Any
    try:
        with client.pipeline(transaction=True) as pipe:
            tx = _begin(client, pipe, thread_id or "", token)
            yield tx
            pipe.multi()
            tx.queue_writes(pipe, ttl)
            pipe.delete(lock)
            try:
                pipe.execute()
            except WatchError:
                raise RedisWriteLost(
                    f"A Redis write transaction held its thread lock longer than {LOCK_MS} ms and lost it; "
                    "nothing of it was written. Retry the call."
                ) from None
            except _RETRYABLE as exc:
                raise RedisWriteLost(
                    f"The connection to Redis failed while committing ({type(exc).__name__}); the write may "
                    "or may not have been applied."
                ) from None
            committed = True
    finally:
        if not committed:
            with contextlib.suppress(*_RETRYABLE):  # else the lock expires by itself
                client.eval(_RELEASE, 1, lock, token)
