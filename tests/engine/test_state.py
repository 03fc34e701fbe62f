"""State schemas: TypedDict, dataclass, pydantic; reducers; messages; Overwrite; input/output/private schemas."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated, Any, TypedDict

import pydantic
import pytest

from graphrt.errors import InvalidUpdateError
from graphrt.graph import START, MessagesState, StateGraph, add_messages
from graphrt.graph.message import REMOVE_ALL_MESSAGES
from graphrt.messages import AIMessage, AnyMessage, HumanMessage, RemoveMessage
from graphrt.types import Overwrite
from tests.engine.conftest import run, starts, stream


def single_node_graph(schema: Any, node: Any, **graph_kw: Any) -> Any:
    builder = StateGraph(schema, **graph_kw)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    return builder.compile()


# ---------------------------------------------------------------- schema kinds


@dataclass
class DataState:
    a: int
    items: Annotated[list[int], operator.add] = field(default_factory=list)
    note: str = "default"


class ModelState(pydantic.BaseModel):
    a: int
    items: Annotated[list[int], operator.add] = []
    note: str = "default"


@pytest.mark.parametrize("schema", [DataState, ModelState], ids=["dataclass", "pydantic"])
def test_object_state_nodes_receive_an_instance_with_defaults(mode: str, schema: Any) -> None:
    received: list[Any] = []

    def node(state: Any) -> dict[str, Any]:
        received.append(state)
        return {"a": state.a + 1, "items": [state.a]}

    graph = single_node_graph(schema, node)
    assert run(graph, {"a": 1}, mode) == {"a": 2, "items": [1]}
    assert received == [schema(a=1, items=[], note="default")]


@pytest.mark.parametrize("schema", [DataState, ModelState], ids=["dataclass", "pydantic"])
def test_object_state_accepts_an_instance_as_input(mode: str, schema: Any) -> None:
    graph = single_node_graph(schema, lambda s: {"a": s.a + 1, "items": [s.a]})
    assert run(graph, schema(a=5), mode) == {"a": 6, "items": [5], "note": "default"}


def test_pydantic_state_validates_the_input(mode: str) -> None:
    graph = single_node_graph(ModelState, lambda s: {"a": s.a + 1})
    with pytest.raises(pydantic.ValidationError):
        run(graph, {"a": "not a number"}, mode)


def test_pydantic_state_coerces_input_values_for_nodes(mode: str) -> None:
    received: list[Any] = []

    def node(state: ModelState) -> dict[str, Any]:
        received.append(state.a)
        return {}

    run(single_node_graph(ModelState, node), {"a": "7"}, mode)
    assert received == [7]


def test_values_stream_of_an_object_state_is_a_dict(mode: str) -> None:
    graph = single_node_graph(DataState, lambda s: {"a": s.a + 1, "items": [s.a]})
    assert stream(graph, {"a": 1}, mode, stream_mode="values") == [{"a": 1, "items": []}, {"a": 2, "items": [1]}]


# ---------------------------------------------------------------- node return values


class Plain(TypedDict, total=False):
    a: int
    log: Annotated[list[str], operator.add]


@pytest.mark.parametrize("result", [None, {}, {"unknown": 1}], ids=["none", "empty", "unknown-key"])
def test_node_results_that_update_nothing(mode: str, result: Any) -> None:
    graph = single_node_graph(Plain, lambda s: result)
    assert run(graph, {"a": 1, "log": []}, mode) == {"a": 1, "log": []}


def test_unknown_keys_are_dropped_and_known_keys_kept(mode: str) -> None:
    graph = single_node_graph(Plain, lambda s: {"a": 2, "unknown": 1})
    assert run(graph, {"a": 1, "log": []}, mode) == {"a": 2, "log": []}


@pytest.mark.parametrize("result", [5, "x", [("a", 1)]], ids=["int", "str", "pairs"])
def test_non_dict_node_result_raises(mode: str, result: Any) -> None:
    graph = single_node_graph(Plain, lambda s: result)
    with pytest.raises(InvalidUpdateError, match=starts(f"Expected dict, got {result}")):
        run(graph, {"a": 1}, mode)


def test_keys_never_written_are_absent_from_the_output(mode: str) -> None:
    graph = single_node_graph(Plain, lambda s: {"log": ["x"]})
    assert run(graph, {"log": []}, mode) == {"log": ["x"]}


# ---------------------------------------------------------------- reducers


def keep_max(current: int, new: int) -> int:
    return max(current, new)


class Best(TypedDict):
    best: Annotated[int, keep_max]


def test_custom_reducer_function(mode: str) -> None:
    builder = StateGraph(Best)
    builder.add_node("a", lambda s: {"best": 3})
    builder.add_node("b", lambda s: {"best": 1})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    assert run(builder.compile(), {"best": 2}, mode) == {"best": 3}


def test_input_goes_through_the_reducer(mode: str) -> None:
    graph = single_node_graph(Plain, lambda s: {"log": ["node"]})
    assert run(graph, {"log": ["input"]}, mode) == {"log": ["input", "node"]}


def test_reducer_key_starts_from_the_types_empty_value(mode: str) -> None:
    seen: list[Any] = []

    def node(state: Plain) -> dict[str, Any]:
        seen.append(state["log"])
        return {}

    run(single_node_graph(Plain, node), {"a": 1}, mode)
    assert seen == [[]]


def test_overwrite_bypasses_the_reducer(mode: str) -> None:
    builder = StateGraph(Plain)
    builder.add_node("reset", lambda s: {"log": Overwrite(["fresh"])})
    builder.add_node("append", lambda s: {"log": ["more"]})
    builder.add_edge(START, "reset")
    builder.add_edge("reset", "append")
    chunks = stream(builder.compile(), {"log": ["old", "older"]}, mode, stream_mode="values")
    assert [c["log"] for c in chunks] == [["old", "older"], ["fresh"], ["fresh", "more"]]


def test_overwrite_wins_over_other_writes_in_the_same_step(mode: str) -> None:
    builder = StateGraph(Plain)
    builder.add_node("a", lambda s: {"log": Overwrite(["over"])})
    builder.add_node("z", lambda s: {"log": ["plain"]})
    builder.add_edge(START, "a")
    builder.add_edge(START, "z")
    assert run(builder.compile(), {"log": ["old"]}, mode) == {"log": ["over"]}


def test_two_overwrites_in_one_step_raise(mode: str) -> None:
    builder = StateGraph(Plain)
    builder.add_node("a", lambda s: {"log": Overwrite(["a"])})
    builder.add_node("b", lambda s: {"log": Overwrite(["b"])})
    builder.add_edge(START, "a")
    builder.add_edge(START, "b")
    with pytest.raises(InvalidUpdateError, match=starts("Can receive only one Overwrite value per super-step.")):
        run(builder.compile(), {"log": []}, mode)


# ---------------------------------------------------------------- messages


def test_messages_state_appends_and_coerces(mode: str) -> None:
    def reply(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(content=f"echo {state['messages'][-1].content}", id="a1")]}

    graph = single_node_graph(MessagesState, reply)
    result = run(graph, {"messages": [("user", "hi")]}, mode)
    messages = result["messages"]
    assert [type(m) for m in messages] == [HumanMessage, AIMessage]
    assert [m.content for m in messages] == ["hi", "echo hi"]
    assert messages[0].id is not None


def test_messages_with_the_same_id_are_replaced(mode: str) -> None:
    def edit(state: MessagesState) -> dict[str, Any]:
        return {"messages": [HumanMessage(content="edited", id="h1")]}

    graph = single_node_graph(MessagesState, edit)
    result = run(graph, {"messages": [HumanMessage(content="draft", id="h1"), AIMessage("ok", id="a1")]}, mode)
    assert [(m.id, m.content) for m in result["messages"]] == [("h1", "edited"), ("a1", "ok")]


def test_remove_message_deletes_by_id(mode: str) -> None:
    graph = single_node_graph(MessagesState, lambda s: {"messages": [RemoveMessage(id="h1")]})
    result = run(graph, {"messages": [HumanMessage("x", id="h1"), AIMessage("y", id="a1")]}, mode)
    assert [m.id for m in result["messages"]] == ["a1"]


def test_remove_all_messages_clears_what_came_before(mode: str) -> None:
    def reset(state: MessagesState) -> dict[str, Any]:
        return {"messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), HumanMessage("new", id="n1")]}

    graph = single_node_graph(MessagesState, reset)
    result = run(graph, {"messages": [HumanMessage("x", id="h1"), AIMessage("y", id="a1")]}, mode)
    assert [(m.id, m.content) for m in result["messages"]] == [("n1", "new")]


class Chat(TypedDict):
    history: Annotated[list[AnyMessage], add_messages]
    turns: int


class Extended(MessagesState):
    summary: str


def test_add_messages_in_a_custom_state(mode: str) -> None:
    def respond(state: Chat) -> dict[str, Any]:
        return {"history": AIMessage("pong", id="a1"), "turns": state["turns"] + 1}

    graph = single_node_graph(Chat, respond)
    result = run(graph, {"history": [HumanMessage("ping", id="h1")], "turns": 0}, mode)
    assert [m.content for m in result["history"]] == ["ping", "pong"]
    assert result["turns"] == 1


def test_messages_state_can_be_extended(mode: str) -> None:
    graph = single_node_graph(Extended, lambda s: {"summary": f"{len(s['messages'])} messages"})
    result = run(graph, {"messages": [("user", "a"), ("ai", "b")]}, mode)
    assert result["summary"] == "2 messages"
    assert [type(m) for m in result["messages"]] == [HumanMessage, AIMessage]


# ---------------------------------------------------------------- input, output and private schemas


class Overall(TypedDict, total=False):
    question: str
    scratch: str
    answer: str


class In(TypedDict):
    question: str


class Out(TypedDict):
    answer: str


def qa_graph() -> Any:
    builder = StateGraph(Overall, input_schema=In, output_schema=Out)
    builder.add_node("think", lambda s: {"scratch": f"thinking about {s['question']}"})
    builder.add_node("answer", lambda s: {"answer": s["scratch"].upper()})
    builder.add_edge(START, "think")
    builder.add_edge("think", "answer")
    return builder.compile()


def test_output_schema_filters_the_result(mode: str) -> None:
    assert run(qa_graph(), {"question": "x"}, mode) == {"answer": "THINKING ABOUT X"}


def test_input_schema_filters_the_input(mode: str) -> None:
    result = run(qa_graph(), {"question": "q", "scratch": "smuggled", "answer": "smuggled"}, mode)
    assert result == {"answer": "THINKING ABOUT Q"}


def test_values_stream_shows_the_whole_state_despite_the_output_schema(mode: str) -> None:
    # LangGraph filters only invoke's result by the output schema; the values stream shows every state key.
    chunks = stream(qa_graph(), {"question": "x", "scratch": "smuggled"}, mode, stream_mode="values")
    assert chunks == [
        {"question": "x"},
        {"question": "x", "scratch": "thinking about x"},
        {"question": "x", "scratch": "thinking about x", "answer": "THINKING ABOUT X"},
    ]


def test_updates_stream_shows_every_state_key_written(mode: str) -> None:
    chunks = stream(qa_graph(), {"question": "x"}, mode, stream_mode="updates")
    assert chunks == [{"think": {"scratch": "thinking about x"}}, {"answer": {"answer": "THINKING ABOUT X"}}]


class Public(TypedDict):
    text: str


class Private(TypedDict):
    secret: str


class Narrow(TypedDict):
    question: str


def test_private_keys_pass_between_nodes_with_their_own_schema(mode: str) -> None:
    def make_secret(state: Public) -> Private:
        return {"secret": state["text"] + "!"}

    def use_secret(state: Private) -> Public:
        return {"text": state["secret"] * 2}

    builder = StateGraph(Public)
    builder.add_node("make_secret", make_secret)
    builder.add_node("use_secret", use_secret)
    builder.add_edge(START, "make_secret")
    builder.add_edge("make_secret", "use_secret")
    graph = builder.compile()
    assert run(graph, {"text": "hi"}, mode) == {"text": "hi!hi!"}


def test_private_keys_are_part_of_the_values_stream_and_the_snapshot(mode: str) -> None:
    """LangGraph 1.2.22: the values stream and `get_state().values` show every channel the graph's schemas declare,
    a node's private keys included (after the state schema's), while invoke's result keeps to the output schema."""
    from graphrt.checkpoint.memory import InMemorySaver

    class Ask(TypedDict):
        q: str

    class Answer(TypedDict):
        answer: str

    class Whole(TypedDict, total=False):
        q: str
        answer: str
        scratch: str

    def hide(state: Ask) -> Private:
        return {"secret": state["q"] * 2}

    def reveal(state: Private) -> Whole:
        return {"answer": state["secret"] + "!", "scratch": "z"}

    builder = StateGraph(Whole, input_schema=Ask, output_schema=Answer)
    builder.add_node("hide", hide)
    builder.add_node("reveal", reveal)
    builder.add_edge(START, "hide")
    builder.add_edge("hide", "reveal")
    graph = builder.compile(checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "p"}}
    assert stream(graph, {"q": "yo"}, mode, config, stream_mode="values") == [
        {"q": "yo"},
        {"q": "yo", "secret": "yoyo"},
        {"q": "yo", "answer": "yoyo!", "scratch": "z", "secret": "yoyo"},
    ]
    assert list(graph.get_state(config).values) == ["q", "answer", "scratch", "secret"]
    assert run(graph, {"q": "hi"}, mode, {"configurable": {"thread_id": "r"}}) == {"answer": "hihi!"}


def test_node_input_schema_given_explicitly(mode: str) -> None:
    received: list[Any] = []

    def use_secret(state: Any) -> dict[str, Any]:
        received.append(dict(state))
        return {"text": state["secret"]}

    builder = StateGraph(Public)
    builder.add_node("make_secret", lambda s: {"secret": "s3"})
    builder.add_node("use_secret", use_secret, input_schema=Private)
    builder.add_edge(START, "make_secret")
    builder.add_edge("make_secret", "use_secret")
    assert run(builder.compile(), {"text": "hi"}, mode) == {"text": "s3"}
    assert received == [{"secret": "s3"}]


def test_node_sees_only_its_input_schema_keys(mode: str) -> None:
    received: list[Any] = []

    def narrow(state: Narrow) -> dict[str, Any]:
        received.append(dict(state))
        return {"answer": "ok"}

    builder = StateGraph(Overall)
    builder.add_node("narrow", narrow)
    builder.add_edge(START, "narrow")
    assert run(builder.compile(), {"question": "q", "scratch": "s"}, mode) == {
        "question": "q",
        "scratch": "s",
        "answer": "ok",
    }
    assert received == [{"question": "q"}]


def test_a_branch_sees_the_message_ids_the_state_gets(mode: str) -> None:
    # A conditional edge reads the state with its node's writes applied: a message returned without an
    # id has, there, the id it has in the state after the step (LangGraph's, since it sets it in place).
    seen: list[str | None] = []

    def route(state: MessagesState) -> str:
        seen.append(state["messages"][-1].id)
        return "__end__"

    builder = StateGraph(MessagesState)
    builder.add_node("model", lambda state: {"messages": [AIMessage("no id")]})
    builder.add_edge(START, "model")
    builder.add_conditional_edges("model", route, ["__end__"])
    out = run(builder.compile(), {"messages": [HumanMessage("hi")]}, mode)
    assert seen == [out["messages"][-1].id] and seen[0] is not None
