"""The chat-model protocol through `ScriptedChatModel`: script, rules, tools, structured output, streaming."""

from __future__ import annotations

import re
from typing import Any

import anyio
import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict

from graphrt.messages import AIMessage, AIMessageChunk, HumanMessage, SystemMessage, ToolMessage
from graphrt.models import OutputParserError, ScriptedChatModel, ScriptExhaustedError
from graphrt.tools import tool

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def invoke(model: Any, input: Any, mode: str, **kwargs: Any) -> Any:
    if mode == "sync":
        return model.invoke(input, **kwargs)
    return anyio.run(lambda: model.ainvoke(input, **kwargs))


def stream(model: Any, input: Any, mode: str) -> list[AIMessageChunk]:
    if mode == "sync":
        return list(model.stream(input))

    async def collect() -> list[AIMessageChunk]:
        return [chunk async for chunk in model.astream(input)]

    return anyio.run(collect)


@tool
def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"sunny in {city}"


class Person(BaseModel):
    """A person."""

    name: str
    age: int


class PersonDict(TypedDict):
    name: str
    age: int


def test_script_replies_in_order_then_rules_then_default(mode: str) -> None:
    model = ScriptedChatModel(
        ["first", AIMessage("second", id="fixed")],
        rules=[(r"weather", "It is sunny."), (lambda ms: len(ms) > 2, "long chat")],
        default="I don't know.",
    )
    assert invoke(model, "hi", mode).content == "first"
    second = invoke(model, "hi", mode)
    assert (second.content, second.id) == ("second", "fixed")
    assert invoke(model, "what's the weather?", mode).content == "It is sunny."
    assert invoke(model, ["a", "b", "c"], mode).content == "long chat"
    assert invoke(model, "anything", mode).content == "I don't know."


def test_callable_reply_sees_the_conversation(mode: str) -> None:
    def recall(messages: list[Any]) -> str:
        found = re.search(r"my name is (\w+)", " ".join(m.text for m in messages))
        return f"Your name is {found.group(1)}." if found else "Who are you?"

    model = ScriptedChatModel(default=recall)
    assert invoke(model, [("system", "User said: my name is Bob"), ("user", "who am I?")], mode).text == (
        "Your name is Bob."
    )
    assert invoke(model, "who am I?", mode).text == "Who are you?"


def test_exhausted_script_raises_a_clear_error(mode: str) -> None:
    model = ScriptedChatModel(["only"])
    invoke(model, "a", mode)
    with pytest.raises(ScriptExhaustedError, match=r"its 1 scripted replies are used up .* last message 'again'"):
        invoke(model, "again", mode)


def test_reply_function_returning_none_is_an_error() -> None:
    with pytest.raises(ScriptExhaustedError, match="reply function returned None"):
        ScriptedChatModel(default=lambda ms: None).invoke("x")


def test_replies_say_they_are_scripted() -> None:
    model = ScriptedChatModel(["hello"], rules=[("x", "y")])
    assert repr(model) == (
        "ScriptedChatModel(scripted replies, not a language model: 1 of 1 left, 1 rules, default=no)"
    )
    reply = model.invoke("hi")
    assert reply.name == "scripted"
    assert reply.response_metadata == {"model_name": "scripted", "model_provider": "scripted"}
    assert reply.pretty_repr().splitlines()[1] == "Name: scripted"
    assert reply.id is not None and reply.id.startswith("lc_run--")
    assert ScriptedChatModel(["x"], name=None).invoke("a").name is None


def test_inputs_like_langchain(mode: str) -> None:
    seen: list[list[Any]] = []
    model = ScriptedChatModel(default=lambda ms: seen.append(ms) or "ok")
    invoke(model, "plain", mode)
    invoke(model, HumanMessage("msg"), mode)
    invoke(model, [("system", "be nice"), {"role": "user", "content": "hey"}, "tail"], mode)
    assert [type(m) for m in seen[2]] == [SystemMessage, HumanMessage, HumanMessage]
    assert [m.text for batch in seen for m in batch] == ["plain", "msg", "be nice", "hey", "tail"]
    with pytest.raises(TypeError, match="Invalid input type int for a chat model"):
        invoke(model, 5, mode)


def test_bind_tools_shares_the_script_and_checks_tool_names(mode: str) -> None:
    call = AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": None}])
    model = ScriptedChatModel([call, "done", AIMessage("", tool_calls=[{"name": "nope", "args": {}, "id": "1"}])])
    bound = model.bind_tools([get_weather])
    reply = invoke(bound, "weather in Paris?", mode)
    assert reply.tool_calls[0]["name"] == "get_weather"
    assert reply.tool_calls[0]["args"] == {"city": "Paris"}
    assert reply.tool_calls[0]["id"].startswith("call_")  # a missing id is filled in
    assert invoke(model, "next", mode).content == "done"  # the original model continues the same script
    assert "tools=['get_weather']" in repr(bound)
    with pytest.raises(ValueError, match=r"calls tool 'nope', but the model is bound to tools \['get_weather'\]"):
        invoke(bound, "again", mode)


def test_stream_sums_to_the_reply(mode: str) -> None:
    script = [
        "The quick  brown fox",
        AIMessage("Let me check.", tool_calls=[{"name": "get_weather", "args": {"city": "Nice"}, "id": "c1"}]),
    ]
    chunks = stream(ScriptedChatModel(script).bind_tools([get_weather]), "go", mode)
    assert [c.content for c in chunks[:-1]] == ["The", " ", "quick", " ", " ", "brown", " ", "fox"]
    assert [c.chunk_position for c in chunks] == [None] * (len(chunks) - 1) + ["last"]
    assert len({c.id for c in chunks}) == 1
    total = chunks[0] + chunks[1:]
    assert total.content == "The quick  brown fox"
    with_call = stream(ScriptedChatModel(script[1:]).bind_tools([get_weather]), "go", mode)
    summed = with_call[0] + with_call[1:]
    assert summed.tool_calls == [{"name": "get_weather", "args": {"city": "Nice"}, "id": "c1", "type": "tool_call"}]
    assert any(c.tool_call_chunks and c.tool_call_chunks[0]["args"] == '{"city":' for c in with_call)


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (Person, Person(name="Bob", age=3)),
        (PersonDict, {"name": "Bob", "age": 3}),
        (
            {"title": "Person", "type": "object", "properties": {"name": {"type": "string"}}},
            {"name": "Bob", "age": 3},
        ),
    ],
)
def test_structured_output_kinds(schema: Any, expected: Any, mode: str) -> None:
    for reply in ({"name": "Bob", "age": 3}, Person(name="Bob", age=3), '{"name": "Bob", "age": 3}'):
        structured = ScriptedChatModel([reply]).with_structured_output(schema)
        assert invoke(structured, "who?", mode) == expected


def test_structured_output_errors_and_include_raw(mode: str) -> None:
    model = ScriptedChatModel(["no tool call here", {"name": "Bob"}, {"name": "Bob"}])
    with pytest.raises(OutputParserError, match="answered without calling the output schema tool 'Person'"):
        invoke(model.with_structured_output(Person), "x", mode)
    with pytest.raises(OutputParserError, match="does not fit the output schema 'Person'"):
        invoke(model.with_structured_output(Person), "x", mode)
    raw = invoke(model.with_structured_output(Person, include_raw=True), "x", mode)
    assert raw["parsed"] is None and isinstance(raw["parsing_error"], OutputParserError)
    assert raw["raw"].tool_calls[0]["name"] == "Person"
    with pytest.raises(ValueError, match="not supported"):
        model.with_structured_output(Person, method="json_mode")
    with pytest.raises(ValueError, match="needs a 'title'"):
        model.with_structured_output({"type": "object"})


def test_dict_reply_without_structured_output_is_an_error() -> None:
    with pytest.raises(ValueError, match="not asked for structured output"):
        ScriptedChatModel([{"name": "Bob"}]).invoke("x")
    # A message dict is a message, not arguments.
    assert ScriptedChatModel([{"role": "assistant", "content": "hi"}]).invoke("x").content == "hi"


def test_batch_keeps_order(mode: str) -> None:
    model = ScriptedChatModel(default=lambda ms: ms[-1].text.upper())
    out = model.batch(["a", "b", "c"]) if mode == "sync" else anyio.run(model.abatch, ["a", "b", "c"])
    assert [m.content for m in out] == ["A", "B", "C"]


def test_tool_messages_reach_the_model() -> None:
    seen: list[Any] = []
    model = ScriptedChatModel(default=lambda ms: seen.extend(ms) or "ok")
    model.invoke(
        [
            ("user", "q"),
            AIMessage("", tool_calls=[{"name": "t", "args": {}, "id": "1"}]),
            ToolMessage("r", tool_call_id="1"),
        ]
    )
    assert [m.type for m in seen] == ["human", "ai", "tool"]


def test_a_reply_the_model_keeps_no_reference_to_takes_its_run_id_itself(mode: str) -> None:
    # As in LangChain, which sets the run id on the generated message; here only when no one else holds it.
    import weakref

    from graphrt.models import BaseChatModel

    made: list[weakref.ref[AIMessage]] = []
    kept: list[AIMessage] = []

    class Model(BaseChatModel):
        keep: bool = False

        def _generate(self, messages: Any, options: Any) -> AIMessage:
            reply = AIMessage("hi")
            made.append(weakref.ref(reply))
            if self.keep:
                kept.append(reply)
            return reply

        async def _agenerate(self, messages: Any, options: Any) -> AIMessage:
            return self._generate(messages, options)

    fresh = invoke(Model(), "q", mode)
    assert fresh is made[-1]() and fresh.id is not None and fresh.id.startswith("lc_run--")
    model = Model()
    model.keep = True
    copied = invoke(model, "q", mode)
    assert copied is not kept[-1] and kept[-1].id is None and copied.id is not None
