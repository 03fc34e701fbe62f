"""A chat model called in a node streams its tokens into `stream_mode="messages"`, with LangGraph's metadata."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from graphrt.graph import START, MessagesState, StateGraph
from graphrt.messages import AIMessage, AIMessageChunk
from graphrt.models import ScriptedChatModel

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def graph(model: Any, how: str = "invoke") -> Any:
    def call(state: MessagesState) -> dict[str, Any]:
        if how == "stream":
            chunks = list(model.stream(state["messages"]))
            return {"messages": [chunks[0] + chunks[1:]]}
        return {"messages": [model.invoke(state["messages"])]}

    async def acall(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    node = acall if how == "ainvoke" else call
    return StateGraph(MessagesState).add_node("chat", node).add_edge(START, "chat").compile()


def run(g: Any, mode: str, stream_mode: Any) -> list[Any]:
    payload = {"messages": [("user", "hi")]}
    if mode == "sync":
        return list(g.stream(payload, stream_mode=stream_mode))

    async def collect() -> list[Any]:
        return [c async for c in g.astream(payload, stream_mode=stream_mode)]

    return anyio.run(collect)


@pytest.mark.parametrize(("mode", "how"), [("sync", "invoke"), ("async", "invoke"), ("async", "ainvoke")])
def test_tokens_stream_with_metadata_and_the_reply_is_not_repeated(mode: str, how: str) -> None:
    events = run(graph(ScriptedChatModel(["hello big world"]), how), mode, ["messages", "updates"])
    tokens = [c[0] for kind, c in events if kind == "messages"]
    assert all(isinstance(t, AIMessageChunk) for t in tokens)
    assert "".join(str(t.content) for t in tokens) == "hello big world"
    assert [t.content for t in tokens[:5]] == ["hello", " ", "big", " ", "world"]
    metadata = next(c for k, c in events if k == "messages")[1]
    assert {k: metadata[k] for k in ("langgraph_node", "langgraph_step", "langgraph_triggers", "ls_model_type")} == {
        "langgraph_node": "chat",
        "langgraph_step": 1,
        "langgraph_triggers": ("branch:to:chat",),
        "ls_model_type": "chat",
    }
    assert metadata["ls_provider"] == "scripted"
    assert metadata["ls_integration"] == "langchain_chat_model"
    assert metadata["checkpoint_ns"] == metadata["langgraph_checkpoint_ns"]
    # The node's update holds the whole reply, with the id its tokens carried.
    update = next(c for k, c in events if k == "updates")["chat"]["messages"][0]
    assert isinstance(update, AIMessage) and not isinstance(update, AIMessageChunk)
    assert update.content == "hello big world" and update.id == tokens[0].id
    assert [k for k, _ in events].count("updates") == 1


def test_model_stream_in_a_node_also_streams(mode: str) -> None:
    events = run(graph(ScriptedChatModel(["a b"]), "stream"), mode, "messages")
    assert [c.content for c, _ in events] == ["a", " ", "b", ""]


def test_without_messages_mode_nothing_is_streamed(mode: str) -> None:
    class Counting(ScriptedChatModel):
        streamed = 0

        def _stream(self, messages: Any, options: Any) -> Any:
            Counting.streamed += 1
            return super()._stream(messages, options)

    events = run(graph(Counting(["x y"])), mode, "updates")
    assert events[0]["chat"]["messages"][0].content == "x y"
    assert Counting.streamed == 0  # invoke used _generate: no streaming request without a listener


def test_nostream_tag_keeps_a_model_out(mode: str) -> None:
    model = ScriptedChatModel(["quiet reply"]).with_config(tags=["nostream"])
    events = run(graph(model), mode, "messages")
    # Only the node's returned message is streamed, whole, by the engine.
    assert [type(c).__name__ for c, _ in events] == ["AIMessage"]
    assert events[0][0].content == "quiet reply"
