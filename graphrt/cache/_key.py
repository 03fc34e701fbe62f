"""The default cache key: an input's type-tagged JSON in a canonical order (never pickle)."""

from __future__ import annotations

from typing import Any

_DICT = "\x00graphrt:dict"
_SET = "\x00graphrt:set"
_HOW_TO_FIX = (
    "The default CachePolicy.key_func serializes the input to make the key: pass CachePolicy(key_func=...) "
    "returning str or bytes, or register the type with graphrt.checkpoint.serde.jsonplus.register_type()."
)


def default_cache_key(*args: Any, **kwargs: Any) -> bytes:
    """The default `CachePolicy.key_func`: the arguments as type-tagged JSON, the same in every process.

    Dict items and set members are put in a canonical order first, so `{"a": 1, "b": 2}` and
    `{"b": 2, "a": 1}` give the same key and sets do not depend on the process's hash seed.

    Raises:
        SerializationError: An argument holds a type the serializer does not know (the error says where).
    """
    from graphrt.checkpoint.serde._walk import dumps_json, locate
    from graphrt.checkpoint.serde.base import SerializationError

    try:
        return dumps_json((_canonical(args), _canonical(kwargs)))
    except SerializationError as exc:
        where = locate(args) or locate(kwargs)
        raise SerializationError(exc.type_name, path=where, reason=_HOW_TO_FIX) from None
    except RecursionError:
        raise ValueError(
            "Cannot make a cache key from a value that contains itself (a reference cycle) or is nested "
            "hundreds of levels deep; pass CachePolicy(key_func=...) returning str or bytes."
        ) from None


def _canonical(value: Any) -> Any:
    """`value` with dict items and set members in sorted order (a dict of str keys stays a dict)."""
    t = type(value)
    if t is str or t is int or t is float or t is bool or value is None:
        return value
    if t is dict:
        if all(type(k) is str for k in value):
            return {k: _canonical(value[k]) for k in sorted(value)}
        items = sorted(((_canonical(k), _canonical(v)) for k, v in value.items()), key=lambda kv: _sort_key(kv[0]))
        return (_DICT, tuple(items))
    if t is list:
        return [_canonical(v) for v in value]
    if t is tuple:
        return tuple(_canonical(v) for v in value)
    if t is set or t is frozenset:
        return (_SET, t.__name__, tuple(sorted((_canonical(v) for v in value), key=_sort_key)))
    return value


def _sort_key(value: Any) -> bytes:
    from graphrt.checkpoint.serde._walk import dumps_json

    return dumps_json(value)
