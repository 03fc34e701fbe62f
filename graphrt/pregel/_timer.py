"""One process-wide timer thread that starts work after a delay unless cancelled first: sync runs' background
commits (`Committer.kick`) and the pool workers of a step whose inline task runs long (`_run_inline_first`).

Every time another Python thread wakes up, it takes the GIL from the run's thread for a moment, and on a
small machine each such hand-over costs tens of microseconds. A pool thread that sleeps out the delay per
kick woke up twice per run (to take the job, then after its sleep), even when the run had ended and committed
its saves itself long before: measured here (A/B), that cost a 200-turn SQLite chat a quarter of each turn. Here, arming
costs a dictionary entry (and a wake-up only when the timer is idle), cancelling costs nothing, and while
runs keep arming it the thread wakes at most once per delay.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Hashable

__all__ = ("START_DELAY", "DelayedStarts", "delayed_starts")


class DelayedStarts:
    """Calls each armed `start` once `delay` seconds have passed since it was armed, unless cancelled first.

    A `start` runs on the timer's thread and must be quick and never raise (it hands work to a pool).
    """

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self._reset()
        if hasattr(os, "register_at_fork"):  # a forked child has no timer thread: it starts its own
            os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._armed: dict[Hashable, tuple[float, Callable[[], None]]] = {}
        self._thread: threading.Thread | None = None
        self._idle = False

    def arm(self, key: Hashable, start: Callable[[], None]) -> None:
        """Call `start` after the delay (replacing what `key` had armed)."""
        with self._cond:
            self._armed[key] = (time.monotonic() + self.delay, start)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="graphrt-timer", daemon=True)
                self._thread.start()
            elif self._idle:
                # Only an idle timer needs waking: a waiting one wakes for an earlier deadline (all share the delay).
                self._cond.notify()

    def cancel(self, key: Hashable) -> None:
        """Forget what `key` armed (its `start` will not be called); no wake-up."""
        with self._cond:
            self._armed.pop(key, None)

    def _run(self) -> None:
        cond = self._cond
        with cond:
            while True:
                if not self._armed:
                    self._idle = True
                    cond.wait()
                    self._idle = False
                    continue
                now = time.monotonic()
                first = min(due for due, _ in self._armed.values())
                if first > now:
                    cond.wait(first - now)
                    continue
                ready = [key for key, (due, _) in self._armed.items() if due <= now]
                starts = [self._armed.pop(key)[1] for key in ready]
                cond.release()
                try:
                    for start in starts:
                        # If it fails, nothing started: the run that armed it commits its saves itself when it waits.
                        with contextlib.suppress(Exception):
                            start()
                finally:
                    cond.acquire()


START_DELAY = 0.005
"""Seconds a run's thread has before other threads join in: a background commit of the saves a step queued, or
pool workers for a step's tasks. Shorter, a crash loses less of a fast run's start; longer, back-to-back short
runs wake the timer less often (at most once per delay)."""

delayed_starts = DelayedStarts(START_DELAY)
"""The process's timer (one thread for every use: all arms share its delay)."""
