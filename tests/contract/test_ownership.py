"""Thread ownership through the saver contract (`claim_thread`), on every backend."""

from __future__ import annotations

import asyncio
import contextvars
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from graphrt.checkpoint._ownership import HOST, now_micros
from graphrt.checkpoint._primitives import Lease
from graphrt.checkpoint.base import empty_checkpoint
from graphrt.errors import ThreadConflictError


def cfg(thread_id: str = "t", **options: Any) -> Any:
    return {"configurable": {"thread_id": thread_id, **options}}


def in_fresh_context(func: Any) -> Any:
    """Run `func` in another thread with an empty context (as another run would)."""
    result: list[Any] = []

    def target() -> None:
        try:
            result.append(contextvars.Context().run(func))
        except BaseException as exc:
            result.append(exc)

    worker = threading.Thread(target=target)
    worker.start()
    worker.join(20)
    return result[0]


def try_claim(saver: Any, **options: Any) -> Any:
    def claim() -> str:
        with saver.claim_thread(cfg(**options)):
            return "claimed"

    return in_fresh_context(claim)


def stored_lease(saver: Any, thread_id: str = "t") -> Lease | None:
    with saver._read_tx() as tx:
        lease: Lease | None = tx.lease(thread_id)
        return lease


def test_a_held_thread_refuses_another_claim_until_released(core_saver: Any) -> None:
    with core_saver.claim_thread(cfg()):
        refused = try_claim(core_saver)
        assert isinstance(refused, ThreadConflictError) and refused.busy
        assert try_claim(core_saver, thread_id="other") == "claimed"
        with core_saver.claim_thread(cfg()):  # re-entrant in the holding context
            pass
        assert stored_lease(core_saver) is not None
    assert stored_lease(core_saver) is None  # released: no lease left
    assert try_claim(core_saver) == "claimed"


def test_enqueue_waits_until_the_holder_releases(core_saver: Any) -> None:
    released = threading.Event()

    def holder() -> None:
        with core_saver.claim_thread(cfg()):
            started.set()
            time.sleep(0.3)
            released.set()

    started = threading.Event()
    thread = threading.Thread(target=lambda: contextvars.Context().run(holder))
    thread.start()
    assert started.wait(10)
    assert try_claim(core_saver, multitask_strategy="enqueue", multitask_timeout=10) == "claimed"
    assert released.is_set()
    thread.join(10)


def test_async_claims(core_saver: Any) -> None:
    async def scenario() -> None:
        async with core_saver.aclaim_thread(cfg()):
            # From a worker thread, so the loop stays free (an async-only saver's sync calls run on it).
            assert isinstance(await asyncio.to_thread(try_claim, core_saver), ThreadConflictError)
            waiter = asyncio.create_task(claim_later(), context=contextvars.Context())  # another run
            await asyncio.sleep(0.1)
            assert not waiter.done()
        await asyncio.wait_for(waiter, 10)

    async def claim_later() -> None:
        async with core_saver.aclaim_thread(cfg(multitask_strategy="enqueue")):
            pass

    asyncio.run(scenario())
    assert stored_lease(core_saver) is None


def set_lease(saver: Any, lease: Lease) -> None:
    with saver._write_tx("t") as tx:
        assert tx.swap_lease("t", tx.lease("t"), lease)


@pytest.mark.parametrize(
    ("host", "pid", "expires", "taken_over"),
    [
        ("elsewhere/boot", 1, +60_000_000, False),  # another machine's live lease
        ("elsewhere/boot", 1, -1, True),  # expired: that machine stopped renewing
        (HOST, "dead", +60_000_000, True),  # this machine, process gone (kill -9)
        (HOST, "self", +60_000_000, True),  # this process, but no live claim holds it (leaked)
        (HOST, 1, +60_000_000, False),  # this machine, process alive (pid 1)
    ],
)
def test_stale_leases_are_taken_over(core_saver: Any, host: str, pid: Any, expires: int, taken_over: bool) -> None:
    if pid == "dead":
        child = subprocess.Popen([sys.executable, "-c", "pass"])
        child.wait()
        pid = child.pid
    elif pid == "self":
        import os

        pid = os.getpid()
    set_lease(core_saver, Lease("someone", host, pid, now_micros() + expires))
    result = try_claim(core_saver)
    if taken_over:
        assert result == "claimed"
    else:
        assert isinstance(result, ThreadConflictError)
        lease = stored_lease(core_saver)
        assert lease is not None and lease.owner == "someone"


def test_a_run_whose_lease_was_taken_over_cannot_write(core_saver: Any) -> None:
    checkpoint = empty_checkpoint()
    with core_saver.claim_thread(cfg()):
        first = core_saver.put_guarded(cfg(), checkpoint, {}, {}, expected_head=None)
        set_lease(core_saver, Lease("thief", "elsewhere/boot", 1, now_micros() + 60_000_000))
        nxt = {**empty_checkpoint(), "id": "z" + checkpoint["id"][1:]}
        with pytest.raises(ThreadConflictError):
            core_saver.put_guarded(first, nxt, {}, {}, expected_head=first["configurable"]["checkpoint_id"])
        with pytest.raises(ThreadConflictError):
            core_saver.put_writes_guarded(first, [("c", 1)], "task")
    assert core_saver.get_head_id(cfg()) == first["configurable"]["checkpoint_id"]
    assert core_saver.get_tuple(cfg()).pending_writes == []
    assert stored_lease(core_saver) is not None and stored_lease(core_saver).owner == "thief"  # not released by us


def test_runs_one_after_another_share_one_renewing_thread(core_saver: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chat's turns claim and release the thread with pauses between them: the renewer starts once, not per
    turn, even when its rounds wake in a pause (it ends only after a whole round with no claim made)."""
    if core_saver.lease_seconds is None:
        pytest.skip("this storage's leases never expire")
    monkeypatch.setattr(core_saver, "lease_seconds", 3.0)  # a round every second
    renewers = []
    for _ in range(6):
        with core_saver.claim_thread(cfg()):
            renewers.append(core_saver._claims._renewer)
        assert stored_lease(core_saver) is None  # each claim is released at once
        time.sleep(0.4)  # most of the time nothing is held: rounds wake in these pauses
    assert renewers[0] is not None and all(r is renewers[0] for r in renewers)
    renewers[0].join(5)  # idle for a whole round, it ends
    assert not renewers[0].is_alive()


def test_a_held_lease_is_renewed(core_saver: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    if core_saver.lease_seconds is None:
        pytest.skip("this storage's leases never expire")
    monkeypatch.setattr(core_saver, "lease_seconds", 0.9)
    with core_saver.claim_thread(cfg()):
        renewer = core_saver._claims._renewer
        first = stored_lease(core_saver)
        time.sleep(2.0)
        later = stored_lease(core_saver)
        assert first is not None and later is not None and first.owner == later.owner
        assert later.expires_at is not None and later.expires_at > now_micros()  # still live after 2x its life
        assert isinstance(try_claim(core_saver), ThreadConflictError)
    assert renewer is not None
    renewer.join(5)  # with no claim left the renewing thread ends: nothing keeps running
    assert not renewer.is_alive()
    assert stored_lease(core_saver) is None


def test_a_claim_whose_transaction_fails_leaves_no_live_token() -> None:
    """A claim rolled back after its body ran (a lost connection at COMMIT, a retried batch) claims nothing."""
    from contextlib import contextmanager

    from graphrt.checkpoint import _ownership
    from graphrt.checkpoint.memory import InMemorySaver

    class FailingCommit(InMemorySaver):
        @contextmanager
        def _write_tx(self, thread_id: str | None = None) -> Any:
            with super()._write_tx(thread_id) as tx:
                yield tx
                raise ConnectionError("lost at commit")

    saver = FailingCommit()
    before = set(_ownership._live)
    with pytest.raises(ConnectionError), saver.claim_thread(cfg("failing")):
        pass
    assert set(_ownership._live) == before

    async def aclaim() -> None:
        async with saver.aclaim_thread(cfg("failing-async")):
            pass

    with pytest.raises(ConnectionError):
        asyncio.run(aclaim())
    assert set(_ownership._live) == before
