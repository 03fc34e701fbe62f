"""Compile a search filter once into a predicate over stored values; every backend uses this one.

Semantics (the same on every backend):

* A key is a field name, or a dotted path into the value (`"a.b"` reads `value["a"]["b"]`); a field
  whose own name has the dot (`{"a.b": 1}`) is read first. Keys that look like JSON paths (starting
  with `$`) or hold NUL or lone surrogates are refused, on every backend.
* A plain value matches by JSON equality: `True` never equals `1`, `1` equals `1.0`, lists match
  element by element, dicts key by key. A missing field counts as `None`.
* A dict whose keys all start with `$` is a set of operators, all of which must hold:
  `$eq $ne $in $nin` (equality as above), `$gt $gte $lt $lte` (numbers with numbers, strings with
  strings; anything else, a missing field included, does not match) and `$exists` (true/false).
* Any other dict matches a nested dict field by field (fields it does not name are ignored).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, Final

__all__ = ("MISSING", "compile_filter", "json_equal", "read_path")

Predicate = Callable[[Any], bool]


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""What `read_path` returns for a field the value does not have."""

_ORDERINGS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}
_OPERATORS: Final = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists")


def read_path(value: Any, path: tuple[str, ...]) -> Any:
    """Follow dict keys along `path`; `MISSING` when a step is absent or not a dict."""
    for name in path:
        if not isinstance(value, dict):
            return MISSING
        value = value.get(name, MISSING)
        if value is MISSING:
            return MISSING
    return value


def json_equal(a: Any, b: Any) -> bool:
    """Equality of JSON values: booleans are not numbers, `MISSING` equals `None`."""
    if a is MISSING:
        a = None
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list | tuple):
        return (
            isinstance(b, list | tuple)
            and len(a) == len(b)
            and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, dict):
        return isinstance(b, Mapping) and a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(b, list | tuple | Mapping):
        return False
    return bool(a == b)


def _is_number(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def _ordering(op: str, bound: Any) -> Predicate:
    compare = _ORDERINGS[op]
    if _is_number(bound):
        return lambda v: _is_number(v) and compare(v, bound)
    if isinstance(bound, str):
        return lambda v: isinstance(v, str) and compare(v, bound)
    raise ValueError(f"Filter operator {op} needs a number or a string, got {type(bound).__name__}: {bound!r}.")


def _choices(op: str, options: Any) -> tuple[Any, ...]:
    if not isinstance(options, list | tuple | set | frozenset):
        raise ValueError(f"Filter operator {op} needs a list of values, got {type(options).__name__}: {options!r}.")
    return tuple(options)


def _operator(op: str, arg: Any) -> Predicate:
    if op == "$eq":
        return _equals(arg)
    if op == "$ne":
        return lambda v: not json_equal(v, arg)
    if op in _ORDERINGS:
        return _ordering(op, arg)
    if op == "$in":
        options = _choices(op, arg)
        return lambda v: any(json_equal(v, o) for o in options)
    if op == "$nin":
        options = _choices(op, arg)
        return lambda v: not any(json_equal(v, o) for o in options)
    if op == "$exists":
        if not isinstance(arg, bool):
            raise ValueError(f"Filter operator $exists needs true or false, got {arg!r}.")
        return (lambda v: v is not MISSING) if arg else (lambda v: v is MISSING)
    raise ValueError(f"Unsupported operator: {op}. Supported operators: {', '.join(_OPERATORS)}.")


def _equals(target: Any) -> Predicate:
    """`json_equal(v, target)`, specialised for the common scalar targets (a filter runs per item)."""
    if type(target) is str:
        return lambda v: v == target
    if type(target) is int or type(target) is float:
        return lambda v: v == target and type(v) is not bool
    if target is None:
        return lambda v: v is None or v is MISSING
    return lambda v: json_equal(v, target)


def _condition(condition: Any, where: str) -> Predicate:
    """Predicate over one field's value for the condition written at `where`."""
    if not isinstance(condition, Mapping) or not condition:
        return _equals(condition)
    keys = [k for k in condition if isinstance(k, str) and k.startswith("$")]
    if keys and len(keys) != len(condition):
        raise ValueError(
            f"Filter at {where!r} mixes operators ({', '.join(keys)}) with field names; put the "
            "operators in a dict of their own under the field they test."
        )
    if keys:
        tests = [_operator(op, arg) for op, arg in condition.items()]
        return tests[0] if len(tests) == 1 else (lambda v: all(t(v) for t in tests))
    nested = _fields(condition, f"{where}.")
    return lambda v: isinstance(v, dict) and nested(v)


def _fields(spec: Mapping[Any, Any], where: str = "") -> Predicate:
    """Predicate over a dict: every named (dotted) field satisfies its condition."""
    tests: list[tuple[tuple[str, ...], Predicate]] = []
    for key, condition in spec.items():
        _check_filter_key(key, where)
        tests.append((tuple(key.split(".")), _condition(condition, f"{where}{key}")))
    if any(len(path) > 1 for path, _ in tests):
        return lambda value: all(test(_read_field(value, path)) for path, test in tests)
    if len(tests) == 1 and len(tests[0][0]) == 1:
        # One top-level field: the common filter, without the generic path walk.
        (name,), test = tests[0]
        return lambda value: test(value.get(name, MISSING) if type(value) is dict else read_path(value, (name,)))
    return lambda value: all(test(read_path(value, path)) for path, test in tests)


def _check_filter_key(key: Any, where: str) -> None:
    if not isinstance(key, str) or not key:
        raise ValueError(f"Filter keys must be non-empty strings; got {key!r} at {where or 'top level'!r}.")
    if key.startswith("$"):
        raise ValueError(
            f"Filter key {key!r} looks like a JSON path or an operator; filter keys are field names, with "
            "dots for nested fields (e.g. {'a.b': 1}); list positions cannot be filtered on."
        )
    if "\x00" in key:
        raise ValueError(f"Filter key {key!r} contains a NUL character ('\\x00'); no stored field can have it.")
    if not key.isascii():
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"Filter key {key!r} contains a lone surrogate (not valid Unicode text).") from None


def _read_field(value: Any, path: tuple[str, ...]) -> Any:
    """A dotted key: the field literally named so when the value has one, else the nested path."""
    if type(value) is dict:
        literal = value.get(".".join(path), MISSING)
        if literal is not MISSING:
            return literal
    return read_path(value, path)


def compile_filter(spec: Mapping[str, Any] | None) -> Predicate | None:
    """Compile a filter into a predicate over a stored value, or `None` when nothing is filtered."""
    if not spec:
        return None
    if not isinstance(spec, Mapping):
        raise ValueError(f"filter must be a dict of field -> condition, got {type(spec).__name__}.")
    return _fields(spec)
