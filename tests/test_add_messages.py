"""The `add_messages` reducer: LangGraph's merge rules, no visible mutation, identity of untouched messages."""

from __future__ import annotations

import inspect
import os
import uuid
import warnings
from typing import Annotated, Any, get_type_hints

import pytest
from hypothesis import given
from hypothesis import strategies as st

import graphrt.graph.message as message_module
from graphrt.graph.message import REMOVE_ALL_MESSAGES, MessagesState, add_messages
from graphrt.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)

pytestmark = pytest.mark.timeout(30)


def merge(left: Any, right: Any) -> list[AnyMessage]:
    return add_messages(left, right)


def ids(messages: list[AnyMessage]) -> list[str | None]:
    return [m.id for m in messages]


def test_public_surface() -> None:
    assert isinstance(message_module.__all__, tuple)
    for name in ("add_messages", "MessagesState", "REMOVE_ALL_MESSAGES"):
        assert name in message_module.__all__
    assert REMOVE_ALL_MESSAGES == "__remove_all__"


def test_reducer_signature_has_two_positional_parameters() -> None:
    # The graph builder recognises a reducer by its two positional parameters.
    parameters = list(inspect.signature(add_messages).parameters.values())
    positional = [p for p in parameters if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert [p.name for p in positional] == ["left", "right"]


def test_appends_and_assigns_uuid4_ids() -> None:
    result = merge([HumanMessage("a", id="1")], [AIMessage("b")])
    assert [m.content for m in result] == ["a", "b"]
    assert result[0].id == "1"
    assert result[1].id is not None
    assert uuid.UUID(result[1].id).version == 4


def test_single_messages_on_both_sides() -> None:
    result = merge(HumanMessage("a", id="1"), AIMessage("b", id="2"))
    assert result == [HumanMessage("a", id="1"), AIMessage("b", id="2")]


def test_coerces_message_likes() -> None:
    result = merge(
        [{"role": "user", "content": "a", "id": "1"}],
        [("assistant", "b"), "c", {"role": "system", "content": "d", "id": "4"}],
    )
    assert [type(m) for m in result] == [HumanMessage, AIMessage, HumanMessage, SystemMessage]
    assert [m.content for m in result] == ["a", "b", "c", "d"]
    assert all(m.id for m in result)


def test_coerces_a_single_dict_or_string() -> None:
    assert [m.content for m in merge([], "hi")] == ["hi"]
    assert [m.content for m in merge([], {"role": "ai", "content": "x"})] == ["x"]


def test_replaces_by_id_in_place() -> None:
    left = [HumanMessage("a", id="1"), AIMessage("b", id="2"), HumanMessage("c", id="3")]
    result = merge(left, [AIMessage("B", id="2"), HumanMessage("d", id="4")])
    assert [(m.id, m.content) for m in result] == [("1", "a"), ("2", "B"), ("3", "c"), ("4", "d")]
    assert result[0] is left[0]
    assert result[2] is left[2]


def test_removes_by_id() -> None:
    left = [HumanMessage("a", id="1"), AIMessage("b", id="2")]
    assert merge(left, [RemoveMessage(id="1")]) == [AIMessage("b", id="2")]


def test_removing_an_unknown_id_fails() -> None:
    with pytest.raises(ValueError) as info:
        merge([HumanMessage("a", id="1")], [RemoveMessage(id="nope")])
    assert str(info.value) == "Attempting to delete a message with an ID that doesn't exist ('nope')"


def test_remove_then_replace_keeps_the_message_in_its_place() -> None:
    left = [HumanMessage("a", id="1"), AIMessage("b", id="2")]
    result = merge(left, [RemoveMessage(id="1"), HumanMessage("A", id="1")])
    assert [(m.id, m.content) for m in result] == [("1", "A"), ("2", "b")]


def test_add_then_remove_in_one_update() -> None:
    result = merge([HumanMessage("a", id="1")], [AIMessage("b", id="2"), RemoveMessage(id="2")])
    assert ids(result) == ["1"]


def test_duplicate_ids_in_right_replace_each_other() -> None:
    result = merge([], [AIMessage("first", id="x"), AIMessage("second", id="x")])
    assert result == [AIMessage("second", id="x")]


def test_remove_all_clears_everything_before_it() -> None:
    left = [HumanMessage("a", id="1"), AIMessage("b", id="2")]
    right = [
        AIMessage("dropped", id="3"),
        RemoveMessage(id=REMOVE_ALL_MESSAGES),
        HumanMessage("kept", id="4"),
    ]
    assert merge(left, right) == [HumanMessage("kept", id="4")]
    assert merge(left, [RemoveMessage(id=REMOVE_ALL_MESSAGES)]) == []


def test_only_the_last_remove_all_counts() -> None:
    right = [
        RemoveMessage(id=REMOVE_ALL_MESSAGES),
        HumanMessage("x", id="x"),
        RemoveMessage(id=REMOVE_ALL_MESSAGES),
        HumanMessage("y", id="y"),
    ]
    assert merge([HumanMessage("a", id="1")], right) == [HumanMessage("y", id="y")]


def test_messages_after_remove_all_merge_onto_an_empty_list() -> None:
    # LangGraph returns the tail as given; graphrt merges it, so ids stay unique and no RemoveMessage
    # ends up in the state.
    tail = [HumanMessage("x", id="x"), HumanMessage("X", id="x")]
    assert merge([], [RemoveMessage(id=REMOVE_ALL_MESSAGES), *tail]) == [HumanMessage("X", id="x")]
    with pytest.raises(ValueError, match="doesn't exist \\('1'\\)"):
        merge([HumanMessage("a", id="1")], [RemoveMessage(id=REMOVE_ALL_MESSAGES), RemoveMessage(id="1")])


def test_inputs_are_not_mutated() -> None:
    without_id = HumanMessage("no id")
    left: list[Any] = [HumanMessage("a", id="1"), without_id]
    right: list[Any] = [AIMessage("b"), RemoveMessage(id="1")]
    left_before, right_before = list(left), list(right)
    result = merge(left, right)
    assert left == left_before and right == right_before
    assert all(a is b for a, b in zip(left, left_before, strict=True))
    assert without_id.id is None and right[0].id is None
    assert result[0] is not without_id and result[0].content == "no id" and result[0].id


def test_a_message_only_its_update_refers_to_takes_its_id_itself() -> None:
    # LangGraph sets every message's id in place; graphrt does so only where no one else can see it: a
    # message that nothing but the update's list refers to (what a node builds and returns).
    right: list[Any] = [AIMessage("made for this update"), HumanMessage("and this")]
    result = merge([], right)
    assert result[0] is right[0] and result[1] is right[1]
    assert uuid.UUID(right[0].id).version == 4 and right[1].id and right[0].id != right[1].id
    expected = AIMessage("made for this update").model_copy(update={"id": right[0].id})
    assert right[0] == expected and right[0].model_fields_set == {"content", "id"}


def test_an_unshared_message_of_a_subclass_gets_its_id_on_a_copy() -> None:
    # A subclass may be frozen or validate assignments: it is never changed.
    from pydantic import ConfigDict

    class Frozen(AIMessage):
        model_config = ConfigDict(frozen=True)

    right: list[Any] = [Frozen("x")]
    [merged] = merge([], right)
    assert merged is not right[0] and right[0].id is None and isinstance(merged, Frozen) and merged.id


def test_a_message_referred_to_twice_in_one_update_is_copied() -> None:
    message = AIMessage("twice")
    right: list[Any] = [message]
    del message
    right.append(right[0])
    result = merge([], right)
    assert right[0].id is None and [m.content for m in result] == ["twice"] and result[0] is not right[0]


def test_an_id_given_to_a_copy_stays_when_the_message_later_takes_it_itself() -> None:
    right: list[Any] = [AIMessage("shared at first")]
    held = right[0]
    [copy] = merge([], right)
    del held
    [same] = merge([], right)
    assert same is right[0] and same.id == copy.id


def test_the_same_message_object_gets_the_same_id_each_time() -> None:
    # LangGraph writes the id into the message, so merging that object again finds it; graphrt copies
    # instead and remembers the id per object, which gives the same result without the mutation.
    given = AIMessage("no id")
    first, second = merge([], [given]), merge([], given)
    assert given.id is None
    assert first[0].id == second[0].id and uuid.UUID(first[0].id).version == 4
    assert first[0] is not given and second[0] is not first[0]
    assert merge([], [AIMessage("no id")])[0].id != first[0].id
    # Merged again onto the history it is already in, the object replaces itself (as in LangGraph).
    assert ids(merge(first, [given])) == ids(first)


def test_an_id_is_forgotten_with_its_message() -> None:
    import gc

    given = HumanMessage("short-lived")
    merge([], [given])
    key = id(given)
    assert key in message_module._given
    del given
    gc.collect()
    assert key not in message_module._given


def test_a_copy_given_an_id_equals_model_copy() -> None:
    given = AIMessage("hi", tool_calls=[{"name": "f", "args": {"a": 1}, "id": "c1"}], custom="kept")
    [copy] = merge([], [given])
    expected = given.model_copy(update={"id": copy.id})
    assert copy == expected and repr(copy) == repr(expected)
    assert copy.model_fields_set == expected.model_fields_set and copy.model_dump() == expected.model_dump()
    copy.custom = "changed"
    assert given.custom == "kept"


def test_result_is_a_new_list() -> None:
    left = [HumanMessage("a", id="1")]
    result = merge(left, [])
    assert result == left and result is not left
    result.append(HumanMessage("b", id="2"))
    assert len(left) == 1


def test_untouched_messages_keep_their_identity() -> None:
    left = [HumanMessage(str(i), id=str(i)) for i in range(5)]
    right = [AIMessage("new", id="n"), ToolMessage("r", tool_call_id="c", id="2")]
    result = merge(left, right)
    assert [result[i] is left[i] for i in range(5)] == [True, True, False, True, True]
    assert result[2] is right[1] and result[5] is right[0]


def test_reducer_factory_form() -> None:
    assert add_messages() is add_messages
    assert add_messages(format=None) is add_messages


@pytest.mark.parametrize(("left", "right", "given"), [([], None, "left"), (None, [], "right")])
def test_one_sided_call_fails(left: Any, right: Any, given: str) -> None:
    with pytest.raises(ValueError) as info:
        add_messages(left, right)
    assert str(info.value) == (
        f"Must specify non-null arguments for both 'left' and 'right'. Only received: '{given}'."
    )


def test_openai_format_is_not_supported() -> None:
    with pytest.raises(NotImplementedError, match=r"^add_messages\(format='langchain-openai'\) is not supported"):
        add_messages(format="langchain-openai")
    with pytest.raises(NotImplementedError):
        add_messages([], [], format="langchain-openai")


def test_unknown_format_fails() -> None:
    with pytest.raises(ValueError) as info:
        add_messages(format="xml")  # type: ignore[call-overload]
    assert str(info.value) == "Unrecognized format='xml'. Expected one of 'langchain-openai', None."


def test_messages_state_schema() -> None:
    hints = get_type_hints(MessagesState, include_extras=True)
    assert hints == {"messages": Annotated[list[AnyMessage], add_messages]}

    class State(MessagesState):
        summary: str

    assert set(get_type_hints(State)) == {"messages", "summary"}


def test_subclassed_messages_take_the_general_path() -> None:
    class Note(HumanMessage):
        pass

    note = Note("n")
    kept = Note("k", id="k")
    result = merge([kept], [note])
    assert result[0] is kept and isinstance(result[1], Note) and result[1].id and note.id is None


# Property laws. Ids are drawn from a small alphabet so collisions happen often.

small_ids = st.sampled_from([str(i) for i in range(8)])


@st.composite
def histories(draw: st.DrawFn) -> list[BaseMessage]:
    chosen = draw(st.lists(small_ids, unique=True, max_size=6))
    return [HumanMessage(f"h{i}", id=i) if n % 2 else AIMessage(f"a{i}", id=i) for n, i in enumerate(chosen)]


updates = st.lists(
    st.one_of(
        st.builds(lambda i: AIMessage(f"new{i}", id=i), small_ids),
        st.builds(lambda: HumanMessage("no id")),
    ),
    max_size=6,
)


@given(histories(), st.lists(st.text(min_size=1, max_size=4), max_size=5, unique=True))
def test_law_fresh_ids_append_in_order(left: list[BaseMessage], fresh: list[str]) -> None:
    right = [AIMessage(text, id=f"fresh-{text}") for text in fresh]
    result = merge(left, right)
    assert len(result) == len(left) + len(right)
    assert all(a is b for a, b in zip(result, left + right, strict=True))


with_ids = st.lists(st.builds(lambda i: AIMessage(f"new{i}", id=i), small_ids), max_size=6)


@given(histories(), with_ids)
def test_law_applying_the_same_update_twice_is_idempotent(left: list[BaseMessage], right: list[Any]) -> None:
    once = merge(left, right)
    assert merge(once, right) == once


@given(histories(), updates)
def test_law_inputs_unchanged_and_ids_unique(left: list[BaseMessage], right: list[Any]) -> None:
    left_snapshot = [(m, m.model_dump()) for m in left]
    right_snapshot = [(m, m.model_dump()) for m in right]
    result = merge(left, right)
    assert [(m, m.model_dump()) for m in left] == left_snapshot
    assert [(m, m.model_dump()) for m in right] == right_snapshot
    assert len(set(ids(result))) == len(result)
    assert None not in ids(result)
    left_objects = {id(m) for m in left}
    right_objects = {id(m) for m in right}
    for m in result:
        # Every result element is an input object, except copies made to attach a fresh id.
        assert id(m) in left_objects or id(m) in right_objects or m.content == "no id"


@given(histories(), with_ids)
def test_law_last_write_per_id_wins_in_place(left: list[BaseMessage], right: list[Any]) -> None:
    result = merge(left, right)
    latest = {m.id: m for m in right}
    for position, message in enumerate(left):
        assert result[position] is latest.get(message.id, message)
    left_ids = {m.id for m in left}
    appended = list(dict.fromkeys(m.id for m in right if m.id not in left_ids))
    assert ids(result)[len(left) :] == appended


@given(histories(), st.data())
def test_law_removing_drops_exactly_those_ids(left: list[BaseMessage], data: st.DataObject) -> None:
    doomed = data.draw(st.lists(st.sampled_from([m.id for m in left]), unique=True)) if left else []
    result = merge(left, [RemoveMessage(id=i) for i in doomed if i is not None])
    assert result == [m for m in left if m.id not in doomed]
    assert all(a is b for a, b in zip(result, [m for m in left if m.id not in doomed], strict=True))


def test_a_history_grown_in_place_is_checked_again() -> None:
    history = add_messages([], [HumanMessage("a")])
    history.append(HumanMessage("appended in place, no id"))
    merged = add_messages(history, [AIMessage("b")])
    assert all(m.id is not None for m in merged)


def test_a_history_whose_last_message_was_replaced_in_place_is_checked_again() -> None:
    history = add_messages([], [HumanMessage("a", id="1"), AIMessage("b", id="2")])
    history[-1] = AIMessage("c", id="3")
    merged = add_messages(history, [AIMessage("d", id="3")])
    assert [m.content for m in merged] == ["a", "d"]


def test_an_update_with_a_known_id_replaces_on_a_remembered_history() -> None:
    history = add_messages([], [HumanMessage("a", id="1"), AIMessage("b", id="2")])
    grown = add_messages(history, [AIMessage("c", id="3")])
    replaced = add_messages(grown, [AIMessage("B", id="2")])
    assert [m.content for m in replaced] == ["a", "B", "c"]
    again = add_messages(replaced, [AIMessage("C", id="3"), HumanMessage("d", id="4")])
    assert [m.content for m in again] == ["a", "B", "C", "d"]


def test_fresh_ids_are_uuid4_strings() -> None:
    from graphrt._message_ids import new_uuid4

    made = [new_uuid4() for _ in range(2000)]
    assert len(set(made)) == len(made)
    for text in made:
        parsed = uuid.UUID(text)
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122 and str(parsed) == text


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_process_makes_other_ids_than_its_parent() -> None:
    from graphrt._message_ids import new_uuid4

    new_uuid4()  # the parent now holds made ids not handed out yet
    read, write = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+ warns when other threads run
        pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave at once
        os.write(write, " ".join(new_uuid4() for _ in range(8)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = set(pipe.read().split())
    os.waitpid(pid, 0)
    parent = {new_uuid4() for _ in range(8)}
    assert len(child) == 8 and not child & parent


def test_a_message_a_node_returns_is_serialized_once_per_step() -> None:
    from graphrt.checkpoint.memory import InMemorySaver
    from graphrt.checkpoint.serde.jsonplus import JsonPlusSerializer
    from graphrt.graph import START, StateGraph

    class Counting(JsonPlusSerializer):
        replies = 0

        def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
            if isinstance(obj, list) and any(getattr(m, "content", None) == "reply" for m in obj):
                Counting.replies += 1
            return super().dumps_typed(obj)

    builder = StateGraph(MessagesState)
    builder.add_node("model", lambda state: {"messages": [AIMessage("reply")]})
    builder.add_edge(START, "model")
    graph = builder.compile(checkpointer=InMemorySaver(serde=Counting()))
    config: Any = {"configurable": {"thread_id": "t"}}
    out = graph.invoke({"messages": [HumanMessage("hi")]}, config)
    # The step's write and the checkpoint's delta hold the same object, with the id it took in the state.
    assert Counting.replies == 1
    [(_, _, [written])] = [w for t in graph.checkpointer.list(config) for w in t.pending_writes or []][:1]
    assert written == out["messages"][-1] and written.id
