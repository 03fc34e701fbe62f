"""`InMemorySaver` keeps a run's checkpoint records unserialized (`holds_records`) and serializes them on read.

Whatever is held, every read gives the same checkpoint as a saver that serializes each record, a read's result
is the caller's own, and a checkpoint put by user code is serialized at once (user code may change it later).
"""

from __future__ import annotations

import operator
import re
from typing import Annotated, Any, TypedDict

from graphrt.checkpoint.base import CheckpointTuple, empty_checkpoint
from graphrt.checkpoint.base._storage import HeldRecord
from graphrt.checkpoint.memory import InMemorySaver
from graphrt.config import RunnableConfig
from graphrt.graph import END, START, StateGraph


class SerializingSaver(InMemorySaver):
    holds_records = False


class State(TypedDict):
    x: int
    log: Annotated[list[str], operator.add]


def build(saver: InMemorySaver) -> Any:
    builder = StateGraph(State)
    for name in ("a", "b", "c"):
        builder.add_node(name, lambda s, name=name: {"x": s["x"] + 1, "log": [name]})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    builder.add_edge("c", END)
    return builder.compile(checkpointer=saver)


def thread(thread_id: str = "t") -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id}}


def records(saver: InMemorySaver, thread_id: str = "t") -> list[dict[str, Any]]:
    return [{k: v for k, v in t.checkpoint.items() if k != "ts"} for t in saver.list(thread(thread_id))]


def held_rows(saver: InMemorySaver) -> int:
    rows = [r for spaces in saver._storage.checkpoints_by_ns.values() for ns in spaces.values() for r in ns.values()]
    return sum(type(r.checkpoint) is HeldRecord for r in rows)


def normalized(history: list[dict[str, Any]]) -> list[Any]:
    """Records with ids and random version parts replaced by their order of appearance."""
    names: dict[str, str] = {}

    def name(value: Any) -> Any:
        if isinstance(value, str) and (value.count("-") == 4 or re.fullmatch(r"\d{32}\..*", value)):
            return names.setdefault(value, f"#{len(names)}")
        if isinstance(value, dict):
            return {k: name(v) for k, v in value.items()}
        if isinstance(value, list):
            return [name(v) for v in value]
        return value

    return [name(r) for r in history]


def test_a_runs_records_are_held_and_read_back_as_serialized_ones() -> None:
    held, serialized = InMemorySaver(), SerializingSaver()
    for saver in (held, serialized):
        build(saver).invoke({"x": 0, "log": []}, thread())
        build(saver).invoke({"x": 10, "log": []}, thread())
    assert held_rows(held) == len(records(held)) == 10
    assert held_rows(serialized) == 0
    assert normalized(records(held)) == normalized(records(serialized))
    assert build(held).get_state(thread()).values == {"x": 13, "log": ["a", "b", "c", "a", "b", "c"]}


def test_a_read_record_is_the_callers_own() -> None:
    saver = InMemorySaver()
    build(saver).invoke({"x": 0, "log": []}, thread())
    first = saver.get_tuple(thread())
    assert isinstance(first, CheckpointTuple)
    before = records(saver)
    first.checkpoint["channel_versions"]["x"] = "changed"
    for seen in first.checkpoint["versions_seen"].values():
        seen.clear()
    first.checkpoint["updated_channels"].append("changed")  # type: ignore[union-attr]
    assert records(saver) == before


def test_a_checkpoint_put_by_user_code_is_serialized_at_once() -> None:
    saver = InMemorySaver()
    checkpoint = empty_checkpoint()
    checkpoint["channel_versions"] = {"x": "1"}
    checkpoint["versions_seen"] = {"a": {"x": "1"}}
    saved = saver.put(thread(), checkpoint, {}, {})
    checkpoint["channel_versions"]["x"] = "2"
    checkpoint["versions_seen"]["a"]["x"] = "2"
    got = saver.get_tuple(saved)
    assert got is not None
    assert got.checkpoint["channel_versions"] == {"x": "1"}
    assert got.checkpoint["versions_seen"] == {"a": {"x": "1"}}
    assert held_rows(saver) == 0


def test_copy_and_prune_keep_held_records_readable() -> None:
    saver = InMemorySaver()
    build(saver).invoke({"x": 0, "log": []}, thread())
    history = records(saver)
    saver.copy_thread("t", "copy")
    assert records(saver, "copy") == history
    saver.prune(["t"], strategy="keep_latest")
    assert records(saver) == history[:1]
    assert build(saver).invoke(None, thread()) == {"x": 3, "log": ["a", "b", "c"]}
    build(saver).invoke({"x": 0, "log": []}, thread("copy"))
    assert build(saver).get_state(thread("copy")).values == {"x": 3, "log": ["a", "b", "c", "a", "b", "c"]}
