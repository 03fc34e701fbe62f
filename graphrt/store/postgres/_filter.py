"""Narrow a filtered search's scan in PostgreSQL: SQL that keeps every row the filter could accept.

Only plain equality on strings, booleans and numbers is pushed down (`{"f": x}` or `{"f": {"$eq": x}}`); the
rest of the filter, and every row that passes, still go through the compiled predicate
(`graphrt.store._filter`), so the answer is the same as on every other backend. Values are stored as JSON
text, with a parsed copy in the generated `jsonb` column `doc` for this test: `jsonb` compares numbers by
value (`1` matches `1.0`), never a boolean with a number, and strings exactly, as the predicate does. Where
they could differ the condition is not pushed down:

* numbers from 2**53 on: there a JSON integer and the shortest text of an equal float may differ;
* `None` (the predicate also accepts a missing field), strings holding NUL, other kinds of values;
* rows whose text holds an escaped NUL (`jsonb` refuses it; their `doc` is NULL) are always kept.

A dotted key also names a field with the dot in its name, so it keeps rows matching either reading.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ("pushdown",)

_EXACT = 2**53
"""Below this, a float equal to an integer is printed as that integer's exact value."""


def _literal(condition: Any) -> str | None:
    """The JSON text to compare a field with, or None when the condition is not pushed down."""
    if isinstance(condition, Mapping) and set(condition) == {"$eq"}:
        condition = condition["$eq"]
    kind = type(condition)
    if kind is bool:
        return "true" if condition else "false"
    if kind is int:
        return str(condition) if -_EXACT < condition < _EXACT else None
    if kind is float:
        return orjson.dumps(condition).decode() if math.isfinite(condition) and abs(condition) < _EXACT else None
    if kind is str and "\x00" not in condition:
        try:
            return orjson.dumps(condition).decode()
        except orjson.JSONEncodeError:  # a lone surrogate: no stored string equals it
            return None
    return None


def pushdown(spec: Mapping[str, Any] | None) -> tuple[str, list[Any]]:
    """SQL (" AND ...", "?" placeholders) keeping at least the rows `spec` accepts, and its arguments."""
    if not spec:
        return "", []
    plain: list[str] = []
    dotted: list[str] = []
    args: list[Any] = []
    for key, condition in spec.items():
        literal = _literal(condition)
        if literal is None or not isinstance(key, str) or not key or "\x00" in key:
            continue
        if "." not in key:
            plain.append(f"{orjson.dumps(key).decode()}:{literal}")
            continue
        dotted.append("(doc -> ?::text = ?::jsonb OR doc #> ?::text[] = ?::jsonb)")
        args += [key, literal, key.split("."), literal]
    tests = dotted
    if plain:
        # One containment test for every plain field.
        tests = ["doc @> ?::jsonb", *dotted]
        args.insert(0, "{" + ",".join(plain) + "}")
    if not tests:
        return "", []
    return f" AND (doc IS NULL OR {' AND '.join(tests)})", args
