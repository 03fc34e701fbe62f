"""`get_graph(xray=...)`: compiled graphs used as nodes drawn expanded, in Mermaid (as LangGraph 1.2.22 writes it,
pinned from its output for the same graphs) and in ASCII."""

from __future__ import annotations

import operator
import re
from typing import Annotated, Any, Literal, TypedDict

import pytest

from graphrt.graph import END, START, StateGraph
from graphrt.graph._draw import DrawableGraph, Edge
from graphrt.graph.state import CompiledStateGraph


class State(TypedDict):
    x: Annotated[list[int], operator.add]


def step(state: State) -> dict[str, Any]:
    return {"x": [1]}


def chain(*names: str) -> StateGraph[State]:
    builder: StateGraph[State] = StateGraph(State)
    previous = START
    for name in names:
        builder.add_node(name, step)
        builder.add_edge(previous, name)
        previous = name
    builder.add_edge(previous, END)
    return builder


def around(name: str, child: Any, before: str | None = None, after: str | None = None) -> StateGraph[State]:
    """START -> [before] -> name (the child graph) -> [after] -> END."""
    builder: StateGraph[State] = StateGraph(State)
    path = [n for n in (before, name, after) if n is not None]
    for node in path:
        builder.add_node(node, child if node == name else step)
    for source, target in zip([START, *path], [*path, END], strict=True):
        builder.add_edge(source, target)
    return builder


def parent() -> CompiledStateGraph[State]:
    """START -> p1 -> sub(c1 -> c2) -> END."""
    return around("sub", chain("c1", "c2").compile(), before="p1").compile()


def outer() -> CompiledStateGraph[State]:
    """START -> o1 -> inner(parent()) -> o2 -> END."""
    return around("inner", parent(), before="o1", after="o2").compile()


def agent_loop() -> CompiledStateGraph[State]:
    builder: StateGraph[State] = StateGraph(State)
    builder.add_node("agent", step)
    builder.add_node("tools", step)
    builder.add_edge(START, "agent")

    def route(state: State) -> str:
        return "end"

    builder.add_conditional_edges("agent", route, {"continue": "tools", "end": END})
    builder.add_edge("tools", "agent")
    return builder.compile()


def gate() -> CompiledStateGraph[State]:
    """A child whose first node may finish the child at once: its `__end__` has two edges in."""

    def route(state: State) -> Literal["work", "__end__"]:
        return END

    builder: StateGraph[State] = StateGraph(State)
    builder.add_node("check", step)
    builder.add_node("work", step)
    builder.add_edge(START, "check")
    builder.add_conditional_edges("check", route)
    builder.add_edge("work", END)
    return builder.compile()


def fan_in() -> CompiledStateGraph[State]:
    """A child whose `__start__` has two edges out."""
    builder: StateGraph[State] = StateGraph(State)
    for name in ("a", "b", "c"):
        builder.add_node(name, step)
    builder.add_edge(START, "a")
    builder.add_edge(START, "b")
    builder.add_edge(["a", "b"], "c")
    builder.add_edge("c", END)
    return builder.compile()


def routed() -> CompiledStateGraph[State]:
    """A conditional edge of the parent leads into the subgraph."""

    def route(state: State) -> Literal["sub", "other"]:
        return "sub"

    builder: StateGraph[State] = StateGraph(State)
    builder.add_node("r", step)
    builder.add_node("sub", chain("c1", "c2").compile())
    builder.add_node("other", step)
    builder.add_edge(START, "r")
    builder.add_conditional_edges("r", route)
    builder.add_edge("sub", "other")
    builder.add_edge("other", END)
    return builder.compile()


def two() -> CompiledStateGraph[State]:
    builder: StateGraph[State] = StateGraph(State)
    builder.add_node("s1", chain("c1", "c2").compile())
    builder.add_node("s2", chain("d1").compile())
    builder.add_edge(START, "s1")
    builder.add_edge("s1", "s2")
    builder.add_edge("s2", END)
    return builder.compile()


HEADER = "---\nconfig:\n  flowchart:\n    curve: linear\n---\ngraph TD;\n"
STYLES = (
    "\tclassDef default fill:#f2f0ff,line-height:1.2\n\tclassDef first fill-opacity:0\n\tclassDef last fill:#bfb6fc\n"
)


def mermaid(*lines: str) -> str:
    return HEADER + "".join(f"\t{line}\n" for line in lines) + STYLES


def plain(*lines: str) -> str:
    return "graph TD;\n" + "".join(f"\t{line}\n" for line in lines)


# ---------------------------------------------------------------- LangGraph's text for the same graphs

PARENT = mermaid(
    "__start__([<p>__start__</p>]):::first",
    "p1(p1)",
    "__end__([<p>__end__</p>]):::last",
    "__start__ --> p1;",
    "p1 --> sub\\3ac1;",
    "sub\\3ac2 --> __end__;",
    "subgraph sub",
    "sub\\3ac1(c1)",
    "sub\\3ac2(c2)",
    "sub\\3ac1 --> sub\\3ac2;",
    "end",
)

OUTER_1 = mermaid(
    "__start__([<p>__start__</p>]):::first",
    "o1(o1)",
    "o2(o2)",
    "__end__([<p>__end__</p>]):::last",
    "__start__ --> o1;",
    "inner\\3asub --> o2;",
    "o1 --> inner\\3ap1;",
    "o2 --> __end__;",
    "subgraph inner",
    "inner\\3ap1(p1)",
    "inner\\3asub(sub)",
    "inner\\3ap1 --> inner\\3asub;",
    "end",
)

OUTER_ALL = mermaid(
    "__start__([<p>__start__</p>]):::first",
    "o1(o1)",
    "o2(o2)",
    "__end__([<p>__end__</p>]):::last",
    "__start__ --> o1;",
    "inner\\3asub\\3ac2 --> o2;",
    "o1 --> inner\\3ap1;",
    "o2 --> __end__;",
    "subgraph inner",
    "inner\\3ap1(p1)",
    "inner\\3ap1 --> inner\\3asub\\3ac1;",
    "subgraph sub",
    "inner\\3asub\\3ac1(c1)",
    "inner\\3asub\\3ac2(c2)",
    "inner\\3asub\\3ac1 --> inner\\3asub\\3ac2;",
    "end",
    "end",
)

LOOP = mermaid(
    "__start__([<p>__start__</p>]):::first",
    "prep(prep)",
    "post(post)",
    "__end__([<p>__end__</p>]):::last",
    "__start__ --> prep;",
    "loop\\3a__end__ --> post;",
    "prep --> loop\\3a__start__;",
    "post --> __end__;",
    "subgraph loop",
    "loop\\3a__start__(<p>__start__</p>)",
    "loop\\3aagent(agent)",
    "loop\\3atools(tools)",
    "loop\\3a__end__(<p>__end__</p>)",
    "loop\\3a__start__ --> loop\\3aagent;",
    "loop\\3aagent -. &nbsp;end&nbsp; .-> loop\\3a__end__;",
    "loop\\3aagent -. &nbsp;continue&nbsp; .-> loop\\3atools;",
    "loop\\3atools --> loop\\3aagent;",
    "end",
)

GATE = mermaid(
    "__start__([<p>__start__</p>]):::first",
    "after(after)",
    "__end__([<p>__end__</p>]):::last",
    "__start__ --> gate\\3acheck;",
    "gate\\3a__end__ --> after;",
    "after --> __end__;",
    "subgraph gate",
    "gate\\3acheck(check)",
    "gate\\3awork(work)",
    "gate\\3a__end__(<p>__end__</p>)",
    "gate\\3acheck -.-> gate\\3a__end__;",
    "gate\\3acheck -.-> gate\\3awork;",
    "gate\\3awork --> gate\\3a__end__;",
    "end",
)

FAN_IN = plain(
    "__start__ --> par\\3a__start__;",
    "par\\3ac --> z;",
    "z --> __end__;",
    "subgraph par",
    "par\\3a__start__ --> par\\3aa;",
    "par\\3a__start__ --> par\\3ab;",
    "par\\3aa --> par\\3ac;",
    "par\\3ab --> par\\3ac;",
    "end",
)

ROUTED = plain(
    "__start__ --> r;",
    "r -.-> other;",
    "r -.-> sub\\3ac1;",
    "sub\\3ac2 --> other;",
    "other --> __end__;",
    "subgraph sub",
    "sub\\3ac1 --> sub\\3ac2;",
    "end",
)

TWO = mermaid(
    "__start__([<p>__start__</p>]):::first",
    "__end__([<p>__end__</p>]):::last",
    "__start__ --> s1\\3ac1;",
    "s1\\3ac2 --> s2\\3ad1;",
    "s2\\3ad1 --> __end__;",
    "subgraph s1",
    "s1\\3ac1(c1)",
    "s1\\3ac2(c2)",
    "s1\\3ac1 --> s1\\3ac2;",
    "end",
    "subgraph s2",
    "s2\\3ad1(d1)",
    "end",
)

PAUSED = mermaid(
    "__start__([<p>__start__</p>]):::first",
    "p1(p1)",
    "__end__([<p>__end__</p>]):::last",
    "__start__ --> p1;",
    "p1 --> sub\\3ac1;",
    "sub\\3ac2 --> __end__;",
    "subgraph sub",
    "sub\\3ac1(c1)",
    "sub\\3ac2(c2<hr/><small><em>__interrupt = before</em></small>)",
    "sub\\3ac1 --> sub\\3ac2;",
    "end",
)


BACK = plain(
    "__start__ --> sub\\3a__start__;",
    "judge -.-> __end__;",
    "judge -.-> sub\\3a__start__;",
    "sub\\3a__end__ --> judge;",
    "subgraph sub",
    "sub\\3a__start__ --> sub\\3aagent;",
    "sub\\3aagent -. &nbsp;end&nbsp; .-> sub\\3a__end__;",
    "sub\\3aagent -. &nbsp;continue&nbsp; .-> sub\\3atools;",
    "sub\\3atools --> sub\\3aagent;",
    "end",
)

PARALLEL = plain(
    "__start__ --> s1\\3ac1;",
    "__start__ --> s2\\3a__start__;",
    "s1\\3ac2 --> j;",
    "s2\\3a__end__ --> j;",
    "j --> __end__;",
    "subgraph s1",
    "s1\\3ac1 --> s1\\3ac2;",
    "end",
    "subgraph s2",
    "s2\\3a__start__ --> s2\\3aagent;",
    "s2\\3aagent -. &nbsp;end&nbsp; .-> s2\\3a__end__;",
    "s2\\3aagent -. &nbsp;continue&nbsp; .-> s2\\3atools;",
    "s2\\3atools --> s2\\3aagent;",
    "end",
)

DEEP_2 = plain(
    "__start__ --> pre_l3;",
    "pre_l3 --> l3\\3apre_l2;",
    "l3\\3al2\\3ac2 --> __end__;",
    "subgraph l3",
    "l3\\3apre_l2 --> l3\\3al2\\3ac1;",
    "subgraph l2",
    "l3\\3al2\\3ac1 --> l3\\3al2\\3ac2;",
    "end",
    "end",
)


# ---------------------------------------------------------------- the drawing model


def test_xray_replaces_the_node_with_the_childs_nodes_and_moves_its_edges() -> None:
    graph = parent().get_graph(xray=True)
    assert isinstance(graph, DrawableGraph)
    assert list(graph.nodes) == [START, "p1", END, "sub:c1", "sub:c2"]
    assert graph.edges == [Edge(START, "p1"), Edge("p1", "sub:c1"), Edge("sub:c2", END), Edge("sub:c1", "sub:c2")]
    c1 = graph.nodes["sub:c1"]
    assert (c1.id, c1.name, c1.data) == ("sub:c1", "c1", step)
    assert graph.first_node() == graph.nodes[START] and graph.last_node() == graph.nodes[END]


def test_json_names_an_expanded_node_by_its_id_as_langgraph_does() -> None:
    data = parent().get_graph(xray=True).to_json()
    assert [(n["id"], n.get("data", {}).get("name")) for n in data["nodes"]] == [
        (START, None),
        ("p1", "p1"),
        (END, None),
        ("sub:c1", "sub:c1"),
        ("sub:c2", "sub:c2"),
    ]
    assert data["edges"][1] == {"source": "p1", "target": "sub:c1"}


def test_without_xray_a_subgraph_is_one_node() -> None:
    for graph in (parent().get_graph(), parent().get_graph(xray=False), parent().get_graph(xray=0)):
        assert list(graph.nodes) == [START, "p1", "sub", END]
        assert "subgraph" not in graph.draw_mermaid()


def test_xray_true_expands_every_level() -> None:
    assert parent().get_graph(xray=True).draw_mermaid() == PARENT
    assert outer().get_graph(xray=True).draw_mermaid() == OUTER_ALL
    assert outer().get_graph(xray=2).draw_mermaid() == OUTER_ALL
    assert outer().get_graph(xray=5).draw_mermaid() == OUTER_ALL
    # A negative depth, as in LangGraph, has no limit.
    assert outer().get_graph(xray=-1).draw_mermaid() == OUTER_ALL


def test_xray_n_expands_n_levels() -> None:
    graph = outer().get_graph(xray=1)
    assert list(graph.nodes) == [START, "o1", "o2", END, "inner:p1", "inner:sub"]
    assert graph.draw_mermaid() == OUTER_1


def test_without_styles_only_edges_sit_in_the_blocks() -> None:
    assert parent().get_graph(xray=True).draw_mermaid(with_styles=False) == plain(
        "__start__ --> p1;",
        "p1 --> sub\\3ac1;",
        "sub\\3ac2 --> __end__;",
        "subgraph sub",
        "sub\\3ac1 --> sub\\3ac2;",
        "end",
    )


def test_conditional_edges_inside_a_subgraph_keep_its_start_and_end() -> None:
    graph = around("loop", agent_loop(), before="prep", after="post").compile().get_graph(xray=True)
    assert graph.draw_mermaid() == LOOP
    assert Edge("loop:agent", "loop:__end__", "end", True) in graph.edges


def test_a_child_branch_to_end_keeps_the_childs_end() -> None:
    assert around("gate", gate(), after="after").compile().get_graph(xray=True).draw_mermaid() == GATE


def test_a_child_fanning_out_from_start_keeps_the_childs_start() -> None:
    graph = around("par", fan_in(), after="z").compile().get_graph(xray=True)
    assert graph.draw_mermaid(with_styles=False) == FAN_IN


def test_a_conditional_edge_into_a_subgraph_leads_to_its_first_node() -> None:
    assert routed().get_graph(xray=True).draw_mermaid(with_styles=False) == ROUTED


def test_a_parent_branch_back_into_a_subgraph_leads_to_its_start() -> None:
    def route(state: State) -> Literal["sub", "__end__"]:
        return END

    builder: StateGraph[State] = StateGraph(State)
    builder.add_node("sub", agent_loop())
    builder.add_node("judge", step)
    builder.add_edge(START, "sub")
    builder.add_edge("sub", "judge")
    builder.add_conditional_edges("judge", route)
    assert builder.compile().get_graph(xray=True).draw_mermaid(with_styles=False) == BACK


def test_parallel_subgraphs_joined_by_a_node() -> None:
    builder: StateGraph[State] = StateGraph(State)
    builder.add_node("s1", chain("c1", "c2").compile())
    builder.add_node("s2", agent_loop())
    builder.add_node("j", step)
    builder.add_edge(START, "s1")
    builder.add_edge(START, "s2")
    builder.add_edge(["s1", "s2"], "j")
    builder.add_edge("j", END)
    assert builder.compile().get_graph(xray=True).draw_mermaid(with_styles=False) == PARALLEL


def test_three_levels() -> None:
    graph: Any = chain("c1", "c2").compile()
    for name in ("l2", "l3"):
        graph = around(name, graph, before="pre_" + name).compile()
    assert graph.get_graph(xray=2).draw_mermaid(with_styles=False) == DEEP_2
    assert graph.get_graph(xray=True).draw_mermaid(with_styles=False) == DEEP_2
    assert list(graph.get_graph(xray=1).nodes) == [START, "pre_l3", END, "l3:pre_l2", "l3:l2"]


def test_a_subgraph_without_inner_edges_still_gets_a_block() -> None:
    assert two().get_graph(xray=True).draw_mermaid() == TWO


def test_the_childs_interrupts_are_drawn_the_parents_on_the_node_go_with_it() -> None:
    child = chain("c1", "c2").compile(interrupt_before=["c2"])
    graph = around("sub", child, before="p1").compile(interrupt_before=["sub"])
    assert graph.get_graph(xray=True).draw_mermaid() == PAUSED


def test_a_subgraph_without_checkpoints_stays_one_node_as_in_langgraph() -> None:
    graph = around("sub", chain("c1", "c2").compile(checkpointer=False), before="p1").compile()
    assert list(graph.get_graph(xray=True).nodes) == [START, "p1", "sub", END]


def test_drawing_twice_gives_the_same_text() -> None:
    graph = outer()
    assert graph.get_graph(xray=True).draw_mermaid() == graph.get_graph(xray=True).draw_mermaid() == OUTER_ALL
    assert list(graph.get_graph().nodes) == [START, "o1", "inner", "o2", END]


CALLED = chain("c1", "c2").compile()


def calls_global(state: State) -> Any:
    return CALLED.invoke(state)


def test_a_node_function_that_calls_a_graph_is_drawn_as_that_graph_as_in_langgraph() -> None:
    local = chain("c1", "c2").compile()

    def calls_closure(state: State) -> Any:
        return local.invoke(state)

    for action in (calls_global, calls_closure):
        graph = around("sub", action).compile().get_graph(xray=True)
        # LangGraph 1.2.22 draws both the same way.
        assert list(graph.nodes) == [START, END, "sub:c1", "sub:c2"]
        assert graph.edges == [Edge(START, "sub:c1"), Edge("sub:c2", END), Edge("sub:c1", "sub:c2")]
    assert list(around("sub", step).compile().get_graph(xray=True).nodes) == [START, "sub", END]


def test_a_node_that_names_its_own_graph_is_not_drawn_inside_itself() -> None:
    graph: Any = None

    def again(state: State) -> Any:
        return graph.get_state({})

    graph = around("again", again).compile()
    assert list(graph.get_graph(xray=True).nodes) == [START, "again", END]


def test_aget_graph_draws_the_same() -> None:
    import anyio

    async def draw() -> str:
        graph = await outer().aget_graph(xray=1)
        return str(graph.draw_mermaid())

    assert anyio.run(draw) == OUTER_1


def test_two_subgraph_nodes_with_one_name_are_refused_in_mermaid() -> None:
    graph = around("sub", parent()).compile().get_graph(xray=True)
    assert "sub:sub:c1" in graph.nodes
    with pytest.raises(ValueError, match=r"both named 'sub'.*distinct names"):
        graph.draw_mermaid()


def test_xray_of_another_type_is_refused() -> None:
    with pytest.raises(TypeError, match=r"xray=.*True, False or a number of levels, not 'all'"):
        parent().get_graph(xray="all")  # type: ignore[arg-type]


# ---------------------------------------------------------------- ASCII


def boxes(art: str) -> list[str]:
    return re.findall(r"\|\s*(\S+)\s*\|", art)


def test_ascii_shows_the_expanded_nodes_by_their_full_ids() -> None:
    assert parent().get_graph(xray=True).draw_ascii() == "\n".join(
        (
            "+-----------+",
            "| __start__ |",
            "+-----------+",
            "      |",
            "      v",
            "   +----+",
            "   | p1 |",
            "   +----+",
            "      |",
            "      v",
            " +--------+",
            " | sub:c1 |",
            " +--------+",
            "      |",
            "      v",
            " +--------+",
            " | sub:c2 |",
            " +--------+",
            "      |",
            "      v",
            " +---------+",
            " | __end__ |",
            " +---------+",
        )
    )


def test_ascii_node_sets_at_each_depth() -> None:
    assert sorted(boxes(outer().get_graph().draw_ascii())) == sorted([START, "o1", "inner", "o2", END])
    assert sorted(boxes(outer().get_graph(xray=1).draw_ascii())) == sorted(
        [START, "o1", "inner:p1", "inner:sub", "o2", END]
    )
    assert sorted(boxes(outer().get_graph(xray=True).draw_ascii())) == sorted(
        [START, "o1", "inner:p1", "inner:sub:c1", "inner:sub:c2", "o2", END]
    )
    loop = around("loop", agent_loop(), before="prep", after="post").compile().get_graph(xray=True)
    assert sorted(boxes(loop.draw_ascii())) == sorted(
        [START, "prep", "loop:__start__", "loop:agent", "loop:tools", "loop:__end__", "post", END]
    )
