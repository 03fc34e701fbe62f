"""ChatOpenAI and ChatAnthropic against a local server speaking each API: requests, replies, SSE, retries, errors."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from graphrt.graph import START, MessagesState, StateGraph
from graphrt.messages import AIMessage, AIMessageChunk, ToolMessage
from graphrt.models import (
    APIConnectionError,
    APIStatusError,
    ChatAnthropic,
    ChatOpenAI,
    MalformedResponseError,
    MissingAPIKeyError,
    RateLimitError,
    init_chat_model,
)
from graphrt.tools import tool

from .conftest import FakeServer, Reply

pytestmark = pytest.mark.timeout(30)

KEY = "sk-test-SECRET-0123456789"


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def invoke(model: Any, input: Any, mode: str) -> Any:
    if mode == "sync":
        return model.invoke(input)
    return anyio.run(lambda: model.ainvoke(input))


def stream(model: Any, input: Any, mode: str) -> list[AIMessageChunk]:
    if mode == "sync":
        return list(model.stream(input))

    async def collect() -> list[AIMessageChunk]:
        return [c async for c in model.astream(input)]

    return anyio.run(collect)


@tool
def get_weather(city: str) -> str:
    """Weather for a city."""
    return "sunny"


class Person(BaseModel):
    """A person."""

    name: str


def openai(server: FakeServer, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI("gpt-test", api_key=KEY, base_url=server.url + "/v1", **kwargs)


def anthropic(server: FakeServer, **kwargs: Any) -> ChatAnthropic:
    return ChatAnthropic("claude-test", api_key=KEY, base_url=server.url, **kwargs)


def openai_reply(content: str | None = "Hi!", tool_calls: list[Any] | None = None) -> Reply:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return Reply(
        json={
            "id": "chatcmpl-1",
            "model": "gpt-test-2024",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
        }
    )


def anthropic_reply(*blocks: dict[str, Any]) -> Reply:
    return Reply(
        json={
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "claude-test-1",
            "content": list(blocks) or [{"type": "text", "text": "Hi!"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 9, "output_tokens": 4, "cache_read_input_tokens": 1},
        }
    )


CONVERSATION: list[Any] = [
    ("system", "Be brief."),
    ("user", "Weather in Paris?"),
    AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_1"}]),
    ToolMessage("sunny", tool_call_id="call_1"),
]


# ---------------------------------------------------------------- OpenAI


def test_openai_request_and_reply(server: FakeServer, mode: str) -> None:
    server.reply(openai_reply("It is sunny."))
    model = openai(server, temperature=0.2).bind_tools([get_weather], tool_choice="any")
    reply = invoke(model, CONVERSATION, mode)
    assert reply.content == "It is sunny."
    assert reply.id == "chatcmpl-1"
    assert reply.usage_metadata == {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
    assert reply.response_metadata["model_name"] == "gpt-test-2024"
    assert reply.response_metadata["finish_reason"] == "stop"
    sent = server.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["Authorization"] == f"Bearer {KEY}"
    assert sent.body == {
        "model": "gpt-test",
        "temperature": 0.2,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Weather for a city.",
                    "parameters": {
                        "type": "object",
                        "properties": {"city": {"type": "string"}},
                        "required": ["city"],
                    },
                },
            }
        ],
        "tool_choice": "required",
    }


def test_openai_tool_calls_and_structured_output(server: FakeServer, mode: str) -> None:
    call = {"id": "call_9", "type": "function", "function": {"name": "Person", "arguments": '{"name": "Bob"}'}}
    bad = {"id": "call_8", "type": "function", "function": {"name": "get_weather", "arguments": "{oops"}}
    server.reply(openai_reply(None, [call]), openai_reply(None, [bad]))
    assert invoke(openai(server).with_structured_output(Person), "who?", mode) == Person(name="Bob")
    assert server.requests[0].body["tool_choice"] == {"type": "function", "function": {"name": "Person"}}
    reply = invoke(openai(server).bind_tools([get_weather]), "x", mode)
    assert reply.tool_calls == []
    assert reply.invalid_tool_calls[0]["args"] == "{oops"


OPENAI_STREAM: list[tuple[str | None, Any]] = [
    (None, {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
    (None, {"id": "c1", "choices": [{"index": 0, "delta": {"content": "Let me"}}]}),
    (None, {"id": "c1", "choices": [{"index": 0, "delta": {"content": " check."}}]}),
    (
        None,
        {
            "id": "c1",
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather"}}
                        ]
                    },
                }
            ],
        },
    ),
    (
        None,
        {
            "id": "c1",
            "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}}],
        },
    ),
    (
        None,
        {
            "id": "c1",
            "choices": [
                {"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]}}
            ],
        },
    ),
    (None, {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
    (None, {"id": "c1", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11}}),
    (None, "[DONE]"),
]


def test_openai_sse_stream(server: FakeServer, mode: str) -> None:
    server.reply(Reply(events=OPENAI_STREAM))
    chunks = stream(openai(server).bind_tools([get_weather]), "weather?", mode)
    assert server.requests[0].body["stream"] is True
    assert server.requests[0].body["stream_options"] == {"include_usage": True}
    assert [c.content for c in chunks[:3]] == ["", "Let me", " check."]
    total = chunks[0] + chunks[1:]
    assert total.content == "Let me check."
    assert total.tool_calls == [{"name": "get_weather", "args": {"city": "Oslo"}, "id": "call_1", "type": "tool_call"}]
    assert total.usage_metadata == {"input_tokens": 5, "output_tokens": 6, "total_tokens": 11}
    assert total.response_metadata["finish_reason"] == "tool_calls"
    assert {c.id for c in chunks} == {"c1"}
    assert chunks[-1].chunk_position == "last"


def test_http_tokens_reach_the_messages_stream_mode(server: FakeServer) -> None:
    server.reply(Reply(events=OPENAI_STREAM))
    model = openai(server)

    def chat(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState).add_node("chat", chat).add_edge(START, "chat").compile()
    events = list(graph.stream({"messages": [("user", "hi")]}, stream_mode="messages"))
    assert "".join(str(c.content) for c, _ in events) == "Let me check."
    assert all(isinstance(c, AIMessageChunk) for c, _ in events)
    assert events[0][1]["ls_provider"] == "openai" and events[0][1]["ls_model_name"] == "gpt-test"
    assert server.requests[0].body["stream"] is True  # invoke streamed because the run listens


def test_openai_without_key(monkeypatch: pytest.MonkeyPatch, server: FakeServer) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(MissingAPIKeyError, match="set the OPENAI_API_KEY environment variable"):
        ChatOpenAI("gpt-4o-mini")
    # Another OpenAI-compatible server may need no key: no Authorization header is sent.
    server.reply(openai_reply())
    ChatOpenAI("local", base_url=server.url).invoke("hi")
    assert "Authorization" not in server.requests[0].headers
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    server.reply(openai_reply())
    assert init_chat_model("openai:gpt-x").invoke("hi").content == "Hi!"
    assert server.requests[1].headers["Authorization"] == f"Bearer {KEY}"


# ---------------------------------------------------------------- Anthropic


def test_anthropic_request_and_reply(server: FakeServer, mode: str) -> None:
    server.reply(
        anthropic_reply(
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Rome"}},
        )
    )
    model = anthropic(server, max_tokens=200).bind_tools([get_weather], tool_choice="get_weather")
    reply = invoke(model, [*CONVERSATION, ("user", "And Rome?")], mode)
    assert reply.content == "Checking."
    assert reply.tool_calls == [{"name": "get_weather", "args": {"city": "Rome"}, "id": "toolu_2", "type": "tool_call"}]
    assert reply.usage_metadata == {"input_tokens": 10, "output_tokens": 4, "total_tokens": 14}
    assert reply.response_metadata["stop_reason"] == "end_turn"
    sent = server.requests[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.body == {
        "model": "claude-test",
        "max_tokens": 200,
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
                    {"type": "text", "text": "And Rome?"},
                ],
            },
        ],
        "tools": [
            {
                "name": "get_weather",
                "description": "Weather for a city.",
                "input_schema": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            }
        ],
        "tool_choice": {"type": "tool", "name": "get_weather"},
    }


ANTHROPIC_STREAM: list[tuple[str | None, Any]] = [
    (
        "message_start",
        {
            "type": "message_start",
            "message": {"id": "msg_s", "model": "claude-test", "usage": {"input_tokens": 12, "output_tokens": 1}},
        },
    ),
    ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ("ping", {"type": "ping"}),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "On "}},
    ),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "it."}},
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}},
        },
    ),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": '{"city"'}},
    ),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": ': "Lima"}'}},
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 20},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
]


def test_anthropic_sse_stream(server: FakeServer, mode: str) -> None:
    server.reply(Reply(events=ANTHROPIC_STREAM))
    chunks = stream(anthropic(server).bind_tools([get_weather]), "weather?", mode)
    assert server.requests[0].body["stream"] is True
    assert [c.content for c in chunks if c.content] == ["On ", "it."]
    total = chunks[0] + chunks[1:]
    assert total.content == "On it."
    assert total.tool_calls == [{"name": "get_weather", "args": {"city": "Lima"}, "id": "toolu_1", "type": "tool_call"}]
    assert total.usage_metadata == {"input_tokens": 12, "output_tokens": 20, "total_tokens": 32}
    assert total.response_metadata["stop_reason"] == "tool_use"
    assert {c.id for c in chunks} == {"msg_s"}


def test_anthropic_stream_errors(server: FakeServer, mode: str) -> None:
    overloaded = ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    server.reply(Reply(events=[*ANTHROPIC_STREAM[:2], overloaded]), Reply(events=ANTHROPIC_STREAM[:4]))
    with pytest.raises(MalformedResponseError, match="the stream reported an error: Overloaded"):
        stream(anthropic(server), "x", mode)
    with pytest.raises(MalformedResponseError, match="the stream ended before message_stop"):
        stream(anthropic(server), "x", mode)


def test_anthropic_without_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="set the ANTHROPIC_API_KEY environment variable"):
        init_chat_model(model="anthropic:claude-3-5-haiku-latest")


# ---------------------------------------------------------------- retries and errors


@pytest.mark.parametrize("make", [openai, anthropic])
def test_429_then_success_is_retried(server: FakeServer, mode: str, make: Any) -> None:
    ok = openai_reply("done") if make is openai else anthropic_reply({"type": "text", "text": "done"})
    server.reply(Reply(429, json={"error": {"message": "slow down"}}, headers={"Retry-After": "0"}), ok)
    assert invoke(make(server), "hi", mode).content == "done"
    assert len(server.requests) == 2


@pytest.mark.parametrize("make", [openai, anthropic])
def test_500_exhausts_retries_with_a_clear_error(server: FakeServer, mode: str, make: Any) -> None:
    failing = Reply(500, json={"error": {"message": f"internal boom (key {KEY})"}}, headers={"Retry-After": "0"})
    server.reply(failing, failing, failing)
    with pytest.raises(APIStatusError) as info:
        invoke(make(server, max_retries=2), "hi", mode)
    assert len(server.requests) == 3
    assert info.value.status_code == 500
    assert "returned HTTP 500 for POST" in str(info.value) and "after 3 attempts" in str(info.value)
    assert "internal boom (key **********)" in str(info.value)
    assert KEY not in str(info.value)


@pytest.mark.parametrize("make", [openai, anthropic])
def test_429_that_persists_is_a_rate_limit_error(server: FakeServer, make: Any) -> None:
    server.reply(Reply(429, raw=b"too many", headers={"Retry-After": "0"}))
    with pytest.raises(RateLimitError, match=r"HTTP 429 .*: too many"):
        make(server, max_retries=0).invoke("hi")


def test_client_errors_are_not_retried(server: FakeServer) -> None:
    server.reply(Reply(400, json={"error": {"message": "bad model"}}), openai_reply())
    with pytest.raises(APIStatusError, match=r"HTTP 400 .*: bad model"):
        openai(server).invoke("hi")
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("make", "body", "problem"),
    [
        (openai, b"<html>gateway</html>", "not JSON"),
        (openai, b'{"choices": []}', "expected 'choices\\[0\\].message'"),
        (anthropic, b'{"content": "text"}', "expected a 'content' list of blocks"),
        (anthropic, b"[1, 2]", "expected a JSON object"),
    ],
)
def test_malformed_response(server: FakeServer, mode: str, make: Any, body: bytes, problem: str) -> None:
    server.reply(Reply(raw=body))
    with pytest.raises(MalformedResponseError, match=f"API returned a response graphrt cannot read \\({problem}"):
        invoke(make(server), "hi", mode)


def test_malformed_stream_event(server: FakeServer, mode: str) -> None:
    server.reply(Reply(events=[(None, "{not json")]))
    with pytest.raises(MalformedResponseError, match="a stream event is not JSON"):
        stream(openai(server), "hi", mode)


def test_timeout_and_unreachable_server(server: FakeServer, mode: str) -> None:
    server.reply(Reply(json={}, delay=1.0))
    with pytest.raises(APIConnectionError, match="timed out"):
        invoke(openai(server, timeout=0.2, max_retries=0), "hi", mode)
    closed = ChatOpenAI("m", api_key=KEY, base_url="http://127.0.0.1:9", max_retries=0)
    with pytest.raises(
        APIConnectionError, match=r"openai API request to http://127\.0\.0\.1:9/chat/completions failed"
    ):
        invoke(closed, "hi", mode)


def test_keys_never_show(server: FakeServer) -> None:
    for model in (openai(server), anthropic(server)):
        assert KEY not in repr(model) and KEY not in str(vars(model))
    assert repr(openai(server)) == f"ChatOpenAI(model='gpt-test', base_url='{server.url}/v1')"


def test_init_chat_model_picks_the_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert isinstance(init_chat_model(model="anthropic:claude-3-5-haiku-latest"), ChatAnthropic)
    assert init_chat_model("claude-3-5-haiku-latest").model_name == "claude-3-5-haiku-latest"
    assert isinstance(init_chat_model("gpt-4o-mini"), ChatOpenAI)
    assert isinstance(init_chat_model("llama3", model_provider="openai", base_url="http://x/v1"), ChatOpenAI)
    with pytest.raises(ValueError, match="Unable to infer model provider for model='llama3'"):
        init_chat_model("llama3")
    with pytest.raises(ValueError, match="Unsupported model_provider='cohere'"):
        init_chat_model("command-r", model_provider="cohere")
    with pytest.raises(NotImplementedError, match="configurable_fields"):
        init_chat_model("gpt-4o", configurable_fields="any")


def test_retry_policy_decisions() -> None:
    from email.utils import formatdate

    from graphrt.models._http import RetryPolicy

    policy = RetryPolicy(max_retries=2, base_delay=1.0, max_delay=5.0)
    assert policy.delay(1, 429, {"Retry-After": "3"}) == 3.0
    assert policy.delay(1, 503, {"retry-after-ms": "250"}) == 0.25
    assert policy.delay(1, 429, {"Retry-After": "600"}) == 5.0  # capped
    in_two_seconds = formatdate(__import__("time").time() + 2, usegmt=True)
    assert 0.0 < (policy.delay(1, 429, {"Retry-After": in_two_seconds}) or 0) <= 2.0
    assert 0.75 <= (policy.delay(1, 500, {}) or 0) <= 1.25  # backoff with jitter
    assert 1.5 <= (policy.delay(2, None, None) or 0) <= 2.5  # connection errors back off too
    assert policy.delay(3, 500, {}) is None  # out of retries
    assert policy.delay(1, 400, {}) is None  # not retryable
    assert policy.delay(1, 401, {"Retry-After": "1"}) is None
