"""`create_agent` and `create_react_agent`: the loop, its graph shape and checkpoints (pinned from LangGraph
1.2.22's `create_react_agent` with a scripted model), prompts, structured output, return_direct, subgraphs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import anyio
import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.errors import GraphRecursionError
from graphrt.graph import START, MessagesState, StateGraph
from graphrt.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage
from graphrt.prebuilt import InjectedState, ToolRuntime, create_agent, create_react_agent
from graphrt.store.memory import InMemoryStore
from graphrt.tools import tool
from tests.prebuilt._fake import FakeModel, ai

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def invoke(graph: Any, input: Any, mode: str, config: Any = None, **kwargs: Any) -> Any:
    if mode == "sync":
        return graph.invoke(input, config, **kwargs)
    return anyio.run(lambda: graph.ainvoke(input, config, **kwargs))


@tool
def add(a: int, b: int) -> int:
    """Add."""
    return a + b


def two_calls() -> FakeModel:
    return FakeModel(
        [ai("", ("add", {"a": 1, "b": 2}, "c1"), ("add", {"a": 3, "b": 4}, "c2"), id="a1"), ai("3 and 7", id="a2")]
    )


def test_react_agent_updates_and_checkpoints_match_langgraph() -> None:
    agent = create_react_agent(two_calls(), [add], checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "t"}}
    updates = list(agent.stream({"messages": [HumanMessage("hi", id="h1")]}, config))
    assert [list(u) for u in updates] == [["agent"], ["tools"], ["tools"], ["agent"]]
    [three], [seven] = updates[1]["tools"]["messages"], updates[2]["tools"]["messages"]
    assert three.model_copy(update={"id": None}) == ToolMessage("3", name="add", tool_call_id="c1")
    assert seven.model_copy(update={"id": None}) == ToolMessage("7", name="add", tool_call_id="c2")
    # As in LangGraph, a tool's message is the very object the state holds: it took its id there.
    assert [m for m in agent.get_state(config).values["messages"] if m.type == "tool"] == [three, seven]
    assert three.id and seven.id
    history = [(h.metadata["source"], h.metadata["step"], h.next) for h in agent.get_state_history(config)]
    assert history == [
        ("loop", 3, ()),
        ("loop", 2, ("agent",)),
        ("loop", 1, ("tools", "tools")),
        ("loop", 0, ("agent",)),
        ("input", -1, ("__start__",)),
    ]


def test_react_agent_v1_runs_all_calls_in_one_task() -> None:
    agent = create_react_agent(two_calls(), [add], version="v1")
    updates = list(agent.stream({"messages": [HumanMessage("hi")]}))
    assert [list(u) for u in updates] == [["agent"], ["tools"], ["agent"]]
    assert [m.content for m in updates[1]["tools"]["messages"]] == ["3", "7"]


def test_create_agent_loop_and_node_names(mode: str) -> None:
    model = two_calls()
    agent = create_agent(model, [add], system_prompt="Be brief.")
    out = invoke(agent, {"messages": [{"role": "user", "content": "hi"}]}, mode)
    assert [(m.type, m.content) for m in out["messages"]] == [
        ("human", "hi"),
        ("ai", ""),
        ("tool", "3"),
        ("tool", "7"),
        ("ai", "3 and 7"),
    ]
    assert set(agent.nodes) == {"__start__", "model", "tools"}
    assert model.bound == [add]
    # The system prompt leads every model call and is never stored.
    assert all(call[0] == SystemMessage("Be brief.") for call in model.calls)
    assert [len(call) for call in model.calls] == [2, 5]
    assert not any(m.type == "system" for m in out["messages"])


def test_no_tools_is_a_single_model_call() -> None:
    model = FakeModel([AIMessage("hello")])
    agent = create_agent(model)
    assert set(agent.nodes) == {"__start__", "model"}
    assert agent.invoke({"messages": [HumanMessage("hi")]})["messages"][-1].content == "hello"
    assert model.bound == []


def test_prompt_function_and_name() -> None:
    model = FakeModel([AIMessage("hi")])
    agent = create_react_agent(
        model, [], prompt=lambda state: [SystemMessage("sys"), *state["messages"][-1:]], name="bob"
    )
    out = agent.invoke({"messages": [HumanMessage("a"), HumanMessage("b")]})
    assert model.calls == [[SystemMessage("sys"), HumanMessage("b", id=out["messages"][1].id)]]
    assert out["messages"][-1].name == "bob"
    assert agent.name == "bob"


class Weather(BaseModel):
    city: str
    degrees: int


def test_create_agent_structured_response_in_the_model_node(mode: str) -> None:
    model = FakeModel(
        [ai("", ("add", {"a": 1, "b": 1}, "c")), AIMessage("It is 20 in Paris")], [Weather(city="Paris", degrees=20)]
    )
    agent = create_agent(model, [add], response_format=Weather)
    out = invoke(agent, {"messages": [HumanMessage("weather?")]}, mode)
    assert out["structured_response"] == Weather(city="Paris", degrees=20)
    schema, seen = model.structured_calls[0]
    assert schema is Weather and seen[-1].content == "It is 20 in Paris"
    assert set(agent.nodes) == {"__start__", "model", "tools"}


def test_react_agent_structured_response_node_with_prompt() -> None:
    model = FakeModel([AIMessage("20 in Paris")], [Weather(city="Paris", degrees=20)])
    agent = create_react_agent(model, [add], response_format=("Extract the weather.", Weather))
    updates = list(agent.stream({"messages": [HumanMessage("weather?")]}))
    assert [list(u) for u in updates] == [["agent"], ["generate_structured_response"]]
    assert updates[-1]["generate_structured_response"] == {"structured_response": Weather(city="Paris", degrees=20)}
    assert model.structured_calls[0][1][0] == SystemMessage("Extract the weather.")


def test_without_response_format_there_is_no_structured_response() -> None:
    out = create_agent(FakeModel([AIMessage("x")])).invoke({"messages": [HumanMessage("hi")]})
    assert set(out) == {"messages"}


def test_return_direct_ends_after_the_tool(mode: str) -> None:
    @tool(return_direct=True)
    def final(text: str) -> str:
        """Answers directly."""
        return text.upper()

    model = FakeModel([ai("", ("final", {"text": "done"}, "f"))])
    out = invoke(create_agent(model, [final, add]), {"messages": [HumanMessage("go")]}, mode)
    assert out["messages"][-1].content == "DONE" and len(model.calls) == 1


def test_tool_errors_go_back_to_the_model(mode: str) -> None:
    @tool
    def fails() -> str:
        """Fails."""
        raise RuntimeError("down")

    model = FakeModel([ai("", ("fails", {}, "x")), AIMessage("sorry")])
    out = invoke(create_agent(model, [fails]), {"messages": [HumanMessage("go")]}, mode)
    assert out["messages"][2].status == "error"
    assert out["messages"][2].content == "Error: RuntimeError('down')\n Please fix your mistakes."
    assert out["messages"][-1].content == "sorry"


@dataclass
class Context:
    user_id: str


class UserInfo(TypedDict):
    name: str


def test_seed_tools_read_and_write_the_store_through_the_runtime(mode: str) -> None:
    store = InMemoryStore()
    store.put(("users",), "user_123", {"name": "John Smith", "language": "English"})

    @tool
    def get_user_info(runtime: ToolRuntime[Context]) -> str:
        """Look up user info."""
        user_info = runtime.store.get(("users",), runtime.context.user_id)  # type: ignore[union-attr]
        return str(user_info.value) if user_info else "Unknown user"

    @tool
    def save_user_info(user_info: UserInfo, runtime: ToolRuntime[Context]) -> str:
        """Save user info."""
        runtime.store.put(("users",), runtime.context.user_id, dict(user_info))  # type: ignore[union-attr]
        return "Successfully saved user info."

    assert save_user_info.tool_call_schema.model_json_schema()["$defs"]["UserInfo"]["required"] == ["name"]
    model = FakeModel(
        [
            ai("", ("get_user_info", {}, "g")),
            AIMessage("You are John Smith."),
            ai("", ("save_user_info", {"user_info": {"name": "Jane"}}, "s")),
            AIMessage("Saved."),
        ]
    )
    agent = create_agent(model, tools=[get_user_info, save_user_info], store=store, context_schema=Context)
    out = invoke(
        agent,
        {"messages": [{"role": "user", "content": "look up user information"}]},
        mode,
        context=Context("user_123"),
    )
    assert out["messages"][2].content == "{'name': 'John Smith', 'language': 'English'}"
    invoke(agent, {"messages": [{"role": "user", "content": "My name is Jane"}]}, mode, context=Context("user_123"))
    assert store.get(("users",), "user_123").value == {"name": "Jane"}  # type: ignore[union-attr]


def test_tools_of_an_agent_see_the_graph_state_when_each_call_is_sent_alone(mode: str) -> None:
    """`create_react_agent` sends each tool call on its own: a tool's `InjectedState` and `ToolRuntime.state` are
    the agent's state as of that step (LangGraph 1.2.22 reads its channels; both counts were 2 there)."""

    @tool
    def count(
        state: Annotated[dict[str, Any], InjectedState], messages: Annotated[list[Any], InjectedState("messages")]
    ) -> str:
        """Count messages."""
        return f"{len(state['messages'])} {len(messages)} {sorted(state)}"

    @tool
    def runtime_count(runtime: ToolRuntime) -> str:
        """Count messages through the runtime."""
        return str(len(runtime.state["messages"]))

    for make in (create_react_agent, create_agent):
        model = FakeModel([ai("", ("count", {}, "c1"), ("runtime_count", {}, "c2")), ai("done")])
        out = invoke(make(model, [count, runtime_count]), {"messages": [HumanMessage("hi")]}, mode)
        assert [m.content for m in out["messages"][2:4]] == ["2 2 ['messages']", "2"]


def test_history_with_unanswered_tool_calls_is_rejected() -> None:
    agent = create_agent(FakeModel([AIMessage("x")]), [add])
    with pytest.raises(
        ValueError, match="Found AIMessages with tool_calls that do not have a corresponding ToolMessage"
    ):
        agent.invoke({"messages": [ai("", ("add", {"a": 1, "b": 1}, "lost")), HumanMessage("hi")]})


def test_agent_keeps_a_thread_with_a_checkpointer() -> None:
    model = FakeModel([AIMessage("one"), AIMessage("two")])
    agent = create_agent(model, [add], checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "1"}}
    agent.invoke({"messages": [HumanMessage("a")]}, config)
    out = agent.invoke({"messages": [HumanMessage("b")]}, config)
    assert [m.content for m in out["messages"]] == ["a", "one", "b", "two"]
    assert len(model.calls[1]) == 3


def test_agent_as_a_node_of_a_graph(mode: str) -> None:
    agent = create_agent(two_calls(), [add], name="math")
    builder = StateGraph(MessagesState)
    builder.add_node("math", agent)
    builder.add_edge(START, "math")
    graph = builder.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "p"}}
    out = invoke(graph, {"messages": [HumanMessage("hi")]}, mode, config)
    assert [m.content for m in out["messages"]] == ["hi", "", "3", "7", "3 and 7"]
    assert out["messages"][-1].name == "math"
    assert len(graph.get_state(config).values["messages"]) == 5


def test_unsupported_options_are_clear_errors() -> None:
    with pytest.raises(NotImplementedError, match="middleware"):
        create_agent(FakeModel([]), [add], middleware=[object()])
    with pytest.raises(TypeError, match="create_agent takes a chat model"):
        create_agent(lambda state: None, [add])
    with pytest.raises(TypeError, match="An agent needs a chat model"):
        create_react_agent(object(), [add])


def test_model_string_goes_through_init_chat_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    # The seeds' bare Claude name: the provider is inferred, and a missing key is named.
    with pytest.raises(Exception, match="ANTHROPIC_API_KEY"):
        create_agent("claude-sonnet-4-5-20250929", [add])
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key-not-real")
    agent = create_agent("anthropic:claude-3-5-haiku-latest", [add])
    assert set(agent.nodes) == {"__start__", "model", "tools"}


def _calls_forever() -> list[AIMessage]:
    return [
        AIMessage("", tool_calls=[{"name": "add", "args": {"a": i, "b": 1}, "id": f"c{i}"}], id=f"a{i}")
        for i in range(20)
    ]


@pytest.mark.parametrize("limit", [3, 4, 5, 6])
def test_react_agent_near_the_recursion_limit_answers_sorry(limit: int) -> None:
    # LangGraph's answers for these limits (its v2 agent: a tool call is a step, so odd limits still fail).
    sorry = "Sorry, need more steps to process this request."
    want = {
        4: ["hi", "", "1", sorry],
        6: ["hi", "", "1", "", "2", sorry],
    }
    agent = create_react_agent(FakeModel(_calls_forever()), [add])
    if limit not in want:
        with pytest.raises(GraphRecursionError):
            agent.invoke({"messages": [HumanMessage("hi")]}, {"recursion_limit": limit})
        return
    out = agent.invoke({"messages": [HumanMessage("hi")]}, {"recursion_limit": limit})
    assert [m.content for m in out["messages"]] == want[limit]
    assert out["messages"][-1].tool_calls == [] and out["messages"][-1].id == f"a{limit // 2 - 1}"


def test_create_agent_does_not_answer_sorry_it_reaches_the_limit() -> None:
    with pytest.raises(GraphRecursionError):
        create_agent(FakeModel(_calls_forever()), [add]).invoke(
            {"messages": [HumanMessage("hi")]}, {"recursion_limit": 4}
        )


def test_pydantic_agent_state_works_and_counts_steps() -> None:
    from graphrt.prebuilt.chat_agent_executor import AgentStatePydantic, create_tool_calling_executor

    assert create_tool_calling_executor is create_react_agent
    agent = create_react_agent(FakeModel(_calls_forever()), [add], state_schema=AgentStatePydantic)
    out = agent.invoke({"messages": [HumanMessage("hi")]}, {"recursion_limit": 4})
    assert [m.content for m in out["messages"]] == ["hi", "", "1", "Sorry, need more steps to process this request."]
