"""Field paths that pick the text to embed out of a stored value ("a.b", "arr[*].x", "{a,b}", "$")."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ("get_text_at_path", "tokenize_path")

_CLOSERS = {"[": "]", "{": "}"}


def tokenize_path(path: str) -> list[str]:
    """Split a field path into tokens: names, `[i]`/`[*]` indexes and `{a,b}` multi-field groups."""
    tokens: list[str] = []
    name: list[str] = []
    i = 0
    while i < len(path):
        char = path[i]
        if char in _CLOSERS:
            if name:
                tokens.append("".join(name))
                name = []
            end = _matching_close(path, i)
            tokens.append(path[i:end])
            i = end
            continue
        if char == ".":
            if name:
                tokens.append("".join(name))
                name = []
        else:
            name.append(char)
        i += 1
    if name:
        tokens.append("".join(name))
    return tokens


def _matching_close(path: str, start: int) -> int:
    """Index just past the bracket closing the one at `start` (or the end of the path)."""
    opener, closer = path[start], _CLOSERS[path[start]]
    depth, i = 0, start
    while i < len(path):
        if path[i] == opener:
            depth += 1
        elif path[i] == closer:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def _as_text(value: Any) -> list[str]:
    """Text for one selected value: scalars as `str`, containers as sorted JSON, nothing for null."""
    if isinstance(value, str | bool | int | float):
        return [str(value)]
    if isinstance(value, list | dict):
        return [json.dumps(value, sort_keys=True, ensure_ascii=False)]
    return []


def get_text_at_path(obj: Any, path: str | Sequence[str]) -> list[str]:
    """Return the texts a field path selects in `obj`; `"$"` (or an empty path) selects the whole value."""
    if isinstance(obj, Mapping) and not isinstance(obj, dict):
        obj = dict(obj)
    if not path or path == "$":
        return [json.dumps(obj, sort_keys=True, ensure_ascii=False)]
    tokens = tokenize_path(path) if isinstance(path, str) else path
    return _walk(obj, tokens, 0)


def _walk(obj: Any, tokens: Sequence[str], pos: int) -> list[str]:
    if pos == len(tokens):
        return _as_text(obj)
    token = tokens[pos]
    if token.startswith("["):
        return _walk_index(obj, token[1:-1], tokens, pos)
    if token.startswith("{"):
        return _pick_fields(obj, token[1:-1])
    if token == "*":
        children = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, list) else ()
        return [text for child in children for text in _walk(child, tokens, pos + 1)]
    if isinstance(obj, dict) and token in obj:
        return _walk(obj[token], tokens, pos + 1)
    return []


def _walk_index(obj: Any, index: str, tokens: Sequence[str], pos: int) -> list[str]:
    if not isinstance(obj, list):
        return []
    if index == "*":
        return [text for child in obj for text in _walk(child, tokens, pos + 1)]
    try:
        i = int(index)
    except ValueError:
        return []
    if i < 0:
        i += len(obj)
    return _walk(obj[i], tokens, pos + 1) if 0 <= i < len(obj) else []


def _pick_fields(obj: Any, fields: str) -> list[str]:
    """Texts of several (possibly dotted) fields of a dict, in the order they are named."""
    if not isinstance(obj, dict):
        return []
    texts: list[str] = []
    for field in fields.split(","):
        node: Any = obj
        for name in tokenize_path(field.strip()):
            if not isinstance(node, dict) or name not in node:
                node = None
                break
            node = node[name]
        texts.extend(_as_text(node))
    return texts
