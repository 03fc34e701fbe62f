"""A LangChain chat model used through graphrt's protocol (langchain_core is a dev dependency)."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from langchain_core import messages as lc
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

from graphrt.graph import START, MessagesState, StateGraph
from graphrt.messages import AIMessage, AIMessageChunk, ToolMessage
from graphrt.models import LangChainChatModel, ScriptedChatModel, as_chat_model
from graphrt.tools import tool

pytestmark = pytest.mark.timeout(30)


SEEN: list[Any] = []
BOUND: list[dict[str, Any]] = []


class Recording(GenericFakeChatModel):
    """A fake LangChain model that records what it was given and bound."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        BOUND.append({"tools": tools, **kwargs})
        return self.bind(tools=tools, **kwargs)

    def _generate(self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any) -> Any:
        SEEN.append((messages, stop, kwargs))
        return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)


@tool
def get_weather(city: str) -> str:
    """Weather for a city."""
    return "sunny"


def test_messages_tools_and_replies_cross_over() -> None:
    SEEN.clear()
    BOUND.clear()
    call = lc.AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Oslo"}, "id": "c1"}])
    model = LangChainChatModel(Recording(messages=iter([call])))
    reply = model.bind_tools([get_weather], tool_choice="any").invoke(
        [
            ("system", "Be brief."),
            ("user", "hi"),
            AIMessage("", tool_calls=[{"name": "get_weather", "args": {"city": "Rome"}, "id": "c0"}]),
            ToolMessage("sunny", tool_call_id="c0"),
        ],
        stop=["END"],
    )
    assert type(reply) is AIMessage
    assert reply.tool_calls == [{"name": "get_weather", "args": {"city": "Oslo"}, "id": "c1", "type": "tool_call"}]
    given, stop, _ = SEEN[0]
    assert [type(m) for m in given] == [lc.SystemMessage, lc.HumanMessage, lc.AIMessage, lc.ToolMessage]
    assert given[2].tool_calls[0]["args"] == {"city": "Rome"}
    assert stop == ["END"]
    assert BOUND[0]["tool_choice"] == "any"
    assert BOUND[0]["tools"][0]["function"]["name"] == "get_weather"


def test_streams_and_async() -> None:
    model = LangChainChatModel(GenericFakeChatModel(messages=iter([lc.AIMessage("a b"), lc.AIMessage("c d")])))
    chunks = list(model.stream("x"))
    assert all(type(c) is AIMessageChunk for c in chunks)
    assert (chunks[0] + chunks[1:]).content == "a b"
    assert anyio.run(model.ainvoke, "y").content == "c d"


def test_tokens_reach_the_messages_stream_mode() -> None:
    model = as_chat_model(GenericFakeChatModel(messages=iter([lc.AIMessage("hello big world")])))

    def chat(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState).add_node("chat", chat).add_edge(START, "chat").compile()
    events = list(graph.stream({"messages": [("user", "hi")]}, stream_mode="messages"))
    assert [c.content for c, _ in events] == ["hello", " ", "big", " ", "world"]
    assert events[0][1]["langgraph_node"] == "chat"


def test_as_chat_model() -> None:
    scripted = ScriptedChatModel(["x"])
    assert as_chat_model(scripted) is scripted
    with pytest.raises(TypeError, match="Expected a chat model"):
        as_chat_model(object())
    with pytest.raises(TypeError, match="wraps a langchain_core chat model"):
        LangChainChatModel(object())


def test_langchain_tools_run_in_a_tool_node_and_an_agent_takes_a_langchain_model() -> None:
    """LangGraph code keeps `from langchain_core.tools import tool`: graphrt's ToolNode runs those tools through
    their own `invoke`, and `create_react_agent` wraps a LangChain chat model. The answers are LangGraph 1.2.22's
    for the same script (its deprecation warning aside)."""
    from langchain_core.tools import tool as lc_tool

    from graphrt.checkpoint.memory import InMemorySaver
    from graphrt.prebuilt import create_react_agent

    @lc_tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    class Fake(GenericFakeChatModel):
        def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
            return self

    calls = [
        {"name": "add", "args": {"a": 1, "b": 2}, "id": "c1"},
        {"name": "add", "args": {"a": 3, "b": "x"}, "id": "c2"},
    ]
    model = Fake(messages=iter([lc.AIMessage("", tool_calls=calls), lc.AIMessage("done: 3")]))
    agent = create_react_agent(model, [add], checkpointer=InMemorySaver(), prompt="be brief")
    out = agent.invoke({"messages": [("user", "add")]}, {"configurable": {"thread_id": "1"}})
    assert [(type(m).__name__, m.content, getattr(m, "status", None)) for m in out["messages"]] == [
        ("HumanMessage", "add", None),
        ("AIMessage", "", None),
        ("ToolMessage", "3", "success"),
        (
            "ToolMessage",
            "Error invoking tool 'add' with kwargs {'a': 3, 'b': 'x'} with error:\n b: Input should be a valid "
            "integer, unable to parse string as an integer\n Please fix the error and try again.",
            "error",
        ),
        ("AIMessage", "done: 3", None),
    ]
    assert [m.name for m in out["messages"][2:4]] == ["add", "add"]


def test_a_langchain_tool_is_refused_by_graphrts_tool_decorator_with_what_to_do() -> None:
    from langchain_core.tools import tool as lc_tool

    @lc_tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    with pytest.raises(TypeError, match="it is a LangChain tool already, pass it as it is"):
        tool(add)
    with pytest.raises(TypeError, match="A tool must be a graphrt tool"):
        from graphrt.prebuilt import ToolNode

        ToolNode([42])  # type: ignore[list-item]


def test_a_langchain_tool_subclass_written_by_the_user_runs_in_a_tool_node() -> None:
    """A `langchain_core.tools.BaseTool` subclass defined outside LangChain's packages is still a LangChain tool."""
    from langchain_core.tools import BaseTool as LangChainBaseTool
    from pydantic import BaseModel

    from graphrt.prebuilt import ToolNode

    class Args(BaseModel):
        text: str

    class Shout(LangChainBaseTool):
        name: str = "shout"
        description: str = "Upper-case the text."
        args_schema: type[BaseModel] = Args

        def _run(self, text: str) -> str:
            return text.upper()

    call = AIMessage("", tool_calls=[{"name": "shout", "args": {"text": "hi"}, "id": "s1"}])
    out = ToolNode([Shout()]).invoke({"messages": [call]})
    assert [(m.content, m.tool_call_id, m.name) for m in out["messages"]] == [("HI", "s1", "shout")]
