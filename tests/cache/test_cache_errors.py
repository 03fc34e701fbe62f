"""Bad input while caching: each error names the node (and key function) and says how to fix it."""

from __future__ import annotations

import threading
from typing import Any, TypedDict

import pytest

from graphrt.cache.memory import InMemoryCache
from graphrt.checkpoint.memory import InMemorySaver
from graphrt.checkpoint.serde.base import SerializationError
from graphrt.graph import END, START, StateGraph
from graphrt.types import CachePolicy
from tests.engine.conftest import exact, run

HERE = __name__


class Holder(TypedDict, total=False):
    n: int
    obj: Any


def single(policy: CachePolicy, action: Any, **compile: Any) -> Any:
    builder = StateGraph(Holder)
    builder.add_node("use", action, cache_policy=policy)
    builder.add_edge(START, "use")
    builder.add_edge("use", END)
    return builder.compile(cache=InMemoryCache(), **compile)


def use(state: Holder) -> Holder:
    return {"n": state["n"] + 1}


def test_an_input_the_default_key_cannot_serialize_names_the_node_and_the_type(mode: str) -> None:
    graph = single(CachePolicy(), use)
    message = (
        "Type is not serializable: _thread.lock (found at [0]['obj']). Cannot make the cache key of node 'use' "
        f"(function {HERE}.use): the default CachePolicy.key_func serializes the input. Pass "
        "CachePolicy(key_func=...) returning str or bytes, or register the type with "
        "graphrt.checkpoint.serde.jsonplus.register_type()."
    )
    with pytest.raises(SerializationError, match=exact(message)):
        run(graph, {"n": 1, "obj": threading.Lock()}, mode)
    keyed = single(CachePolicy(key_func=lambda state: str(state["n"])), use)
    assert run(keyed, {"n": 1, "obj": "plain"}, mode) == {"n": 2, "obj": "plain"}


def bad_key(state: Holder) -> str:
    raise LookupError("no key for this state")


def test_a_key_func_that_raises_keeps_its_error_with_a_note_naming_both_functions(mode: str) -> None:
    with pytest.raises(LookupError, match=r"^no key for this state") as info:
        run(single(CachePolicy(key_func=bad_key), use), {"n": 1}, mode)
    assert info.value.__notes__ == [
        f"While computing the cache key of node 'use' (function {HERE}.use) with key_func {HERE}.bad_key"
    ]


def test_a_key_func_must_return_str_or_bytes(mode: str) -> None:
    def number_key(state: Holder) -> Any:
        return state["n"]

    message = (
        f"CachePolicy.key_func {HERE}.test_a_key_func_must_return_str_or_bytes.<locals>.number_key returned int "
        f"for node 'use' (function {HERE}.use); it must return str or bytes."
    )
    with pytest.raises(TypeError, match=exact(message)):
        run(single(CachePolicy(key_func=number_key), use), {"n": 1}, mode)


def test_writes_that_cannot_be_cached_fail_naming_the_node(mode: str) -> None:
    def make(state: Holder) -> Holder:
        return {"obj": threading.Lock()}

    with pytest.raises(SerializationError, match=r"^Type is not serializable: _thread\.lock") as info:
        run(single(CachePolicy(), make), {"n": 1}, mode)
    assert info.value.__notes__ == [
        f"While saving the result of node 'use' (function {HERE}."
        "test_writes_that_cannot_be_cached_fail_naming_the_node.<locals>.make) to the cache"
    ]


def test_a_key_error_keeps_what_earlier_steps_saved(mode: str) -> None:
    builder = StateGraph(Holder)
    builder.add_node("first", use)
    builder.add_node("second", use, cache_policy=CachePolicy(key_func=bad_key))
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    graph = builder.compile(cache=InMemoryCache(), checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "t"}}
    with pytest.raises(LookupError):
        run(graph, {"n": 1}, mode, config, durability="exit")
    saved = graph.get_state(config)
    assert (saved.values, saved.next) == ({"n": 2}, ("second",))


def test_cache_policy_must_be_a_cache_policy() -> None:
    builder = StateGraph(Holder)
    with pytest.raises(
        TypeError, match=exact("Node `use`: cache_policy must be a graphrt.types.CachePolicy, got dict.")
    ):
        builder.add_node("use", use, cache_policy={"ttl": 5})  # type: ignore[arg-type]
