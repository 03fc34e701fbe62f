"""`model.with_structured_output(schema)`: the model answers through a forced tool, read back as the schema."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from graphrt.messages import AIMessage
from graphrt.models._schema import OutputParserError, OutputSchema

if TYPE_CHECKING:
    from graphrt.models._base import BaseChatModel

__all__ = ("StructuredOutputModel",)


class StructuredOutputModel:
    """Runs a chat model bound to one forced tool and returns the tool call's arguments parsed as the schema."""

    def __init__(self, model: BaseChatModel, schema: Any, *, include_raw: bool, bind_kwargs: Mapping[str, Any]) -> None:
        self.output = OutputSchema(schema)
        self.include_raw = include_raw
        self.bound = model.bind_tools([self.output.spec], tool_choice=self.output.spec.name, **bind_kwargs)

    def invoke(self, input: Any, config: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """The reply parsed as the schema (or the `{"raw", "parsed", "parsing_error"}` dict with `include_raw`)."""
        return self._read(self.bound.invoke(input, config, **kwargs))

    async def ainvoke(self, input: Any, config: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """Async twin of `invoke`."""
        return self._read(await self.bound.ainvoke(input, config, **kwargs))

    def batch(self, inputs: Sequence[Any], config: Mapping[str, Any] | None = None, **kwargs: Any) -> list[Any]:
        """`invoke` each input, in order."""
        return [self.invoke(item, config, **kwargs) for item in inputs]

    async def abatch(self, inputs: Sequence[Any], config: Mapping[str, Any] | None = None, **kwargs: Any) -> list[Any]:
        """`ainvoke` the inputs concurrently; results in input order."""
        results: list[Any] = [None] * len(inputs)

        async def one(i: int, item: Any) -> None:
            results[i] = await self.ainvoke(item, config, **kwargs)

        async with anyio.create_task_group() as group:
            for i, item in enumerate(inputs):
                group.start_soon(one, i, item)
        return results

    def _read(self, message: AIMessage) -> Any:
        try:
            parsed = self._parse(message)
        except OutputParserError as exc:
            if self.include_raw:
                return {"raw": message, "parsed": None, "parsing_error": exc}
            raise
        if self.include_raw:
            return {"raw": message, "parsed": parsed, "parsing_error": None}
        return parsed

    def _parse(self, message: AIMessage) -> Any:
        name = self.output.spec.name
        calls = [c for c in message.tool_calls if c["name"] == name] or list(message.tool_calls)
        if not calls:
            bad = [c for c in message.invalid_tool_calls if c.get("name") == name]
            if bad:
                raise OutputParserError(
                    f"The model's arguments for output schema '{name}' are not valid JSON: {bad[0].get('args')!r}",
                    llm_output=bad[0].get("args"),
                )
            raise OutputParserError(
                f"The model answered without calling the output schema tool '{name}' (text: {message.text[:200]!r}).",
                llm_output=message.text,
            )
        return self.output.parse(calls[0]["args"])

    def __repr__(self) -> str:
        return f"StructuredOutputModel(schema={self.output.spec.name!r}, model={self.bound!r})"
