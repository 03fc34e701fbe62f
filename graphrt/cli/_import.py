"""`graphrt import-langgraph SRC DST`: copy threads and store items from a LangGraph database.

Everything is decoded (and checked against graphrt's serializer) before anything is written: a value
whose type cannot be carried over stops the import with the type's name and where it was found.
Checkpoint ids, parents, metadata, channel versions and pending writes are kept (each write under the
id graphrt gives its task), so a thread continues on graphrt where it stopped on LangGraph, including a
pending `interrupt()` and the saved writes of tasks that finished in an unfinished step.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from graphrt._context import interrupt_id
from graphrt.checkpoint.base import BaseCheckpointSaver, Checkpoint, CheckpointMetadata
from graphrt.checkpoint.base._types import TASKS
from graphrt.checkpoint.serde.base import SerializationError
from graphrt.checkpoint.serde.jsonplus import JsonPlusSerializer
from graphrt.cli._backends import CliError, backend_for, open_saver, open_store, redact, sqlite_path
from graphrt.cli._lgsource import CheckpointRow, LangGraphSource, StoreRow, WriteRow, open_source, select_threads
from graphrt.cli._lgtypes import Converter, UnknownValue
from graphrt.cli._output import Printer
from graphrt.cli._write import Progress, confirm
from graphrt.config import RunnableConfig
from graphrt.pregel._algo import make_task_id
from graphrt.pregel._spec import PULL, PUSH
from graphrt.types import Interrupt, Send

__all__ = ("cmd_import",)


@dataclass(slots=True)
class _Tally:
    """Checkpoints and pending writes per thread."""

    counts: dict[str, list[int]] = field(default_factory=dict)

    def total(self, threads: list[str]) -> tuple[int, int]:
        return sum(self.counts[t][0] for t in threads), sum(self.counts[t][1] for t in threads)


def _metadata(row: CheckpointRow) -> CheckpointMetadata:
    raw = row.metadata
    if raw is None:
        return cast(CheckpointMetadata, {})
    if isinstance(raw, dict):
        return cast(CheckpointMetadata, raw)
    try:
        return cast(CheckpointMetadata, json.loads(raw))
    except ValueError:
        raise CliError(f"Checkpoint {row.checkpoint_id}: its metadata is not JSON") from None


def _checkpoint(conv: Converter, row: CheckpointRow) -> Checkpoint:
    data = conv.loads_typed(row.type, row.checkpoint)
    if not isinstance(data, dict) or "channel_versions" not in data:
        raise CliError(f"Checkpoint {row.checkpoint_id}: not a LangGraph checkpoint")
    values = dict(data.get("channel_values") or {})
    for channel, (type_, blob) in (row.blobs or {}).items():
        values[channel] = conv.loads_typed(type_, blob)
    data["channel_values"] = values
    data.setdefault("versions_seen", {})
    data.setdefault("updated_channels", None)
    return cast(Checkpoint, data)


def _check_value(conv: Converter, saver_serde: Any, value: Any) -> None:
    """Record an `UnknownValue` inside `value`, or a value graphrt's serializer refuses."""
    if _has_unknown(value):
        return  # already recorded when decoded
    try:
        saver_serde.dumps_typed(value)
    except SerializationError as exc:
        conv.unknown.setdefault(f"{exc.type_name} (graphrt cannot save it)", []).append(conv.location)


def _has_unknown(value: Any) -> bool:
    if isinstance(value, UnknownValue):
        return True
    if isinstance(value, dict):
        return any(_has_unknown(v) for v in value.values())
    if isinstance(value, list | tuple | set | frozenset):
        return any(_has_unknown(v) for v in value)
    return False


def _task_writes(
    conv: Converter, thread_id: str, rows: list[WriteRow]
) -> Iterator[tuple[WriteRow, list[tuple[str, Any]]]]:
    """A thread's writes grouped by checkpoint and task, in their saved order."""
    groups: dict[tuple[str, str, str, str], list[WriteRow]] = {}
    for row in rows:
        groups.setdefault((row.checkpoint_ns, row.checkpoint_id, row.task_id, row.task_path), []).append(row)
    for group in groups.values():
        group.sort(key=lambda r: r.idx)
        writes = []
        for r in group:
            conv.location = f"thread '{thread_id}', write of task {r.task_id} to '{r.channel}'"
            writes.append((r.channel, conv.loads_typed(r.type, r.value)))
        yield group[0], writes


def graphrt_task_id(row: WriteRow, checkpoint: Checkpoint, metadata: CheckpointMetadata) -> str:
    """The id graphrt gives the task that made `row`, so its saved writes count as done when resumed.

    LangGraph and graphrt derive task ids differently from the same facts: the checkpoint, the step,
    the node and the task's path (LangGraph's `task_path`, e.g. "~__pregel_pull, ask"). A path that
    cannot be read keeps LangGraph's id (the task then runs again on resume).
    """
    parts = [p.strip() for p in row.task_path.lstrip("~").split(",")]
    step = metadata.get("step")
    if len(parts) < 2 or not isinstance(step, int):
        return row.task_id
    kind = parts[0]
    if kind == PULL:
        name, key = parts[1], parts[1]
        return make_task_id(row.checkpoint_id, row.checkpoint_ns, step + 1, name, kind, key)
    if kind == PUSH and parts[1].isdigit():
        sends = checkpoint["channel_values"].get(TASKS) or []
        index = int(parts[1])
        if index >= len(sends) or not isinstance(sends[index], Send):
            return row.task_id
        return make_task_id(row.checkpoint_id, row.checkpoint_ns, step + 1, sends[index].node, kind, index)
    return row.task_id


def _scan(source: LangGraphSource, threads: list[str], conv: Converter, serde: Any) -> _Tally:
    """Decode every selected checkpoint and write; unknown types end up in `conv.unknown`."""
    tally = _Tally()
    for thread_id in threads:
        counts = tally.counts[thread_id] = [0, 0]
        for row in source.checkpoints(thread_id):
            conv.location = f"thread '{thread_id}', checkpoint {row.checkpoint_id}"
            checkpoint = _checkpoint(conv, row)
            for channel, value in checkpoint["channel_values"].items():
                conv.location = f"thread '{thread_id}', checkpoint {row.checkpoint_id}, channel '{channel}'"
                _check_value(conv, serde, value)
            _metadata(row)
            counts[0] += 1
        for first, writes in _task_writes(conv, thread_id, list(source.writes(thread_id))):
            for channel, value in writes:
                conv.location = f"thread '{thread_id}', write of task {first.task_id} to '{channel}'"
                _check_value(conv, serde, value)
                counts[1] += 1
    return tally


def _copy_thread(source: LangGraphSource, saver: BaseCheckpointSaver[Any], thread_id: str, conv: Converter) -> None:
    """Put a thread's checkpoints oldest first (each on its parent) and then their pending writes."""
    versions: dict[tuple[str, str], dict[str, Any]] = {}
    saved: dict[tuple[str, str], tuple[Checkpoint, CheckpointMetadata]] = {}
    for row in source.checkpoints(thread_id):
        checkpoint = _checkpoint(conv, row)
        saved[(row.checkpoint_ns, row.checkpoint_id)] = (checkpoint, _metadata(row))
        configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": row.checkpoint_ns}
        if row.parent_id:
            configurable["checkpoint_id"] = row.parent_id
        before = versions.get((row.checkpoint_ns, row.parent_id or ""), {})
        changed = {k: v for k, v in checkpoint["channel_versions"].items() if before.get(k) != v}
        saver.put(cast(RunnableConfig, {"configurable": configurable}), checkpoint, _metadata(row), changed)
        versions[(row.checkpoint_ns, row.checkpoint_id)] = dict(checkpoint["channel_versions"])
    for first, writes in _task_writes(conv, thread_id, list(source.writes(thread_id))):
        config: RunnableConfig = {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": first.checkpoint_ns,
                "checkpoint_id": first.checkpoint_id,
            }
        }
        found = saved.get((first.checkpoint_ns, first.checkpoint_id))
        task_id = graphrt_task_id(first, *found) if found else first.task_id
        name = _task_name(first, found[0]) if found else None
        if name is not None:
            ns = f"{first.checkpoint_ns}|{name}:{task_id}" if first.checkpoint_ns else f"{name}:{task_id}"
            writes = _graphrt_interrupts(writes, ns)
        saver.put_writes(config, writes, task_id, first.task_path)


def _task_name(row: WriteRow, checkpoint: Checkpoint) -> str | None:
    """The node that ran the task of `row` (from LangGraph's task path), when it can be read."""
    parts = [p.strip() for p in row.task_path.lstrip("~").split(",")]
    if len(parts) >= 2 and parts[0] == PULL:
        return parts[1]
    if len(parts) >= 2 and parts[0] == PUSH and parts[1].isdigit():
        sends = checkpoint["channel_values"].get(TASKS) or []
        index = int(parts[1])
        if index < len(sends) and isinstance(sends[index], Send):
            return str(sends[index].node)
    return None


def _graphrt_interrupts(writes: list[tuple[str, Any]], ns: str) -> list[tuple[str, Any]]:
    """A task's interrupts and answers under graphrt's interrupt ids (LangGraph hashes them differently).

    LangGraph saves a task's answers as a list in call order and its pending interrupt after them; graphrt
    keys both by `interrupt_id(task namespace, call index)`.
    """
    answers = next((v for c, v in writes if c == "__resume__" and isinstance(v, list | tuple)), [])
    out: list[tuple[str, Any]] = []
    for channel, value in writes:
        if channel == "__resume__" and isinstance(value, list | tuple):
            value = {interrupt_id(ns, i): answer for i, answer in enumerate(value)}
        elif channel == "__interrupt__" and isinstance(value, list | tuple):
            value = [
                Interrupt(i.value, interrupt_id(ns, len(answers) + k)) if isinstance(i, Interrupt) else i
                for k, i in enumerate(value)
            ]
        out.append((channel, value))
    return out


def _unknown_report(conv: Converter) -> str:
    lines = ["Cannot import: values of these types cannot be carried over (nothing was written):"]
    for name, places in sorted(conv.unknown.items()):
        lines.append(f"  {name}: first in {places[0]}" if places else f"  {name}")
    lines.append(
        "Types of your own modules can be rebuilt with --allow-module PREFIX (it imports them); "
        "register them with graphrt.checkpoint.serde.jsonplus.register_type() if graphrt cannot save them."
    )
    return "\n".join(lines)


def cmd_import(args: argparse.Namespace, printer: Printer) -> None:
    if args.src == args.dst:
        raise CliError("SRC and DST are the same database; write the graphrt copy to another file")
    source = open_source(args.src)
    new_file = _new_sqlite_file(args.dst)
    try:
        _import(args, printer, source)
    except CliError:
        if new_file is not None:  # refused or aborted before anything was copied: leave no empty database
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(new_file + suffix).unlink(missing_ok=True)
        raise
    finally:
        source.close()


def _new_sqlite_file(target: str) -> str | None:
    """The path of a SQLite DST that does not exist yet (the import would create it), else None."""
    if backend_for(target).name != "SQLite":
        return None
    path = sqlite_path(target)
    return None if Path(path).exists() else path


def _import(args: argparse.Namespace, printer: Printer, source: LangGraphSource) -> None:
    threads = select_threads(source, args.thread)
    conv = Converter(args.allow_module)
    items = [] if args.no_store else list(source.store_items())
    tally = _scan(source, threads, conv, JsonPlusSerializer())
    if conv.unknown:
        raise CliError(_unknown_report(conv))
    with open_saver(args.dst, create=True) as saver:
        existing = [t for t in threads if list(saver.list({"configurable": {"thread_id": t}}, limit=1))]
        if existing and not args.skip_existing:
            raise CliError(
                f"{redact(args.dst)} already has thread(s) {', '.join(repr(t) for t in existing)}; "
                "pass --skip-existing to leave them alone (nothing was written)"
            )
        todo = [t for t in threads if t not in set(existing)]
        checkpoints, writes = tally.total(todo)
        items = _new_items(args, items)
        confirm(
            f"Copy {len(todo)} thread(s) ({checkpoints} checkpoints) and {len(items)} store item(s) "
            f"from {redact(args.src)} into {redact(args.dst)}?",
            yes=args.yes,
        )
        progress = Progress(len(todo), "imported", quiet=args.quiet)
        for thread_id in todo:
            _copy_thread(source, saver, thread_id, conv)
            progress.step(thread_id)
    copied = _copy_items(args, items)
    summary = {
        "threads": todo,
        "skipped_threads": existing,
        "checkpoints": checkpoints,
        "writes": writes,
        "store_items": copied,
    }
    if printer.json_output:
        printer.json(summary)
        return
    skipped = f", skipped {len(existing)} already there" if existing else ""
    printer.line(
        f"Imported {len(todo)} thread(s){skipped}, {checkpoints} checkpoints, {writes} pending writes "
        f"and {copied} store item(s)."
    )


def _new_items(args: argparse.Namespace, items: list[StoreRow]) -> list[StoreRow]:
    """The items DST does not have yet; an item it has is an error unless `--skip-existing`."""
    if not items:
        return items
    with open_store(args.dst, create=True) as store:
        clashes = [i for i in items if store.get(i.namespace, i.key) is not None]
    if clashes and not args.skip_existing:
        names = ", ".join(f"{'/'.join(i.namespace)}:{i.key}" for i in clashes[:5])
        raise CliError(
            f"{redact(args.dst)} already has store item(s) {names}; pass --skip-existing to leave them alone "
            "(nothing was written)"
        )
    return [i for i in items if i not in clashes]


def _copy_items(args: argparse.Namespace, items: list[StoreRow]) -> int:
    if not items:
        return 0
    with open_store(args.dst, create=True) as store:
        for item in items:
            store.put(item.namespace, item.key, item.value, index=False, ttl=item.ttl_minutes)
    return len(items)
