"""PostgresStore vector search: recall@10 and latency of the pgvector HNSW path against exact search.

10,000 random 256-d vectors in 10 namespaces, 100 random queries, `limit=10`, cosine distance unless
`--distance`. `--data random` (the default) draws them from a standard normal, so no structure helps the index:
the hardest case for HNSW. `--data clustered` draws them near a 16-dimensional subspace, in 100 clusters, the way
text embeddings concentrate (queries from the same mixture, never equal to an item): closer to what a store
holds. For each path, in its own process and its own
fresh database on one server:

- graphrt hnsw: pgvector HNSW index (the default: m=16, ef_construction=64, ef_search=40), searched in SQL;
- graphrt flat: pgvector without an index (`ann_index_config={"kind": "flat"}`): an exact scan in SQL;
- graphrt exact: `pgvector=False`, the exact scan in numpy that a server without pgvector gets;
- langgraph: LangGraph's PostgresStore on the same data (when `LG_PYTHON` names a Python with LangGraph).

Recall@10 is |returned top 10 ∩ true top 10| / 10 (true top 10 from numpy in float64), averaged over the
queries, searching the whole store and one namespace (10% of the items). Latency is the median of the 100
searches in milliseconds, after one warm-up search.

    python benchmarks/bench_pgvector.py
    python benchmarks/bench_pgvector.py --count 2000 --queries 20     # quicker
    python benchmarks/bench_pgvector.py --sides graphrt-hnsw-ef40,graphrt-hnsw-ef200,graphrt-flat
    python benchmarks/bench_pgvector.py --data clustered
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_postgres import fresh_database, server_dsn  # noqa: E402  (its server and scratch databases)

SPACES = 10
K = 10
SIDES = ("graphrt-hnsw", "graphrt-flat", "graphrt-exact", "langgraph")
"""Paths measured by default; `graphrt-hnsw-ef<N>` (HNSW with `ef_search=N`) can be added with `--side`."""


def open_store(side: str, dsn: str, index: dict[str, Any]) -> Any:
    if side == "langgraph":
        from langgraph.store.postgres import PostgresStore as LangGraphStore

        return LangGraphStore.from_conn_string(dsn, index=index)  # type: ignore[arg-type]
    from graphrt.store.postgres import PostgresStore

    if side == "graphrt-flat":
        index = {**index, "ann_index_config": {"kind": "flat"}}
    elif side.startswith("graphrt-hnsw-ef"):
        index = {**index, "ann_index_config": {"kind": "hnsw", "ef_search": int(side.rsplit("ef", 1)[1])}}
    return PostgresStore.from_conn_string(dsn, index=index, pgvector=False if side == "graphrt-exact" else None)  # type: ignore[arg-type]


def make_data(kind: str, count: int, dims: int, queries: int) -> tuple[np.ndarray, np.ndarray]:
    """Items and queries (float32): standard normal (`random`), or a clustered low-dimensional mixture."""
    rng = np.random.default_rng(0)
    if kind == "random":
        return (
            rng.standard_normal((count, dims)).astype(np.float32),
            rng.standard_normal((queries, dims)).astype(np.float32),
        )
    latent, clusters = 16, 100
    basis = rng.standard_normal((latent, dims))
    centers = rng.standard_normal((clusters, latent)) * 2

    def draw(n: int) -> np.ndarray:
        points = centers[rng.integers(clusters, size=n)] + rng.standard_normal((n, latent))
        return (points @ basis + 0.3 * rng.standard_normal((n, dims))).astype(np.float32)

    return draw(count), draw(queries)


def truth(data: np.ndarray, query: np.ndarray, distance: str, rows: np.ndarray) -> list[int]:
    subset = data[rows].astype(np.float64)
    q = query.astype(np.float64)
    if distance == "cosine":
        scores = subset @ q / (np.linalg.norm(subset, axis=1) * np.linalg.norm(q))
    elif distance == "l2":
        scores = -np.linalg.norm(subset - q, axis=1)
    else:
        scores = subset @ q
    return [int(rows[i]) for i in np.argsort(-scores)[:K]]


def measure(side: str, dsn: str, data_path: str, distance: str) -> dict[str, float]:
    """Load the vectors into one store, then time the searches and score their recall."""
    blob = np.load(data_path)
    data, queries = blob["data"], blob["queries"]
    lookup = {f"v{i}": row.tolist() for i, row in enumerate(data)} | {
        f"q{i}": q.tolist() for i, q in enumerate(queries)
    }

    def embed(texts: list[str]) -> list[list[float]]:
        return [lookup[text] for text in texts]

    index = {"dims": data.shape[1], "embed": embed, "fields": ["id"], "distance_type": distance}
    result: dict[str, float] = {}
    with open_store(side, dsn, index) as store:
        store.setup()
        ops_module = __import__("langgraph.store.base" if side == "langgraph" else "graphrt.store.base", fromlist=["x"])
        started = time.perf_counter()
        for start in range(0, len(data), 500):
            ops = [
                ops_module.PutOp(("bench", str(i % SPACES)), f"k{i}", {"id": f"v{i}"})
                for i in range(start, min(start + 500, len(data)))
            ]
            store.batch(ops)
        result["load_s"] = time.perf_counter() - started
        everything = np.arange(len(data))
        for label, prefix, rows in (
            ("all", ("bench",), everything),
            ("one namespace", ("bench", "3"), everything[everything % SPACES == 3]),
        ):
            store.search(prefix, query="q0", limit=K)  # warm-up (the exact path loads its copy here)
            times, recalls = [], []
            for i in range(len(queries)):
                began = time.perf_counter()
                found = store.search(prefix, query=f"q{i}", limit=K)
                times.append(time.perf_counter() - began)
                want = set(truth(data, queries[i], distance, rows))
                recalls.append(len(want & {int(item.key[1:]) for item in found}) / K)
            result[f"{label}: recall@10"] = statistics.fmean(recalls)
            result[f"{label}: median ms"] = statistics.median(times) * 1000
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--dims", type=int, default=256)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--distance", choices=("cosine", "l2", "inner_product"), default="cosine")
    parser.add_argument("--data", choices=("random", "clustered"), default="random")
    parser.add_argument("--sides", default=",".join(SIDES), help="comma-separated; also graphrt-hnsw-ef<N>")
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--dsn")
    parser.add_argument("--vectors", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        print(json.dumps(measure(args.side, args.dsn, args.vectors, args.distance)))
        return

    lg_python = os.environ.get("LG_PYTHON", "")
    admin, server = server_dsn(durable=False)
    with tempfile.TemporaryDirectory() as folder:
        data_path = str(Path(folder) / "vectors.npz")
        data, queries = make_data(args.data, args.count, args.dims, args.queries)
        np.savez(data_path, data=data, queries=queries)
        try:
            results: dict[str, dict[str, float]] = {}
            for side in args.sides.split(","):
                python = lg_python if side == "langgraph" else sys.executable
                if not python:
                    continue
                dsn = fresh_database(admin, f"bench_{side.replace('-', '_')}")
                cmd = [python, __file__, "--side", side, "--dsn", dsn, "--vectors", data_path]
                cmd += ["--distance", args.distance]
                env = {**os.environ, "PYTHONPATH": str(ROOT)} if side != "langgraph" else dict(os.environ)
                out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=env, check=True).stdout
                results[side] = json.loads(out.strip().splitlines()[-1])
        finally:
            if server is not None:
                server.stop()
    print(f"{args.count} x {args.dims}-d {args.data} vectors, {args.queries} queries, {args.distance}, limit={K}")
    print(f"{'measure':28}" + "".join(f"{side:>15}" for side in results))
    for key in results["graphrt-hnsw"]:
        print(f"{key:28}" + "".join(f"{results[side].get(key, float('nan')):15.3f}" for side in results))


if __name__ == "__main__":
    main()
