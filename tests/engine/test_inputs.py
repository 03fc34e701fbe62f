"""What a run accepts as input and what nodes may return: objects, Commands, configs in path functions."""

from __future__ import annotations

import asyncio
import operator
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

import pydantic

from graphrt.config import RunnableConfig
from graphrt.graph import END, START, MessagesState, StateGraph
from graphrt.messages import AIMessage, HumanMessage
from graphrt.types import Command, Send
from tests.engine.conftest import run, stream


class State(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    x: int


class Model(pydantic.BaseModel):
    a: int
    items: Annotated[list[int], operator.add] = []


@dataclass
class Data:
    a: int
    items: Annotated[list[int], operator.add] = field(default_factory=list)


def a_then_nothing() -> Any:
    builder = StateGraph(State)
    builder.add_node("a", lambda s: {"log": ["a"]})
    builder.add_node("b", lambda s: {"log": ["b"]})
    builder.add_edge(START, "a")
    return builder.compile()


def test_node_may_return_a_pydantic_model(mode: str) -> None:
    def node(state: Model) -> Model:
        return Model(a=state.a + 1, items=[9])

    builder = StateGraph(Model)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    assert run(builder.compile(), {"a": 1}, mode) == {"a": 2, "items": [9]}


def test_node_may_return_a_dataclass(mode: str) -> None:
    def node(state: Data) -> Data:
        return Data(a=state.a + 1, items=[7])

    builder = StateGraph(Data)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    assert run(builder.compile(), {"a": 1}, mode) == {"a": 2, "items": [7]}


def test_reducer_keys_are_always_in_the_output(mode: str) -> None:
    builder = StateGraph(State)
    builder.add_node("n", lambda s: {"x": 2})
    builder.add_edge(START, "n")
    graph = builder.compile()
    assert run(graph, {"x": 1}, mode) == {"log": [], "x": 2}
    assert stream(graph, {"x": 1}, mode, stream_mode="values") == [{"log": [], "x": 1}, {"log": [], "x": 2}]


def test_unknown_input_keys_are_ignored(mode: str) -> None:
    assert run(a_then_nothing(), {"log": ["in"], "bogus": 1}, mode) == {"log": ["in", "a"]}


def test_empty_input_still_runs(mode: str) -> None:
    assert run(a_then_nothing(), {}, mode) == {"log": ["a"]}


def test_command_update_as_the_input_of_a_fresh_run(mode: str) -> None:
    chunks = stream(a_then_nothing(), Command(update={"x": 5}), mode, stream_mode="values")
    assert chunks == [{"log": [], "x": 5}, {"log": ["a"], "x": 5}]


def test_command_goto_as_the_input_of_a_fresh_run(mode: str) -> None:
    graph = a_then_nothing()
    assert run(graph, Command(goto="b"), mode) == {"log": ["a", "b"]}
    # a and b run in the same step: their updates arrive in the order they finish
    chunks = stream(graph, Command(update={"x": 5}, goto="b"), mode)
    assert sorted(chunks, key=str) == [{"a": {"log": ["a"]}}, {"b": {"log": ["b"]}}]


def test_path_function_receives_the_config(mode: str) -> None:
    def route(state: State, config: RunnableConfig) -> str:
        return str(config["configurable"]["go"])

    builder = StateGraph(State)
    builder.add_node("a", lambda s: {"log": ["a"]})
    builder.add_node("b", lambda s: {"log": ["b"]})
    builder.add_edge(START, "a")
    builder.add_conditional_edges("a", route, ["b", END])
    graph = builder.compile()
    assert run(graph, {"log": []}, mode, {"configurable": {"go": "b"}}) == {"log": ["a", "b"]}
    assert run(graph, {"log": []}, mode, {"configurable": {"go": END}}) == {"log": ["a"]}


def test_path_map_applies_to_each_item_of_a_list_result(mode: str) -> None:
    builder = StateGraph(State)
    for name in "abc":
        builder.add_node(name, lambda s, name=name: {"log": [name]})
    builder.add_edge(START, "a")
    builder.add_conditional_edges("a", lambda s: ["left", "right"], {"left": "b", "right": "c"})
    assert run(builder.compile(), {"log": []}, mode) == {"log": ["a", "b", "c"]}


def test_deferred_node_waits_for_sends_and_longer_branches(mode: str) -> None:
    builder = StateGraph(State)
    builder.add_node("w", lambda arg: {"log": [f"w{arg}"]})
    builder.add_node("slow", lambda s: {"log": ["slow"]})
    builder.add_node("slow2", lambda s: {"log": ["slow2"]})
    builder.add_node("fin", lambda s: {"log": ["fin"]}, defer=True)
    builder.add_conditional_edges(START, lambda s: [Send("w", 1), Send("w", 2), "slow"])
    builder.add_edge("slow", "slow2")
    builder.add_edge("w", "fin")
    builder.add_edge("slow2", "fin")
    assert run(builder.compile(), {"log": []}, mode) == {"log": ["slow", "w1", "w2", "slow2", "fin"]}


def test_messages_given_as_dicts_are_coerced(mode: str) -> None:
    builder = StateGraph(MessagesState)
    builder.add_node("n", lambda s: {"messages": [{"role": "assistant", "content": "hey"}]})
    builder.add_edge(START, "n")
    result = run(builder.compile(), {"messages": [{"role": "user", "content": "x"}]}, mode)
    assert [(type(m), m.content) for m in result["messages"]] == [(HumanMessage, "x"), (AIMessage, "hey")]


def test_one_compiled_graph_serves_concurrent_async_runs() -> None:
    builder = StateGraph(State)

    async def slow(state: State) -> dict[str, Any]:
        await asyncio.sleep(0.01)
        return {"log": [state["log"][0] + "!"]}

    builder.add_node("slow", slow)
    builder.add_edge(START, "slow")
    graph = builder.compile()

    async def both() -> list[Any]:
        return list(await asyncio.gather(*(graph.ainvoke({"log": [str(i)]}) for i in range(5))))

    assert asyncio.run(both()) == [{"log": [str(i), f"{i}!"]} for i in range(5)]


def test_deferred_node_waits_for_the_sends_of_the_step_that_triggered_it(mode: str) -> None:
    # LangGraph 1.2 runs "reduce" beside the workers here ({"log": ["a", "reduce", "w1", "w2"]}); graphrt
    # follows LangGraph's docs: a deferred node waits until all pending tasks are finished (README).
    builder = StateGraph(State)
    builder.add_node("a", lambda s: {"log": ["a"]})
    builder.add_node("w", lambda arg: {"log": [f"w{arg}"]})
    builder.add_node("reduce", lambda s: {"log": ["reduce"]}, defer=True)
    builder.add_edge(START, "a")
    builder.add_conditional_edges("a", lambda s: [Send("w", 1), Send("w", 2)], ["w"])
    builder.add_edge("a", "reduce")
    assert run(builder.compile(), {"log": []}, mode) == {"log": ["a", "w1", "w2", "reduce"]}
