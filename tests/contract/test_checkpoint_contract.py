"""The checkpoint saver contract, run on every backend in sync and async mode."""

from __future__ import annotations

import re
from typing import Any

import pytest
from _checkpoint_helpers import AssertingSaver, Thread, call, config

from graphrt.checkpoint.base import UnserializableValueError, empty_checkpoint
from graphrt.checkpoint.serde.base import SerializationError
from graphrt.errors import ThreadConflictError


class Opaque:
    """A type no serializer knows."""


def test_put_then_get_tuple_round_trips(saver: AssertingSaver, mode: str) -> None:
    thread = Thread(saver)
    checkpoint, new_versions = thread.checkpoint({"messages": ["hi"], "count": 1, "flag": None})
    conf = config()
    conf["configurable"]["user_id"] = "u1"
    conf["configurable"]["__secret"] = "x"
    conf["metadata"] = {"tenant": "acme", "nested": {"no": 1}}
    saved = call(saver, "put", mode, conf, checkpoint, {"source": "input", "step": -1}, new_versions)

    assert saved == config(checkpoint_id=checkpoint["id"])
    got = call(saver, "get_tuple", mode, {"configurable": {"thread_id": "t1"}})
    assert got.config == saved
    assert got.checkpoint == checkpoint
    assert got.metadata == {"source": "input", "step": -1, "user_id": "u1", "tenant": "acme"}
    assert got.parent_config is None
    assert got.pending_writes == []
    assert call(saver, "get", mode, saved) == checkpoint


def test_metadata_strings_lose_nul_characters_with_or_without_config_values(saver: AssertingSaver, mode: str) -> None:
    thread = Thread(saver)
    checkpoint, new_versions = thread.checkpoint({"a": 1})
    plain = config()  # only keys never copied into metadata: the path of a run's later steps
    saved = call(saver, "put", mode, plain, checkpoint, {"source": "lo\x00op", "step": 1}, new_versions)
    assert call(saver, "get_tuple", mode, saved).metadata == {"source": "loop", "step": 1}
    checkpoint, new_versions = thread.checkpoint({"a": 2})
    rich = config(checkpoint_id=saved["configurable"]["checkpoint_id"])
    rich["configurable"]["user_id"] = "u\x001"
    saved = call(saver, "put", mode, rich, checkpoint, {"source": "lo\x00op", "step": 2}, new_versions)
    assert call(saver, "get_tuple", mode, saved).metadata == {"source": "loop", "step": 2, "user_id": "u1"}


def test_get_tuple_by_id_returns_the_given_config(saver: AssertingSaver, mode: str) -> None:
    thread = Thread(saver)
    first = thread.put(mode, {"a": 1})
    thread.put(mode, {"a": 2})
    asked = {"configurable": {"thread_id": "t1", "checkpoint_id": first["configurable"]["checkpoint_id"]}}
    got = call(saver, "get_tuple", mode, asked)
    assert got.config is asked or got.config == asked
    assert got.checkpoint["channel_values"] == {"a": 1}


def test_get_tuple_of_unknown_thread_or_id_is_none(saver: AssertingSaver, mode: str) -> None:
    Thread(saver).put(mode, {"a": 1})
    assert call(saver, "get_tuple", mode, config("nope")) is None
    assert call(saver, "get_tuple", mode, config(checkpoint_id=str(empty_checkpoint()["id"]))) is None
    assert call(saver, "get", mode, config("nope")) is None


def test_parent_config_links_each_checkpoint_to_the_one_it_was_put_on(saver: AssertingSaver, mode: str) -> None:
    thread = Thread(saver)
    first = thread.put(mode, {"a": 1})
    second = thread.put(mode, {"b": 2})
    got = call(saver, "get_tuple", mode, second)
    assert got.parent_config == first
    assert got.checkpoint["channel_values"] == {"a": 1, "b": 2}  # unchanged channel read from its old blob


def test_channel_in_new_versions_without_value_reads_back_absent(saver: AssertingSaver, mode: str) -> None:
    thread = Thread(saver)
    thread.put(mode, {"a": 1})
    checkpoint, _ = thread.checkpoint({})
    checkpoint["channel_values"].pop("a")
    checkpoint["channel_versions"]["a"] = saver.get_next_version(checkpoint["channel_versions"]["a"], None)
    saved = call(saver, "put", mode, thread.config, checkpoint, {}, {"a": checkpoint["channel_versions"]["a"]})
    assert call(saver, "get_tuple", mode, saved).checkpoint["channel_values"] == {}


def test_list_is_newest_first_with_filter_before_and_limit(saver: AssertingSaver, mode: str) -> None:
    thread = Thread(saver)
    ids = []
    for step in range(5):
        saved = thread.put(mode, {"a": step}, {"source": "loop", "step": step, "even": step % 2 == 0})
        ids.append(saved["configurable"]["checkpoint_id"])
    Thread(saver, "t2").put(mode, {"a": 9}, {"source": "input", "step": -1})

    listed = call(saver, "list", mode, config())
    assert [t.config["configurable"]["checkpoint_id"] for t in listed] == ids[::-1]
    assert [t.checkpoint["channel_values"]["a"] for t in listed] == [4, 3, 2, 1, 0]
    assert [t.metadata["step"] for t in call(saver, "list", mode, config(), filter={"even": True})] == [
        4,
        2,
        0,
    ]
    assert [t.metadata["step"] for t in call(saver, "list", mode, config(), filter={"even": True}, limit=2)] == [4, 2]
    before = config(checkpoint_id=ids[3])
    assert [t.metadata["step"] for t in call(saver, "list", mode, config(), before=before)] == [2, 1, 0]
    assert [t.metadata["step"] for t in call(saver, "list", mode, config(), before=before, limit=1)] == [2]
    assert call(saver, "list", mode, config(), filter={"source": "nope"}) == []
    assert call(saver, "list", mode, config(), limit=0) == []
    assert len(call(saver, "list", mode, None)) == 6
    assert [t.metadata["step"] for t in call(saver, "list", mode, None, filter={"source": "input"})] == [-1]
    only = call(saver, "list", mode, config(checkpoint_id=ids[1]))
    assert [t.metadata["step"] for t in only] == [1]


def test_pending_writes_sorted_and_special_channels_replace(saver: AssertingSaver, mode: str) -> None:
    saved = Thread(saver).put(mode, {"a": 1})
    call(saver, "put_writes", mode, saved, [("a", "b1"), ("x", "b2")], "task-b", "~path-b")
    call(saver, "put_writes", mode, saved, [("a", "a1"), ("__error__", "boom")], "task-a", "~path-a")
    # A retried task: ordinary writes keep what was saved first, special channels take the new value.
    call(saver, "put_writes", mode, saved, [("a", "a1-again"), ("__error__", "boom-2")], "task-a", "~path-a")
    call(saver, "put_writes", mode, saved, [("__interrupt__", "i1")], "task-c")
    call(saver, "put_writes", mode, saved, [("__interrupt__", "i2")], "task-c")

    got = call(saver, "get_tuple", mode, saved)
    assert got.pending_writes == [
        ("task-c", "__interrupt__", "i2"),
        ("task-a", "__error__", "boom-2"),
        ("task-a", "a", "a1"),
        ("task-b", "a", "b1"),
        ("task-b", "x", "b2"),
    ]
    newer = Thread(saver, "t2").put(mode, {"a": 2})
    assert call(saver, "get_tuple", mode, newer).pending_writes == []


def test_equal_scalars_of_different_types_stay_apart_in_values_and_writes(saver: AssertingSaver, mode: str) -> None:
    # 1 == True == 1.0 and 0 == False, and they hash alike: a cache of serialized scalars keyed by value alone
    # would hand one the other's bytes. Each is saved before the next, so later ones would hit such a cache.
    scalars = [1, True, 1.0, 0, False, 0.0, "1", None]
    names = [f"c{i}" for i in range(len(scalars))]
    thread, saved_at = Thread(saver), []
    for name, value in zip(names, scalars, strict=True):
        saved = thread.put(mode, {name: value})
        call(saver, "put_writes", mode, saved, [(name, value)], f"task-{name}")
        saved_at.append(saved)
    values = call(saver, "get_tuple", mode, saved_at[-1]).checkpoint["channel_values"]
    assert [(type(values[n]), values[n]) for n in names] == [(type(v), v) for v in scalars]
    for saved, name, value in zip(saved_at, names, scalars, strict=True):
        writes = call(saver, "get_tuple", mode, saved).pending_writes
        assert [(c, type(v), v) for _, c, v in writes] == [(name, type(value), value)]


def test_put_writes_needs_a_checkpoint_id(saver: AssertingSaver, mode: str) -> None:
    with pytest.raises(KeyError) as info:
        call(saver, "put_writes", mode, config(), [("a", 1)], "task")
    assert info.value.args == ("checkpoint_id",)


def test_namespaces_are_isolated(saver: AssertingSaver, mode: str) -> None:
    root = Thread(saver, "t1", "")
    sub = Thread(saver, "t1", "child:1")
    root_saved = root.put(mode, {"a": "root"})
    sub_saved = sub.put(mode, {"a": "sub"})
    root.put(mode, {"a": "root2"})
    call(saver, "put_writes", mode, sub_saved, [("a", "w")], "task")

    assert call(saver, "get_tuple", mode, {"configurable": {"thread_id": "t1"}}).checkpoint["channel_values"] == {
        "a": "root2"
    }
    got_sub = call(saver, "get_tuple", mode, config("t1", "child:1"))
    assert got_sub.config == sub_saved
    assert got_sub.checkpoint["channel_values"] == {"a": "sub"}
    assert got_sub.pending_writes == [("task", "a", "w")]
    assert call(saver, "get_tuple", mode, root_saved).pending_writes == []
    assert len(call(saver, "list", mode, config("t1", "child:1"))) == 1
    assert len(call(saver, "list", mode, {"configurable": {"thread_id": "t1"}})) == 3


def test_delete_thread_removes_every_namespace_and_nothing_else(saver: AssertingSaver, mode: str) -> None:
    Thread(saver, "t1", "").put(mode, {"a": [1]})
    saved = Thread(saver, "t1", "sub").put(mode, {"a": [2]})
    call(saver, "put_writes", mode, saved, [("a", 1)], "task")
    Thread(saver, "t2").put(mode, {"a": [3]})

    call(saver, "delete_thread", mode, "t1")

    assert call(saver, "get_tuple", mode, config("t1")) is None
    assert call(saver, "get_tuple", mode, config("t1", "sub")) is None
    assert call(saver, "list", mode, {"configurable": {"thread_id": "t1"}}) == []
    assert call(saver, "get_tuple", mode, config("t2")).checkpoint["channel_values"] == {"a": [3]}


def test_copy_thread_copies_checkpoints_writes_and_delta_chains(saver: AssertingSaver, mode: str) -> None:
    thread = Thread(saver, "src")
    messages: list[Any] = []
    for turn in range(70):  # past one snapshot interval, so the copy holds deltas and a snapshot
        messages = [*messages, {"turn": turn}]
        saved = thread.put(mode, {"messages": messages, "n": turn}, {"source": "loop", "step": turn})
    call(saver, "put_writes", mode, saved, [("n", 99)], "task")
    source = call(saver, "list", mode, {"configurable": {"thread_id": "src"}})

    call(saver, "copy_thread", mode, "src", "dst")

    copied = call(saver, "list", mode, {"configurable": {"thread_id": "dst"}})
    assert [(t.checkpoint, t.metadata, t.pending_writes) for t in copied] == [
        (t.checkpoint, t.metadata, t.pending_writes) for t in source
    ]
    assert copied[0].config == config("dst", checkpoint_id=saved["configurable"]["checkpoint_id"])
    assert copied[0].parent_config == config("dst", checkpoint_id=source[1].config["configurable"]["checkpoint_id"])
    call(saver, "delete_thread", mode, "src")
    head = call(saver, "get_tuple", mode, config("dst"))
    assert head.checkpoint["channel_values"]["messages"] == messages


@pytest.mark.parametrize("turns", [3, 70])
def test_prune_keep_latest_keeps_each_namespace_head_whole(saver: AssertingSaver, mode: str, turns: int) -> None:
    thread = Thread(saver, "t1")
    sub = Thread(saver, "t1", "sub")
    messages: list[Any] = []
    for turn in range(turns):
        messages = [*messages, f"m{turn}"]
        head = thread.put(mode, {"messages": messages, "n": turn}, {"source": "loop", "step": turn})
        sub_head = sub.put(mode, {"x": turn})
    call(saver, "put_writes", mode, head, [("n", "pending")], "task")
    other = Thread(saver, "t2")
    other.put(mode, {"a": 1})
    other.put(mode, {"a": 2})

    call(saver, "prune", mode, ["t1"])

    listed = call(saver, "list", mode, {"configurable": {"thread_id": "t1"}})
    assert sorted(t.config["configurable"]["checkpoint_id"] for t in listed) == sorted(
        [head["configurable"]["checkpoint_id"], sub_head["configurable"]["checkpoint_id"]]
    )
    got = call(saver, "get_tuple", mode, config("t1"))
    assert got.checkpoint["channel_values"] == {"messages": messages, "n": turns - 1}
    assert got.parent_config is None
    assert got.pending_writes == [("task", "n", "pending")]
    assert len(call(saver, "list", mode, config("t2"))) == 2
    # The pruned thread goes on growing from its head.
    thread.put(mode, {"messages": [*messages, "after"]})
    assert call(saver, "get_tuple", mode, config("t1")).checkpoint["channel_values"]["messages"][-2:] == [
        f"m{turns - 1}",
        "after",
    ]


def test_prune_delete_removes_the_threads(saver: AssertingSaver, mode: str) -> None:
    Thread(saver, "t1").put(mode, {"a": 1})
    Thread(saver, "t2").put(mode, {"a": 2})
    call(saver, "prune", mode, ["t1"], strategy="delete")
    assert call(saver, "get_tuple", mode, config("t1")) is None
    assert call(saver, "get_tuple", mode, config("t2")) is not None
    call(saver, "prune", mode, [])


def test_prune_rejects_bad_arguments(saver: AssertingSaver, mode: str) -> None:
    with pytest.raises(TypeError, match=r"^thread_ids must be a sequence of thread IDs, not a str$"):
        call(saver, "prune", mode, "t1")
    with pytest.raises(ValueError, match=re.escape("Unknown prune strategy: 'all'; use 'keep_latest' or 'delete'")):
        call(saver, "prune", mode, ["t1"], strategy="all")


def test_put_guarded_writes_only_on_the_expected_head(saver: AssertingSaver, mode: str) -> None:
    thread = Thread(saver)
    checkpoint, versions = thread.checkpoint({"a": [1]})
    first = call(saver, "put_guarded", mode, config(), checkpoint, {}, versions, expected_head=None)
    first_id = first["configurable"]["checkpoint_id"]
    checkpoint, versions = thread.checkpoint({"a": [1, 2]})
    second = call(saver, "put_guarded", mode, first, checkpoint, {}, versions, expected_head=first_id)
    second_id = second["configurable"]["checkpoint_id"]

    stale, stale_versions = thread.checkpoint({"a": [1, 2, 3], "b": "lost"})
    with pytest.raises(ThreadConflictError) as info:
        call(saver, "put_guarded", mode, first, stale, {}, stale_versions, expected_head=first_id)
    assert (info.value.thread_id, info.value.checkpoint_ns) == ("t1", "")
    assert (info.value.expected, info.value.found) == (first_id, second_id)
    assert str(info.value).startswith(f"Concurrent run on thread 't1': its newest checkpoint is {second_id!r}")
    with pytest.raises(ThreadConflictError):
        call(saver, "put_guarded", mode, config(), stale, {}, stale_versions, expected_head=None)

    # Nothing of the refused checkpoints was written.
    assert call(saver, "get_tuple", mode, config(checkpoint_id=stale["id"])) is None
    assert [t.config["configurable"]["checkpoint_id"] for t in call(saver, "list", mode, config())] == [
        second_id,
        first_id,
    ]
    assert call(saver, "get_tuple", mode, config()).checkpoint["channel_values"] == {"a": [1, 2]}
    # Another namespace has its own head.
    sub, sub_versions = Thread(saver, "t1", "sub").checkpoint({"a": 1})
    call(saver, "put_guarded", mode, config("t1", "sub"), sub, {}, sub_versions, expected_head=None)


def test_get_head_id_names_the_newest_checkpoint_of_a_namespace(saver: AssertingSaver, mode: str) -> None:
    assert call(saver, "get_head_id", mode, config()) is None
    thread = Thread(saver)
    thread.put(mode, {"a": 1})
    newest = thread.put(mode, {"a": 2})
    older = config(checkpoint_id="ignored")  # only the thread and namespace count
    assert call(saver, "get_head_id", mode, older) == newest["configurable"]["checkpoint_id"]
    assert call(saver, "get_head_id", mode, config("t1", "sub")) is None


def test_put_writes_guarded_writes_only_on_the_newest_checkpoint(saver: AssertingSaver, mode: str) -> None:
    thread = Thread(saver)
    first = thread.put(mode, {"a": 1})
    second = thread.put(mode, {"a": 2})
    call(saver, "put_writes_guarded", mode, second, [("a", 3)], "task-new", "path")
    assert call(saver, "get_tuple", mode, second).pending_writes == [("task-new", "a", 3)]

    # A run still on the older checkpoint lost the thread: its task writes are refused, not saved.
    with pytest.raises(ThreadConflictError) as info:
        call(saver, "put_writes_guarded", mode, first, [("a", 99)], "task-old", "path")
    assert (info.value.expected, info.value.found) == (
        first["configurable"]["checkpoint_id"],
        second["configurable"]["checkpoint_id"],
    )
    assert call(saver, "get_tuple", mode, first).pending_writes == []


def test_unserializable_value_fails_the_put_and_keeps_history(saver: AssertingSaver, mode: str) -> None:
    thread = Thread(saver)
    good = thread.put(mode, {"messages": ["a"], "n": 1})
    checkpoint, versions = thread.checkpoint({"messages": ["a", "b"], "n": 2, "bad": [Opaque()]})

    with pytest.raises(UnserializableValueError) as info:
        call(saver, "put", mode, good, checkpoint, {}, versions)
    error = info.value
    assert isinstance(error, TypeError) and isinstance(error, SerializationError)
    assert error.channel == "bad"
    assert error.type_name.endswith("Opaque")
    assert str(error).startswith(f"Cannot save channel 'bad': Type is not serializable: {error.type_name}")
    with pytest.raises(UnserializableValueError):
        call(
            saver,
            "put_guarded",
            mode,
            good,
            checkpoint,
            {},
            versions,
            expected_head=good["configurable"]["checkpoint_id"],
        )

    assert call(saver, "get_tuple", mode, config(checkpoint_id=checkpoint["id"])) is None
    assert call(saver, "get_tuple", mode, config()).checkpoint["channel_values"] == {
        "messages": ["a"],
        "n": 1,
    }
    assert len(call(saver, "list", mode, config())) == 1

    with pytest.raises(UnserializableValueError) as info:
        call(saver, "put_writes", mode, good, [("ok", 1), ("bad", Opaque())], "task-1")
    assert str(info.value).startswith("Cannot save write to channel 'bad' of task 'task-1': ")
    assert call(saver, "get_tuple", mode, good).pending_writes == []


def test_missing_thread_id_is_a_key_error_like_langgraph(saver: AssertingSaver, mode: str) -> None:
    checkpoint = empty_checkpoint()
    for bad in ({"configurable": {}}, {}):
        with pytest.raises(KeyError) as info:
            call(saver, "get_tuple", mode, bad)
        assert info.value.args == ("thread_id",)
        assert str(info.value) == (
            "'thread_id': the checkpointer needs config['configurable']['thread_id']; "
            "pass it as {'configurable': {'thread_id': ...}}"
        )
        with pytest.raises(KeyError, match="thread_id"):
            call(saver, "put", mode, bad, checkpoint, {}, {})
    assert call(saver, "list", mode, None) == []


def test_saved_values_are_isolated_from_later_mutation(saver: AssertingSaver, mode: str) -> None:
    thread = Thread(saver)
    state = {"items": [1, 2]}
    checkpoint, versions = thread.checkpoint({"doc": state, "messages": [{"k": 1}]})
    saved = call(saver, "put", mode, config(), checkpoint, {}, versions)
    state["items"].append(3)
    checkpoint["channel_values"]["messages"][0]["k"] = 2

    first = call(saver, "get_tuple", mode, saved)
    assert first.checkpoint["channel_values"] == {"doc": {"items": [1, 2]}, "messages": [{"k": 1}]}
    first.checkpoint["channel_values"]["messages"].append("mine")
    assert call(saver, "get_tuple", mode, saved).checkpoint["channel_values"]["messages"] == [{"k": 1}]


def test_next_version_is_an_increasing_unique_string(saver: AssertingSaver) -> None:
    v1 = saver.get_next_version(None, None)
    v2 = saver.get_next_version(v1, None)
    fork = saver.get_next_version(v1, None)
    assert isinstance(v1, str) and v1.startswith("0" * 31 + "1.")
    assert v1 < v2 and v1 < fork and v2 != fork
    assert saver.get_next_version(9, None).startswith("0" * 30 + "10.")
    assert saver.get_next_version("00000000000000000000000000000099.5", None) > "00000000000000000000000000000099.9"
