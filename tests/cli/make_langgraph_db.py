"""Write LangGraph SQLite databases for the import tests; run it with a Python that has LangGraph.

    /path/to/langgraph-venv/bin/python tests/cli/make_langgraph_db.py tests/cli/data/langgraph.sqlite \
        tests/cli/data/langgraph_fanout.sqlite

Threads: "t-1" (finished: interrupted, then resumed with "yes"), "t-2" (left at its interrupt) and
"t-3" (the same input as "t-2", resumed with "yes" by LangGraph: what "t-2" must become once resumed
on graphrt). Store: two items under ("users", ...). The state holds messages with tool calls, a
datetime, a set and a UUID, so the import meets LangGraph's msgpack extension types.

The second database holds a step that did not finish: two `Send` tasks ("work") succeeded while the
"gate" node of the same step interrupted. "f-1" is left there; "f-2" was resumed with "yes" by LangGraph.
"""

from __future__ import annotations

import datetime
import operator
import sqlite3
import sys
import uuid
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.store.sqlite import SqliteStore
from langgraph.types import Command, Send, interrupt


class State(MessagesState):
    notes: Annotated[list[str], operator.add]
    when: datetime.datetime
    tags: set[str]
    ident: uuid.UUID


def chat(state: State) -> dict[str, Any]:
    reply = AIMessage(
        content="hi " + str(state["messages"][-1].content),
        id=f"ai-{len(state['messages'])}",
        tool_calls=[{"name": "lookup", "args": {"q": "x"}, "id": "call1"}],
    )
    when = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    return {"messages": [reply], "notes": ["chat"], "when": when, "tags": {"a"}, "ident": uuid.UUID(int=7)}


def tool(state: State) -> dict[str, Any]:
    return {"messages": [ToolMessage(content="42", tool_call_id="call1", id="tool-1")]}


def ask(state: State) -> dict[str, Any]:
    answer = interrupt({"question": "ok?"})
    return {"notes": [f"answer:{answer}"]}


def build() -> StateGraph:
    builder = StateGraph(State)
    builder.add_node(chat)
    builder.add_node(tool)
    builder.add_node(ask)
    builder.add_edge(START, "chat")
    builder.add_edge("chat", "tool")
    builder.add_edge("tool", "ask")
    builder.add_edge("ask", END)
    return builder


class FanState(TypedDict):
    results: Annotated[list[str], operator.add]
    answer: str


def fan_out(state: FanState) -> list[Any]:
    return [Send("work", "a"), Send("work", "b"), "gate"]


def work(arg: str) -> dict[str, Any]:
    return {"results": [f"done:{arg}"]}


def gate(state: FanState) -> dict[str, Any]:
    return {"answer": interrupt("go?")}


def fanout(path: str) -> None:
    builder = StateGraph(FanState)
    builder.add_node(work)
    builder.add_node(gate)
    builder.add_conditional_edges(START, fan_out, ["work", "gate"])
    builder.add_edge("work", END)
    builder.add_edge("gate", END)
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    graph = builder.compile(checkpointer=SqliteSaver(conn))
    for thread_id, resume in (("f-1", False), ("f-2", True)):
        config = {"configurable": {"thread_id": thread_id}}
        graph.invoke({"results": []}, config)
        if resume:
            graph.invoke(Command(resume="yes"), config)
    conn.execute("PRAGMA journal_mode = DELETE")  # one self-contained file: readers create no -wal/-shm
    conn.close()


def main(path: str) -> None:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    store = SqliteStore(conn)
    store.setup()
    store.put(("users", "u1"), "prefs", {"theme": "dark", "n": 3})
    store.put(("users", "u2"), "prefs", {"theme": "light"})
    graph = build().compile(checkpointer=SqliteSaver(conn), store=store)
    runs = (("t-1", "Bob", "h1", True), ("t-2", "Ann", "h2", False), ("t-3", "Ann", "h2", True))
    for thread_id, name, msg_id, resume in runs:
        config = {"configurable": {"thread_id": thread_id, "user": "u1" if name == "Bob" else "u2"}}
        graph.invoke({"messages": [HumanMessage(content=name, id=msg_id)]}, config)
        if resume:
            graph.invoke(Command(resume="yes"), config)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()


if __name__ == "__main__":
    main(sys.argv[1])
    if len(sys.argv) > 2:
        fanout(sys.argv[2])
