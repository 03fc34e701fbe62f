"""Nested runs on every saver, sync and async: a subgraph saves with its parent's checkpointer.

Expected values (namespaces, checkpoint sources and steps, stream shapes) were produced by running the
same graphs on LangGraph 1.2.22 and are pinned here.
"""

from __future__ import annotations

import asyncio
import itertools
import operator
import re
from typing import Annotated, Any, TypedDict

import pytest

from graphrt.config import RunnableConfig, get_stream_writer
from graphrt.graph import END, START, StateGraph
from graphrt.runtime import Runtime
from graphrt.store.memory import InMemoryStore
from graphrt.types import Command, Send, interrupt
from tests.persistence.conftest import get_state, history, run, stream, thread, update_state


class S(TypedDict):
    foo: str
    log: Annotated[list[str], operator.add]


def listing(saver: Any, mode: str) -> list[tuple[str, str, int]]:
    """(namespace without task id, source, step) of every checkpoint of every thread, sorted."""

    async def collect() -> list[Any]:
        return [c async for c in saver.alist(None)]

    found = list(saver.list(None)) if mode == "sync" else asyncio.run(collect())
    return sorted(
        (c.config["configurable"]["checkpoint_ns"].split(":")[0], c.metadata["source"], c.metadata["step"])
        for c in found
    )


def namespaces(saver: Any, mode: str) -> set[str]:
    async def collect() -> list[Any]:
        return [c async for c in saver.alist(None)]

    found = list(saver.list(None)) if mode == "sync" else asyncio.run(collect())
    return {c.config["configurable"]["checkpoint_ns"] for c in found}


def chain(*names: str, state: Any = S, **compile: Any) -> Any:
    """A graph running `names` in order, each appending its name to `log`."""
    builder = StateGraph(state)
    for name in names:
        builder.add_node(name, _logger(name))
    builder.add_edge(START, names[0])
    for a, b in itertools.pairwise(names):
        builder.add_edge(a, b)
    return builder.compile(**compile)


def _logger(name: str) -> Any:
    def node(state: S) -> dict[str, Any]:
        return {"log": [name]}

    return node


def parent_of(child: Any, saver: Any) -> Any:
    """p1 -> sub(child)."""
    builder = StateGraph(S).add_node("p1", _logger("p1")).add_node("sub", child)
    return builder.add_edge(START, "p1").add_edge("p1", "sub").compile(checkpointer=saver)


def test_child_saves_with_the_parents_checkpointer_under_its_task_namespace(saver: Any, mode: str) -> None:
    graph = parent_of(chain("c1", "c2"), saver)
    out = run(graph, {"foo": "", "log": []}, mode, thread("a"))
    assert out == {"foo": "", "log": ["p1", "p1", "c1", "c2"]}  # LangGraph: the child returns the whole log
    assert listing(saver, mode) == [
        ("", "input", -1),
        ("", "loop", 0),
        ("", "loop", 1),
        ("", "loop", 2),
        ("sub", "input", -1),
        ("sub", "loop", 0),
        ("sub", "loop", 1),
        ("sub", "loop", 2),
    ]
    (child_ns,) = namespaces(saver, mode) - {""}
    assert re.fullmatch(r"sub:[0-9a-f-]{36}", child_ns)
    child_history = history(graph, thread("a", checkpoint_ns=child_ns), mode)
    root_at_step_1 = next(s for s in history(graph, thread("a"), mode) if s.metadata["step"] == 1)
    parents = {s.metadata["parents"][""] for s in child_history}
    assert parents == {root_at_step_1.config["configurable"]["checkpoint_id"]}


def test_interrupt_in_a_subgraph_surfaces_and_resumes(saver: Any, mode: str) -> None:
    ran: list[str] = []

    def c1(state: S) -> dict[str, Any]:
        ran.append("c1")
        return {"foo": state["foo"] + "|c1"}

    def c2(state: S) -> dict[str, Any]:
        answer = interrupt("ask?")
        return {"foo": state["foo"] + f"|c2:{answer}"}

    child = StateGraph(S).add_node(c1).add_node(c2).add_edge(START, "c1").add_edge("c1", "c2").compile()
    graph = parent_of(child, saver)
    out = run(graph, {"foo": "x", "log": []}, mode, thread())
    (asked,) = out["__interrupt__"]
    assert asked.value == "ask?"
    snapshot = get_state(graph, thread(), mode)
    assert snapshot.next == ("sub",)
    assert snapshot.interrupts == (asked,)
    assert snapshot.tasks[0].interrupts == (asked,)
    assert snapshot.tasks[0].state["configurable"]["checkpoint_ns"].startswith("sub:")
    nested = graph.get_state(thread(), subgraphs=True) if mode == "sync" else None
    if nested is not None:
        child_state = nested.tasks[0].state
        assert child_state.next == ("c2",)
        assert child_state.values["foo"] == "x|c1"
        assert child_state.tasks[0].interrupts == (asked,)
    out = run(graph, Command(resume="yes"), mode, thread())
    assert out["foo"] == "x|c1|c2:yes"
    assert "__interrupt__" not in out
    assert ran == ["c1"]  # the child's finished node does not run again
    assert get_state(graph, thread(), mode).next == ()


def test_get_state_with_subgraphs_async(saver: Any) -> None:
    def c2(state: S) -> dict[str, Any]:
        return {"foo": interrupt("q")}

    child = StateGraph(S).add_node("c1", _logger("c1")).add_node(c2).add_edge(START, "c1").add_edge("c1", "c2")
    graph = parent_of(child.compile(), saver)
    asyncio.run(graph.ainvoke({"foo": "", "log": []}, thread()))
    snapshot = asyncio.run(graph.aget_state(thread(), subgraphs=True))
    assert snapshot.tasks[0].state.next == ("c2",)
    assert snapshot.tasks[0].state.values["log"] == ["p1", "c1"]


def test_three_levels_deep_interrupt_resumes(saver: Any, mode: str) -> None:
    ran: list[str] = []

    def leaf(state: S) -> dict[str, Any]:
        ran.append("leaf-start")
        return {"foo": interrupt("deep")}

    def before(state: S) -> dict[str, Any]:
        ran.append("before")
        return {"log": ["before"]}

    level3 = StateGraph(S).add_node(before).add_node(leaf).add_edge(START, "before").add_edge("before", "leaf")
    level2 = StateGraph(S).add_node("l3", level3.compile()).add_edge(START, "l3").compile()
    graph = StateGraph(S).add_node("l2", level2).add_edge(START, "l2").compile(checkpointer=saver)
    out = run(graph, {"foo": "", "log": []}, mode, thread())
    assert [i.value for i in out["__interrupt__"]] == ["deep"]
    deep = {ns for ns in namespaces(saver, mode) if ns.count("|") == 1}
    assert len(deep) == 1 and re.fullmatch(r"l2:[0-9a-f-]{36}\|l3:[0-9a-f-]{36}", next(iter(deep)))
    out = run(graph, Command(resume="bottom"), mode, thread())
    assert out["foo"] == "bottom"
    assert ran == ["before", "leaf-start", "leaf-start"]


def test_subgraph_snapshots_carry_the_checkpoint_map_of_the_namespaces_above(saver: Any, mode: str) -> None:
    """LangGraph 1.2.22's `get_state(subgraphs=True)`: each subgraph snapshot's config maps every namespace from the
    root down to its own to that level's checkpoint id (the root's has no map); such a config updates that level."""

    def ask(state: S) -> dict[str, Any]:
        return {"log": [interrupt("q")]}

    level3 = StateGraph(S).add_node("ask", ask).add_edge(START, "ask")
    level2 = StateGraph(S).add_node("l3", level3.compile()).add_edge(START, "l3").compile()
    graph = (
        StateGraph(S)
        .add_node("pre", lambda state: {"log": ["pre"]})
        .add_node("l2", level2)
        .add_edge(START, "pre")
        .add_edge("pre", "l2")
        .compile(checkpointer=saver)
    )
    run(graph, {"foo": "", "log": []}, mode, thread())
    root = (
        graph.get_state(thread(), subgraphs=True)
        if mode == "sync"
        else asyncio.run(graph.aget_state(thread(), subgraphs=True))
    )
    two = root.tasks[0].state
    three = two.tasks[0].state
    assert "checkpoint_map" not in root.config["configurable"]
    ids = [s.config["configurable"]["checkpoint_id"] for s in (root, two, three)]
    ns2, ns3 = two.config["configurable"]["checkpoint_ns"], three.config["configurable"]["checkpoint_ns"]
    assert two.config["configurable"]["checkpoint_map"] == {"": ids[0], ns2: ids[1]}
    assert three.config["configurable"]["checkpoint_map"] == {"": ids[0], ns2: ids[1], ns3: ids[2]}
    assert re.fullmatch(r"l2:[0-9a-f-]{36}\|l3:[0-9a-f-]{36}", ns3)
    edited = update_state(graph, three.config, {"log": ["edited"]}, mode)
    assert edited["configurable"]["checkpoint_ns"] == ns3
    assert get_state(graph, edited, mode).values["log"] == ["pre", "edited"]


def test_checkpointer_true_keeps_the_childs_state_across_parent_invocations(saver: Any, mode: str) -> None:
    class Child(TypedDict):
        foo: str
        count: Annotated[int, operator.add]

    class Parent(TypedDict):
        foo: str

    def inc(state: Child) -> dict[str, Any]:
        return {"count": 1, "foo": state["foo"] + str(state.get("count", 0))}

    child = StateGraph(Child).add_node(inc).add_edge(START, "inc").compile(checkpointer=True)
    graph = StateGraph(Parent).add_node("sub", child).add_edge(START, "sub").compile(checkpointer=saver)
    assert run(graph, {"foo": "a"}, mode, thread()) == {"foo": "a0"}
    assert run(graph, {"foo": "b"}, mode, thread()) == {"foo": "b1"}  # LangGraph 1.2.22's answer
    assert namespaces(saver, mode) == {"", "sub"}


def test_checkpointer_false_child_writes_no_checkpoints(saver: Any, mode: str) -> None:
    graph = StateGraph(S).add_node("sub", chain("c1", checkpointer=False)).add_edge(START, "sub")
    out = run(graph.compile(checkpointer=saver), {"foo": "", "log": []}, mode, thread())
    assert out == {"foo": "", "log": ["c1"]}
    assert listing(saver, mode) == [("", "input", -1), ("", "loop", 0), ("", "loop", 1)]


def test_checkpointer_true_on_a_root_graph_is_refused(mode: str) -> None:
    graph = chain("a", checkpointer=True)
    with pytest.raises(RuntimeError, match=r"^checkpointer=True cannot be used for root graphs\.$"):
        run(graph, {"foo": "", "log": []}, mode, thread())


def test_parallel_sends_to_a_subgraph_keep_separate_state_and_namespaces(saver: Any, mode: str) -> None:
    class Item(TypedDict):
        word: str
        log: Annotated[list[str], operator.add]

    def shout(state: Item) -> dict[str, Any]:
        return {"log": [state["word"].upper()]}

    child = StateGraph(Item).add_node(shout).add_edge(START, "shout").compile()

    def fan(state: S) -> list[Send]:
        return [Send("sub", {"word": word, "log": []}) for word in ("a", "b", "c")]

    graph = StateGraph(S).add_node("sub", child).add_conditional_edges(START, fan).compile(checkpointer=saver)
    out = run(graph, {"foo": "", "log": []}, mode, thread())
    assert sorted(out["log"]) == ["A", "B", "C"]
    assert len({ns for ns in namespaces(saver, mode) if ns}) == 3


def test_failed_subgraph_resumes_without_rerunning_finished_child_nodes(saver: Any, mode: str) -> None:
    ran: list[str] = []
    fail = [True]

    def c1(state: S) -> dict[str, Any]:
        ran.append("c1")
        return {"log": ["c1"]}

    def c2(state: S) -> dict[str, Any]:
        ran.append("c2")
        if fail[0]:
            fail[0] = False
            raise ValueError("boom")
        return {"log": ["c2"]}

    child = StateGraph(S).add_node(c1).add_node(c2).add_edge(START, "c1").add_edge("c1", "c2").compile()
    graph = parent_of(child, saver)
    with pytest.raises(ValueError, match=r"^boom"):
        run(graph, {"foo": "", "log": []}, mode, thread())
    assert get_state(graph, thread(), mode).next == ("sub",)
    out = run(graph, None, mode, thread())
    assert out["log"][-2:] == ["c1", "c2"]
    assert ran == ["c1", "c2", "c2"]


def test_interrupt_before_a_child_node(saver: Any, mode: str) -> None:
    child = chain("c1", "c2", interrupt_before=["c2"])
    graph = parent_of(child, saver)
    out = run(graph, {"foo": "", "log": []}, mode, thread())
    assert out == {"foo": "", "log": ["p1"]}  # LangGraph 1.2.22: no __interrupt__ key for a breakpoint
    assert get_state(graph, thread(), mode).next == ("sub",)
    out = run(graph, None, mode, thread())
    assert out["log"] == ["p1", "p1", "c1", "c2"]


def test_update_state_on_a_subgraph_config(saver: Any, mode: str) -> None:
    def c2(state: S) -> dict[str, Any]:
        return {"log": [f"c2:{interrupt('q')}:{state['foo']}"]}

    child = StateGraph(S).add_node(c2).add_edge(START, "c2").compile()
    graph = StateGraph(S).add_node("sub", child).add_edge(START, "sub").compile(checkpointer=saver)
    run(graph, {"foo": "old", "log": []}, mode, thread())
    child_config = get_state(graph, thread(), mode).tasks[0].state
    update_state(graph, child_config, {"foo": "new"}, mode)
    assert get_state(graph, child_config, mode).values["foo"] == "new"
    out = run(graph, Command(resume="ok"), mode, thread())
    assert out == {"foo": "new", "log": ["c2:ok:new"]}  # LangGraph 1.2.22's answer


def test_command_parent_routes_and_updates_the_parent(saver: Any, mode: str) -> None:
    def jump(state: S) -> Command[str]:
        return Command(graph=Command.PARENT, goto="after", update={"log": ["jump"]})

    child = StateGraph(S).add_node(jump).add_edge(START, "jump").compile()
    graph = StateGraph(S).add_node("sub", child).add_node("after", _logger("after")).add_edge(START, "sub")
    out = run(graph.compile(checkpointer=saver), {"foo": "", "log": []}, mode, thread())
    assert out == {"foo": "", "log": ["jump", "after"]}


def test_store_context_and_config_reach_every_level(saver: Any, mode: str) -> None:
    store = InMemoryStore()
    store.put(("users",), "u1", {"name": "Ada"})
    seen: dict[str, Any] = {}

    def deep(state: S, config: RunnableConfig, runtime: Runtime[dict[str, str]]) -> dict[str, Any]:
        assert runtime.store is not None
        item = runtime.store.get(("users",), "u1")
        seen["name"] = item.value["name"] if item else None
        seen["context"] = runtime.context
        seen["thread"] = config["configurable"]["thread_id"]
        seen["custom_key"] = config["configurable"].get("user")
        return {"log": ["deep"]}

    level2 = StateGraph(S).add_node(deep).add_edge(START, "deep").compile()
    level1 = StateGraph(S).add_node("l2", level2).add_edge(START, "l2").compile()
    graph = StateGraph(S).add_node("l1", level1).add_edge(START, "l1").compile(checkpointer=saver, store=store)
    run(graph, {"foo": "", "log": []}, mode, thread(user="u1"), context={"who": "me"})
    assert seen == {"name": "Ada", "context": {"who": "me"}, "thread": "1", "custom_key": "u1"}


def test_stream_subgraphs_yields_namespaced_chunks_in_every_mode(saver: Any, mode: str) -> None:
    def cw(state: S) -> dict[str, Any]:
        get_stream_writer()({"hi": 1})
        return {"log": ["cw"]}

    child = StateGraph(S).add_node(cw).add_edge(START, "cw").compile()
    graph = parent_of(child, saver)
    chunks = stream(
        graph, {"foo": "", "log": []}, mode, thread(), subgraphs=True, stream_mode=["values", "updates", "custom"]
    )
    shape = [(tuple(p.split(":")[0] for p in ns), kind, chunk) for ns, kind, chunk in chunks]
    assert shape == [  # LangGraph 1.2.22, namespaces without task ids
        ((), "values", {"foo": "", "log": []}),
        ((), "updates", {"p1": {"log": ["p1"]}}),
        ((), "values", {"foo": "", "log": ["p1"]}),
        (("sub",), "values", {"foo": "", "log": ["p1"]}),
        (("sub",), "custom", {"hi": 1}),
        (("sub",), "updates", {"cw": {"log": ["cw"]}}),
        (("sub",), "values", {"foo": "", "log": ["p1", "cw"]}),
        ((), "updates", {"sub": {"foo": "", "log": ["p1", "cw"]}}),
        ((), "values", {"foo": "", "log": ["p1", "p1", "cw"]}),
    ]
    debug = stream(graph, {"foo": "", "log": []}, mode, thread("d"), subgraphs=True, stream_mode="debug")
    assert [(tuple(p.split(":")[0] for p in ns), c["type"], c["step"]) for ns, c in debug] == [
        ((), "checkpoint", -1),
        ((), "checkpoint", 0),
        ((), "task", 1),
        ((), "task_result", 1),
        ((), "checkpoint", 1),
        ((), "task", 2),
        (("sub",), "checkpoint", -1),
        (("sub",), "checkpoint", 0),
        (("sub",), "task", 1),
        (("sub",), "task_result", 1),
        (("sub",), "checkpoint", 1),
        ((), "task_result", 2),
        ((), "checkpoint", 2),
    ]
    plain = stream(graph, {"foo": "", "log": []}, mode, thread("p"), stream_mode=["custom", "updates"])
    assert plain == [("updates", {"p1": {"log": ["p1"]}}), ("updates", {"sub": {"foo": "", "log": ["p1", "cw"]}})]


def test_subgraph_invoked_inside_a_node_function_is_nested(saver: Any, mode: str) -> None:
    def ask(state: S) -> dict[str, Any]:
        return {"foo": interrupt("inner?")}

    child = StateGraph(S).add_node(ask).add_edge(START, "ask").compile()

    def call_child(state: S) -> dict[str, Any]:
        result = child.invoke({"foo": "", "log": []})
        return {"foo": "got:" + result["foo"]}

    async def acall_child(state: S) -> dict[str, Any]:
        result = await child.ainvoke({"foo": "", "log": []})
        return {"foo": "got:" + result["foo"]}

    node = call_child if mode == "sync" else acall_child
    graph = StateGraph(S).add_node("outer", node).add_edge(START, "outer").add_edge("outer", END)
    compiled = graph.compile(checkpointer=saver)
    out = run(compiled, {"foo": "", "log": []}, mode, thread())
    assert [i.value for i in out["__interrupt__"]] == ["inner?"]
    assert run(compiled, Command(resume="A"), mode, thread())["foo"] == "got:A"


def test_two_checkpointed_subgraphs_in_one_node_are_refused(saver: Any, mode: str) -> None:
    """Both would save under the node's namespace; a resumed run could hand the second the first's state."""
    from graphrt.errors import MultipleSubgraphsError

    first, second = chain("a"), chain("b")
    unsaved = chain("c", checkpointer=False)

    def both(state: S) -> dict[str, Any]:
        first.invoke(state)
        unsaved.invoke(state)  # saves nothing: allowed
        return second.invoke(state)

    graph = StateGraph(S).add_node("both", both).add_edge(START, "both").compile(checkpointer=saver)
    with pytest.raises(MultipleSubgraphsError, match=r"^Multiple subgraphs called inside the same node 'both'"):
        run(graph, {"foo": "", "log": []}, "sync", thread())
    plain = StateGraph(S).add_node("both", both).add_edge(START, "both").compile()  # no checkpointer: no namespace
    assert run(plain, {"foo": "", "log": []}, mode)["log"] == ["b"]


def test_a_subgraph_task_s_state_is_its_config_in_checkpoints_chunks_and_history(saver: Any, mode: str) -> None:
    """LangGraph 1.2.22: a task that runs a subgraph shows the config of the subgraph's state (a sign that it has
    checkpoints) in `checkpoints` chunks, `get_state` and `get_state_history`; chunks list tasks in run order."""
    inner = StateGraph(S)
    inner.add_node("s", lambda state: {"log": [interrupt("q")]})
    inner.add_edge(START, "s")
    builder = StateGraph(S)
    builder.add_node("n", inner.compile())
    builder.add_node("m", lambda state: {"log": ["m"]})
    builder.add_edge(START, "n")
    builder.add_edge(START, "m")
    graph = builder.compile(checkpointer=saver)
    chunks = stream(graph, {"log": []}, mode, thread(), stream_mode="checkpoints")
    thread_id = thread()["configurable"]["thread_id"]

    def shown(tasks: Any) -> list[tuple[str, Any]]:
        return [
            (
                name,
                None if state is None else (state["configurable"]["thread_id"], state["configurable"]["checkpoint_ns"]),
            )
            for name, state in tasks
        ]

    n_id = next(t["id"] for t in chunks[1]["tasks"] if t["name"] == "n")
    expected = [("m", None), ("n", (thread_id, f"n:{n_id}"))]
    assert shown((t["name"], t["state"]) for t in chunks[1]["tasks"]) == expected
    snapshot = get_state(graph, thread(), mode)
    assert sorted(shown((t.name, t.state) for t in snapshot.tasks)) == expected
    newest = history(graph, thread(), mode)[0]
    assert sorted(shown((t.name, t.state) for t in newest.tasks)) == expected
