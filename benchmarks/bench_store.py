"""Store benchmarks: graphrt's stores against LangGraph's (when `langgraph` is importable), per op per backend.

Workloads on each backend (in-memory, SQLite, and PostgreSQL when `PG_DSN` names a server whose role may
create tables): a vector query over 10,000 items of 384 dimensions, a filtered search without a query over
10,000 items, single puts, puts that embed their text, puts batched 100 to a call, and gets. Embeddings are
precomputed random vectors looked up by text, so the numbers measure the stores, not a model. Prints
microseconds per operation (best of several rounds) and the ratio LangGraph / graphrt.

    /tmp/lg/venv/bin/python benchmarks/bench_store.py     # any Python with numpy, orjson and anyio
    PG_DSN=postgresql://postgres@127.0.0.1:5432/postgres /tmp/lg/venv/bin/python benchmarks/bench_store.py
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

N, DIMS, BATCH = 10_000, 384, 100
RNG = np.random.default_rng(7)
VECTORS = RNG.standard_normal((N + 64, DIMS)).astype(np.float32)


def embed(texts: list[str]) -> list[list[float]]:
    """Texts are "doc <i>"; return row i of the fixed random matrix."""
    return VECTORS[[int(t.split()[1]) for t in texts]].tolist()


INDEX: dict[str, Any] = {"dims": DIMS, "embed": embed, "fields": ["text"]}
COLORS = ["red", "green", "blue", "black"]


def doc(i: int) -> dict[str, Any]:
    return {"text": f"doc {i}", "color": COLORS[i % 4], "n": i % 10, "meta": {"i": i}}


def per_op(run: Callable[[], Any], ops_per_run: int, seconds: float = 1.0) -> float:
    """Microseconds per operation: best of a few timed rounds after a warm-up call."""
    run()
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while True:
        start = time.perf_counter()
        run()
        best = min(best, (time.perf_counter() - start) / ops_per_run * 1e6)
        if time.perf_counter() > deadline:
            return best


def fill(store: Any, put_op: Any, count: int = N) -> None:
    for start in range(0, count, 500):
        store.batch([put_op(("docs", f"u{i % 4}"), f"k{i}", doc(i)) for i in range(start, min(count, start + 500))])


@contextlib.contextmanager
def stores(lib: str, folder: str) -> Iterator[dict[str, tuple[Any, Any, bool]]]:
    """Store name -> (indexed store, plain store, vector search works)."""
    if lib == "graphrt":
        from graphrt.store.memory import InMemoryStore
        from graphrt.store.sqlite import SqliteStore
    else:
        from langgraph.store.memory import InMemoryStore  # type: ignore[no-redef]
        from langgraph.store.sqlite import SqliteStore  # type: ignore[no-redef]
    with contextlib.ExitStack() as stack:
        made: dict[str, tuple[Any, Any, bool]] = {
            "memory": (InMemoryStore(index=INDEX), InMemoryStore(), True)  # type: ignore[arg-type]
        }
        plain = stack.enter_context(SqliteStore.from_conn_string(os.path.join(folder, f"{lib}-plain.db")))
        plain.setup()
        indexed: Any = None
        if lib == "graphrt":
            indexed = stack.enter_context(
                SqliteStore.from_conn_string(os.path.join(folder, f"{lib}-v.db"), index=INDEX)
            )  # type: ignore[arg-type]
            indexed.setup()
        # LangGraph's SqliteStore needs the sqlite-vec extension for vectors; this Python cannot load it.
        made["sqlite"] = (indexed, plain, indexed is not None)
        dsn = os.environ.get("PG_DSN")
        if dsn:
            if lib == "graphrt":
                from graphrt.store.postgres import PostgresStore
            else:
                from langgraph.store.postgres import PostgresStore  # type: ignore[no-redef]
            pg = stack.enter_context(PostgresStore.from_conn_string(dsn))
            pg.setup()
            made["postgres"] = (None, pg, False)  # vectors need pgvector on both sides: not compared here
        yield made


def measure(lib: str) -> dict[str, float]:
    if lib == "graphrt":
        from graphrt.store.base import PutOp
    else:
        from langgraph.store.base import PutOp  # type: ignore[no-redef,assignment]
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder, stores(lib, folder) as made:
        for name, (indexed, plain, vectors) in made.items():
            if indexed is not None:
                fill(indexed, PutOp)
            if vectors:
                q = iter(range(10**9))
                results[f"{name}: vector query, 10k x 384"] = per_op(
                    lambda s=indexed, q=q: s.search(("docs",), query=f"doc {N + next(q) % 64}", limit=10), 1
                )
                results[f"{name}: vector query + filter"] = per_op(
                    lambda s=indexed: s.search(("docs",), query=f"doc {N}", filter={"color": "red"}, limit=10), 1
                )
            fill(plain, PutOp)
            flt = {"color": "red", "n": {"$gt": 5}}
            results[f"{name}: filtered search, 10k"] = per_op(
                lambda s=plain, f=flt: s.search(("docs",), filter=f, limit=10), 1
            )
            results[f"{name}: search newest 10"] = per_op(lambda s=plain: s.search(("docs", "u1"), limit=10), 1)
            results[f"{name}: get"] = per_op(lambda s=plain: s.get(("docs", "u1"), "k4001"), 1)
            counter = iter(range(10**9))
            if indexed is not None:
                results[f"{name}: put with index (embeds)"] = per_op(
                    lambda s=indexed, c=counter: s.put(("docs", "new"), f"e{next(c)}", doc(N + next(c) % 64)),
                    1,
                    seconds=0.5,
                )
            results[f"{name}: put (one per call)"] = per_op(
                lambda s=plain, c=counter: s.put(("docs", "new"), f"p{next(c)}", doc(1)), 1, seconds=0.5
            )
            results[f"{name}: put (batched x{BATCH})"] = per_op(
                lambda s=plain, c=counter: s.batch(
                    [PutOp(("docs", "new"), f"b{next(c)}", doc(i)) for i in range(BATCH)]
                ),
                BATCH,
                seconds=0.5,
            )
    return results


def main() -> None:
    ours = measure("graphrt")
    try:
        import langgraph.store.memory  # noqa: F401

        theirs: dict[str, float] | None = measure("langgraph")
    except ImportError:
        theirs = None
    print(f"{'operation':40} {'graphrt us':>12} {'langgraph us':>13} {'ratio':>7}")
    for name, value in ours.items():
        other = theirs.get(name) if theirs else None
        other_text = f"{other:13.1f}" if other is not None else f"{'n/a':>13}"
        ratio = f"{other / value:6.1f}x" if other is not None else f"{'':>7}"
        print(f"{name:40} {value:12.1f} {other_text} {ratio}")
    print("ratio = LangGraph time / graphrt time (higher is better for graphrt)")


if __name__ == "__main__":
    main()
