"""create_react_agent with a function that picks the model at each call, `(state, runtime) -> model` (LangGraph's
dynamic model): expected values are LangGraph 1.2.22's answers for the same scripts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from pydantic import BaseModel

from graphrt.messages import HumanMessage
from graphrt.prebuilt import create_react_agent
from graphrt.runtime import Runtime
from graphrt.tools import tool
from tests.prebuilt._fake import FakeModel, ai

pytestmark = pytest.mark.timeout(30)


@tool
def add(a: int, b: int) -> int:
    """Add."""
    return a + b


@dataclass
class Ctx:
    provider: str


def brief(messages: list[Any]) -> list[tuple[str, Any]]:
    return [(m.type, m.content) for m in messages]


def test_the_function_picks_a_model_from_the_runtime_context_at_every_call() -> None:
    fast = FakeModel([ai("", ("add", {"a": 1, "b": 2}, "c1"), id="f1"), ai("fast done", id="f2")])
    smart = FakeModel([ai("smart done", id="s1")])
    picked: list[tuple[str, int]] = []

    def select(state: dict[str, Any], runtime: Runtime[Ctx]) -> FakeModel:
        picked.append((runtime.context.provider, len(state["messages"])))
        chosen = fast if runtime.context.provider == "fast" else smart
        return chosen.bind_tools([add])

    agent = create_react_agent(select, [add], context_schema=Ctx, prompt="be brief")
    first = agent.invoke({"messages": [HumanMessage("hi", id="h")]}, context=Ctx("fast"))
    second = agent.invoke({"messages": [HumanMessage("hi", id="h")]}, context=Ctx("smart"))
    assert picked == [("fast", 1), ("fast", 3), ("smart", 1)]
    assert brief(first["messages"]) == [("human", "hi"), ("ai", ""), ("tool", "3"), ("ai", "fast done")]
    assert brief(second["messages"]) == [("human", "hi"), ("ai", "smart done")]
    # The prompt still comes first; tools are bound by the function, not by the agent.
    assert [brief(c) for c in fast.calls] == [
        [("system", "be brief"), ("human", "hi")],
        [("system", "be brief"), ("human", "hi"), ("ai", ""), ("tool", "3")],
    ]
    assert [brief(c) for c in smart.calls] == [[("system", "be brief"), ("human", "hi")]]


def test_an_async_function_runs_under_ainvoke_and_is_refused_by_invoke() -> None:
    model = FakeModel([ai("smart 2", id="s2")])

    async def select(state: dict[str, Any], runtime: Runtime[Any]) -> FakeModel:
        return model

    agent = create_react_agent(select, [add])
    with pytest.raises(RuntimeError, match="Async model callable provided but agent invoked synchronously"):
        agent.invoke({"messages": [HumanMessage("x", id="x")]})
    out = anyio.run(lambda: agent.ainvoke({"messages": [HumanMessage("x", id="x")]}))
    assert brief(out["messages"]) == [("human", "x"), ("ai", "smart 2")]
    # A sync function works under ainvoke too.
    sync = create_react_agent(lambda state, runtime: FakeModel([ai("again", id="a")]), [add])
    out = anyio.run(lambda: sync.ainvoke({"messages": [HumanMessage("y", id="y")]}))
    assert brief(out["messages"]) == [("human", "y"), ("ai", "again")]


class Answer(BaseModel):
    text: str


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_structured_response_comes_from_the_model_the_function_picks(mode: str) -> None:
    model = FakeModel([ai("plain", id="p")], structured=[Answer(text="parsed")])
    contexts: list[str] = []

    def select(state: dict[str, Any], runtime: Runtime[Ctx]) -> FakeModel:
        contexts.append(runtime.context.provider)
        return model

    agent = create_react_agent(select, [add], response_format=Answer, context_schema=Ctx)
    given = {"messages": [HumanMessage("q", id="q")]}
    if mode == "sync":
        out = agent.invoke(given, context=Ctx("p"))
    else:
        out = anyio.run(lambda: agent.ainvoke(given, context=Ctx("p")))
    assert out["structured_response"] == Answer(text="parsed")
    assert contexts == ["p", "p"]  # the model call, then generate_structured_response
    [(schema, messages)] = model.structured_calls
    assert schema is Answer
    assert brief(messages) == [("human", "q"), ("ai", "plain")]
