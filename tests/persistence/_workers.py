"""Graphs that the process tests run in child processes, and the entry point those children call.

A child runs `python -c SCRIPT <repo root> <command> <database> <directory>`, where `SCRIPT` puts the
repository on `sys.path` and calls `main`. Children and the test coordinate through files in
`<directory>` (never through sleeps), and each node appends its name to `<directory>/runs.log`, so a
test can count how often every node ran across processes.

Commands:
    conflict: run `slow_graph` with input A; `slow` touches `entered` and waits for `release`.
    crash:    run `pair_graph` with input x; `blocker` waits until `fast`'s writes are saved,
              touches `ready` and then waits to be killed.
    resume:   continue `pair_graph` with `invoke(None, ...)`, nothing blocking.
    race:N:S: wait for `go`, then call `slow_graph` (not blocking) N times with input "<pid>-<i>" and
              `multitask_strategy` S; prints {"applied": [inputs that completed], "refused": count}.
    intrude:  save a checkpoint on the thread with a raw `saver.put` (no claim), as an outside writer.
Each prints one JSON line: {"values": ...} or {"error": class name, "message": ..., "thread_id": ...}.
"""

from __future__ import annotations

import json
import operator
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypedDict

from graphrt.checkpoint.sqlite import SqliteSaver
from graphrt.config import RunnableConfig
from graphrt.graph import END, START, StateGraph

THREAD: RunnableConfig = {"configurable": {"thread_id": "t"}}
TIMEOUT = 20.0
"""Seconds any wait gives up after, so a broken child never hangs the suite."""

SCRIPT = "import sys; sys.path.insert(0, sys.argv[1]); from tests.persistence._workers import main; main(sys.argv[2:])"


class Items(TypedDict, total=False):
    items: Annotated[list[str], operator.add]


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    """Poll `predicate` until it holds; TimeoutError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.005)


def record(directory: Path, name: str) -> None:
    """Append `name` to the run log (closed at once, so a later SIGKILL cannot lose it)."""
    with (directory / "runs.log").open("a") as log:
        log.write(name + "\n")


def runs(directory: Path) -> list[str]:
    """Every node run recorded in `directory`, in order."""
    path = directory / "runs.log"
    return path.read_text().split() if path.exists() else []


def saved_writes(saver: Any) -> list[tuple[str, Any]]:
    """(channel, value) of the writes saved against the thread's newest checkpoint."""
    saved = saver.get_tuple(THREAD)
    return [(channel, value) for _, channel, value in (saved.pending_writes or ()) if saved] if saved else []


def slow_graph(saver: Any, directory: Path, *, block: bool) -> Any:
    """START -> slow -> END; with `block`, `slow` announces itself and waits for `release`."""

    def slow(state: Items) -> Items:
        record(directory, "slow")
        if block:
            (directory / "entered").touch()
            wait_for((directory / "release").exists, "the release file")
        return {"items": ["slow"]}

    builder = StateGraph(Items)
    builder.add_node("slow", slow)
    builder.add_edge(START, "slow")
    builder.add_edge("slow", END)
    return builder.compile(checkpointer=saver)


def pair_graph(saver: Any, directory: Path, *, block: bool) -> Any:
    """START -> (fast, blocker) -> END; with `block`, `blocker` never returns once `fast` is saved."""

    def fast(state: Items) -> Items:
        record(directory, "fast")
        return {"items": ["fast"]}

    def blocker(state: Items) -> Items:
        record(directory, "blocker")
        if block:
            wait_for(lambda: ("items", ["fast"]) in saved_writes(saver), "fast's writes to be saved")
            (directory / "ready").touch()
            wait_for(lambda: False, "this process to be killed")
        return {"items": ["blocker"]}

    builder = StateGraph(Items)
    builder.add_node("fast", fast)
    builder.add_node("blocker", blocker)
    builder.add_edge(START, "fast")
    builder.add_edge(START, "blocker")
    builder.add_edge("fast", END)
    builder.add_edge("blocker", END)
    return builder.compile(checkpointer=saver)


def deep_graph(saver: Any, directory: Path) -> Any:
    """Three levels of subgraphs; the bottom one records `before`, then asks `deep` with interrupt()."""
    from graphrt.types import interrupt

    def before(state: Items) -> Items:
        record(directory, "before")
        return {"items": ["before"]}

    def leaf(state: Items) -> Items:
        record(directory, "leaf")
        return {"items": [str(interrupt("deep"))]}

    level3 = StateGraph(Items).add_node(before).add_node(leaf).add_edge(START, "before").add_edge("before", "leaf")
    level2 = StateGraph(Items).add_node("l3", level3.compile()).add_edge(START, "l3").compile()
    return StateGraph(Items).add_node("l2", level2).add_edge(START, "l2").compile(checkpointer=saver)


def flow(saver: Any, directory: Path, *, block: bool) -> Any:
    """An entrypoint calling task `first` (saved), then `second`, which with `block` waits to be killed."""
    from graphrt.func import entrypoint, task

    @task
    def first(x: str) -> str:
        record(directory, "first")
        return x + "1"

    @task
    def second(x: str) -> str:
        record(directory, "second")
        if block:
            (directory / "ready").touch()
            wait_for(lambda: False, "this process to be killed")
        return x + "2"

    @entrypoint(checkpointer=saver)
    def workflow(x: str) -> str:
        return second(first(x).result()).result()

    return workflow


def race(saver: Any, directory: Path, rounds: int, strategy: str) -> dict[str, Any]:
    """Call the thread `rounds` times as fast as possible; report what was applied and refused."""
    from graphrt.errors import ThreadConflictError

    graph = slow_graph(saver, directory, block=False)
    config: RunnableConfig = {"configurable": {"thread_id": "t", "multitask_strategy": strategy}}
    wait_for((directory / "go").exists, "the go file")
    applied, refused = [], 0
    for i in range(rounds):
        label = f"{os.getpid()}-{i}"
        try:
            graph.invoke({"items": [label]}, config)
            applied.append(label)
        except ThreadConflictError:
            refused += 1
    return {"applied": applied, "refused": refused}


def intrude(saver: Any) -> dict[str, Any]:
    """A checkpoint written on the thread without claiming it."""
    from graphrt.checkpoint.base import copy_checkpoint
    from graphrt.checkpoint.base.id import uuid6

    head = saver.get_tuple(THREAD)
    checkpoint = copy_checkpoint(head.checkpoint)
    checkpoint["id"] = str(uuid6())
    new = saver.put(head.config, checkpoint, {"source": "update", "step": 99}, {})
    return {"checkpoint_id": new["configurable"]["checkpoint_id"]}


def main(argv: Sequence[str]) -> None:
    command, database, folder = argv
    directory = Path(folder)
    if database.startswith("redis://"):
        from graphrt.checkpoint.redis import RedisSaver

        opened: Any = RedisSaver.from_conn_string(database)
    else:
        opened = SqliteSaver.from_conn_string(database)
    with opened as saver:
        try:
            if command == "conflict":
                # "sync": its first checkpoints are committed before `entered` (what the tests compare with).
                values = slow_graph(saver, directory, block=True).invoke({"items": ["A"]}, THREAD, durability="sync")
            elif command == "crash":
                values = pair_graph(saver, directory, block=True).invoke({"items": ["x"]}, THREAD)
            elif command == "resume":
                values = pair_graph(saver, directory, block=False).invoke(None, THREAD)
            elif command == "deep":
                out = deep_graph(saver, directory).invoke({"items": []}, THREAD)
                values = {"interrupts": [i.value for i in out["__interrupt__"]]}
            elif command == "deep-resume":
                from graphrt.types import Command

                values = deep_graph(saver, directory).invoke(Command(resume="answer"), THREAD)
            elif command == "flow-crash":
                values = flow(saver, directory, block=True).invoke("x", THREAD, durability="sync")
            elif command == "flow-resume":
                values = flow(saver, directory, block=False).invoke(None, THREAD)
            elif command.startswith("race:"):
                _, rounds, strategy = command.split(":")
                print(json.dumps(race(saver, directory, int(rounds), strategy)), flush=True)
                sys.exit(0)
            elif command == "intrude":
                values = intrude(saver)
            else:
                raise SystemExit(f"unknown command {command!r}")
            result: dict[str, Any] = {"values": values}
        except Exception as exc:
            result = {"error": type(exc).__name__, "message": str(exc), "thread_id": getattr(exc, "thread_id", None)}
    print(json.dumps(result), flush=True)
    sys.exit(0)
