"""The low-level API: `Pregel(nodes=..., channels=...)` with `NodeBuilder` nodes.

The graphs are the LangGraph runtime guide's examples; expected outputs are LangGraph 1.2.22's (pinned).
"""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from graphrt.cache.memory import InMemoryCache
from graphrt.channels import BinaryOperatorAggregate, EphemeralValue, LastValue, Topic
from graphrt.checkpoint.memory import InMemorySaver
from graphrt.pregel import ChannelWriteEntry, NodeBuilder, Pregel
from graphrt.types import CachePolicy, RetryPolicy


def _double(x: str) -> str:
    return x + x


def _chain(c: Any) -> Pregel:
    node1 = NodeBuilder().subscribe_only("a").do(_double).write_to("b", "c")
    node2 = NodeBuilder().subscribe_to("b").do(lambda x: x["b"] + x["b"]).write_to("c")
    return Pregel(
        nodes={"node1": node1, "node2": node2},
        channels={"a": EphemeralValue(str), "b": EphemeralValue(str), "c": c},
        input_channels=["a"],
        output_channels=["c"],
    )


def test_one_node() -> None:
    node1 = NodeBuilder().subscribe_only("a").do(_double).write_to("b")
    app = Pregel(
        nodes={"node1": node1},
        channels={"a": EphemeralValue(str), "b": EphemeralValue(str)},
        input_channels=["a"],
        output_channels=["b"],
    )
    assert app.invoke({"a": "foo"}) == {"b": "foofoo"}


def test_two_nodes_stream_values_and_updates() -> None:
    node1 = NodeBuilder().subscribe_only("a").do(_double).write_to("b")
    node2 = NodeBuilder().subscribe_only("b").do(_double).write_to("c")
    app = Pregel(
        nodes={"node1": node1, "node2": node2},
        channels={"a": EphemeralValue(str), "b": LastValue(str), "c": EphemeralValue(str)},
        input_channels=["a"],
        output_channels=["b", "c"],
    )
    assert app.invoke({"a": "foo"}) == {"b": "foofoo", "c": "foofoofoofoo"}
    assert list(app.stream({"a": "foo"})) == [{"b": "foofoo"}, {"b": "foofoo", "c": "foofoofoofoo"}]
    assert list(app.stream({"a": "foo"}, stream_mode="updates")) == [
        {"node1": {"b": "foofoo"}},
        {"node2": {"c": "foofoofoofoo"}},
    ]


def test_topic_and_binary_operator_channels() -> None:
    assert _chain(Topic(str, accumulate=True)).invoke({"a": "foo"}) == {"c": ["foofoo", "foofoofoofoo"]}

    def reducer(current: str, update: str) -> str:
        return f"{current} | {update}" if current else update

    assert _chain(BinaryOperatorAggregate(str, operator=reducer)).invoke({"a": "foo"}) == {"c": "foofoo | foofoofoofoo"}


def test_a_cycle_ends_when_the_node_writes_nothing() -> None:
    node = (
        NodeBuilder()
        .subscribe_only("value")
        .do(lambda x: x + x if len(x) < 10 else None)
        .write_to(ChannelWriteEntry("value", skip_none=True))
    )
    app = Pregel(
        nodes={"example_node": node},
        channels={"value": EphemeralValue(str)},
        input_channels=["value"],
        output_channels=["value"],
    )
    # The last step writes nothing and the ephemeral channel clears; invoke returns the last values chunk.
    assert app.invoke({"value": "a"}) == {"value": "aaaaaaaaaaaaaaaa"}


def test_read_from_keyword_writes_and_a_checkpointer() -> None:
    node = (
        NodeBuilder().subscribe_to("x").read_from("k").do(lambda d: d).write_to(y=lambda d: d["x"] * d["k"], z="static")
    )
    app = Pregel(
        nodes={"n": node},
        channels={"x": LastValue(int), "k": LastValue(int), "y": LastValue(int), "z": LastValue(str)},
        input_channels=["x", "k"],
        output_channels=["y", "z"],
        checkpointer=InMemorySaver(),
    )
    config = {"configurable": {"thread_id": "t"}}
    assert app.invoke({"x": 3, "k": 4}, config) == {"y": 12, "z": "static"}
    state = app.get_state(config)
    assert (state.values, state.next) == ({"x": 3, "k": 4, "y": 12, "z": "static"}, ())


def test_single_channel_input_and_output_and_async() -> None:
    async def adouble(v: int) -> int:
        return v * 2

    def app(func: Any) -> Pregel:
        return Pregel(
            nodes={"n": NodeBuilder().subscribe_only("x").do(func).write_to("y")},
            channels={"x": LastValue(int), "y": LastValue(int)},
            input_channels="x",
            output_channels="y",
        )

    assert anyio.run(app(adouble).ainvoke, 5) == 10
    assert app(lambda v: v * 2).invoke(5) == 10
    assert list(app(lambda v: v * 2).stream(5)) == [{"x": 5, "y": 10}]
    assert list(app(lambda v: v * 2).stream(5, stream_mode="updates")) == [{"n": {"y": 10}}]


def test_bad_graphs_name_the_problem() -> None:
    with pytest.raises(ValueError, match="'nope', which is not in `channels`"):
        Pregel(
            nodes={"n": NodeBuilder().subscribe_only("a").write_to("nope")},
            channels={"a": LastValue(int)},
            input_channels="a",
            output_channels="a",
        )
    with pytest.raises(ValueError, match="No node subscribes to an input channel"):
        Pregel(
            nodes={"n": NodeBuilder().subscribe_only("b").write_to("a")},
            channels={"a": LastValue(int), "b": LastValue(int)},
            input_channels="a",
            output_channels="a",
        )
    with pytest.raises(ValueError, match="subscribe_to"):
        NodeBuilder().subscribe_only("a").read_from("b")
    with pytest.raises(TypeError, match="nodes="):
        Pregel(nodes={"n": NodeBuilder().subscribe_only("a")})


def test_retry_and_cache_policies_of_a_node() -> None:
    calls: list[int] = []

    def flaky(x: int) -> int:
        calls.append(x)
        if len(calls) == 1:
            raise ConnectionError("once")
        return x * 2

    node = (
        NodeBuilder()
        .subscribe_only("x")
        .do(flaky)
        .write_to("y")
        .add_retry_policies(RetryPolicy(initial_interval=0.01, jitter=False))
        .add_cache_policy(CachePolicy())
    )
    app = Pregel(
        nodes={"n": node},
        channels={"x": LastValue(int), "y": LastValue(int)},
        input_channels="x",
        output_channels="y",
        cache=InMemoryCache(),
    )
    assert app.invoke(5) == 10
    assert calls == [5, 5]  # retried once
    assert app.invoke(5) == 10
    assert calls == [5, 5]  # the second run is a cache hit


def test_options_that_would_change_the_run_are_refused() -> None:
    def app(**options: Any) -> Pregel:
        return Pregel(
            nodes={"n": NodeBuilder().subscribe_only("x").write_to("y")},
            channels={"x": LastValue(int), "y": LastValue(int)},
            input_channels="x",
            output_channels="y",
            **options,
        )

    assert app(auto_validate=False, stream_eager=True).invoke(1) == 1
    with pytest.raises(NotImplementedError, match="add_retry_policies"):
        app(retry_policy=RetryPolicy())
    with pytest.raises(TypeError, match="unexpected keyword arguments \\['bogus'\\]"):
        app(bogus=1)
