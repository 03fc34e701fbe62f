"""Ready memory tools: a collection (create/update/delete/search) and a profile, scoped by a namespace template."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.embeddings import HashingEmbeddings
from graphrt.messages import AIMessage, HumanMessage
from graphrt.prebuilt import (
    ToolRuntime,
    create_agent,
    create_memory_tools,
    create_profile_tool,
    fill_namespace,
    update_profile,
)
from graphrt.store.memory import InMemoryStore
from tests.prebuilt._fake import FakeModel, ai

pytestmark = pytest.mark.timeout(30)


@dataclass
class Context:
    user_id: str


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def runtime(store: Any, context: Any = None, configurable: dict[str, Any] | None = None) -> ToolRuntime[Any, Any]:
    return ToolRuntime(
        state={},
        context=context,
        config={"configurable": configurable or {}},
        stream_writer=lambda _c: None,
        tool_call_id="c",
        store=store,
    )


def call(name: str, args: dict[str, Any], rt: ToolRuntime[Any, Any], mode: str) -> Any:
    tools = {t.name: t for t in create_memory_tools(("memories", "{user_id}"))}
    t = tools[name]
    payload = {**args, "runtime": rt}
    return t.invoke(payload) if mode == "sync" else anyio.run(t.ainvoke, payload)


def test_fill_namespace() -> None:
    assert fill_namespace(("memories", "{user_id}"), Context("u1")) == ("memories", "u1")
    assert fill_namespace(("m", "{user_id}"), {"user_id": "u2"}) == ("m", "u2")
    assert fill_namespace(("m", "{org}-{user_id}"), Context("u3"), {"configurable": {"org": "acme"}}) == (
        "m",
        "acme-u3",
    )
    with pytest.raises(KeyError, match=r"needs 'user_id': pass it in the run's context"):
        fill_namespace(("memories", "{user_id}"), None, {"configurable": {}})


def test_collection_create_update_delete_search(mode: str) -> None:
    store = InMemoryStore()
    rt = runtime(store, Context("u1"))
    created = call("manage_memory", {"content": "User likes tea"}, rt, mode)
    key = created.removeprefix("Created memory ")
    assert store.get(("memories", "u1"), key).value == {"content": "User likes tea"}  # type: ignore[union-attr]
    call("manage_memory", {"content": "User lives in Paris"}, rt, mode)
    found = json.loads(call("search_memory", {}, rt, mode))
    assert sorted(m["content"] for m in found) == ["User likes tea", "User lives in Paris"]
    assert call("manage_memory", {"content": "User likes coffee", "action": "update", "id": key}, rt, mode) == (
        f"Updated memory {key}"
    )
    assert store.get(("memories", "u1"), key).value == {"content": "User likes coffee"}  # type: ignore[union-attr]
    assert call("manage_memory", {"action": "delete", "id": key}, rt, mode) == f"Deleted memory {key}"
    assert [m["content"] for m in json.loads(call("search_memory", {}, rt, mode))] == ["User lives in Paris"]
    # Another user sees nothing; the model's mistakes come back as text it can act on.
    assert json.loads(call("search_memory", {}, runtime(store, None, {"user_id": "u2"}), mode)) == []
    assert call("manage_memory", {"action": "update", "content": "x", "id": "nope"}, rt, mode).startswith(
        "Error: no memory with id 'nope'"
    )
    assert call("manage_memory", {"action": "delete"}, rt, mode) == "Error: give the id of the memory to delete."


def test_schema_hides_the_runtime_and_types_the_content() -> None:
    class Fact(BaseModel):
        subject: str
        fact: str

    manage, search = create_memory_tools(schema=Fact)
    assert set(manage.args) == {"content", "action", "id"}
    assert set(search.args) == {"query", "limit", "offset"}
    store = InMemoryStore()
    manage.invoke({"content": {"subject": "user", "fact": "likes tea"}, "runtime": runtime(store, Context("u"))})
    assert [i.value for i in store.search(("memories", "u"))] == [{"content": {"subject": "user", "fact": "likes tea"}}]


def test_search_is_semantic_with_an_indexed_store() -> None:
    store = InMemoryStore(index={"embed": HashingEmbeddings(dims=64), "dims": 64})
    rt = runtime(store, Context("u"))
    for text in ("User likes green tea", "User's dog is called Rex"):
        call("manage_memory", {"content": text}, rt, "sync")
    best = json.loads(call("search_memory", {"query": "dog called Rex", "limit": 1}, rt, "sync"))
    assert [m["content"] for m in best] == ["User's dog is called Rex"]


def test_memory_tools_in_an_agent_use_the_run_context_and_store(mode: str) -> None:
    store = InMemoryStore()
    model = FakeModel(
        [
            ai("", ("manage_memory", {"content": "Name is Bob"}, "m1")),
            AIMessage("Noted."),
            ai("", ("search_memory", {"query": "name"}, "s1")),
            AIMessage("You are Bob."),
        ]
    )
    agent = create_agent(
        model, create_memory_tools(), store=store, context_schema=Context, checkpointer=InMemorySaver()
    )

    def go(text: str, thread: str) -> Any:
        config = {"configurable": {"thread_id": thread}}
        input = {"messages": [HumanMessage(text)]}
        if mode == "sync":
            return agent.invoke(input, config, context=Context("bob"))
        return anyio.run(lambda: agent.ainvoke(input, config, context=Context("bob")))

    go("remember my name is Bob", "1")
    out = go("what is my name?", "2")
    assert json.loads(out["messages"][2].content)[0]["content"] == "Name is Bob"
    assert [i.value for i in store.search(("memories", "bob"))] == [{"content": "Name is Bob"}]


class Profile(BaseModel):
    name: str | None = None
    location: str | None = None
    interests: list[str] = []


def test_profile_tool_merges_into_one_document(mode: str) -> None:
    store = InMemoryStore()
    t = create_profile_tool(Profile)
    assert set(t.args) == {"profile"}
    rt = runtime(store, Context("u"))
    run = t.invoke if mode == "sync" else (lambda payload: anyio.run(t.ainvoke, payload))
    run({"profile": {"name": "Ann"}, "runtime": rt})
    run({"profile": {"location": "Oslo", "interests": ["ski"]}, "runtime": rt})
    assert [i.key for i in store.search(("profile", "u"))] == ["profile"]
    assert store.get(("profile", "u"), "profile").value == {  # type: ignore[union-attr]
        "name": "Ann",
        "location": "Oslo",
        "interests": ["ski"],
    }


def test_update_profile_with_structured_output() -> None:
    store = InMemoryStore()
    store.put(("profile", "u"), "profile", {"name": "Ann", "location": None, "interests": []})
    model = FakeModel([], structured=[Profile(name="Ann", location="Oslo", interests=["ski"])])
    got = update_profile(
        model, Profile, [HumanMessage("I live in Oslo and ski")], store=store, namespace=("profile", "u")
    )
    assert got == Profile(name="Ann", location="Oslo", interests=["ski"])
    assert store.get(("profile", "u"), "profile").value == got.model_dump()  # type: ignore[union-attr]
    schema, messages = model.structured_calls[0]
    assert schema is Profile
    assert '"name": "Ann"' in messages[0].content and messages[1].content == "I live in Oslo and ski"


def test_memory_tools_without_a_store_say_so() -> None:
    manage, _ = create_memory_tools()
    with pytest.raises(ValueError, match="Memory tools need a store"):
        manage.invoke({"content": "x", "runtime": runtime(None, Context("u"))})
