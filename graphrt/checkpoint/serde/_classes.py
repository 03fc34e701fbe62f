"""Codecs for user classes stored by import path: pydantic models, dataclasses, enums, named tuples.

Tags name the kind and the class: ``"pyd:myapp.state:Profile"``, ``"dc:..."``, ``"enum:..."``, ``"nt:..."``;
graphrt's own messages are ``"msg:AIMessage"``. Loading imports the module, looks the name up and
checks the object is a class of the tagged kind before touching it: a tag naming anything else (a
function, an arbitrary class) is refused. Instances are rebuilt without running `__init__`,
validators or `__post_init__`, so a value comes back exactly as it was saved.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from enum import Enum
from typing import Any, Final

from graphrt.checkpoint.serde._codecs import MARK, VALUE, Decoder, Encoder, Walk
from graphrt.checkpoint.serde.base import DeserializationError, SerializationError

__all__ = (
    "KINDS",
    "MESSAGES_MODULE",
    "class_encoder",
    "import_class",
    "kind_decoder",
    "message_class",
    "qualified_name",
)

MESSAGES_MODULE: Final = "graphrt.messages"
"""Where graphrt's message classes live; they get short `msg:<Name>` tags."""

_MISSING: Final[Any] = object()
_IMMUTABLE_DEFAULTS: Final = (str, int, float, bool)


def qualified_name(cls: type[Any]) -> str:
    """`module.QualName`, or just the name for builtins."""
    module = cls.__module__
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def _unimportable(cls: type[Any], why: str) -> SerializationError:
    return SerializationError(
        qualified_name(cls),
        reason=f"It {why}, so it could not be imported again to load the checkpoint; "
        "define it at module level, or register it with graphrt.checkpoint.serde.jsonplus.register_type().",
    )


def _class_path(cls: type[Any]) -> str:
    """`module:QualName`, checked to lead back to `cls` so that loading can find it."""
    module, qualname = cls.__module__, cls.__qualname__
    if "<locals>" in qualname:
        raise _unimportable(cls, "is defined inside a function")
    obj: Any = sys.modules.get(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
    if obj is not cls:
        raise _unimportable(cls, f"is not reachable as {module}:{qualname}")
    return f"{module}:{qualname}"


def _pydantic_base() -> type[Any] | None:
    """`pydantic.BaseModel` if pydantic is loaded; no instance can be a model otherwise."""
    pydantic = sys.modules.get("pydantic")
    return None if pydantic is None else pydantic.BaseModel


def message_class(cls: type[Any]) -> bool:
    """Whether `cls` is one of graphrt's public message classes."""
    module = sys.modules.get(MESSAGES_MODULE)
    return (
        module is not None
        and cls.__name__ in getattr(module, "__all__", ())
        and (getattr(module, cls.__name__, None) is cls)
    )


def class_encoder(cls: type[Any]) -> Encoder:
    """Pick the encoder for a class that is not a built-in type, or raise `SerializationError`."""
    if issubclass(cls, Enum):
        return _enum_encoder(f"enum:{_class_path(cls)}")
    base = _pydantic_base()
    is_model = base is not None and issubclass(cls, base)
    if message_class(cls) and (is_model or dataclasses.is_dataclass(cls)):
        tag = f"msg:{cls.__name__}"
    elif is_model:
        # A parametrized generic model (`Page[int]`) is stored as its origin class (`Page`); pydantic
        # treats the two as equal, and only the origin can be imported.
        origin = cls.__pydantic_generic_metadata__["origin"]
        tag = f"pyd:{_class_path(origin or cls)}"
    elif dataclasses.is_dataclass(cls):
        tag = f"dc:{_class_path(cls)}"
    elif issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return _named_tuple_encoder(f"nt:{_class_path(cls)}")
    else:
        raise SerializationError(qualified_name(cls))
    return _model_encoder(cls, tag) if is_model else _dataclass_encoder(cls, tag)


def _enum_encoder(tag: str) -> Encoder:
    def encode(o: Enum, walk: Walk) -> dict[str, Any]:
        return {MARK: tag, VALUE: walk(o.value)}

    return encode


def _named_tuple_encoder(tag: str) -> Encoder:
    def encode(o: tuple[Any, ...], walk: Walk) -> dict[str, Any]:
        return {MARK: tag, VALUE: [x if type(x) is str else walk(x) for x in o]}

    return encode


def _skippable_defaults(cls: type[Any]) -> tuple[dict[str, Any], dict[str, type[Any]]]:
    """A model's fields whose default is an immutable scalar, and those defaulting to a new empty list/dict.

    A field still holding such a default is left out of the payload (unless it was set explicitly)
    and refilled on load: this keeps messages, which have many empty fields, small.
    """
    simple: dict[str, Any] = {}
    empty: dict[str, type[Any]] = {}
    for name, field in cls.model_fields.items():
        factory = field.default_factory
        if factory is list or factory is dict:
            empty[name] = factory
        elif factory is None and (field.default is None or type(field.default) in _IMMUTABLE_DEFAULTS):
            simple[name] = field.default
    return simple, empty


def _model_encoder(cls: type[Any], tag: str) -> Encoder:
    simple, empty = _skippable_defaults(cls)
    has_private = bool(cls.__private_attributes__)

    def encode(o: Any, walk: Walk) -> dict[str, Any]:
        fields_set = o.__pydantic_fields_set__
        payload: dict[str, Any] = {}
        for k, v in o.__dict__.items():
            if k not in fields_set:
                default = simple.get(k, _MISSING)
                if default is not _MISSING:
                    if v is default or (type(v) is type(default) and v == default):
                        continue
                elif type(v) is empty.get(k) and not v:
                    continue
            payload[k] = v if type(v) is str else walk(v)
        extra = o.__pydantic_extra__
        if extra:
            if MARK in extra:  # an extra key collides with the tag marker: store the escaped form
                payload = walk({**{k: o.__dict__[k] for k in payload}, **extra})
            else:
                payload.update(walk(extra))
        if has_private and o.__pydantic_private__:
            return {MARK: tag, VALUE: [payload, walk(o.__pydantic_private__)]}
        return {MARK: tag, VALUE: payload}

    return encode


def _dataclass_encoder(cls: type[Any], tag: str) -> Encoder:
    names = tuple(f.name for f in dataclasses.fields(cls))
    # A field literally named like the tag marker needs the escaped dict form.
    escape = MARK in names

    def encode(o: Any, walk: Walk) -> dict[str, Any]:
        if escape:
            return {MARK: tag, VALUE: walk({name: getattr(o, name) for name in names if hasattr(o, name)})}
        payload: dict[str, Any] = {}
        for name in names:
            v = getattr(o, name, _MISSING)
            if v is not _MISSING:
                payload[name] = v if type(v) is str else walk(v)
        return {MARK: tag, VALUE: payload}

    return encode


KINDS: Final = ("pyd", "dc", "enum", "nt")
"""Tag prefixes of classes stored by import path."""


def import_class(tag: str, path: str) -> type[Any]:
    """Import `module:QualName` and return it, if it is a class; never call anything on the way."""
    module_name, _, qualname = path.partition(":")
    if not module_name or not qualname:
        raise DeserializationError(tag, "the tag does not name a class as 'module:QualName'.")
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:
        raise DeserializationError(
            tag,
            f"module {module_name!r} cannot be imported ({type(exc).__name__}: {exc}); "
            "install the code that defines the class.",
        ) from exc
    for part in qualname.split("."):
        obj = getattr(obj, part, _MISSING)
        if obj is _MISSING:
            raise DeserializationError(tag, f"module {module_name!r} has no attribute {qualname!r}.")
    if not isinstance(obj, type):
        raise DeserializationError(
            tag, f"{module_name}.{qualname} is not a class; only classes are rebuilt from stored data."
        )
    return obj


def kind_decoder(tag: str, kind: str, cls: type[Any]) -> Decoder:
    """The decoder for `cls` stored as `kind`, after checking the class really is of that kind."""
    base = _pydantic_base()
    if kind == "enum" and issubclass(cls, Enum):
        return _enum_decoder(tag, cls)
    if kind == "nt" and issubclass(cls, tuple) and hasattr(cls, "_fields"):
        return _named_tuple_decoder(cls)
    if kind in ("pyd", "msg") and base is not None and issubclass(cls, base):
        return _model_decoder(cls)
    if kind in ("dc", "msg") and dataclasses.is_dataclass(cls):
        return _dataclass_decoder(cls)
    names = {"pyd": "a pydantic model", "dc": "a dataclass", "enum": "an enum", "nt": "a named tuple"}
    what = names.get(kind, "a message class")
    raise DeserializationError(
        tag, f"{qualified_name(cls)} is not {what}, so graphrt refuses to rebuild it from stored data."
    )


def _enum_decoder(tag: str, cls: type[Enum]) -> Decoder:
    def decode(payload: Any) -> Enum:
        try:
            return cls(payload)
        except ValueError:
            raise DeserializationError(tag, f"{payload!r} is not a member of {qualified_name(cls)}.") from None

    return decode


def _named_tuple_decoder(cls: type[Any]) -> Decoder:
    size = len(cls._fields)
    defaults = cls._field_defaults

    def decode(payload: list[Any]) -> Any:
        if len(payload) < size:  # written before fields with defaults were added
            payload = [*payload, *(defaults.get(f) for f in cls._fields[len(payload) :])]
        return tuple.__new__(cls, payload[:size])

    return decode


def _dataclass_decoder(cls: Any) -> Decoder:
    fields = dataclasses.fields(cls)
    defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
    factories = {f.name: f.default_factory for f in fields if f.default_factory is not dataclasses.MISSING}
    names = [f.name for f in fields]
    setattr_ = object.__setattr__

    def decode(payload: dict[str, Any]) -> Any:
        inst = cls.__new__(cls)
        for name in names:
            value = payload.get(name, _MISSING)
            if value is _MISSING:  # a field added after the value was saved
                value = defaults.get(name, _MISSING)
                if value is _MISSING and name in factories:
                    value = factories[name]()
            if value is not _MISSING:
                setattr_(inst, name, value)
        return inst

    return decode


def _model_decoder(cls: Any) -> Decoder:
    simple, empty = _skippable_defaults(cls)
    # Every field in declaration order, holding its default where that is an immutable scalar;
    # merging a payload over it gives the instance dict in one step.
    template = {name: simple.get(name, _MISSING) for name in cls.model_fields}
    to_fill = tuple((name, empty.get(name)) for name in template if name not in simple)
    n_fields = len(template)
    allow_extra = cls.model_config.get("extra") == "allow"
    private_attrs = cls.__private_attributes__
    setattr_ = object.__setattr__

    def decode(payload: Any) -> Any:
        private = None
        if type(payload) is list:
            payload, private = payload
        values = {**template, **payload}
        fields_set = set(payload)
        extra: dict[str, Any] | None = {} if allow_extra else None
        if len(values) != n_fields:  # extra keys, or fields removed since the value was saved
            others = {k: values.pop(k) for k in payload if k not in template}
            if allow_extra:
                extra = others
            else:
                fields_set -= others.keys()
        for name, factory in to_fill:
            if values[name] is _MISSING:
                if factory is None:  # a field added since the value was saved: pydantic fills it
                    return _construct(cls, payload, private)
                values[name] = factory()
        inst = cls.__new__(cls)
        setattr_(inst, "__dict__", values)
        setattr_(inst, "__pydantic_fields_set__", fields_set)
        setattr_(inst, "__pydantic_extra__", extra)
        setattr_(inst, "__pydantic_private__", _with_private_defaults(private_attrs, private))
        return inst

    return decode


def _with_private_defaults(private_attrs: dict[str, Any], private: dict[str, Any] | None) -> Any:
    """The private state to set: what was saved, plus defaults for private attributes it lacks."""
    if not private_attrs:
        return private
    from pydantic_core import PydanticUndefined

    private = private or {}
    for name, attr in private_attrs.items():
        if name not in private:
            default = attr.get_default()
            if default is not PydanticUndefined:
                private[name] = default
    return private


def _construct(cls: Any, payload: dict[str, Any], private: dict[str, Any] | None) -> Any:
    inst = cls.model_construct(**payload)
    if private:
        object.__setattr__(inst, "__pydantic_private__", {**(inst.__pydantic_private__ or {}), **private})
    return inst
