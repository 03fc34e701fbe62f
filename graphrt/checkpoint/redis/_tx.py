"""The Redis transaction's logic, written once for the sync and the async client (sans I/O).

Each primitive of `_primitives.WriteTx` is a generator here: it yields the Redis commands it needs
and receives their replies, so `_storage` (redis-py's sync client) and `_astorage` (its asyncio
client) run the same code, each with a loop of a few lines (`run` / `arun`). A request is one of:

- `("hget", key, field)`: a command on the transaction's connection (its WATCHed pipeline in a
  write transaction), by redis-py method name with positional arguments;
- `(BATCH, (name, *args), ...)`: commands sent together on a non-transactional pipeline of the client;
- `(SLEEP, seconds)`: wait before trying again.

A write transaction takes the thread's lock (`take_lock`), WATCHes it, reads through a local overlay
of its own writes (so it reads what it wrote), and applies every write at the end in one MULTI/EXEC
(`queue_writes`) that also drops the lock: all or nothing, also after a crash (Redis loads a
transaction from its AOF whole or not at all). If the lock expired meanwhile and someone else took
it, EXEC applies nothing.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Generator, Iterable, Iterator, Sequence
from typing import Any, Final, TypeVar

from graphrt.checkpoint._delta import MAX_CHAIN, Blob, StreamKey
from graphrt.checkpoint._primitives import CheckpointRow, Lease, ListQuery
from graphrt.checkpoint.base._storage import WriteRow
from graphrt.checkpoint.redis._layout import (
    DATA_KEYS,
    LEASE_GRACE_MS,
    LOCK_MS,
    SEP,
    THREADS,
    Ttl,
    dec,
    dump_blob,
    dump_lease,
    dump_row,
    dump_writes,
    enc,
    load_blob,
    load_lease,
    load_row,
    load_writes,
    lock_timeout,
    thread_keys,
)

__all__ = ("BATCH", "SLEEP", "RedisTx", "Steps", "refresh_ttl", "take_lock")

T = TypeVar("T")
Steps = Generator[tuple[Any, ...], Any, T]
"""A computation that yields Redis requests, receives their replies and returns a `T`."""
BATCH: Final = "<batch>"
SLEEP: Final = "<sleep>"


class RedisTx:
    """The state and logic of one transaction: reads (and, when writable, buffered writes).

    Reads go to Redis unless this transaction wrote or already read the field: `_local[key]` maps
    field -> bytes (None: deleted here), `_cleared` holds keys this transaction emptied.
    """

    def __init__(self, *, writable: bool) -> None:
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

    def _hmget(self, key: bytes, fields: Sequence[bytes]) -> Steps[list[bytes | None]]:
        local, cache = self._local.get(key, {}), self._read.setdefault(key, {})
        cleared = key in self._cleared
        known = cleared or key in self._complete
        missing = [f for f in fields if f not in local and f not in cache and not known]
        if missing:
            got = (yield ("hmget", key, missing)) if len(missing) > 1 else [(yield ("hget", key, missing[0]))]
            if self.writable:
                cache.update(zip(missing, got, strict=True))
            else:
                fetched = dict(zip(missing, got, strict=True))
                return [local[f] if f in local else fetched.get(f, cache.get(f)) for f in fields]
        return [local[f] if f in local else (None if cleared else cache.get(f)) for f in fields]

    def _hget(self, key: bytes, field: bytes) -> Steps[bytes | None]:
        return (yield from self._hmget(key, [field]))[0]

    def _hall(self, key: bytes) -> Steps[dict[bytes, bytes]]:
        if key in self._cleared:
            base: dict[bytes, bytes] = {}
        elif key in self._complete:
            base = {f: v for f, v in self._read[key].items() if v is not None}
        else:
            base = dict((yield ("hgetall", key)))
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

    def prefill(self, thread_id: str, heads: dict[bytes, bytes], lease: bytes | None) -> None:
        """Take the thread's heads and lease as read under this transaction's lock (see `take_lock`)."""
        keys = thread_keys(thread_id)
        for key, fields in ((keys["hd"], heads), (keys["ls"], {b"l": lease} if lease is not None else {})):
            self._read[key] = dict(fields)
            self._complete.add(key)

    # -- ReadTx --

    def head(self, thread_id: str, checkpoint_ns: str) -> Steps[str | None]:
        self.threads_read.add(thread_id)
        found = yield from self._hget(thread_keys(thread_id)["hd"], enc(checkpoint_ns))
        return None if found is None else dec(found)

    def checkpoint(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str | None) -> Steps[CheckpointRow | None]:
        if checkpoint_id is None:
            checkpoint_id = yield from self.head(thread_id, checkpoint_ns)
            if checkpoint_id is None:
                return None
        self.threads_read.add(thread_id)
        member = enc(checkpoint_ns) + SEP + enc(checkpoint_id)
        data = yield from self._hget(thread_keys(thread_id)["cp"], member)
        return None if data is None else load_row(thread_id, member, data)

    def checkpoints(self, query: ListQuery) -> Steps[list[CheckpointRow]]:
        if query.thread_id is not None:
            threads = [query.thread_id]
        else:
            threads = sorted({dec(t) for t in (yield ("smembers", THREADS))} | self.threads_written)
        found: list[tuple[bytes, str, bytes]] = []
        for thread_id in threads:
            self.threads_read.add(thread_id)
            found += [(m.split(SEP, 1)[1], thread_id, m) for m in (yield from self._members(thread_id, query))]
        found.sort(key=lambda f: (f[0], f[1], f[2]), reverse=True)
        if query.limit is not None:
            found = found[: query.limit]
        rows = []
        for thread_id, group in _group_by_thread(found):
            datas = yield from self._hmget(thread_keys(thread_id)["cp"], group)
            rows += [(m, thread_id, d) for m, d in zip(group, datas, strict=True) if d is not None]
        order = {(t, m): i for i, (_, t, m) in enumerate(found)}
        rows.sort(key=lambda r: order[(r[1], r[0])])
        return [load_row(t, m, d) for m, t, d in rows]

    def _members(self, thread_id: str, query: ListQuery) -> Steps[list[bytes]]:
        """The thread's `ns cid` members matching the query (without its limit across threads)."""
        keys = thread_keys(thread_id)
        if self._local.get(keys["cp"]) or keys["cp"] in self._cleared:
            members = list((yield from self._hall(keys["cp"])))  # this transaction changed them: read through it
        elif query.checkpoint_ns is not None and query.checkpoint_id is None:
            prefix = b"[" + enc(query.checkpoint_ns) + SEP
            top = b"(" + enc(query.checkpoint_ns) + (SEP + enc(query.before) if query.before else b"\x01")
            if query.limit is None:
                members = yield ("zrevrangebylex", keys["ix"], top, prefix)
            else:
                members = yield ("zrevrangebylex", keys["ix"], top, prefix, 0, query.limit)
        else:
            members = yield ("zrange", keys["ix"], 0, -1)
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

    def blobs(
        self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]
    ) -> Steps[dict[tuple[str, str], Blob]]:
        if not keys:
            return {}
        self.threads_read.add(thread_id)
        ns = enc(checkpoint_ns) + SEP
        fields = [ns + enc(ch) + SEP + enc(v) for ch, v in keys]
        got = yield from self._hmget(thread_keys(thread_id)["bl"], fields)
        return {k: load_blob(d) for k, d in zip(keys, got, strict=True) if d is not None}

    def chain(self, stream: StreamKey, version: str, stop_at: Collection[str]) -> Steps[list[tuple[str, Blob]]]:
        thread_id, checkpoint_ns, channel = stream
        self.threads_read.add(thread_id)
        key = thread_keys(thread_id)["bl"]
        prefix = enc(checkpoint_ns) + SEP + enc(channel) + SEP
        chain: list[tuple[str, Blob]] = []
        current: str | None = version
        while current is not None and (data := (yield from self._hget(key, prefix + enc(current)))) is not None:
            blob = load_blob(data)
            chain.append((current, blob))
            current = blob.base
            if current in stop_at or len(chain) >= MAX_CHAIN:
                break
        return chain

    def writes(self, thread_id: str, checkpoint_ns: str, checkpoint_id: str) -> Steps[list[WriteRow]]:
        self.threads_read.add(thread_id)
        data = yield from self._hget(thread_keys(thread_id)["wr"], enc(checkpoint_ns) + SEP + enc(checkpoint_id))
        return list(load_writes(data).values())

    def lease(self, thread_id: str) -> Steps[Lease | None]:
        return load_lease((yield from self._hget(thread_keys(thread_id)["ls"], b"l")))

    # -- WriteTx --

    def insert_blobs(self, thread_id: str, checkpoint_ns: str, items: Sequence[tuple[str, str, Blob]]) -> Steps[int]:
        key = thread_keys(thread_id)["bl"]
        ns = enc(checkpoint_ns) + SEP
        fields = [ns + enc(ch) + SEP + enc(v) for ch, v, _ in items]
        new = 0
        for field, old, (_, _, blob) in zip(fields, (yield from self._hmget(key, fields)), items, strict=True):
            if old is None and self._local.get(key, {}).get(field) is None:
                self._hset(key, field, dump_blob(blob))
                new += 1
        self.threads_written.add(thread_id)
        return new

    def set_blob(self, stream: StreamKey, version: str, blob: Blob) -> Steps[None]:
        thread_id, checkpoint_ns, channel = stream
        field = enc(checkpoint_ns) + SEP + enc(channel) + SEP + enc(version)
        self._hset(thread_keys(thread_id)["bl"], field, dump_blob(blob))
        self.threads_written.add(thread_id)
        return
        yield

    def dependents(self, stream: StreamKey, version: str) -> Steps[list[str]]:
        thread_id, checkpoint_ns, channel = stream
        prefix = enc(checkpoint_ns) + SEP + enc(channel) + SEP
        out = []
        for field, data in (yield from self._hall(thread_keys(thread_id)["bl"])).items():
            v = dec(field[len(prefix) :]) if field.startswith(prefix) else version
            if v != version and load_blob(data).base == version:
                out.append(v)
        return out

    def put_checkpoint(self, row: CheckpointRow) -> Steps[None]:
        keys = thread_keys(row.thread_id)
        self._hset(keys["cp"], enc(row.checkpoint_ns) + SEP + enc(row.checkpoint_id), dump_row(row))
        head = yield from self.head(row.thread_id, row.checkpoint_ns)
        if head is None or row.checkpoint_id > head:
            self._hset(keys["hd"], enc(row.checkpoint_ns), enc(row.checkpoint_id))
        self.threads_written.add(row.thread_id)

    def put_writes(
        self, thread_id: str, checkpoint_ns: str, checkpoint_id: str, rows: Sequence[WriteRow]
    ) -> Steps[None]:
        key, field = thread_keys(thread_id)["wr"], enc(checkpoint_ns) + SEP + enc(checkpoint_id)
        saved = load_writes((yield from self._hget(key, field)))
        for row in rows:
            if row.replaces or (row.task_id, row.idx) not in saved:
                saved[(row.task_id, row.idx)] = row
        self._hset(key, field, dump_writes(saved.values()))
        self.threads_written.add(thread_id)

    def delete_thread(self, thread_id: str) -> Steps[None]:
        keys = thread_keys(thread_id)
        for name in DATA_KEYS:
            self._clear(keys[name])
        self.threads_deleted.add(thread_id)
        self.threads_written.discard(thread_id)
        return
        yield

    def copy_thread(self, source: str, target: str) -> Steps[None]:
        src, dst = thread_keys(source), thread_keys(target)
        for field, data in (yield from self._hall(src["cp"])).items():
            yield from self.put_checkpoint(load_row(target, field, data))
        for name in ("bl", "wr"):
            for field, data in (yield from self._hall(src[name])).items():
                self._hset(dst[name], field, data)
        self.threads_written.add(target)
        self.threads_deleted.discard(target)

    def heads(self, thread_id: str) -> Steps[dict[str, str]]:
        return {dec(k): dec(v) for k, v in (yield from self._hall(thread_keys(thread_id)["hd"])).items()}

    def blob_keys(self, thread_id: str, checkpoint_ns: str) -> Steps[list[tuple[str, str]]]:
        prefix = enc(checkpoint_ns) + SEP
        out = []
        for field in (yield from self._hall(thread_keys(thread_id)["bl"])):
            if field.startswith(prefix):
                channel, version = field[len(prefix) :].split(SEP, 1)
                out.append((dec(channel), dec(version)))
        return out

    def delete_blobs(self, thread_id: str, checkpoint_ns: str, keys: Sequence[tuple[str, str]]) -> Steps[None]:
        key, ns = thread_keys(thread_id)["bl"], enc(checkpoint_ns) + SEP
        for channel, version in keys:
            self._hset(key, ns + enc(channel) + SEP + enc(version), None)
        return
        yield

    def drop_history(self, thread_id: str, checkpoint_ns: str, keep_id: str) -> Steps[None]:
        keys = thread_keys(thread_id)
        ns, keep = enc(checkpoint_ns) + SEP, enc(checkpoint_ns) + SEP + enc(keep_id)
        for name in ("cp", "wr"):
            for field in (yield from self._hall(keys[name])):
                if field.startswith(ns) and field != keep:
                    self._hset(keys[name], field, None)
        if (kept := (yield from self.checkpoint(thread_id, checkpoint_ns, keep_id))) is not None:
            orphan = CheckpointRow(
                kept.thread_id, kept.checkpoint_ns, kept.checkpoint_id, None, kept.type, kept.checkpoint, kept.metadata
            )
            self._hset(keys["cp"], keep, dump_row(orphan))
        self.threads_written.add(thread_id)

    def swap_lease(self, thread_id: str, expected: Lease | None, new: Lease | None) -> Steps[bool]:
        if (yield from self.lease(thread_id)) != expected:
            return False
        self._hset(thread_keys(thread_id)["ls"], b"l", None if new is None else dump_lease(new))
        return True

    # -- commit --

    def queue_writes(self, pipe: Any, ttl: Ttl) -> None:
        """Queue every buffered write on a MULTI pipeline (sync or asyncio: queuing does no I/O)."""
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
                lease = load_lease(local.get(b"l"))
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


def _group_by_thread(found: list[tuple[bytes, str, bytes]]) -> Iterator[tuple[str, list[bytes]]]:
    groups: dict[str, list[bytes]] = {}
    for _, thread_id, member in found:
        groups.setdefault(thread_id, []).append(member)
    yield from groups.items()


def take_lock(thread_id: str, token: bytes) -> Steps[tuple[dict[bytes, bytes], bytes | None]]:
    """Take the thread's write lock (`SET NX PX`, retried with backoff); returns its heads and lease.

    Both are read in the same round trip as the lock: once the lock is ours nobody else writes them,
    and every guarded write reads both. A resent SET whose first attempt did succeed finds our own
    token: that is ours too.
    """
    keys = thread_keys(thread_id)
    delay = 0.0005
    deadline = time.monotonic() + LOCK_MS / 1000 + 5
    while True:
        _, holder, heads, lease = yield (
            BATCH,
            ("set", keys["lk"], token, None, LOCK_MS, True),
            ("get", keys["lk"]),
            ("hgetall", keys["hd"]),
            ("hget", keys["ls"], b"l"),
        )
        if holder == token:
            return heads, lease
        if time.monotonic() > deadline:
            raise lock_timeout()
        yield (SLEEP, delay)
        delay = min(delay * 2, 0.02)


def refresh_ttl(thread_ids: Iterable[str], ttl: Ttl) -> Steps[None]:
    """Push back the expiry of these threads' keys (a read with `refresh_on_read`)."""
    if ttl is None or not ttl[1]:
        return
    yield (BATCH, *[("pexpire", thread_keys(t)[name], ttl[0]) for t in thread_ids for name in DATA_KEYS])
