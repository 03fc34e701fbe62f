"""What `InMemorySaver` keeps costs about its size: small serialized values hold no spare buffer.

orjson's result keeps the buffer it wrote into (4 KiB for a few bytes of JSON); kept as is, every saved
checkpoint's metadata and every small value cost that much memory for as long as the saver lives.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from typing import Any, TypedDict

from graphrt.checkpoint.base._storage import encode_metadata
from graphrt.checkpoint.memory import InMemorySaver
from graphrt.checkpoint.serde.jsonplus import JsonPlusSerializer
from graphrt.graph import END, START, StateGraph


class State(TypedDict):
    x: int
    note: str


def traced_growth(action: Callable[[], Any]) -> int:
    """Bytes still allocated after `action` (and a full collection) that were not before it."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = action()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del kept
    return grown


def test_small_serialized_values_cost_about_their_size() -> None:
    serde = JsonPlusSerializer()
    values = traced_growth(lambda: [serde.dumps_typed({"n": i}) for i in range(1000)])
    metadata = traced_growth(lambda: [encode_metadata({"source": "loop", "step": i}) for i in range(1000)])
    # A tuple, a str and a bytes object of ~10 bytes each: well under 300 bytes (4 KiB with orjson's buffer).
    assert values / 1000 < 300
    assert metadata / 1000 < 150


def test_a_saved_checkpoint_of_a_small_state_costs_well_under_4_kib() -> None:
    builder: StateGraph[State] = StateGraph(State)
    builder.add_node("a", lambda s: {"x": s["x"] + 1, "note": f"n{s['x']}"})
    builder.add_node("b", lambda s: {"x": s["x"] + 1})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", END)
    saver = InMemorySaver()
    graph = builder.compile(checkpointer=saver)
    graph.invoke({"x": 0, "note": ""}, {"configurable": {"thread_id": "warm"}})

    def run() -> None:
        for i in range(100):
            graph.invoke({"x": i, "note": "hi"}, {"configurable": {"thread_id": f"t{i}"}})

    # 100 runs save 4 checkpoints each (the input, then after START, a and b). Measured: about 2.8 KB per
    # checkpoint, and 9.8 KB while every small serialized piece kept its 4 KiB buffer.
    per_checkpoint = traced_growth(run) / 400
    assert per_checkpoint < 4096
    assert len(list(saver.list({"configurable": {"thread_id": "t7"}}))) == 4
