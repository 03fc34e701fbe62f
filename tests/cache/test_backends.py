"""The cache contract, on `InMemoryCache` and `SqliteCache`, with the sync and the async methods."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from graphrt.cache.base import BaseCache
from graphrt.cache.sqlite import SqliteCache
from graphrt.checkpoint.serde.base import SerializationError
from graphrt.messages import AIMessage
from tests.cache._worker import SCRIPT
from tests.cache.conftest import Clock, clear, get, set_

ROOT = Path(__file__).resolve().parents[2]
NS = ("__pregel_ns_writes", "app.node", "node")


def test_set_then_get_returns_equal_values_of_the_same_types(cache: BaseCache[Any], mode: str) -> None:
    value = (("out", (1, 2)), ("tags", {"a", "b"}), ("msg", AIMessage(content="hi", id="m1")), ("none", None))
    set_(cache, {(NS, "k1"): (value, None), (NS, "k2"): (b"raw", None)}, mode)
    found = get(cache, [(NS, "k1"), (NS, "k2"), (NS, "missing")], mode)
    assert found == {(NS, "k1"): value, (NS, "k2"): b"raw"}
    assert type(found[(NS, "k1")][0][1]) is tuple and type(found[(NS, "k1")][1][1]) is set


def test_get_of_no_keys_and_of_unknown_keys_is_empty(cache: BaseCache[Any], mode: str) -> None:
    assert get(cache, [], mode) == {}
    assert get(cache, [(NS, "nope"), (("other",), "nope")], mode) == {}


def test_set_replaces_the_value_and_its_ttl(cache: BaseCache[Any], mode: str, clock: Clock) -> None:
    set_(cache, {(NS, "k"): ("old", 5)}, mode)
    set_(cache, {(NS, "k"): ("new", None)}, mode)
    clock.advance(3600)
    assert get(cache, [(NS, "k")], mode) == {(NS, "k"): "new"}


def test_an_entry_expires_after_its_ttl(cache: BaseCache[Any], mode: str, clock: Clock) -> None:
    set_(cache, {(NS, "short"): (1, 10), (NS, "forever"): (2, None)}, mode)
    clock.advance(9.9)
    assert get(cache, [(NS, "short"), (NS, "forever")], mode) == {(NS, "short"): 1, (NS, "forever"): 2}
    clock.advance(0.1)
    assert get(cache, [(NS, "short"), (NS, "forever")], mode) == {(NS, "forever"): 2}
    clock.advance(-5)  # the expired entry was deleted, not merely hidden
    assert get(cache, [(NS, "short")], mode) == {}


def test_clear_drops_the_given_namespaces_or_everything(cache: BaseCache[Any], mode: str) -> None:
    other = ("__pregel_ns_writes", "app.other", "other")
    set_(cache, {(NS, "k"): (1, None), (other, "k"): (2, None), (("x",), "k"): (3, None)}, mode)
    clear(cache, [NS, ("never-used",)], mode)
    assert get(cache, [(NS, "k"), (other, "k"), (("x",), "k")], mode) == {(other, "k"): 2, (("x",), "k"): 3}
    clear(cache, None, mode)
    assert get(cache, [(other, "k"), (("x",), "k")], mode) == {}


def test_namespaces_differing_only_by_a_separator_stay_apart(cache: BaseCache[Any], mode: str) -> None:
    set_(cache, {(("a,b",), "k"): (1, None), (("a", "b"), "k"): (2, None)}, mode)
    clear(cache, [("a", "b")], mode)
    assert get(cache, [(("a,b",), "k"), (("a", "b"), "k")], mode) == {(("a,b",), "k"): 1}


def test_a_value_of_an_unknown_type_fails_at_set_and_nothing_is_stored(cache: BaseCache[Any], mode: str) -> None:
    class Opaque:
        def __reduce__(self) -> Any:  # pickle would accept it; the cache never pickles
            return (Opaque, ())

    set_(cache, {(NS, "k"): ("before", None)}, mode)
    with pytest.raises(SerializationError, match=r"^Type is not serializable: .*Opaque \(found at \[1\]\)"):
        set_(cache, {(NS, "k"): (["fine", Opaque()], None)}, mode)
    assert get(cache, [(NS, "k")], mode) == {(NS, "k"): "before"}


def test_stored_values_do_not_follow_later_mutation(cache: BaseCache[Any], mode: str) -> None:
    value = {"items": [1, 2]}
    set_(cache, {(NS, "k"): (value, None)}, mode)
    value["items"].append(3)
    first = get(cache, [(NS, "k")], mode)[(NS, "k")]
    first["items"].append(4)
    assert get(cache, [(NS, "k")], mode) == {(NS, "k"): {"items": [1, 2]}}


def test_many_keys_in_one_call(cache: BaseCache[Any], mode: str) -> None:
    pairs = {(NS, f"k{i}"): (i, None) for i in range(1000)}
    set_(cache, pairs, mode)
    found = get(cache, [*pairs, (NS, "missing")], mode)
    assert found == {key: i for key, (i, _) in pairs.items()}


def test_threads_share_one_cache_safely(cache: BaseCache[Any]) -> None:
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(50):
                cache.set({((f"w{worker}",), f"k{i}"): ((worker, i), None)})
                assert cache.get([((f"w{worker}",), f"k{i}")]) == {((f"w{worker}",), f"k{i}"): (worker, i)}
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    keys = [((f"w{w}",), f"k{i}") for w in range(6) for i in range(50)]
    assert len(cache.get(keys)) == 300


# ---------------------------------------------------------------- SQLite across connections and processes


def child(command: str, database: Path, argument: str = "-") -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(ROOT), command, str(database), argument],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_sqlite_entries_are_shared_with_another_process(tmp_path: Path) -> None:
    database = tmp_path / "cache.sqlite"
    assert child("get", database) == {"found": []}
    child("set", database)
    with SqliteCache(path=str(database)) as cache:
        assert cache.get([(("ns",), "k")]) == {(("ns",), "k"): {"n": 1, "tags": {"a", "b"}}}
        cache.clear([("ns",)])
        assert child("get", database) == {"found": []}
        cache.set({(("ns",), "k"): ({"n": 2, "tags": frozenset({"c"})}, None)})
    assert child("get", database) == {"found": [{"n": 2, "tags": ["c"], "type": "frozenset"}]}


def test_sqlite_expiry_is_wall_clock_time_shared_by_processes(tmp_path: Path) -> None:
    database = tmp_path / "cache.sqlite"
    later = Clock(4_000_000_000.0)  # far after now: what the other process stored has expired by then
    with SqliteCache(path=str(database), clock=later) as cache:
        child("set", database)  # no ttl: never expires
        assert cache.get([(("ns",), "k")]) != {}
        cache.set({(("ns",), "k"): ("mine", 60)})
        later.advance(61)
        assert cache.get([(("ns",), "k")]) == {}
    assert child("get", database) == {"found": []}


def test_two_sqlite_caches_on_one_file_write_concurrently(tmp_path: Path) -> None:
    database = str(tmp_path / "cache.sqlite")
    with SqliteCache(path=database) as one, SqliteCache(path=database) as two:
        errors: list[BaseException] = []

        def work(cache: SqliteCache[Any], name: str) -> None:
            try:
                for i in range(100):
                    cache.set({((name,), str(i)): (i, None)})
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(c, n)) for c, n in ((one, "a"), (two, "b"))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(one.get([((n,), str(i)) for n in "ab" for i in range(100)])) == 200
    with sqlite3.connect(database) as plain:
        assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)  # WAL is a property of the file
    plain.close()
