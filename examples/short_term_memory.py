"""Short-term memory (the seeds' "Add short-term memory"): a chat graph with a checkpointer and a thread.

Run: python examples/short_term_memory.py [--saver memory|sqlite] [--async] [--db PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path
from typing import Any

from _model import chat_model, describe, name_chat_script

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.graph import START, MessagesState, StateGraph

model = chat_model(name_chat_script())


def call_model(state: MessagesState) -> dict:
    response = model.invoke(state["messages"])
    return {"messages": response}


async def acall_model(state: MessagesState) -> dict:
    response = await model.ainvoke(state["messages"])
    return {"messages": response}


def build(checkpointer: Any, use_async: bool) -> Any:
    builder = StateGraph(MessagesState)
    builder.add_node("call_model", acall_model if use_async else call_model)
    builder.add_edge(START, "call_model")
    return builder.compile(checkpointer=checkpointer)


config = {"configurable": {"thread_id": "1"}}
QUESTIONS = ("hi! I'm bob", "what's my name?")


def run_sync(graph: Any) -> None:
    for text in QUESTIONS:
        for chunk in graph.stream({"messages": [{"role": "user", "content": text}]}, config, stream_mode="values"):
            chunk["messages"][-1].pretty_print()


async def run_async(graph: Any) -> None:
    for text in QUESTIONS:
        async for chunk in graph.astream(
            {"messages": [{"role": "user", "content": text}]}, config, stream_mode="values"
        ):
            chunk["messages"][-1].pretty_print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--saver", choices=("memory", "sqlite"), default="memory")
    parser.add_argument("--async", dest="use_async", action="store_true")
    parser.add_argument("--db", help="SQLite file (default: a fresh temporary file)")
    args = parser.parse_args()
    print(f"Model: {describe(model)}; saver: {args.saver}; {'async' if args.use_async else 'sync'}")
    if args.saver == "memory":
        graph = build(InMemorySaver(), args.use_async)
        asyncio.run(run_async(graph)) if args.use_async else run_sync(graph)
        return
    db = args.db or str(Path(tempfile.mkdtemp()) / "checkpoints.sqlite")
    if args.use_async:
        from graphrt.checkpoint.sqlite.aio import AsyncSqliteSaver

        async def go() -> None:
            async with AsyncSqliteSaver.from_conn_string(db) as checkpointer:
                await run_async(build(checkpointer, True))

        asyncio.run(go())
    else:
        from graphrt.checkpoint.sqlite import SqliteSaver

        with SqliteSaver.from_conn_string(db) as checkpointer:
            run_sync(build(checkpointer, False))


if __name__ == "__main__":
    main()
