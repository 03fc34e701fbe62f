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

`blocking_call` gives the sync face of a saver that only has async transactions: a whole operation runs on
the event loop the saver last used (waited for from another thread), or on the saver's private loop when
none is running; `blocking` does the same per primitive, for code that holds a sync transaction itself.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import weakref
from collections.abc import Awaitable, Callable, Generator, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager, contextmanager
from typing import Any, Generic, TypeVar

__all__ = (
    "Body",
    "Op",
    "OpGen",
    "PrivateLoop",
    "Tx",
    "adrive",
    "arun",
    "asteer",
    "blocking",
    "blocking_call",
    "drive",
    "run",
    "steer",
)

T = TypeVar("T")
R = TypeVar("R")

Body = Generator[Any, Any, T]
"""A transaction body: yields primitive calls (`yield tx.blobs(...)`), returns its result."""


class Tx(Generic[T]):
    """Run `body(tx)` in a write transaction on `thread_id` (or a read one), then `after` on its result.

    A request yielded by an operation, or a whole one-transaction operation by itself (cheaper: no
    operation generator; `after` is what the operation would do after its transaction).
    """

    __slots__ = ("after", "body", "thread_id", "write")

    def __init__(
        self,
        body: Callable[[Any], Body[Any]],
        write: bool = False,
        thread_id: str | None = None,
        after: Callable[[Any], T] | None = None,
    ) -> None:
        self.body = body
        self.write = write
        self.thread_id = thread_id
        self.after = after


OpGen = Generator["Tx[Any]", Any, T]
Op = OpGen[T] | Tx[T]
"""An operation: a generator that yields `Tx` requests, receives each one's result and returns the
operation's result; or a single `Tx`."""


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
    return await asteer(body, _itself)


def _itself(call: Awaitable[Any]) -> Awaitable[Any]:
    """A yielded async primitive call is its own answer: `asteer` awaits it."""
    return call


def run(
    op: Op[T],
    read_tx: Callable[[], AbstractContextManager[Any]],
    write_tx: Callable[[str | None], AbstractContextManager[Any]],
) -> T:
    """Run an operation on sync transactions."""
    if isinstance(op, Tx):
        with write_tx(op.thread_id) if op.write else read_tx() as tx:
            body = op.body(tx)
            try:  # `drive`, inline: this is every sync call's path
                value = next(body)
                while True:
                    value = body.send(value)
            except StopIteration as stop:
                result = stop.value
        return result if op.after is None else op.after(result)

    def in_tx(request: Tx[Any]) -> Any:
        with write_tx(request.thread_id) if request.write else read_tx() as tx:
            return drive(request.body(tx))

    return steer(op, in_tx)


async def arun(
    op: Op[T],
    read_tx: Callable[[], AbstractAsyncContextManager[Any]],
    write_tx: Callable[[str | None], AbstractAsyncContextManager[Any]],
) -> T:
    """Run an operation on async transactions, on the running event loop."""
    if isinstance(op, Tx):
        async with write_tx(op.thread_id) if op.write else read_tx() as tx:
            result = await adrive(op.body(tx))
        return result if op.after is None else op.after(result)

    async def in_tx(request: Tx[Any]) -> Any:
        async with write_tx(request.thread_id) if request.write else read_tx() as tx:
            return await adrive(request.body(tx))

    return await asteer(op, in_tx)


def steer(op: Generator[R, Any, T], answer: Callable[[R], Any]) -> T:
    """Run a generator of requests (an operation's transactions): send back `answer(request)`, or throw
    its error in, until the generator returns."""
    try:
        request = next(op)
        while True:
            try:
                result = answer(request)
            except BaseException as exc:
                request = op.throw(exc)
            else:
                request = op.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def asteer(op: Generator[R, Any, T], answer: Callable[[R], Awaitable[Any]]) -> T:
    """Async `steer`: each request's answer is awaited."""
    try:
        request = next(op)
        while True:
            try:
                result = await answer(request)
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


class PrivateLoop:
    """A saver's own event loop, for its sync calls made where no loop of its runs; one call at a time.

    Made on first use and closed when the saver is garbage collected (or at exit).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runner: asyncio.Runner | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    @contextmanager
    def hold(self) -> Iterator[asyncio.Runner]:
        with self._lock:
            if self._runner is None:
                self._runner = asyncio.Runner()
                self.loop = self._runner.get_loop()
                weakref.finalize(self, _close, self._runner)
            yield self._runner


def _close(runner: asyncio.Runner) -> None:
    # Not `runner.close()`: that runs the loop once more, which fails when the collector calls this while
    # another loop runs in the thread; the loop is idle, so closing it only releases its resources.
    loop = runner.get_loop()
    if not loop.is_closed():
        loop.close()


@contextmanager
def blocking_call(
    loop: asyncio.AbstractEventLoop | None, private: PrivateLoop, what: str
) -> Iterator[Callable[[Awaitable[Any]], Any]]:
    """How a sync method of an async-only saver waits for its coroutines, for the block.

    On `loop` when it is running (in another thread: the caller waits), else on the saver's `private` loop.

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
    context = contextvars.copy_context()  # the caller's (its thread claims), for the coroutines
    if loop is not None and loop.is_running() and loop is not private.loop:
        running = loop

        def call(coro: Awaitable[T]) -> T:
            return asyncio.run_coroutine_threadsafe(_awaited(coro, context), running).result()

        yield call
        return
    with private.hold() as runner:
        yield lambda coro: runner.run(_awaited(coro, context))


@contextmanager
def blocking(
    open_tx: Callable[[], AbstractAsyncContextManager[Any]],
    loop: asyncio.AbstractEventLoop | None,
    private: PrivateLoop,
    what: str,
) -> Iterator[Any]:
    """A sync transaction over `open_tx()`'s async one, each primitive waited for by `blocking_call`."""
    with blocking_call(loop, private, what) as call, _bridged(open_tx, call) as tx:
        yield tx


async def _awaited(awaitable: Awaitable[T], context: contextvars.Context) -> T:
    for var, value in context.items():
        var.set(value)
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
