"""`ChatOpenAI`: any OpenAI-compatible Chat Completions endpoint (OpenAI, vLLM, Ollama, LM Studio, ...)."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

from graphrt.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    InvalidToolCall,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UsageMetadata,
    tool_call_chunk,
)
from graphrt.models._base import BaseChatModel, CallOptions
from graphrt.models._http import HttpClient, MalformedResponseError, MissingAPIKeyError, RetryPolicy, Secret

__all__ = ("ChatOpenAI",)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
PROVIDER = "openai"


class ChatOpenAI(BaseChatModel):
    """A chat model behind an OpenAI-compatible `{base_url}/chat/completions` endpoint.

    Args:
        model: The model name the endpoint expects, e.g. "gpt-4o-mini".
        api_key: Defaults to `$OPENAI_API_KEY`. Required for OpenAI's own endpoint; for another base URL
            it is optional (local servers often need none) and sent as a bearer token when given.
        base_url: The API root; defaults to `$OPENAI_BASE_URL`, then OpenAI's.
        temperature, max_tokens, stop: Sent with every request when set.
        timeout: Seconds to wait for each request.
        max_retries: Retries on HTTP 408/409/429/5xx and connection errors, with backoff (honouring
            `Retry-After`).
        stream_usage: Ask for token usage at the end of a stream (`stream_options.include_usage`).
        model_kwargs: Other request fields, sent as given.
    """

    provider = PROVIDER

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: list[str] | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        stream_usage: bool = True,
        model_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if not model:
            raise ValueError("ChatOpenAI needs a model name, e.g. ChatOpenAI('gpt-4o-mini').")
        self.model_name = model
        self.base_url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key and self.base_url.rstrip("/") == DEFAULT_BASE_URL:
            raise MissingAPIKeyError("OpenAI", "OPENAI_API_KEY")
        self._key = Secret(key) if key else None
        self.temperature, self.max_tokens, self.stop = temperature, max_tokens, stop
        self.stream_usage = stream_usage
        self.model_kwargs = dict(model_kwargs or {})
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = HttpClient(
            PROVIDER,
            self.base_url,
            headers,
            secrets=(self._key,) if self._key else (),
            timeout=timeout,
            retry=RetryPolicy(max_retries=max_retries),
        )

    def __repr__(self) -> str:
        return f"ChatOpenAI(model={self.model_name!r}, base_url={self.base_url!r})"

    # ------------------------------------------------------------ provider hooks

    def _generate(self, messages: list[BaseMessage], options: CallOptions) -> AIMessage:
        return self._read(self._http.post_json("/chat/completions", self._body(messages, options, stream=False)))

    async def _agenerate(self, messages: list[BaseMessage], options: CallOptions) -> AIMessage:
        body = self._body(messages, options, stream=False)
        return self._read(await self._http.apost_json("/chat/completions", body))

    def _stream(self, messages: list[BaseMessage], options: CallOptions) -> Iterator[AIMessageChunk]:
        for _, data in self._http.stream_events("/chat/completions", self._body(messages, options, stream=True)):
            chunk = self._read_event(data)
            if chunk is not None:
                yield chunk

    async def _astream(self, messages: list[BaseMessage], options: CallOptions) -> AsyncIterator[AIMessageChunk]:
        body = self._body(messages, options, stream=True)
        async for _, data in self._http.astream_events("/chat/completions", body):
            chunk = self._read_event(data)
            if chunk is not None:
                yield chunk

    # ------------------------------------------------------------ request

    def _body(self, messages: list[BaseMessage], options: CallOptions, *, stream: bool) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model_name, "messages": [_to_openai(m) for m in messages]}
        for key, value in (("temperature", self.temperature), ("max_tokens", self.max_tokens)):
            if value is not None:
                body[key] = value
        stop = options.stop if options.stop is not None else self.stop
        if stop:
            body["stop"] = list(stop)
        if options.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description, "parameters": dict(t.parameters)},
                }
                for t in options.tools
            ]
        choice = options.tool_choice
        if choice is not None:
            body["tool_choice"] = (
                {"type": "function", "function": {"name": choice[1]}}
                if isinstance(choice, tuple)
                else ("required" if choice == "any" else choice)
            )
        if stream:
            body["stream"] = True
            if self.stream_usage:
                body["stream_options"] = {"include_usage": True}
        body.update(self.model_kwargs)
        body.update(options.extra)
        return body

    # ------------------------------------------------------------ response

    def _read(self, data: dict[str, Any]) -> AIMessage:
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0].get("message"), dict):
            raise MalformedResponseError(PROVIDER, "expected 'choices[0].message'", json.dumps(data))
        message, choice = choices[0]["message"], choices[0]
        calls, invalid = _read_tool_calls(message.get("tool_calls") or [])
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise MalformedResponseError(PROVIDER, "'content' is not text", json.dumps(data))
        metadata = {
            "model_name": data.get("model", self.model_name),
            "model_provider": PROVIDER,
            "finish_reason": choice.get("finish_reason"),
            "id": data.get("id"),
        }
        if data.get("usage"):
            metadata["token_usage"] = data["usage"]
        return AIMessage(
            content or "",
            id=data.get("id"),
            tool_calls=calls,
            invalid_tool_calls=invalid,
            usage_metadata=_usage(data.get("usage")),
            response_metadata={k: v for k, v in metadata.items() if v is not None},
        )

    def _read_event(self, data: str) -> AIMessageChunk | None:
        if data.strip() == "[DONE]":
            return None
        try:
            event = json.loads(data)
        except ValueError:
            raise MalformedResponseError(PROVIDER, "a stream event is not JSON", data) from None
        if not isinstance(event, dict):
            raise MalformedResponseError(PROVIDER, "a stream event is not a JSON object", data)
        if "error" in event:
            error = event["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise MalformedResponseError(PROVIDER, f"the stream reported an error: {message}", data)
        choices = event.get("choices") or []
        usage = _usage(event.get("usage"))
        if not choices:
            return AIMessageChunk("", id=event.get("id"), usage_metadata=usage) if usage else None
        delta, metadata = choices[0].get("delta") or {}, {}
        if choices[0].get("finish_reason"):
            metadata = {
                "finish_reason": choices[0]["finish_reason"],
                "model_name": event.get("model", self.model_name),
                "model_provider": PROVIDER,
            }
        chunks = [
            tool_call_chunk(
                name=(call.get("function") or {}).get("name"),
                args=(call.get("function") or {}).get("arguments"),
                id=call.get("id"),
                index=call.get("index"),
            )
            for call in delta.get("tool_calls") or []
        ]
        return AIMessageChunk(
            delta.get("content") or "",
            id=event.get("id"),
            tool_call_chunks=chunks,
            usage_metadata=usage,
            response_metadata=metadata,
        )


def _to_openai(message: BaseMessage) -> dict[str, Any]:
    if isinstance(message, SystemMessage):
        role = message.additional_kwargs.get("__openai_role__", "system")
        out: dict[str, Any] = {"role": role, "content": _content(message.content)}
    elif isinstance(message, HumanMessage):
        out = {"role": "user", "content": _content(message.content)}
    elif isinstance(message, AIMessage):
        out = {"role": "assistant", "content": message.text or None}
        if message.tool_calls:
            out["tool_calls"] = [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["name"], "arguments": json.dumps(call["args"])},
                }
                for call in message.tool_calls
            ]
    elif isinstance(message, ToolMessage):
        out = {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text}
    elif isinstance(message, FunctionMessage):
        out = {"role": "function", "name": message.name, "content": message.text}
    elif isinstance(message, ChatMessage):
        out = {"role": message.role, "content": _content(message.content)}
    else:
        raise TypeError(f"ChatOpenAI cannot send a {type(message).__name__} to the model.")
    if message.name and isinstance(message, HumanMessage | SystemMessage):
        out["name"] = message.name
    return out


def _content(content: Any) -> Any:
    if isinstance(content, str):
        return content
    return [{"type": "text", "text": block} if isinstance(block, str) else block for block in content]


def _read_tool_calls(raw: list[Any]) -> tuple[list[ToolCall], list[InvalidToolCall]]:
    calls: list[ToolCall] = []
    invalid: list[InvalidToolCall] = []
    for call in raw:
        function = call.get("function") or {} if isinstance(call, dict) else {}
        name, args, call_id = function.get("name"), function.get("arguments") or "{}", call.get("id")
        try:
            parsed = json.loads(args) if isinstance(args, str) else args
        except ValueError as exc:
            invalid.append(InvalidToolCall(name=name, args=args, id=call_id, error=str(exc), type="invalid_tool_call"))
            continue
        if not isinstance(parsed, dict):
            invalid.append(
                InvalidToolCall(name=name, args=args, id=call_id, error="not a JSON object", type="invalid_tool_call")
            )
            continue
        calls.append(ToolCall(name=name or "", args=parsed, id=call_id, type="tool_call"))
    return calls, invalid


def _usage(usage: Any) -> UsageMetadata | None:
    if not isinstance(usage, dict):
        return None
    prompt, completion = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    return UsageMetadata(
        input_tokens=prompt,
        output_tokens=completion,
        total_tokens=int(usage.get("total_tokens") or prompt + completion),
    )
