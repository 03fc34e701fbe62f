"""`ChannelWriteEntry`: one write a `NodeBuilder` node makes after it runs (LangGraph's `pregel._write`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ("PASSTHROUGH", "ChannelWriteEntry")


class _Passthrough:
    def __repr__(self) -> str:
        return "PASSTHROUGH"


PASSTHROUGH: Any = _Passthrough()
"""Write the node's output itself (the default value of a `ChannelWriteEntry`)."""


@dataclass(frozen=True, slots=True)
class ChannelWriteEntry:
    """Write to `channel`: the node's output (default), a fixed `value`, or `mapper(output)`.

    With `skip_none=True` nothing is written when the value is None (a node that returns None stops a cycle).
    """

    channel: str
    value: Any = PASSTHROUGH
    skip_none: bool = False
    mapper: Callable[[Any], Any] | None = None

    def value_for(self, output: Any) -> Any:
        if self.mapper is not None:
            return self.mapper(output)
        return output if self.value is PASSTHROUGH else self.value
