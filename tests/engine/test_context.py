"""Run context: context_schema, Runtime, config, store and writer injection, the get_* accessors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

import pytest

from graphrt.config import RunnableConfig, get_config, get_store, get_stream_writer
from graphrt.graph import START, StateGraph
from graphrt.runtime import Runtime, get_runtime
from graphrt.store.base import BaseStore
from graphrt.store.memory import InMemoryStore
from graphrt.types import StreamWriter
from tests.engine.conftest import run, stream


class State(TypedDict, total=False):
    a: int
    out: Any


@dataclass
class UserContext:
    user: str
    lang: str = "en"


class DictContext(TypedDict):
    user: str


def one_node(node: Any, **compile_kw: Any) -> Any:
    builder = StateGraph(State, context_schema=UserContext)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    return builder.compile(**compile_kw)


# ---------------------------------------------------------------- context and Runtime


def test_runtime_carries_the_context(mode: str) -> None:
    def node(state: State, runtime: Runtime[UserContext]) -> dict[str, Any]:
        return {"out": (runtime.context.user, runtime.context.lang)}

    assert run(one_node(node), {"a": 1}, mode, context=UserContext(user="ann"))["out"] == ("ann", "en")


def test_a_dict_context_is_coerced_to_the_context_schema(mode: str) -> None:
    def node(state: State, runtime: Runtime[UserContext]) -> dict[str, Any]:
        return {"out": runtime.context}

    out = run(one_node(node), {"a": 1}, mode, context={"user": "bob"})["out"]
    assert out == UserContext(user="bob")


def test_typed_dict_context_stays_a_dict(mode: str) -> None:
    def node(state: State, runtime: Runtime[DictContext]) -> dict[str, Any]:
        return {"out": runtime.context["user"]}

    builder = StateGraph(State, context_schema=DictContext)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    assert run(builder.compile(), {"a": 1}, mode, context={"user": "cy"})["out"] == "cy"


def test_context_is_none_when_not_given(mode: str) -> None:
    def node(state: State, runtime: Runtime[UserContext]) -> dict[str, Any]:
        return {"out": runtime.context}

    assert run(one_node(node), {"a": 1}, mode)["out"] is None


def test_get_runtime_inside_a_node(mode: str) -> None:
    store = InMemoryStore()

    def node(state: State) -> dict[str, Any]:
        runtime = get_runtime(UserContext)
        return {"out": (runtime.context.user, runtime.store is store)}

    assert run(one_node(node, store=store), {"a": 1}, mode, context=UserContext("di"))["out"] == ("di", True)


def test_runtime_store_is_the_compiled_store(mode: str) -> None:
    store = InMemoryStore()

    def node(state: State, runtime: Runtime[None]) -> dict[str, Any]:
        assert runtime.store is not None
        runtime.store.put(("notes",), "k", {"v": state["a"]})
        return {}

    run(one_node(node, store=store), {"a": 7}, mode)
    item = store.get(("notes",), "k")
    assert item is not None and item.value == {"v": 7}


def test_unannotated_runtime_parameter_is_injected(mode: str) -> None:
    def node(state: State, runtime: Any) -> dict[str, Any]:
        return {"out": runtime.context}

    def bare(state, runtime):  # type: ignore[no-untyped-def]
        return {"out": runtime.context}

    assert run(one_node(node), {"a": 1}, mode, context=UserContext("x"))["out"] == UserContext(user="x")
    assert run(one_node(bare), {"a": 1}, mode, context=UserContext("y"))["out"] == UserContext(user="y")


def test_runtime_reaches_async_nodes() -> None:
    async def node(state: State, runtime: Runtime[UserContext]) -> dict[str, Any]:
        return {"out": runtime.context.user}

    assert run(one_node(node), {"a": 1}, "async", context=UserContext(user="as"))["out"] == "as"


# ---------------------------------------------------------------- config


def test_config_parameter_sees_the_run_config(mode: str) -> None:
    seen: dict[str, Any] = {}

    def node(state: State, config: RunnableConfig) -> dict[str, Any]:
        seen["x"] = config["configurable"]["x"]
        seen["tags"] = config.get("tags")
        seen["node"] = config["metadata"]["langgraph_node"]
        seen["user_meta"] = config["metadata"]["who"]
        return {}

    config: RunnableConfig = {"configurable": {"x": 5}, "tags": ["t1"], "metadata": {"who": "me"}}
    run(one_node(node), {"a": 1}, mode, config)
    assert seen == {"x": 5, "tags": ["t1"], "node": "node", "user_meta": "me"}


def test_unannotated_and_keyword_only_config_are_injected(mode: str) -> None:
    seen: list[Any] = []

    def positional(state, config):  # type: ignore[no-untyped-def]
        seen.append(config["configurable"]["x"])
        return {}

    def keyword(state: State, *, config: RunnableConfig) -> dict[str, Any]:
        seen.append(config["configurable"]["x"])
        return {}

    run(one_node(positional), {"a": 1}, mode, {"configurable": {"x": 1}})
    run(one_node(keyword), {"a": 1}, mode, {"configurable": {"x": 2}})
    assert seen == [1, 2]


def test_get_config_inside_a_node(mode: str) -> None:
    def node(state: State) -> dict[str, Any]:
        config = get_config()
        return {"out": (config["configurable"]["x"], config["metadata"]["langgraph_step"])}

    assert run(one_node(node), {"a": 1}, mode, {"configurable": {"x": "y"}})["out"] == ("y", 1)


def test_get_config_inside_an_async_node() -> None:
    async def node(state: State) -> dict[str, Any]:
        return {"out": get_config()["configurable"]["x"]}

    assert run(one_node(node), {"a": 1}, "async", {"configurable": {"x": "z"}})["out"] == "z"


@pytest.mark.parametrize("accessor", [get_config, get_store, get_stream_writer, get_runtime])
def test_accessors_outside_a_run_raise(accessor: Any) -> None:
    with pytest.raises(RuntimeError, match="outside of a runnable context"):
        accessor()


# ---------------------------------------------------------------- store


def test_store_parameter_annotated_base_store(mode: str) -> None:
    store = InMemoryStore()

    def node(state: State, store: BaseStore) -> dict[str, Any]:
        store.put(("ns",), "k", {"a": state["a"]})
        return {"out": store is get_store()}

    assert run(one_node(node, store=store), {"a": 3}, mode)["out"] is True
    item = store.get(("ns",), "k")
    assert item is not None and item.value == {"a": 3}


def test_store_parameter_unannotated(mode: str) -> None:
    store = InMemoryStore()

    def node(state, store):  # type: ignore[no-untyped-def]
        return {"out": store is get_store()}

    assert run(one_node(node, store=store), {"a": 1}, mode)["out"] is True


def test_store_parameter_annotated_with_a_concrete_store_class(mode: str) -> None:
    # graphrt injects it (a documented difference: LangGraph injects only BaseStore-annotated parameters).
    store = InMemoryStore()

    def node(state: State, store: InMemoryStore) -> dict[str, Any]:
        return {"out": store is get_store()}

    assert run(one_node(node, store=store), {"a": 1}, mode)["out"] is True


def test_get_store_without_a_store_is_none(mode: str) -> None:
    def node(state: State) -> dict[str, Any]:
        return {"out": get_store()}

    assert run(one_node(node), {"a": 1}, mode)["out"] is None


def test_async_node_gets_the_store() -> None:
    store = InMemoryStore()

    async def node(state: State, store: BaseStore) -> dict[str, Any]:
        await store.aput(("ns",), "k", {"async": True})
        return {}

    run(one_node(node, store=store), {"a": 1}, "async")
    item = store.get(("ns",), "k")
    assert item is not None and item.value == {"async": True}


# ---------------------------------------------------------------- writer


def test_writer_and_every_injection_together(mode: str) -> None:
    store = InMemoryStore()

    def node(
        state: State, config: RunnableConfig, writer: StreamWriter, store: BaseStore, runtime: Runtime[UserContext]
    ) -> dict[str, Any]:
        writer({"user": runtime.context.user, "x": config["configurable"]["x"], "store": store is runtime.store})
        return {}

    chunks = stream(
        one_node(node, store=store),
        {"a": 1},
        mode,
        {"configurable": {"x": 9}},
        context=UserContext(user="all"),
        stream_mode="custom",
    )
    assert chunks == [{"user": "all", "x": 9, "store": True}]


def test_execution_info_names_the_task_its_attempt_thread_and_run(mode: str) -> None:
    """LangGraph 1.2.22's `runtime.execution_info` for the same graph: a root node retried twice, then a subgraph's
    node retried twice (the run id is the root run's only)."""
    from graphrt.checkpoint.memory import InMemorySaver
    from graphrt.types import RetryPolicy

    class S(TypedDict):
        x: int

    seen: list[tuple[Any, ...]] = []

    def node(state: S, runtime: Runtime) -> S:
        info = runtime.execution_info
        assert info is not None and runtime.server_info is None
        started = info.node_first_attempt_time
        seen.append(
            (info.checkpoint_ns.split(":")[0], len(info.task_id), info.thread_id, info.run_id, info.node_attempt)
        )
        assert isinstance(started, float) and info.checkpoint_id and info.task_id in info.checkpoint_ns
        if info.node_attempt < 3:
            raise ValueError("again")
        return {"x": 1}

    retry = RetryPolicy(initial_interval=0.001, retry_on=ValueError)
    sub = StateGraph(S)
    sub.add_node("inner", node, retry_policy=retry)
    sub.add_edge(START, "inner")
    builder = StateGraph(S)
    builder.add_node("n", node, retry_policy=retry)
    builder.add_node("s", sub.compile())
    builder.add_edge(START, "n")
    builder.add_edge("n", "s")
    run_id = "7d0b2e50-1b35-4a3c-9f5f-7a1c1c1c1c1c"
    run(
        builder.compile(checkpointer=InMemorySaver()),
        {"x": 0},
        mode,
        {"configurable": {"thread_id": "T"}, "run_id": run_id},
    )
    assert seen == [("n", 36, "T", run_id, 1), ("n", 36, "T", run_id, 2), ("n", 36, "T", run_id, 3)] + [
        ("s", 36, "T", None, attempt) for attempt in (1, 2, 3)
    ]
    assert Runtime().execution_info is None


def test_execution_info_of_a_functional_task_is_under_its_entrypoints_namespace() -> None:
    from graphrt.checkpoint.memory import InMemorySaver
    from graphrt.func import entrypoint, task

    @task
    def step(x: int) -> str:
        info = get_runtime().execution_info
        assert info is not None
        return f"{info.checkpoint_ns.split(':')[0]} {info.checkpoint_ns.count('|')} {info.thread_id}"

    @entrypoint(checkpointer=InMemorySaver())
    def workflow(x: int) -> str:
        return step(x).result()

    assert workflow.invoke(1, {"configurable": {"thread_id": "W"}}) == "workflow 1 W"
