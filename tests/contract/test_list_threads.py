"""`list_threads`: the threads of a saver, newest first, on every backend and through the generic fallback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from _checkpoint_helpers import AssertingSaver, Thread
from conftest import BACKENDS, _open

from graphrt.checkpoint.base import BaseCheckpointSaver, ThreadInfo
from graphrt.checkpoint.memory import InMemorySaver


@pytest.fixture(params=[*BACKENDS, "generic"])
def saver(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BaseCheckpointSaver[Any]]:
    """Every backend's own `list_threads`, and the base class's fallback (a saver that only has `list`)."""
    if request.param == "generic":
        yield AssertingSaver(InMemorySaver())
        return
    with _open(request, tmp_path) as inner:
        yield inner


def list_threads(saver: BaseCheckpointSaver[Any], mode: str, **kwargs: Any) -> list[ThreadInfo]:
    if mode == "sync":
        return list(saver.list_threads(**kwargs))

    async def collect() -> list[ThreadInfo]:
        return [t async for t in saver.alist_threads(**kwargs)]

    return anyio.run(collect)


def make_threads(saver: BaseCheckpointSaver[Any]) -> dict[str, Thread]:
    """Three threads written in the order a, b, c (so c is newest), then a gets one more checkpoint."""
    threads = {name: Thread(saver, name) for name in ("a", "b", "c")}
    threads["a"].put("sync", {"x": 1}, {"source": "input", "step": -1, "user": "u1"})
    threads["b"].put("sync", {"x": 1}, {"source": "input", "step": -1, "user": "u2"})
    threads["b"].put("sync", {"x": 2}, {"source": "loop", "step": 0, "user": "u2"})
    threads["c"].put("sync", {"x": 1}, {"source": "loop", "step": 4, "user": "u1"})
    threads["a"].put("sync", {"x": 3}, {"source": "loop", "step": 0, "user": "u1"})
    return threads


def test_threads_come_newest_first_with_counts_steps_and_times(saver: BaseCheckpointSaver[Any], mode: str) -> None:
    make_threads(saver)
    got = list_threads(saver, mode)
    assert [(t.thread_id, t.checkpoints, t.last_step) for t in got] == [("a", 2, 0), ("c", 1, 4), ("b", 2, 0)]
    for info in got:
        head = saver.get_tuple({"configurable": {"thread_id": info.thread_id}})
        assert head is not None
        assert info.updated_at == head.checkpoint["ts"]
        assert info.metadata == head.metadata
    assert got[0].as_dict() == {
        "thread_id": "a",
        "checkpoints": 2,
        "last_step": 0,
        "updated_at": got[0].updated_at,
        "size": got[0].size,
        "metadata": {"source": "loop", "step": 0, "user": "u1"},
    }


def test_filter_matches_the_newest_checkpoint_and_limit_counts_matches(
    saver: BaseCheckpointSaver[Any], mode: str
) -> None:
    make_threads(saver)
    assert [t.thread_id for t in list_threads(saver, mode, filter={"user": "u1"})] == ["a", "c"]
    assert [t.thread_id for t in list_threads(saver, mode, filter={"source": "input"})] == []
    assert [t.thread_id for t in list_threads(saver, mode, filter={"user": "u2"}, limit=1)] == ["b"]
    assert [t.thread_id for t in list_threads(saver, mode, limit=2)] == ["a", "c"]
    assert list_threads(saver, mode, limit=0) == []
    with pytest.raises(ValueError, match=r"^limit must be a non-negative int or None, got -1$"):
        list_threads(saver, mode, limit=-1)


def test_a_subgraph_namespace_counts_but_the_root_head_describes_the_thread(
    saver: BaseCheckpointSaver[Any], mode: str
) -> None:
    root = Thread(saver, "t")
    root.put("sync", {"x": 1}, {"source": "loop", "step": 1})
    Thread(saver, "t", "child:1").put("sync", {"y": 1}, {"source": "loop", "step": 7})
    (info,) = list_threads(saver, mode)
    assert (info.checkpoints, info.last_step, info.metadata) == (2, 1, {"source": "loop", "step": 1})


def test_size_counts_the_stored_values_and_deleted_threads_disappear(
    saver: BaseCheckpointSaver[Any], mode: str
) -> None:
    Thread(saver, "small").put("sync", {"x": "s"})
    Thread(saver, "big").put("sync", {"x": "y" * 10_000})
    sizes = {t.thread_id: t.size for t in list_threads(saver, mode)}
    generic = type(saver).list_threads is BaseCheckpointSaver.list_threads
    if isinstance(saver, AssertingSaver | InMemorySaver) or generic:
        assert sizes == {"small": None, "big": None}  # the generic fallback cannot tell
    else:
        assert sizes["small"] is not None and sizes["big"] is not None
        assert 9_990 <= sizes["big"] - sizes["small"] < 10_100
    saver.delete_thread("big")
    assert [t.thread_id for t in list_threads(saver, mode)] == ["small"]
