"""A drawable view of a `StateGraph`: its nodes and edges, as Mermaid text, ASCII art or JSON.

`CompiledStateGraph.get_graph()` returns a `DrawableGraph`. Its shape follows LangGraph's (`nodes` maps an id
to a `Node(id, name, data, metadata)`, `edges` is a list of `Edge(source, target, data, conditional)`) and
`draw_mermaid()` writes the same Mermaid text LangGraph does for the same graph. Nothing here needs a
dependency beyond networkx: ASCII art comes from a small layered layout in `_draw_ascii`.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, NamedTuple

from graphrt.constants import END, START
from graphrt.graph._draw_xray import nested_mermaid_lines

if TYPE_CHECKING:
    from graphrt.graph.state import StateGraph

__all__ = ("CurveStyle", "DrawableGraph", "Edge", "Node", "NodeStyles")


class Node(NamedTuple):
    """A node of a drawable graph."""

    id: str
    """Unique id; for a `StateGraph` the node's name."""
    name: str
    """What a drawing shows."""
    data: Any
    """The node's function (None for `__start__` and `__end__`)."""
    metadata: dict[str, Any] | None
    """The node's metadata, plus `defer` and `__interrupt` where they apply; None when empty."""


class Edge(NamedTuple):
    """An edge of a drawable graph."""

    source: str
    target: str
    data: str | None = None
    """The edge's label: the key of a conditional edge's path map (None when it equals the target)."""
    conditional: bool = False
    """True when the edge is taken only if a condition (a branch, a `Command`) says so."""


class CurveStyle(Enum):
    """How Mermaid draws edges (the `flowchart.curve` setting)."""

    BASIS = "basis"
    BUMP_X = "bumpX"
    BUMP_Y = "bumpY"
    CARDINAL = "cardinal"
    CATMULL_ROM = "catmullRom"
    LINEAR = "linear"
    MONOTONE_X = "monotoneX"
    MONOTONE_Y = "monotoneY"
    NATURAL = "natural"
    STEP = "step"
    STEP_AFTER = "stepAfter"
    STEP_BEFORE = "stepBefore"


@dataclass
class NodeStyles:
    """Mermaid styles of ordinary nodes, the first node and the last node."""

    default: str = "fill:#f2f0ff,line-height:1.2"
    first: str = "fill-opacity:0"
    last: str = "fill:#bfb6fc"


@dataclass
class DrawableGraph:
    """The nodes and edges of a graph, ready to draw."""

    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    @classmethod
    def from_builder(
        cls,
        builder: StateGraph[Any],
        *,
        interrupt_before: Iterable[str] | str = (),
        interrupt_after: Iterable[str] | str = (),
    ) -> DrawableGraph:
        """The drawable view of a `StateGraph`: every node, static edge, join and possible conditional edge."""
        known = {START, END, *builder.nodes}
        # An annotation may name a node that does not exist; validation reports that, the drawing skips it.
        raw = [e for e in _raw_edges(builder) if e.source in known and e.target in known]
        # Plain edges to `__end__` are drawn last, after the sorted others, where LangGraph draws them.
        finishing = {e.source for e in raw if e.target == END and not e.conditional}
        edges = _dedupe(sorted((e for e in raw if e.target != END or e.conditional), key=_edge_order))
        graph = cls()
        graph.nodes[START] = Node(START, START, None, None)
        for name, spec in builder.nodes.items():
            metadata = dict(spec.metadata)
            if spec.defer:
                metadata["defer"] = True
            where = [w for w, names in (("before", interrupt_before), ("after", interrupt_after)) if _has(names, name)]
            if where:
                metadata["__interrupt"] = ",".join(where)
            graph.nodes[name] = Node(name, name, spec.action, metadata or None)
        sources = {e.source for e in edges}
        # Like LangGraph, a node that is reached but leads nowhere is drawn as finishing the run.
        termini = sorted(({e.target for e in edges if e.target != END} - sources) | finishing)
        edges.extend(Edge(t, END) for t in termini)
        if any(e.target == END for e in edges):
            graph.nodes[END] = Node(END, END, None, None)
        graph.edges = _dedupe(edges)
        return graph

    def __bool__(self) -> bool:
        return bool(self.nodes)

    def first_node(self) -> Node | None:
        """The only node that no edge leads to, or None when there is not exactly one."""
        targets = {e.target for e in self.edges}
        found = [n for n in self.nodes.values() if n.id not in targets]
        return found[0] if len(found) == 1 else None

    def last_node(self) -> Node | None:
        """The only node that no edge leaves, or None when there is not exactly one."""
        sources = {e.source for e in self.edges}
        found = [n for n in self.nodes.values() if n.id not in sources]
        return found[0] if len(found) == 1 else None

    def to_json(self, *, with_schemas: bool = False) -> dict[str, list[dict[str, Any]]]:
        """The graph as JSON-ready dicts: `{"nodes": [...], "edges": [...]}`, in LangGraph's shape."""
        nodes: list[dict[str, Any]] = []
        for node in self.nodes.values():
            item: dict[str, Any] = {"id": node.id}
            if node.data is not None:
                item["type"] = "runnable"
                item["data"] = {"id": _qualified_id(node.data), "name": node.id}
            if node.metadata is not None:
                item["metadata"] = node.metadata
            nodes.append(item)
        edges: list[dict[str, Any]] = []
        for edge in self.edges:
            out: dict[str, Any] = {"source": edge.source, "target": edge.target}
            if edge.data is not None:
                out["data"] = edge.data
            if edge.conditional:
                out["conditional"] = True
            edges.append(out)
        return {"nodes": nodes, "edges": edges}

    def draw_mermaid(
        self,
        *,
        with_styles: bool = True,
        curve_style: CurveStyle | str = CurveStyle.LINEAR,
        node_colors: NodeStyles | Mapping[str, str] | None = None,
        wrap_label_n_words: int = 9,
        frontmatter_config: Mapping[str, Any] | None = None,
    ) -> str:
        """The graph as Mermaid flowchart text (paste it into any Mermaid renderer)."""
        first, last = self.first_node(), self.last_node()
        curve = str(getattr(curve_style, "value", curve_style))
        lines: list[str] = []
        if with_styles:
            config = dict(frontmatter_config or {})
            inner = dict(config.get("config", {}))
            inner["flowchart"] = {**dict(inner.get("flowchart", {})), "curve": curve}
            config["config"] = inner
            lines += ["---", *_yaml_lines(config, 0), "---"]
        lines.append("graph TD;")

        def node_line(node: Node) -> str:
            shape = "{0}({1})"
            if first is not None and node.id == first.id:
                shape = "{0}([{1}]):::first"
            if last is not None and node.id == last.id:
                shape = "{0}([{1}]):::last"
            return "\t" + shape.format(mermaid_id(node.id), _mermaid_label(node))

        def edge_line(edge: Edge) -> str:
            arrow = _mermaid_arrow(edge, wrap_label_n_words)
            return f"\t{mermaid_id(edge.source)}{arrow}{mermaid_id(edge.target)};"

        lines += nested_mermaid_lines(self.nodes, self.edges, node_line, edge_line, with_styles=with_styles)
        if with_styles:
            styles = _styles(node_colors)
            lines.extend(f"\tclassDef {name} {style}" for name, style in styles.items())
        return "\n".join(lines) + "\n"

    def draw_ascii(self) -> str:
        """The graph as boxes and arrows in plain text, top to bottom; conditional edges are dotted.

        A node of an expanded subgraph is labelled with its full id (`outer:inner:node`), so that the boxes
        say which subgraph they belong to.
        """
        from graphrt.graph._draw_ascii import draw_ascii

        return draw_ascii(
            {node.id: node.id if ":" in node.id else node.name for node in self.nodes.values()},
            [(e.source, e.target, e.conditional, e.data) for e in self.edges],
        )

    def print_ascii(self) -> None:
        """Print `draw_ascii()`."""
        print(self.draw_ascii())

    def draw_mermaid_png(self, *args: Any, **kwargs: Any) -> bytes:
        """Not available: graphrt draws text only."""
        raise NotImplementedError(
            "graphrt does not render images: use draw_mermaid() and paste the text into a Mermaid renderer "
            "(mermaid-cli, mermaid.live, a Markdown viewer), or use draw_ascii()."
        )

    def draw_png(self, *args: Any, **kwargs: Any) -> bytes | None:
        """Not available: graphrt draws text only."""
        raise NotImplementedError(
            "graphrt does not render images: use draw_mermaid() and paste the text into a Mermaid renderer "
            "(mermaid-cli, mermaid.live, a Markdown viewer), or use draw_ascii()."
        )


# ---------------------------------------------------------------- edges of a builder


def _raw_edges(builder: StateGraph[Any]) -> list[Edge]:
    """Every edge the builder declares, before sorting and de-duplication."""
    edges = [Edge(s, t) for s, t in builder.edges]
    edges.extend(Edge(s, end) for starts, end in builder.waiting_edges for s in starts)
    everywhere = [*builder.nodes, END]
    for source, branches in builder.branches.items():
        for branch in branches.values():
            ends = branch.ends if branch.ends is not None else _literal_ends(getattr(branch.path, "func", None))
            if ends is None:
                # The branch may route anywhere (or `Send` anywhere): draw every place it could go.
                ends = {n: n for n in everywhere if n != source}
            edges.extend(_labelled(source, ends.items()))
    for name, spec in builder.nodes.items():
        dests = spec.destinations
        if isinstance(dests, Mapping):
            edges.extend(_labelled(name, ((label, target) for target, label in dests.items())))
        elif dests is not None:
            edges.extend(_labelled(name, ((target, target) for target in dests)))
        elif spec.ends:
            edges.extend(_labelled(name, ((target, target) for target in spec.ends)))
        elif command_ends := _literal_ends(spec.action, command=True):
            edges.extend(_labelled(name, command_ends.items()))
    return edges


def _labelled(source: str, ends: Iterable[tuple[Hashable, str]]) -> list[Edge]:
    """Conditional edges from `source`; a label that only repeats the target is left off, as LangGraph does."""
    return [Edge(source, target, None if str(key) == target else str(key), True) for key, target in ends]


def _literal_ends(func: Callable[..., Any] | None, *, command: bool = False) -> dict[Hashable, str] | None:
    """Destinations named by a return annotation: `Literal["a", "b"]`, or `Command[Literal[...]]` for a node."""
    if func is None:
        return None
    target = func if inspect.isfunction(func) or inspect.ismethod(func) else getattr(func, "__call__", None)  # noqa: B004
    try:
        hint = typing.get_type_hints(target).get("return")
    except Exception:  # an annotation that does not resolve names no destinations
        return None
    if hint is None:
        return None
    if command:
        if getattr(typing.get_origin(hint), "__name__", None) != "Command":
            return None
        args = typing.get_args(hint)
        hint = args[0] if args else None
    if typing.get_origin(hint) is not typing.Literal:
        return None
    return {str(v): str(v) for v in typing.get_args(hint)}


def _edge_order(edge: Edge) -> tuple[str, str, bool, bool, str]:
    return (edge.source, edge.target, edge.conditional, edge.data is not None, edge.data or "")


def _dedupe(edges: list[Edge]) -> list[Edge]:
    """Keep the first edge for each (source, target) pair."""
    seen: set[tuple[str, str]] = set()
    out: list[Edge] = []
    for edge in edges:
        if (edge.source, edge.target) not in seen:
            seen.add((edge.source, edge.target))
            out.append(edge)
    return out


def _has(names: Iterable[str] | str, name: str) -> bool:
    return names == "*" or (not isinstance(names, str) and name in names)


def _qualified_id(data: Any) -> list[str]:
    module = getattr(data, "__module__", None) or type(data).__module__
    qualname = getattr(data, "__qualname__", None) or type(data).__qualname__
    return [*str(module).split("."), str(qualname)]


# ---------------------------------------------------------------- Mermaid text

_SAFE_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_MARKDOWN_CHARS = ("*", "_", "`")
_LABEL_ESCAPES = (
    ("#", "#35;"),  # first, so the entities added below are not escaped again
    ("[", "#91;"),
    ("]", "#93;"),
    ("(", "#40;"),
    (")", "#41;"),
    ("{", "#123;"),
    ("}", "#125;"),
    ('"', "#quot;"),
    ("<", "#60;"),
    (">", "#62;"),
    ("|", "#124;"),
)


def mermaid_id(name: str) -> str:
    """A Mermaid-safe node id: letters, digits, `_` and `-` stay; any other character becomes `\\` + hex."""
    return "".join(ch if ch in _SAFE_ID_CHARS else "\\" + format(ord(ch), "x") for ch in name)


def _mermaid_label(node: Node) -> str:
    name = node.name.split(":")[-1]
    # A name wrapped in Markdown characters (`__start__`) would render in bold; a paragraph keeps it literal.
    label = f"<p>{name}</p>" if name.startswith(_MARKDOWN_CHARS) and name.endswith(_MARKDOWN_CHARS) else name
    lines = []
    for key, value in (node.metadata or {}).items():
        text = _metadata_text(value)
        if text is not None:
            lines.append(_escape_label(f"{key} = {text}"))
    if lines:
        label += "<hr/><small><em>" + "\n".join(lines) + "</em></small>"
    return label


def _metadata_text(value: Any) -> str | None:
    """Scalars and flat collections of scalars are shown; anything else is left out of the drawing."""
    scalars = (str, int, float, bool)
    if isinstance(value, scalars):
        return str(value)
    if isinstance(value, list | tuple | set | frozenset) and all(isinstance(v, scalars) for v in value):
        items = [str(v) for v in value]
        return ", ".join(sorted(items) if isinstance(value, set | frozenset) else items)
    return None


def _escape_label(text: str) -> str:
    for char, entity in _LABEL_ESCAPES:
        text = text.replace(char, entity)
    return text


def _mermaid_arrow(edge: Edge, wrap: int) -> str:
    if edge.data is None:
        return " -.-> " if edge.conditional else " --> "
    words = str(edge.data).split()
    text = str(edge.data)
    if len(words) > wrap:
        text = "&nbsp<br>&nbsp".join(" ".join(words[i : i + wrap]) for i in range(0, len(words), wrap))
    return f" -. &nbsp;{text}&nbsp; .-> " if edge.conditional else f" -- &nbsp;{text}&nbsp; --> "


def _styles(node_colors: NodeStyles | Mapping[str, str] | None) -> dict[str, str]:
    if node_colors is None:
        return asdict(NodeStyles())
    if isinstance(node_colors, Mapping):
        return dict(node_colors)
    if is_dataclass(node_colors):
        return asdict(node_colors)
    return {k: str(getattr(node_colors, k)) for k in ("default", "first", "last")}


_PLAIN_YAML = re.compile(r"[A-Za-z_][A-Za-z0-9_ ./-]*")
_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n"})


def _yaml_lines(value: Mapping[str, Any], indent: int) -> list[str]:
    """Block YAML for Mermaid's front matter, keys sorted (as PyYAML writes it, without needing PyYAML)."""
    pad = " " * indent
    lines: list[str] = []
    for key in sorted(value, key=str):
        item = value[key]
        if isinstance(item, Mapping) and item:
            lines.append(f"{pad}{_yaml_scalar(key)}:")
            lines.extend(_yaml_lines(item, indent + 2))
        elif isinstance(item, list | tuple) and item:
            lines.append(f"{pad}{_yaml_scalar(key)}:")
            lines.extend(f"{pad}- {_yaml_scalar(v)}" for v in item)
        else:
            lines.append(f"{pad}{_yaml_scalar(key)}: {_yaml_scalar(item)}")
    return lines


def _yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, list | tuple):
        return "[]"
    text = str(value)
    if _PLAIN_YAML.fullmatch(text) and not text.endswith(" ") and text.lower() not in _YAML_WORDS:
        return text
    return "'" + text.replace("'", "''") + "'"
