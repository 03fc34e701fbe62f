"""The store reaches nodes: the seeds' long-term-memory chatbot, end to end, on every store backend."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.config import RunnableConfig, get_store
from graphrt.embeddings import StaticEmbeddings
from graphrt.graph import START, MessagesState, StateGraph
from graphrt.messages import AIMessage
from graphrt.runtime import Runtime
from graphrt.store.base import BaseStore, IndexConfig
from graphrt.store.memory import InMemoryStore
from graphrt.store.sqlite import SqliteStore
from graphrt.store.sqlite.aio import AsyncSqliteStore

INDEX: IndexConfig = {"embed": StaticEmbeddings(), "dims": 256}


@contextmanager
def memory_store(_: Path) -> Iterator[BaseStore]:
    yield InMemoryStore(index=INDEX)


@contextmanager
def sqlite_store(path: Path) -> Iterator[BaseStore]:
    with SqliteStore.from_conn_string(str(path / "store.db"), index=INDEX) as store:
        store.setup()
        yield store


@asynccontextmanager
async def async_sqlite_store(path: Path) -> AsyncIterator[BaseStore]:
    async with AsyncSqliteStore.from_conn_string(str(path / "store.db"), index=INDEX) as store:
        await store.setup()
        yield store


def call_model(state: MessagesState, config: RunnableConfig, *, store: BaseStore) -> dict[str, Any]:
    """The seeds' node, with a stand-in for the chat model that repeats what the store told it."""
    user_id = config["configurable"]["user_id"]
    namespace = ("memories", user_id)
    memories = store.search(namespace, query=str(state["messages"][-1].content))
    info = "\n".join(d.value["data"] for d in memories)
    last_message = state["messages"][-1]
    if "remember" in last_message.content.lower():
        store.put(namespace, str(uuid.uuid4()), {"data": "User name is Bob"})
    return {"messages": [AIMessage(f"User info: {info}")]}


async def acall_model(state: MessagesState, config: RunnableConfig, *, store: BaseStore) -> dict[str, Any]:
    user_id = config["configurable"]["user_id"]
    namespace = ("memories", user_id)
    memories = await store.asearch(namespace, query=str(state["messages"][-1].content))
    info = "\n".join(d.value["data"] for d in memories)
    if "remember" in state["messages"][-1].content.lower():
        await store.aput(namespace, str(uuid.uuid4()), {"data": "User name is Bob"})
    return {"messages": [AIMessage(f"User info: {info}")]}


def chatbot(store: BaseStore, node: Any) -> Any:
    builder = StateGraph(MessagesState)
    builder.add_node("call_model", node)
    builder.add_edge(START, "call_model")
    return builder.compile(checkpointer=InMemorySaver(), store=store)


def ask(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


@pytest.mark.parametrize("backend", [memory_store, sqlite_store])
def test_memory_saved_on_one_thread_is_found_on_another(tmp_path: Path, backend: Any) -> None:
    with backend(tmp_path) as store:
        graph = chatbot(store, call_model)
        first = {"configurable": {"thread_id": "1", "user_id": "1"}}
        chunks = list(graph.stream(ask("Hi! Remember: my name is Bob"), first, stream_mode="values"))
        assert chunks[0]["messages"][-1].content == "Hi! Remember: my name is Bob"
        assert chunks[-1]["messages"][-1].content == "User info: "
        second = {"configurable": {"thread_id": "2", "user_id": "1"}}
        out = graph.invoke(ask("what is my name?"), second)
        assert out["messages"][-1].content == "User info: User name is Bob"
        # Thread 2 has its own history; thread 1 kept its own.
        assert len(graph.get_state(second).values["messages"]) == 2
        other_user = {"configurable": {"thread_id": "3", "user_id": "2"}}
        assert graph.invoke(ask("what is my name?"), other_user)["messages"][-1].content == "User info: "


def test_async_store_in_an_async_graph(tmp_path: Path) -> None:
    async def main() -> None:
        async with async_sqlite_store(tmp_path) as store:
            graph = chatbot(store, acall_model)
            await graph.ainvoke(ask("Remember: my name is Bob"), {"configurable": {"thread_id": "1", "user_id": "u"}})
            out = await graph.ainvoke(ask("what is my name?"), {"configurable": {"thread_id": "2", "user_id": "u"}})
            assert out["messages"][-1].content == "User info: User name is Bob"

    asyncio.run(main())


@pytest.mark.parametrize("how", ["runtime", "get_store", "unannotated", "concrete"])
def test_every_way_a_node_reaches_the_store(how: str) -> None:
    store = InMemoryStore()
    store.put(("ns",), "k", {"v": 1})
    seen: list[Any] = []

    def by_runtime(state: MessagesState, runtime: Runtime[None]) -> dict[str, Any]:
        seen.append(runtime.store)
        return {}

    def by_get_store(state: MessagesState) -> dict[str, Any]:
        seen.append(get_store())
        return {}

    def unannotated(state, store):  # type: ignore[no-untyped-def]
        seen.append(store)
        return {}

    def concrete(state: MessagesState, store: InMemoryStore) -> dict[str, Any]:
        seen.append(store)
        return {}

    nodes = {"runtime": by_runtime, "get_store": by_get_store, "unannotated": unannotated, "concrete": concrete}
    builder = StateGraph(MessagesState)
    builder.add_node("node", nodes[how])
    builder.add_edge(START, "node")
    builder.compile(store=store).invoke(ask("hi"))
    assert seen == [store]
