"""The course's two shapes of long-term memory, on the store (the seeds' "Chatbot with Profile Schema" and
"Chatbot with Collection Schema").

* Profile: one document per user. After each turn a node extracts the profile from the conversation with
  `model.with_structured_output(UserProfile)` (`graphrt.prebuilt.update_profile`), and the next thread's
  system prompt shows it.
* Collection: many memories per user. An agent gets `create_memory_tools(("memories", "{user_id}"))` and
  decides itself what to save, update or delete, and when to search.

Run: python examples/profile_and_collection.py
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from _model import chat_model, describe
from pydantic import BaseModel, Field

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.config import RunnableConfig
from graphrt.graph import END, START, MessagesState, StateGraph
from graphrt.messages import AIMessage, SystemMessage
from graphrt.models import ScriptedChatModel
from graphrt.prebuilt import create_agent, create_memory_tools, update_profile
from graphrt.store.base import BaseStore
from graphrt.store.memory import InMemoryStore


class UserProfile(BaseModel):
    """What we know about the user."""

    user_name: str | None = Field(default=None, description="The user's preferred name")
    interests: list[str] = Field(default_factory=list, description="A list of the user's interests")


# ------------------------------------------------------------------ scripted stand-in for a real model


def _facts(text: str) -> list[str]:
    return [f.strip() for f in re.findall(r"(?:I like to|and) ([^.,]+?)(?= and |[.,]|$)", text)]


def _profile_from(messages: list[Any]) -> dict[str, Any]:
    saved = json.loads(messages[0].text.split("Current profile: ", 1)[1].replace("(empty)", "{}"))
    text = " ".join(m.text for m in messages if m.type == "human")
    name = re.search(r"my name is (\w+)", text, re.IGNORECASE)
    interests = saved.get("interests", []) + [f for f in _facts(text) if f not in saved.get("interests", [])]
    return {"user_name": name.group(1) if name else saved.get("user_name"), "interests": interests}


def _profile_name(messages: list[Any]) -> str | None:
    found = re.search(r"my name is (\w+)", messages[-1].text, re.IGNORECASE)
    return found.group(1) if found else None


def _recommend(messages: list[Any]) -> str:
    system = messages[0].text if messages and messages[0].type == "system" else ""
    return f"(scripted) From what I know about you: {system.split(':', 1)[-1].strip()} - try Arsicault Bakery."


def _save_facts(messages: list[Any]) -> AIMessage:
    calls = [
        {"name": "manage_memory", "args": {"content": f"User likes to {f}"}, "id": None}
        for f in _facts(messages[-1].text)
    ]
    return AIMessage("", tool_calls=calls)


def _from_search(messages: list[Any]) -> str:
    found = [m["content"] for m in json.loads(messages[-1].text)]
    return "You told me: " + "; ".join(found) if found else "I don't know anything about you yet."


scripted = ScriptedChatModel(
    rules=[
        (lambda m: m[0].type == "system" and m[0].text.startswith("Update the user's profile"), _profile_from),
        (lambda m: m[-1].type == "tool" and m[-1].name == "search_memory", _from_search),
        (lambda m: m[-1].type == "tool", "Got it, I saved that."),
        (
            r"(?i)what do you know about me",
            AIMessage("", tool_calls=[{"name": "search_memory", "args": {}, "id": None}]),
        ),
        (r"(?i)recommend", _recommend),
        (lambda m: "Save what you learn" in m[0].text and "I like to" in m[-1].text, _save_facts),
    ],
    default=lambda m: f"(scripted) Nice to meet you{', ' + n if (n := _profile_name(m)) else ''}!",
)
model = chat_model(scripted)

# ------------------------------------------------------------------ profile: one document per user


def call_model(state: MessagesState, config: RunnableConfig, *, store: BaseStore) -> dict:
    saved = store.get(("profile", config["configurable"]["user_id"]), "profile")
    known = json.dumps(saved.value) if saved else "nothing yet"
    system = SystemMessage(f"You are a helpful assistant with memory. What you know about the user: {known}")
    return {"messages": [model.invoke([system, *state["messages"]])]}


def write_memory(state: MessagesState, config: RunnableConfig, *, store: BaseStore) -> dict:
    namespace = ("profile", config["configurable"]["user_id"])
    update_profile(model, UserProfile, state["messages"], store=store, namespace=namespace)
    return {}


builder = StateGraph(MessagesState)
builder.add_node(call_model)
builder.add_node(write_memory)
builder.add_edge(START, "call_model")
builder.add_edge("call_model", "write_memory")
builder.add_edge("write_memory", END)
profile_store = InMemoryStore()
profile_graph = builder.compile(checkpointer=InMemorySaver(), store=profile_store)

# ------------------------------------------------------------------ collection: many memories per user


@dataclass
class Context:
    user_id: str


collection_store = InMemoryStore()
collection_agent = create_agent(
    model,
    create_memory_tools(("memories", "{user_id}")),
    system_prompt="You are a helpful assistant. Save what you learn about the user; search before answering.",
    store=collection_store,
    context_schema=Context,
    checkpointer=InMemorySaver(),
)


def chat(graph: Any, text: str, thread: str, **kwargs: Any) -> None:
    config = {"configurable": {"thread_id": thread, "user_id": "lance"}}
    for chunk in graph.stream(
        {"messages": [{"role": "user", "content": text}]}, config, stream_mode="values", **kwargs
    ):
        chunk["messages"][-1].pretty_print()


if __name__ == "__main__":
    print(f"Model: {describe(model)}")
    print("--- profile ---")
    chat(profile_graph, "Hi, my name is Lance. I like to bike around San Francisco and eat at bakeries.", "1")
    print("profile:", profile_store.get(("profile", "lance"), "profile").value)  # type: ignore[union-attr]
    chat(profile_graph, "What bakeries do you recommend for me?", "2")
    print("--- collection ---")
    chat(collection_agent, "I like to bike around San Francisco and eat at bakeries.", "1", context=Context("lance"))
    print("memories:", sorted(i.value["content"] for i in collection_store.search(("memories", "lance"))))
    chat(collection_agent, "What do you know about me?", "2", context=Context("lance"))
