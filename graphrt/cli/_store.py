"""Store commands: `store ls`, `store get`, `store search` (read-only)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from graphrt.cli._backends import CliError, open_store, redact
from graphrt.cli._output import Printer
from graphrt.store.base import Item

__all__ = ("cmd_store_get", "cmd_store_ls", "cmd_store_search", "parse_namespace")


def parse_namespace(text: str | None) -> tuple[str, ...]:
    """A namespace from the command line: labels separated by "/" ("users/u1"), or a JSON array."""
    if not text:
        return ()
    if text.startswith("["):
        try:
            labels = json.loads(text)
        except ValueError:
            labels = None
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise CliError(f'Bad namespace {text!r}: a JSON namespace is an array of strings, e.g. \'["users", "u1"]\'')
        return tuple(labels)
    return tuple(text.strip("/").split("/"))


def _item(item: Item) -> dict[str, Any]:
    return item.dict()


def cmd_store_ls(args: argparse.Namespace, printer: Printer) -> None:
    prefix = parse_namespace(args.prefix)
    with open_store(args.db) as store:
        namespaces = store.list_namespaces(prefix=prefix or None, limit=args.limit)
    if printer.json_output:
        printer.json([list(ns) for ns in namespaces])
        return
    if not namespaces:
        printer.line("No namespaces.")
    for ns in namespaces:
        printer.line("/".join(ns))


def cmd_store_get(args: argparse.Namespace, printer: Printer) -> None:
    namespace = parse_namespace(args.namespace)
    with open_store(args.db) as store:
        item = store.get(namespace, args.key)
    if item is None:
        raise CliError(f"No item '{args.key}' in namespace '{'/'.join(namespace)}' of {redact(args.db)}")
    _print_items(printer, [item], single=True)


def cmd_store_search(args: argparse.Namespace, printer: Printer) -> None:
    namespace = parse_namespace(args.namespace)
    filter_ = None
    if args.filter:
        try:
            filter_ = json.loads(args.filter)
        except ValueError as exc:
            raise CliError(f'Bad --filter: not JSON ({exc}); e.g. --filter \'{{"kind": "note"}}\'') from None
        if not isinstance(filter_, dict):
            raise CliError('Bad --filter: a JSON object, e.g. --filter \'{"kind": "note"}\'')
    index = None
    if args.query is not None:
        if not args.embed:
            raise CliError(
                "--query needs --embed SPEC: the embeddings the store was indexed with (e.g. 'static' or 'hashing')"
            )
        index = _index(args.embed, args.dims)
    with open_store(args.db, index=index) as store:
        items = store.search(namespace, query=args.query, filter=filter_, limit=args.limit, offset=args.offset)
    _print_items(printer, items, single=False)


def _index(spec: str, dims: int | None) -> dict[str, Any]:
    from graphrt.embeddings import init_embeddings

    try:
        embed = init_embeddings(spec)
    except (ValueError, ImportError) as exc:
        raise CliError(f"Bad --embed {spec!r}: {exc}") from None
    width = dims or getattr(embed, "dims", None)
    if not isinstance(width, int):
        raise CliError(f"--embed {spec!r} does not say its width: pass --dims N")
    return {"embed": embed, "dims": width}


def _print_items(printer: Printer, items: list[Any], *, single: bool) -> None:
    data = [_item(i) for i in items]
    if printer.json_output:
        printer.json(data[0] if single else data)
        return
    if not data:
        printer.line("No items.")
        return
    if single:
        item = data[0]
        printer.line(printer.style(f"{'/'.join(item['namespace'])} {item['key']}", "bold"))
        printer.line(f"created {item['created_at']}  updated {item['updated_at']}")
        printer.line(json.dumps(item["value"], indent=2, ensure_ascii=False))
        return
    rows = [
        [
            "/".join(d["namespace"]),
            d["key"],
            "-" if d.get("score") is None else f"{d['score']:.3f}",
            d["updated_at"],
            json.dumps(d["value"], ensure_ascii=False),
        ]
        for d in data
    ]
    printer.table(["NAMESPACE", "KEY", "SCORE", "UPDATED", "VALUE"], rows)
