"""Interrupts: `interrupt()` inside nodes, resuming with `Command(resume=...)`, and static breakpoints."""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.graph import END, START, StateGraph
from graphrt.types import Command, Interrupt, interrupt
from tests.persistence.conftest import exact, get_state, history, run, steps, stream, thread

INTERRUPT = "__interrupt__"


class Items(TypedDict, total=False):
    items: Annotated[list[str], operator.add]


def asking(name: str, calls: list[str]) -> Any:
    """A node that records each run, asks `<name>?` and appends `<name>:<answer>`."""

    def node(state: Items) -> Items:
        calls.append(name)
        answer = interrupt(f"{name}?")
        return {"items": [f"{name}:{answer}"]}

    return node


def plain(name: str, calls: list[str]) -> Any:
    def node(state: Items) -> Items:
        calls.append(name)
        return {"items": [name]}

    return node


def ask_graph(saver: Any, calls: list[str]) -> Any:
    """START -> ask -> END, where `ask` interrupts."""
    builder = StateGraph(Items)
    builder.add_node("ask", asking("ask", calls))
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    return builder.compile(checkpointer=saver)


def parallel_graph(saver: Any, calls: list[str], *, both_ask: bool) -> Any:
    """START -> p, START -> q (one step, two tasks); p interrupts, and q too when `both_ask`."""
    builder = StateGraph(Items)
    builder.add_node("p", asking("p", calls))
    builder.add_node("q", asking("q", calls) if both_ask else plain("q", calls))
    builder.add_edge(START, "p")
    builder.add_edge(START, "q")
    return builder.compile(checkpointer=saver)


def chain(saver: Any, calls: list[str], **compile_kw: Any) -> Any:
    """START -> a -> b -> c -> END."""
    builder = StateGraph(Items)
    for name in "abc":
        builder.add_node(name, plain(name, calls))
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    builder.add_edge("c", END)
    return builder.compile(checkpointer=saver, **compile_kw)


def describe(interrupts: Any) -> list[tuple[type, Any]]:
    return [(type(i), i.value) for i in interrupts]


# ---------------------------------------------------------------- interrupt() and its shapes


def test_interrupt_surfaces_in_invoke_output_as_a_list(saver: Any, mode: str) -> None:
    calls: list[str] = []
    graph = ask_graph(saver, calls)
    out = run(graph, {"items": ["x"]}, mode, thread())
    assert set(out) == {"items", INTERRUPT}
    assert out["items"] == ["x"]
    assert isinstance(out[INTERRUPT], list)
    assert describe(out[INTERRUPT]) == [(Interrupt, "ask?")]
    assert isinstance(out[INTERRUPT][0].id, str) and out[INTERRUPT][0].id
    assert calls == ["ask"]


def test_interrupt_in_values_stream_is_a_tuple(saver: Any, mode: str) -> None:
    graph = ask_graph(saver, [])
    chunks = stream(graph, {"items": ["x"]}, mode, thread(), stream_mode="values")
    assert len(chunks) == 2
    assert chunks[0] == {"items": ["x"]}
    assert set(chunks[1]) == {"items", INTERRUPT}
    assert isinstance(chunks[1][INTERRUPT], tuple)
    assert describe(chunks[1][INTERRUPT]) == [(Interrupt, "ask?")]


def test_interrupt_in_updates_stream_is_a_tuple(saver: Any, mode: str) -> None:
    graph = ask_graph(saver, [])
    chunks = stream(graph, {"items": ["x"]}, mode, thread(), stream_mode="updates")
    assert len(chunks) == 1
    assert list(chunks[0]) == [INTERRUPT]
    assert isinstance(chunks[0][INTERRUPT], tuple)
    assert describe(chunks[0][INTERRUPT]) == [(Interrupt, "ask?")]


def test_get_state_shows_the_pending_interrupt(saver: Any, mode: str) -> None:
    graph = ask_graph(saver, [])
    out = run(graph, {"items": ["x"]}, mode, thread())
    snapshot = get_state(graph, thread(), mode)
    assert snapshot.values == {"items": ["x"]}
    assert snapshot.next == ("ask",)
    assert [(t.name, t.error, t.result) for t in snapshot.tasks] == [("ask", None, None)]
    assert [(i.value, i.id) for i in snapshot.tasks[0].interrupts] == [(i.value, i.id) for i in out[INTERRUPT]]
    assert [(i.value, i.id) for i in snapshot.interrupts] == [(i.value, i.id) for i in out[INTERRUPT]]
    assert steps(history(graph, thread(), mode)) == [("loop", 0), ("input", -1)]


def test_resume_reruns_the_node_and_interrupt_returns_the_answer(saver: Any, mode: str) -> None:
    calls: list[str] = []
    graph = ask_graph(saver, calls)
    run(graph, {"items": ["x"]}, mode, thread())
    assert run(graph, Command(resume="yes"), mode, thread()) == {"items": ["x", "ask:yes"]}
    assert calls == ["ask", "ask"]
    snapshot = get_state(graph, thread(), mode)
    assert snapshot.next == ()
    assert snapshot.interrupts == ()
    assert steps(history(graph, thread(), mode)) == [("loop", 1), ("loop", 0), ("input", -1)]


def test_resume_stream_goes_on_from_the_interrupt(saver: Any, mode: str) -> None:
    graph = ask_graph(saver, [])
    stream(graph, {"items": ["x"]}, mode, thread(), stream_mode="values")
    chunks = stream(graph, Command(resume="ok"), mode, thread(), stream_mode="values")
    assert chunks == [{"items": ["x"]}, {"items": ["x", "ask:ok"]}]


def test_interrupt_without_a_checkpointer_still_surfaces(mode: str) -> None:
    graph = ask_graph(None, [])
    out = run(graph, {"items": ["x"]}, mode)
    assert out["items"] == ["x"]
    assert describe(out[INTERRUPT]) == [(Interrupt, "ask?")]


def test_command_resume_without_a_checkpointer_raises(mode: str) -> None:
    graph = ask_graph(None, [])
    with pytest.raises(RuntimeError, match=exact("Cannot use Command(resume=...) without checkpointer")):
        run(graph, Command(resume="yes"), mode)


# ---------------------------------------------------------------- several interrupts


def test_finished_siblings_are_not_rerun_on_resume(saver: Any, mode: str) -> None:
    calls: list[str] = []
    graph = parallel_graph(saver, calls, both_ask=False)
    out = run(graph, {"items": ["x"]}, mode, thread())
    assert describe(out[INTERRUPT]) == [(Interrupt, "p?")]
    assert sorted(calls) == ["p", "q"]
    snapshot = get_state(graph, thread(), mode)
    assert snapshot.values == {"items": ["x", "q"]}  # q's saved writes show in the live state
    assert snapshot.next == ("p",)
    assert {t.name: t.result for t in snapshot.tasks} == {"p": None, "q": {"items": ["q"]}}
    calls.clear()
    assert run(graph, Command(resume="P"), mode, thread()) == {"items": ["x", "p:P", "q"]}
    assert calls == ["p"]
    assert steps(history(graph, thread(), mode)) == [("loop", 1), ("loop", 0), ("input", -1)]


def test_interrupted_output_includes_what_finished_siblings_wrote(saver: Any, mode: str) -> None:
    graph = parallel_graph(saver, [], both_ask=False)
    out = run(graph, {"items": ["x"]}, mode, thread())
    assert out["items"] == ["x", "q"]
    assert describe(out[INTERRUPT]) == [(Interrupt, "p?")]


def test_resume_stream_marks_saved_sibling_updates_as_cached(saver: Any, mode: str) -> None:
    graph = parallel_graph(saver, [], both_ask=False)
    run(graph, {"items": ["x"]}, mode, thread())
    chunks = stream(graph, Command(resume="P"), mode, thread(), stream_mode="updates")
    assert chunks == [
        {"q": {"items": ["q"]}, "__metadata__": {"cached": True}},
        {"p": {"items": ["p:P"]}},
    ]


def test_two_interrupts_in_one_node_are_answered_in_order(saver: Any, mode: str) -> None:
    calls: list[str] = []

    def twice(state: Items) -> Items:
        calls.append("twice")
        first = interrupt("first?")
        second = interrupt("second?")
        return {"items": [f"{first}+{second}"]}

    builder = StateGraph(Items)
    builder.add_node("twice", twice)
    builder.add_edge(START, "twice")
    graph = builder.compile(checkpointer=saver)

    out = run(graph, {"items": []}, mode, thread())
    assert describe(out[INTERRUPT]) == [(Interrupt, "first?")]
    out = run(graph, Command(resume="A"), mode, thread())
    assert out["items"] == []
    assert describe(out[INTERRUPT]) == [(Interrupt, "second?")]
    assert describe(get_state(graph, thread(), mode).interrupts) == [(Interrupt, "second?")]
    assert run(graph, Command(resume="B"), mode, thread()) == {"items": ["A+B"]}
    assert calls == ["twice"] * 3
    # Resumes that end in another interrupt add no checkpoint.
    assert steps(history(graph, thread(), mode)) == [("loop", 1), ("loop", 0), ("input", -1)]


def test_parallel_interrupts_are_resumed_by_id(saver: Any, mode: str) -> None:
    calls: list[str] = []
    graph = parallel_graph(saver, calls, both_ask=True)
    out = run(graph, {"items": ["x"]}, mode, thread())
    assert out["items"] == ["x"]
    assert sorted(i.value for i in out[INTERRUPT]) == ["p?", "q?"]
    ids = {i.value: i.id for i in out[INTERRUPT]}
    assert len(set(ids.values())) == 2
    snapshot = get_state(graph, thread(), mode)
    assert snapshot.next == ("p", "q")
    assert {i.value: i.id for i in snapshot.interrupts} == ids
    calls.clear()
    resume = {ids["p?"]: "P", ids["q?"]: "Q"}
    assert run(graph, Command(resume=resume), mode, thread()) == {"items": ["x", "p:P", "q:Q"]}
    assert sorted(calls) == ["p", "q"]


def test_parallel_interrupts_can_be_resumed_one_at_a_time(saver: Any, mode: str) -> None:
    calls: list[str] = []
    graph = parallel_graph(saver, calls, both_ask=True)
    out = run(graph, {"items": ["x"]}, mode, thread())
    ids = {i.value: i.id for i in out[INTERRUPT]}
    calls.clear()
    out = run(graph, Command(resume={ids["p?"]: "P"}), mode, thread())
    assert out["items"] == ["x", "p:P"]
    assert [(i.value, i.id) for i in out[INTERRUPT]] == [("q?", ids["q?"])]
    snapshot = get_state(graph, thread(), mode)
    assert snapshot.next == ("q",)
    assert [(i.value, i.id) for i in snapshot.interrupts] == [("q?", ids["q?"])]
    # The finished task no longer shows the interrupt it was resumed from (LangGraph 1.2.22).
    assert sorted((t.name, [i.value for i in t.interrupts], t.result) for t in snapshot.tasks) == [
        ("p", [], {"items": ["p:P"]}),
        ("q", ["q?"], None),
    ]
    assert sorted(calls) == ["p", "q"]  # q ran again and asked again; p is done
    calls.clear()
    assert run(graph, Command(resume={ids["q?"]: "Q"}), mode, thread()) == {"items": ["x", "p:P", "q:Q"]}
    assert calls == ["q"]


def test_one_resume_value_for_several_pending_interrupts_raises(saver: Any, mode: str) -> None:
    calls: list[str] = []
    graph = parallel_graph(saver, calls, both_ask=True)
    run(graph, {"items": ["x"]}, mode, thread())
    calls.clear()
    with pytest.raises(
        RuntimeError,
        match=exact(
            "When there are multiple pending interrupts, you must specify the interrupt id when resuming. "
            "Docs: https://docs.langchain.com/oss/python/langgraph/interrupts#handling-multiple-interrupts."
        ),
    ):
        run(graph, Command(resume="one"), mode, thread())
    assert calls == []
    assert steps(history(graph, thread(), mode)) == [("loop", 0), ("input", -1)]
    assert get_state(graph, thread(), mode).next == ("p", "q")


# ---------------------------------------------------------------- static breakpoints


def test_interrupt_before_at_compile_time(saver: Any, mode: str) -> None:
    calls: list[str] = []
    graph = chain(saver, calls, interrupt_before=["b"])
    assert run(graph, {"items": ["x"]}, mode, thread()) == {"items": ["x", "a"]}  # no __interrupt__ key
    assert calls == ["a"]
    snapshot = get_state(graph, thread(), mode)
    assert snapshot.next == ("b",)
    assert snapshot.interrupts == ()
    assert [(t.name, t.interrupts, t.result) for t in snapshot.tasks] == [("b", (), None)]
    assert run(graph, None, mode, thread()) == {"items": ["x", "a", "b", "c"]}
    assert calls == ["a", "b", "c"]
    assert steps(history(graph, thread(), mode)) == [("loop", 3), ("loop", 2), ("loop", 1), ("loop", 0), ("input", -1)]


def test_interrupt_after_at_compile_time(saver: Any, mode: str) -> None:
    calls: list[str] = []
    graph = chain(saver, calls, interrupt_after=["a"])
    assert run(graph, {"items": ["x"]}, mode, thread()) == {"items": ["x", "a"]}
    assert calls == ["a"]
    assert get_state(graph, thread(), mode).next == ("b",)
    assert run(graph, None, mode, thread()) == {"items": ["x", "a", "b", "c"]}
    assert calls == ["a", "b", "c"]
    assert steps(history(graph, thread(), mode)) == [("loop", 3), ("loop", 2), ("loop", 1), ("loop", 0), ("input", -1)]


@pytest.mark.parametrize("where", ["compile", "call"])
def test_interrupt_before_every_node(saver: Any, mode: str, where: str) -> None:
    calls: list[str] = []
    graph = chain(saver, calls, **({"interrupt_before": "*"} if where == "compile" else {}))
    kw = {"interrupt_before": "*"} if where == "call" else {}
    outs = [run(graph, {"items": ["x"]}, mode, thread(), **kw)]
    outs += [run(graph, None, mode, thread(), **kw) for _ in range(3)]
    assert outs == [
        {"items": ["x"]},
        {"items": ["x", "a"]},
        {"items": ["x", "a", "b"]},
        {"items": ["x", "a", "b", "c"]},
    ]
    assert calls == ["a", "b", "c"]


@pytest.mark.parametrize("where", ["compile", "call"])
def test_interrupt_after_every_node(saver: Any, mode: str, where: str) -> None:
    calls: list[str] = []
    graph = chain(saver, calls, **({"interrupt_after": "*"} if where == "compile" else {}))
    kw = {"interrupt_after": "*"} if where == "call" else {}
    outs = [run(graph, {"items": ["x"]}, mode, thread(), **kw)]
    outs += [run(graph, None, mode, thread(), **kw) for _ in range(2)]
    assert outs == [{"items": ["x", "a"]}, {"items": ["x", "a", "b"]}, {"items": ["x", "a", "b", "c"]}]
    assert calls == ["a", "b", "c"]
    assert get_state(graph, thread(), mode).next == ()


def test_per_call_breakpoints_replace_compile_time_ones(saver: Any, mode: str) -> None:
    calls: list[str] = []
    graph = chain(saver, calls, interrupt_before=["b"])
    assert run(graph, {"items": ["x"]}, mode, thread(), interrupt_before=["c"]) == {"items": ["x", "a", "b"]}
    assert calls == ["a", "b"]
    assert get_state(graph, thread(), mode).next == ("c",)


def test_breakpoint_in_updates_stream_is_an_empty_interrupt(saver: Any, mode: str) -> None:
    graph = chain(saver, [], interrupt_before=["b"])
    chunks = stream(graph, {"items": ["x"]}, mode, thread(), stream_mode="updates")
    assert chunks == [{"a": {"items": ["a"]}}, {INTERRUPT: ()}]
    chunks = stream(graph, {"items": ["y"]}, mode, thread("2"), stream_mode="values")
    assert chunks == [{"items": ["y"]}, {"items": ["y", "a"]}]


def test_command_resume_at_a_breakpoint_continues(saver: Any, mode: str) -> None:
    calls: list[str] = []
    graph = chain(saver, calls, interrupt_before=["b"])
    run(graph, {"items": ["x"]}, mode, thread())
    assert run(graph, Command(resume="ignored"), mode, thread()) == {"items": ["x", "a", "b", "c"]}
    assert calls == ["a", "b", "c"]


def test_continuing_a_finished_thread_runs_and_saves_nothing(saver: Any, mode: str) -> None:
    calls: list[str] = []
    graph = chain(saver, calls)
    run(graph, {"items": ["x"]}, mode, thread())
    before = history(graph, thread(), mode)
    calls.clear()
    assert run(graph, None, mode, thread()) == {"items": ["x", "a", "b", "c"]}
    assert calls == []
    assert history(graph, thread(), mode) == before
