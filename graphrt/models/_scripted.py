"""`ScriptedChatModel`: a chat model whose replies come from a script or rules, for tests and offline examples."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from pydantic import BaseModel

from graphrt.messages import AIMessage, AIMessageChunk, BaseMessage, ToolCall, convert_to_messages, tool_call_chunk
from graphrt.models._base import BaseChatModel, CallOptions

__all__ = ("ScriptExhaustedError", "ScriptedChatModel")

Reply = str | AIMessage | dict[str, Any] | BaseModel | Callable[[list[BaseMessage]], Any]
"""A scripted reply: text, a whole AIMessage (e.g. with tool_calls), structured-output arguments (a dict or a
pydantic instance), or a function of the conversation returning one of those."""

Matcher = str | re.Pattern[str] | Callable[[list[BaseMessage]], bool]
"""When a rule applies: a regex searched in the last message's text, or a predicate on the conversation."""


class ScriptExhaustedError(RuntimeError):
    """A scripted model was asked for a reply it does not have."""


class _Script:
    """Replies shared by a model and its bound copies (`bind_tools` does not restart the script)."""

    def __init__(self, replies: Iterable[Reply]) -> None:
        self.replies = list(replies)
        self.position = 0
        self.lock = threading.Lock()

    def next(self) -> Reply | None:
        with self.lock:
            if self.position >= len(self.replies):
                return None
            self.position += 1
            return self.replies[self.position - 1]


class ScriptedChatModel(BaseChatModel):
    """A chat model that answers from a script, not from a language model.

    Replies are taken in order from `script`; once it is used up, the first rule whose matcher fits the
    conversation answers, then `default`. Each reply can be text, an `AIMessage` (say, with tool calls),
    structured-output arguments, or a function of the messages returning one of those. Replies are
    streamed word by word, carry `name="scripted"` (so `pretty_print()` shows where they came from) and
    `response_metadata["model_provider"] == "scripted"`.

    Args:
        script: Replies, used once each, in order.
        rules: `(matcher, reply)` pairs tried after the script; a matcher is a regex searched in the last
            message's text or a predicate on the messages.
        default: The reply when nothing else applies; without one, `ScriptExhaustedError` is raised.
        name: Put on every reply as the message's `name` (None to leave replies unnamed).

    Raises:
        ScriptExhaustedError: (on a call) no scripted reply, rule or default is left.
        ValueError: (on a call) a scripted tool call names a tool that is not bound.
    """

    provider = "scripted"

    def __init__(
        self,
        script: Iterable[Reply] = (),
        *,
        rules: Sequence[tuple[Matcher, Reply]] = (),
        default: Reply | None = None,
        name: str | None = "scripted",
    ) -> None:
        self._script = _Script(script)
        self.rules = [(_matcher(m), reply) for m, reply in rules]
        self.default = default
        self.name = name
        self.model_name = "scripted"

    @property
    def replies_left(self) -> int:
        """Script entries not used yet (rules and the default are not counted)."""
        return len(self._script.replies) - self._script.position

    def __repr__(self) -> str:
        tools = f", tools={[t.name for t in self._options.tools]}" if self._options.tools else ""
        return (
            f"ScriptedChatModel(scripted replies, not a language model: {self.replies_left} of "
            f"{len(self._script.replies)} left, {len(self.rules)} rules, "
            f"default={'yes' if self.default is not None else 'no'}{tools})"
        )

    def _generate(self, messages: list[BaseMessage], options: CallOptions) -> AIMessage:
        reply = self._pick(messages)
        while callable(reply) and not isinstance(reply, type):
            reply = reply(messages)
            if reply is None:
                raise ScriptExhaustedError("A scripted reply function returned None; return text or a message.")
        return self._message(reply, options)

    def _stream(self, messages: list[BaseMessage], options: CallOptions) -> Iterator[AIMessageChunk]:
        message = self._generate(messages, options)
        base: dict[str, Any] = {"id": message.id, "name": message.name}
        text = message.content if isinstance(message.content, str) else None
        pieces = [p for p in re.split(r"(\s)", text) if p] if text is not None else [message.content]
        for piece in pieces or [""]:
            yield AIMessageChunk(piece, **base)
        for index, call in enumerate(message.tool_calls):
            args = json.dumps(call["args"])
            half = len(args) // 2  # two pieces, so consumers see arguments arrive in parts
            yield AIMessageChunk(
                "",
                tool_call_chunks=[tool_call_chunk(name=call["name"], args=args[:half], id=call["id"], index=index)],
                **base,
            )
            yield AIMessageChunk("", tool_call_chunks=[tool_call_chunk(args=args[half:], index=index)], **base)
        yield AIMessageChunk("", response_metadata=message.response_metadata, chunk_position="last", **base)

    def _pick(self, messages: list[BaseMessage]) -> Reply:
        reply = self._script.next()
        if reply is not None:
            return reply
        for matches, rule_reply in self.rules:
            if matches(messages):
                return rule_reply
        if self.default is not None:
            return self.default
        last = messages[-1].text[:120] if messages else ""
        raise ScriptExhaustedError(
            f"ScriptedChatModel has no reply left: its {len(self._script.replies)} scripted replies are used up "
            f"and no rule matched the last message {last!r}. Add replies, rules or a default."
        )

    def _message(self, reply: Any, options: CallOptions) -> AIMessage:
        forced = options.tool_choice[1] if isinstance(options.tool_choice, tuple) else None
        if isinstance(reply, BaseModel) and not isinstance(reply, BaseMessage):
            reply = reply.model_dump()
        if isinstance(reply, dict) and not ({"role", "content"} <= reply.keys() or {"type", "content"} <= reply.keys()):
            if forced is None:
                raise ValueError(
                    "A scripted reply is structured-output arguments (a dict or pydantic object), but the model was "
                    "not asked for structured output; script a string or an AIMessage here."
                )
            reply = AIMessage("", tool_calls=[ToolCall(name=forced, args=reply, id=None)])
        elif isinstance(reply, str) and forced is not None and _is_json_object(reply):
            reply = AIMessage("", tool_calls=[ToolCall(name=forced, args=json.loads(reply), id=None)])
        if isinstance(reply, str):
            reply = AIMessage(reply)
        message = reply if isinstance(reply, AIMessage) else convert_to_messages([reply])[0]
        if not isinstance(message, AIMessage):
            raise TypeError(f"A scripted reply must make an AI message, got a {type(message).__name__}: {reply!r}")
        return self._finish_reply(message, options)

    def _finish_reply(self, message: AIMessage, options: CallOptions) -> AIMessage:
        bound = [t.name for t in options.tools]
        calls = []
        for call in message.tool_calls:
            if bound and call["name"] not in bound:
                raise ValueError(
                    f"A scripted reply calls tool '{call['name']}', but the model is bound to tools {bound}."
                )
            calls.append({**call, "id": call.get("id") or f"call_{uuid.uuid4().hex[:24]}"})
        update: dict[str, Any] = {
            "tool_calls": calls,
            "id": message.id or f"lc_run--{uuid.uuid4()}",
            "response_metadata": {**message.response_metadata, "model_name": "scripted", "model_provider": "scripted"},
        }
        if message.name is None and self.name is not None:
            update["name"] = self.name
        return message.model_copy(update=update)


def _matcher(matcher: Matcher) -> Callable[[list[BaseMessage]], bool]:
    if isinstance(matcher, str | re.Pattern):
        pattern = re.compile(matcher) if isinstance(matcher, str) else matcher
        return lambda messages: bool(messages) and pattern.search(messages[-1].text) is not None
    if callable(matcher):
        return matcher
    raise TypeError(f"A rule's matcher must be a regex or a function of the messages, got {matcher!r}")


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False
