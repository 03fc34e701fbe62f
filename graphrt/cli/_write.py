"""Commands that change a database: `prune` and `delete-thread`, each confirmed unless `--yes`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import IO, Any

from graphrt.checkpoint.base import BaseCheckpointSaver
from graphrt.cli._backends import CliError, open_saver, redact
from graphrt.cli._output import Printer

__all__ = ("Progress", "cmd_delete_thread", "cmd_prune", "confirm")


def confirm(question: str, *, yes: bool, stdin: IO[str] | None = None, stderr: IO[str] | None = None) -> None:
    """Ask `question` on stderr and read y/yes from stdin; anything else (or no input) aborts.

    Raises:
        CliError: The answer was not yes; nothing was changed.
    """
    if yes:
        return
    stdin, stderr = stdin or sys.stdin, stderr or sys.stderr
    stderr.write(f"{question} [y/N] ")
    stderr.flush()
    answer = stdin.readline()
    if answer.strip().lower() not in ("y", "yes"):
        if not answer:
            stderr.write("\n")
        raise CliError("Aborted; nothing was changed (pass --yes to skip this question).")


class Progress:
    """ "[i/n] thread" lines on stderr: rewritten in place on a terminal, one line each otherwise."""

    def __init__(self, total: int, verb: str, *, stream: IO[str] | None = None, quiet: bool = False) -> None:
        self.total, self.verb, self.done = total, verb, 0
        self.stream = stream or sys.stderr
        self.quiet = quiet or total < 2
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def step(self, name: str) -> None:
        self.done += 1
        if self.quiet:
            return
        text = f"[{self.done}/{self.total}] {self.verb} {name}"
        if self.tty:
            self.stream.write("\r\x1b[K" + text + ("\n" if self.done == self.total else ""))
        else:
            self.stream.write(text + "\n")
        self.stream.flush()


def _existing(saver: BaseCheckpointSaver[Any], db: str, threads: Sequence[str]) -> list[str]:
    missing = [t for t in threads if not list(saver.list({"configurable": {"thread_id": t}}, limit=1))]
    if missing:
        raise CliError(f"No thread {', '.join(repr(t) for t in missing)} in {redact(db)}; nothing was changed.")
    return list(threads)


def cmd_prune(args: argparse.Namespace, printer: Printer) -> None:
    with open_saver(args.db) as saver:
        threads = _existing(saver, args.db, args.thread) if args.thread else [t.thread_id for t in saver.list_threads()]
        before = {t.thread_id: t.checkpoints for t in saver.list_threads() if t.thread_id in set(threads)}
        if threads:
            confirm(
                f"Prune {len(threads)} thread(s) of {redact(args.db)}, keeping only the newest checkpoint of each?",
                yes=args.yes,
            )
        progress = Progress(len(threads), "pruned", quiet=args.quiet)
        for thread_id in threads:
            saver.prune([thread_id], strategy="keep_latest")
            progress.step(thread_id)
        after = {t.thread_id: t.checkpoints for t in saver.list_threads() if t.thread_id in before}
    removed = {t: before[t] - after.get(t, 0) for t in threads}
    if printer.json_output:
        printer.json({"pruned": threads, "checkpoints_removed": removed})
        return
    total = sum(removed.values())
    printer.line(f"Pruned {len(threads)} thread(s): {total} checkpoint(s) removed.")


def cmd_delete_thread(args: argparse.Namespace, printer: Printer) -> None:
    with open_saver(args.db) as saver:
        _existing(saver, args.db, [args.thread])
        confirm(f"Delete thread '{args.thread}' and all its checkpoints from {redact(args.db)}?", yes=args.yes)
        saver.delete_thread(args.thread)
    if printer.json_output:
        printer.json({"deleted": args.thread})
        return
    printer.line(f"Deleted thread '{args.thread}'.")
