"""Message classes, `AnyMessage` and `convert_to_messages`, checked against langchain_core's behaviour."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, TypeAdapter, ValidationError
from typing_extensions import TypedDict

import graphrt.messages as messages_module
from graphrt.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
    message_to_dict,
    messages_from_dict,
    tool_call,
)

pytestmark = pytest.mark.timeout(30)


def base_dump(content: Any, type: str, id: str | None = None) -> dict[str, Any]:
    return {
        "content": content,
        "additional_kwargs": {},
        "response_metadata": {},
        "type": type,
        "name": None,
        "id": id,
    }


def test_public_surface() -> None:
    assert isinstance(messages_module.__all__, tuple)
    for name in messages_module.__all__:
        assert hasattr(messages_module, name), name


@pytest.mark.parametrize(
    ("message", "dump"),
    [
        (HumanMessage("hi"), base_dump("hi", "human")),
        (SystemMessage("be brief"), base_dump("be brief", "system")),
        (
            AIMessage("ok"),
            {
                **base_dump("ok", "ai"),
                "tool_calls": [],
                "invalid_tool_calls": [],
                "usage_metadata": None,
            },
        ),
        (
            ToolMessage("42", tool_call_id="c1"),
            {
                **base_dump("42", "tool"),
                "tool_call_id": "c1",
                "artifact": None,
                "status": "success",
            },
        ),
        (RemoveMessage("m1"), base_dump("", "remove", "m1")),
    ],
)
def test_defaults_and_dump(message: BaseMessage, dump: dict[str, Any]) -> None:
    assert message.model_dump() == dump
    assert list(message.model_dump()) == list(dump)  # field order matches LangChain's too


def test_content_by_keyword_equals_positional() -> None:
    assert HumanMessage(content="hi") == HumanMessage("hi")


def test_content_is_required() -> None:
    with pytest.raises(ValidationError):
        HumanMessage()


def test_content_list_of_blocks() -> None:
    blocks: list[str | dict[Any, Any]] = ["a", {"type": "text", "text": "b"}]
    assert HumanMessage(blocks).content == blocks


def test_equality_depends_on_class_and_fields() -> None:
    assert HumanMessage("x") == HumanMessage("x")
    assert HumanMessage("x") != SystemMessage("x")
    assert HumanMessage("x", id="1") != HumanMessage("x")
    assert HumanMessage("x") != {"content": "x"}


def test_numeric_id_becomes_string() -> None:
    assert HumanMessage("a", id=5).id == "5"  # type: ignore[arg-type]
    assert ToolMessage("a", tool_call_id=7).tool_call_id == "7"  # type: ignore[arg-type]


def test_unknown_keyword_is_kept_as_extra_field() -> None:
    message = HumanMessage("a", foo=5)
    assert message.model_dump()["foo"] == 5
    assert repr(message) == "HumanMessage(content='a', additional_kwargs={}, response_metadata={}, foo=5)"


def test_type_cannot_be_changed() -> None:
    with pytest.raises(ValidationError):
        HumanMessage("a", type="ai")


def test_base_message_needs_a_type() -> None:
    with pytest.raises(ValidationError):
        BaseMessage("x")
    assert BaseMessage("x", type="custom").type == "custom"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (HumanMessage("hi"), "HumanMessage(content='hi', additional_kwargs={}, response_metadata={})"),
        (
            HumanMessage("r", id="1", name="n"),
            "HumanMessage(content='r', additional_kwargs={}, response_metadata={}, name='n', id='1')",
        ),
        (
            AIMessage("r"),
            "AIMessage(content='r', additional_kwargs={}, response_metadata={}, tool_calls=[], invalid_tool_calls=[])",
        ),
        (ToolMessage("r", tool_call_id="c1"), "ToolMessage(content='r', tool_call_id='c1')"),
        (
            ToolMessage("x", tool_call_id="c", name="t", status="error", artifact={"x": 1}),
            "ToolMessage(content='x', name='t', tool_call_id='c', artifact={'x': 1}, status='error')",
        ),
        (RemoveMessage("x"), "RemoveMessage(content='', additional_kwargs={}, response_metadata={}, id='x')"),
    ],
)
def test_repr_matches_langchain(message: BaseMessage, expected: str) -> None:
    assert repr(message) == expected


def test_text_of_string_and_blocks() -> None:
    assert HumanMessage("hi").text == "hi"
    blocks: list[str | dict[Any, Any]] = [
        "a",
        {"type": "text", "text": "b"},
        {"type": "image_url", "image_url": {"url": "x"}},
        {"text": "no type"},
    ]
    assert HumanMessage(blocks).text == "ab"


def test_pretty_repr_human() -> None:
    assert HumanMessage("hi").pretty_repr() == "=" * 32 + " Human Message " + "=" * 33 + "\n\nhi"
    assert HumanMessage("hi", name="bob").pretty_repr() == (
        "================================ Human Message =================================\nName: bob\n\nhi"
    )


def test_pretty_repr_titles_are_80_wide() -> None:
    for message in (
        HumanMessage("x"),
        AIMessage("x"),
        SystemMessage("x"),
        ToolMessage("x", tool_call_id="c"),
    ):
        assert len(message.pretty_repr().splitlines()[0]) == 80


def test_pretty_repr_html_bolds_the_title() -> None:
    assert SystemMessage("s").pretty_repr(html=True) == (
        "=" * 32 + "\x1b[1m System Message \x1b[0m" + "=" * 32 + "\n\ns"
    )


def test_pretty_repr_ai_with_tool_calls() -> None:
    message = AIMessage(
        "",
        name="bot",
        tool_calls=[
            {"name": "f", "args": {}, "id": "c1"},
            {"name": "g", "args": {"x": {"y": [1, 2]}, "z": "s"}, "id": "c2"},
        ],
        invalid_tool_calls=[{"name": "h", "args": "{bad", "id": "c3", "error": "oops"}],
    )
    assert message.pretty_repr() == "\n".join(
        [
            "================================== Ai Message ==================================",
            "Name: bot",
            "Tool Calls:",
            "  f (c1)",
            " Call ID: c1",
            "  Args:",
            "  g (c2)",
            " Call ID: c2",
            "  Args:",
            "    x: {'y': [1, 2]}",
            "    z: s",
            "Invalid Tool Calls:",
            "  h (c3)",
            " Call ID: c3",
            "  Error: oops",
            "  Args:",
            "    {bad",
        ]
    )


def test_pretty_print(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(sys, "ps1", raising=False)
    ToolMessage("r", tool_call_id="c1", name="calc").pretty_print()
    assert capsys.readouterr().out == (
        "================================= Tool Message =================================\nName: calc\n\nr\n"
    )
    RemoveMessage("x").pretty_print()
    assert capsys.readouterr().out == (
        "================================ Remove Message ================================\n\n\n"
    )


def test_tool_calls_get_their_type() -> None:
    message = AIMessage("x", tool_calls=[{"name": "f", "args": {"a": 1}, "id": "c1"}])
    assert message.tool_calls == [{"name": "f", "args": {"a": 1}, "id": "c1", "type": "tool_call"}]
    assert message.tool_calls[0] == tool_call(name="f", args={"a": 1}, id="c1")


def test_invalid_tool_calls_get_their_type() -> None:
    message = AIMessage("x", invalid_tool_calls=[{"name": "f", "args": "{", "id": "1", "error": "e"}])
    assert message.model_dump()["invalid_tool_calls"] == [
        {"type": "invalid_tool_call", "id": "1", "name": "f", "args": "{", "error": "e"}
    ]


def test_tool_call_needs_name_args_and_id() -> None:
    with pytest.raises(ValidationError):
        AIMessage("x", tool_calls=[{"name": "f", "args": {}}])
    assert AIMessage("x", tool_calls=[{"name": "f", "args": {}, "id": None}]).tool_calls[0]["id"] is None


def test_tool_calls_given_are_not_mutated() -> None:
    calls = [{"name": "f", "args": {}, "id": "c"}]
    AIMessage("x", tool_calls=calls)
    assert calls == [{"name": "f", "args": {}, "id": "c"}]


def test_usage_metadata() -> None:
    usage = {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}
    message = AIMessage("x", usage_metadata=usage)
    assert message.usage_metadata == usage
    assert repr(message).endswith("usage_metadata={'input_tokens': 1, 'output_tokens': 2, 'total_tokens': 3})")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (5, "5"),
        ({"a": 1}, "{'a': 1}"),
        (["a", 1, {"type": "text", "text": "t"}], ["a", "1", {"type": "text", "text": "t"}]),
    ],
)
def test_tool_message_content_is_coerced(content: Any, expected: Any) -> None:
    assert ToolMessage(content, tool_call_id="c").content == expected


def test_tool_message_status_and_id_are_checked() -> None:
    with pytest.raises(ValidationError):
        ToolMessage("x", tool_call_id="c", status="bad")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        ToolMessage("x")


def test_remove_message() -> None:
    assert RemoveMessage("x") == RemoveMessage(id="x")
    with pytest.raises(ValueError, match=r"^RemoveMessage does not support 'content' field\.$"):
        RemoveMessage(id="x", content="y")
    with pytest.raises(TypeError):
        RemoveMessage()  # type: ignore[call-arg]


MESSAGES = TypeAdapter(list[AnyMessage])


def test_any_message_validates_dicts_by_type() -> None:
    result = MESSAGES.validate_python(
        [
            {"type": "human", "content": "x"},
            {"type": "ai", "content": "y", "tool_calls": [{"name": "f", "args": {}, "id": "1"}]},
            {"type": "system", "content": "s"},
            {"type": "tool", "content": "t", "tool_call_id": "1"},
            {"type": "remove", "id": "r", "content": ""},
        ]
    )
    assert result == [
        HumanMessage("x"),
        AIMessage("y", tool_calls=[{"name": "f", "args": {}, "id": "1"}]),
        SystemMessage("s"),
        ToolMessage("t", tool_call_id="1"),
        RemoveMessage("r"),
    ]


def test_any_message_keeps_instances() -> None:
    message = AIMessage("y")
    assert MESSAGES.validate_python([message])[0] is message


@pytest.mark.parametrize("bad", [{"type": "bogus", "content": "x"}, {"content": "x"}])
def test_any_message_rejects_unknown_type(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        MESSAGES.validate_python([bad])


def test_any_message_in_pydantic_and_typeddict_schemas() -> None:
    class Model(BaseModel):
        messages: list[AnyMessage]

    class State(TypedDict):
        messages: list[AnyMessage]

    model = Model(messages=[HumanMessage("x"), {"type": "ai", "content": "y"}])  # type: ignore[list-item]
    assert Model.model_validate_json(model.model_dump_json()) == model
    state = TypeAdapter(State).validate_python({"messages": [{"type": "human", "content": "x"}]})
    assert state == {"messages": [HumanMessage("x")]}


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"role": "user", "content": "a"}, HumanMessage("a")),
        ({"role": "human", "content": "a", "id": "1", "name": "n"}, HumanMessage("a", id="1", name="n")),
        ({"type": "human", "content": "a"}, HumanMessage("a")),
        ({"role": "ai", "content": "a"}, AIMessage("a")),
        ({"role": "system", "content": "a"}, SystemMessage("a")),
        (
            {"role": "developer", "content": "a"},
            SystemMessage("a", additional_kwargs={"__openai_role__": "developer"}),
        ),
        ({"role": "tool", "content": "a", "tool_call_id": "c"}, ToolMessage("a", tool_call_id="c")),
        (
            {"role": "tool", "content": "a", "tool_call_id": "c", "status": "error", "artifact": 3},
            ToolMessage("a", tool_call_id="c", status="error", artifact=3),
        ),
        (
            {"role": "assistant", "content": "a", "tool_calls": [{"name": "f", "args": {}, "id": "c"}]},
            AIMessage("a", tool_calls=[{"name": "f", "args": {}, "id": "c"}]),
        ),
        (
            {
                "role": "assistant",
                "content": "a",
                "tool_calls": [{"type": "function", "id": "c", "function": {"name": "f", "arguments": '{"x": 1}'}}],
            },
            AIMessage("a", tool_calls=[{"name": "f", "args": {"x": 1}, "id": "c"}]),
        ),
        ({"role": "user", "content": None}, HumanMessage("")),
        ({"role": "user", "content": "a", "extra": 1}, HumanMessage("a", additional_kwargs={"extra": 1})),
        (
            {"role": "user", "content": "a", "additional_kwargs": {"z": 1}, "extra": 2},
            HumanMessage("a", additional_kwargs={"extra": 2, "z": 1}),
        ),
        (
            {"role": "user", "content": "a", "response_metadata": {"z": 1}},
            HumanMessage("a", response_metadata={"z": 1}),
        ),
        (
            {"role": "user", "content": "a", "type": "message"},
            HumanMessage("a", additional_kwargs={"type": "message"}),
        ),
        ({"role": "remove", "content": "", "id": "x"}, RemoveMessage("x")),
        (("user", "a"), HumanMessage("a")),
        (("assistant", "a"), AIMessage("a")),
        (["system", "a"], SystemMessage("a")),
        ("hi", HumanMessage("hi")),
    ],
)
def test_convert_to_messages(given: Any, expected: BaseMessage) -> None:
    assert convert_to_messages([given]) == [expected]


def test_convert_keeps_message_objects_and_inputs() -> None:
    message = AIMessage("x")
    given = {"role": "user", "content": "a", "additional_kwargs": {"z": 1}, "extra": 2}
    result = convert_to_messages([message, given])
    assert result[0] is message
    assert given == {"role": "user", "content": "a", "additional_kwargs": {"z": 1}, "extra": 2}


def test_convert_accepts_a_single_value() -> None:
    assert convert_to_messages("hi") == [HumanMessage("hi")]
    assert convert_to_messages({"role": "ai", "content": "x"}) == [AIMessage("x")]
    message = HumanMessage("x")
    assert convert_to_messages(message)[0] is message


@pytest.mark.parametrize(
    ("given", "error", "message"),
    [
        (
            {"role": "bogus", "content": "a"},
            ValueError,
            "Unexpected message type: 'bogus'. Use one of 'human', 'user', 'ai', 'assistant', 'tool', "
            "'system', 'developer', or 'remove'.",
        ),
        (
            ("bogus", "a"),
            ValueError,
            "Unexpected message type: 'bogus'. Use one of 'human', 'user', 'ai', 'assistant', 'tool', "
            "'system', 'developer', or 'remove'.",
        ),
        (
            {"content": "a"},
            ValueError,
            "Message dict must contain 'role' and 'content' keys, got {'content': 'a'}",
        ),
        (
            {"role": "user"},
            ValueError,
            "Message dict must contain 'role' and 'content' keys, got {'role': 'user'}",
        ),
        (42, NotImplementedError, "Unsupported message type: <class 'int'>"),
        (("user", "a", "b"), NotImplementedError, "Message as a sequence must be (role string, template)"),
    ],
)
def test_convert_errors(given: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        convert_to_messages([given])
    assert str(info.value) == message


def test_tool_dict_without_tool_call_id_fails() -> None:
    with pytest.raises(ValidationError):
        convert_to_messages([{"role": "tool", "content": "a"}])


contents = st.one_of(
    st.text(max_size=8),
    st.lists(st.one_of(st.text(max_size=4), st.fixed_dictionaries({"type": st.just("text"), "text": st.text()}))),
)
ids = st.one_of(st.none(), st.text(min_size=1, max_size=6))
names = st.one_of(st.none(), st.text(max_size=4))


def _human(content: Any, id: str | None, name: str | None) -> HumanMessage:
    return HumanMessage(content, id=id, name=name)


def _system(content: Any, id: str | None, name: str | None) -> SystemMessage:
    return SystemMessage(content, id=id, name=name)


def _ai(content: Any, id: str | None, tool_calls: list[Any]) -> AIMessage:
    return AIMessage(content, id=id, tool_calls=tool_calls)


def _tool(content: Any, tool_call_id: str, status: str, artifact: Any) -> ToolMessage:
    return ToolMessage(content, tool_call_id=tool_call_id, status=status, artifact=artifact)


def _remove(id: str) -> RemoveMessage:
    return RemoveMessage(id)


any_messages = st.one_of(
    st.builds(_human, contents, ids, names),
    st.builds(_system, contents, ids, names),
    st.builds(
        _ai,
        contents,
        ids,
        st.lists(
            st.builds(
                tool_call,
                name=st.text(max_size=4),
                args=st.dictionaries(st.text(max_size=3), st.integers()),
                id=ids,
            ),
            max_size=2,
        ),
    ),
    st.builds(
        _tool,
        contents,
        st.text(max_size=4),
        st.sampled_from(["success", "error"]),
        st.one_of(st.none(), st.integers()),
    ),
    st.builds(_remove, st.text(min_size=1, max_size=6)),
)


@given(any_messages)
def test_dump_round_trips(message: BaseMessage) -> None:
    assert convert_to_messages([message.model_dump()]) == [message]
    assert messages_from_dict([message_to_dict(message)]) == [message]
    assert MESSAGES.validate_json(MESSAGES.dump_json([message])) == [message]


def test_message_to_dict_shape() -> None:
    assert message_to_dict(HumanMessage("x")) == {
        "type": "human",
        "data": base_dump("x", "human"),
    }
    with pytest.raises(ValueError, match=r"^Got unexpected message type: bogus$"):
        messages_from_dict([{"type": "bogus", "data": {}}])


def test_convert_rebuilds_foreign_message_models() -> None:
    class ForeignMessage(BaseModel):  # shaped like langchain_core's messages
        content: str
        type: str
        id: str | None = None
        tool_call_id: str | None = None

    converted = convert_to_messages(
        [
            ForeignMessage(content="hi", type="human", id="1"),
            ForeignMessage(content="r", type="tool", tool_call_id="c"),
        ]
    )
    assert converted == [HumanMessage("hi", id="1"), ToolMessage("r", tool_call_id="c")]
    with pytest.raises(NotImplementedError, match=r"^Unsupported message type: <class '.*Plain'>$"):

        class Plain(BaseModel):
            content: str

        convert_to_messages([Plain(content="x")])
