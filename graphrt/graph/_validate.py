"""Compile-time validation of a StateGraph: every problem found, reported at once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from graphrt.constants import END, START

if TYPE_CHECKING:
    from graphrt.graph.state import StateGraph


def validate_graph(graph: StateGraph[Any], interrupt: Sequence[str] = ()) -> None:
    """Raise one ValueError listing every problem (each with LangGraph's message stem)."""
    problems: list[str] = []
    nodes = graph.nodes
    sources = {s for s, _ in graph.edges} | {s for starts, _ in graph.waiting_edges for s in starts}
    sources |= set(graph.branches)
    if START not in sources:
        problems.append("Graph must have an entrypoint: add at least one edge from START to another node")
    for source in sorted(sources):
        if source != START and source not in nodes:
            problems.append(f"Found edge starting at unknown node '{source}'")
    targets = {e for _, e in graph.edges} | {e for _, e in graph.waiting_edges}
    for target in sorted(targets):
        if target != END and target not in nodes:
            problems.append(f"Found edge ending at unknown node `{target}`")
    for source, branches in graph.branches.items():
        for name, branch in branches.items():
            for end in (branch.ends or {}).values():
                if end != END and end not in nodes:
                    problems.append(f"At '{source}' node, '{name}' branch found unknown target '{end}'")
    for spec in nodes.values():
        # A destinations dict maps target node -> edge label, as in LangGraph.
        dests = spec.destinations.keys() if isinstance(spec.destinations, dict) else (spec.destinations or ())
        for dest in dests:
            if dest != END and dest not in nodes:
                problems.append(f"Found edge ending at unknown node `{dest}`")
    for node in interrupt:
        if node not in nodes:
            problems.append(f"Interrupt node `{node}` not found")
    if problems:
        raise ValueError("\n".join(problems))
