"""A worker process of the scale-out test: runs a counter graph on many threads of one PostgreSQL database.

Run as `python -m tests.pg._scale_worker <dsn> <worker id> <threads> <rounds>`; prints one JSON line
`{"runs": {thread_id: n, ...}, "seconds": ...}` with how many runs it completed on each thread.
"""

from __future__ import annotations

import json
import operator
import sys
import time
from typing import Annotated, Any, TypedDict

from graphrt.checkpoint.postgres import PostgresSaver
from graphrt.graph import START, StateGraph


class Counter(TypedDict, total=False):
    count: int
    log: Annotated[list[str], operator.add]


def build(saver: Any, worker: str) -> Any:
    def bump(state: Counter) -> Counter:
        # Read-modify-write of `count`: a lost update or a fork shows as count != len(log).
        return {"count": state.get("count", 0) + 1, "log": [worker]}

    builder = StateGraph(Counter)
    builder.add_node("bump", bump)
    builder.add_edge(START, "bump")
    return builder.compile(checkpointer=saver)


def main(argv: list[str]) -> None:
    dsn, worker, threads, rounds = argv[0], argv[1], int(argv[2]), int(argv[3])
    runs: dict[str, int] = {}
    started = time.perf_counter()
    with PostgresSaver.from_conn_string(dsn, pool_size=2) as saver:
        graph = build(saver, worker)
        for round_ in range(rounds):
            for i in range(threads):
                thread_id = f"t{(i + round_ + int(worker)) % threads}"
                config = {"configurable": {"thread_id": thread_id, "multitask_strategy": "enqueue"}}
                with saver.claim_thread(config):  # type: ignore[arg-type]
                    graph.invoke({"log": []}, config)
                runs[thread_id] = runs.get(thread_id, 0) + 1
    print(json.dumps({"runs": runs, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main(sys.argv[1:])
