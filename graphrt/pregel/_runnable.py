"""What a compiled graph offers as a LangChain-style runnable besides running: batches, names, schemas.

`Pregel` inherits these; a `CompiledStateGraph` names its input and output types through `_input_type` and
`_output_type` (its builder's schemas).
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, NotRequired, get_type_hints

import typing_extensions
from pydantic import BaseModel, RootModel, TypeAdapter, create_model

from graphrt.config import RunnableConfig

__all__ = ("RunnableMixin", "json_schema_of")


class RunnableMixin:
    """`batch`/`abatch`, `get_name`, and the input, output and context schemas of a compiled graph."""

    name: str
    context_schema: Any

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        raise NotImplementedError

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        raise NotImplementedError

    # ------------------------------------------------------------ batches

    def batch(
        self,
        inputs: Sequence[Any],
        config: RunnableConfig | Sequence[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """`invoke` each input (in threads, at most `config["max_concurrency"]` at once); results in order.

        `config` is one config for every input or a list with one per input. With `return_exceptions=True` an
        input whose run raised gets its exception in the result instead of the call raising.
        """
        results: list[Any] = [None] * len(inputs)
        for index, result in self.batch_as_completed(inputs, config, return_exceptions=return_exceptions, **kwargs):
            results[index] = result
        return results

    def batch_as_completed(
        self,
        inputs: Sequence[Any],
        config: RunnableConfig | Sequence[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> Iterator[tuple[int, Any]]:
        """`batch`, yielding `(index, result)` as each run finishes."""
        configs = _configs(config, len(inputs))

        def one(index: int) -> tuple[int, Any]:
            try:
                return index, self.invoke(inputs[index], configs[index], **kwargs)
            except Exception as exc:
                if return_exceptions:
                    return index, exc
                raise

        if len(inputs) <= 1:
            yield from map(one, range(len(inputs)))
            return
        limit = _max_concurrency(configs)
        with ThreadPoolExecutor(max_workers=limit or min(len(inputs), 32)) as pool:
            for done in as_completed([pool.submit(one, i) for i in range(len(inputs))]):
                yield done.result()

    async def abatch(
        self,
        inputs: Sequence[Any],
        config: RunnableConfig | Sequence[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[Any]:
        """`ainvoke` each input concurrently (at most `config["max_concurrency"]` at once); results in order."""
        results: list[Any] = [None] * len(inputs)
        async for index, result in self.abatch_as_completed(
            inputs, config, return_exceptions=return_exceptions, **kwargs
        ):
            results[index] = result
        return results

    async def abatch_as_completed(
        self,
        inputs: Sequence[Any],
        config: RunnableConfig | Sequence[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> AsyncIterator[tuple[int, Any]]:
        """`abatch`, yielding `(index, result)` as each run finishes."""
        configs = _configs(config, len(inputs))
        limit = _max_concurrency(configs)
        gate = asyncio.Semaphore(limit) if limit else None

        async def one(index: int) -> tuple[int, Any]:
            try:
                if gate is None:
                    return index, await self.ainvoke(inputs[index], configs[index], **kwargs)
                async with gate:
                    return index, await self.ainvoke(inputs[index], configs[index], **kwargs)
            except Exception as exc:
                if return_exceptions:
                    return index, exc
                raise

        runs = [asyncio.ensure_future(one(i)) for i in range(len(inputs))]
        try:
            for done in asyncio.as_completed(runs):
                yield await done
        finally:
            for run in runs:
                run.cancel()

    # ------------------------------------------------------------ names and schemas

    def get_name(self, suffix: str | None = None, *, name: str | None = None) -> str:
        """The graph's name (or `name`), with `suffix` appended as LangChain does ("LangGraphInput")."""
        base = name or self.name or type(self).__name__
        if suffix is None:
            return base
        return base + suffix if base[:1].isupper() else f"{base}_{suffix.lower()}"

    def _input_type(self) -> Any:
        return Any

    def _output_type(self) -> Any:
        return Any

    @property
    def input_schema(self) -> type[BaseModel]:
        return self.get_input_schema()

    @property
    def output_schema(self) -> type[BaseModel]:
        return self.get_output_schema()

    def get_input_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        """The graph's input as a pydantic model (the state schema itself when it is one)."""
        return _model_of(self._input_type(), self.get_name("Input"))

    def get_output_schema(self, config: RunnableConfig | None = None) -> type[BaseModel]:
        """The graph's output as a pydantic model (the output schema itself when it is one)."""
        return _model_of(self._output_type(), self.get_name("Output"))

    def get_input_jsonschema(self, config: RunnableConfig | None = None) -> dict[str, Any]:
        """The JSON Schema of the graph's input (its input schema's keys, types and defaults)."""
        return json_schema_of(self._input_type(), self.get_name("Input"))

    def get_output_jsonschema(self, config: RunnableConfig | None = None) -> dict[str, Any]:
        """The JSON Schema of what `invoke` returns."""
        return json_schema_of(self._output_type(), self.get_name("Output"))

    def get_context_jsonschema(self) -> dict[str, Any] | None:
        """The JSON Schema of the run context (`context_schema`), or None when the graph has none."""
        schema = self.context_schema
        if schema is None:
            return None
        if not (_is_model(schema) or typing_extensions.is_typeddict(schema) or dataclasses.is_dataclass(schema)):
            raise ValueError(
                f"Invalid context schema type: {schema!r}. Use a pydantic model, a TypedDict or a dataclass."
            )
        return json_schema_of(schema, self.get_name("Context"))


def json_schema_of(schema: Any, name: str) -> dict[str, Any]:
    """JSON Schema for a state-like type: a pydantic model, a TypedDict, a dataclass, or any other type."""
    if _is_model(schema):
        return schema.model_json_schema()  # type: ignore[no-any-return]
    if typing_extensions.is_typeddict(schema):
        return TypeAdapter(_portable(schema)).json_schema()
    if dataclasses.is_dataclass(schema) and isinstance(schema, type):
        return {**TypeAdapter(schema).json_schema(), "title": name}  # titled like LangGraph's: "LangGraphInput"
    return _model_of(schema, name).model_json_schema()


def _model_of(schema: Any, name: str) -> type[BaseModel]:
    if _is_model(schema):
        return schema  # type: ignore[no-any-return]
    root: type[BaseModel] = create_model(name, __base__=RootModel[_portable(schema)])  # type: ignore[call-overload,misc]
    return root


def _portable(schema: Any) -> Any:
    """`schema`, or for a `typing.TypedDict` (which pydantic refuses before Python 3.12) the same keys as a
    `typing_extensions.TypedDict`."""
    if sys.version_info >= (3, 12) or not typing_extensions.is_typeddict(schema) or type(schema).__module__ != "typing":
        return schema
    hints = get_type_hints(schema, include_extras=True)
    required = schema.__required_keys__
    fields = {key: hint if key in required else NotRequired[hint] for key, hint in hints.items()}
    return typing_extensions.TypedDict(schema.__name__, fields)  # type: ignore[operator]


def _is_model(schema: Any) -> bool:
    return isinstance(schema, type) and issubclass(schema, BaseModel)


def _configs(config: RunnableConfig | Sequence[RunnableConfig] | None, n: int) -> list[RunnableConfig | None]:
    if config is None or isinstance(config, dict):
        return [config] * n
    if len(config) != n:
        raise ValueError(f"batch() got {n} inputs but {len(config)} configs: give one config, or one per input.")
    return list(config)


def _max_concurrency(configs: list[RunnableConfig | None]) -> int | None:
    limits = [limit for c in configs if c and (limit := c.get("max_concurrency"))]
    return min(limits) if limits else None
