"""A chatbot that remembers: short-term memory per thread, long-term memory per user, one SQLite file.

Run:
    python examples/memory_chatbot.py          # the demo: tells it a fact on one thread, then a second
                                               # process asks on another thread and it remembers
    python examples/memory_chatbot.py --chat   # talk to it; the thread continues across runs

Checkpoints (each thread's conversation) and the store (each user's memories, searched semantically with
the offline embedder `graphrt.embeddings.StaticEmbeddings`) live in one SQLite file: `--db PATH`, else
`$GRAPHRT_CHATBOT_DB`, else `~/.graphrt/memory_chatbot.sqlite`. The model is Claude when
`ANTHROPIC_API_KEY` is set, an OpenAI-compatible model when `OPENAI_API_KEY` is set, and otherwise a
scripted stand-in that says it is one.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _model import chat_model, describe

from graphrt.checkpoint.sqlite import SqliteSaver
from graphrt.graph import START, MessagesState, StateGraph
from graphrt.messages import AIMessage, SystemMessage
from graphrt.models import ScriptedChatModel
from graphrt.prebuilt import ToolNode, create_memory_tools, tools_condition
from graphrt.runtime import Runtime
from graphrt.store.base import BaseStore
from graphrt.store.sqlite import SqliteStore

NAMESPACE = ("memories", "{user_id}")


@dataclass
class Context:
    user_id: str


# ---------------------------------------------------------------- the scripted stand-in (no provider key)


def _as_fact(text: str) -> str:
    fact = re.split(r"(?i)remember(?: that)?:?", text, maxsplit=1)[-1].strip().rstrip(".!")
    rules = ((r"(?i)\bmy\b", "User's"), (r"(?i)\bI am\b|\bI'm\b", "User is"), (r"\bI have\b", "User has"))
    for pattern, replacement in (*rules, (r"\bI (\w+)", r"User \1s"), (r"\bI\b", "User")):
        fact = re.sub(pattern, replacement, fact)
    return fact[:1].upper() + fact[1:]


def _remember(messages: list[Any]) -> AIMessage:
    call = {"name": "manage_memory", "args": {"content": _as_fact(messages[-1].text)}, "id": None}
    return AIMessage("", tool_calls=[call])


def _recall(messages: list[Any]) -> str:
    known = messages[0].text.split("What you remember about the user:", 1)[-1] if messages else ""
    name = re.search(r"name is (\w+)", known)
    if "name" in messages[-1].text.lower():
        return f"Your name is {name.group(1)}." if name else "I don't know your name yet. Tell me to remember it!"
    facts = [line.strip("- ").strip() for line in known.splitlines() if line.startswith("- ")]
    return "Here is what I remember about you: " + "; ".join(facts) if facts else "I don't remember anything yet."


SCRIPTED = ScriptedChatModel(
    rules=[
        (lambda m: m[-1].type == "tool", "Got it, I'll remember that."),
        (r"(?i)\bremember\b(?! about)", _remember),
        (r"(?i)what('s| is) my name|what do you (know|remember)", _recall),
    ],
    default='(scripted) I can remember facts (say "remember: ...") and recall them (ask "what is my name?").',
)

# ---------------------------------------------------------------- the graph

model = chat_model(SCRIPTED)
memory_tools = create_memory_tools(NAMESPACE)
assistant = model.bind_tools(memory_tools)

INSTRUCTIONS = (
    "You are a friendly assistant with long-term memory. When the user asks you to remember something, call "
    "manage_memory to save it as a short fact in the third person. Use what you remember to answer.\n"
    "What you remember about the user:\n"
)


def chat(state: MessagesState, runtime: Runtime[Context], *, store: BaseStore) -> dict:
    namespace = ("memories", runtime.context.user_id)
    found = store.search(namespace, query=state["messages"][-1].text, limit=5)
    known = "\n".join(f"- {item.value['content']}" for item in found) or "(nothing yet)"
    return {"messages": [assistant.invoke([SystemMessage(INSTRUCTIONS + known), *state["messages"]])]}


def build(checkpointer: SqliteSaver, store: SqliteStore) -> Any:
    builder = StateGraph(MessagesState, context_schema=Context)
    builder.add_node(chat)
    builder.add_node("tools", ToolNode(memory_tools))
    builder.add_edge(START, "chat")
    builder.add_conditional_edges("chat", tools_condition)
    builder.add_edge("tools", "chat")
    return builder.compile(checkpointer=checkpointer, store=store)


def embedder() -> tuple[Any, str]:
    """The shipped offline embedder; without `tokenizers` installed, the hashing one (word overlap only)."""
    from graphrt.embeddings import HashingEmbeddings, StaticEmbeddings

    try:
        return StaticEmbeddings(), "StaticEmbeddings (offline semantic model shipped with graphrt)"
    except ImportError:
        return HashingEmbeddings(), "HashingEmbeddings (pip install 'graphrt[embeddings]' for semantic search)"


@contextmanager
def open_graph(db: Path) -> Iterator[tuple[Any, SqliteStore, str]]:
    db.parent.mkdir(parents=True, exist_ok=True)
    embed, label = embedder()
    index = {"embed": embed, "dims": embed.dims, "fields": ["content"]}
    with SqliteSaver.from_conn_string(str(db)) as saver, SqliteStore.from_conn_string(str(db), index=index) as store:
        yield build(saver, store), store, label


# ---------------------------------------------------------------- printing


def turn(graph: Any, text: str, thread: str, user: str) -> None:
    """One user message; prints it and everything the graph added, as `pretty_print()` shows messages."""
    config = {"configurable": {"thread_id": thread}}
    for chunk in graph.stream(
        {"messages": [{"role": "user", "content": text}]}, config, stream_mode="values", context=Context(user)
    ):
        chunk["messages"][-1].pretty_print()


def show_history(graph: Any, thread: str) -> None:
    print(f"\n--- checkpoint history of thread {thread!r} (newest first) ---")
    print(f"{'step':>4}  {'source':<6}  {'next':<10}  {'messages':>8}  checkpoint_id")
    for snap in graph.get_state_history({"configurable": {"thread_id": thread}}):
        meta, next_nodes = snap.metadata or {}, ",".join(snap.next) or "-"
        count = len(snap.values.get("messages", []))
        print(
            f"{meta.get('step', '?'):>4}  {meta.get('source', '?'):<6}  {next_nodes:<10}  {count:>8}  "
            f"{snap.config['configurable']['checkpoint_id']}"
        )


def show_memories(store: SqliteStore, user: str) -> None:
    print(f"\n--- memories of user {user!r} in the store, namespace ('memories', {user!r}) ---")
    items = store.search(("memories", user), limit=100)
    for item in items:
        print(f"{item.key}  {item.value['content']!r}  (saved {item.created_at:%Y-%m-%d %H:%M:%S})")
    if not items:
        print("(none)")


def default_db() -> Path:
    return Path(os.environ.get("GRAPHRT_CHATBOT_DB") or Path.home() / ".graphrt" / "memory_chatbot.sqlite")


# ---------------------------------------------------------------- the two modes


def demo(db: Path, user: str) -> None:
    remember_thread, recall_thread = f"remember-{uuid.uuid4().hex[:6]}", f"recall-{uuid.uuid4().hex[:6]}"
    with open_graph(db) as (graph, store, label):
        print(f"Model: {describe(model)}\nEmbeddings: {label}")
        print(f"Data: {db} (checkpoints and memories in one SQLite file)")
        for item in store.search(("memories", user), limit=1000):  # the demo starts its user afresh
            store.delete(("memories", user), item.key)
        print(f"\n=== process {os.getpid()}: thread {remember_thread!r}, user {user!r} ===")
        turn(graph, "Hi! Remember: my name is Bob", remember_thread, user)
        show_history(graph, remember_thread)
    sys.stdout.flush()
    subprocess.run(
        [sys.executable, __file__, "--recall", "--db", str(db), "--user", user, "--thread", recall_thread],
        check=True,
    )
    print(f"\nEverything above is in {db}. Talk to the bot with: python {sys.argv[0]} --chat")


def recall(db: Path, user: str, thread: str) -> None:
    with open_graph(db) as (graph, store, _label):
        print(f"\n=== process {os.getpid()} (a new process): thread {thread!r}, user {user!r} ===")
        turn(graph, "what is my name?", thread, user)
        show_history(graph, thread)
        show_memories(store, user)


def interactive(db: Path, user: str, thread: str) -> None:
    with open_graph(db) as (graph, store, label):
        config = {"configurable": {"thread_id": thread}}
        so_far = graph.get_state(config).values.get("messages", [])
        print(f"Model: {describe(model)}\nEmbeddings: {label}\nData: {db}")
        print(
            f"Thread {thread!r}, user {user!r}: "
            + (f"continuing, {len(so_far)} messages so far." if so_far else "new.")
        )
        print('Type a message ("remember: ..." saves a fact); an empty line or "exit" ends the session.')
        while True:
            print("you> ", end="", flush=True)
            line = sys.stdin.readline()
            if not sys.stdin.isatty() and line:
                print(line.rstrip("\n"))
            if not line or line.strip().lower() in ("", "exit", "quit"):
                break
            before = len(graph.get_state(config).values.get("messages", []))
            graph.invoke({"messages": [{"role": "user", "content": line.strip()}]}, config, context=Context(user))
            for message in graph.get_state(config).values["messages"][before + 1 :]:
                message.pretty_print()
        show_memories(store, user)
        print(f"\nThe conversation is saved in {db}; run --chat again to continue thread {thread!r}.")


def main() -> None:
    parser = argparse.ArgumentParser(description="A chatbot with short- and long-term memory in one SQLite file.")
    parser.add_argument("--chat", action="store_true", help="talk to it (the thread continues across runs)")
    parser.add_argument("--recall", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, default=None, help="the SQLite file (default: %(default)s)")
    parser.add_argument("--user", default=None, help="whose memories (default: 'demo', or 'me' with --chat)")
    parser.add_argument("--thread", default="chat", help="the conversation to continue with --chat")
    args = parser.parse_args()
    db = args.db or default_db()
    if args.recall:
        recall(db, args.user or "demo", args.thread)
    elif args.chat:
        interactive(db, args.user or "me", args.thread)
    else:
        demo(db, args.user or "demo")


if __name__ == "__main__":
    main()
