"""Redis saver benchmark: the 100-node chain and a 200-turn chat thread on Redis beside SQLite, PostgreSQL and memory.

Uses `GRAPHRT_BENCH_REDIS_URL` when set (its database is flushed), else starts a throwaway
`redis-server` (AOF on, `appendfsync everysec`, as the tests run it) on a free loopback port. PostgreSQL is
`GRAPHRT_TEST_PG_DSN`'s server when set, else a throwaway local one (`tests/_pg.py`, as the tests start it; its
row is left out when neither is available).

LangGraph's own `RedisSaver` is not measured here: it needs the RediSearch and RedisJSON modules
(Redis Stack), which Debian's `redis-server` does not ship.

The async section runs the chain with `ainvoke` and async nodes: `AsyncRedisSaver` (native on
`redis.asyncio`) beside `RedisSaver`, whose `a*` methods run the sync saver on a worker thread (what
`AsyncRedisSaver` did before it was native).

    python benchmarks/bench_redis.py            # prints a table
    python benchmarks/bench_redis.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypedDict

CHAIN = 100
TURNS = 200
TEXT = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt " * 2
SAVERS = ("memory", "sqlite", "postgres", "redis")


@contextmanager
def redis_url() -> Iterator[str]:
    url = os.environ.get("GRAPHRT_BENCH_REDIS_URL")
    if url:
        yield url
        return
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    folder = tempfile.mkdtemp(prefix="graphrt-bench-redis-")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", folder, "--appendonly", "yes"]
    proc = subprocess.Popen([*args, "--save", ""], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(port=port)
        for _ in range(500):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.01)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def postgres_databases() -> Iterator[Any]:
    """`tests._pg`'s databases (a fresh one per saver), or None when no PostgreSQL can be had."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests._pg import Unavailable, provide

    try:
        with provide() as databases:
            yield databases
    except Unavailable:
        yield None


_PG: Any = None
"""The PostgreSQL databases of this run (set by `main`)."""


@contextmanager
def open_saver(kind: str, folder: Path, url: str) -> Iterator[Any]:
    from graphrt.checkpoint.memory import InMemorySaver
    from graphrt.checkpoint.redis import RedisSaver
    from graphrt.checkpoint.sqlite import SqliteSaver

    if kind == "memory":
        yield InMemorySaver()
    elif kind == "sqlite":
        with SqliteSaver.from_conn_string(str(folder / f"{time.monotonic_ns()}.sqlite")) as saver:
            yield saver
    elif kind == "postgres":
        from graphrt.checkpoint.postgres import PostgresSaver

        with _PG.fresh() as dsn, PostgresSaver.from_conn_string(dsn) as saver:
            saver.setup()
            yield saver
    else:
        with RedisSaver.from_conn_string(url) as saver:
            saver.client.flushdb()
            yield saver


def chain_graph(saver: Any) -> Any:
    from graphrt.graph import END, START, StateGraph

    class Chain(TypedDict):
        x: int

    builder = StateGraph(Chain)
    for i in range(CHAIN):
        builder.add_node(f"n{i}", lambda s: {"x": s["x"] + 1})
        builder.add_edge(START if i == 0 else f"n{i - 1}", f"n{i}")
    builder.add_edge(f"n{CHAIN - 1}", END)
    return builder.compile(checkpointer=saver)


def chat_graph(saver: Any) -> Any:
    from graphrt.graph import START, StateGraph
    from graphrt.graph.message import add_messages
    from graphrt.messages import AIMessage

    class Chat(TypedDict):
        messages: Annotated[list[Any], add_messages]

    def reply(state: Chat) -> dict[str, Any]:
        return {"messages": [AIMessage(content=f"reply {len(state['messages'])}: {TEXT}")]}

    builder = StateGraph(Chat)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    return builder.compile(checkpointer=saver)


def bench_chain(kind: str, folder: Path, url: str, repeat: int = 5) -> float:
    """Median µs per superstep of the 100-node chain, a new thread per run."""
    times = []
    with open_saver(kind, folder, url) as saver:
        graph = chain_graph(saver)
        for i in range(repeat + 1):
            config = {"configurable": {"thread_id": f"chain-{i}"}, "recursion_limit": CHAIN + 10}
            start = time.perf_counter()
            assert graph.invoke({"x": 0}, config)["x"] == CHAIN
            if i:  # the first run warms up
                times.append((time.perf_counter() - start) / (CHAIN + 1) * 1e6)
    return statistics.median(times)


def async_chain_graph(saver: Any) -> Any:
    from graphrt.graph import END, START, StateGraph

    class Chain(TypedDict):
        x: int

    async def step(s: Chain) -> Chain:
        return {"x": s["x"] + 1}

    builder = StateGraph(Chain)
    for i in range(CHAIN):
        builder.add_node(f"n{i}", step)
        builder.add_edge(START if i == 0 else f"n{i - 1}", f"n{i}")
    builder.add_edge(f"n{CHAIN - 1}", END)
    return builder.compile(checkpointer=saver)


def bench_async_chain(kind: str, url: str, repeat: int = 7) -> float:
    """Median µs per superstep of the 100-node chain under `ainvoke`: "native" (`AsyncRedisSaver`) or
    "threaded" (`RedisSaver`, its async methods on a worker thread)."""
    import asyncio

    import redis.asyncio

    from graphrt.checkpoint.redis import RedisSaver
    from graphrt.checkpoint.redis.aio import AsyncRedisSaver

    async def run(saver: Any) -> list[float]:
        graph = async_chain_graph(saver)
        times = []
        for i in range(repeat + 1):
            config = {"configurable": {"thread_id": f"achain-{kind}-{i}"}, "recursion_limit": CHAIN + 10}
            start = time.perf_counter()
            assert (await graph.ainvoke({"x": 0}, config))["x"] == CHAIN
            if i:
                times.append((time.perf_counter() - start) / (CHAIN + 1) * 1e6)
        return times

    async def native() -> list[float]:
        client = redis.asyncio.Redis.from_url(url)
        try:
            return await run(AsyncRedisSaver(client))
        finally:
            await client.aclose()

    if kind == "native":
        return statistics.median(asyncio.run(native()))
    with RedisSaver.from_conn_string(url) as saver:
        return statistics.median(asyncio.run(run(saver)))


def bench_chat(kind: str, folder: Path, url: str) -> dict[str, float]:
    """ms per turn around turns 10, 100 and 200 (median of 10 turns) of one growing thread."""
    from graphrt.messages import HumanMessage

    times = []
    with open_saver(kind, folder, url) as saver:
        graph = chat_graph(saver)
        config = {"configurable": {"thread_id": "chat"}}
        for turn in range(1, TURNS + 1):
            start = time.perf_counter()
            out = graph.invoke({"messages": [HumanMessage(content=f"turn {turn}: {TEXT}")]}, config)
            times.append((time.perf_counter() - start) * 1e3)
        assert len(out["messages"]) == 2 * TURNS
    marks = {str(m): statistics.median(times[m - 10 : m]) for m in (10, 100, TURNS)}
    marks["mean"] = statistics.mean(times)
    return marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    global _PG
    results: dict[str, Any] = {}
    with redis_url() as url, tempfile.TemporaryDirectory() as tmp, postgres_databases() as _PG:
        folder = Path(tmp)
        savers = [kind for kind in SAVERS if kind != "postgres" or _PG is not None]
        for kind in savers:
            results[kind] = {
                "chain_us_per_step": bench_chain(kind, folder, url),
                "chat_ms": bench_chat(kind, folder, url),
            }
        for kind in ("threaded", "native", "threaded", "native"):  # alternated: the machine's load drifts
            results.setdefault(f"async_redis_{kind}", []).append(bench_async_chain(kind, url))
    if args.json:
        print(json.dumps(results))
        return
    print(f"100-node chain (µs/superstep) and {TURNS}-turn chat (ms/turn), graphrt savers\n")
    print("| saver | chain µs/step | chat turn 10 | chat turn 100 | chat turn 200 | chat mean |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind in SAVERS:
        if kind not in results:
            print(f"| {kind} | not measured (no PostgreSQL server) | | | | |")
            continue
        r = results[kind]
        chat = r["chat_ms"]
        print(
            f"| {kind} | {r['chain_us_per_step']:.0f} | {chat['10']:.2f} | {chat['100']:.2f} | "
            f"{chat[str(TURNS)]:.2f} | {chat['mean']:.2f} |"
        )
    threaded, native = (statistics.median(results[f"async_redis_{k}"]) for k in ("threaded", "native"))
    print(f"\n100-node chain under ainvoke (async nodes), µs/superstep: RedisSaver on a worker thread {threaded:.0f},")
    print(f"AsyncRedisSaver native {native:.0f} (threaded / native = {threaded / native:.2f}x)")
    print("\nLangGraph's RedisSaver: not measured (needs Redis Stack: RediSearch + RedisJSON modules).")


if __name__ == "__main__":
    main()
