"""`BinaryOperatorAggregate`: folds every write into the value with a reducer (`Annotated[list, add]`)."""

from __future__ import annotations

import collections.abc
from collections.abc import Callable, Sequence
from typing import Any, Generic, NotRequired, Required, Self

from graphrt.channels.base import MISSING, BaseChannel, Value
from graphrt.errors import EmptyChannelError, ErrorCode, InvalidUpdateError, create_error_message
from graphrt.types import Overwrite

__all__ = ("BinaryOperatorAggregate",)

OVERWRITE = "__overwrite__"

_ABSTRACT_TO_CONCRETE: dict[Any, type] = {
    collections.abc.Sequence: list,
    collections.abc.MutableSequence: list,
    collections.abc.Set: set,
    collections.abc.MutableSet: set,
    collections.abc.Mapping: dict,
    collections.abc.MutableMapping: dict,
}


def _bare_type(typ: Any) -> Any:
    """`list[int]` → `list`; `Required[X]`/`NotRequired[X]` → bare X."""
    origin = getattr(typ, "__origin__", None)
    if origin is None:
        return typ
    if origin in (Required, NotRequired):
        return _bare_type(typ.__args__[0])
    return _bare_type(origin)


def unwrap_overwrite(value: Any) -> tuple[bool, Any]:
    """Whether `value` asks to bypass the reducer (`Overwrite(v)` or `{"__overwrite__": v}`), and the value."""
    if type(value) is Overwrite:
        return True, value.value
    if type(value) is dict and len(value) == 1 and OVERWRITE in value:
        return True, value[OVERWRITE]
    return False, None


class BinaryOperatorAggregate(Generic[Value], BaseChannel[Value, Value, Value]):
    """Folds each write into the current value with `operator(current, write)`.

    Starts from `typ()` when the type can be built without arguments (an empty list for `list`), else
    empty. An `Overwrite(value)` write replaces the value and skips the reducer for the rest of the step.
    """

    __slots__ = ("operator", "value")
    steps_without_writes = False

    def __init__(self, typ: Any, operator: Callable[[Value, Value], Value]) -> None:
        super().__init__(typ)
        self.operator = operator
        concrete = _bare_type(typ)
        concrete = _ABSTRACT_TO_CONCRETE.get(concrete, concrete)
        try:
            self.value: Any = concrete()
        except Exception:
            self.value = MISSING

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BinaryOperatorAggregate):
            return False
        # Lambdas can't be compared by identity across two builds of one graph.
        lambdas = self.operator.__name__ == "<lambda>" or other.operator.__name__ == "<lambda>"
        return lambdas or self.operator is other.operator

    __hash__ = BaseChannel.__hash__

    @property
    def ValueType(self) -> Any:
        return self.typ

    @property
    def UpdateType(self) -> Any:
        return self.typ

    def _empty(self) -> Self:
        new = self.__class__.__new__(self.__class__)
        new.typ, new.key, new.operator = self.typ, self.key, self.operator
        return new

    def copy(self) -> Self:
        new = self._empty()
        new.value = self.value
        return new

    def from_checkpoint(self, checkpoint: Any) -> Self:
        new = self._empty()
        if checkpoint is MISSING:
            new.value = self.__class__(self.typ, self.operator).value
        else:
            new.value = checkpoint
        return new

    def update(self, values: Sequence[Value]) -> bool:
        if not values:
            return False
        value = self.value
        start = 0
        if value is MISSING:
            is_overwrite, first = unwrap_overwrite(values[0])
            value, start = (first if is_overwrite else values[0]), 1
        overwritten = False
        for write in values[start:]:
            is_overwrite, replacement = unwrap_overwrite(write)
            if is_overwrite:
                if overwritten:
                    raise InvalidUpdateError(
                        create_error_message(
                            message="Can receive only one Overwrite value per super-step.",
                            error_code=ErrorCode.INVALID_CONCURRENT_GRAPH_UPDATE,
                        )
                    )
                value, overwritten = replacement, True
            elif not overwritten:
                value = self.operator(value, write)
        self.value = value
        return True

    def get(self) -> Value:
        if self.value is MISSING:
            raise EmptyChannelError()
        value: Value = self.value
        return value

    def is_available(self) -> bool:
        return self.value is not MISSING

    def checkpoint(self) -> Any:
        return self.value
