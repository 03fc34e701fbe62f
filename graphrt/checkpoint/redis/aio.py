"""`AsyncRedisSaver`: the async face of the Redis saver, at LangGraph's path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any

import redis
import redis.asyncio as aredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from graphrt.checkpoint.redis import RedisCore, describe
from graphrt.checkpoint.serde.base import SerializerProtocol

__all__ = ("AsyncRedisSaver",)

_SHARED_KWARGS = ("host", "port", "db", "username", "password", "path", "socket_timeout", "socket_connect_timeout")


def sync_twin(client: aredis.Redis) -> redis.Redis:
    """A sync client to the same server and database as an asyncio client (same credentials)."""
    kwargs = client.connection_pool.connection_kwargs
    conn_class = client.connection_pool.connection_class
    options = {k: kwargs[k] for k in _SHARED_KWARGS if k in kwargs}
    if "path" in options:
        options["unix_socket_path"] = options.pop("path")
    if issubclass(conn_class, aredis.SSLConnection):
        options["ssl"] = True
    return redis.Redis(
        **options,
        retry=Retry(ExponentialBackoff(cap=0.5, base=0.01), 5),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )


class AsyncRedisSaver(RedisCore):
    """Checkpoints in Redis 7 for async code; the same storage and behaviour as `RedisSaver`.

    Takes a `redis.asyncio.Redis` client (or use `from_conn_string`). The storage algorithm is
    graphrt's one sync core, so each `a*` call runs it on a worker thread (one at a time per saver)
    over a sync client to the same server; `asetup` and closing use the asyncio client itself. Its
    sync methods work from any thread, including the event loop's (they block it).

    Example:
        >>> async with AsyncRedisSaver.from_conn_string("redis://localhost:6379") as saver:  # doctest: +SKIP
        ...     await saver.asetup()
        ...     graph = builder.compile(checkpointer=saver)
    """

    def __init__(
        self,
        redis_client: aredis.Redis,
        *,
        ttl: Mapping[str, Any] | None = None,
        serde: SerializerProtocol | None = None,
    ) -> None:
        if not isinstance(redis_client, aredis.Redis):
            raise TypeError(
                f"AsyncRedisSaver takes a redis.asyncio.Redis client, got {type(redis_client).__name__}; "
                "for a sync client use RedisSaver, or AsyncRedisSaver.from_conn_string(url)"
            )
        super().__init__(sync_twin(redis_client), ttl=ttl, serde=serde)
        self.aclient = redis_client

    def __repr__(self) -> str:
        return f"AsyncRedisSaver(redis={describe(self.aclient)})"

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls, redis_url: str, *, ttl: Mapping[str, Any] | None = None
    ) -> AsyncIterator[AsyncRedisSaver]:
        """A saver on new clients for `redis_url`, closed on exit."""
        aclient = aredis.Redis.from_url(
            redis_url,
            retry=AsyncRetry(ExponentialBackoff(cap=0.5, base=0.01), 5),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
        saver = cls(aclient, ttl=ttl)
        try:
            yield saver
        finally:
            saver.client.close()
            await aclient.aclose()

    async def asetup(self) -> None:
        """Check the server (Redis 7 or newer) over the asyncio client."""
        info = await self.aclient.info("server")
        version = tuple(int(p) for p in str(info.get("redis_version", "0.0")).split(".")[:2])
        if version < (7, 0):
            raise RuntimeError(
                f"AsyncRedisSaver needs Redis 7 or newer; the server at {describe(self.aclient)} runs "
                f"{info.get('redis_version')}"
            )
        self.is_setup = True

    def setup(self) -> None:
        """Sync twin of `asetup`."""
        self._check_server()

    async def __aenter__(self) -> AsyncRedisSaver:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None
