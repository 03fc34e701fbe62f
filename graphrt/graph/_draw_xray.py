"""Subgraphs drawn expanded (`get_graph(xray=...)`): splicing a child's drawing into its parent's, and the nested
`subgraph NAME ... end` blocks of the Mermaid text.

A spliced child's nodes get ids `node:child_node` (one `:` per level); the parent's edges into and out of the
node are moved to the child's first and last nodes. The child's `__start__` and `__end__` are dropped when the
child still has a single first (last) node without them and only one edge leaves (enters) them; otherwise they
stay, as `node:__start__` / `node:__end__`, the way LangGraph draws them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graphrt.graph._draw import DrawableGraph, Edge, Node

__all__ = ("graph_named_by", "nested_mermaid_lines", "splice")


def graph_named_by(action: Any, kind: type) -> Any | None:
    """The first `kind` (a compiled graph) that node function `action` names through a closure variable or a
    module global: the graph it calls, drawn expanded as LangGraph does. None for anything else."""
    func = getattr(action, "__func__", action)
    if not inspect.isfunction(func):
        return None
    try:
        named = inspect.getclosurevars(func)
    except (TypeError, ValueError):  # a function without inspectable code names nothing
        return None
    for value in (*named.nonlocals.values(), *named.globals.values()):
        if isinstance(value, kind):
            return value
    return None


def splice(graph: DrawableGraph, name: str, child: DrawableGraph) -> None:
    """Replace node `name` of `graph` with the nodes and edges of `child` (a no-op when it cannot be drawn so)."""
    if name not in graph.nodes or len(child.nodes) <= 1:
        return
    nodes = dict(child.nodes)
    edges = list(child.edges)
    if _sole_end(nodes, edges, first=True) is None or _sole_end(nodes, edges, first=False) is None:
        return
    _trim(nodes, edges, first=True)
    _trim(nodes, edges, first=False)
    head = f"{name}:{_sole_end(nodes, edges, first=True)}"
    tail = f"{name}:{_sole_end(nodes, edges, first=False)}"
    del graph.nodes[name]
    for key, node in nodes.items():
        graph.nodes[f"{name}:{key}"] = node._replace(id=f"{name}:{key}")
    moved = [
        edge._replace(
            source=tail if edge.source == name else edge.source, target=head if edge.target == name else edge.target
        )
        for edge in graph.edges
    ]
    inner = [edge._replace(source=f"{name}:{edge.source}", target=f"{name}:{edge.target}") for edge in edges]
    graph.edges = moved + inner


def _sole_end(nodes: Mapping[str, Node], edges: list[Edge], *, first: bool, without: str = "") -> str | None:
    """The only node no edge enters (`first`) or leaves, ignoring node `without` and its edges; else None."""
    if first:
        linked = {e.target for e in edges if e.source != without}
    else:
        linked = {e.source for e in edges if e.target != without}
    found = [key for key in nodes if key != without and key not in linked]
    return found[0] if len(found) == 1 else None


def _trim(nodes: dict[str, Node], edges: list[Edge], *, first: bool) -> None:
    """Drop the first (last) node when one edge touches it and the rest still has a single first (last) node."""
    end = _sole_end(nodes, edges, first=first)
    if end is None:
        return
    touching = [e for e in edges if (e.source if first else e.target) == end]
    if len(touching) == 1 and _sole_end(nodes, edges, first=first, without=end) is not None:
        del nodes[end]
        edges[:] = [e for e in edges if end not in (e.source, e.target)]


def nested_mermaid_lines(
    nodes: Mapping[str, Node],
    edges: list[Edge],
    node_line: Callable[[Node], str],
    edge_line: Callable[[Edge], str],
    *,
    with_styles: bool,
) -> list[str]:
    """The node and edge lines of a Mermaid flowchart, the ones inside subgraphs in nested `subgraph` blocks.

    A node `a:b:c` is declared in block `b` inside block `a`; an edge sits in the block of the id parts its
    two ends share (LangGraph's grouping, kept as is so the text matches LangGraph's).
    """
    members: dict[str, list[Node]] = {}
    for key, node in nodes.items():
        if ":" in key:
            members.setdefault(key.rsplit(":", 1)[0], []).append(node)
    groups: dict[str, list[Edge]] = {}
    for edge in edges:
        shared = [a for a, b in zip(edge.source.split(":"), edge.target.split(":"), strict=False) if a == b]
        groups.setdefault(":".join(shared), []).append(edge)
    lines = [node_line(n) for k, n in nodes.items() if ":" not in k] if with_styles else []
    seen: set[str] = set()

    def block(prefix: str, group: list[Edge]) -> None:
        boxed = bool(prefix) and not (len(group) == 1 and group[0].source == group[0].target)
        if boxed:
            label = prefix.rsplit(":", 1)[-1]
            if label in seen:
                raise ValueError(
                    f"Two subgraph nodes are both named {label!r}, so their drawings would merge into one block: "
                    "give the nodes that hold subgraphs distinct names."
                )
            seen.add(label)
            lines.append(f"\tsubgraph {label}")
            if with_styles:
                lines.extend(node_line(n) for n in members.get(prefix, ()))
        lines.extend(edge_line(e) for e in group)
        for deeper, inner in groups.items():
            if deeper.startswith(prefix + ":") and ":" not in deeper[len(prefix) + 1 :]:
                block(deeper, inner)
        if boxed:
            lines.append("\tend")

    block("", groups.get("", []))
    for prefix, group in groups.items():
        if prefix and ":" not in prefix:
            block(prefix, group)
            seen.add(prefix)
    if with_styles:
        # A subgraph left with one node and no edge of its own still gets its block.
        for prefix, group_nodes in members.items():
            if ":" not in prefix and prefix not in seen:
                lines += [f"\tsubgraph {prefix}", *(node_line(n) for n in group_nodes), "\tend"]
                seen.add(prefix)
    return lines
