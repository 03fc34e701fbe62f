"""Engine benchmarks: graphrt against LangGraph (when importable) and plain Python.

Workloads follow LangGraph's own bench shapes: a 100-node chain, a 200-way `Send` fan-out, and a
500-key state updated by 20 nodes. Prints microseconds per superstep (or per task) and the ratios.

    python benchmarks/bench_engine.py            # graphrt only (+ LangGraph if installed here)
    LG_PYTHON=/path/to/venv/bin/python python benchmarks/bench_engine.py   # LangGraph from another venv
"""

from __future__ import annotations

import json
import operator
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Annotated, Any, TypedDict

CHAIN, FANOUT, WIDE_KEYS, WIDE_NODES = 100, 200, 500, 20


def build(lib: str) -> dict[str, tuple[Callable[[], Any], int, str]]:
    """Workload name -> (run once, units per run, unit name)."""
    if lib == "langgraph":
        from langgraph.graph import END, START, StateGraph
        from langgraph.types import Send
    else:
        from graphrt.graph import END, START, StateGraph
        from graphrt.types import Send

    class Chain(TypedDict):
        x: int

    chain = StateGraph(Chain)
    for i in range(CHAIN):
        chain.add_node(f"n{i}", lambda s: {"x": s["x"] + 1})
        chain.add_edge(START if i == 0 else f"n{i - 1}", f"n{i}")
    chain.add_edge(f"n{CHAIN - 1}", END)
    chain_graph = chain.compile()

    class Fan(TypedDict):
        items: list[int]
        results: Annotated[list[int], operator.add]

    fan = StateGraph(Fan)
    fan.add_node("work", lambda s: {"results": [s["item"] * 2]})
    fan.add_conditional_edges(START, lambda s: [Send("work", {"item": i}) for i in s["items"]])
    fan.add_edge("work", END)
    fan_graph = fan.compile()

    wide_schema = TypedDict("Wide", {f"k{i}": int for i in range(WIDE_KEYS)})  # type: ignore[misc]
    wide = StateGraph(wide_schema)
    for n in range(WIDE_NODES):
        keys = [f"k{(n * 25 + j) % WIDE_KEYS}" for j in range(25)]
        wide.add_node(f"w{n}", lambda s, keys=keys: {k: s.get(k, 0) + 1 for k in keys})
        wide.add_edge(START if n == 0 else f"w{n - 1}", f"w{n}")
    wide.add_edge(f"w{WIDE_NODES - 1}", END)
    wide_graph = wide.compile()
    wide_input = {f"k{i}": 0 for i in range(WIDE_KEYS)}

    def run_chain() -> None:
        assert chain_graph.invoke({"x": 0}, {"recursion_limit": CHAIN + 10})["x"] == CHAIN

    def run_fan() -> None:
        out = fan_graph.invoke({"items": list(range(FANOUT)), "results": []})
        assert sorted(out["results"]) == [i * 2 for i in range(FANOUT)]

    def run_wide() -> None:
        assert sum(wide_graph.invoke(wide_input).values()) == WIDE_NODES * 25

    return {
        "chain_100": (run_chain, CHAIN + 1, "superstep"),
        "fanout_200": (run_fan, FANOUT, "task"),
        "wide_500x20": (run_wide, WIDE_NODES, "node"),
    }


def plain_floor() -> dict[str, float]:
    """The same computations as plain Python function calls (µs per unit)."""

    def step(s: dict[str, int]) -> dict[str, int]:
        return {"x": s["x"] + 1}

    def chain() -> None:
        s = {"x": 0}
        for _ in range(CHAIN):
            s = {**s, **step(s)}

    def fan() -> None:
        results: list[int] = []
        for i in range(FANOUT):
            results = [*results, i * 2]

    def wide() -> None:
        s = {f"k{i}": 0 for i in range(WIDE_KEYS)}
        for n in range(WIDE_NODES):
            s = {**s, **{f"k{(n * 25 + j) % WIDE_KEYS}": 1 for j in range(25)}}

    return {
        "chain_100": _time(chain) / (CHAIN + 1),
        "fanout_200": _time(fan) / FANOUT,
        "wide_500x20": _time(wide) / WIDE_NODES,
    }


def _time(func: Callable[[], Any], repeat: int = 7) -> float:
    """Median µs per call over `repeat` timed batches (after a warm-up call)."""
    func()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


def measure(lib: str) -> dict[str, float]:
    return {name: _time(run) / units for name, (run, units, _) in build(lib).items()}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--json":
        print(json.dumps(measure(sys.argv[2])))
        return
    ours = measure("graphrt")
    floor = plain_floor()
    theirs: dict[str, float] | None = None
    lg_python = os.environ.get("LG_PYTHON")
    try:
        if lg_python:
            out = subprocess.run(
                [lg_python, __file__, "--json", "langgraph"], capture_output=True, text=True, check=True
            )
            theirs = json.loads(out.stdout)
        else:
            import langgraph  # noqa: F401

            theirs = measure("langgraph")
    except (ImportError, subprocess.CalledProcessError):
        theirs = None
    units = {name: unit for name, (_, _, unit) in build("graphrt").items()}
    print("| workload | unit | graphrt µs | LangGraph µs | LangGraph / graphrt | graphrt / plain |")
    print("|---|---|---:|---:|---:|---:|")
    for name, value in ours.items():
        lg = f"{theirs[name]:.1f}" if theirs else "n/a"
        ratio = f"{theirs[name] / value:.1f}x" if theirs else "n/a"
        print(f"| {name} | {units[name]} | {value:.1f} | {lg} | {ratio} | {value / floor[name]:.0f}x |")


if __name__ == "__main__":
    main()
