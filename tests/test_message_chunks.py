"""Message chunks and `+`, pinned to what `langchain_core.messages` 1.x returns for the same inputs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphrt.checkpoint.serde.jsonplus import JsonPlusSerializer
from graphrt.messages import (
    AIMessage,
    AIMessageChunk,
    AnyMessage,
    BaseMessage,
    ChatMessageChunk,
    FunctionMessage,
    FunctionMessageChunk,
    HumanMessage,
    HumanMessageChunk,
    SystemMessageChunk,
    ToolMessageChunk,
    message_chunk_to_message,
    messages_from_dict,
    messages_to_dict,
)

pytestmark = pytest.mark.timeout(60)


def test_ai_chunks_merge_content_tool_calls_usage_and_metadata() -> None:
    a = AIMessageChunk(
        "Hel",
        id="run-1",
        tool_call_chunks=[{"name": "f", "args": '{"a":', "id": "c1", "index": 0}],
        usage_metadata={"input_tokens": 3, "output_tokens": 1, "total_tokens": 4},
        response_metadata={"model": "x"},
    )
    b = AIMessageChunk(
        "lo",
        id="msg_abc",
        tool_call_chunks=[
            {"name": None, "args": " 1}", "id": None, "index": 0},
            {"name": "g", "args": "", "id": "c2", "index": 1},
        ],
        usage_metadata={"input_tokens": 0, "output_tokens": 2, "total_tokens": 2},
        response_metadata={"model": "x", "stop": "end"},
    )
    c = a + b
    assert type(c) is AIMessageChunk
    assert c.content == "Hello"
    assert c.id == "run-1"
    assert c.response_metadata == {"model": "xx", "stop": "end"}  # strings concatenate, as in LangChain
    assert c.usage_metadata == {"input_tokens": 3, "output_tokens": 3, "total_tokens": 6}
    assert c.tool_call_chunks == [
        {"name": "f", "args": '{"a": 1}', "id": "c1", "index": 0, "type": "tool_call_chunk"},
        {"name": "g", "args": "", "id": "c2", "index": 1, "type": "tool_call_chunk"},
    ]
    assert c.tool_calls == [
        {"name": "f", "args": {"a": 1}, "id": "c1", "type": "tool_call"},
        {"name": "g", "args": {}, "id": "c2", "type": "tool_call"},
    ]
    # A partial argument string already parses as far as it goes.
    assert a.tool_calls == [{"name": "f", "args": {}, "id": "c1", "type": "tool_call"}]


def test_ids_prefer_the_providers() -> None:
    assert (AIMessageChunk("", id="lc_run--1") + AIMessageChunk("", id="msg_1")).id == "msg_1"
    assert (AIMessageChunk("", id=None) + AIMessageChunk("", id="msg_1")).id == "msg_1"
    assert (AIMessageChunk("", id="lc_run--1") + AIMessageChunk("")).id == "lc_run--1"


def test_content_blocks_merge_by_index_and_strings_join_lists() -> None:
    left = AIMessageChunk([{"type": "text", "text": "a", "index": 0}])
    right = AIMessageChunk([{"type": "text", "text": "b", "index": 0}])
    assert (left + right).content == [{"type": "text", "text": "ab", "index": 0}]
    assert (AIMessageChunk("a") + AIMessageChunk([{"type": "text", "text": "b"}])).content == [
        "a",
        {"type": "text", "text": "b"},
    ]
    rest = [AIMessageChunk("b"), AIMessageChunk("c")]
    assert (AIMessageChunk("a") + rest).content == "abc"


def test_invalid_and_partial_tool_call_arguments() -> None:
    partial = AIMessageChunk("", tool_call_chunks=[{"name": "f", "args": '{"a": [1, "x', "id": "c", "index": 0}])
    assert partial.tool_calls[0]["args"] == {"a": [1, "x"]}
    bad = AIMessageChunk("", tool_call_chunks=[{"name": "f", "args": "nonsense{", "id": "c", "index": 0}])
    assert bad.tool_calls == []
    assert bad.invalid_tool_calls == [
        {"name": "f", "args": "nonsense{", "id": "c", "error": None, "type": "invalid_tool_call"}
    ]
    from_calls = AIMessageChunk("", tool_calls=[{"name": "f", "args": {"a": 1}, "id": "x"}])
    assert from_calls.tool_call_chunks == [
        {"name": "f", "args": '{"a": 1}', "id": "x", "index": None, "type": "tool_call_chunk"}
    ]


def test_other_chunk_kinds() -> None:
    assert (HumanMessageChunk("a") + HumanMessageChunk("b")).content == "ab"
    assert (SystemMessageChunk("a") + SystemMessageChunk("b")).type == "SystemMessageChunk"
    tool = ToolMessageChunk("a", tool_call_id="1", artifact=[1]) + ToolMessageChunk(
        "b", tool_call_id="1", artifact=[2], status="error"
    )
    assert (tool.content, tool.artifact, tool.status) == ("ab", [1, 2], "error")
    with pytest.raises(ValueError, match=r"Cannot concatenate ToolMessageChunks with different names\."):
        ToolMessageChunk("a", tool_call_id="1") + ToolMessageChunk("b", tool_call_id="2")
    with pytest.raises(ValueError, match=r"Cannot concatenate ChatMessageChunks with different roles\."):
        ChatMessageChunk("a", role="1") + ChatMessageChunk("b", role="2")
    with pytest.raises(ValueError, match="different names"):
        FunctionMessageChunk("a", name="f") + FunctionMessageChunk("b", name="g")
    with pytest.raises(TypeError, match="unsupported operand"):
        AIMessageChunk("a") + 1
    with pytest.raises(TypeError, match="different type"):
        AIMessageChunk("", additional_kwargs={"k": "1"}) + AIMessageChunk("", additional_kwargs={"k": 2})


def test_chunk_to_message() -> None:
    chunk = AIMessageChunk(
        "hi", id="1", tool_call_chunks=[{"name": "f", "args": "{}", "id": "x", "index": 0}], chunk_position="last"
    )
    message = message_chunk_to_message(chunk)
    assert type(message) is AIMessage
    assert message == AIMessage("hi", id="1", tool_calls=[{"name": "f", "args": {}, "id": "x"}])
    plain = FunctionMessage("r", name="f")
    assert message_chunk_to_message(plain) is plain


def test_chunks_validate_as_any_message_and_round_trip_through_the_serializer() -> None:
    from pydantic import TypeAdapter

    serde = JsonPlusSerializer()
    values = [
        AIMessageChunk("a", id="1", tool_call_chunks=[{"name": "f", "args": '{"x": 1}', "id": "c", "index": 0}]),
        HumanMessageChunk("h"),
        ToolMessageChunk("t", tool_call_id="c"),
        ChatMessageChunk("c", role="critic"),
        FunctionMessageChunk("f", name="fn"),
        SystemMessageChunk("s"),
    ]
    for value in values:
        back = serde.loads_typed(serde.dumps_typed(value))
        assert type(back) is type(value) and back == value
        assert TypeAdapter(AnyMessage).validate_python(value.model_dump()) == value


# ---------------------------------------------------------------- laws

texts = st.text(alphabet='ab {}":,1', max_size=6)
tool_chunks = st.lists(
    st.builds(
        # A tool call keeps one id across its pieces (providers send it once, or the same each time).
        lambda name, args, index, with_id: {
            "name": name,
            "args": args,
            "id": f"c{index}" if with_id else None,
            "index": index,
        },
        st.none() | st.sampled_from(["f", "g"]),
        st.none() | texts,
        st.none() | st.integers(0, 2),
        st.booleans(),
    ),
    max_size=3,
    unique_by=lambda call: call["index"],  # one piece per tool call in a chunk, as providers send them
)
usage = st.none() | st.builds(
    lambda i, o: {"input_tokens": i, "output_tokens": o, "total_tokens": i + o},
    st.integers(0, 9),
    st.integers(0, 9),
)
ai_chunks = st.builds(
    lambda content, calls, use, meta, id: AIMessageChunk(
        content, tool_call_chunks=calls, usage_metadata=use, response_metadata=meta, id=id
    ),
    texts,
    tool_chunks,
    usage,
    st.dictionaries(st.sampled_from(["a", "b"]), texts, max_size=2),
    st.none() | st.sampled_from(["lc_run--1", "msg_1", "msg_2"]),
)


@given(ai_chunks, ai_chunks, ai_chunks)
def test_chunk_addition_is_associative(a: AIMessageChunk, b: AIMessageChunk, c: AIMessageChunk) -> None:
    assert (a + b) + c == a + (b + c)


@given(st.lists(ai_chunks, min_size=1, max_size=4))
def test_summing_a_list_equals_adding_one_by_one(chunks: list[AIMessageChunk]) -> None:
    total = chunks[0]
    for chunk in chunks[1:]:
        total = total + chunk
    if len(chunks) > 1:
        assert chunks[0] + chunks[1:] == total
    assert total.content == "".join(str(c.content) for c in chunks)


messages = st.lists(
    st.one_of(
        ai_chunks,
        st.builds(lambda t: AIMessage(t, tool_calls=[{"name": "f", "args": {"k": t}, "id": "1"}]), texts),
        st.builds(HumanMessageChunk, texts),
        st.builds(lambda t: ToolMessageChunk(t, tool_call_id="x"), texts),
        st.builds(lambda t: FunctionMessage(t, name="fn"), texts),
    ),
    max_size=5,
)


@given(messages)
def test_messages_to_dict_round_trips(values: list[BaseMessage]) -> None:
    assert messages_from_dict(messages_to_dict(values)) == values


def test_messages_from_dict_rejects_unknown_types() -> None:
    with pytest.raises(ValueError, match="Got unexpected message type: nope"):
        messages_from_dict([{"type": "nope", "data": {}}])


def test_add_messages_stores_complete_messages() -> None:
    from graphrt.graph.message import add_messages

    chunk = AIMessageChunk("a", id="1") + AIMessageChunk("b")
    merged = add_messages([HumanMessageChunk("q", id="0")], [chunk])
    assert [type(m) for m in merged] == [HumanMessage, AIMessage]
    assert merged[1] == AIMessage("ab", id="1")
    fresh = add_messages([], [AIMessageChunk("c")])
    assert type(fresh[0]) is AIMessage and fresh[0].id is not None
