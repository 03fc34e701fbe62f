"""Fixtures of the command-line tests: databases written by real graph runs, and a way to run `graphrt`."""

from __future__ import annotations

import io
import operator
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import pytest

from graphrt.checkpoint.sqlite import SqliteSaver
from graphrt.cli import main
from graphrt.graph import END, START, MessagesState, StateGraph
from graphrt.messages import AIMessage, HumanMessage
from graphrt.store.sqlite import SqliteStore
from graphrt.types import Command, interrupt


class ChatState(MessagesState):
    notes: Annotated[list[str], operator.add]
    profile: dict[str, Any]


def chat(state: ChatState) -> dict[str, Any]:
    last = state["messages"][-1]
    turn = len(state["messages"])
    return {
        "messages": [AIMessage(content=f"hi {last.content}", id=f"ai-{turn}")],
        "notes": ["chat"],
        "profile": {"name": last.content, "turns": turn},
    }


def ask(state: ChatState) -> dict[str, Any]:
    answer = interrupt({"question": "ok?"})
    return {"notes": [f"answer:{answer}"]}


def build_chat() -> StateGraph:
    builder = StateGraph(ChatState)
    builder.add_node(chat)
    builder.add_node(ask)
    builder.add_edge(START, "chat")
    builder.add_edge("chat", "ask")
    builder.add_edge("ask", END)
    return builder


@dataclass
class Result:
    code: int
    out: str
    err: str


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def run_cli(*args: str, stdin: str = "", tty: bool = False) -> Result:
    """Run `graphrt ARGS` in this process with the given stdin; stdout/stderr are captured (not a terminal)."""
    out: io.StringIO = FakeTty() if tty else io.StringIO()
    err = io.StringIO()
    saved = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin), out, err
    try:
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture
def chat_db(tmp_path: Path) -> Iterator[str]:
    """A SQLite file from real runs: "alice" (interrupted, then resumed), "bob" (waiting at its interrupt).

    Also store items under ("users", ...).
    """
    path = str(tmp_path / "chat.sqlite")
    with SqliteSaver.from_conn_string(path) as saver, SqliteStore.from_conn_string(path) as store:
        graph = build_chat().compile(checkpointer=saver, store=store)
        alice = {"configurable": {"thread_id": "alice", "user": "u1"}}
        graph.invoke({"messages": [HumanMessage(content="Alice", id="h1")]}, alice)
        graph.invoke(Command(resume="yes"), alice)
        bob = {"configurable": {"thread_id": "bob", "user": "u2"}}
        graph.invoke({"messages": [HumanMessage(content="Bob", id="h2")]}, bob)
        store.put(("users", "u1"), "prefs", {"theme": "dark", "n": 3})
        store.put(("users", "u2"), "prefs", {"theme": "light"})
        store.put(("docs",), "d1", {"kind": "note", "text": "owls hunt at night"})
    yield path
