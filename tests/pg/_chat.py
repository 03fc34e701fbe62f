"""A one-node chat graph: each turn appends one reply to a list channel (what the saver tests count)."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

from graphrt.checkpoint.postgres import PostgresSaver
from graphrt.graph import START, StateGraph


class Chat(TypedDict, total=False):
    log: Annotated[list[str], operator.add]


def chat_graph(saver: PostgresSaver) -> Any:
    def reply(state: Chat) -> Chat:
        return {"log": [f"reply {len(state.get('log', []))}"]}

    builder: Any = StateGraph(Chat)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    return builder.compile(checkpointer=saver)
