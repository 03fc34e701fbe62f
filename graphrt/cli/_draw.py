"""`graphrt draw MODULE:ATTR`: print a graph as Mermaid or ASCII with the graph's own drawing code."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

from graphrt.cli._backends import CliError
from graphrt.cli._output import Printer

__all__ = ("cmd_draw", "load_graph")


def load_graph(spec: str) -> Any:
    """The object `MODULE:ATTR` names (the current directory is importable); a builder is compiled."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise CliError(f"Bad graph {spec!r}: use MODULE:ATTR, e.g. myapp.agent:graph")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise CliError(f"Cannot import module '{module_name}': no such module") from None
        raise
    value: Any = module
    for part in attr.split("."):
        if not hasattr(value, part):
            raise CliError(f"Module '{module_name}' has no attribute '{attr}'")
        value = getattr(value, part)
    if hasattr(value, "compile") and not hasattr(value, "get_graph"):
        value = value.compile()
    if not hasattr(value, "get_graph"):
        raise CliError(f"'{spec}' is a {type(value).__name__}, not a graph (no get_graph())")
    return value


def cmd_draw(args: argparse.Namespace, printer: Printer) -> None:
    graph = load_graph(args.graph).get_graph(xray=args.xray)
    text = graph.draw_mermaid() if args.format == "mermaid" else graph.draw_ascii()
    if printer.json_output:
        printer.json({"graph": args.graph, "format": args.format, "text": text})
        return
    printer.out.write(text if text.endswith("\n") else text + "\n")
