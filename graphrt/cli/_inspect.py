"""Read-only checkpoint commands: `threads`, `history`, `show`, `diff`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable, Mapping
from typing import Any

from graphrt.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from graphrt.cli._backends import CliError, open_saver, redact
from graphrt.cli._output import Printer, human_size, to_jsonable
from graphrt.messages import BaseMessage
from graphrt.types import Interrupt

__all__ = ("cmd_diff", "cmd_history", "cmd_show", "cmd_threads", "is_internal", "parse_filter")

_INTERNAL_PREFIXES = ("branch:", "join:", "__")


def is_internal(channel: str) -> bool:
    """Channels the runtime keeps for itself (edges, joins, start, sends), hidden unless `--all`."""
    return channel.startswith(_INTERNAL_PREFIXES)


def parse_filter(items: Iterable[str] | None) -> dict[str, Any] | None:
    """`KEY=VALUE` pairs (VALUE read as JSON when it parses, else as text) into a metadata filter."""
    result: dict[str, Any] = {}
    for item in items or ():
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CliError(f"Bad --filter {item!r}: use KEY=VALUE, e.g. --filter user_id=u1")
        try:
            result[key] = json.loads(raw)
        except ValueError:
            result[key] = raw
    return result or None


def _thread_checkpoints(
    saver: BaseCheckpointSaver[Any], db: str, thread_id: str, ns: str | None, limit: int | None = None
) -> list[CheckpointTuple]:
    config: dict[str, Any] = {"configurable": {"thread_id": thread_id}}
    if ns is not None:
        config["configurable"]["checkpoint_ns"] = ns
    found = list(saver.list(config, limit=limit))  # type: ignore[arg-type]
    if not found:
        where = f" (namespace {ns!r})" if ns else ""
        raise CliError(f"No thread '{thread_id}'{where} in {redact(db)}")
    return found


def cmd_threads(args: argparse.Namespace, printer: Printer) -> None:
    with open_saver(args.db) as saver:
        threads = list(saver.list_threads(filter=parse_filter(args.filter), limit=args.limit))
    if printer.json_output:
        printer.json([t.as_dict() for t in threads])
        return
    if not threads:
        printer.line("No threads.")
        return
    rows = [
        [
            t.thread_id,
            str(t.checkpoints),
            "-" if t.last_step is None else str(t.last_step),
            t.updated_at or "-",
            human_size(t.size),
        ]
        for t in threads
    ]
    printer.table(["THREAD", "CHECKPOINTS", "LAST STEP", "LAST UPDATE", "SIZE"], rows)


def next_nodes(item: CheckpointTuple) -> list[str]:
    """The nodes a checkpoint triggers, read from its channels (what `StateSnapshot.next` holds).

    A node runs when its `branch:to:<node>` channel (or a complete `join:<a+b>:<node>` barrier) has a
    version it has not seen yet, or when a `Send` to it is pending.
    """
    checkpoint = item.checkpoint
    values, versions, seen = checkpoint["channel_values"], checkpoint["channel_versions"], checkpoint["versions_seen"]
    found: list[str] = []
    for channel, version in versions.items():
        if channel.startswith("branch:to:"):
            node = channel[len("branch:to:") :]
        elif channel.startswith("join:") and channel.count(":") >= 2:
            _, sources, node = channel.split(":", 2)
            if set(values.get(channel) or ()) != set(sources.split("+")):
                continue
        elif channel == "__start__":
            node = "__start__"
        else:
            continue
        if channel in values and _newer(version, seen.get(node, {}).get(channel)):
            found.append(node)
    for send in values.get("__pregel_tasks") or ():
        if getattr(send, "node", None):
            found.append(send.node)
    return sorted(found)


def _newer(version: Any, seen: Any) -> bool:
    if seen is None:
        return True
    if isinstance(version, int | float) and isinstance(seen, int | float):
        return version > seen
    return str(version) > str(seen)


def _interrupts(item: CheckpointTuple) -> list[Any]:
    """The interrupts still waiting for an answer: those of tasks that have no resume value or writes yet."""
    writes = item.pending_writes or ()
    answered = {task_id for task_id, channel, _ in writes if channel == "__resume__" or not channel.startswith("__")}
    out: list[Any] = []
    for task_id, channel, value in writes:
        if channel == "__interrupt__" and task_id not in answered:
            out.extend(_shown(i) for i in (value if isinstance(value, list | tuple) else [value]))
    return out


def _shown(interrupt: Any) -> Any:
    """An interrupt as JSON data: its value and id, and its `response_schema` when it has one."""
    if not isinstance(interrupt, Interrupt):
        return interrupt
    shown = {"value": interrupt.value, "id": interrupt.id}
    if interrupt.response_schema is not None:
        shown["response_schema"] = interrupt.response_schema
    return shown


def _writes(item: CheckpointTuple) -> list[str]:
    channels: dict[str, None] = {}
    for _, channel, _ in item.pending_writes or ():
        if not is_internal(channel):
            channels[channel] = None
    return list(channels)


def _entry(item: CheckpointTuple) -> dict[str, Any]:
    conf = item.config["configurable"]
    parent = item.parent_config["configurable"]["checkpoint_id"] if item.parent_config else None
    return {
        "checkpoint_id": conf["checkpoint_id"],
        "parent_id": parent,
        "namespace": conf.get("checkpoint_ns", ""),
        "step": item.metadata.get("step"),
        "source": item.metadata.get("source"),
        "created_at": item.checkpoint.get("ts"),
        "next": next_nodes(item),
        "writes": _writes(item),
        "interrupts": to_jsonable(_interrupts(item)),
    }


def cmd_history(args: argparse.Namespace, printer: Printer) -> None:
    with open_saver(args.db) as saver:
        items = _thread_checkpoints(saver, args.db, args.thread, args.ns, args.limit)
    entries = [_entry(item) for item in items]
    if printer.json_output:
        printer.json(entries)
        return
    rows = [
        [
            e["checkpoint_id"],
            str(e["step"]),
            str(e["source"]),
            e["created_at"] or "-",
            ", ".join(e["next"]) or "-",
            ", ".join(e["writes"]) or "-",
            str(len(e["interrupts"])) if e["interrupts"] else "-",
        ]
        for e in entries
    ]
    printer.table(["CHECKPOINT", "STEP", "SOURCE", "CREATED", "NEXT", "WRITES", "INTERRUPTS"], rows)


def resolve(
    saver: BaseCheckpointSaver[Any], db: str, thread_id: str, ref: str | None, ns: str | None
) -> CheckpointTuple:
    """The checkpoint `ref` names in a thread: an id, a unique id prefix, or None for the newest."""
    items = _thread_checkpoints(saver, db, thread_id, ns)
    if ref is None:
        return items[0]
    matches = [i for i in items if i.config["configurable"]["checkpoint_id"].startswith(ref)]
    exact = [i for i in matches if i.config["configurable"]["checkpoint_id"] == ref]
    if exact:
        return exact[0]
    if not matches:
        raise CliError(f"No checkpoint '{ref}' in thread '{thread_id}'")
    if len(matches) > 1:
        raise CliError(f"Checkpoint prefix '{ref}' is ambiguous in thread '{thread_id}': {len(matches)} match")
    return matches[0]


def _values(item: CheckpointTuple, show_all: bool) -> dict[str, Any]:
    values = item.checkpoint["channel_values"]
    return {k: values[k] for k in sorted(values) if show_all or not is_internal(k)}


def _render(value: Any) -> list[str]:
    """A value for people: a message list one message per line, anything else as compact JSON."""
    if isinstance(value, list) and value and all(isinstance(v, BaseMessage) for v in value):
        return [_message_line(m) for m in value]
    return [json.dumps(to_jsonable(value), ensure_ascii=False)]


def _message_line(message: BaseMessage) -> str:
    text = message.content if isinstance(message.content, str) else json.dumps(to_jsonable(message.content))
    calls = getattr(message, "tool_calls", None) or []
    suffix = "".join(f" -> {c['name']}({json.dumps(c['args'], ensure_ascii=False)})" for c in calls)
    return f"[{message.type}] {text}{suffix}"


def cmd_show(args: argparse.Namespace, printer: Printer) -> None:
    with open_saver(args.db) as saver:
        item = resolve(saver, args.db, args.thread, args.checkpoint, args.ns)
    values = _values(item, args.all)
    if printer.json_output:
        printer.json({**_entry(item), "values": values})
        return
    entry = _entry(item)
    printer.line(
        printer.style(f"checkpoint {entry['checkpoint_id']}", "bold") + f"  step {entry['step']}  {entry['source']}"
    )
    for name, value in values.items():
        lines = _render(value)
        printer.line(printer.style(f"{name}:", "bold") + ("" if len(lines) > 1 else f" {lines[0]}"))
        if len(lines) > 1:
            for text in lines:
                printer.line(f"  {text}")
    if entry["next"]:
        printer.line(printer.style("next:", "bold") + " " + ", ".join(entry["next"]))
    for interrupt in entry["interrupts"]:
        printer.line(printer.style("interrupt:", "bold") + " " + json.dumps(interrupt, ensure_ascii=False))


def diff_values(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """What changed from `old` to `new`, channel by channel (unchanged channels are left out)."""
    changes: dict[str, dict[str, Any]] = {}
    for name in sorted(set(old) | set(new)):
        if name not in new:
            changes[name] = {"change": "removed", "value": old[name]}
        elif name not in old:
            changes[name] = {"change": "added", "value": new[name]}
        elif old[name] != new[name]:
            changes[name] = _diff_one(old[name], new[name])
    return changes


def _diff_one(a: Any, b: Any) -> dict[str, Any]:
    if isinstance(a, list) and isinstance(b, list):
        if _all_messages(a) and _all_messages(b):
            before = {m.id: m for m in a}
            after = {m.id: m for m in b}
            return {
                "change": "messages",
                "added": [m for m in b if m.id not in before],
                "removed": [m.id for m in a if m.id not in after],
                "changed": [m for m in b if m.id in before and before[m.id] != m],
            }
        if b[: len(a)] == a:
            return {"change": "appended", "items": b[len(a) :]}
    if isinstance(a, dict) and isinstance(b, dict):
        return {
            "change": "keys",
            "added": {k: b[k] for k in b if k not in a},
            "removed": [k for k in a if k not in b],
            "changed": {k: {"from": a[k], "to": b[k]} for k in a if k in b and a[k] != b[k]},
        }
    return {"change": "changed", "from": a, "to": b}


def _all_messages(items: list[Any]) -> bool:
    return all(isinstance(m, BaseMessage) for m in items)


def cmd_diff(args: argparse.Namespace, printer: Printer) -> None:
    with open_saver(args.db) as saver:
        a = resolve(saver, args.db, args.thread, args.a, args.ns)
        b = resolve(saver, args.db, args.thread, args.b, args.ns)
    changes = diff_values(_values(a, args.all), _values(b, args.all))
    a_id, b_id = a.config["configurable"]["checkpoint_id"], b.config["configurable"]["checkpoint_id"]
    if printer.json_output:
        printer.json({"thread_id": args.thread, "from": a_id, "to": b_id, "channels": changes})
        return
    printer.line(printer.style(f"{a_id} -> {b_id}", "bold"))
    if not changes:
        printer.line("No changes.")
    for name, change in changes.items():
        for text in _describe(change):
            printer.line(f"{printer.style(name, 'bold')}: {text}" if not text.startswith("  ") else text)


def dumps(value: Any) -> str:
    """A value as one line of JSON."""
    return json.dumps(to_jsonable(value), ensure_ascii=False)


def _describe(change: dict[str, Any]) -> list[str]:
    kind = change["change"]
    if kind == "messages":
        lines = [f"+{len(change['added'])} -{len(change['removed'])} ~{len(change['changed'])} messages"]
        lines += [f"  + {_message_line(m)}" for m in change["added"]]
        lines += [f"  - {mid}" for mid in change["removed"]]
        lines += [f"  ~ {_message_line(m)}" for m in change["changed"]]
        return lines
    if kind == "appended":
        return [f"appended {dumps(change['items'])}"]
    if kind == "keys":
        lines = ["keys changed"]
        lines += [f"  + {k}: {dumps(v)}" for k, v in change["added"].items()]
        lines += [f"  - {k}" for k in change["removed"]]
        lines += [f"  ~ {k}: {dumps(v['from'])} -> {dumps(v['to'])}" for k, v in change["changed"].items()]
        return lines
    if kind == "changed":
        return [f"{dumps(change['from'])} -> {dumps(change['to'])}"]
    return [f"{kind} {dumps(change['value'])}"]
