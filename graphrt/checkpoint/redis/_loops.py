"""Which `redis.asyncio` client an `AsyncRedisSaver` uses on the running event loop.

An asyncio connection belongs to the loop that opened it, but a saver outlives loops: scripts and
tests call `asyncio.run` again and again, and the sync methods of an async saver run on a private
loop per transaction (`_drive.blocking`), possibly in several threads at once. So:

- the user's client serves one loop at a time: the first loop that asks while it is free;
- another loop asking meanwhile gets a client of its own, with the same settings (server,
  credentials, retries);
- when a loop shuts down, its client's connections are closed (a client of its own entirely) and
  the user's client is free again. `asyncio.run`, `asyncio.Runner` and `anyio.run` close every open
  async generator before closing the loop: one started on the loop's first use runs the cleanup.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncGenerator

import redis.asyncio as aredis

__all__ = ("LoopClients",)


class LoopClients:
    """The asyncio client for each running event loop (see the module docstring)."""

    def __init__(self, client: aredis.Redis) -> None:
        self.client = client
        self._owner: asyncio.AbstractEventLoop | None = None
        """The loop using `client` now, if any."""
        self._by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aredis.Redis] = weakref.WeakKeyDictionary()
        self._cleanups: dict[int, AsyncGenerator[None, None]] = {}
        """Each running loop's cleanup generator, by the loop's id (the loop itself keeps weak references)."""
        self._lock = threading.Lock()

    async def get(self, *, lend: bool = True) -> aredis.Redis:
        """The client to use on the running loop (bound to it on its first use); `lend=False`: never
        the user's client (for a loop that is not shut down properly)."""
        loop = asyncio.get_running_loop()
        found = self._by_loop.get(loop)
        if found is not None:
            return found
        with self._lock:
            own = self._owner is not None or not lend
            if own:
                pool = self.client.connection_pool
                client = aredis.Redis(
                    connection_pool=aredis.ConnectionPool(
                        connection_class=pool.connection_class, **pool.connection_kwargs
                    )
                )
            else:
                self._owner, client = loop, self.client
            self._by_loop[loop] = client
        cleanup = self._close_at_shutdown(loop, client, own)
        await anext(cleanup)
        self._cleanups[id(loop)] = cleanup
        return client

    async def _close_at_shutdown(
        self, loop: asyncio.AbstractEventLoop, client: aredis.Redis, own: bool
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            with self._lock:
                self._by_loop.pop(loop, None)
                self._cleanups.pop(id(loop), None)
                if not own:
                    self._owner = None
            await client.connection_pool.disconnect()
