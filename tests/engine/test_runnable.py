"""A compiled graph as a runnable: batch/abatch, get_name, and its input, output and context schemas.

The schemas are LangGraph 1.2.22's answers for the same graphs (pinned).
"""

from __future__ import annotations

import operator
import threading
from dataclasses import dataclass, field
from typing import Annotated, Any
from typing import TypedDict as PlainTypedDict

import anyio
import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict

from graphrt.graph import START, MessagesState, StateGraph


class State(TypedDict):
    x: int
    log: Annotated[list[str], operator.add]


class Out(TypedDict):
    log: list[str]


class Ctx(BaseModel):
    user_id: str = "u"


def _graph(schema: Any = State, **kwargs: Any) -> Any:
    builder = StateGraph(schema, **kwargs)
    builder.add_node("a", lambda state: {"log": [str(state["x"])]} if isinstance(state, dict) else {})
    builder.add_edge(START, "a")
    return builder.compile()


def test_input_output_and_context_json_schemas_match_langgraph() -> None:
    graph = _graph(context_schema=Ctx, output_schema=Out)
    assert graph.get_input_jsonschema() == {
        "properties": {
            "x": {"title": "X", "type": "integer"},
            "log": {"items": {"type": "string"}, "title": "Log", "type": "array"},
        },
        "required": ["x", "log"],
        "title": "State",
        "type": "object",
    }
    assert graph.get_output_jsonschema() == {
        "properties": {"log": {"items": {"type": "string"}, "title": "Log", "type": "array"}},
        "required": ["log"],
        "title": "Out",
        "type": "object",
    }
    assert graph.get_context_jsonschema() == {
        "properties": {"user_id": {"default": "u", "title": "User Id", "type": "string"}},
        "title": "Ctx",
        "type": "object",
    }
    assert _graph().get_context_jsonschema() is None


def test_dataclass_pydantic_and_messages_state_schemas() -> None:
    @dataclass
    class Data:
        x: int = 0
        tags: list[str] = field(default_factory=list)

    class Model(BaseModel):
        x: int = 1
        name: str

    data = _graph(Data).get_input_jsonschema()
    assert (sorted(data["properties"]), data.get("required"), data["title"]) == (["tags", "x"], None, "LangGraphInput")
    model_graph = _graph(Model)
    assert model_graph.get_input_jsonschema() == Model.model_json_schema()
    assert model_graph.get_input_schema() is Model and model_graph.input_schema is Model
    assert sorted(_graph(MessagesState).get_input_jsonschema()["properties"]) == ["messages"]


def test_a_typing_typeddict_gets_a_schema_on_every_python() -> None:
    # pydantic refuses typing.TypedDict before Python 3.12 (LangGraph raises there); graphrt converts it.
    class Plain(PlainTypedDict, total=False):
        x: int

    assert _graph(Plain).get_input_jsonschema()["properties"] == {"x": {"title": "X", "type": "integer"}}
    assert _graph(Plain).get_input_jsonschema().get("required") is None


def test_get_name() -> None:
    graph = _graph()
    assert (graph.get_name(), graph.get_name("Input")) == ("LangGraph", "LangGraphInput")
    builder = StateGraph(State)
    builder.add_node("a", lambda state: {})
    builder.add_edge(START, "a")
    assert builder.compile(name="my").get_name("Input") == "my_input"


def test_batch_runs_inputs_in_parallel_and_keeps_their_order() -> None:
    barrier = threading.Barrier(2, timeout=5)

    def meet(state: State) -> dict[str, Any]:
        barrier.wait()  # both runs must be in flight at once, or this times out
        return {"log": [str(state["x"])]}

    builder = StateGraph(State)
    builder.add_node("a", meet)
    builder.add_edge(START, "a")
    assert builder.compile().batch([{"x": 1}, {"x": 2}]) == [{"x": 1, "log": ["1"]}, {"x": 2, "log": ["2"]}]


def test_batch_return_exceptions_and_config_per_input() -> None:
    graph = _graph()
    out = graph.batch([{"x": 1, "log": []}, {"log": []}], return_exceptions=True)
    assert out[0] == {"x": 1, "log": ["1"]} and isinstance(out[1], KeyError)
    with pytest.raises(KeyError):
        graph.batch([{"x": 1, "log": []}, {"log": []}])
    with pytest.raises(ValueError, match="2 inputs but 1 configs"):
        graph.batch([{"x": 1}, {"x": 2}], [{}])
    assert graph.batch([]) == []


def test_abatch_respects_max_concurrency() -> None:
    running, most = 0, 0

    async def node(state: State) -> dict[str, Any]:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await anyio.sleep(0.01)
        running -= 1
        return {"log": [str(state["x"])]}

    builder = StateGraph(State)
    builder.add_node("a", node)
    builder.add_edge(START, "a")
    graph = builder.compile()
    inputs = [{"x": i} for i in range(4)]
    assert anyio.run(lambda: graph.abatch(inputs, {"max_concurrency": 2})) == [
        {"x": i, "log": [str(i)]} for i in range(4)
    ]
    assert most == 2


def test_batch_as_completed_yields_each_result_with_its_index_as_it_finishes() -> None:
    """The first input waits until the second has finished: it must come out second (LangChain's Runnable API)."""
    second_done = threading.Event()

    def node(state: State) -> dict[str, Any]:
        if state["x"] == 0:
            assert second_done.wait(5)
        return {"log": [str(state["x"])]}

    builder = StateGraph(State)
    builder.add_node("a", node)
    builder.add_edge(START, "a")
    graph = builder.compile()
    seen = []
    for index, result in graph.batch_as_completed([{"x": 0}, {"x": 1}]):
        seen.append((index, result))
        second_done.set()
    assert seen == [(1, {"x": 1, "log": ["1"]}), (0, {"x": 0, "log": ["0"]})]
    out = dict(_graph().batch_as_completed([{"x": 1, "log": []}, {"log": []}], return_exceptions=True))
    assert out[0] == {"x": 1, "log": ["1"]} and isinstance(out[1], KeyError)
    assert list(graph.batch_as_completed([])) == []


def test_abatch_as_completed_yields_each_result_with_its_index_as_it_finishes() -> None:
    async def node(state: State) -> dict[str, Any]:
        await anyio.sleep(0.2 if state["x"] == 0 else 0)
        return {"log": [str(state["x"])]}

    builder = StateGraph(State)
    builder.add_node("a", node)
    builder.add_edge(START, "a")
    graph = builder.compile()

    async def collect() -> list[tuple[int, Any]]:
        return [pair async for pair in graph.abatch_as_completed([{"x": 0}, {"x": 1}])]

    assert anyio.run(collect) == [(1, {"x": 1, "log": ["1"]}), (0, {"x": 0, "log": ["0"]})]


def test_get_state_shows_the_whole_state_not_only_the_output_schema() -> None:
    from graphrt.checkpoint.memory import InMemorySaver

    class Both(TypedDict):
        x: int
        y: int

    class OnlyY(TypedDict):
        y: int

    builder = StateGraph(Both, output_schema=OnlyY)
    builder.add_node("a", lambda state: {"y": state["x"] + 1})
    builder.add_edge(START, "a")
    graph = builder.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    assert graph.invoke({"x": 1}, config) == {"y": 2}
    assert graph.get_state(config).values == {"x": 1, "y": 2}  # LangGraph's answer
