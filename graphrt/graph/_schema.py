"""State schemas (TypedDict, dataclass, pydantic) → channels, and values in and out of those types."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, get_args, get_origin, get_type_hints

from pydantic import BaseModel

from graphrt.channels.base import BaseChannel
from graphrt.channels.binop import BinaryOperatorAggregate
from graphrt.channels.last_value import LastValue
from graphrt.errors import ErrorCode, InvalidUpdateError, create_error_message
from graphrt.managed.base import ManagedValueSpec, is_managed_value


@dataclass(frozen=True, slots=True)
class SchemaInfo:
    """What the runtime needs to know about one schema."""

    schema: Any
    keys: tuple[str, ...]
    channels: Mapping[str, BaseChannel[Any, Any, Any]]
    coerce: Callable[[dict[str, Any]], Any] | None
    """Builds the schema's type from a dict of channel values; None for dict-like schemas."""
    defaults: Mapping[str, Any]
    """Field defaults (dataclass and pydantic) used when a key has no value yet."""
    managed: tuple[tuple[str, ManagedValueSpec], ...] = ()
    """Keys the runtime fills in for each task (`RemainingSteps`): not channels, not in `keys`."""


def _hints(schema: Any, localns: Mapping[str, Any] | None = None) -> dict[str, Any]:
    if schema is None or schema is Any:
        return {}
    try:
        return get_type_hints(schema, include_extras=True)
    except (TypeError, NameError):
        pass
    # Postponed annotations naming objects local to the function that built the graph: resolve them
    # in that function's namespace (LangGraph gives up here and silently drops reducers).
    try:
        return get_type_hints(schema, localns=dict(localns or {}), include_extras=True)
    except (TypeError, NameError):
        return dict(getattr(schema, "__annotations__", {}))


def _channel_for(key: str, annotation: Any) -> BaseChannel[Any, Any, Any]:
    """`Annotated[T, reducer]` → BinaryOperatorAggregate; `Annotated[T, SomeChannel]` → it; else LastValue."""
    if get_origin(annotation) in (typing.Required, typing.NotRequired):
        annotation = get_args(annotation)[0]
    if get_origin(annotation) is Annotated:
        base, *meta = get_args(annotation)
        for item in reversed(meta):
            if isinstance(item, BaseChannel):
                chan = item
                break
            if isinstance(item, type) and issubclass(item, BaseChannel):
                chan = item(base)
                break
            if callable(item) and _is_reducer(item):
                chan = BinaryOperatorAggregate(base, item)
                break
        else:
            chan = LastValue(base)
    else:
        chan = LastValue(annotation)
    chan.key = key
    return chan


def _managed_for(annotation: Any) -> ManagedValueSpec | None:
    """The managed value `annotation` declares (`Annotated[int, RemainingStepsManager]`), if any."""
    if get_origin(annotation) in (typing.Required, typing.NotRequired):
        annotation = get_args(annotation)[0]
    if get_origin(annotation) is Annotated:
        for item in get_args(annotation)[1:]:
            if is_managed_value(item):
                return item
    return None


def _is_reducer(func: Callable[..., Any]) -> bool:
    try:
        params = [
            p
            for p in inspect.signature(func).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return True  # builtins such as operator.add have no signature on some versions
    # LangGraph counts positional parameters with or without defaults: add_messages(left=None, right=None).
    return len(params) == 2


def _defaults(schema: Any) -> dict[str, Any]:
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return {
            name: field.get_default(call_default_factory=True)
            for name, field in schema.model_fields.items()
            if not field.is_required()
        }
    if dataclasses.is_dataclass(schema):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(schema):
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = f.default_factory()
        return out
    return {}


def _coercer(schema: Any) -> Callable[[dict[str, Any]], Any] | None:
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return lambda values: schema(**values)
    if dataclasses.is_dataclass(schema) and isinstance(schema, type):
        return lambda values: schema(**values)
    return None


def inspect_schema(schema: Any, localns: Mapping[str, Any] | None = None) -> SchemaInfo:
    """Channels and coercion for a TypedDict, dataclass, pydantic model (or `dict`/Any: one root value).

    `localns` resolves postponed annotations that name objects local to the caller.
    """
    hints = _hints(schema, localns)
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        hints = {k: v for k, v in hints.items() if k in schema.model_fields}
    elif dataclasses.is_dataclass(schema):
        names = {f.name for f in dataclasses.fields(schema)}
        hints = {k: v for k, v in hints.items() if k in names}
    hints = {k: v for k, v in hints.items() if get_origin(v) is not typing.ClassVar}
    managed = {key: spec for key, annotation in hints.items() if (spec := _managed_for(annotation)) is not None}
    channels = {key: _channel_for(key, annotation) for key, annotation in hints.items() if key not in managed}
    return SchemaInfo(schema, tuple(channels), channels, _coercer(schema), _defaults(schema), tuple(managed.items()))


def updates_of(value: Any, keys: Mapping[str, Any] | frozenset[str], *, node: str) -> list[tuple[str, Any]]:
    """Channel writes for what a node returned: a dict, a schema instance, or None."""
    if value is None:
        return []
    if type(value) is dict or isinstance(value, dict):
        if isinstance(keys, frozenset) and keys.issuperset(value):
            return list(value.items())  # the usual update: only state keys
        return [(k, v) for k, v in value.items() if k in keys]
    if isinstance(value, BaseModel):
        fields = type(value).model_fields
        set_fields = value.model_fields_set
        return [
            (k, getattr(value, k))
            for k in fields
            if k in keys and (k in set_fields or getattr(value, k) != fields[k].get_default(call_default_factory=True))
        ]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value) if f.name in keys]
    raise InvalidUpdateError(
        create_error_message(
            message=f"Expected dict, got {value}", error_code=ErrorCode.INVALID_GRAPH_NODE_RETURN_VALUE
        )
    )
