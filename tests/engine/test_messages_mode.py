"""`stream_mode="messages"`: messages that nodes return, as `(message, metadata)`, each once."""

from __future__ import annotations

from typing import Any

from graphrt.graph import START, MessagesState, StateGraph
from graphrt.messages import AIMessage, HumanMessage
from tests.engine.conftest import stream


def test_messages_mode_streams_returned_messages_with_metadata(mode: str) -> None:
    def reply(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage("hello", id="a1"), AIMessage("again", id="a2")]}

    def echo(state: MessagesState) -> dict[str, Any]:
        # The whole history plus one: only the new message is streamed.
        return {"messages": [*state["messages"], AIMessage("x", id="a3")]}

    builder = StateGraph(MessagesState)
    builder.add_node("reply", reply)
    builder.add_node("echo", echo)
    builder.add_edge(START, "reply")
    builder.add_edge("reply", "echo")
    chunks = stream(builder.compile(), {"messages": [HumanMessage("hi", id="h1")]}, mode, stream_mode="messages")
    assert [(m.id, meta["langgraph_node"], meta["langgraph_step"]) for m, meta in chunks] == [
        ("a1", "reply", 1),
        ("a2", "reply", 1),
        ("a3", "echo", 2),
    ]
    _, metadata = chunks[0]
    assert metadata["ls_integration"] == "langgraph"
    assert metadata["langgraph_triggers"] == ("branch:to:reply",)
    assert metadata["langgraph_path"] == ("__pregel_pull", "reply")
    assert metadata["langgraph_checkpoint_ns"].startswith("reply:")
