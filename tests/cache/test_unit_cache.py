"""The engine's cache API for any unit of work (what `@task` calls use): keys, reads and writes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import pytest

from graphrt.cache.base import BaseCache
from graphrt.checkpoint.serde.base import SerializationError
from graphrt.pregel._cache import (
    CACHE_NS_WRITES,
    UnitCache,
    aread_cache,
    awrite_cache,
    cacheable,
    read_cache,
    write_cache,
)
from graphrt.types import CachePolicy
from tests.cache.conftest import Clock
from tests.engine.conftest import exact

HERE = __name__


def fetch(url: str, *, retries: int = 0) -> str:
    return url


def test_a_unit_namespace_names_its_function_and_its_name() -> None:
    unit = UnitCache.of("task", "fetch", fetch, CachePolicy(ttl=5))
    assert unit.namespace == (CACHE_NS_WRITES, f"{HERE}.fetch", "fetch")
    assert UnitCache.of("node", "n", object(), CachePolicy()).namespace == (CACHE_NS_WRITES, "__dynamic__", "n")
    key = unit.key("https://a", retries=1)
    assert (key.ns, key.ttl, len(key.key)) == (unit.namespace, 5, 32)


def test_equal_arguments_give_equal_keys_and_different_ones_do_not() -> None:
    unit = UnitCache.of("task", "fetch", fetch, CachePolicy())
    assert unit.key({"a": 1, "b": {2, 3}}) == unit.key({"b": {3, 2}, "a": 1})
    assert unit.key(1, retries=2) == unit.key(1, retries=2)
    assert len({unit.key(1), unit.key(1, retries=2), unit.key(2), unit.key((1,)), unit.key([1])}) == 5


def test_the_default_key_is_the_same_in_another_process() -> None:
    """Sets and dicts are ordered before hashing, so a string hash seed cannot change the key."""
    code = (
        "import sys; sys.path.insert(0, '.'); from graphrt.pregel._cache import UnitCache; "
        "from graphrt.types import CachePolicy; "
        "print(UnitCache.of('task', 't', None, CachePolicy()).key({'s': {'x', 'y', 'z', 'w'}, 'n': 1}).key)"
    )
    keys = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"PYTHONHASHSEED": seed}
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert keys == {UnitCache.of("task", "t", None, CachePolicy()).key({"n": 1, "s": {"w", "z", "y", "x"}}).key}


def test_an_argument_the_default_key_cannot_serialize_names_the_task() -> None:
    unit = UnitCache.of("task", "fetch", fetch, CachePolicy())
    message = (
        "Type is not serializable: object (found at ['session']). Cannot make the cache key of task "
        f"'fetch' (function {HERE}.fetch): the default CachePolicy.key_func serializes the input. Pass "
        "CachePolicy(key_func=...) returning str or bytes, or register the type with "
        "graphrt.checkpoint.serde.jsonplus.register_type()."
    )
    with pytest.raises(SerializationError, match=exact(message)):
        unit.key("https://a", session=object())


def test_key_func_gets_the_call_arguments_as_given() -> None:
    seen: list[Any] = []

    def by_url(url: str, **kwargs: Any) -> str:
        seen.append((url, kwargs))
        return url

    unit = UnitCache.of("task", "fetch", fetch, CachePolicy(key_func=by_url))
    assert unit.key("u", retries=3) == unit.key("u", retries=4)
    assert seen == [("u", {"retries": 3}), ("u", {"retries": 4})]


def test_read_and_write_round_trip_with_the_unit_ttl(cache: BaseCache[Any], clock: Clock, mode: str) -> None:
    unit = UnitCache.of("task", "fetch", fetch, CachePolicy(ttl=10))
    key, other = unit.key("a"), unit.key("b")
    value = (("__return__", {"body": "hi"}),)
    if mode == "sync":
        assert read_cache(cache, [key]) == {}
        write_cache(cache, key, value)
        assert read_cache(cache, [key, other, key]) == {key: value}
        clock.advance(10)
        assert read_cache(cache, [key]) == {}
    else:
        assert asyncio.run(aread_cache(cache, [key])) == {}
        asyncio.run(awrite_cache(cache, key, value))
        assert asyncio.run(aread_cache(cache, [key, other, key])) == {key: value}
        clock.advance(10)
        assert asyncio.run(aread_cache(cache, [key])) == {}


def test_without_a_cache_nothing_is_read_or_written() -> None:
    key = UnitCache.of("task", "fetch", fetch, CachePolicy()).key("a")
    write_cache(None, key, ("v",))
    assert read_cache(None, [key]) == {}
    assert asyncio.run(aread_cache(None, [key])) == {}


def test_only_finished_units_are_cacheable() -> None:
    assert cacheable([("out", 1), ("branch:to:b", None)])
    assert cacheable([])
    assert not cacheable([("__interrupt__", ())])
    assert not cacheable([("out", 1), ("__error__", "boom")])
