"""Thread ownership: a run claims its thread before writing anything and holds it until it ends.

The claim is a `Lease` row per thread, set with compare-and-set through the storage primitives
(`WriteTx.swap_lease`), so it works on every backend and across processes and machines:

- a live lease of another owner refuses the claim (`multitask_strategy="reject"`, the default) or
  makes the caller poll until it is free (`"enqueue"`, up to `multitask_timeout` seconds);
- a lease is *stale*, and taken over at once, when it expired (its owner stopped renewing it: a
  crashed machine), when its process is gone from this machine (`kill -9`), or when it names this
  process but no live claim here holds it (a run that leaked it);
- while a claim is held, a daemon thread renews it every third of `lease_seconds`; every guarded
  write checks in its own transaction that the lease is still this claim's (fencing), so a run
  that lost its thread cannot write after another took it over.

Claims are re-entrant per context: a nested run (a subgraph, a task) on a thread its caller already
holds does not claim again.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any, Protocol

from graphrt.checkpoint._drive import Body, drive
from graphrt.checkpoint._primitives import Lease, WriteTx
from graphrt.config import RunnableConfig
from graphrt.errors import ThreadConflictError

__all__ = (
    "DEFAULT_ENQUEUE_TIMEOUT",
    "DEFAULT_LEASE_SECONDS",
    "STRATEGIES",
    "ClaimOptions",
    "Claims",
    "claim_options",
    "held_owner",
    "is_stale",
    "new_lease",
    "release_on",
    "released_with",
)

STRATEGIES = ("reject", "enqueue")
"""The `multitask_strategy` values supported (LangGraph's server also has "interrupt" and "rollback")."""
DEFAULT_LEASE_SECONDS = 15.0
"""How long a lease lives without renewal: the takeover delay after a machine (not a process) dies."""
DEFAULT_ENQUEUE_TIMEOUT = 300.0
"""How long an "enqueue" run waits for its thread by default, in seconds."""


def _host() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
    except OSError:
        boot = ""
    return f"{socket.gethostname()}/{boot}"


HOST = _host()
"""This machine (and boot): a lease whose pid is dead here is stale."""

_live_lock = threading.Lock()
_live: set[str] = set()
"""Owner tokens of the claims this process holds now."""

_released: set[str] = set()
"""Owner tokens whose lease was already dropped by the transaction of a run's last saves (`released_with`)."""

_held: ContextVar[Mapping[tuple[int, str], str]] = ContextVar("graphrt_held_threads", default=MappingProxyType({}))
"""(id of the saver, thread_id) -> owner token, for the claims held by the current run context."""


@dataclass(frozen=True, slots=True)
class ClaimOptions:
    """How a run claims its thread."""

    strategy: str = "reject"
    timeout: float = DEFAULT_ENQUEUE_TIMEOUT


def claim_options(config: RunnableConfig | None) -> ClaimOptions:
    """`multitask_strategy` and `multitask_timeout` from `config["configurable"]`, checked.

    Raises:
        ValueError: An unknown strategy, or a timeout that is not a positive number.
    """
    conf = (config or {}).get("configurable") or {}
    strategy = conf.get("multitask_strategy", "reject")
    if strategy not in STRATEGIES:
        raise ValueError(
            f"Unknown multitask_strategy {strategy!r}: graphrt supports 'reject' (the default: a second run "
            "on a busy thread raises ThreadConflictError) and 'enqueue' (it waits for the thread)."
        )
    timeout = conf.get("multitask_timeout", DEFAULT_ENQUEUE_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise ValueError(f"multitask_timeout must be a positive number of seconds, got {timeout!r}")
    return ClaimOptions(strategy, float(timeout))


def now_micros() -> int:
    return time.time_ns() // 1000


def new_lease(lease_seconds: float | None) -> Lease:
    """A fresh lease for this process."""
    expires = None if lease_seconds is None else now_micros() + int(lease_seconds * 1_000_000)
    return Lease(owner=uuid.uuid4().hex, host=HOST, pid=os.getpid(), expires_at=expires)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def is_stale(lease: Lease, now: int) -> bool:
    """Whether anyone may take this lease over: expired, its process dead here, or leaked here."""
    if lease.expires_at is not None and lease.expires_at <= now:
        return True
    if lease.host != HOST:
        return False
    if lease.pid == os.getpid():
        with _live_lock:
            return lease.owner not in _live
    return not pid_alive(lease.pid)


def held_owner(saver: object, thread_id: str) -> str | None:
    """The owner token of the claim the current context holds on `thread_id` through `saver`."""
    return _held.get().get((id(saver), thread_id))


Transact = Callable[[str, Callable[[Any], Body[Any]]], Awaitable[Any]]
"""transact(thread_id, body) runs `body(tx)` in an async-callable write transaction on the thread."""


class LeaseStorage(Protocol):
    """What `Claims` needs of a saver: write transactions and the lease duration."""

    lease_seconds: float | None

    def _write_tx(self, thread_id: str | None = None) -> contextlib.AbstractContextManager[WriteTx]: ...


def claim_on(tx: Any, thread_id: str, lease: Lease) -> Body[Lease | None]:
    """Set `lease` on the thread unless a live lease holds it; returns that holder, or None if claimed.

    A transaction body (`_drive`): run it in a write transaction on the thread, sync or async.
    """
    current: Lease | None = yield tx.lease(thread_id)
    if current is not None and not is_stale(current, now_micros()):
        return current
    lazily = getattr(tx, "commit_lazily", None)
    if lazily is not None:
        # A claim needs no flush to disk of its own: the run's saves are fenced on the lease in their own
        # transactions, and the run's last commit (its saves, or the release) is synchronous, which makes
        # everything committed before it durable too. A crash of the server that loses the claim makes the
        # run's next save fail its fence, as a takeover would.
        yield lazily()
    if (yield tx.swap_lease(thread_id, current, lease)):
        with _live_lock:
            _live.add(lease.owner)
        return None
    holder: Lease | None = yield tx.lease(thread_id)
    return holder or current or lease


def release_on(tx: Any, thread_id: str, owner: str) -> Body[None]:
    """Drop the thread's lease if this claim still holds it (a transaction body, like `claim_on`).

    Call `let_go(owner)` first: should the storage be unreachable, the lease is then stale here.
    """
    current = yield tx.lease(thread_id)
    if current is not None and current.owner == owner:
        yield tx.swap_lease(thread_id, current, None)


def released_with(owner: str) -> None:
    """The claim `owner`'s lease was dropped in the transaction of its run's last saves (`release_on` run by
    `CoreSaver.commit_saves`): leaving the claim's block then costs no transaction of its own."""
    with _live_lock:
        _released.add(owner)


def _already_released(owner: str) -> bool:
    with _live_lock:
        if owner in _released:
            _released.discard(owner)
            return True
        return False


def try_claim(storage: LeaseStorage, thread_id: str, lease: Lease) -> Lease | None:
    """`claim_on` in a sync write transaction (a transaction that fails claims nothing)."""
    try:
        with storage._write_tx(thread_id) as tx:
            return drive(claim_on(tx, thread_id, lease))
    except BaseException:
        let_go(lease.owner)
        raise


def let_go(owner: str) -> None:
    """This process no longer holds the claim `owner` (its lease, if still stored, is stale here)."""
    with _live_lock:
        _live.discard(owner)


def release(storage: LeaseStorage, thread_id: str, owner: str) -> None:
    """`release_on` in a sync write transaction."""
    let_go(owner)
    with storage._write_tx(thread_id) as tx:
        drive(release_on(tx, thread_id, owner))


def busy(thread_id: str, waited: float | None = None) -> ThreadConflictError:
    """The error for a refused claim (logged as a refused conflict)."""
    from graphrt._log import log_conflict

    error = ThreadConflictError(thread_id, busy=True, waited=waited)
    log_conflict(error)
    return error


class Claims:
    """The claims one saver holds in this process, and the thread that renews them."""

    def __init__(self, storage: LeaseStorage) -> None:
        self._storage = storage
        self._lock = threading.Lock()
        self._held: dict[str, tuple[str, Lease]] = {}
        """owner token -> (thread_id, lease as last stored)."""
        self._renewer: threading.Thread | None = None
        self._claims_made = 0
        """Claims tracked so far: the renewer ends only after a whole round in which none was made."""

    # -- sync -------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def claim(self, thread_id: str, options: ClaimOptions) -> Iterator[None]:
        """Hold `thread_id` for the block (a no-op when the current context already holds it)."""
        key = (id(self._storage), thread_id)
        if key in _held.get():
            yield
            return
        lease = self._acquire(thread_id, options, time.sleep, time.monotonic() + options.timeout)
        with self._holding(key, thread_id, lease):
            yield

    def _acquire(self, thread_id: str, options: ClaimOptions, sleep: Callable[[float], Any], deadline: float) -> Lease:
        delay = 0.002
        while True:
            lease = new_lease(self._storage.lease_seconds)
            if try_claim(self._storage, thread_id, lease) is None:
                return lease
            remaining = deadline - time.monotonic()
            if options.strategy == "reject":
                raise busy(thread_id)
            if remaining <= 0:
                raise busy(thread_id, options.timeout)
            sleep(min(delay, remaining))
            delay = min(delay * 2, 0.05)

    @contextlib.contextmanager
    def _holding(self, key: tuple[int, str], thread_id: str, lease: Lease) -> Iterator[None]:
        token = _held.set({**_held.get(), key: lease.owner})
        self._track(thread_id, lease)
        try:
            yield
        finally:
            self._untrack(lease.owner)
            try:
                _held.reset(token)
            except ValueError:  # closed from another context (a generator finalized elsewhere)
                _held.set({k: v for k, v in _held.get().items() if k != key})
            if _already_released(lease.owner):
                let_go(lease.owner)
            else:
                release(self._storage, thread_id, lease.owner)

    # -- async ------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def aclaim(self, thread_id: str, options: ClaimOptions, transact: Transact) -> Any:
        """Async twin of `claim`: `transact` runs the storage bodies, waiting sleeps on the event loop."""
        import anyio

        key = (id(self._storage), thread_id)
        if key in _held.get():
            yield
            return
        deadline = time.monotonic() + options.timeout
        delay = 0.002
        while True:
            lease = new_lease(self._storage.lease_seconds)
            try:
                holder = await transact(thread_id, functools.partial(claim_on, thread_id=thread_id, lease=lease))
            except BaseException:
                let_go(lease.owner)  # the transaction failed: it claimed nothing
                raise
            if holder is None:
                break
            remaining = deadline - time.monotonic()
            if options.strategy == "reject":
                raise busy(thread_id)
            if remaining <= 0:
                raise busy(thread_id, options.timeout)
            await anyio.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.05)
        token = _held.set({**_held.get(), key: lease.owner})
        self._track(thread_id, lease)
        try:
            yield
        finally:
            self._untrack(lease.owner)
            try:
                _held.reset(token)
            except ValueError:
                _held.set({k: v for k, v in _held.get().items() if k != key})
            let_go(lease.owner)
            if not _already_released(lease.owner):
                with anyio.CancelScope(shield=True):
                    await transact(thread_id, lambda tx: release_on(tx, thread_id, lease.owner))

    # -- renewal ----------------------------------------------------------------------------------

    def _track(self, thread_id: str, lease: Lease) -> None:
        if lease.expires_at is None:
            return
        with self._lock:
            self._held[lease.owner] = (thread_id, lease)
            self._claims_made += 1
            if self._renewer is None or not self._renewer.is_alive():
                self._renewer = threading.Thread(target=self._renew_loop, name="graphrt-lease", daemon=True)
                self._renewer.start()

    def _untrack(self, owner: str) -> None:
        with self._lock:
            self._held.pop(owner, None)

    def _renew_loop(self) -> None:
        """Renew the held leases every third of their life; end after a whole round with no claim held or made.

        The thread outlives the last claim by one or two rounds rather than ending with it: a thread that
        runs many short runs one after another (a chat, an agent) starts it once, not once per run, even
        when a round happens to wake between one run's release and the next one's claim.
        """
        seconds = self._storage.lease_seconds or DEFAULT_LEASE_SECONDS
        made = -1
        while True:
            time.sleep(seconds / 3)
            with self._lock:
                held = list(self._held.items())
            for owner, (thread_id, lease) in held:
                self._renew(owner, thread_id, lease, seconds)
            with self._lock:
                if not self._held and self._claims_made == made:
                    self._renewer = None
                    return
                made = self._claims_made

    def _renew(self, owner: str, thread_id: str, lease: Lease, seconds: float) -> None:
        fresh = replace(lease, expires_at=now_micros() + int(seconds * 1_000_000))
        try:
            with self._storage._write_tx(thread_id) as tx:
                current = tx.lease(thread_id)
                ok = current is not None and current.owner == owner and tx.swap_lease(thread_id, current, fresh)
        except Exception:  # storage briefly unavailable: try again next round; fencing keeps writes safe
            return
        with self._lock:
            if owner in self._held:
                if ok:
                    self._held[owner] = (thread_id, fresh)
                else:
                    del self._held[owner]  # lost to a takeover: the run's next write is refused
