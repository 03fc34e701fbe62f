"""Channels holding the last value written: `LastValue` and `LastValueAfterFinish`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, Self

from graphrt.channels.base import MISSING, BaseChannel, Value
from graphrt.errors import EmptyChannelError, ErrorCode, InvalidUpdateError, create_error_message

__all__ = ("LastValue", "LastValueAfterFinish")


def _one_value_per_step(key: str) -> InvalidUpdateError:
    return InvalidUpdateError(
        create_error_message(
            message=f"At key '{key}': Can receive only one value per step. Use an Annotated key to handle "
            "multiple values.",
            error_code=ErrorCode.INVALID_CONCURRENT_GRAPH_UPDATE,
        )
    )


class LastValue(Generic[Value], BaseChannel[Value, Value, Value]):
    """Stores the last value received; accepts at most one value per step."""

    __slots__ = ("value",)
    steps_without_writes = False

    def __init__(self, typ: Any, key: str = "") -> None:
        super().__init__(typ, key)
        self.value: Any = MISSING

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LastValue)

    __hash__ = BaseChannel.__hash__

    @property
    def ValueType(self) -> Any:
        return self.typ

    @property
    def UpdateType(self) -> Any:
        return self.typ

    def copy(self) -> Self:
        # Every run copies each channel: built inline, without the __init__ chain (a subclass with more
        # state overrides copy).
        new = self.__class__.__new__(self.__class__)
        new.typ, new.key, new.value = self.typ, self.key, self.value
        return new

    def from_checkpoint(self, checkpoint: Any) -> Self:
        return self._with(checkpoint)

    def _with(self, value: Any) -> Self:
        new = self.__class__.__new__(self.__class__)
        new.typ, new.key, new.value = self.typ, self.key, value
        return new

    def update(self, values: Sequence[Value]) -> bool:
        if len(values) == 0:
            return False
        if len(values) != 1:
            raise _one_value_per_step(self.key)
        self.value = values[-1]
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


class LastValueAfterFinish(Generic[Value], BaseChannel[Value, Value, tuple[Value, bool]]):
    """Stores the last value received, but makes it available only after `finish()` (deferred nodes)."""

    __slots__ = ("finished", "value")
    steps_without_writes = False

    def __init__(self, typ: Any, key: str = "") -> None:
        super().__init__(typ, key)
        self.value: Any = MISSING
        self.finished = False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LastValueAfterFinish)

    __hash__ = BaseChannel.__hash__

    @property
    def ValueType(self) -> Any:
        return self.typ

    @property
    def UpdateType(self) -> Any:
        return self.typ

    def checkpoint(self) -> Any:
        return MISSING if self.value is MISSING else (self.value, self.finished)

    def from_checkpoint(self, checkpoint: Any) -> Self:
        new = self.__class__(self.typ, self.key)
        if checkpoint is not MISSING:
            new.value, new.finished = checkpoint
        return new

    def update(self, values: Sequence[Value]) -> bool:
        if len(values) == 0:
            return False
        self.finished = False
        self.value = values[-1]
        return True

    def consume(self) -> bool:
        if self.finished:
            self.finished = False
            self.value = MISSING
            return True
        return False

    def finish(self) -> bool:
        if not self.finished and self.value is not MISSING:
            self.finished = True
            return True
        return False

    def get(self) -> Value:
        if self.value is MISSING or not self.finished:
            raise EmptyChannelError()
        value: Value = self.value
        return value

    def is_available(self) -> bool:
        return self.value is not MISSING and self.finished
