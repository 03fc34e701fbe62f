"""How streamed message chunks combine: content, metadata dicts, indexed lists, token usage, partial JSON.

Pure functions on plain values, shared by the chunk classes in `graphrt.messages`. The rules are
`langchain_core`'s: strings concatenate, dicts merge key by key, list items carrying the same `index`
merge into one item, and token counts add up.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ("add_usage", "merge_content", "merge_dicts", "merge_lists", "parse_partial_json", "pick_id")

_KEEP_WHEN_EQUAL = frozenset({"id", "output_version", "model_provider"})


def merge_content(left: Any, right: Any) -> Any:
    """Concatenate two message contents (strings or lists of strings and content blocks)."""
    if isinstance(left, str) and isinstance(right, str):
        return left + right
    if isinstance(left, str):
        return [left, *right] if left else list(right)
    if isinstance(right, list):
        return merge_lists(left, right)
    merged = list(left)
    if merged and isinstance(merged[-1], str):
        merged[-1] += right
    elif right != "":
        merged.append(right)
    return merged


def merge_dicts(left: dict[str, Any], right: dict[str, Any]) -> dict[str, Any]:
    """Merge `right` into a copy of `left`: strings concatenate, dicts and lists merge, ints add up.

    Raises:
        TypeError: a key holds values of different types, or of a type that cannot be merged.
    """
    merged = dict(left)
    for key, value in right.items():
        if key not in merged or (value is not None and merged[key] is None):
            merged[key] = value
        elif value is None:
            continue
        elif type(merged[key]) is not type(value):
            raise TypeError(f'additional_kwargs["{key}"] already exists in this message, but with a different type.')
        elif isinstance(value, str):
            if (key == "index" and merged[key].startswith("lc_")) or (key in _KEEP_WHEN_EQUAL and merged[key] == value):
                continue
            merged[key] += value
        elif isinstance(value, dict):
            merged[key] = merge_dicts(merged[key], value)
        elif isinstance(value, list):
            merged[key] = merge_lists(merged[key], value)
        elif merged[key] == value:
            continue
        elif isinstance(value, int) and not isinstance(value, bool):
            merged[key] += value
        else:
            raise TypeError(
                f"Additional kwargs key {key} already exists in left dict and value has unsupported type {type(value)}."
            )
    return merged


def merge_lists(left: list[Any] | None, right: list[Any] | None) -> list[Any] | None:
    """Append `right` to `left`, merging dict items that carry the same (non-None) `index`."""
    if left is None:
        return None if right is None else list(right)
    if right is None:
        return list(left)
    merged = list(left)
    for item in right:
        index = item.get("index") if isinstance(item, dict) else None
        if index is None:
            merged.append(item)
            continue
        position = next(
            (i for i, old in enumerate(merged) if isinstance(old, dict) and old.get("index") == index), None
        )
        if position is None:
            merged.append(item)
            continue
        # A repeated "type" names the block's kind; it must not become "texttext".
        extra = {k: v for k, v in item.items() if not (k == "type" and merged[position].get("type") is not None)}
        merged[position] = merge_dicts(merged[position], extra)
    return merged


def add_usage(left: dict[str, Any] | None, right: dict[str, Any] | None) -> dict[str, Any] | None:
    """Sum two token-usage dicts field by field (nested detail dicts too)."""
    if left is None:
        return None if right is None else dict(right)
    if right is None:
        return dict(left)
    out = dict(left)
    for key, value in right.items():
        if isinstance(value, dict):
            out[key] = add_usage(out.get(key) or {}, value)
        elif isinstance(value, int | float):
            out[key] = out.get(key, 0) + value
        else:
            out.setdefault(key, value)
    for key in ("input_tokens", "output_tokens", "total_tokens"):
        out.setdefault(key, 0)
    return out


def pick_id(*ids: str | None) -> str | None:
    """The merged id: the first provider-assigned id, else the first id of any kind."""
    given = [i for i in ids if i]
    provider = [i for i in given if not i.startswith("lc_run-")]
    found = provider or given
    return found[0] if found else None


def parse_partial_json(text: str) -> Any:
    """Parse JSON that may be cut off mid-way (a tool call still streaming); None when it cannot be read.

    Open strings, arrays and objects are closed; a dangling key, colon or comma is dropped.
    """
    try:
        return json.loads(text, strict=False)
    except json.JSONDecodeError:
        pass
    body = text
    # Drop trailing characters until what is left, closed, parses (handles `{"a": ` and `[1, `).
    while body.strip():
        closed = _close(body)
        if closed is not None:
            try:
                return json.loads(closed, strict=False)
            except json.JSONDecodeError:
                pass
        body = body[:-1]
    return None


def _close(text: str) -> str | None:
    """`text` with its open string, arrays and objects closed; None if a bracket does not match."""
    closers: list[str] = []
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            closers.append("}" if ch == "{" else "]")
        elif ch in "}]":
            if not closers or closers[-1] != ch:
                return None
            closers.pop()
    if escaped:
        return None
    return text + ('"' if in_string else "") + "".join(reversed(closers))
