"""Barrier channels: available once every named writer has written (`add_edge([a, b], c)` joins)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, Self

from graphrt.channels.base import MISSING, BaseChannel, Value
from graphrt.errors import EmptyChannelError, InvalidUpdateError

__all__ = ("NamedBarrierValue", "NamedBarrierValueAfterFinish")


class NamedBarrierValue(Generic[Value], BaseChannel[Value, Value, set[Value]]):
    """Waits until every name in `names` was written; then available until consumed."""

    __slots__ = ("names", "seen")
    steps_without_writes = False

    def __init__(self, typ: Any, names: set[Value]) -> None:
        super().__init__(typ)
        self.names = names
        self.seen: set[Value] = set()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NamedBarrierValue) and other.names == self.names

    __hash__ = BaseChannel.__hash__

    @property
    def ValueType(self) -> Any:
        return self.typ

    @property
    def UpdateType(self) -> Any:
        return self.typ

    def _with_seen(self, seen: set[Value]) -> Self:
        new = self.__class__(self.typ, self.names)
        new.key = self.key
        new.seen = seen
        return new

    def copy(self) -> Self:
        return self._with_seen(set(self.seen))

    def checkpoint(self) -> Any:
        return set(self.seen)

    def from_checkpoint(self, checkpoint: Any) -> Self:
        return self._with_seen(set() if checkpoint is MISSING else set(checkpoint))

    def update(self, values: Sequence[Value]) -> bool:
        changed = False
        for value in values:
            if value not in self.names:
                raise InvalidUpdateError(f"At key '{self.key}': Value {value!r} not in {sorted(map(str, self.names))}")
            if value not in self.seen:
                self.seen.add(value)
                changed = True
        return changed

    def get(self) -> Value:
        if self.seen != self.names:
            raise EmptyChannelError()
        value: Value = None  # type: ignore[assignment]
        return value

    def is_available(self) -> bool:
        return self.seen == self.names

    def consume(self) -> bool:
        if self.seen == self.names:
            self.seen = set()
            return True
        return False


class NamedBarrierValueAfterFinish(NamedBarrierValue[Value]):
    """A `NamedBarrierValue` that becomes available only after `finish()` (deferred joins)."""

    __slots__ = ("finished",)

    def __init__(self, typ: Any, names: set[Value]) -> None:
        super().__init__(typ, names)
        self.finished = False

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NamedBarrierValueAfterFinish) and other.names == self.names

    __hash__ = BaseChannel.__hash__

    def _with_seen(self, seen: set[Value]) -> Self:
        new = super()._with_seen(seen)
        new.finished = False
        return new

    def copy(self) -> Self:
        new = super().copy()
        new.finished = self.finished
        return new

    def checkpoint(self) -> Any:
        return (set(self.seen), self.finished)

    def from_checkpoint(self, checkpoint: Any) -> Self:
        if checkpoint is MISSING:
            return self._with_seen(set())
        seen, finished = checkpoint
        new = self._with_seen(set(seen))
        new.finished = finished
        return new

    def get(self) -> Value:
        if not self.finished or self.seen != self.names:
            raise EmptyChannelError()
        value: Value = None  # type: ignore[assignment]
        return value

    def is_available(self) -> bool:
        return self.finished and self.seen == self.names

    def consume(self) -> bool:
        if self.finished and self.seen == self.names:
            self.finished = False
            self.seen = set()
            return True
        return False

    def finish(self) -> bool:
        if not self.finished and self.seen == self.names:
            self.finished = True
            return True
        return False
