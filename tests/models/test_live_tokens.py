"""`stream_mode="messages"` hands a model's chunks to the caller while the model is still streaming."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest

from graphrt.graph import START, MessagesState, StateGraph
from graphrt.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from graphrt.models import BaseChatModel
from graphrt.models._base import CallOptions
from graphrt.prebuilt import create_agent
from graphrt.types import StreamWriter

pytestmark = pytest.mark.timeout(30)

WAIT = 3.0
"""Seconds the model waits for the caller to see its first chunk (it never should, when chunks are live)."""


class GatedModel(BaseChatModel):
    """Streams "one", then waits until the caller has seen it before making " two"."""

    def __init__(self) -> None:
        self.seen = threading.Event()
        self.waited: list[bool] = []

    def _generate(self, messages: list[BaseMessage], options: CallOptions) -> AIMessage:
        return AIMessage("one two")

    def _stream(self, messages: list[BaseMessage], options: CallOptions) -> Iterator[AIMessageChunk]:
        yield AIMessageChunk("one")
        self.waited.append(self.seen.wait(WAIT))
        yield AIMessageChunk(" two")

    async def _astream(self, messages: list[BaseMessage], options: CallOptions) -> AsyncIterator[AIMessageChunk]:
        yield AIMessageChunk("one")
        with anyio.move_on_after(WAIT):
            while not self.seen.is_set():
                await anyio.sleep(0.01)
        self.waited.append(self.seen.is_set())
        yield AIMessageChunk(" two")


def chat_graph(model: BaseChatModel) -> Any:
    def chat(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    async def achat(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await model.ainvoke(state["messages"])]}

    sync_graph = StateGraph(MessagesState).add_node("chat", chat).add_edge(START, "chat").compile()
    async_graph = StateGraph(MessagesState).add_node("chat", achat).add_edge(START, "chat").compile()
    return sync_graph, async_graph


def consume(graph: Any, model: GatedModel, mode: str) -> list[str]:
    """The streamed contents; the model learns the caller saw "one" the moment it arrives."""
    contents: list[str] = []

    def see(chunk: Any) -> None:
        contents.append(chunk.content)
        if chunk.content == "one":
            model.seen.set()

    payload = {"messages": [HumanMessage("hi")]}
    if mode == "sync":
        for chunk, _meta in graph.stream(payload, stream_mode="messages"):
            see(chunk)
    else:

        async def run() -> None:
            async for chunk, _meta in graph.astream(payload, stream_mode="messages"):
                see(chunk)

        anyio.run(run)
    return contents


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_caller_sees_a_chunk_before_the_next_is_made(mode: str) -> None:
    model = GatedModel()
    sync_graph, async_graph = chat_graph(model)
    contents = consume(sync_graph if mode == "sync" else async_graph, model, mode)
    assert model.waited == [True]
    assert contents == ["one", " two", ""]  # the empty chunk marks the end


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_agents_model_streams_live(mode: str) -> None:
    model = GatedModel()
    assert consume(create_agent(model, []), model, mode) == ["one", " two", ""]
    assert model.waited == [True]


def test_custom_chunks_reach_the_caller_while_the_node_runs() -> None:
    seen = threading.Event()
    waited: list[bool] = []

    def node(state: MessagesState, writer: StreamWriter) -> dict[str, Any]:
        writer("first")
        waited.append(seen.wait(WAIT))
        writer("second")
        return {}

    graph = StateGraph(MessagesState).add_node("node", node).add_edge(START, "node").compile()
    got = []
    for chunk in graph.stream({"messages": []}, stream_mode="custom"):
        got.append(chunk)
        seen.set()
    assert got == ["first", "second"]
    assert waited == [True]


def test_a_provider_may_mark_its_own_last_chunk() -> None:
    class Marked(GatedModel):
        def _stream(self, messages: list[BaseMessage], options: CallOptions) -> Iterator[AIMessageChunk]:
            yield AIMessageChunk("one")
            yield AIMessageChunk(" two", chunk_position="last")

    chunks = list(Marked().stream("hi"))
    assert [(c.content, c.chunk_position) for c in chunks] == [("one", None), (" two", "last")]
    assert len({c.id for c in chunks}) == 1
