"""One algorithm, run sync or async: transaction bodies are generators over a transaction's primitives.

The storage core writes each transaction once, as a generator that yields its primitive calls:

    def body(tx):
        head = yield tx.head(thread_id, checkpoint_ns)
        ...

Over a sync `WriteTx` the call has already run when it is yielded, so `drive` sends its result straight
back (one generator resume per primitive, nothing else). Over an `AsyncWriteTx` the call returned a
coroutine: `adrive` awaits it and sends the result back, or throws its error in, so the body's
`try`/`finally` see it exactly as in the sync case.

An operation (`Op`) is a generator one level up: it prepares its arguments, yields `Tx` requests (a body
to run in a read or a write transaction) and finishes with what the transactions returned. `CoreSaver`
runs an operation with `run` (sync transactions) or `arun` (async ones), so every public method and its
`a*` twin share all their code.

`blocking` gives the sync face of a saver that only has async transactions: each primitive runs on the
event loop the saver last used (from another thread), or on a private loop when none is running.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ("Body", "Op", "Tx", "adrive", "arun", "blocking", "drive", "run")

T = TypeVar("T")

Body = Generator[Any, Any, T]
"""A transaction body: yields primitive calls (`yield tx.blobs(...)`), returns its result."""


@dataclass(frozen=True, slots=True)
class Tx(Generic[T]):
    """A request of an operation: run `body(tx)` in a write transaction on `thread_id`, or a read one."""

    body: Callable[[Any], Body[T]]
    write: bool = False
    thread_id: str | None = None


Op = Generator["Tx[Any]", Any, T]
"""An operation: yields `Tx` requests, receives each one's result, returns the operation's result."""


def drive(body: Body[T]) -> T:
    """Run a body over a sync transaction: each yielded value is already the primitive's result."""
    try:
        value = next(body)
        while True:
            value = body.send(value)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def adrive(body: Body[T]) -> T:
    """Run a body over an async transaction: await each yielded call, send back its result or error."""
    try:
        step = next(body)
        while True:
            try:
                value = await step
            except BaseException as exc:
                step = body.throw(exc)
            else:
                step = body.send(value)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


def run(
    op: Op[T],
    read_tx: Callable[[], AbstractContextManager[Any]],
    write_tx: Callable[[str | None], AbstractContextManager[Any]],
) -> T:
    """Run an operation on sync transactions."""
    try:
        request = next(op)
        while True:
            try:
                with write_tx(request.thread_id) if request.write else read_tx() as tx:
                    result = drive(request.body(tx))
            except BaseException as exc:
                request = op.throw(exc)
            else:
                request = op.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def arun(
    op: Op[T],
    read_tx: Callable[[], AbstractAsyncContextManager[Any]],
    write_tx: Callable[[str | None], AbstractAsyncContextManager[Any]],
) -> T:
    """Run an operation on async transactions, on the running event loop."""
    try:
        request = next(op)
        while True:
            try:
                async with write_tx(request.thread_id) if request.write else read_tx() as tx:
                    result = await adrive(request.body(tx))
            except BaseException as exc:
                request = op.throw(exc)
            else:
                request = op.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


class _Blocking:
    """A sync transaction whose primitives run an async transaction's, through `call`."""

    __slots__ = ("_call", "_tx")

    def __init__(self, tx: Any, call: Callable[[Awaitable[Any]], Any]) -> None:
        self._tx = tx
        self._call = call

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self._tx, name)
        call = self._call
        return lambda *args: call(method(*args))


@contextmanager
def blocking(
    open_tx: Callable[[], AbstractAsyncContextManager[Any]], loop: asyncio.AbstractEventLoop | None, what: str
) -> Iterator[Any]:
    """A sync transaction over `open_tx()`'s async one, for the sync methods of an async-only saver.

    Runs on `loop` when it is running (in another thread: the caller waits), else on a private loop.

    Raises:
        RuntimeError: Called from a thread whose event loop is running (waiting would block that loop).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            f"{what}'s sync methods cannot run on the event loop's thread (they would block it): "
            "await the async twins (aget_tuple, alist, aput, ...), or call the sync ones from another thread"
        )
    if loop is not None and loop.is_running():

        def call(coro: Awaitable[T]) -> T:
            return asyncio.run_coroutine_threadsafe(_awaited(coro), loop).result()

        with _bridged(open_tx, call) as tx:
            yield tx
        return
    with asyncio.Runner() as runner, _bridged(open_tx, lambda coro: runner.run(_awaited(coro))) as tx:
        yield tx


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable


@contextmanager
def _bridged(
    open_tx: Callable[[], AbstractAsyncContextManager[Any]], call: Callable[[Awaitable[Any]], Any]
) -> Iterator[Any]:
    async def enter() -> tuple[AbstractAsyncContextManager[Any], Any]:
        manager = open_tx()
        return manager, await manager.__aenter__()

    manager, tx = call(enter())
    try:
        yield _Blocking(tx, call)
    except BaseException as exc:
        if not call(manager.__aexit__(type(exc), exc, exc.__traceback__)):
            raise
    else:
        call(manager.__aexit__(None, None, None))
