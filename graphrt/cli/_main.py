"""The `graphrt` command line: argument parsing and dispatch (`graphrt --help`)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

from graphrt.cli._backends import CliError
from graphrt.cli._output import Printer

__all__ = ("build_parser", "main", "main_exit")

Command = Callable[[argparse.Namespace, Printer], None]

_DB_HELP = "a SQLite file, a postgresql:// DSN or a redis:// URL"


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of tables")
    parser.add_argument(
        "--color", choices=("auto", "always", "never"), default="auto", help="colours (default: only on a terminal)"
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log graphrt events to stderr (-vv: debug)")


def _add(sub: Any, name: str, handler: Command, help: str, *, db: bool = True) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help)
    if db:
        parser.add_argument("db", metavar="DB", help=_DB_HELP)
    _common(parser)
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand."""
    from graphrt.cli import _draw, _inspect, _store, _write
    from graphrt.cli import _import as _imp

    parser = argparse.ArgumentParser(
        prog="graphrt", description="Inspect and maintain graphrt threads, checkpoints and stores."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_inspect(sub, _inspect)
    _add_store(sub, _store)
    _add_write(sub, _write, _draw)
    _add_import(sub, _imp)
    return parser


def _add_inspect(sub: Any, _inspect: Any) -> None:
    p = _add(sub, "threads", _inspect.cmd_threads, "list threads, newest first")
    p.add_argument("--filter", action="append", metavar="KEY=VALUE", help="only threads whose metadata matches")
    p.add_argument("--limit", type=int, default=None, help="at most this many threads")

    p = _add(sub, "history", _inspect.cmd_history, "walk a thread's checkpoints, newest first")
    p.add_argument("thread", metavar="THREAD")
    p.add_argument("--ns", default=None, help="only this checkpoint namespace ('' is the root graph)")
    p.add_argument("--limit", type=int, default=None, help="at most this many checkpoints")

    p = _add(sub, "show", _inspect.cmd_show, "print a checkpoint's values (default: the newest)")
    p.add_argument("thread", metavar="THREAD")
    p.add_argument("checkpoint", metavar="CHECKPOINT", nargs="?", help="a checkpoint id or a unique prefix of one")
    p.add_argument("--ns", default="", help="checkpoint namespace (default: the root graph)")
    p.add_argument("--all", action="store_true", help="include the runtime's own channels")

    p = _add(sub, "diff", _inspect.cmd_diff, "what changed between two checkpoints, channel by channel")
    p.add_argument("thread", metavar="THREAD")
    p.add_argument("a", metavar="A", help="the older checkpoint (id or unique prefix)")
    p.add_argument("b", metavar="B", help="the newer checkpoint (id or unique prefix)")
    p.add_argument("--ns", default="", help="checkpoint namespace (default: the root graph)")
    p.add_argument("--all", action="store_true", help="include the runtime's own channels")


def _add_store(sub: Any, _store: Any) -> None:
    store = sub.add_parser("store", help="browse the long-term memory store", description="Browse the store.")
    store_sub = store.add_subparsers(dest="store_command", metavar="STORE-COMMAND", required=True)
    p = _add(store_sub, "ls", _store.cmd_store_ls, "list namespaces (under a prefix)")
    p.add_argument("prefix", metavar="NAMESPACE-PREFIX", nargs="?", help="labels separated by '/', e.g. users/u1")
    p.add_argument("--limit", type=int, default=100)
    p = _add(store_sub, "get", _store.cmd_store_get, "print one item")
    p.add_argument("namespace", metavar="NAMESPACE", help="labels separated by '/', e.g. users/u1")
    p.add_argument("key", metavar="KEY")
    p = _add(store_sub, "search", _store.cmd_store_search, "search items under a namespace prefix")
    p.add_argument("namespace", metavar="NAMESPACE", help="labels separated by '/' ('' for all)")
    p.add_argument("--query", default=None, help="rank by similarity to this text (needs --embed)")
    p.add_argument("--embed", default=None, help="embeddings for --query, e.g. 'static' or 'hashing'")
    p.add_argument("--dims", type=int, default=None, help="the embeddings' width, if --embed cannot tell")
    p.add_argument("--filter", default=None, help='a JSON filter on the values, e.g. \'{"kind": "note"}\'')
    p.add_argument("--limit", type=int, default=10)
    p.add_argument("--offset", type=int, default=0)


def _add_write(sub: Any, _write: Any, _draw: Any) -> None:
    p = _add(sub, "prune", _write.cmd_prune, "keep only the newest checkpoint of threads (asks first)")
    p.add_argument("--thread", action="append", metavar="T", help="only this thread (repeatable; default: all)")
    p.add_argument("--keep-latest", action="store_true", required=True, help="keep each namespace's newest checkpoint")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")

    p = _add(sub, "delete-thread", _write.cmd_delete_thread, "delete a thread and all its checkpoints (asks first)")
    p.add_argument("thread", metavar="THREAD")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")

    p = _add(sub, "draw", _draw.cmd_draw, "draw a compiled graph", db=False)
    p.add_argument("graph", metavar="MODULE:ATTR", help="e.g. myapp.agent:graph")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--mermaid", dest="format", action="store_const", const="mermaid", help="Mermaid text")
    fmt.add_argument("--ascii", dest="format", action="store_const", const="ascii", help="ASCII art (default)")
    p.set_defaults(format="ascii")
    p.add_argument("--xray", action="store_true", help="draw subgraphs too")


def _add_import(sub: Any, _imp: Any) -> None:
    p = _add(
        sub, "import-langgraph", _imp.cmd_import, "copy threads and store items from a LangGraph database", db=False
    )
    p.add_argument("src", metavar="SRC", help="a LangGraph SQLite file or postgresql:// DSN")
    p.add_argument("dst", metavar="DST", help="the graphrt database to write (" + _DB_HELP + ")")
    p.add_argument("--thread", action="append", metavar="T", help="only this thread (repeatable; default: all)")
    p.add_argument("--no-store", action="store_true", help="do not copy store items")
    p.add_argument("--skip-existing", action="store_true", help="leave threads that DST already has alone")
    p.add_argument(
        "--allow-module",
        action="append",
        metavar="PREFIX",
        default=[],
        help="rebuild your own classes from modules under PREFIX (imports them); repeatable",
    )
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the time (tests swap it)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _configure_logging(verbose: int) -> None:
    """`-v` shows graphrt's INFO events on stderr, `-vv` its DEBUG ones too."""
    logger = logging.getLogger("graphrt")
    for handler in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    if verbose <= 0:
        return
    logger.addHandler(_StderrHandler())
    logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 error, 2 bad usage)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    printer = Printer(json_output=args.json, colour=args.color)
    try:
        args.handler(args, printer)
    except CliError as exc:
        err = Printer(json_output=False, colour=args.color, out=sys.stderr)
        sys.stderr.write(f"{err.style('graphrt: error:', 'red', 'bold')} {exc}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write("graphrt: interrupted\n")
        return 130
    except BrokenPipeError:
        return 0
    return 0


def main_exit() -> None:
    """The console script: `main()` with its status as the process's exit code."""
    raise SystemExit(main())
