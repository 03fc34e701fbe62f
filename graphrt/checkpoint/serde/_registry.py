"""The registry of serializable types: built-ins, user registrations, and per-class encoder cache."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Final, TypeVar

from graphrt.checkpoint.serde._classes import (
    KINDS,
    MESSAGES_MODULE,
    class_encoder,
    import_class,
    kind_decoder,
)
from graphrt.checkpoint.serde._codecs import (
    BUILTIN_DECODERS,
    BUILTIN_ENCODERS,
    MARK,
    VALUE,
    Decoder,
    Encoder,
    Walk,
)
from graphrt.checkpoint.serde._optional import OPTIONAL_DECODERS, optional_encoder
from graphrt.checkpoint.serde.base import DeserializationError

__all__ = ("ENCODERS", "Allowlist", "decoder_for", "encoder_for", "register_type")

T = TypeVar("T")

ENCODERS: Final[dict[type[Any], Encoder]] = dict(BUILTIN_ENCODERS)
"""Encoder per exact class, filled on first use; unknown classes are never cached."""

_DECODERS: Final = {**BUILTIN_DECODERS, **OPTIONAL_DECODERS}
_JSON_NATIVE: Final = frozenset({str, int, float, bool, type(None), dict, list})
_USER_ENCODERS: dict[type[Any], Encoder] = {}
_USER_DECODERS: dict[str, Decoder] = {}

Allowlist = frozenset[str] | bool
"""Which `module:QualName` classes may be rebuilt: all (True), graphrt's own only (False), or these."""


def encoder_for(cls: type[Any]) -> Encoder:
    """The encoder for instances of exactly `cls`; raises `SerializationError` for unknown types."""
    encoder = _USER_ENCODERS.get(cls) or BUILTIN_ENCODERS.get(cls) or optional_encoder(cls) or class_encoder(cls)
    ENCODERS[cls] = encoder
    return encoder


def register_type(
    cls: type[T],
    *,
    to_json: Callable[[T], Any],
    from_json: Callable[[Any], T],
    tag: str | None = None,
) -> None:
    """Teach every `JsonPlusSerializer` to store instances of exactly `cls` (not its subclasses).

    `to_json` turns an instance into any value the serializer supports (dicts, lists, tuples,
    datetimes...); `from_json` gets that value back and rebuilds the instance. The value is stored
    under `tag` (default: `"module:QualName"` of the class); keep the tag stable, since stored
    checkpoints name it. Register at import time, before saving or loading.
    """
    if cls in _JSON_NATIVE:
        raise ValueError(f"{cls.__name__} is stored as plain JSON already; it cannot be registered.")
    full_tag = f"reg:{tag or f'{cls.__module__}:{cls.__qualname__}'}"

    def encode(o: Any, walk: Walk) -> dict[str, Any]:
        return {MARK: full_tag, VALUE: walk(to_json(o))}

    _USER_ENCODERS[cls] = encode
    ENCODERS[cls] = encode
    _USER_DECODERS[full_tag] = from_json


def _allowed(path: str, allowlist: Allowlist) -> bool:
    if allowlist is True or path.startswith("graphrt."):
        return True
    return allowlist is not False and path in allowlist


def decoder_for(tag: Any, allowlist: Allowlist) -> Decoder:
    """The decoder for a stored tag; raises `DeserializationError` for a tag it will not honour."""
    if type(tag) is not str:
        raise DeserializationError(repr(tag), "the tag is not a string; the data is corrupt.")
    decoder = _DECODERS.get(tag) or _USER_DECODERS.get(tag)
    if decoder is not None:
        return decoder
    kind, _, path = tag.partition(":")
    if kind == "msg":
        cls = import_class(tag, f"{MESSAGES_MODULE}:{path}")
        if path not in getattr(sys.modules[MESSAGES_MODULE], "__all__", ()):
            raise DeserializationError(tag, f"{path!r} is not a message class of {MESSAGES_MODULE}.")
        return kind_decoder(tag, kind, cls)
    if kind in KINDS:
        if not _allowed(path, allowlist):
            raise DeserializationError(
                tag,
                "the class is not in this serializer's allowed_msgpack_modules; add "
                f"{tuple(path.split(':', 1))!r} to it to load this value.",
            )
        return kind_decoder(tag, kind, import_class(tag, path))
    if kind == "reg":
        raise DeserializationError(
            tag, "no type is registered under this tag; call register_type() for it before loading."
        )
    raise DeserializationError(tag, "unknown tag; the value may have been written by a newer graphrt.")
