"""`Topic`: a pub/sub channel collecting every value written (used for `Send` packets)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Generic, Self

from graphrt.channels.base import MISSING, BaseChannel, Value
from graphrt.errors import EmptyChannelError

__all__ = ("Topic",)


def _flatten(values: Sequence[Any]) -> Iterator[Any]:
    for value in values:
        if isinstance(value, list):
            yield from value
        else:
            yield value


class Topic(Generic[Value], BaseChannel[Sequence[Value], Value | list[Value], list[Value]]):
    """Collects the values written (a list write is flattened).

    With `accumulate=False` (default) a step that writes replaces what earlier steps collected, and a
    step that does not write clears it; with `accumulate=True` values pile up across steps. The stored
    list is never mutated in place, so a saved checkpoint stays valid.
    """

    __slots__ = ("accumulate", "values")

    def __init__(self, typ: Any, accumulate: bool = False) -> None:
        super().__init__(typ)
        self.accumulate = accumulate
        self.values: list[Value] = []

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Topic) and other.accumulate == self.accumulate

    __hash__ = BaseChannel.__hash__

    @property
    def ValueType(self) -> Any:
        return Sequence[self.typ]  # type: ignore[name-defined]

    @property
    def UpdateType(self) -> Any:
        return self.typ | list[self.typ]  # type: ignore[name-defined]

    def copy(self) -> Self:
        new = self.__class__(self.typ, self.accumulate)
        new.key = self.key
        new.values = self.values
        return new

    def checkpoint(self) -> Any:
        return self.values

    def from_checkpoint(self, checkpoint: Any) -> Self:
        new = self.__class__(self.typ, self.accumulate)
        new.key = self.key
        if checkpoint is not MISSING:
            new.values = list(checkpoint)
        return new

    def update(self, values: Sequence[Value | list[Value]]) -> bool:
        new = list(_flatten(values))
        if self.accumulate:
            if not new:
                return False
            self.values = [*self.values, *new]
            return True
        changed = bool(self.values) or bool(new)
        self.values = new
        return changed

    def get(self) -> Sequence[Value]:
        if not self.values:
            raise EmptyChannelError()
        return list(self.values)

    def is_available(self) -> bool:
        return bool(self.values)
