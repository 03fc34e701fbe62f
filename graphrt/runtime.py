"""`Runtime`: what a node can reach of its run — context, store, stream writer, previous return value."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

if TYPE_CHECKING:
    from graphrt.store.base import BaseStore
    from graphrt.types import StreamWriter

__all__ = ("Runtime", "get_runtime")

ContextT = TypeVar("ContextT")


def _no_op_writer(_chunk: Any) -> None:
    return None


@dataclass(frozen=True, slots=True)
class Runtime(Generic[ContextT]):
    """Run-scoped values injected into nodes that declare a `runtime: Runtime[Ctx]` parameter."""

    __graphrt_inject__: ClassVar[str] = "runtime"

    context: ContextT = field(default=None)  # type: ignore[assignment]
    """The `context=` passed to `invoke`/`stream`, typed by the graph's `context_schema`."""
    store: BaseStore | None = None
    """The store given to `compile(store=...)`."""
    stream_writer: StreamWriter = field(default=_no_op_writer)
    """Writes to the `custom` stream mode."""
    previous: Any = None
    """The previous return value of this thread's entrypoint (functional API)."""

    def override(self, **overrides: Any) -> Runtime[ContextT]:
        """A copy with some fields replaced."""
        return replace(self, **overrides)


def get_runtime(context_schema: type[ContextT] | None = None) -> Runtime[ContextT]:
    """The runtime of the task running now. Raises RuntimeError outside a graph run."""
    from graphrt._context import current_task

    runtime: Runtime[ContextT] = current_task("get_runtime").runtime
    return runtime
