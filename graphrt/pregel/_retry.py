"""Retry decisions: pure functions; the drivers do the sleeping."""

from __future__ import annotations

import random
from collections.abc import Sequence

from graphrt.types import RetryPolicy


def _matches(policy: RetryPolicy, exc: Exception) -> bool:
    retry_on = policy.retry_on
    if isinstance(retry_on, type) and issubclass(retry_on, BaseException):
        return isinstance(exc, retry_on)
    if isinstance(retry_on, Sequence):
        return isinstance(exc, tuple(retry_on))
    assert callable(retry_on)
    return bool(retry_on(exc))  # type: ignore[call-arg]


def next_delay(policies: Sequence[RetryPolicy], attempt: int, exc: Exception) -> float | None:
    """Seconds to wait before attempt `attempt + 1`, or None to give up.

    The first policy whose `retry_on` matches decides, as in LangGraph.
    """
    for policy in policies:
        if not _matches(policy, exc):
            continue
        if attempt >= policy.max_attempts:
            return None
        delay = min(policy.max_interval, policy.initial_interval * policy.backoff_factor ** (attempt - 1))
        return delay + random.uniform(0, 1) if policy.jitter else delay
    return None
