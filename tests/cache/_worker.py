"""What the cross-process cache tests run in a child process.

A child runs `python -c SCRIPT <repo root> <command> <database> <argument>` and prints one JSON line:

    set:   store `{"n": 1, "tags": {"a", "b"}}` under (("ns",), "k") with no expiry; prints {}.
    get:   prints {"found": [...]} with the value stored under (("ns",), "k"), if any (its set sorted,
           and the set's type name).
    graph: invoke `counting_graph` once with the SqliteCache at <database>; each run of its cached
           node is appended to <argument>/runs.log. Prints {"values": ...}.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TypedDict

from graphrt.cache.sqlite import SqliteCache
from graphrt.graph import END, START, StateGraph
from graphrt.types import CachePolicy

SCRIPT = "import sys; sys.path.insert(0, sys.argv[1]); from tests.cache._worker import main; main(sys.argv[2:])"
GRAPH_INPUT: dict[str, Any] = {"n": 3, "tags": {"x", "y", "z"}, "out": 0}
"""A set in the input: its key must not depend on the process's string hash seed."""


class Counted(TypedDict, total=False):
    n: int
    tags: set[str]
    out: int


def counting_graph(directory: Path, cache: SqliteCache[Any]) -> Any:
    """START -> double (cached, logs each run) -> END."""

    def double(state: Counted) -> Counted:
        with (directory / "runs.log").open("a") as log:
            log.write("double\n")
        return {"out": state["n"] * 2}

    builder = StateGraph(Counted)
    builder.add_node("double", double, cache_policy=CachePolicy())
    builder.add_edge(START, "double")
    builder.add_edge("double", END)
    return builder.compile(cache=cache)


def main(argv: list[str]) -> None:
    command, database, argument = argv
    with SqliteCache(path=database) as cache:
        if command == "set":
            cache.set({(("ns",), "k"): ({"n": 1, "tags": {"a", "b"}}, None)})
            result: dict[str, Any] = {}
        elif command == "get":
            found = cache.get([(("ns",), "k")])
            result = {
                "found": [
                    {"n": v["n"], "tags": sorted(v["tags"]), "type": type(v["tags"]).__name__} for v in found.values()
                ]
            }
        else:
            values = counting_graph(Path(argument), cache).invoke(dict(GRAPH_INPUT))
            result = {"values": {"n": values["n"], "out": values["out"]}}
    sys.stdout.write(json.dumps(result) + "\n")
