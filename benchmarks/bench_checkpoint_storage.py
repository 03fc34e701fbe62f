"""Checkpoint storage benchmark: a long chat thread saved by graphrt's SqliteSaver and LangGraph's.

A 500-turn conversation, two messages (about 300 bytes each) added per turn, saved the way a graph run
saves it: each turn reads the thread's newest checkpoint, appends the user's and the assistant's message
to `messages`, and puts a checkpoint whose only changed channel is `messages`. Both savers get the same
calls on a SQLite file. Reported per saver:

- put time near turn 10 and near turn 500 (median over ten turns, and the mean over the last 64 turns,
  which includes graphrt's periodic snapshot), and their ratio;
- bytes written: the payload stored (checkpoint, metadata and value bytes; nothing is ever deleted, so
  this is everything the saver wrote) and the database file's size.

    python benchmarks/bench_checkpoint_storage.py                 # graphrt (+ LangGraph if importable)
    LG_PYTHON=/tmp/lg/venv/bin/python python benchmarks/bench_checkpoint_storage.py

Not a timed test: numbers vary with the machine; compare ratios, run it twice.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

TURNS = 500
TEXT = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt. " * 3


def run(lib: str, turns: int = TURNS) -> dict[str, Any]:
    """Play the conversation against `lib`'s SqliteSaver; returns timings and sizes."""
    if lib == "langgraph":
        from langchain_core.messages import AIMessage, HumanMessage
        from langgraph.checkpoint.base import empty_checkpoint
        from langgraph.checkpoint.sqlite import SqliteSaver
    else:
        from graphrt.checkpoint.base import empty_checkpoint
        from graphrt.checkpoint.sqlite import SqliteSaver
        from graphrt.messages import AIMessage, HumanMessage

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "chat.sqlite")
        with SqliteSaver.from_conn_string(path) as saver:
            config: Any = {"configurable": {"thread_id": "chat", "checkpoint_ns": ""}}
            put_ms, get_ms = [], []
            version = None
            for turn in range(turns):
                t0 = time.perf_counter()
                head = saver.get_tuple(config)
                get_ms.append((time.perf_counter() - t0) * 1000)
                messages = list(head.checkpoint["channel_values"]["messages"]) if head else []
                messages = [
                    *messages,
                    HumanMessage(content=f"{turn}: {TEXT}", id=f"h{turn}"),
                    AIMessage(content=f"{turn}: {TEXT}", id=f"a{turn}"),
                ]
                version = saver.get_next_version(version, None)
                checkpoint = empty_checkpoint()
                checkpoint["channel_values"] = {"messages": messages}
                checkpoint["channel_versions"] = {"messages": version}
                checkpoint["versions_seen"] = {"agent": {"messages": version}}
                metadata: Any = {"source": "loop", "step": turn}
                t0 = time.perf_counter()
                config = saver.put(config, checkpoint, metadata, {"messages": version})
                put_ms.append((time.perf_counter() - t0) * 1000)
            final = saver.get_tuple(config)
            assert final is not None and len(final.checkpoint["channel_values"]["messages"]) == 2 * turns
            payload = _payload_bytes(saver.conn, lib)
            saver.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        file_bytes = os.path.getsize(path)
    return {
        "lib": lib,
        "put_ms_turn10": statistics.median(put_ms[5:15]),
        "put_ms_turn500": statistics.median(put_ms[-10:]),
        "put_ms_last64_mean": statistics.mean(put_ms[-64:]),
        "get_ms_turn500": statistics.median(get_ms[-10:]),
        "payload_bytes": payload,
        "file_bytes": file_bytes,
    }


def _payload_bytes(conn: Any, lib: str) -> int:
    if lib == "langgraph":
        queries = [
            "SELECT SUM(LENGTH(checkpoint) + LENGTH(metadata)) FROM checkpoints",
            "SELECT SUM(LENGTH(value)) FROM writes",
        ]
    else:
        queries = [
            "SELECT SUM(LENGTH(checkpoint) + LENGTH(metadata)) FROM graphrt_checkpoints",
            "SELECT SUM(LENGTH(blob)) FROM graphrt_checkpoint_blobs",
            "SELECT SUM(LENGTH(blob)) FROM graphrt_checkpoint_writes",
        ]
    return sum(conn.execute(q).fetchone()[0] or 0 for q in queries)


def _langgraph() -> dict[str, Any] | None:
    try:
        import langgraph.checkpoint.sqlite  # noqa: F401
    except ImportError:
        python = os.environ.get("LG_PYTHON")
        if not python:
            return None
        out = subprocess.run(
            [python, __file__, "--lib", "langgraph"], check=True, capture_output=True, text=True
        ).stdout
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return result
    return run("langgraph")


def main() -> None:
    if "--lib" in sys.argv:
        print(json.dumps(run(sys.argv[sys.argv.index("--lib") + 1])))
        return
    results = [run("graphrt")]
    if (lg := _langgraph()) is not None:
        results.append(lg)
    print(f"{TURNS}-turn chat thread, 2 messages per turn, one checkpoint per turn, SQLite file\n")
    header = f"{'saver':<10} {'put@10 ms':>10} {'put@500 ms':>11} {'500/10':>7} {'last64 ms':>10} "
    header += f"{'get@500 ms':>11} {'payload':>12} {'file':>12}"
    print(header)
    for r in results:
        print(
            f"{r['lib']:<10} {r['put_ms_turn10']:>10.3f} {r['put_ms_turn500']:>11.3f} "
            f"{r['put_ms_turn500'] / r['put_ms_turn10']:>7.2f} {r['put_ms_last64_mean']:>10.3f} "
            f"{r['get_ms_turn500']:>11.3f} {r['payload_bytes']:>12,} {r['file_bytes']:>12,}"
        )
    if len(results) == 2:
        grt, lg = results
        print(
            f"\nLangGraph/graphrt: payload bytes {lg['payload_bytes'] / grt['payload_bytes']:.1f}x, "
            f"file size {lg['file_bytes'] / grt['file_bytes']:.1f}x, "
            f"put@500 {lg['put_ms_turn500'] / grt['put_ms_turn500']:.1f}x"
        )


if __name__ == "__main__":
    main()
