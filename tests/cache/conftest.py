"""Fixtures of the cache suite: every behaviour on `InMemoryCache` and `SqliteCache`, sync and async."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from graphrt.cache.base import BaseCache, FullKey, Namespace
from graphrt.cache.memory import InMemoryCache
from graphrt.cache.sqlite import SqliteCache

MODES = ("sync", "async")
BACKENDS = ("memory", "sqlite")


class Clock:
    """A fake wall clock: tests move it forward instead of sleeping."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=BACKENDS)
def cache(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[BaseCache[Any]]:
    """A fresh cache on the fake clock: in memory, or in a SQLite file."""
    if request.param == "memory":
        yield InMemoryCache(clock=clock)
    else:
        with SqliteCache(path=str(tmp_path / "cache.sqlite"), clock=clock) as sqlite_cache:
            yield sqlite_cache


def get(cache: BaseCache[Any], keys: Sequence[FullKey], mode: str) -> dict[FullKey, Any]:
    return cache.get(keys) if mode == "sync" else asyncio.run(cache.aget(keys))


def set_(cache: BaseCache[Any], pairs: Mapping[FullKey, tuple[Any, int | None]], mode: str) -> None:
    if mode == "sync":
        cache.set(pairs)
    else:
        asyncio.run(cache.aset(pairs))


def clear(cache: BaseCache[Any], namespaces: Sequence[Namespace] | None, mode: str) -> None:
    if mode == "sync":
        cache.clear(namespaces)
    else:
        asyncio.run(cache.aclear(namespaces))
