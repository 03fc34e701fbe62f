"""`LangChainChatModel`: use a LangChain chat model (when `langchain_core` is installed) as a graphrt model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from graphrt.messages import AIMessage, AIMessageChunk, BaseMessage, message_to_dict, messages_from_dict
from graphrt.models._base import BaseChatModel, CallOptions

__all__ = ("LangChainChatModel", "as_chat_model")


class LangChainChatModel(BaseChatModel):
    """Wraps a `langchain_core` chat model: graphrt messages go in, graphrt messages come out.

    Tools, tool choice, stop sequences and bound keyword arguments are passed through the wrapped model's
    own `bind_tools` / `bind`, so they mean what that integration makes of them.
    """

    provider = "langchain"

    def __init__(self, model: Any) -> None:
        if not _is_langchain_model(model):
            raise TypeError(f"LangChainChatModel wraps a langchain_core chat model, got {type(model).__name__}.")
        self.model = model
        self.model_name = str(getattr(model, "model_name", None) or getattr(model, "model", None) or "")
        self.provider = str(getattr(model, "_llm_type", "langchain"))

    def __repr__(self) -> str:
        return f"LangChainChatModel({type(self.model).__name__})"

    def _bound(self, options: CallOptions) -> Any:
        model = self.model
        if options.tools:
            tools = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": dict(t.parameters)},
                }
                for t in options.tools
            ]
            choice = options.tool_choice
            kwargs = {} if choice is None else {"tool_choice": choice[1] if isinstance(choice, tuple) else choice}
            model = model.bind_tools(tools, **kwargs)
        extra = dict(options.extra)
        if options.stop is not None:
            extra["stop"] = list(options.stop)
        return model.bind(**extra) if extra else model

    def _generate(self, messages: list[BaseMessage], options: CallOptions) -> AIMessage:
        return _reply(self._bound(options).invoke(_to_langchain(messages)))

    async def _agenerate(self, messages: list[BaseMessage], options: CallOptions) -> AIMessage:
        return _reply(await self._bound(options).ainvoke(_to_langchain(messages)))

    def _stream(self, messages: list[BaseMessage], options: CallOptions) -> Iterator[AIMessageChunk]:
        for chunk in self._bound(options).stream(_to_langchain(messages)):
            yield _chunk(chunk)

    async def _astream(self, messages: list[BaseMessage], options: CallOptions) -> AsyncIterator[AIMessageChunk]:
        async for chunk in self._bound(options).astream(_to_langchain(messages)):
            yield _chunk(chunk)


def as_chat_model(model: Any) -> BaseChatModel:
    """`model` itself if it is a graphrt chat model; a `LangChainChatModel` around a LangChain one.

    Raises:
        TypeError: `model` is neither.
    """
    if isinstance(model, BaseChatModel):
        return model
    if _is_langchain_model(model):
        return LangChainChatModel(model)
    raise TypeError(
        f"Expected a chat model (graphrt.models.BaseChatModel or a LangChain chat model), got {type(model).__name__}."
    )


def _is_langchain_model(model: Any) -> bool:
    try:
        from langchain_core.language_models import BaseChatModel as LangChainBase
    except ImportError:
        return False
    return isinstance(model, LangChainBase)


def _to_langchain(messages: list[BaseMessage]) -> list[Any]:
    from langchain_core.messages import messages_from_dict as lc_messages_from_dict

    return list(lc_messages_from_dict([message_to_dict(m) for m in messages]))


def from_langchain(message: Any) -> BaseMessage:
    """A `langchain_core` message as graphrt's."""
    [converted] = messages_from_dict([{"type": message.type, "data": message.model_dump()}])
    return converted


def _reply(message: Any) -> AIMessage:
    converted = from_langchain(message)
    if not isinstance(converted, AIMessage):
        raise TypeError(f"The LangChain model answered with a {type(converted).__name__}, not an AI message.")
    return converted


def _chunk(chunk: Any) -> AIMessageChunk:
    converted = from_langchain(chunk)
    if not isinstance(converted, AIMessageChunk):
        raise TypeError(f"The LangChain model streamed a {type(converted).__name__}, not an AIMessageChunk.")
    return converted
