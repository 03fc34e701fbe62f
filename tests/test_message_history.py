"""`add_messages` remembers what it checked of recent histories: appending costs O(new messages), and the
result is always the one a merge from scratch gives (histories re-read, replaced in place, forked)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphrt._message_history as history_module
import graphrt.graph.message as message_module
from graphrt._message_history import HistoryIds
from graphrt.graph.message import add_messages
from graphrt.messages import AIMessage, BaseMessage, HumanMessage

pytestmark = pytest.mark.timeout(60)


def conversation(size: int) -> list[Any]:
    return add_messages([], [HumanMessage(str(i), id=f"m{i}") for i in range(size)])


@pytest.fixture
def id_reads(monkeypatch: pytest.MonkeyPatch) -> list[BaseMessage]:
    """The messages whose id `add_messages` reads (in the history index or in its general path)."""
    reads: list[BaseMessage] = []

    def get_id(message: BaseMessage) -> str | None:
        reads.append(message)
        return message.id

    monkeypatch.setattr(history_module, "_get_id", get_id)
    monkeypatch.setattr(message_module, "_get_id", get_id)
    return reads


def test_appending_to_a_returned_history_reads_no_id_of_it(id_reads: list[BaseMessage]) -> None:
    history = conversation(500)
    id_reads.clear()
    update = [AIMessage("new", id="new")]
    grown = add_messages(history, update)
    assert id_reads == update and len(grown) == 501 and grown[-1].id == "new"
    assert all(a is b for a, b in zip(grown, history, strict=False))


def test_a_history_read_back_has_only_its_new_objects_checked(id_reads: list[BaseMessage]) -> None:
    # A saver reading a thread back shares the objects of earlier reads; only the newest are new objects.
    history = conversation(500)
    id_reads.clear()
    read_back = [*history[:-2], *(m.model_copy() for m in history[-2:])]
    update = [AIMessage("new", id="new")]
    grown = add_messages(read_back, update)
    assert id_reads == [*update, *read_back[-2:]] and [m.id for m in grown[-3:]] == ["m498", "m499", "new"]


def test_a_message_replaced_in_place_deep_in_the_history_is_noticed() -> None:
    history = conversation(300)
    add_messages(history, [AIMessage("remembered", id="x")])
    history[100] = AIMessage("now holds id z", id="z")
    merged = add_messages(history, [AIMessage("replaces it", id="z")])
    assert len(merged) == 300 and merged[100].content == "replaces it"


def test_a_duplicate_id_made_in_place_takes_the_general_path() -> None:
    history = conversation(50)
    add_messages(history, [])
    history.append(HumanMessage("again", id="m3"))
    merged = add_messages(history, [AIMessage("new", id="new")])
    assert merged == message_module._merge(history, [m.id for m in history], merged[-1:], ["new"])


def test_histories_are_told_apart_by_their_first_message() -> None:
    index = HistoryIds(frozenset({HumanMessage, AIMessage}), size=2)
    first, second, third = (conversation(3) for _ in range(3))
    for history in (first, second, third):
        assert index.append(history, [], []) == history
    assert len(index._histories) == 2 and id(first[0]) not in index._histories


def test_an_update_repeating_an_id_is_refused() -> None:
    index = HistoryIds(frozenset({HumanMessage, AIMessage}))
    history = conversation(3)
    assert index.append(history, [AIMessage("a", id="m1")], ["m1"]) is None
    twice = [AIMessage("a", id="n"), AIMessage("b", id="n")]
    assert index.append(history, twice, ["n", "n"]) is None
    assert index.append(history, [AIMessage("c", id="n")], ["n"]) == [
        *history,
        index._histories[id(history[0])].items[-1],
    ]


# The law: whatever happens to the lists between merges, the result is the general merge's.

ids = st.sampled_from([f"s{i}" for i in range(6)]) | st.uuids().map(str)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(ids, max_size=3)),
        st.tuples(st.just("read back"), st.integers(0, 3)),
        st.tuples(st.just("replace in place"), st.integers(0, 30), ids),
        st.tuples(st.just("fork"), st.integers(0, 30)),
    ),
    max_size=15,
)


@settings(max_examples=200, deadline=None)
@given(operations)
def test_law_merging_through_the_index_is_merging_from_scratch(ops: list[tuple[Any, ...]]) -> None:
    current: list[Any] = conversation(3)
    results = [current]
    for op in ops:
        if op[0] == "add":
            update = [AIMessage(f"new {i}", id=i) for i in op[1]]
            expected = message_module._merge(list(current), [m.id for m in current], update, list(op[1]))
            current = add_messages(current, update)
            assert current == expected and all(a is b for a, b in zip(current, expected, strict=True))
            results.append(current)
        elif op[0] == "read back" and current:
            keep = max(len(current) - op[1], 0)
            current = [*current[:keep], *(m.model_copy() for m in current[keep:])]
        elif op[0] == "replace in place" and current:
            current[op[1] % len(current)] = HumanMessage("replaced", id=op[2])
        elif op[0] == "fork":
            current = results[op[1] % len(results)]
