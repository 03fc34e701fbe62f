"""A two-node chat graph with thread memory, streamed with stream_mode="values".

Run: python examples/quickstart.py
"""

from __future__ import annotations

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.graph import START, MessagesState, StateGraph
from graphrt.messages import AIMessage


def reply(state: MessagesState) -> dict[str, list[AIMessage]]:
    """A stand-in for a chat model: it counts the user's turns."""
    turns = sum(1 for m in state["messages"] if m.type == "human")
    return {
        "messages": [AIMessage(f"You have said {turns} thing(s) so far; the last was: {state['messages'][-1].text}")]
    }


builder = StateGraph(MessagesState)
builder.add_node(reply)
builder.add_edge(START, "reply")
graph = builder.compile(checkpointer=InMemorySaver())

config = {"configurable": {"thread_id": "demo"}}
for text in ("hi, I'm Bob", "what's my name?"):
    for chunk in graph.stream({"messages": [{"role": "user", "content": text}]}, config, stream_mode="values"):
        chunk["messages"][-1].pretty_print()
