"""`ToolNode` and `tools_condition`; expected texts are LangGraph 1.2.22's, pinned."""

from __future__ import annotations

import threading
import time
from typing import Annotated, Any, TypedDict

import anyio
import pytest

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.graph import END, START, StateGraph
from graphrt.graph.message import add_messages
from graphrt.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from graphrt.prebuilt import InjectedState, InjectedStore, ToolNode, ToolRuntime, tools_condition
from graphrt.store.base import BaseStore
from graphrt.store.memory import InMemoryStore
from graphrt.tools import ToolException, tool
from graphrt.types import Command, interrupt
from tests.prebuilt._fake import ai

pytestmark = pytest.mark.timeout(30)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def run(node: ToolNode, input: Any, mode: str) -> Any:
    return node.invoke(input) if mode == "sync" else anyio.run(node.ainvoke, input)


@tool
def add(a: int, b: int) -> int:
    """Add."""
    return a + b


@tool
def boom(x: int) -> int:
    """Boom."""
    raise ValueError("bad x")


BAD_CALLS = [ai("", ("boom", {"x": 1}, "b1"), ("add", {"a": "x", "b": 1}, "b2"), ("nope", {}, "b3"))]
BOOM_CALL = [ai("", ("boom", {"x": 1}, "b1"))]
BOOM = "Error: ValueError('bad x')\n Please fix your mistakes."
INVALID_ARGS = (
    "Error invoking tool 'add' with kwargs {'a': 'x', 'b': 1} with error:\n a: Input should be a valid integer, "
    "unable to parse string as an integer\n Please fix the error and try again."
)
"""LangGraph 1.2.22's default answer to invalid arguments."""
INVALID_ARGS_WRAPPED = f"Error: ToolInvocationError({INVALID_ARGS!r})\n Please fix your mistakes."
"""Its answer with `handle_tool_errors=True`."""
UNKNOWN = "Error: nope is not a valid tool, try one of [add, boom]."


def test_answers_each_call_with_a_tool_message(mode: str) -> None:
    calls = [ai("", ("add", {"a": 1, "b": 2}, "c1"), ("add", {"a": 3, "b": 4}, "c2"))]
    assert run(ToolNode([add]), {"messages": calls}, mode) == {
        "messages": [
            ToolMessage("3", name="add", tool_call_id="c1"),
            ToolMessage("7", name="add", tool_call_id="c2"),
        ]
    }
    assert run(ToolNode([add]), calls, mode) == [
        ToolMessage("3", name="add", tool_call_id="c1"),
        ToolMessage("7", name="add", tool_call_id="c2"),
    ]
    direct = [{"name": "add", "args": {"a": 5, "b": 5}, "id": "d", "type": "tool_call"}]
    assert run(ToolNode([add]), direct, mode) == {"messages": [ToolMessage("10", name="add", tool_call_id="d")]}


def test_plain_functions_become_tools(mode: str) -> None:
    def mul(a: int, b: int) -> int:
        """Multiply."""
        return a * b

    node = ToolNode([mul])
    assert list(node.tools_by_name) == ["mul"]
    out = run(node, [ai("", ("mul", {"a": 2, "b": 3}, "m"))], mode)
    assert out == [ToolMessage("6", name="mul", tool_call_id="m")]


def test_calls_run_in_parallel_sync() -> None:
    barrier = threading.Barrier(3, timeout=5)

    @tool
    def wait(n: int) -> int:
        """Wait for the two others: only finishes if all three run at once."""
        barrier.wait()
        return n

    calls = [ai("", *[("wait", {"n": i}, f"w{i}") for i in range(3)])]
    out = ToolNode([wait]).invoke({"messages": calls})
    assert [m.content for m in out["messages"]] == ["0", "1", "2"]


def test_calls_run_in_parallel_async() -> None:
    started: list[int] = []

    @tool
    async def wait(n: int) -> int:
        """Sleeps; three at once take one sleep, not three."""
        started.append(n)
        await anyio.sleep(0.3)
        return n

    calls = [ai("", *[("wait", {"n": i}, f"w{i}") for i in range(3)])]
    t0 = time.perf_counter()
    out = anyio.run(ToolNode([wait]).ainvoke, {"messages": calls})
    assert time.perf_counter() - t0 < 0.8
    assert [m.content for m in out["messages"]] == ["0", "1", "2"]


def test_default_turns_every_error_into_a_message(mode: str) -> None:
    out = run(ToolNode([add, boom]), {"messages": BAD_CALLS}, mode)
    assert out == {
        "messages": [
            ToolMessage(BOOM, name="boom", tool_call_id="b1", status="error"),
            ToolMessage(INVALID_ARGS, name="add", tool_call_id="b2", status="error"),
            ToolMessage(UNKNOWN, name="nope", tool_call_id="b3", status="error"),
        ]
    }


def test_true_words_every_error_with_its_repr(mode: str) -> None:
    out = run(ToolNode([add, boom], handle_tool_errors=True), {"messages": BAD_CALLS}, mode)
    assert [m.content for m in out["messages"]] == [BOOM, INVALID_ARGS_WRAPPED, UNKNOWN]


def test_false_raises(mode: str) -> None:
    with pytest.raises(ValueError, match=r"^bad x$"):
        run(ToolNode([add, boom], handle_tool_errors=False), {"messages": BOOM_CALL}, mode)


def test_string_handler(mode: str) -> None:
    out = run(ToolNode([add, boom], handle_tool_errors="try again"), {"messages": BAD_CALLS}, mode)
    assert [m.content for m in out["messages"]] == ["try again", "try again", UNKNOWN]


def test_exception_types(mode: str) -> None:
    out = run(ToolNode([boom], handle_tool_errors=(KeyError, ValueError)), BOOM_CALL, mode)
    assert out[0].content == BOOM
    with pytest.raises(ValueError, match="bad x"):
        run(ToolNode([boom], handle_tool_errors=KeyError), BOOM_CALL, mode)


def test_callable_handles_the_types_it_annotates(mode: str) -> None:
    def handler(e: ValueError) -> str:
        return f"handled {e}"

    out = run(ToolNode([boom], handle_tool_errors=handler), BOOM_CALL, mode)
    assert out == [ToolMessage("handled bad x", name="boom", tool_call_id="b1", status="error")]

    @tool
    def key_error() -> int:
        """Fails with KeyError."""
        raise KeyError("k")

    with pytest.raises(KeyError):
        run(ToolNode([key_error], handle_tool_errors=handler), [ai("", ("key_error", {}, "k1"))], mode)


def test_handler_annotated_with_a_non_exception_is_rejected() -> None:
    def handler(e: int) -> str:
        return ""

    with pytest.raises(ValueError, match="must annotate its argument with Exception types"):
        ToolNode([boom], handle_tool_errors=handler)


def test_tool_exception_is_handled(mode: str) -> None:
    @tool
    def refuse() -> str:
        """Refuses."""
        raise ToolException("not allowed")

    out = run(ToolNode([refuse]), [ai("", ("refuse", {}, "r"))], mode)
    assert out[0].content == "Error: ToolException('not allowed')\n Please fix your mistakes."


def test_async_only_tool_in_sync_mode_is_a_clear_error() -> None:
    @tool
    async def later() -> str:
        """Async only."""
        return "x"

    with pytest.raises(TypeError, match="Tool 'later' is async only"):
        ToolNode([later]).invoke([ai("", ("later", {}, "l"))])


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match=r"^No message found in input$"):
        ToolNode([add]).invoke({"messages": []})
    with pytest.raises(ValueError, match=r"^No AIMessage found in input$"):
        ToolNode([add]).invoke([HumanMessage("hi")])


class State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]
    foo: str


def tool_graph(tools: list[Any], store: BaseStore | None = None, handle: Any = True) -> Any:
    builder = StateGraph(State)
    builder.add_node("tools", ToolNode(tools, handle_tool_errors=handle))
    builder.add_edge(START, "tools")
    builder.add_edge("tools", END)
    return builder.compile(store=store, checkpointer=InMemorySaver())


def invoke(graph: Any, input: Any, mode: str, **kwargs: Any) -> Any:
    config = {"configurable": {"thread_id": "t", "user": "u1"}}
    if mode == "sync":
        return graph.invoke(input, config, **kwargs)
    return anyio.run(lambda: graph.ainvoke(input, config, **kwargs))


def test_injected_state_store_and_runtime_in_a_graph(mode: str) -> None:
    seen: dict[str, Any] = {}
    store = InMemoryStore()

    @tool
    def inspect_all(
        x: int,
        state: Annotated[dict[str, Any], InjectedState],
        foo: Annotated[str, InjectedState("foo")],
        store: Annotated[BaseStore, InjectedStore()],
        runtime: ToolRuntime,
    ) -> str:
        """Looks at everything it is given."""
        seen.update(x=x, state_foo=state["foo"], foo=foo, store=store, rt=runtime)
        runtime.stream_writer({"progress": x})
        return "ok"

    assert list(inspect_all.args) == ["x"]
    graph = tool_graph([inspect_all], store)
    calls = [ai("", ("inspect_all", {"x": 1, "foo": "forged", "store": "forged"}, "i1"))]
    chunks = list(
        graph.stream({"messages": calls, "foo": "bar"}, {"configurable": {"thread_id": "s"}}, stream_mode="custom")
    )
    assert chunks == [{"progress": 1}]
    assert seen["x"] == 1 and seen["state_foo"] == "bar" and seen["foo"] == "bar"
    assert seen["store"] is store
    rt = seen["rt"]
    assert rt.tool_call_id == "i1" and rt.store is store and rt.state["foo"] == "bar"
    assert rt.config["configurable"]["thread_id"] == "s"
    assert rt.config["metadata"]["langgraph_node"] == "tools"
    assert [t.name for t in rt.tools] == ["inspect_all"]
    seen.clear()
    out = invoke(graph, {"messages": calls, "foo": "baz"}, mode)
    last = out["messages"][-1]
    assert seen["foo"] == "baz" and (last.content, last.name, last.tool_call_id) == ("ok", "inspect_all", "i1")


def test_injected_store_without_a_store_is_an_error(mode: str) -> None:
    @tool
    def needs_store(store: Annotated[Any, InjectedStore()]) -> str:
        """Needs a store."""
        return "x"

    with pytest.raises(ValueError, match="please compile your graph with a store"):
        invoke(tool_graph([needs_store]), {"messages": [ai("", ("needs_store", {}, "n"))], "foo": ""}, mode)


def test_command_updates_state(mode: str) -> None:
    @tool
    def set_foo(value: str, runtime: ToolRuntime) -> Command[Any]:
        """Sets foo."""
        message = ToolMessage("set", tool_call_id=runtime.tool_call_id)
        return Command(update={"foo": value, "messages": [message]})

    out = invoke(
        tool_graph([set_foo, add]),
        {"messages": [ai("", ("set_foo", {"value": "new"}, "s1"), ("add", {"a": 1, "b": 1}, "a1"))], "foo": "old"},
        mode,
    )
    assert out["foo"] == "new"
    assert [(m.content, m.name) for m in out["messages"][1:]] == [("set", "set_foo"), ("2", "add")]


def test_command_without_its_tool_message_is_an_error(mode: str) -> None:
    @tool
    def bad(value: str) -> Command[Any]:
        """Forgets the ToolMessage."""
        return Command(update={"foo": value})

    input = {"messages": [ai("", ("bad", {"value": "v"}, "b"))], "foo": ""}
    expected = "Expected to have a matching ToolMessage in Command.update for tool 'bad'"
    with pytest.raises(ValueError, match=expected):
        invoke(tool_graph([bad], handle=False), input, mode)
    # Handled like any other tool error (the model is told), as LangGraph does with handle_tool_errors=True.
    out = invoke(tool_graph([bad]), input, mode)
    assert out["foo"] == "" and "Expected to have a matching ToolMessage" in out["messages"][-1].content


def test_interrupts_propagate_through_error_handling() -> None:
    @tool
    def ask(question: str) -> str:
        """Asks a human."""
        return str(interrupt(question))

    graph = tool_graph([ask])
    config = {"configurable": {"thread_id": "i"}}
    out = graph.invoke({"messages": [ai("", ("ask", {"question": "ok?"}, "q"))], "foo": ""}, config)
    assert out["__interrupt__"][0].value == "ok?"
    out = graph.invoke(Command(resume="yes"), config)
    assert (out["messages"][-1].content, out["messages"][-1].tool_call_id) == ("yes", "q")


def test_tools_condition() -> None:
    assert tools_condition({"messages": [ai("", ("add", {}, "1"))]}) == "tools"
    assert tools_condition({"messages": [AIMessage("done")]}) == "__end__"
    assert tools_condition([ai("", ("add", {}, "1"))]) == "tools"
    with pytest.raises(ValueError, match="No messages found in input state to tool_edge"):
        tools_condition({"messages": []})
