"""Long-term memory (the seeds' "Add long-term memory"): a node reads `config["configurable"]["user_id"]`
and the injected store; "Remember: my name is Bob" on thread 1 is recalled on thread 2.

Run: python examples/long_term_memory.py
"""

from __future__ import annotations

import uuid

from _model import chat_model, describe, name_chat_script

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.config import RunnableConfig
from graphrt.graph import START, MessagesState, StateGraph
from graphrt.store.base import BaseStore
from graphrt.store.memory import InMemoryStore

model = chat_model(name_chat_script())


def call_model(
    state: MessagesState,
    config: RunnableConfig,
    *,
    store: BaseStore,  # the store the graph was compiled with
) -> dict:
    user_id = config["configurable"]["user_id"]
    namespace = ("memories", user_id)
    memories = store.search(namespace, query=str(state["messages"][-1].content))
    info = "\n".join([d.value["data"] for d in memories])
    system_msg = f"You are a helpful assistant talking to the user. User info: {info}"

    # Store new memories if the user asks the model to remember
    last_message = state["messages"][-1]
    if "remember" in last_message.content.lower():
        memory = "User name is Bob"
        store.put(namespace, str(uuid.uuid4()), {"data": memory})

    response = model.invoke([{"role": "system", "content": system_msg}] + state["messages"])
    return {"messages": response}


builder = StateGraph(MessagesState)
builder.add_node(call_model)
builder.add_edge(START, "call_model")

checkpointer = InMemorySaver()
store = InMemoryStore()

graph = builder.compile(checkpointer=checkpointer, store=store)

if __name__ == "__main__":
    print(f"Model: {describe(model)}")
    config = {"configurable": {"thread_id": "1", "user_id": "1"}}
    for chunk in graph.stream(
        {"messages": [{"role": "user", "content": "Hi! Remember: my name is Bob"}]}, config, stream_mode="values"
    ):
        chunk["messages"][-1].pretty_print()

    config = {"configurable": {"thread_id": "2", "user_id": "1"}}
    for chunk in graph.stream(
        {"messages": [{"role": "user", "content": "what is my name?"}]}, config, stream_mode="values"
    ):
        chunk["messages"][-1].pretty_print()
