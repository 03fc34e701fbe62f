"""`RunnableConfig` and the accessors a node uses to reach its run: config, store, stream writer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

if TYPE_CHECKING:
    from graphrt.store.base import BaseStore
    from graphrt.types import StreamWriter

__all__ = ("RunnableConfig", "get_config", "get_store", "get_stream_writer")


class RunnableConfig(TypedDict, total=False):
    """Configuration of one run: LangChain's keys, so configs pass between the two unchanged."""

    tags: list[str]
    metadata: dict[str, Any]
    callbacks: Any
    run_name: str
    max_concurrency: int | None
    recursion_limit: int
    configurable: dict[str, Any]
    run_id: Any


CONFIG_KEYS: Sequence[str] = (
    "tags",
    "metadata",
    "callbacks",
    "run_name",
    "max_concurrency",
    "recursion_limit",
    "configurable",
    "run_id",
)


def get_config() -> RunnableConfig:
    """The config of the task running now. Raises RuntimeError outside a graph run."""
    from graphrt._context import current_task

    return current_task("get_config").config


def get_store() -> BaseStore | None:
    """The store given to `compile(store=...)` (None without one). Raises RuntimeError outside a graph run."""
    from graphrt._context import current_task

    return current_task("get_store").run.store


def get_stream_writer() -> StreamWriter:
    """A writer for the `custom` stream mode; a no-op when that mode is not streamed."""
    from graphrt._context import current_task

    writer: Callable[[Any], None] = current_task("get_stream_writer").run.stream_writer
    return writer
