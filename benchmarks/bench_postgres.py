"""PostgreSQL benchmarks: graphrt's PostgresSaver/PostgresStore side by side with LangGraph's, on one server.

Measures, for each side in its own process and its own fresh database:
- chain: milliseconds per superstep of a 100-node chain (one node per step), median of 5 invokes;
- chat: milliseconds per turn of a 200-turn chat thread (median of all turns, and of the first and last 20,
  to show whether a turn's cost grows with the thread);
- store: microseconds per `put` and per `get` (medians over 300 operations), and per `aput`/`aget` of the
  async store (`AsyncPostgresStore.from_conn_string`);
- throughput (graphrt only unless --lg-throughput): threads completed per second by N worker processes
  (N = 1, 2, 4, 8), each with its own connections, each running 3-node graphs on its own threads.

The server is `GRAPHRT_BENCH_PG_DSN` when set; otherwise a throwaway durable local server (fsync on), the
same one the tests start (`tests/_pg.py`). LangGraph runs in `LG_PYTHON` (skipped when it is
not set).

    python benchmarks/bench_postgres.py
    python benchmarks/bench_postgres.py --quick          # fewer repetitions
    python benchmarks/bench_postgres.py --no-fsync       # local server without fsync (commits cost no disk flush)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import operator
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

ROOT = Path(__file__).resolve().parents[1]
CHAIN = 100
TURNS = 200
STORE_OPS = 300
TEXT = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt " * 2


class Counter(TypedDict, total=False):
    n: int
    log: Annotated[list[str], operator.add]


def modules(impl: str) -> Any:
    if impl == "langgraph":
        from langchain_core.messages import AIMessage, HumanMessage
        from langgraph.checkpoint.postgres import PostgresSaver
        from langgraph.graph import START, MessagesState, StateGraph
        from langgraph.store.postgres import PostgresStore
        from langgraph.store.postgres.aio import AsyncPostgresStore
    else:
        from graphrt.checkpoint.postgres import PostgresSaver  # type: ignore[assignment]
        from graphrt.graph import START, MessagesState, StateGraph  # type: ignore[assignment]
        from graphrt.messages import AIMessage, HumanMessage  # type: ignore[assignment]
        from graphrt.store.postgres import PostgresStore  # type: ignore[assignment]
        from graphrt.store.postgres.aio import AsyncPostgresStore  # type: ignore[assignment]
    return argparse.Namespace(
        AIMessage=AIMessage,
        HumanMessage=HumanMessage,
        PostgresSaver=PostgresSaver,
        PostgresStore=PostgresStore,
        AsyncPostgresStore=AsyncPostgresStore,
        START=START,
        MessagesState=MessagesState,
        StateGraph=StateGraph,
    )


def chain_graph(m: Any, saver: Any, length: int) -> Any:
    builder = m.StateGraph(Counter)

    def step(state: Counter) -> Counter:
        return {"n": state.get("n", 0) + 1}

    for i in range(length):
        builder.add_node(f"n{i}", step)
        builder.add_edge(m.START if i == 0 else f"n{i - 1}", f"n{i}")
    return builder.compile(checkpointer=saver)


def chat_graph(m: Any, saver: Any) -> Any:
    def reply(state: Any) -> dict[str, Any]:
        return {"messages": [m.AIMessage(content=f"reply {len(state['messages'])}: {TEXT}")]}

    builder = m.StateGraph(m.MessagesState)
    builder.add_node("reply", reply)
    builder.add_edge(m.START, "reply")
    return builder.compile(checkpointer=saver)


def measure(impl: str, dsn: str, quick: bool) -> dict[str, float]:
    m = modules(impl)
    out: dict[str, float] = {}
    with m.PostgresSaver.from_conn_string(dsn) as saver:
        saver.setup()
        graph = chain_graph(m, saver, CHAIN)
        times = []
        for i in range(3 if quick else 5):
            start = time.perf_counter()
            graph.invoke({"n": 0}, {"configurable": {"thread_id": f"chain{i}"}, "recursion_limit": CHAIN + 10})
            times.append((time.perf_counter() - start) / CHAIN * 1000)
        out["chain ms/step"] = statistics.median(times)

        chat = chat_graph(m, saver)
        config = {"configurable": {"thread_id": "chat"}}
        turns = []
        for i in range(TURNS):
            start = time.perf_counter()
            chat.invoke({"messages": [m.HumanMessage(content=f"turn {i}: {TEXT}")]}, config)
            turns.append((time.perf_counter() - start) * 1000)
        out["chat ms/turn"] = statistics.median(turns)
        out["chat ms/turn, turns 1-20"] = statistics.median(turns[:20])
        out["chat ms/turn, turns 181-200"] = statistics.median(turns[-20:])

    with m.PostgresStore.from_conn_string(dsn) as store:
        store.setup()
        value = {"text": TEXT, "n": 1}
        puts, gets = [], []
        for i in range(STORE_OPS):
            start = time.perf_counter()
            store.put(("users", "u1"), f"k{i}", value)
            puts.append((time.perf_counter() - start) * 1e6)
        for i in range(STORE_OPS):
            start = time.perf_counter()
            store.get(("users", "u1"), f"k{i}")
            gets.append((time.perf_counter() - start) * 1e6)
        out["store put us"] = statistics.median(puts)
        out["store get us"] = statistics.median(gets)
    out.update(asyncio.run(measure_async_store(m, dsn)))
    return out


async def measure_async_store(m: Any, dsn: str) -> dict[str, float]:
    async with m.AsyncPostgresStore.from_conn_string(dsn) as store:
        await store.setup()
        value = {"text": TEXT, "n": 2}
        puts, gets = [], []
        for i in range(STORE_OPS):
            start = time.perf_counter()
            await store.aput(("users", "u2"), f"k{i}", value)
            puts.append((time.perf_counter() - start) * 1e6)
        for i in range(STORE_OPS):
            start = time.perf_counter()
            await store.aget(("users", "u2"), f"k{i}")
            gets.append((time.perf_counter() - start) * 1e6)
    return {"async store aput us": statistics.median(puts), "async store aget us": statistics.median(gets)}


def worker(impl: str, dsn: str, name: str, runs: int, go_at: float) -> None:
    """One throughput worker: `runs` invokes of a 3-node graph, each on a new thread of its own."""
    m = modules(impl)
    with m.PostgresSaver.from_conn_string(dsn) as saver:
        graph = chain_graph(m, saver, 3)
        graph.invoke({"n": 0}, {"configurable": {"thread_id": f"{name}-warm"}})
        while time.time() < go_at:
            time.sleep(0.001)
        start = time.time()
        for i in range(runs):
            graph.invoke({"n": 0}, {"configurable": {"thread_id": f"{name}-{i}"}})
        print(json.dumps({"start": start, "end": time.time()}))


def throughput(python: str, impl: str, dsn: str, procs: int, runs: int) -> float:
    go_at = time.time() + 3.0 + procs * 0.5  # every worker imported and connected before the clock starts
    cmd = [python, __file__, "--worker", impl, "--dsn", dsn, "--runs", str(runs), "--go-at", str(go_at)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)} if impl == "graphrt" else dict(os.environ)
    children = [
        subprocess.Popen([*cmd, "--name", f"w{p}"], cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
        for p in range(procs)
    ]
    spans = []
    for child in children:
        out, _ = child.communicate(timeout=600)
        assert child.returncode == 0, f"throughput worker failed ({impl})"
        spans.append(json.loads(out.strip().splitlines()[-1]))
    wall = max(s["end"] for s in spans) - min(s["start"] for s in spans)
    return procs * runs / wall


def server_dsn(durable: bool) -> tuple[str, Any]:
    dsn = os.environ.get("GRAPHRT_BENCH_PG_DSN")
    if dsn:
        return dsn, None
    sys.path.insert(0, str(ROOT))
    from tests._pg import LocalServer

    server = LocalServer(durable=durable)
    server.start()
    return server.dsn, server


def fresh_database(admin_dsn: str, name: str) -> str:
    import psycopg
    import psycopg.conninfo

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    params = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    params["dbname"] = name
    return psycopg.conninfo.make_conninfo("", **params)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--impl", choices=("graphrt", "langgraph"))
    parser.add_argument("--dsn")
    parser.add_argument("--worker")
    parser.add_argument("--name", default="w")
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--go-at", type=float, default=0.0)
    parser.add_argument("--lg-throughput", action="store_true")
    parser.add_argument("--no-fsync", action="store_true", help="local server without fsync: round trips, not disk")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.dsn, args.name, args.runs, args.go_at)
        return
    if args.impl:
        print(json.dumps(measure(args.impl, args.dsn, args.quick)))
        return

    lg_python = os.environ.get("LG_PYTHON", "")
    admin, server = server_dsn(not args.no_fsync)
    try:
        sides: dict[str, dict[str, float]] = {}
        for impl, python in (("graphrt", sys.executable), ("langgraph", lg_python)):
            if not python:
                continue
            dsn = fresh_database(admin, f"bench_{impl}")
            cmd = [python, __file__, "--impl", impl, "--dsn", dsn] + (["--quick"] if args.quick else [])
            env = {**os.environ, "PYTHONPATH": str(ROOT)} if impl == "graphrt" else dict(os.environ)
            out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, check=True).stdout
            sides[impl] = json.loads(out.strip().splitlines()[-1])
        ours, theirs = sides["graphrt"], sides.get("langgraph")
        print(f"{'measure':32} {'graphrt':>10} {'langgraph':>10} {'x better':>9}")
        for key, value in ours.items():
            other = theirs.get(key) if theirs else None
            ratio = f"{other / value:9.1f}" if other else ""
            print(f"{key:32} {value:10.3f} {other if other is not None else float('nan'):10.3f} {ratio}")
        runs = 30 if args.quick else 100
        impls = [("graphrt", sys.executable)] + ([("langgraph", lg_python)] if args.lg_throughput and lg_python else [])
        for impl, python in impls:
            for procs in (1, 2, 4, 8):
                dsn = fresh_database(admin, f"bench_tp_{impl}_{procs}")
                if impl == "graphrt":
                    from graphrt.checkpoint.postgres import PostgresSaver

                    with PostgresSaver.from_conn_string(dsn) as saver:
                        saver.setup()
                else:
                    setup = "import sys; from langgraph.checkpoint.postgres import PostgresSaver as S\n"
                    setup += "with S.from_conn_string(sys.argv[1]) as s: s.setup()"
                    subprocess.run([python, "-c", setup, dsn], check=True)
                rate = throughput(python, impl, dsn, procs, runs)
                print(f"throughput {impl:9} N={procs}: {rate:8.1f} threads/s")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
