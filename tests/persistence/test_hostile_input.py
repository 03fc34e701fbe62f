"""Hostile input on every saver: a clear error naming what the user wrote, and nothing of it saved."""

from __future__ import annotations

import re
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.checkpoint.base import UnserializableValueError, empty_checkpoint
from graphrt.checkpoint.base._saver import UnsavableValueError
from graphrt.graph import END, START, StateGraph
from tests.persistence.conftest import history, run, stream, thread


class State(TypedDict, total=False):
    a: Any
    b: Any


class Opaque:
    """A type the serializer does not know."""


def deep(levels: int = 5000) -> list[Any]:
    top: list[Any] = []
    current = top
    for _ in range(levels):
        inner: list[Any] = []
        current.append(inner)
        current = inner
    return top


def one_node(saver: Any, node: Any, name: str = "writer") -> Any:
    builder = StateGraph(State)
    builder.add_node(name, node)
    builder.add_edge(START, name)
    builder.add_edge(name, END)
    return builder.compile(checkpointer=saver)


def test_an_unserializable_input_value_names_the_input_key(saver: Any, mode: str) -> None:
    graph = one_node(saver, lambda s: {"b": 1})
    with pytest.raises(UnserializableValueError, match=r"^Cannot save input key 'a': Type is not serializable") as err:
        run(graph, {"a": Opaque()}, mode, thread())
    assert err.value.input_key == "a"
    assert history(graph, thread(), mode) == []


def test_a_value_nested_too_deep_names_the_input_key_or_the_node(saver: Any, mode: str) -> None:
    graph = one_node(saver, lambda s: {"b": 1})
    with pytest.raises(UnsavableValueError, match=r"^Cannot save input key 'a': Cannot serialize a value that"):
        run(graph, {"a": deep()}, mode, thread())
    assert history(graph, thread(), mode) == []
    graph = one_node(saver, lambda s: {"b": deep()}, name="nester")
    with pytest.raises(UnsavableValueError, match=r"^Cannot save the write of node 'nester' to channel 'b'"):
        run(graph, {"a": 1}, mode, thread("2"))
    assert [s.metadata["step"] for s in history(graph, thread("2"), mode) if s.metadata] == [0, -1]


def test_a_nodes_unserializable_write_names_the_node(saver: Any, mode: str) -> None:
    graph = one_node(saver, lambda s: {"b": Opaque()})
    message = r"^Cannot save the write of node 'writer' to channel 'b': Type is not serializable: .*Opaque"
    with pytest.raises(UnserializableValueError, match=message) as err:
        run(graph, {"a": 1}, mode, thread())
    assert err.value.node == "writer" and err.value.channel == "b"
    # The checkpoints before the failing step stay; nothing of the failing step was written.
    saved = history(graph, thread(), mode)
    assert [s.metadata["step"] for s in saved if s.metadata] == [0, -1]
    assert saver.get_tuple(thread()).pending_writes == []


def test_an_unknown_stream_mode_is_refused_before_anything_is_written(saver: Any, mode: str) -> None:
    graph = one_node(saver, lambda s: {"b": 1})
    for bad in ("bogus", ["values", "bogus"]):
        with pytest.raises(ValueError, match=re.escape("Unknown stream_mode 'bogus': use one of values, updates")):
            stream(graph, {"a": 1}, mode, thread(), stream_mode=bad)
    assert history(graph, thread(), mode) == []


def test_non_json_checkpoint_metadata_is_refused(saver: Any) -> None:
    with pytest.raises(TypeError, match=r"^Cannot save checkpoint metadata: .*Metadata values must be JSON"):
        saver.put(thread(), empty_checkpoint(), {"source": "input", "step": -1, "bad": Opaque()}, {})  # type: ignore[typeddict-unknown-key]
    assert saver.get_tuple(thread()) is None


def test_a_list_whose_middle_item_was_replaced_reads_back_exactly(saver: Any) -> None:
    first, middle, last = "first", "middle", "last"
    old = [first, middle, last]
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"items": old}
    checkpoint["channel_versions"] = {"items": saver.get_next_version(None, None)}
    config = saver.put(thread(), checkpoint, {"source": "input", "step": -1}, dict(checkpoint["channel_versions"]))
    # Same objects at both ends (so only a full identity scan sees it is not an append), then appended to.
    new = [first, "CHANGED", last, "new"]
    nxt = empty_checkpoint()
    nxt["channel_values"] = {"items": new}
    nxt["channel_versions"] = {"items": saver.get_next_version(checkpoint["channel_versions"]["items"], None)}
    config = saver.put(config, nxt, {"source": "loop", "step": 0}, dict(nxt["channel_versions"]))
    assert saver.get_tuple(config).checkpoint["channel_values"]["items"] == ["first", "CHANGED", "last", "new"]
    assert saver.get_tuple(config | {}).checkpoint["channel_values"]["items"] == new


def build_with_local_reducer(saver: Any) -> Any:
    """A builder function whose state names a reducer and a type local to it (annotations are strings here)."""

    def keep_both(left: list[str], right: list[str]) -> list[str]:
        return [*left, *right]

    class Local(TypedDict, total=False):
        items: Annotated[list[str], keep_both]

    builder = StateGraph(Local)
    builder.add_node("add", lambda s: {"items": ["node"]})
    builder.add_edge(START, "add")
    builder.add_edge("add", END)
    return builder.compile(checkpointer=saver)


def test_a_local_reducer_is_honoured_across_runs(saver: Any, mode: str) -> None:
    graph = build_with_local_reducer(saver)
    assert run(graph, {"items": ["a"]}, mode, thread()) == {"items": ["a", "node"]}
    assert run(graph, {"items": ["b"]}, mode, thread()) == {"items": ["a", "node", "b", "node"]}


def test_a_channel_named_like_the_serializers_tag_marker_round_trips(saver: Any) -> None:
    from graphrt.checkpoint.serde._codecs import MARK

    checkpoint = empty_checkpoint()
    version = saver.get_next_version(None, None)
    checkpoint["channel_values"] = {MARK: [1, 2]}
    checkpoint["channel_versions"] = {MARK: version}
    checkpoint["versions_seen"] = {"node": {MARK: version}, MARK: {"x": version}}
    config = saver.put(thread(), checkpoint, {"source": "input", "step": -1}, {MARK: version})
    loaded = saver.get_tuple(config).checkpoint
    assert loaded["channel_values"] == {MARK: [1, 2]}
    assert loaded["channel_versions"] == {MARK: version}
    assert loaded["versions_seen"] == {"node": {MARK: version}, MARK: {"x": version}}
