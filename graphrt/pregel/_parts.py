"""`version="v2"` output: each stream chunk as a typed part, and `invoke`'s result as a `GraphOutput`.

A part is `{"type": mode, "ns": namespace, "data": chunk}`; a `values` part also carries the interrupts
raised at that point (taken out of the chunk's `__interrupt__` key). The root graph's values, and the values
of its checkpoints, become instances of its output and state schemas when those are pydantic models or
dataclasses. A subgraph's stay dicts: its schema may not be its parent's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from graphrt.constants import START
from graphrt.pregel._spec import INTERRUPT
from graphrt.types import GraphOutput, Interrupt

__all__ = ("Parts", "check_version")

Mapper = Callable[[dict[str, Any]], Any]


def check_version(method: str, version: str) -> bool:
    """Whether `version` asks for typed parts ("v2"); anything but "v1" and "v2" is refused."""
    if version == "v2":
        return True
    if version != "v1":
        raise ValueError(f"{method}(version={version!r}): use 'v1' (the default: plain chunks) or 'v2' (typed parts).")
    return False


@dataclass(frozen=True, slots=True)
class Parts:
    """Builds a run's v2 parts, with the schemas its values are turned into (None: they stay dicts)."""

    output: Mapper | None = None
    state: Mapper | None = None

    def part(self, ns: tuple[str, ...], mode: str, chunk: Any) -> dict[str, Any]:
        if mode == "values":
            interrupts: tuple[Interrupt, ...] = ()
            if isinstance(chunk, dict):
                if INTERRUPT in chunk:
                    interrupts = tuple(chunk[INTERRUPT])
                    chunk = {k: v for k, v in chunk.items() if k != INTERRUPT}
                if not ns and self.output is not None:
                    chunk = self.output(chunk)
            return {"type": "values", "ns": ns, "data": chunk, "interrupts": interrupts}
        if not ns and self.state is not None:
            if mode == "checkpoints":
                chunk = _with_state(chunk, self.state)
            elif mode == "debug" and chunk.get("type") == "checkpoint":
                chunk = {**chunk, "payload": _with_state(chunk["payload"], self.state)}
        return {"type": mode, "ns": ns, "data": chunk}

    def result(self, value: Any, interrupts: Iterable[Interrupt]) -> GraphOutput[Any]:
        if isinstance(value, dict) and self.output is not None:
            value = self.output(value)
        return GraphOutput(value, tuple(interrupts))


def _with_state(payload: dict[str, Any], mapper: Mapper) -> dict[str, Any]:
    """A checkpoint payload with its values as the state schema (not the input checkpoint's: it has no state yet)."""
    values = payload.get("values")
    if isinstance(values, dict) and START not in payload.get("next", ()):
        return {**payload, "values": mapper(values)}
    return payload
