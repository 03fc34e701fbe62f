"""Node error handlers (`add_node(..., error_handler=...)`, `set_node_defaults(error_handler=...)`), sync and async.

Expected values were pinned from LangGraph 1.2.22 running the same graphs.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.checkpoint.memory import InMemorySaver
from graphrt.errors import NodeError
from graphrt.graph import END, START, StateGraph
from graphrt.types import Command, RetryPolicy, interrupt
from tests.engine.conftest import exact, run, stream


class S(TypedDict):
    log: Annotated[list[str], operator.add]


def boom(state: S) -> dict[str, Any]:
    raise KeyError("bad")


def handler(state: S, error: NodeError) -> dict[str, Any]:
    return {"log": [f"h:{error.node}:{type(error.error).__name__}:{error.error}"]}


def graph(action: Any = boom, **node_kw: Any) -> StateGraph[S]:
    """START -> a (fails by default) -> b, and START -> par beside a; fix is reached only by a Command."""
    builder = StateGraph(S)
    builder.add_node("a", action, **({"error_handler": handler} | node_kw))
    builder.add_node("b", lambda state: {"log": ["b"]})
    builder.add_node("par", lambda state: {"log": ["par"]})
    builder.add_node("fix", lambda state: {"log": ["fix"]})
    builder.add_edge(START, "a")
    builder.add_edge(START, "par")
    builder.add_edge("a", "b")
    return builder


def test_the_handler_runs_in_the_failed_nodes_step_and_its_edges_do_not_fire(mode: str) -> None:
    assert stream(graph().compile(), {"log": []}, mode, stream_mode="updates") == [
        {"par": {"log": ["par"]}},
        {"__error_handler__a": {"log": ["h:a:KeyError:'bad'"]}},
    ]
    # The handler's write is ordered as the failed task's would have been: before par's.
    assert run(graph().compile(), {"log": []}, mode) == {"log": ["h:a:KeyError:'bad'", "par"]}


def test_task_events_show_the_failure_then_the_handlers_result(mode: str) -> None:
    chunks = stream(graph().compile(), {"log": []}, mode, stream_mode="tasks")
    seen = [(c["name"], "result" in c, c.get("error") and repr(c["error"])) for c in chunks]
    assert sorted(seen[:2]) == [("a", False, None), ("par", False, None)]  # the handler has no start event
    assert ("a", True, "KeyError('bad')") in seen[2:] and seen[-1] == ("__error_handler__a", True, None)


def test_a_command_from_the_handler_routes_the_run(mode: str) -> None:
    def recover(state: S, error: NodeError) -> Command[str]:
        return Command(update={"log": ["cmd"]}, goto="fix")

    def give_up(state: S, error: NodeError) -> Command[str]:
        return Command(update={"log": ["end"]}, goto=END)

    assert stream(graph(error_handler=recover).compile(), {"log": []}, mode, stream_mode="updates") == [
        {"par": {"log": ["par"]}},
        {"__error_handler__a": {"log": ["cmd"]}},
        {"fix": {"log": ["fix"]}},
    ]
    assert run(graph(error_handler=give_up).compile(), {"log": []}, mode) == {"log": ["end", "par"]}


def test_the_handler_runs_once_retries_are_spent_and_gets_the_nodes_input(mode: str) -> None:
    calls: list[int] = []

    def flaky(state: S) -> dict[str, Any]:
        calls.append(len(state["log"]))
        raise KeyError("bad")

    retry = RetryPolicy(max_attempts=3, initial_interval=0.001, jitter=False, retry_on=KeyError)
    result = run(graph(flaky, retry_policy=retry).compile(), {"log": ["0"]}, mode)
    assert result == {"log": ["0", "h:a:KeyError:'bad'", "par"]} and calls == [1, 1, 1]

    def count(state: S) -> dict[str, Any]:  # a handler may take the state alone
        return {"log": [f"x{len(state['log'])}"]}

    assert run(graph(error_handler=count).compile(), {"log": ["0"]}, mode) == {"log": ["0", "x1", "par"]}


def test_a_failed_conditional_edge_keeps_the_nodes_update(mode: str) -> None:
    def route(state: S) -> str:
        raise KeyError("route")

    builder = StateGraph(S)
    builder.add_node("a", lambda state: {"log": ["a"]}, error_handler=handler)
    builder.add_node("z", lambda state: {"log": ["z"]})
    builder.add_edge(START, "a")
    builder.add_conditional_edges("a", route, ["z"])
    assert run(builder.compile(), {"log": []}, mode) == {"log": ["a", "h:a:KeyError:'route'"]}


def test_a_failing_handler_fails_the_run_with_its_error(mode: str) -> None:
    def broken(state: S, error: NodeError) -> dict[str, Any]:
        raise ValueError("handler broke")

    with pytest.raises(ValueError, match="handler broke") as caught:
        run(graph(error_handler=broken).compile(), {"log": []}, mode)
    assert any("During task with name '__error_handler__a'" in note for note in caught.value.__notes__)


def test_one_failure_without_a_handler_fails_the_run(mode: str) -> None:
    def other(state: S) -> dict[str, Any]:
        raise IndexError("x")

    builder = graph()
    builder.add_node("c", other)
    builder.add_edge(START, "c")
    with pytest.raises(IndexError, match="x"):
        run(builder.compile(), {"log": []}, mode)
    builder = graph()
    builder.add_node("c", other, error_handler=handler)
    builder.add_edge(START, "c")
    chunks = stream(builder.compile(), {"log": []}, mode, stream_mode="updates")
    assert chunks[0] == {"par": {"log": ["par"]}}
    assert sorted(chunks[1:], key=str) == [  # the handlers run side by side
        {"__error_handler__a": {"log": ["h:a:KeyError:'bad'"]}},
        {"__error_handler__c": {"log": ["h:c:IndexError:x"]}},
    ]


def test_default_handlers_apply_to_nodes_without_their_own(mode: str) -> None:
    builder = StateGraph(S).set_node_defaults(error_handler=handler)
    builder.add_node("a", boom)
    builder.add_node("c", boom, error_handler=lambda state: {"log": ["own"]})
    builder.add_edge(START, "a")
    builder.add_edge(START, "c")
    built = builder.compile()
    assert sorted(stream(built, {"log": []}, mode, stream_mode="updates"), key=str) == [
        {"__default_error_handler__": {"log": ["h:a:KeyError:'bad'"]}},
        {"__error_handler__c": {"log": ["own"]}},
    ]
    assert run(built, {"log": []}, mode) == {"log": ["h:a:KeyError:'bad'", "own"]}  # applied in node order
    assert sorted(built.nodes) == ["__default_error_handler__", "__error_handler__c", "__start__", "a", "c"]
    assert "__default_error_handler__" not in builder.nodes  # compiling leaves the builder as it was


def test_default_retry_and_cache_policies_fill_in_for_nodes_without_their_own() -> None:
    from graphrt.types import CachePolicy

    calls: list[str] = []

    def flaky(state: S) -> dict[str, Any]:
        calls.append("a")
        raise KeyError("bad")

    retry = RetryPolicy(max_attempts=2, initial_interval=0.001, jitter=False, retry_on=KeyError)
    builder = StateGraph(S).set_node_defaults(retry_policy=retry, cache_policy=CachePolicy(), error_handler=handler)
    builder.add_node("a", flaky)
    builder.add_node("b", flaky, retry_policy=RetryPolicy(max_attempts=1))
    builder.add_edge(START, "a")
    builder.add_edge(START, "b")
    built = builder.compile()
    assert built.nodes["a"].retry_policy == (retry,) and built.nodes["b"].retry_policy == (RetryPolicy(max_attempts=1),)
    assert built.nodes["a"].cache is not None and built.nodes["__default_error_handler__"].cache is None
    assert built.nodes["__default_error_handler__"].retry_policy == (retry,)
    built.invoke({"log": []})
    assert calls == ["a", "a", "a"]  # a is retried once, b is not


def test_an_interrupt_is_not_an_error_and_reaches_the_caller() -> None:
    def ask(state: S) -> dict[str, Any]:
        return {"log": [interrupt("q")]}

    built = graph(ask).compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "1"}}
    assert sorted(built.invoke({"log": []}, config)) == ["__interrupt__", "log"]
    assert built.invoke(Command(resume="ans"), config) == {"log": ["ans", "par", "b"]}


def test_the_failure_is_saved_on_the_step_and_the_handlers_update_after_it() -> None:
    built = graph().compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "1"}}
    built.invoke({"log": []}, config)
    history = list(built.get_state_history(config))
    assert [(h.metadata["step"], list(h.next), h.values) for h in history] == [
        (1, [], {"log": ["h:a:KeyError:'bad'", "par"]}),
        (0, ["a", "par"], {"log": []}),
        (-1, ["__start__"], {"log": []}),
    ]
    assert [(t.name, t.error) for t in history[1].tasks] == [("a", "KeyError('bad')"), ("par", None)]


def test_names_are_checked_and_the_handler_is_drawn_as_a_node() -> None:
    builder = StateGraph(S)
    builder.add_node("__error_handler__a", lambda state: {})
    with pytest.raises(
        ValueError, match=exact("Auto-generated error handler node `__error_handler__a` already exists.")
    ):
        builder.add_node("a", boom, error_handler=handler)
    mermaid = graph().compile().get_graph().draw_mermaid()
    assert "\t__error_handler__a(__error_handler__a)\n" in mermaid and "__error_handler__a -->" not in mermaid


def test_async_nodes_and_handlers(mode: str) -> None:
    async def aboom(state: S) -> dict[str, Any]:
        raise KeyError("abad")

    async def ahandler(state: S, error: NodeError) -> dict[str, Any]:
        return {"log": ["ah:" + error.node]}

    if mode == "async":
        assert run(graph(aboom, error_handler=ahandler).compile(), {"log": []}, mode) == {"log": ["ah:a", "par"]}
    else:  # as for any async node, invoke refuses: the handler is never reached
        with pytest.raises(TypeError):
            run(graph(aboom, error_handler=ahandler).compile(), {"log": []}, mode)


def test_a_handler_that_interrupts_is_resumed_with_the_answer(mode: str) -> None:
    calls: list[str] = []

    def failing(state: S) -> dict[str, Any]:
        calls.append("a")
        raise KeyError("x")

    def ask(state: S, error: NodeError) -> dict[str, Any]:
        calls.append("h")
        return {"log": ["h:" + interrupt("why?")]}

    builder = StateGraph(S)
    builder.add_node("a", failing, error_handler=ask)
    builder.add_edge(START, "a")
    built = builder.compile(checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "1"}}
    first = run(built, {"log": []}, mode, config)
    assert [i.value for i in first["__interrupt__"]] == ["why?"]
    assert [(t.name, t.error) for t in built.get_state(config).tasks] == [("a", "KeyError('x')")]
    assert run(built, Command(resume="because"), mode, config) == {"log": ["h:because"]}
    # Resumed, the failed node runs again before its handler (LangGraph runs only the handler again).
    assert calls == ["a", "h", "a", "h"]
