"""`ChatAnthropic`: Claude through Anthropic's Messages API (system prompts, tool use, SSE streaming)."""

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
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
    UsageMetadata,
    tool_call_chunk,
)
from graphrt.models._base import BaseChatModel, CallOptions
from graphrt.models._http import HttpClient, MalformedResponseError, MissingAPIKeyError, RetryPolicy, Secret

__all__ = ("ChatAnthropic",)

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"
PROVIDER = "anthropic"


class ChatAnthropic(BaseChatModel):
    """Claude through `{base_url}/v1/messages`.

    System messages become the request's `system` prompt; tool calls and tool results become `tool_use`
    and `tool_result` blocks; consecutive messages of one role are sent as one turn, as the API requires.

    Args:
        model: e.g. "claude-3-5-haiku-latest".
        api_key: Defaults to `$ANTHROPIC_API_KEY`; required.
        base_url: Defaults to `$ANTHROPIC_BASE_URL`, then Anthropic's.
        max_tokens: The reply's length limit (the API requires one).
        temperature, stop: Sent when set.
        timeout: Seconds to wait for each request.
        max_retries: Retries on HTTP 408/409/429/5xx/529 and connection errors, with backoff (honouring
            `Retry-After`).
        model_kwargs: Other request fields, sent as given.
    """

    provider = PROVIDER

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_tokens: int = 1024,
        temperature: float | None = None,
        stop: list[str] | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        model_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if not model:
            raise ValueError("ChatAnthropic needs a model name, e.g. ChatAnthropic('claude-3-5-haiku-latest').")
        key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise MissingAPIKeyError("Anthropic", "ANTHROPIC_API_KEY")
        self.model_name = model
        self.base_url = base_url or os.environ.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL
        self.max_tokens, self.temperature, self.stop = max_tokens, temperature, stop
        self.model_kwargs = dict(model_kwargs or {})
        self._key = Secret(key)
        headers = {"x-api-key": key, "anthropic-version": API_VERSION}
        retry = RetryPolicy(max_retries=max_retries)
        self._http = HttpClient(PROVIDER, self.base_url, headers, secrets=(self._key,), timeout=timeout, retry=retry)

    def __repr__(self) -> str:
        return f"ChatAnthropic(model={self.model_name!r}, base_url={self.base_url!r})"

    # ------------------------------------------------------------ provider hooks

    def _generate(self, messages: list[BaseMessage], options: CallOptions) -> AIMessage:
        return self._read(self._http.post_json("/v1/messages", self._body(messages, options, stream=False)))

    async def _agenerate(self, messages: list[BaseMessage], options: CallOptions) -> AIMessage:
        return self._read(await self._http.apost_json("/v1/messages", self._body(messages, options, stream=False)))

    def _stream(self, messages: list[BaseMessage], options: CallOptions) -> Iterator[AIMessageChunk]:
        reader = _StreamReader(self.model_name)
        for event, data in self._http.stream_events("/v1/messages", self._body(messages, options, stream=True)):
            chunk = reader.read(event, data)
            if chunk is not None:
                yield chunk
        reader.check_complete()

    async def _astream(self, messages: list[BaseMessage], options: CallOptions) -> AsyncIterator[AIMessageChunk]:
        reader = _StreamReader(self.model_name)
        body = self._body(messages, options, stream=True)
        async for event, data in self._http.astream_events("/v1/messages", body):
            chunk = reader.read(event, data)
            if chunk is not None:
                yield chunk
        reader.check_complete()

    # ------------------------------------------------------------ request

    def _body(self, messages: list[BaseMessage], options: CallOptions, *, stream: bool) -> dict[str, Any]:
        system, turns = _to_anthropic(messages)
        body: dict[str, Any] = {"model": self.model_name, "max_tokens": self.max_tokens, "messages": turns}
        if system:
            body["system"] = system
        if self.temperature is not None:
            body["temperature"] = self.temperature
        stop = options.stop if options.stop is not None else self.stop
        if stop:
            body["stop_sequences"] = list(stop)
        if options.tools:
            body["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": dict(t.parameters)}
                for t in options.tools
            ]
        choice = options.tool_choice
        if choice is not None:
            body["tool_choice"] = {"type": "tool", "name": choice[1]} if isinstance(choice, tuple) else {"type": choice}
        if stream:
            body["stream"] = True
        body.update(self.model_kwargs)
        body.update(options.extra)
        return body

    # ------------------------------------------------------------ response

    def _read(self, data: dict[str, Any]) -> AIMessage:
        blocks = data.get("content")
        if not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks):
            raise MalformedResponseError(PROVIDER, "expected a 'content' list of blocks", json.dumps(data))
        texts, calls = [], []
        for block in blocks:
            if block.get("type") == "text":
                texts.append(str(block.get("text", "")))
            elif block.get("type") == "tool_use":
                if not isinstance(block.get("input"), dict):
                    raise MalformedResponseError(PROVIDER, "a tool_use block has no 'input' object", json.dumps(data))
                calls.append(
                    ToolCall(name=block.get("name", ""), args=block["input"], id=block.get("id"), type="tool_call")
                )
        metadata = {
            "id": data.get("id"),
            "model_name": data.get("model", self.model_name),
            "model_provider": PROVIDER,
            "stop_reason": data.get("stop_reason"),
            "stop_sequence": data.get("stop_sequence"),
            "usage": data.get("usage"),
        }
        return AIMessage(
            "".join(texts),
            id=data.get("id"),
            tool_calls=calls,
            usage_metadata=_usage(data.get("usage")),
            response_metadata={k: v for k, v in metadata.items() if v is not None},
        )


class _StreamReader:
    """Turns the Messages API's stream events into chunks, remembering the message id and block kinds."""

    def __init__(self, model: str) -> None:
        self.model, self.id = model, None
        self.tool_blocks: dict[int, int] = {}
        """Content-block index -> tool call index (tool calls are numbered from 0)."""
        self.stopped = False

    def read(self, event: str | None, data: str) -> AIMessageChunk | None:
        try:
            payload = json.loads(data) if data else {}
        except ValueError:
            raise MalformedResponseError(PROVIDER, "a stream event is not JSON", data) from None
        kind = event or (payload.get("type") if isinstance(payload, dict) else None)
        if not isinstance(payload, dict):
            raise MalformedResponseError(PROVIDER, "a stream event is not a JSON object", data)
        if kind == "error":
            error = payload.get("error") or {}
            raise MalformedResponseError(PROVIDER, f"the stream reported an error: {error.get('message')}", data)
        if kind == "message_start":
            message = payload.get("message") or {}
            self.id = message.get("id")
            usage = _usage(message.get("usage"))
            if usage is None:
                return None
            # Output tokens are counted (cumulatively) by message_delta; counting them here would add twice.
            usage = UsageMetadata(
                input_tokens=usage["input_tokens"], output_tokens=0, total_tokens=usage["input_tokens"]
            )
            return AIMessageChunk("", id=self.id, usage_metadata=usage)
        if kind == "content_block_start":
            return self._block_start(payload)
        if kind == "content_block_delta":
            return self._delta(payload)
        if kind == "message_delta":
            delta = payload.get("delta") or {}
            metadata = {"stop_reason": delta.get("stop_reason"), "stop_sequence": delta.get("stop_sequence")}
            metadata.update(model_name=self.model, model_provider=PROVIDER)
            counts = payload.get("usage") or {}
            output = int(counts.get("output_tokens") or 0)
            return AIMessageChunk(
                "",
                id=self.id,
                response_metadata={k: v for k, v in metadata.items() if v is not None},
                usage_metadata=UsageMetadata(input_tokens=0, output_tokens=output, total_tokens=output),
            )
        if kind == "message_stop":
            self.stopped = True
        return None  # ping, content_block_stop, and event kinds added later

    def _block_start(self, payload: dict[str, Any]) -> AIMessageChunk | None:
        block, index = payload.get("content_block") or {}, payload.get("index")
        if block.get("type") == "tool_use" and isinstance(index, int):
            position = self.tool_blocks.setdefault(index, len(self.tool_blocks))
            piece = tool_call_chunk(name=block.get("name"), args="", id=block.get("id"), index=position)
            return AIMessageChunk("", id=self.id, tool_call_chunks=[piece])
        if block.get("type") == "text" and block.get("text"):
            return AIMessageChunk(block["text"], id=self.id)
        return None

    def _delta(self, payload: dict[str, Any]) -> AIMessageChunk | None:
        delta, index = payload.get("delta") or {}, payload.get("index")
        if delta.get("type") == "text_delta":
            return AIMessageChunk(str(delta.get("text", "")), id=self.id)
        if delta.get("type") == "input_json_delta":
            if index not in self.tool_blocks:
                raise MalformedResponseError(PROVIDER, "tool input for a block that is not a tool_use", str(payload))
            piece = tool_call_chunk(args=delta.get("partial_json", ""), index=self.tool_blocks[index])
            return AIMessageChunk("", id=self.id, tool_call_chunks=[piece])
        return None  # thinking and other deltas carry nothing for the reply's text or tool calls

    def check_complete(self) -> None:
        if not self.stopped:
            raise MalformedResponseError(PROVIDER, "the stream ended before message_stop", "")


def _to_anthropic(messages: list[BaseMessage]) -> tuple[str, list[dict[str, Any]]]:
    """The system prompt and the user/assistant turns (same-role neighbours merged into one turn)."""
    system: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, SystemMessage):
            system.append(message.text)
            continue
        role, blocks = _turn(message)
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return "\n\n".join(system), turns


def _turn(message: BaseMessage) -> tuple[str, list[dict[str, Any]]]:
    if isinstance(message, HumanMessage):
        return "user", _blocks(message.content)
    if isinstance(message, AIMessage):
        blocks = [b for b in _blocks(message.content) if b.get("type") != "tool_use"]
        blocks += [
            {"type": "tool_use", "id": c["id"], "name": c["name"], "input": c["args"]} for c in message.tool_calls
        ]
        return "assistant", blocks
    if isinstance(message, ToolMessage):
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.text}
        if message.status == "error":
            result["is_error"] = True
        return "user", [result]
    if isinstance(message, ChatMessage) and message.role in ("user", "assistant"):
        return message.role, _blocks(message.content)
    raise TypeError(f"ChatAnthropic cannot send a {type(message).__name__} to the model.")


def _blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return [{"type": "text", "text": b} if isinstance(b, str) else dict(b) for b in content]


def _usage(usage: Any) -> UsageMetadata | None:
    if not isinstance(usage, dict):
        return None
    cached = int(usage.get("cache_read_input_tokens") or 0) + int(usage.get("cache_creation_input_tokens") or 0)
    prompt, completion = int(usage.get("input_tokens") or 0) + cached, int(usage.get("output_tokens") or 0)
    return UsageMetadata(input_tokens=prompt, output_tokens=completion, total_tokens=prompt + completion)
