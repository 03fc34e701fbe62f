"""Chat growth benchmark: does a thread's per-turn cost stay flat as its history grows?

A `MessagesState` chat graph with one node that appends an AIMessage per turn; each turn's input is one
HumanMessage, and every turn continues the same thread. Run for 500 turns on graphrt's SqliteSaver and
InMemorySaver and on LangGraph's, printing milliseconds per turn around turns 10, 100 and 500 and the
bytes the thread's checkpoints occupy after 500 turns (the SQLite file plus its WAL after a checkpoint;
for the memory savers, the sum of the stored serialized bytes).

Targets for graphrt: a turn at 500 costs within 1.5x of a turn at 10, and SQLite stores at least 20x
fewer bytes than LangGraph's SqliteSaver.

    python benchmarks/bench_chat_growth.py                  # graphrt (+ LangGraph if importable here)
    LG_PYTHON=/path/to/venv/bin/python python benchmarks/bench_chat_growth.py   # LangGraph from another venv
    python benchmarks/bench_chat_growth.py --impl langgraph --json             # one side, as JSON
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TURNS = 500
MARKS = (10, 100, 500)
WINDOW = 10
"""A mark's time is the median of the `WINDOW` turns ending at it (single turns are noisy)."""
TEXT = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt " * 2
"""About 180 characters per message, a short chat turn."""
SAVERS = ("sqlite", "memory")


def build(impl: str, saver: Any) -> tuple[Any, Any, Any]:
    """(compiled chat graph, HumanMessage, AIMessage) for `impl`."""
    if impl == "langgraph":
        from langchain_core.messages import AIMessage, HumanMessage
        from langgraph.graph import START, MessagesState, StateGraph
    else:
        from graphrt.graph import START, MessagesState, StateGraph
        from graphrt.messages import AIMessage, HumanMessage

    def reply(state: MessagesState) -> dict[str, Any]:
        turn = len(state["messages"]) // 2 + 1
        return {"messages": [AIMessage(content=f"reply {turn}: {TEXT}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    return builder.compile(checkpointer=saver), HumanMessage, AIMessage


@contextmanager
def open_saver(impl: str, kind: str, path: Path) -> Iterator[Any]:
    if impl == "langgraph":
        from langgraph.checkpoint.memory import InMemorySaver
        from langgraph.checkpoint.sqlite import SqliteSaver
    else:
        from graphrt.checkpoint.memory import InMemorySaver  # type: ignore[assignment]
        from graphrt.checkpoint.sqlite import SqliteSaver  # type: ignore[assignment]
    if kind == "memory":
        yield InMemorySaver()
        return
    with SqliteSaver.from_conn_string(str(path)) as saver:
        yield saver


def sqlite_bytes(path: Path) -> int:
    """The database's size on disk, WAL included, after checkpointing the WAL into the file."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    wal = Path(f"{path}-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def stored_bytes(value: Any, seen: set[int] | None = None) -> int:
    """Sum of the `bytes` reachable from an in-memory saver's storage (dicts, tuples, dataclasses)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    if isinstance(value, dict):
        return sum(stored_bytes(v, seen) for v in value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return sum(stored_bytes(v, seen) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(stored_bytes(getattr(value, f.name), seen) for f in dataclasses.fields(value))
    return 0


def measure(impl: str, kind: str, turns: int) -> dict[str, Any]:
    """Run `turns` turns on one thread; ms per turn at each mark and the bytes stored at the end."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "chat.sqlite"
        with open_saver(impl, kind, path) as saver:
            graph, human, _ = build(impl, saver)
            config = {"configurable": {"thread_id": "chat"}}
            times: list[float] = []
            for turn in range(1, turns + 1):
                start = time.perf_counter()
                out = graph.invoke({"messages": [human(content=f"turn {turn}: {TEXT}")]}, config)
                times.append((time.perf_counter() - start) * 1e3)
            assert len(out["messages"]) == 2 * turns
            if kind == "memory":
                holders = [getattr(saver, a, None) for a in ("storage", "writes", "blobs")]  # LangGraph's
                tables = getattr(saver, "_storage", None)  # graphrt's: a MemoryStorage of plain dicts
                if tables is not None:
                    holders += [tables.checkpoints_by_ns, tables.pending, tables.blob_rows]
                size = sum(stored_bytes(h) for h in holders)
        if kind == "sqlite":
            size = sqlite_bytes(path)
    marks = {str(m): statistics.median(times[max(0, m - WINDOW) : m]) for m in MARKS if m <= turns}
    return {"ms_per_turn": marks, "bytes": size, "total_s": sum(times) / 1e3}


def measure_all(impl: str, turns: int) -> dict[str, dict[str, Any]]:
    return {kind: measure(impl, kind, turns) for kind in SAVERS}


def langgraph_results(turns: int) -> dict[str, dict[str, Any]] | None:
    """LangGraph's figures: from `LG_PYTHON` in a subprocess, or in-process if importable; else None."""
    lg_python = os.environ.get("LG_PYTHON")
    try:
        if lg_python:
            out = subprocess.run(
                [lg_python, __file__, "--impl", "langgraph", "--json", "--turns", str(turns)],
                capture_output=True,
                text=True,
                check=True,
            )
            result: dict[str, dict[str, Any]] = json.loads(out.stdout)
            return result
        import langgraph  # noqa: F401

        return measure_all("langgraph", turns)
    except (ImportError, subprocess.CalledProcessError) as exc:
        print(f"LangGraph not measured: {exc}", file=sys.stderr)
        return None


def report(ours: dict[str, dict[str, Any]], theirs: dict[str, dict[str, Any]] | None, turns: int) -> None:
    marks = [m for m in MARKS if m <= turns]
    header = " | ".join(f"turn {m} ms" for m in marks)
    print(f"Chat thread, {turns} turns (one HumanMessage in, one AIMessage out per turn)\n")
    print(f"| implementation | saver | {header} | last / first | bytes after {turns} turns |")
    print("|---|---|" + "---:|" * (len(marks) + 2))
    rows = [("graphrt", ours)] + ([("LangGraph", theirs)] if theirs else [])
    for name, results in rows:
        for kind, r in results.items():
            ms = r["ms_per_turn"]
            cells = " | ".join(f"{ms[str(m)]:.2f}" for m in marks)
            growth = ms[str(marks[-1])] / ms[str(marks[0])]
            print(f"| {name} | {kind} | {cells} | {growth:.2f}x | {r['bytes']:,} |")
    if theirs:
        print("\n| saver | LangGraph / graphrt bytes | LangGraph / graphrt time at last mark |")
        print("|---|---:|---:|")
        for kind in SAVERS:
            size = theirs[kind]["bytes"] / max(ours[kind]["bytes"], 1)
            last = str(marks[-1])
            speed = theirs[kind]["ms_per_turn"][last] / ours[kind]["ms_per_turn"][last]
            print(f"| {kind} | {size:.1f}x | {speed:.1f}x |")
    sqlite = ours["sqlite"]["ms_per_turn"]
    growth = sqlite[str(marks[-1])] / sqlite[str(marks[0])]
    print(f"\nTarget: graphrt sqlite turn {marks[-1]} within 1.5x of turn {marks[0]}: {growth:.2f}x", end="")
    print(" (met)" if growth <= 1.5 else " (MISSED)")
    if theirs:
        ratio = theirs["sqlite"]["bytes"] / max(ours["sqlite"]["bytes"], 1)
        print(f"Target: at least 20x fewer SQLite bytes than LangGraph: {ratio:.1f}x", end="")
        print(" (met)" if ratio >= 20 else " (MISSED)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--impl", choices=("graphrt", "langgraph"), help="measure only this implementation")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--turns", type=int, default=TURNS)
    args = parser.parse_args()
    if args.impl:
        results = measure_all(args.impl, args.turns)
        print(json.dumps(results) if args.json else results)
        return
    ours = measure_all("graphrt", args.turns)
    report(ours, langgraph_results(args.turns), args.turns)


if __name__ == "__main__":
    main()
