"""Turn values into plain JSON data and back: the two hot loops of the serializer.

orjson alone cannot be used with a `default=` hook: it writes tuples, UUIDs, enums, NaN and
subclasses of str/int natively and so loses their types without asking. Instead one Python pass
replaces every non-JSON value by a tagged dict, then one orjson call writes the result. Strings,
the most common leaf, are never passed to a call.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final

import orjson

from graphrt.checkpoint.serde._codecs import MARK, VALUE, Decoder, Walk, encode_big_int, encode_special_float
from graphrt.checkpoint.serde._registry import ENCODERS, encoder_for
from graphrt.checkpoint.serde.base import DeserializationError, SerializationError

__all__ = ("MARKER_BYTES", "dumps_json", "exact", "locate", "make_revive")

_INT_MIN: Final = -(2**63)
_INT_MAX: Final = 2**64  # orjson writes ints in [-2**63, 2**64)

MARKER_BYTES: Final = f'"{MARK}"'.encode()
"""Present in every document holding a tagged value, so documents without it skip the revive pass."""


def _make_walk(checked: bool) -> Walk:
    """Build the encoding pass.

    The fast pass leaves two checks to orjson, which rejects them: dict keys that are not exact
    `str`, and ints beyond 64 bits. Only then does the caller retry with the `checked` pass, which
    escapes such dicts and tags such ints. Dicts and lists holding only plain leaves are handed to
    orjson as they are, without a copy.
    """
    encoders = ENCODERS
    is_plain = frozenset({str, bool, type(None)} if checked else {str, int, bool, type(None)}).issuperset

    def walk(o: Any) -> Any:
        t = type(o)
        if t is str:
            return o
        if t is dict:
            if MARK in o or (checked and not all(type(k) is str for k in o)):
                return {MARK: "dict", VALUE: [[walk(k), walk(v)] for k, v in o.items()]}
            if is_plain(map(type, o.values())):
                return o
            return {k: v if type(v) is str else walk(v) for k, v in o.items()}
        if t is list:
            if is_plain(map(type, o)):
                return o
            return [x if type(x) is str else walk(x) for x in o]
        if t is int:
            return encode_big_int(o) if checked and not _INT_MIN <= o < _INT_MAX else o
        if o is None or t is bool:
            return o
        if t is float:
            # x - x is 0.0 for every finite float and NaN (truthy) for NaN and the infinities.
            return encode_special_float(o) if o - o else o
        encoder = encoders.get(t)
        if encoder is None:
            encoder = encoder_for(t)
        return encoder(o, walk)

    return walk


_walk_fast: Final = _make_walk(checked=False)
_walk_checked: Final = _make_walk(checked=True)


_EXACT_BELOW: Final = 16384


def exact(data: bytes) -> bytes:
    """`data` in memory of its own size, when it is small.

    orjson's result keeps the buffer it wrote into: measured here (orjson 3.13), every result of a few bytes
    held 4 KiB of memory, and a 4 KB one 12 KB. Whatever keeps serialized bytes (the in-memory saver, the
    cache) would pay that for each small value, metadata and record; a copy costs about 0.3 us.
    """
    return bytes(memoryview(data)) if len(data) < _EXACT_BELOW else data


def dumps_json(obj: Any) -> bytes:
    """Serialize `obj` to JSON with tagged values; raises `SerializationError` for unknown types."""
    data = _walk_fast(obj)
    try:
        return exact(orjson.dumps(data))
    except orjson.JSONEncodeError:
        pass  # a non-str dict key, an int beyond 64 bits, a lone surrogate, or nesting too deep for orjson
    data = _walk_checked(obj)
    try:
        return exact(orjson.dumps(data))
    except orjson.JSONEncodeError:
        # The stdlib writes lone surrogates as escapes and has no depth limit of its own.
        return json.dumps(data, separators=(",", ":")).encode()


def locate(obj: Any, walk: Walk = _walk_fast) -> str:
    """Path to the innermost value inside `obj` that fails to encode, like `"['a'][0].b"`.

    Only called after a failure, so it may re-encode parts of `obj` several times.
    """
    for segment, child in _children(obj):
        try:
            walk(child)
        except SerializationError:
            return segment + locate(child, walk)
    return ""


def _children(obj: Any) -> list[tuple[str, Any]]:
    t = type(obj)
    if t is dict:
        return [(f"[{k!r}]", v) for k, v in obj.items()] + [(f" (key {k!r})", k) for k in obj]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [(f"[{i}]", v) for i, v in enumerate(obj)]
    attrs = getattr(obj, "__dict__", None)
    if isinstance(attrs, dict):
        return [(f".{k}", v) for k, v in {**attrs, **(getattr(obj, "__pydantic_extra__", None) or {})}.items()]
    names: list[str] = []
    for cls in t.__mro__:
        slots = getattr(cls, "__slots__", ())
        names.extend((slots,) if isinstance(slots, str) else slots)
    return [(f".{name}", getattr(obj, name)) for name in names if hasattr(obj, name)]


def loads_json(data: bytes | bytearray | memoryview | str, revive: Callable[[Any], Any]) -> Any:
    """Parse JSON written by `dumps_json` and rebuild its tagged values."""
    if isinstance(data, str):
        data = data.encode()
    elif not isinstance(data, bytes):
        data = bytes(data)
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        value = json.loads(data)  # lone surrogates escaped by the stdlib fallback in dumps_json
    if MARKER_BYTES not in data or not isinstance(value, (dict, list)):
        return value
    return revive(value)


def make_revive(resolve: Callable[[Any], Decoder]) -> Callable[[Any], Any]:
    """Build the decoding pass; `resolve(tag)` finds the decoder for a tag seen for the first time.

    Plain dicts and lists coming from the parser are updated in place; nobody else holds them.
    """
    cache: dict[str, Decoder] = {}

    def revive(o: Any) -> Any:
        if type(o) is dict:
            if MARK in o:
                tag = o[MARK]
                try:
                    decoder = cache[tag]
                except KeyError:
                    decoder = cache[tag] = resolve(tag)
                except TypeError:
                    raise DeserializationError(repr(tag), "the tag is not a string; the data is corrupt.") from None
                payload = o.get(VALUE)
                t = type(payload)
                if t is dict or t is list:
                    payload = revive(payload)
                try:
                    return decoder(payload)
                except DeserializationError:
                    raise
                except Exception as exc:
                    raise DeserializationError(tag, f"its payload is invalid ({type(exc).__name__}: {exc}).") from exc
            for k, v in o.items():
                t = type(v)
                if t is dict or t is list:
                    o[k] = revive(v)
            return o
        for i, v in enumerate(o):
            t = type(v)
            if t is dict or t is list:
                o[i] = revive(v)
        return o

    return revive
