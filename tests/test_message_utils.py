"""`trim_messages`, `filter_messages`, `merge_message_runs`, `get_buffer_string`, `count_tokens_approximately`.

Expected values are what `langchain_core.messages` 1.x returns for the same calls.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphrt.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
    count_tokens_approximately,
    filter_messages,
    get_buffer_string,
    merge_message_runs,
    trim_messages,
)

pytestmark = pytest.mark.timeout(60)

CHAT = [
    SystemMessage("sys", id="s"),
    HumanMessage("h1 long text", id="1"),
    AIMessage("a1", id="2"),
    HumanMessage("h2", id="3"),
    AIMessage("", id="4", tool_calls=[{"name": "f", "args": {}, "id": "c"}]),
    ToolMessage("t", tool_call_id="c", id="5"),
    AIMessage("a3", id="6"),
]


def ids(messages: list[BaseMessage]) -> list[str | None]:
    return [m.id for m in messages]


def test_get_buffer_string() -> None:
    assert get_buffer_string(CHAT) == (
        "System: sys\nHuman: h1 long text\nAI: a1\nHuman: h2\n"
        "AI: [{'name': 'f', 'args': {}, 'id': 'c', 'type': 'tool_call'}]\nTool: t\nAI: a3"
    )
    assert get_buffer_string(CHAT[1:3], human_prefix="U", ai_prefix="B") == "U: h1 long text\nB: a1"
    assert get_buffer_string([ChatMessage("x", role="critic"), FunctionMessage("y", name="f")]) == (
        "critic: x\nFunction: y"
    )


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"max_tokens": 3, "strategy": "last"}, ["4", "5", "6"]),
        ({"max_tokens": 3, "strategy": "last", "include_system": True}, ["s", "5", "6"]),
        ({"max_tokens": 4, "strategy": "last", "start_on": "human", "include_system": True}, ["s"]),
        ({"max_tokens": 6, "strategy": "last", "start_on": "human"}, ["1", "2", "3", "4", "5", "6"]),
        ({"max_tokens": 5, "strategy": "last", "start_on": "human"}, ["3", "4", "5", "6"]),
        ({"max_tokens": 4, "strategy": "first"}, ["s", "1", "2", "3"]),
        ({"max_tokens": 4, "strategy": "first", "end_on": "human"}, ["s", "1", "2", "3"]),
        ({"max_tokens": 3, "strategy": "first", "end_on": "human"}, ["s", "1"]),
        ({"max_tokens": 5, "strategy": "last", "end_on": "ai"}, ["2", "3", "4", "5", "6"]),
        ({"max_tokens": 5, "strategy": "last", "end_on": ("tool", HumanMessage)}, ["1", "2", "3", "4", "5"]),
        ({"max_tokens": 3, "strategy": "last", "start_on": ("human", "ai")}, ["4", "5", "6"]),
        ({"max_tokens": 0, "strategy": "last"}, []),
        ({"max_tokens": 1, "strategy": "last", "include_system": True}, ["s"]),
    ],
)
def test_trim_by_message_count(kwargs: dict[str, Any], expected: list[str]) -> None:
    assert ids(trim_messages(CHAT, token_counter=len, **kwargs)) == expected


def test_trim_with_token_counters() -> None:
    assert count_tokens_approximately(CHAT) == 55
    assert ids(trim_messages(CHAT, max_tokens=30, token_counter=count_tokens_approximately)) == ["5", "6"]

    def per_message(message: BaseMessage) -> int:
        return len(message.text)

    assert ids(trim_messages(CHAT, max_tokens=5, token_counter=per_message)) == ["3", "4", "5", "6"]


def test_trim_allow_partial() -> None:
    def chars(messages: list[BaseMessage]) -> int:
        return sum(len(m.text) for m in messages)

    kept = trim_messages(CHAT, max_tokens=12, token_counter=chars, allow_partial=True)
    assert [(m.id, m.content) for m in kept] == [("2", "a1"), ("3", "h2"), ("4", ""), ("5", "t"), ("6", "a3")]
    kept = trim_messages(CHAT, max_tokens=12, token_counter=chars, strategy="first", allow_partial=True)
    assert [(m.id, m.content) for m in kept] == [("s", "sys")]
    lines = [HumanMessage("one\ntwo\nthree", id="x"), AIMessage("ok", id="y")]
    assert [m.content for m in trim_messages(lines, max_tokens=10, token_counter=chars, allow_partial=True)] == [
        "three",
        "ok",
    ]
    first = trim_messages(lines, max_tokens=8, token_counter=chars, strategy="first", allow_partial=True)
    assert [m.content for m in first] == ["one\ntwo\n"]
    blocks = [HumanMessage(["a", {"type": "text", "text": "bb"}, "ccc"], id="b")]
    assert trim_messages(blocks, max_tokens=5, token_counter=chars, allow_partial=True)[0].content == [
        {"type": "text", "text": "bb"},
        "ccc",
    ]


def test_trim_errors() -> None:
    # Deliberate difference: LangChain keeps the system message even past the budget.
    with pytest.raises(ValueError, match=r"The system message alone \(1 tokens\) exceeds max_tokens=0"):
        trim_messages(CHAT, max_tokens=0, token_counter=len, include_system=True)
    with pytest.raises(ValueError, match="include_system parameter is only valid with strategy='last'"):
        trim_messages(CHAT, max_tokens=1, token_counter=len, strategy="first", include_system=True)
    with pytest.raises(ValueError, match="start_on parameter is only valid with strategy='last'"):
        trim_messages(CHAT, max_tokens=1, token_counter=len, strategy="first", start_on="human")
    with pytest.raises(ValueError, match="Unrecognized strategy='middle'"):
        trim_messages(CHAT, max_tokens=1, token_counter=len, strategy="middle")  # type: ignore[arg-type]


def test_filter_messages() -> None:
    assert ids(filter_messages(CHAT, include_types=["human", AIMessage])) == ["1", "2", "3", "4", "6"]
    assert ids(filter_messages(CHAT, exclude_types=["system"], exclude_ids=["3"])) == ["1", "2", "4", "5", "6"]
    assert ids(filter_messages(CHAT, include_ids=["3", "2"], include_names=["x"])) == ["2", "3"]
    assert ids(filter_messages(CHAT, exclude_tool_calls=True)) == ["s", "1", "2", "3", "6"]
    assert ids(filter_messages(CHAT, exclude_tool_calls=["c"])) == ["s", "1", "2", "3", "6"]
    named = [HumanMessage("a", name="bob", id="1"), HumanMessage("b", name="amy", id="2")]
    assert ids(filter_messages(named, exclude_names=["bob"])) == ["2"]
    two_calls = AIMessage(
        "", id="m", tool_calls=[{"name": "f", "args": {}, "id": "a"}, {"name": "g", "args": {}, "id": "b"}]
    )
    kept = filter_messages([two_calls], exclude_tool_calls=["a"])
    assert [c["id"] for c in kept[0].tool_calls] == ["b"]  # type: ignore[attr-defined]
    assert two_calls.tool_calls[0]["id"] == "a"  # the given message is not changed


def test_merge_message_runs() -> None:
    merged = merge_message_runs(
        [
            HumanMessage("a", id="1"),
            HumanMessage("b", id="2"),
            AIMessage("x", tool_calls=[{"name": "f", "args": {}, "id": "1"}]),
            AIMessage("y"),
            ToolMessage("1", tool_call_id="a"),
            ToolMessage("2", tool_call_id="b"),
        ]
    )
    assert merged == [
        HumanMessage("a\nb", id="1"),
        AIMessage("x\ny", tool_calls=[{"name": "f", "args": {}, "id": "1"}]),
        ToolMessage("1", tool_call_id="a"),
        ToolMessage("2", tool_call_id="b"),
    ]
    assert merge_message_runs([HumanMessage([{"type": "text", "text": "a"}]), HumanMessage("b")]) == [
        HumanMessage([{"type": "text", "text": "a"}, "b"])
    ]
    assert merge_message_runs([HumanMessage("a"), HumanMessage("b")], chunk_separator="") == [HumanMessage("ab")]
    assert merge_message_runs([("user", "a"), ("user", "b")]) == [HumanMessage("a\nb")]


# ---------------------------------------------------------------- laws

kinds = st.sampled_from(["system", "human", "ai", "tool"])
histories = st.lists(st.tuples(kinds, st.text(alphabet="ab \n", max_size=12)), max_size=10)


def build(spec: list[tuple[str, str]]) -> list[BaseMessage]:
    out: list[BaseMessage] = []
    for i, (kind, text) in enumerate(spec):
        if kind == "system":
            out.append(SystemMessage(text, id=str(i)))
        elif kind == "human":
            out.append(HumanMessage(text, id=str(i)))
        elif kind == "ai":
            out.append(AIMessage(text, id=str(i)))
        else:
            out.append(ToolMessage(text, tool_call_id="c", id=str(i)))
    return out


@given(
    histories,
    st.integers(0, 60),
    st.sampled_from(["first", "last"]),
    st.booleans(),
    st.sampled_from([len, count_tokens_approximately]),
    st.booleans(),
)
def test_trim_never_exceeds_the_budget(
    spec: list[tuple[str, str]], budget: int, strategy: str, partial: bool, counter: Any, system: bool
) -> None:
    history = build(spec)
    extra: dict[str, Any] = {"include_system": system, "start_on": "human"} if strategy == "last" else {}
    leading_system = bool(history) and history[0].type == "system"
    if system and strategy == "last" and leading_system and counter(history[:1]) > budget:
        return  # an error, checked in test_trim_errors
    kept = trim_messages(
        history, max_tokens=budget, token_counter=counter, strategy=strategy, allow_partial=partial, **extra
    )
    assert counter(kept) <= budget
    kept_ids = [m.id for m in kept]
    # Whole messages keep their order and come from the history (a partial one keeps its id).
    assert kept_ids == [m.id for m in history if m.id in kept_ids]
    if not partial and strategy == "first":
        assert kept == history[: len(kept)]
