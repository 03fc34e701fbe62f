"""`AsyncRedisSaver`: the async face of the Redis saver, at LangGraph's path, on `redis.asyncio` natively."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any

import redis
import redis.asyncio as aredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from graphrt.checkpoint.redis import RedisCore, check_client, check_version, describe
from graphrt.checkpoint.redis._astorage import AsyncTx, aread_tx, awrite_tx
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


class _LoopGuard:
    """Closes a client's connections when the event loop that opened them shuts down.

    An asyncio connection belongs to the loop it was opened on. A saver used under one `asyncio.run`
    after another (scripts, tests) would otherwise keep sockets of a closed loop in its pool. On the
    first use in each loop an async generator is started there; `asyncio.run` (and `anyio.run`)
    close every open async generator before closing the loop, which runs its `finally`.
    """

    def __init__(self, client: aredis.Redis) -> None:
        self.client = client
        self.loop: asyncio.AbstractEventLoop | None = None
        self._anchor: AsyncIterator[None] | None = None

    async def enter(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self.loop:
            anchor = self._disconnect_at_shutdown(loop)
            await anchor.__anext__()
            self.loop, self._anchor = loop, anchor

    async def _disconnect_at_shutdown(self, loop: asyncio.AbstractEventLoop) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if self.loop is loop:  # else another loop uses the client now: its connections are that loop's
                self.loop = None
                await self.client.connection_pool.disconnect()


class AsyncRedisSaver(RedisCore):
    """Checkpoints in Redis 7 for async code; the same storage and behaviour as `RedisSaver`.

    Takes a `redis.asyncio.Redis` client (or use `from_conn_string`) and awaits every Redis command
    on it: the `a*` methods run on the event loop, with no worker thread. The saver may be used
    under one `asyncio.run` after another: the client's connections are closed when each loop shuts
    down. Its sync methods (for sync code sharing the saver) use a sync client to the same server,
    opened on first use; they work from any thread, including the event loop's (they block it).

    Args:
        redis_client: A `redis.asyncio.Redis` client (bytes responses: keep `decode_responses=False`).
        ttl: `{"default_ttl": minutes, "refresh_on_read": bool}`, as for `RedisSaver`.
        serde: The serializer; `JsonPlusSerializer` by default.

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
        check_client("AsyncRedisSaver", redis_client, aredis.Redis, "for a sync client use RedisSaver")
        super().__init__(ttl=ttl, serde=serde)
        self.aclient = redis_client
        self._guard = _LoopGuard(redis_client)
        self._sync: redis.Redis | None = None
        self._sync_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"AsyncRedisSaver(redis={describe(self.aclient)})"

    def _sync_client(self) -> redis.Redis:
        if self._sync is None:
            with self._sync_lock:
                if self._sync is None:
                    self._sync = sync_twin(self.aclient)
        return self._sync

    @asynccontextmanager
    async def _aread_tx(self) -> AsyncIterator[AsyncTx]:
        await self._guard.enter()
        async with aread_tx(self.aclient, self.ttl) as tx:
            yield tx

    def _awrite_tx(self, thread_id: str | None = None) -> AbstractAsyncContextManager[AsyncTx]:
        return self._awrite(thread_id)

    @asynccontextmanager
    async def _awrite(self, thread_id: str | None) -> AsyncIterator[AsyncTx]:
        await self._guard.enter()
        async with awrite_tx(self.aclient, thread_id, self.ttl) as tx:
            yield tx

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls, redis_url: str, *, ttl: Mapping[str, Any] | None = None
    ) -> AsyncIterator[AsyncRedisSaver]:
        """A saver on a new client for `redis_url` ("redis://[:password@]host:port/db"), closed on exit.

        The client resends a command whose connection dropped (a transaction's commit is never resent).
        """
        aclient = aredis.Redis.from_url(
            redis_url,
            retry=AsyncRetry(ExponentialBackoff(cap=0.5, base=0.01), 5),
            retry_on_error=[RedisConnectionError, RedisTimeoutError],
        )
        try:
            async with cls(aclient, ttl=ttl) as saver:
                yield saver
        finally:
            await aclient.aclose()

    async def asetup(self) -> None:
        """Check the server (Redis 7 or newer) over the asyncio client. Nothing to create."""
        await self._guard.enter()
        check_version("AsyncRedisSaver", self.aclient, await self.aclient.info("server"))
        self.is_setup = True

    def setup(self) -> None:
        """Sync twin of `asetup` (over the sync client)."""
        check_version("AsyncRedisSaver", self.aclient, self._sync_client().info("server"))
        self.is_setup = True

    async def __aenter__(self) -> AsyncRedisSaver:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close the sync client the sync methods opened, if any; the asyncio client stays its owner's."""
        with self._sync_lock:
            sync, self._sync = self._sync, None
        if sync is not None:
            sync.close()
