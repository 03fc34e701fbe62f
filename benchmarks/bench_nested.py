"""Nested-run benchmarks: subgraph fan-out and the functional API, graphrt against LangGraph and plain Python.

- `subgraph_fanout_100[.memory]`: a parent sends 100 items to a compiled 3-node subgraph (LangGraph's own
  `fanout_to_subgraph` shape), without and with an `InMemorySaver`; µs per subgraph call.
- `functional_N`: an `@entrypoint` calling a trivial `@task` N times (N = 10, 100, 1000) with an
  `InMemorySaver`; µs per task, to show the per-task cost stays flat as a run grows.

    python benchmarks/bench_nested.py
    LG_PYTHON=/path/to/venv/bin/python python benchmarks/bench_nested.py   # LangGraph from another venv
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

FANOUT = 100
TASK_COUNTS = (10, 100, 1000)


def build(lib: str) -> dict[str, tuple[Callable[[], Any], int]]:
    """Workload name -> (run once, units per run)."""
    if lib == "langgraph":
        from langgraph.checkpoint.memory import InMemorySaver
        from langgraph.func import entrypoint, task
        from langgraph.graph import START, StateGraph
        from langgraph.types import Send
    else:
        from graphrt.checkpoint.memory import InMemorySaver
        from graphrt.func import entrypoint, task
        from graphrt.graph import START, StateGraph
        from graphrt.types import Send

    class Child(TypedDict):
        x: int
        out: Annotated[list[int], operator.add]

    child = StateGraph(Child)
    child.add_node("a", lambda s: {"x": s["x"] + 1})
    child.add_node("b", lambda s: {"x": s["x"] * 2})
    child.add_node("c", lambda s: {"out": [s["x"]]})
    child.add_edge(START, "a")
    child.add_edge("a", "b")
    child.add_edge("b", "c")
    sub = child.compile()

    class Parent(TypedDict):
        out: Annotated[list[int], operator.add]

    def fan(state: Any) -> list[Any]:
        return [Send("sub", {"x": i, "out": []}) for i in range(FANOUT)]

    def parent(saver: Any) -> Any:
        return StateGraph(Parent).add_node("sub", sub).add_conditional_edges(START, fan).compile(checkpointer=saver)

    plain_graph, saved_graph = parent(None), parent(InMemorySaver())
    expected = sorted((i + 1) * 2 for i in range(FANOUT))
    counter = [0]

    def run_fanout(graph: Any) -> Callable[[], None]:
        def run() -> None:
            counter[0] += 1
            config = {"configurable": {"thread_id": f"t{counter[0]}"}}
            assert sorted(graph.invoke({"out": []}, config)["out"]) == expected

        return run

    @task
    def add_one(x: int) -> int:
        return x + 1

    def functional(n: int) -> Callable[[], None]:
        @entrypoint(checkpointer=InMemorySaver())
        def loop(count: int) -> int:
            total = 0
            for i in range(count):
                total += add_one(i).result()
            return total

        def run() -> None:
            counter[0] += 1
            assert loop.invoke(n, {"configurable": {"thread_id": f"f{counter[0]}"}}) == n * (n + 1) // 2

        return run

    workloads: dict[str, tuple[Callable[[], Any], int]] = {
        "subgraph_fanout_100": (run_fanout(plain_graph), FANOUT),
        "subgraph_fanout_100.memory": (run_fanout(saved_graph), FANOUT),
    }
    for n in TASK_COUNTS:
        workloads[f"functional_{n}"] = (functional(n), n)
    return workloads


def plain_floor() -> dict[str, float]:
    """The same computations as plain Python function calls (µs per unit)."""

    def fanout() -> None:
        out: list[int] = []
        for i in range(FANOUT):
            x = (i + 1) * 2
            out = [*out, x]

    def tasks(n: int) -> Callable[[], None]:
        def run() -> None:
            total = 0
            for i in range(n):
                total += i + 1

        return run

    floor = {"subgraph_fanout_100": _time(fanout) / FANOUT}
    floor["subgraph_fanout_100.memory"] = floor["subgraph_fanout_100"]
    for n in TASK_COUNTS:
        floor[f"functional_{n}"] = _time(tasks(n)) / n
    return floor


def _time(func: Callable[[], Any], repeat: int = 5) -> float:
    """Median µs per call over `repeat` timed calls (after a warm-up call)."""
    func()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        samples.append((time.perf_counter() - start) * 1e6)
    return statistics.median(samples)


def measure(lib: str) -> dict[str, float]:
    return {name: _time(run) / units for name, (run, units) in build(lib).items()}


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
    print("| workload | graphrt µs/unit | LangGraph µs/unit | LangGraph / graphrt | graphrt / plain |")
    print("|---|---:|---:|---:|---:|")
    for name, value in ours.items():
        lg = f"{theirs[name]:.1f}" if theirs else "n/a"
        ratio = f"{theirs[name] / value:.1f}x" if theirs else "n/a"
        print(f"| {name} | {value:.1f} | {lg} | {ratio} | {value / floor[name]:.0f}x |")


if __name__ == "__main__":
    main()
