"""The seeds' agents: tools that read and write the store through `ToolRuntime` (`runtime.store`,
`runtime.context.user_id`), with `create_agent(..., store=store, context_schema=Context)`.

Run: python examples/agent_user_info.py
"""

from __future__ import annotations

from dataclasses import dataclass

from _model import chat_model, describe
from typing_extensions import TypedDict

from graphrt.messages import AIMessage
from graphrt.models import ScriptedChatModel
from graphrt.prebuilt import ToolRuntime, create_agent
from graphrt.store.memory import InMemoryStore
from graphrt.tools import tool


@dataclass
class Context:
    user_id: str


# InMemoryStore saves data to an in-memory dictionary. Use a DB-backed store in production.
store = InMemoryStore()

# Write sample data to the store using the put method
store.put(
    ("users",),  # Namespace to group related data together (users namespace for user data)
    "user_123",  # Key within the namespace (user ID as key)
    {"name": "John Smith", "language": "English"},  # Data to store for the given user
)


@tool
def get_user_info(runtime: ToolRuntime[Context]) -> str:
    """Look up user info."""
    # Access the store - same as that provided to `create_agent`
    store = runtime.store
    user_id = runtime.context.user_id
    # Retrieve data from store - returns StoreValue object with value and metadata
    user_info = store.get(("users",), user_id)
    return str(user_info.value) if user_info else "Unknown user"


# TypedDict defines the structure of user information for the LLM
class UserInfo(TypedDict):
    name: str


# Tool that allows agent to update user information (useful for chat applications)
@tool
def save_user_info(user_info: UserInfo, runtime: ToolRuntime[Context]) -> str:
    """Save user info."""
    store = runtime.store
    user_id = runtime.context.user_id
    # Store data in the store (namespace, key, data)
    store.put(("users",), user_id, user_info)
    return "Successfully saved user info."


def _answer_from_tool(messages: list) -> str:
    return f"Here is what I found: {messages[-1].text}"


# Without a provider key the agent runs on this script: the tool calls a model would make, then answers.
scripted = ScriptedChatModel(
    rules=[
        (lambda m: m[-1].type == "tool" and m[-1].name == "get_user_info", _answer_from_tool),
        (lambda m: m[-1].type == "tool", "Done: I saved your name."),
        (r"(?i)look up", AIMessage("", tool_calls=[{"name": "get_user_info", "args": {}, "id": None}])),
        (
            r"(?i)my name is",
            lambda m: AIMessage(
                "",
                tool_calls=[
                    {
                        "name": "save_user_info",
                        "args": {"user_info": {"name": m[-1].text.split("is", 1)[1].strip()}},
                        "id": None,
                    }
                ],
            ),
        ),
    ]
)
model = chat_model(scripted)

if __name__ == "__main__":
    print(f"Model: {describe(model)}")
    agent = create_agent(model=model, tools=[get_user_info], store=store, context_schema=Context)
    result = agent.invoke(
        {"messages": [{"role": "user", "content": "look up user information"}]},
        context=Context(user_id="user_123"),
    )
    for message in result["messages"]:
        message.pretty_print()

    agent = create_agent(model=model, tools=[save_user_info], store=store, context_schema=Context)
    result = agent.invoke(
        {"messages": [{"role": "user", "content": "My name is John Smith"}]},
        # user_id passed in context to identify whose information is being updated
        context=Context(user_id="user_123"),
    )
    for message in result["messages"]:
        message.pretty_print()
    # You can access the store directly to get the value
    print("store:", store.get(("users",), "user_123").value)
