"""Fixtures of the engine suite: every behaviour runs once with the sync API and once with the async API."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from graphrt.config import RunnableConfig

MODES = ("sync", "async")


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    """`sync` drives `invoke`/`stream`; `async` drives `ainvoke`/`astream`."""
    value: str = request.param
    return value


def run(graph: Any, input: Any, mode: str, config: RunnableConfig | None = None, **kw: Any) -> Any:
    """`graph.invoke(...)` or `graph.ainvoke(...)`, depending on `mode`."""
    if mode == "sync":
        return graph.invoke(input, config, **kw)
    return asyncio.run(graph.ainvoke(input, config, **kw))


def stream(graph: Any, input: Any, mode: str, config: RunnableConfig | None = None, **kw: Any) -> list[Any]:
    """Every chunk of `graph.stream(...)` or `graph.astream(...)`, depending on `mode`."""
    if mode == "sync":
        return list(graph.stream(input, config, **kw))

    async def collect() -> list[Any]:
        return [chunk async for chunk in graph.astream(input, config, **kw)]

    return asyncio.run(collect())


def exact(message: str) -> str:
    """A `match=` pattern that accepts exactly `message`."""
    return f"^{re.escape(message)}$"


def starts(message: str) -> str:
    """A `match=` pattern that accepts a message beginning with `message` (LangGraph's stem)."""
    return f"^{re.escape(message)}"
