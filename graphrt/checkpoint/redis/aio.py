"""`AsyncRedisSaver`: the async face of the Redis saver, at LangGraph's path, on `redis.asyncio` natively."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any

import redis.asyncio as aredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from graphrt.checkpoint._drive import blocking_call
from graphrt.checkpoint._primitives import AsyncReadTx, AsyncWriteTx
from graphrt.checkpoint.redis import RedisCore, check_client, check_version, describe
from graphrt.checkpoint.redis._astorage import aread_tx, awrite_tx
from graphrt.checkpoint.redis._loops import LoopClients
from graphrt.checkpoint.serde.base import SerializerProtocol

__all__ = ("AsyncRedisSaver",)


class AsyncRedisSaver(RedisCore):
    """Checkpoints in Redis 7 for async code; the same storage and behaviour as `RedisSaver`.

    Takes a `redis.asyncio.Redis` client (or use `from_conn_string`) and awaits every Redis command
    on it: the `a*` methods run on the event loop, with no worker thread. The saver may be used
    under one `asyncio.run` after another, or from several loops at once: the client serves one
    loop at a time, another loop gets a client of its own with the same settings, and a loop's
    connections are closed when it shuts down (see `_loops`).

    Its sync methods run the same async code (see `_drive.blocking_call`): on the saver's event loop
    when it runs in another thread, else on the saver's private loop; they refuse to run on a thread
    whose loop is running, which they would block (as LangGraph's `AsyncRedisSaver` does).

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
        self._clients = LoopClients(redis_client)

    def __repr__(self) -> str:
        return f"AsyncRedisSaver(redis={describe(self.aclient)})"

    @asynccontextmanager
    async def _aread_tx(self) -> AsyncIterator[AsyncReadTx]:
        client = await self._client()
        try:
            async with aread_tx(client, self.ttl) as tx:
                yield tx
        finally:
            await self._after(client)

    def _awrite_tx(self, thread_id: str | None = None) -> AbstractAsyncContextManager[AsyncWriteTx]:
        return self._awrite(thread_id)

    @asynccontextmanager
    async def _awrite(self, thread_id: str | None) -> AsyncIterator[AsyncWriteTx]:
        client = await self._client()
        try:
            async with awrite_tx(client, thread_id, self.ttl) as tx:
                yield tx
        finally:
            await self._after(client)

    async def _client(self) -> aredis.Redis:
        return await self._clients.get(lend=asyncio.get_running_loop() is not self._private.loop)

    async def _after(self, client: aredis.Redis) -> None:
        """On the saver's private loop (its sync methods' loop, closed without shutting down), close the
        connections after each transaction: nothing would close them later."""
        if asyncio.get_running_loop() is self._private.loop:
            await client.connection_pool.disconnect()

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
            yield cls(aclient, ttl=ttl)
        finally:
            await aclient.aclose()

    async def asetup(self) -> None:
        """Check the server (Redis 7 or newer). Nothing to create: keys appear as they are written."""
        client = await self._client()
        try:
            check_version("AsyncRedisSaver", client, await client.info("server"))
        finally:
            await self._after(client)
        self.is_setup = True

    def setup(self) -> None:
        """Sync twin of `asetup`, run like the other sync methods (never on the event loop's thread)."""
        with blocking_call(self._loop, self._private, "AsyncRedisSaver") as call:
            call(self.asetup())

    async def __aenter__(self) -> AsyncRedisSaver:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None
