"""The chat-model protocol: `BaseChatModel` with LangChain's `invoke`/`stream`/`bind_tools`/`with_structured_output`.

A provider implements `_generate` (one reply) and, to stream, `_stream` (reply chunks); async twins default
to running those in a worker thread. Everything callers see is built here once: input coercion, tool
binding, structured output, ids, and token streaming into a graph run's `messages` stream mode.
"""

from __future__ import annotations

import copy
import functools
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import anyio.to_thread

from graphrt._context import message_chunk_sink, running_task
from graphrt._message_ids import SOLE_ARGUMENT, copy_with_id, getrefcount, new_uuid4, set_id
from graphrt.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    convert_to_messages,
    message_chunk_to_message,
)
from graphrt.models._schema import ToolChoice, ToolSpec, normalize_tool_choice, tool_spec

__all__ = ("BaseChatModel", "CallOptions", "coerce_messages")


@dataclass(frozen=True, slots=True)
class CallOptions:
    """What one call asks of the provider besides the messages."""

    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = None
    stop: tuple[str, ...] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)
    """Other bound or per-call keyword arguments (e.g. `temperature`), passed to the provider's request."""


def coerce_messages(input: Any) -> list[BaseMessage]:
    """LangChain's accepted model inputs as messages: a string, a message, a prompt value, or a list of
    messages, `(role, content)` tuples, strings and dicts.

    Raises:
        TypeError: the input is none of those.
    """
    if type(input) is list:  # the usual input, checked first
        return convert_to_messages(input)
    if hasattr(input, "to_messages") and callable(input.to_messages):
        input = input.to_messages()
    if isinstance(input, str | BaseMessage):
        return convert_to_messages([input])
    if isinstance(input, Sequence) and not isinstance(input, bytes):
        return convert_to_messages(list(input))
    raise TypeError(
        f"Invalid input type {type(input).__name__} for a chat model: pass a string, a message, or a list of "
        "messages, (role, content) tuples or {'role': ..., 'content': ...} dicts."
    )


class BaseChatModel:
    """Base of graphrt's chat models; subclasses implement `_generate` and, to stream tokens, `_stream`."""

    provider: str = "graphrt"
    """Reported as `ls_provider` in `messages` stream metadata."""
    model_name: str = ""

    _options: CallOptions = CallOptions()
    _config: Mapping[str, Any] = {}

    # ------------------------------------------------------------ provider hooks

    def _generate(self, messages: list[BaseMessage], options: CallOptions) -> AIMessage:
        raise NotImplementedError(f"{type(self).__name__} does not implement _generate.")

    def _stream(self, messages: list[BaseMessage], options: CallOptions) -> Iterator[AIMessageChunk]:
        """Default: the whole reply as one chunk."""
        yield _as_chunk(self._generate(messages, options))

    async def _agenerate(self, messages: list[BaseMessage], options: CallOptions) -> AIMessage:
        return await anyio.to_thread.run_sync(functools.partial(self._generate, messages, options))

    async def _astream(self, messages: list[BaseMessage], options: CallOptions) -> AsyncIterator[AIMessageChunk]:
        chunks = self._stream(messages, options)
        while (chunk := await anyio.to_thread.run_sync(next, chunks, None)) is not None:
            yield chunk

    # ------------------------------------------------------------ public protocol

    def invoke(self, input: Any, config: Mapping[str, Any] | None = None, **kwargs: Any) -> AIMessage:
        """Reply to the messages; inside a graph run that streams `messages`, the reply streams token by token."""
        messages, options = coerce_messages(input), self._call_options(kwargs)
        sink = self._sink(config)
        if sink is None:
            return self._finish(self._generate(messages, options))
        total: AIMessageChunk | None = None
        for chunk in self._chunks(self._stream(messages, options)):
            sink(chunk)
            total = chunk if total is None else total + chunk
        return self._final(total)

    async def ainvoke(self, input: Any, config: Mapping[str, Any] | None = None, **kwargs: Any) -> AIMessage:
        """Async twin of `invoke`."""
        messages, options = coerce_messages(input), self._call_options(kwargs)
        sink = self._sink(config)
        if sink is None:
            return self._finish(await self._agenerate(messages, options))
        total: AIMessageChunk | None = None
        async for chunk in self._achunks(self._astream(messages, options)):
            sink(chunk)
            total = chunk if total is None else total + chunk
        return self._final(total)

    def stream(self, input: Any, config: Mapping[str, Any] | None = None, **kwargs: Any) -> Iterator[AIMessageChunk]:
        """Yield the reply as `AIMessageChunk`s (summing them gives the reply); the last has `chunk_position="last"`."""
        messages, options = coerce_messages(input), self._call_options(kwargs)
        sink = self._sink(config)
        for chunk in self._chunks(self._stream(messages, options)):
            if sink is not None:
                sink(chunk)
            yield chunk

    async def astream(
        self, input: Any, config: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> AsyncIterator[AIMessageChunk]:
        """Async twin of `stream`."""
        messages, options = coerce_messages(input), self._call_options(kwargs)
        sink = self._sink(config)
        async for chunk in self._achunks(self._astream(messages, options)):
            if sink is not None:
                sink(chunk)
            yield chunk

    def batch(self, inputs: Sequence[Any], config: Mapping[str, Any] | None = None, **kwargs: Any) -> list[AIMessage]:
        """`invoke` each input, in order."""
        return [self.invoke(item, config, **kwargs) for item in inputs]

    async def abatch(
        self, inputs: Sequence[Any], config: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> list[AIMessage]:
        """`ainvoke` the inputs concurrently; results in input order."""
        results: list[AIMessage | None] = [None] * len(inputs)

        async def one(i: int, item: Any) -> None:
            results[i] = await self.ainvoke(item, config, **kwargs)

        async with anyio.create_task_group() as group:
            for i, item in enumerate(inputs):
                group.start_soon(one, i, item)
        return [r for r in results if r is not None]

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: Any = None, **kwargs: Any) -> BaseChatModel:
        """A copy of the model that offers these tools on every call (and binds `kwargs`, like `bind`).

        Args:
            tools: graphrt or LangChain tools, functions, pydantic models, TypedDicts or schema dicts.
            tool_choice: None/"auto", "any"/"required", "none", a tool's name, or True (the only tool).
        """
        specs = tuple(tool_spec(t) for t in tools)
        choice = normalize_tool_choice(tool_choice, specs)
        return self._copy(
            replace(self._options, tools=specs, tool_choice=choice, extra={**self._options.extra, **kwargs})
        )

    def bind(self, **kwargs: Any) -> BaseChatModel:
        """A copy of the model that passes `kwargs` (e.g. `temperature`, `stop`) on every call."""
        stop = kwargs.pop("stop", None)
        options = replace(self._options, extra={**self._options.extra, **kwargs})
        if stop is not None:
            options = replace(options, stop=tuple([stop] if isinstance(stop, str) else stop))
        return self._copy(options)

    def with_config(self, config: Mapping[str, Any] | None = None, **kwargs: Any) -> BaseChatModel:
        """A copy whose calls use this config by default (e.g. `tags=["nostream"]` to keep it out of `messages`)."""
        clone = copy.copy(self)
        clone._config = {**self._config, **(config or {}), **kwargs}
        return clone

    def with_structured_output(
        self, schema: Any, *, include_raw: bool = False, method: str = "function_calling", **kwargs: Any
    ) -> Any:
        """A runnable whose `invoke` returns the reply parsed as `schema`.

        `schema` is a pydantic model (an instance comes back), a TypedDict or a JSON schema with a `title`
        (a dict comes back). The model is made to answer through a tool named after the schema. With
        `include_raw=True` the result is `{"raw": AIMessage, "parsed": ..., "parsing_error": ...}` and a
        parsing problem is reported there instead of raised.
        """
        from graphrt.models._structured import StructuredOutputModel

        if method not in ("function_calling", "json_schema", "tool_calling"):
            raise ValueError(
                f"with_structured_output(method={method!r}) is not supported; graphrt uses tool calling "
                "('function_calling') for every provider."
            )
        return StructuredOutputModel(self, schema, include_raw=include_raw, bind_kwargs=kwargs)

    # ------------------------------------------------------------ plumbing

    def _copy(self, options: CallOptions) -> BaseChatModel:
        clone = copy.copy(self)
        clone._options = options
        return clone

    def _call_options(self, kwargs: dict[str, Any]) -> CallOptions:
        if not kwargs:
            return self._options
        stop = kwargs.pop("stop", None)
        options = replace(self._options, extra={**self._options.extra, **kwargs})
        if stop is not None:
            options = replace(options, stop=tuple([stop] if isinstance(stop, str) else stop))
        return options

    def _ls_metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {"ls_provider": self.provider, "ls_model_type": "chat"}
        if self.model_name:
            metadata["ls_model_name"] = self.model_name
        temperature = self._options.extra.get("temperature", getattr(self, "temperature", None))
        if temperature is not None:
            metadata["ls_temperature"] = temperature
        return metadata

    def _sink(self, config: Mapping[str, Any] | None) -> Any:
        task = running_task()
        if task is None or task.run.message_sink is None:
            return None  # the usual case, decided before any metadata is built
        tags = [*self._config.get("tags", ()), *((config or {}).get("tags", ()))]
        if "nostream" in tags:
            return None
        return message_chunk_sink(self._ls_metadata())

    def _chunks(self, chunks: Iterator[AIMessageChunk]) -> Iterator[AIMessageChunk]:
        """Pass each chunk on as soon as the provider makes it, with the reply's id.

        The last chunk has `chunk_position="last"`: a provider may mark its own last chunk; otherwise an
        empty marked chunk follows (as in LangChain), since holding a chunk back to mark it would delay it.
        """
        run_id = f"lc_run--{uuid.uuid4()}"
        last: AIMessageChunk | None = None
        for chunk in chunks:
            last = _with_id(chunk, run_id)
            yield last
        if last is not None and last.chunk_position != "last":
            yield _last_marker(last)

    async def _achunks(self, chunks: AsyncIterator[AIMessageChunk]) -> AsyncIterator[AIMessageChunk]:
        run_id = f"lc_run--{uuid.uuid4()}"
        last: AIMessageChunk | None = None
        async for chunk in chunks:
            last = _with_id(chunk, run_id)
            yield last
        if last is not None and last.chunk_position != "last":
            yield _last_marker(last)

    def _final(self, total: AIMessageChunk | None) -> AIMessage:
        if total is None:
            raise RuntimeError(f"{type(self).__name__} streamed no chunks for its reply.")
        message = message_chunk_to_message(total)
        assert isinstance(message, AIMessage)
        return message

    def _finish(self, message: AIMessage) -> AIMessage:
        if message.id is None:
            if getrefcount(message) <= SOLE_ARGUMENT and type(message) is AIMessage:
                # The reply `_generate` just made and kept no reference to: it takes its id itself (as
                # in LangChain), so it is the one object the graph's write, state and checkpoint hold.
                set_id(message, f"lc_run--{new_uuid4()}")
                return message
            return copy_with_id(message, f"lc_run--{new_uuid4()}")
        return message


def _with_id(chunk: AIMessageChunk, run_id: str) -> AIMessageChunk:
    return chunk if chunk.id is not None else chunk.model_copy(update={"id": run_id})


def _last_marker(last: AIMessageChunk) -> AIMessageChunk:
    """The empty chunk that ends a stream whose provider did not mark its last chunk."""
    return AIMessageChunk("" if isinstance(last.content, str) else [], id=last.id, chunk_position="last")


def _as_chunk(message: AIMessage) -> AIMessageChunk:
    """A whole reply as the one (so also the last) chunk of a stream."""
    data = message.model_dump(exclude={"type"})
    return AIMessageChunk(**data, chunk_position="last")
