"""create_react_agent's `pre_model_hook` and `post_model_hook`: expected values are LangGraph 1.2.22's answers
for the same scripts (a scripted model, the same tool)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.graph.message import REMOVE_ALL_MESSAGES
from graphrt.messages import AIMessage, HumanMessage, RemoveMessage, SystemMessage, ToolMessage
from graphrt.prebuilt import create_react_agent
from graphrt.prebuilt.chat_agent_executor import AgentStatePydantic
from graphrt.tools import tool
from graphrt.types import Command, interrupt
from tests.prebuilt._fake import FakeModel, ai

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def invoke(graph: Any, input: Any, mode: str, config: Any = None) -> Any:
    if mode == "sync":
        return graph.invoke(input, config)
    return anyio.run(lambda: graph.ainvoke(input, config))


@tool
def add(a: int, b: int) -> int:
    """Add."""
    return a + b


def seen(model: FakeModel) -> list[list[tuple[str, Any]]]:
    """What the model was given at each call, as (type, content)."""
    return [[(m.type, m.content) for m in call] for call in model.calls]


def brief(messages: list[Any]) -> list[tuple[str, Any]]:
    return [(m.type, m.content) for m in messages]


def test_llm_input_messages_are_what_the_model_sees_and_leave_the_state_alone(mode: str) -> None:
    hooks: list[tuple[int, list[str]]] = []

    def last_only(state: dict[str, Any]) -> dict[str, Any]:
        hooks.append((len(state["messages"]), sorted(state)))
        return {"llm_input_messages": state["messages"][-1:]}

    model = FakeModel([ai("", ("add", {"a": 1, "b": 2}, "c1"), id="a1"), ai("done", id="a2")])
    agent = create_react_agent(model, [add], pre_model_hook=last_only, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    out = invoke(agent, {"messages": [HumanMessage("hi", id="h1")]}, mode, config)
    # The hook runs before each model call, the second time after the tools.
    assert hooks == [(1, ["messages", "remaining_steps"]), (3, ["messages", "remaining_steps"])]
    assert seen(model) == [[("human", "hi")], [("tool", "3")]]
    assert brief(out["messages"]) == [("human", "hi"), ("ai", ""), ("tool", "3"), ("ai", "done")]
    # Like LangGraph: the hook's key is in the thread's state but not in the run's output.
    assert sorted(out) == ["messages"]
    assert sorted(agent.get_state(config).values) == ["llm_input_messages", "messages"]


def test_updates_run_through_the_hook_nodes_in_langgraphs_order() -> None:
    model = FakeModel([ai("", ("add", {"a": 1, "b": 2}, "c1"), id="a1"), ai("done", id="a2")])
    agent = create_react_agent(model, [add], pre_model_hook=lambda s: {"llm_input_messages": s["messages"]})
    nodes = [list(chunk) for chunk in agent.stream({"messages": [HumanMessage("hi")]}, stream_mode="updates")]
    assert nodes == [["pre_model_hook"], ["agent"], ["tools"], ["pre_model_hook"], ["agent"]]
    assert sorted(agent.get_graph().nodes) == ["__end__", "__start__", "agent", "pre_model_hook", "tools"]


def test_a_pre_hook_that_returns_messages_rewrites_the_conversation(mode: str) -> None:
    given: list[list[str]] = []

    def summarize(state: dict[str, Any]) -> dict[str, Any]:
        given.append([m.content for m in state["messages"]])
        return {
            "messages": [RemoveMessage(id=REMOVE_ALL_MESSAGES), SystemMessage("summary", id="s"), state["messages"][-1]]
        }

    model = FakeModel([ai("one", id="b1"), ai("two", id="b2")])
    agent = create_react_agent(model, [add], pre_model_hook=summarize, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    first = invoke(agent, {"messages": [HumanMessage("q1", id="q1")]}, mode, config)
    second = invoke(agent, {"messages": [HumanMessage("q2", id="q2")]}, mode, config)
    assert given == [["q1"], ["summary", "q1", "one", "q2"]]
    assert seen(model) == [[("system", "summary"), ("human", "q1")], [("system", "summary"), ("human", "q2")]]
    assert brief(first["messages"]) == [("system", "summary"), ("human", "q1"), ("ai", "one")]
    assert brief(second["messages"]) == [("system", "summary"), ("human", "q2"), ("ai", "two")]


def test_post_hook_runs_after_every_model_call_and_the_calls_still_reach_the_tools() -> None:
    hooks: list[tuple[str, int]] = []

    def guard(state: dict[str, Any]) -> dict[str, Any]:
        last = state["messages"][-1]
        hooks.append((last.content, len(last.tool_calls)))
        return {"messages": [AIMessage("filtered", id=last.id)]} if last.content == "bad" else {}

    model = FakeModel(
        [ai("", ("add", {"a": 1, "b": 2}, "c1"), ("add", {"a": 3, "b": 4}, "c2"), id="p1"), ai("bad", id="p2")]
    )
    agent = create_react_agent(model, [add], post_model_hook=guard)
    chunks = list(agent.stream({"messages": [HumanMessage("hi", id="h1")]}, stream_mode="updates"))
    assert [list(c) for c in chunks] == [
        ["agent"],
        ["post_model_hook"],
        ["tools"],
        ["tools"],
        ["agent"],
        ["post_model_hook"],
    ]
    assert hooks == [("", 2), ("bad", 0)]
    assert seen(model)[1] == [("human", "hi"), ("ai", ""), ("tool", "3"), ("tool", "7")]
    final = agent.get_graph()
    assert sorted(final.nodes) == ["__end__", "__start__", "agent", "post_model_hook", "tools"]
    # The hook's replacement is what the conversation ends with.
    assert chunks[-1]["post_model_hook"]["messages"][0].content == "filtered"


def test_both_hooks_with_an_interrupt_in_the_post_hook(mode: str) -> None:
    order: list[Any] = []

    def pre(state: dict[str, Any]) -> dict[str, Any]:
        order.append("pre")
        return {"llm_input_messages": [SystemMessage("sys"), *state["messages"]]}

    def review(state: dict[str, Any]) -> dict[str, Any]:
        order.append(("post", interrupt("ok?")))
        return {}

    model = FakeModel([ai("", ("add", {"a": 5, "b": 6}, "c1"), id="x1"), ai("fin", id="x2")])
    agent = create_react_agent(model, [add], pre_model_hook=pre, post_model_hook=review, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    paused = invoke(agent, {"messages": [HumanMessage("go", id="g")]}, mode, config)
    assert paused["__interrupt__"][0].value == "ok?"
    invoke(agent, Command(resume="yes"), mode, config)
    done = invoke(agent, Command(resume="yes2"), mode, config)
    assert order == ["pre", ("post", "yes"), "pre", ("post", "yes2")]
    assert seen(model) == [
        [("system", "sys"), ("human", "go")],
        [("system", "sys"), ("human", "go"), ("ai", ""), ("tool", "11")],
    ]
    assert brief(done["messages"]) == [("human", "go"), ("ai", ""), ("tool", "11"), ("ai", "fin")]
    assert sorted(done) == ["messages"]


class Extended(AgentStatePydantic):
    extra: str = "e"


def test_a_pydantic_state_gets_llm_input_messages_too(mode: str) -> None:
    kinds: list[str] = []

    def trim(state: Extended) -> dict[str, Any]:
        kinds.append(type(state).__name__)
        return {"llm_input_messages": [SystemMessage("trimmed"), state.messages[-1]]}

    model = FakeModel([ai("a1", id="a1"), ai("a2", id="a2")])
    agent = create_react_agent(model, [], pre_model_hook=trim, state_schema=Extended, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    invoke(agent, {"messages": [HumanMessage("x", id="x")]}, mode, config)
    out = invoke(agent, {"messages": [HumanMessage("y", id="y")]}, mode, config)
    assert kinds == ["Extended", "Extended"]
    assert seen(model) == [[("system", "trimmed"), ("human", "x")], [("system", "trimmed"), ("human", "y")]]
    assert brief(out["messages"]) == [("human", "x"), ("ai", "a1"), ("human", "y"), ("ai", "a2")]


def test_a_state_schema_that_cannot_take_llm_input_messages_is_a_clear_error() -> None:
    from dataclasses import dataclass, field

    @dataclass
    class State:
        messages: list[Any] = field(default_factory=list)

    with pytest.raises(TypeError, match=r"pre_model_hook.*TypedDict or pydantic"):
        create_react_agent(FakeModel([]), [add], pre_model_hook=lambda s: {}, state_schema=State)


def test_a_post_hook_may_answer_tool_calls_itself() -> None:
    """A call the hook answers (say, refused by a guardrail) is not run; the rest are, then the model again."""

    def refuse_first(state: dict[str, Any]) -> dict[str, Any]:
        last = state["messages"][-1]
        if last.type == "ai" and last.tool_calls:
            return {"messages": [ToolMessage("refused", tool_call_id=last.tool_calls[0]["id"])]}
        return {}

    two = FakeModel(
        [ai("", ("add", {"a": 1, "b": 2}, "c1"), ("add", {"a": 3, "b": 4}, "c2"), id="a1"), ai("ok", id="a2")]
    )
    agent = create_react_agent(two, [add], post_model_hook=refuse_first)
    chunks = [list(c) for c in agent.stream({"messages": [HumanMessage("hi")]}, stream_mode="updates")]
    assert chunks == [["agent"], ["post_model_hook"], ["tools"], ["agent"], ["post_model_hook"]]
    assert seen(two)[1] == [("human", "hi"), ("ai", ""), ("tool", "refused"), ("tool", "7")]

    one = FakeModel([ai("", ("add", {"a": 1, "b": 2}, "c1"), id="a1"), ai("ok", id="a2")])
    agent = create_react_agent(one, [add], post_model_hook=refuse_first)
    chunks = [list(c) for c in agent.stream({"messages": [HumanMessage("hi")]}, stream_mode="updates")]
    assert chunks == [["agent"], ["post_model_hook"], ["agent"], ["post_model_hook"]]
    assert seen(one)[1] == [("human", "hi"), ("ai", ""), ("tool", "refused")]
