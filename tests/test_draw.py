"""`get_graph()`: the drawable view of a StateGraph, its Mermaid text (as LangGraph writes it) and ASCII art."""

from __future__ import annotations

import operator
import re
from typing import Annotated, Any, Literal, TypedDict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graphrt.graph import END, START, StateGraph
from graphrt.graph._draw import DrawableGraph, Edge, Node, NodeStyles
from graphrt.graph._draw_ascii import draw_ascii
from graphrt.types import Command, Send


class State(TypedDict):
    x: Annotated[list[int], operator.add]


def step(state: State) -> dict[str, Any]:
    return {"x": [1]}


def graph_of(*names: str, **kwargs: Any) -> StateGraph[State]:
    builder: StateGraph[State] = StateGraph(State)
    for name in names:
        builder.add_node(name, step, **kwargs.get(name, {}))
    return builder


def drawn(builder: StateGraph[State]) -> DrawableGraph:
    graph = builder.compile().get_graph()
    assert isinstance(graph, DrawableGraph)
    return graph


def linear() -> StateGraph[State]:
    builder = graph_of("a", "b", "c")
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_edge("b", "c")
    builder.add_edge("c", END)
    return builder


def conditional() -> StateGraph[State]:
    builder = graph_of("agent", "tools")

    def should_continue(state: State) -> str:
        return "end"

    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", should_continue, {"continue": "tools", "end": END})
    builder.add_edge("tools", "agent")
    return builder


def join() -> StateGraph[State]:
    builder = graph_of("a", "b", "c", "d")
    builder.add_edge(START, "a")
    builder.add_edge(START, "b")
    builder.add_edge(["a", "b"], "c")
    builder.add_edge("c", "d")
    builder.add_edge("d", END)
    return builder


def cycle() -> StateGraph[State]:
    builder = graph_of("a", "b")

    def route(state: State) -> str:
        return "done"

    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    builder.add_conditional_edges("b", route, {"again": "a", "done": END})
    return builder


def fan_out() -> StateGraph[State]:
    builder = graph_of("plan", "work", "sum")
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", lambda s: [Send("work", s)])
    builder.add_edge("work", "sum")
    builder.add_edge("sum", END)
    return builder


HEADER = "---\nconfig:\n  flowchart:\n    curve: linear\n---\ngraph TD;\n"
STYLES = (
    "\tclassDef default fill:#f2f0ff,line-height:1.2\n\tclassDef first fill-opacity:0\n\tclassDef last fill:#bfb6fc\n"
)


def mermaid(*lines: str) -> str:
    return HEADER + "".join(f"\t{line}\n" for line in lines) + STYLES


# ---------------------------------------------------------------- the graph model


def test_nodes_and_edges_have_langgraphs_shape() -> None:
    graph = drawn(conditional())
    assert list(graph.nodes) == [START, "agent", "tools", END]
    agent = graph.nodes["agent"]
    assert (agent.id, agent.name, agent.data, agent.metadata) == ("agent", "agent", step, None)
    assert graph.nodes[START] == Node(START, START, None, None)
    assert graph.edges == [
        Edge(START, "agent", None, False),
        Edge("agent", END, "end", True),
        Edge("agent", "tools", "continue", True),
        Edge("tools", "agent", None, False),
    ]
    assert graph.first_node() == graph.nodes[START]
    assert graph.last_node() == graph.nodes[END]
    assert bool(graph)


def test_join_draws_an_edge_from_each_start() -> None:
    assert drawn(join()).edges == [
        Edge(START, "a"),
        Edge(START, "b"),
        Edge("a", "c"),
        Edge("b", "c"),
        Edge("c", "d"),
        Edge("d", END),
    ]


def test_a_node_that_leads_nowhere_is_drawn_finishing_the_run() -> None:
    builder = graph_of("a")
    builder.add_edge(START, "a")
    assert drawn(builder).edges == [Edge(START, "a"), Edge("a", END)]


def test_branch_without_path_map_may_go_to_every_other_node_and_end() -> None:
    # Deliberately unlike LangGraph 1.x, which draws no edge for such a branch and leaves `work` unreachable.
    assert drawn(fan_out()).edges == [
        Edge(START, "plan"),
        Edge("plan", END, None, True),
        Edge("plan", "sum", None, True),
        Edge("plan", "work", None, True),
        Edge("work", "sum"),
        Edge("sum", END),
    ]


def test_plain_edges_to_end_come_after_the_others_as_in_langgraph() -> None:
    # Pinned from LangGraph 1.2.22: its plain edges into `__end__` follow the sorted others, in node order.
    builder = graph_of("m", "a", "z")
    builder.add_edge(START, "m")
    builder.add_edge("m", "z")
    builder.add_edge("m", "a")
    builder.add_edge("z", END)
    builder.add_edge("a", END)
    assert drawn(builder).edges == [Edge(START, "m"), Edge("m", "a"), Edge("m", "z"), Edge("a", END), Edge("z", END)]


def test_a_plain_edge_to_end_is_drawn_beside_a_branch() -> None:
    # Deliberately unlike LangGraph 1.2.22, which leaves out `a --> __end__` because `a` also has a branch.
    def route(state: State) -> Literal["b"]:
        return "b"

    builder = graph_of("a", "b")
    builder.add_edge(START, "a")
    builder.add_edge("a", END)
    builder.add_conditional_edges("a", route)
    builder.add_edge("b", END)
    assert drawn(builder).edges == [Edge(START, "a"), Edge("a", "b", None, True), Edge("a", END), Edge("b", END)]


def test_path_map_keys_become_labels_unless_they_repeat_the_target() -> None:
    builder = graph_of("a", "b", "c")
    builder.add_edge(START, "a")
    builder.add_conditional_edges("a", lambda s: True, {True: "b", False: END, 3: "c"})
    builder.add_conditional_edges("b", lambda s: "c", ["c"])
    builder.add_edge("c", END)
    assert drawn(builder).edges == [
        Edge(START, "a"),
        Edge("a", END, "False", True),
        Edge("a", "b", "True", True),
        Edge("a", "c", "3", True),
        Edge("b", "c", None, True),
        Edge("c", END),
    ]


def test_one_edge_per_pair_keeps_the_first_label_in_sorted_order() -> None:
    builder = graph_of("a", "b")
    builder.add_edge(START, "a")
    builder.add_conditional_edges("a", lambda s: "y", {"y": "b", "x": "b", "z": END})
    builder.add_edge("b", END)
    assert drawn(builder).edges == [
        Edge(START, "a"),
        Edge("a", END, "z", True),
        Edge("a", "b", "x", True),
        Edge("b", END),
    ]


def test_literal_return_annotations_name_the_destinations() -> None:
    def route(state: State) -> Literal["a", "__end__"]:
        return "__end__"

    def command(state: State) -> Command[Literal["b"]]:
        return Command(goto="b")

    builder: StateGraph[State] = StateGraph(State)
    builder.add_node("a", command)
    builder.add_node("b", step)
    builder.add_edge(START, "a")
    builder.add_conditional_edges("b", route)
    assert drawn(builder).edges == [
        Edge(START, "a"),
        Edge("a", "b", None, True),
        Edge("b", END, None, True),
        Edge("b", "a", None, True),
    ]


def test_deferred_nodes_and_metadata_are_in_node_metadata() -> None:
    builder = graph_of("a", "b", a={"metadata": {"k": 1}}, b={"defer": True})
    builder.add_edge(START, "a")
    builder.add_edge("a", "b")
    graph = DrawableGraph.from_builder(builder, interrupt_before=["a"], interrupt_after="*")
    assert graph.nodes["a"].metadata == {"k": 1, "__interrupt": "before,after"}
    assert graph.nodes["b"].metadata == {"defer": True, "__interrupt": "after"}


def test_to_json() -> None:
    builder = graph_of("a", a={"metadata": {"k": 1}})
    builder.add_edge(START, "a")
    builder.add_conditional_edges("a", lambda s: "x", {"x": END})
    assert drawn(builder).to_json() == {
        "nodes": [
            {"id": START},
            {
                "id": "a",
                "type": "runnable",
                "data": {"id": [*__name__.split("."), "step"], "name": "a"},
                "metadata": {"k": 1},
            },
            {"id": END},
        ],
        "edges": [
            {"source": START, "target": "a"},
            {"source": "a", "target": END, "data": "x", "conditional": True},
        ],
    }


def test_images_are_not_drawn() -> None:
    with pytest.raises(NotImplementedError, match="graphrt does not render images: use draw_mermaid"):
        drawn(linear()).draw_mermaid_png()


# ---------------------------------------------------------------- Mermaid


def test_mermaid_linear() -> None:
    assert drawn(linear()).draw_mermaid() == mermaid(
        "__start__([<p>__start__</p>]):::first",
        "a(a)",
        "b(b)",
        "c(c)",
        "__end__([<p>__end__</p>]):::last",
        "__start__ --> a;",
        "a --> b;",
        "b --> c;",
        "c --> __end__;",
    )


def test_mermaid_conditional_edges_are_dotted_with_labels() -> None:
    assert drawn(conditional()).draw_mermaid() == mermaid(
        "__start__([<p>__start__</p>]):::first",
        "agent(agent)",
        "tools(tools)",
        "__end__([<p>__end__</p>]):::last",
        "__start__ --> agent;",
        "agent -. &nbsp;end&nbsp; .-> __end__;",
        "agent -. &nbsp;continue&nbsp; .-> tools;",
        "tools --> agent;",
    )


def test_mermaid_join_and_cycle() -> None:
    assert drawn(join()).draw_mermaid(with_styles=False) == (
        "graph TD;\n\t__start__ --> a;\n\t__start__ --> b;\n\ta --> c;\n\tb --> c;\n\tc --> d;\n\td --> __end__;\n"
    )
    assert drawn(cycle()).draw_mermaid(with_styles=False) == (
        "graph TD;\n"
        "\t__start__ --> a;\n"
        "\ta --> b;\n"
        "\tb -. &nbsp;done&nbsp; .-> __end__;\n"
        "\tb -. &nbsp;again&nbsp; .-> a;\n"
    )


def test_mermaid_fan_out_without_path_map() -> None:
    assert drawn(fan_out()).draw_mermaid() == mermaid(
        "__start__([<p>__start__</p>]):::first",
        "plan(plan)",
        "work(work)",
        "sum(sum)",
        "__end__([<p>__end__</p>]):::last",
        "__start__ --> plan;",
        "plan -.-> __end__;",
        "plan -.-> sum;",
        "plan -.-> work;",
        "work --> sum;",
        "sum --> __end__;",
    )


def test_mermaid_ids_are_escaped_and_metadata_shown() -> None:
    builder = graph_of("my node", "c.d", "_x_", **{"my node": {"metadata": {"k": 1, "tags": ["a", "b"], "o": {}}}})
    builder.add_edge(START, "my node")
    builder.add_edge("my node", "c.d")
    builder.add_edge("c.d", "_x_")
    builder.add_edge("_x_", END)
    assert drawn(builder).draw_mermaid() == mermaid(
        "__start__([<p>__start__</p>]):::first",
        "my\\20node(my node<hr/><small><em>k = 1\ntags = a, b</em></small>)",
        "c\\2ed(c.d)",
        "_x_(<p>_x_</p>)",
        "__end__([<p>__end__</p>]):::last",
        "__start__ --> my\\20node;",
        "c\\2ed --> _x_;",
        "my\\20node --> c\\2ed;",
        "_x_ --> __end__;",
    )


def test_mermaid_options() -> None:
    builder = graph_of("a")
    builder.add_edge(START, "a")
    words = " ".join(f"w{i}" for i in range(5))
    builder.add_conditional_edges("a", lambda s: words, {words: END})
    text = drawn(builder).draw_mermaid(
        curve_style="basis",
        node_colors=NodeStyles(default="fill:#fff"),
        wrap_label_n_words=2,
        frontmatter_config={"config": {"theme": "neutral", "themeVariables": {"primaryColor": "#e2e2e2"}}},
    )
    assert text == (
        "---\nconfig:\n  flowchart:\n    curve: basis\n  theme: neutral\n  themeVariables:\n"
        "    primaryColor: '#e2e2e2'\n---\ngraph TD;\n"
        "\t__start__([<p>__start__</p>]):::first\n"
        "\ta(a)\n"
        "\t__end__([<p>__end__</p>]):::last\n"
        "\t__start__ --> a;\n"
        "\ta -. &nbsp;w0 w1&nbsp<br>&nbspw2 w3&nbsp<br>&nbspw4&nbsp; .-> __end__;\n"
        "\tclassDef default fill:#fff\n"
        "\tclassDef first fill-opacity:0\n"
        "\tclassDef last fill:#bfb6fc\n"
    )


# ---------------------------------------------------------------- ASCII


def art(*lines: str) -> str:
    return "\n".join(lines)


def test_ascii_linear() -> None:
    assert drawn(linear()).draw_ascii() == art(
        "+-----------+",
        "| __start__ |",
        "+-----------+",
        "      |",
        "      v",
        "    +---+",
        "    | a |",
        "    +---+",
        "      |",
        "      v",
        "    +---+",
        "    | b |",
        "    +---+",
        "      |",
        "      v",
        "    +---+",
        "    | c |",
        "    +---+",
        "      |",
        "      v",
        " +---------+",
        " | __end__ |",
        " +---------+",
    )


def test_ascii_conditional_edges_are_dotted_and_a_cycle_points_back_up() -> None:
    assert drawn(conditional()).draw_ascii() == art(
        "          +-----------+",
        "          | __start__ |",
        "          +-----------+",
        "                |",
        "                v",
        "        +---------------+",
        "        |     agent     |",
        "        +---------------+",
        "         :   ^         :",
        "         :   |         : end",
        "continue :   |         :",
        "         v   |         v",
        "       +-------+  +---------+",
        "       | tools |  | __end__ |",
        "       +-------+  +---------+",
    )


def test_ascii_join() -> None:
    assert drawn(join()).draw_ascii() == art(
        "+-----------+",
        "| __start__ |",
        "+-----------+",
        "   |      |",
        "   v      v",
        " +---+  +---+",
        " | a |  | b |",
        " +---+  +---+",
        "    |    |",
        "    v    v",
        "  +--------+",
        "  |   c    |",
        "  +--------+",
        "       |",
        "       v",
        "     +---+",
        "     | d |",
        "     +---+",
        "       |",
        "       v",
        "  +---------+",
        "  | __end__ |",
        "  +---------+",
    )


def test_ascii_cycle() -> None:
    assert drawn(cycle()).draw_ascii() == art(
        "+-----------+",
        "| __start__ |",
        "+-----------+",
        "      |",
        "      v",
        "    +---+",
        "    | a |",
        "    +---+",
        "     | ^",
        "     | : again",
        "     v :",
        "    +---+",
        "    | b |",
        "    +---+",
        "      :",
        "      : done",
        "      v",
        " +---------+",
        " | __end__ |",
        " +---------+",
    )


def test_ascii_fan_out_without_path_map_runs_long_edges_past_the_layers_between() -> None:
    assert drawn(fan_out()).draw_ascii() == art(
        "   +-----------+",
        "   | __start__ |",
        "   +-----------+",
        "         |",
        "         v",
        "   +-----------+",
        "   |    plan   |",
        "   +-----------+",
        "    :     :  :",
        "    v     :  :",
        "+------+  :  :",
        "| work |  :  :",
        "+------+  :  :",
        "    |     :  :",
        "    |    .:  :",
        "    v    v   :",
        "  +-------+  :",
        "  |  sum  |  :",
        "  +-------+  :",
        "        |    :",
        "        v    v",
        "     +---------+",
        "     | __end__ |",
        "     +---------+",
    )


def test_ascii_self_loop_is_written_beside_its_box() -> None:
    text = draw_ascii({"a": "a", "b": "b"}, [("a", "a", True, "again"), ("a", "b", False, None)])
    assert text == art(
        "+---+",
        "| a | -.-> a (again)",
        "+---+",
        "  |",
        "  v",
        "+---+",
        "| b |",
        "+---+",
    )


def test_print_ascii(capsys: pytest.CaptureFixture[str]) -> None:
    graph = drawn(linear())
    graph.print_ascii()
    assert capsys.readouterr().out == graph.draw_ascii() + "\n"


names = st.sampled_from(["a", "bb", "ccc", "node", "x y"])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), st.booleans(), st.none() | names), max_size=14),
)
def test_ascii_draws_every_node_of_any_graph_deterministically(edges: list[tuple[int, int, bool, str | None]]) -> None:
    nodes = {f"n{i}": f"n{i}" for i in range(6)}
    pairs = [(f"n{s}", f"n{t}", cond, label) for s, t, cond, label in edges]
    text = draw_ascii(nodes, pairs)
    assert text == draw_ascii(nodes, pairs)
    for name in nodes:
        assert re.search(rf"\| +{name} +\|", text)
    lines = text.split("\n")
    assert all(line == line.rstrip() for line in lines)
    arrows = sum(line.count("v") + line.count("^") for line in lines)
    drawn_edges = {(s, t) for s, t, _, _ in pairs if s != t}
    assert arrows >= len(drawn_edges)


def test_declared_destinations_are_conditional_edges() -> None:
    # A dict maps each destination to its label, as in LangGraph (drawn without compiling the builder).
    builder = graph_of("a", "b", "c", a={"destinations": ("b", "c")}, b={"destinations": {"c": "go", END: "stop"}})
    builder.add_edge(START, "a")
    assert DrawableGraph.from_builder(builder).draw_mermaid(with_styles=False) == (
        "graph TD;\n"
        "\t__start__ --> a;\n"
        "\ta -.-> b;\n"
        "\ta -.-> c;\n"
        "\tb -. &nbsp;stop&nbsp; .-> __end__;\n"
        "\tb -. &nbsp;go&nbsp; .-> c;\n"
        "\tc --> __end__;\n"
    )


def test_an_annotation_naming_an_unknown_node_is_not_drawn() -> None:
    def route(state: State) -> Literal["a", "nowhere"]:
        return "a"

    builder = graph_of("a")
    builder.add_edge(START, "a")
    builder.add_conditional_edges("a", route)
    graph = DrawableGraph.from_builder(builder)
    assert graph.edges == [Edge(START, "a"), Edge("a", "a", None, True)]
    assert "| a | -.-> a" in graph.draw_ascii()
