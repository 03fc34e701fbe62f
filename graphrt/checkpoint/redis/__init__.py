"""`RedisSaver`: checkpoints in plain Redis 7 (no modules needed), shared by many processes and machines."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import Any, TypeVar

try:
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from redis.exceptions import WatchError
    from redis.retry import Retry
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError("graphrt.checkpoint.redis needs the redis package: pip install 'graphrt[redis]'") from exc

from graphrt.checkpoint._core import CoreSaver
from graphrt.checkpoint._drive import Op, OpGen, Tx
from graphrt.checkpoint._primitives import ReadTx, WriteTx
from graphrt.checkpoint.redis._layout import Ttl
from graphrt.checkpoint.redis._storage import read_tx, write_tx
from graphrt.checkpoint.serde.base import SerializerProtocol
from graphrt.config import RunnableConfig

__all__ = ("RedisSaver",)

T = TypeVar("T")

_MIN_VERSION = (7, 0)
_WRITE_RETRIES = 3


def parse_ttl(ttl: Mapping[str, Any] | None) -> Ttl:
    """`{"default_ttl": minutes, "refresh_on_read": bool}` as (milliseconds, refresh), checked."""
    if ttl is None:
        return None
    if not isinstance(ttl, Mapping):
        raise TypeError(f"ttl must be a dict like {{'default_ttl': 60, 'refresh_on_read': True}}, got {ttl!r}")
    unknown = set(ttl) - {"default_ttl", "refresh_on_read"}
    if unknown:
        raise ValueError(f"Unknown ttl keys {sorted(unknown)}: use 'default_ttl' (minutes) and 'refresh_on_read'")
    minutes = ttl.get("default_ttl")
    if minutes is None:
        return None
    if isinstance(minutes, bool) or not isinstance(minutes, int | float) or not minutes > 0:
        raise ValueError(f"ttl['default_ttl'] must be a positive number of minutes, got {minutes!r}")
    refresh = ttl.get("refresh_on_read", True)
    if not isinstance(refresh, bool):
        raise ValueError(f"ttl['refresh_on_read'] must be True or False, got {refresh!r}")
    return max(1, int(minutes * 60_000)), refresh


def new_client(url: str) -> redis.Redis:
    """A client for `url` that retries a command on a dropped connection (reads and lock steps only
    reach Redis through plain commands; a transaction's commit is never resent)."""
    return redis.Redis.from_url(
        url,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.01), 5),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=0,
    )


def describe(client: Any) -> str:
    """host:port/db of a client, never its password."""
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
    where = kwargs.get("path") or f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"
    return f"{where}/{kwargs.get('db', 0)}"


def check_client(saver: str, client: Any, kind: type[Any], other: str) -> None:
    """Refuse a client of the wrong kind, or one that decodes replies (the storage reads bytes)."""
    if not isinstance(client, kind):
        name = "redis.asyncio.Redis" if kind.__module__.startswith("redis.asyncio") else "redis.Redis"
        raise TypeError(
            f"{saver} takes a {name} client, got {type(client).__name__}; {other}, or {saver}.from_conn_string(url)"
        )
    if client.connection_pool.connection_kwargs.get("decode_responses"):
        raise ValueError(f"{saver} needs a client with decode_responses=False (it stores bytes)")


def check_version(saver: str, client: Any, info: Mapping[str, Any]) -> None:
    """Refuse a server older than Redis 7, from its `INFO server` reply."""
    version = tuple(int(p) for p in str(info.get("redis_version", "0.0")).split(".")[:2])
    if version < _MIN_VERSION:
        raise RuntimeError(
            f"{saver} needs Redis 7 or newer; the server at {describe(client)} runs {info.get('redis_version')}"
        )


class RedisCore(CoreSaver):
    """What `RedisSaver` and `AsyncRedisSaver` share: the TTL and writes retried on a dropped connection."""

    def __init__(self, *, ttl: Mapping[str, Any] | None = None, serde: SerializerProtocol | None = None) -> None:
        super().__init__(serde=serde)
        self.ttl = parse_ttl(ttl)
        self.is_setup = False

    def _run(self, op: Op[T]) -> T:
        if self._async_only:  # runs `_arun` on an event loop, which retries
            return super()._run(op)
        if isinstance(op, Tx):  # one transaction: run it again whole
            for attempt in range(_WRITE_RETRIES if op.write else 1):
                try:
                    return super()._run(op)
                except _RETRY_ON:
                    if attempt == _WRITE_RETRIES - 1 or not op.write:
                        raise
            raise AssertionError("unreachable")
        return super()._run(retried(op))

    async def _arun(self, op: Op[T]) -> T:
        if isinstance(op, Tx):
            for attempt in range(_WRITE_RETRIES if op.write else 1):
                try:
                    return await super()._arun(op)
                except _RETRY_ON:
                    if attempt == _WRITE_RETRIES - 1 or not op.write:
                        raise
            raise AssertionError("unreachable")
        return await super()._arun(retried(op))

    def claim_thread(self, config: RunnableConfig) -> AbstractContextManager[None]:
        """`CoreSaver.claim_thread`, whose claim is tried again when the connection dropped before it
        committed (a claim that did not commit took nothing)."""
        for attempt in range(_WRITE_RETRIES):
            try:
                return _entered(super().claim_thread(config))
            except _RETRY_ON:
                if attempt == _WRITE_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")


_RETRY_ON = (WatchError, RedisConnectionError, RedisTimeoutError)
"""A write transaction failed with these before its commit: nothing was written, it may run again.
(A failed commit raises `RedisWriteLost` instead: it may have been applied.)"""


def retried(op: OpGen[T]) -> OpGen[T]:
    """`op`, each of its write transactions run again (up to `_WRITE_RETRIES` times in all) when the
    connection dropped before the transaction committed; the operation sees only the last failure."""
    try:
        request = next(op)
        while True:
            failures = 0
            while True:
                try:
                    result = yield request
                except _RETRY_ON as exc:
                    failures += 1
                    if request.write and failures < _WRITE_RETRIES:
                        continue
                    request = op.throw(exc)
                except BaseException as exc:
                    request = op.throw(exc)
                else:
                    request = op.send(result)
                break
    except StopIteration as stop:
        result_: T = stop.value
        return result_


@contextmanager
def _held(cm: AbstractContextManager[None]) -> Iterator[None]:
    try:
        yield
    except BaseException as exc:
        if not cm.__exit__(type(exc), exc, exc.__traceback__):
            raise
    else:
        cm.__exit__(None, None, None)


def _entered(cm: AbstractContextManager[None]) -> AbstractContextManager[None]:
    """`cm` entered now (so a failure to enter can be retried); exited when the result is."""
    cm.__enter__()
    return _held(cm)


class RedisSaver(RedisCore):
    """Checkpoints in Redis 7 with no modules: keys, hashes, sorted sets and MULTI/EXEC.

    Same contract as every graphrt saver: one writer per thread across processes and machines (a
    lease per thread, taken over when its owner dies), exactly-once task writes, list values that
    only grew stored as deltas, `list` with filters, `delete_thread`, `copy_thread`, `prune`, and a
    per-thread TTL. A write is applied whole or not at all; with AOF on, a restart keeps every
    completed checkpoint. Unlike LangGraph's `RedisSaver` it needs neither RediSearch nor RedisJSON.

    Args:
        redis_client: A `redis.Redis` client (bytes responses: keep `decode_responses=False`).
        ttl: `{"default_ttl": minutes, "refresh_on_read": bool}`: a thread's checkpoints expire
            this long after its last write (or read, with `refresh_on_read`, the default).
        serde: The serializer; `JsonPlusSerializer` by default.

    Example:
        >>> with RedisSaver.from_conn_string("redis://localhost:6379") as saver:  # doctest: +SKIP
        ...     saver.setup()
        ...     graph = builder.compile(checkpointer=saver)
    """

    def __init__(
        self,
        redis_client: redis.Redis,
        *,
        ttl: Mapping[str, Any] | None = None,
        serde: SerializerProtocol | None = None,
    ) -> None:
        check_client("RedisSaver", redis_client, redis.Redis, "for an asyncio client use AsyncRedisSaver")
        super().__init__(ttl=ttl, serde=serde)
        self.client = redis_client

    def __repr__(self) -> str:
        return f"RedisSaver(redis={describe(self.client)})"

    @contextmanager
    def _read_tx(self) -> Iterator[ReadTx]:
        with read_tx(self.client, self.ttl) as tx:
            yield tx

    def _write_tx(self, thread_id: str | None = None) -> AbstractContextManager[WriteTx]:
        return write_tx(self.client, thread_id, self.ttl)

    @classmethod
    @contextmanager
    def from_conn_string(cls, redis_url: str, *, ttl: Mapping[str, Any] | None = None) -> Iterator[RedisSaver]:
        """A saver on a new client for `redis_url` ("redis://[:password@]host:port/db"), closed on exit."""
        client = new_client(redis_url)
        try:
            yield cls(client, ttl=ttl)
        finally:
            client.close()

    def setup(self) -> None:
        """Check the server (Redis 7 or newer). Nothing to create: keys appear as they are written."""
        check_version("RedisSaver", self.client, self.client.info("server"))
        self.is_setup = True

    def __enter__(self) -> RedisSaver:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None
