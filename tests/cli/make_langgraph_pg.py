"""Write LangGraph's PostgreSQL tables for the import test; run it with a Python that has LangGraph.

    /path/to/langgraph-venv/bin/python tests/cli/make_langgraph_pg.py DSN

Threads "t-2" (left at its interrupt) and "t-3" (resumed with "yes") as in `make_langgraph_db.py`, and one
store item.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import make_langgraph_db
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.store.postgres import PostgresStore
from langgraph.types import Command


def main(dsn: str) -> None:
    with PostgresSaver.from_conn_string(dsn) as saver, PostgresStore.from_conn_string(dsn) as store:
        saver.setup()
        store.setup()
        store.put(("users", "u1"), "prefs", {"theme": "dark", "n": 3})
        graph = make_langgraph_db.build().compile(checkpointer=saver, store=store)
        for thread_id, resume in (("t-2", False), ("t-3", True)):
            config = {"configurable": {"thread_id": thread_id}}
            graph.invoke({"messages": [HumanMessage(content="Ann", id="h2")]}, config)
            if resume:
                graph.invoke(Command(resume="yes"), config)


if __name__ == "__main__":
    main(sys.argv[1])
