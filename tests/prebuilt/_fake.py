"""A minimal chat model for the prebuilt tests: replies from a list, records what it was given.

Independent of `graphrt.models` on purpose, so these tests pin the agent loop against the bare protocol
(`bind_tools`, `invoke`/`ainvoke`, `with_structured_output`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphrt.messages import AIMessage, BaseMessage


class FakeModel:
    def __init__(self, replies: Sequence[AIMessage], structured: Sequence[Any] = ()) -> None:
        self.replies = list(replies)
        self.structured = list(structured)
        self.calls: list[list[BaseMessage]] = []
        self.bound: list[Any] = []
        self.structured_calls: list[tuple[Any, list[BaseMessage]]] = []

    def bind_tools(self, tools: Sequence[Any]) -> FakeModel:
        self.bound = list(tools)
        return self

    def invoke(self, messages: Sequence[BaseMessage]) -> AIMessage:
        self.calls.append(list(messages))
        if not self.replies:
            raise AssertionError("FakeModel ran out of replies")
        return self.replies.pop(0)

    async def ainvoke(self, messages: Sequence[BaseMessage]) -> AIMessage:
        return self.invoke(messages)

    def with_structured_output(self, schema: Any) -> _Structured:
        return _Structured(self, schema)


class _Structured:
    def __init__(self, model: FakeModel, schema: Any) -> None:
        self.model, self.schema = model, schema

    def invoke(self, messages: Sequence[BaseMessage]) -> Any:
        self.model.structured_calls.append((self.schema, list(messages)))
        return self.model.structured.pop(0)

    async def ainvoke(self, messages: Sequence[BaseMessage]) -> Any:
        return self.invoke(messages)


def ai(content: str = "", *calls: tuple[str, dict[str, Any], str], id: str | None = None) -> AIMessage:
    """An AI reply, optionally with tool calls given as (name, args, id)."""
    return AIMessage(content, id=id, tool_calls=[{"name": n, "args": a, "id": i} for n, a, i in calls])
