"""Functions over lists of messages: trim, filter, merge runs, render as text, (de)serialize as dicts.

Public through `graphrt.messages`, with `langchain_core.messages`' names, arguments and results.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from graphrt.messages import (  # defined before graphrt.messages imports this module
    _EXACT_TYPES,
    AIMessage,
    BaseMessage,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    MessageLikeRepresentation,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
)

__all__ = (
    "count_tokens_approximately",
    "filter_messages",
    "get_buffer_string",
    "merge_message_runs",
    "message_to_dict",
    "messages_from_dict",
    "messages_to_dict",
    "trim_messages",
)

TypeSpec = str | type[BaseMessage]
"""A message type given by its `type` string ("human", "ai", ...) or its class."""

_BY_TYPE: dict[str, type[BaseMessage]] = {cls.model_fields["type"].default: cls for cls in _EXACT_TYPES}


# ---------------------------------------------------------------- dicts


def message_to_dict(message: BaseMessage) -> dict[str, Any]:
    """The message as `{"type": ..., "data": {...fields}}`, LangChain's storage shape."""
    return {"type": message.type, "data": message.model_dump()}


def messages_to_dict(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """`message_to_dict` of each message."""
    return [message_to_dict(m) for m in messages]


def messages_from_dict(messages: Sequence[dict[str, Any]]) -> list[BaseMessage]:
    """Rebuild messages from `message_to_dict` output (chunk types included).

    Raises:
        ValueError: an item's `type` names no message class.
    """
    out: list[BaseMessage] = []
    for item in messages:
        cls = _BY_TYPE.get(str(item.get("type"))) if isinstance(item, dict) else None
        if cls is None:
            found = item.get("type") if isinstance(item, dict) else item
            raise ValueError(f"Got unexpected message type: {found}")
        out.append(cls.model_validate(item["data"]))
    return out


# ---------------------------------------------------------------- text


def get_buffer_string(messages: Sequence[BaseMessage], human_prefix: str = "Human", ai_prefix: str = "AI") -> str:
    """The conversation as text, one `Role: content` line per message (tool calls of a silent AI shown)."""
    lines = []
    for message in messages:
        role = _role_label(message, human_prefix, ai_prefix)
        text = message.text
        if isinstance(message, AIMessage) and not text and message.tool_calls:
            text = str(message.tool_calls)
        lines.append(f"{role}: {text}")
    return "\n".join(lines)


def _role_label(message: BaseMessage, human_prefix: str, ai_prefix: str) -> str:
    if isinstance(message, HumanMessage):
        return human_prefix
    if isinstance(message, AIMessage):
        return ai_prefix
    if isinstance(message, SystemMessage):
        return "System"
    if isinstance(message, FunctionMessage):
        return "Function"
    if isinstance(message, ToolMessage):
        return "Tool"
    if isinstance(message, ChatMessage):
        return message.role
    raise ValueError(f"Got unsupported message type: {message}")


_OPENAI_ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "function"}


def count_tokens_approximately(
    messages: Iterable[MessageLikeRepresentation],
    *,
    chars_per_token: float = 4.0,
    extra_tokens_per_message: float = 3.0,
    count_name: bool = True,
) -> int:
    """Estimate tokens without a tokenizer: about 4 characters a token, plus a few per message.

    Counts the text, an AI message's tool calls, a tool message's call id, the role and the name.
    """
    total = 0.0
    for message in convert_to_messages(messages):
        chars = _content_chars(message.content)
        if isinstance(message, AIMessage) and not isinstance(message.content, list) and message.tool_calls:
            chars += len(repr(message.tool_calls))
        if isinstance(message, ToolMessage):
            chars += len(message.tool_call_id)
        base = message.type.removesuffix("MessageChunk").lower()
        role = message.role if isinstance(message, ChatMessage) else _OPENAI_ROLES.get(base, base)
        chars += len(role)
        if message.name and count_name:
            chars += len(message.name)
        total += math.ceil(chars / chars_per_token) + extra_tokens_per_message
    return math.ceil(total)


def _content_chars(content: Any) -> int:
    if isinstance(content, str):
        return len(content)
    chars = 0
    for block in content:
        if isinstance(block, str):
            chars += len(block)
        elif isinstance(block, dict) and block.get("type") == "text":
            chars += len(block.get("text", ""))
        else:
            chars += len(repr(block))
    return chars


# ---------------------------------------------------------------- filter and merge


def _matches(message: BaseMessage, types: Sequence[TypeSpec] | TypeSpec | None) -> bool:
    if types is None:
        return False
    for spec in (types,) if isinstance(types, str | type) else types:
        if isinstance(spec, str) and message.type == spec:
            return True
        if isinstance(spec, type) and isinstance(message, spec):
            return True
    return False


def filter_messages(
    messages: Iterable[MessageLikeRepresentation],
    *,
    include_names: Sequence[str] | None = None,
    exclude_names: Sequence[str] | None = None,
    include_types: Sequence[TypeSpec] | None = None,
    exclude_types: Sequence[TypeSpec] | None = None,
    include_ids: Sequence[str] | None = None,
    exclude_ids: Sequence[str] | None = None,
    exclude_tool_calls: Sequence[str] | bool | None = None,
) -> list[BaseMessage]:
    """Keep the messages matching any `include_*` criterion (all when none is given) and no `exclude_*` one.

    `exclude_tool_calls=True` drops tool messages and AI messages that call tools; a list of call ids drops
    just those calls (and the AI message once it has none left, unless it has text).
    """
    kept: list[BaseMessage] = []
    includes = (include_names, include_types, include_ids)
    for message in convert_to_messages(messages):
        if (exclude_names and message.name in exclude_names) or _matches(message, exclude_types):
            continue
        if exclude_ids and message.id in exclude_ids:
            continue
        if exclude_tool_calls is True and (
            isinstance(message, ToolMessage) or (isinstance(message, AIMessage) and message.tool_calls)
        ):
            continue
        if isinstance(exclude_tool_calls, list | tuple | set):
            trimmed = _without_calls(message, exclude_tool_calls)
            if trimmed is None:
                continue
            message = trimmed
        if any(c is not None for c in includes) and not (
            (include_names and message.name in include_names)
            or _matches(message, include_types)
            or (include_ids and message.id in include_ids)
        ):
            continue
        kept.append(message)
    return kept


def _without_calls(message: BaseMessage, call_ids: Iterable[str]) -> BaseMessage | None:
    ids = set(call_ids)
    if isinstance(message, ToolMessage):
        return None if message.tool_call_id in ids else message
    if not isinstance(message, AIMessage) or not message.tool_calls:
        return message
    calls = [c for c in message.tool_calls if c.get("id") not in ids]
    if not calls and not message.text:
        return None
    if len(calls) == len(message.tool_calls):
        return message
    content = message.content
    if isinstance(content, list):
        content = [
            b for b in content if not (isinstance(b, dict) and b.get("type") == "tool_use" and b.get("id") in ids)
        ]
    return message.model_copy(update={"tool_calls": calls, "content": content})


def merge_message_runs(
    messages: Iterable[MessageLikeRepresentation], *, chunk_separator: str = "\n"
) -> list[BaseMessage]:
    """Merge consecutive messages of the same type into one (tool messages are never merged).

    String contents are joined with `chunk_separator`; an AI message's tool calls are concatenated.
    """
    merged: list[BaseMessage] = []
    for message in convert_to_messages(messages):
        last = merged[-1] if merged else None
        if last is None or isinstance(message, ToolMessage) or type(last) is not type(message):
            merged.append(message)
            continue
        merged[-1] = _merge_two(last, message, chunk_separator)
    return merged


def _merge_two(left: BaseMessage, right: BaseMessage, separator: str) -> BaseMessage:
    update: dict[str, Any] = {}
    if isinstance(left.content, str) and isinstance(right.content, str):
        update["content"] = (
            left.content + separator + right.content
            if left.content and right.content
            else (left.content or right.content)
        )
    else:
        head = [left.content] if isinstance(left.content, str) else list(left.content)
        tail = [right.content] if isinstance(right.content, str) else list(right.content)
        update["content"] = [part for part in head + tail if part != ""]
    if isinstance(left, AIMessage) and isinstance(right, AIMessage):
        update["tool_calls"] = [*left.tool_calls, *right.tool_calls]
        update["invalid_tool_calls"] = [*left.invalid_tool_calls, *right.invalid_tool_calls]
    return left.model_copy(update=update)


# ---------------------------------------------------------------- trim

TokenCounter = Callable[[list[BaseMessage]], int] | Callable[[BaseMessage], int]


def trim_messages(
    messages: Iterable[MessageLikeRepresentation],
    *,
    max_tokens: int,
    token_counter: Any,
    strategy: Literal["first", "last"] = "last",
    allow_partial: bool = False,
    end_on: Sequence[TypeSpec] | TypeSpec | None = None,
    start_on: Sequence[TypeSpec] | TypeSpec | None = None,
    include_system: bool = False,
    text_splitter: Callable[[str], list[str]] | None = None,
) -> list[BaseMessage]:
    """Keep the first or last messages whose token count fits in `max_tokens`.

    Args:
        token_counter: Counts a list of messages (or, with a one-message signature, each message);
            `len` counts messages.
        strategy: `"last"` keeps the most recent messages, `"first"` the earliest.
        allow_partial: Keep part of the message that does not fit whole (its content blocks, or the lines of
            its text, split by `text_splitter`).
        end_on: Drop messages from the end until the last one is of these types (before trimming for
            `"last"`, after it for `"first"`).
        start_on: (`"last"` only) Drop messages from the start of the kept ones until one of these types.
        include_system: (`"last"` only) Always keep a leading system message.

    Raises:
        ValueError: `start_on` or `include_system` with `strategy="first"`, an unknown strategy, or
            `include_system=True` with a system message that alone exceeds the budget (LangChain would
            return it anyway, over budget).
    """
    if strategy not in ("first", "last"):
        raise ValueError(f"Unrecognized strategy={strategy!r}. Supported strategies are 'last' and 'first'.")
    if strategy == "first" and start_on is not None:
        raise ValueError("start_on parameter is only valid with strategy='last'")
    if strategy == "first" and include_system:
        raise ValueError("include_system parameter is only valid with strategy='last'")
    if max_tokens < 0:
        raise ValueError(f"max_tokens must be zero or more, got {max_tokens}")
    counter = _list_counter(token_counter)
    split = text_splitter or _split_lines
    items = list(convert_to_messages(messages))
    if strategy == "first":
        kept = _keep(items, max_tokens, counter, allow_partial, split, False)
        return _end_on(kept, end_on)
    items = _end_on(items, end_on)
    system: list[BaseMessage] = []
    if include_system and items and isinstance(items[0], SystemMessage):
        system, items = items[:1], items[1:]
        if (needed := counter(system)) > max_tokens:
            raise ValueError(
                f"The system message alone ({needed} tokens) exceeds max_tokens={max_tokens}; raise max_tokens "
                "or pass include_system=False."
            )
    kept = _keep(
        items, max_tokens, (lambda ms: counter(system + ms)) if system else counter, allow_partial, split, True
    )
    if start_on is not None:
        first = next((i for i, m in enumerate(kept) if _matches(m, start_on)), len(kept))
        kept = kept[first:]
    return system + kept


def _list_counter(token_counter: Any) -> Callable[[list[BaseMessage]], int]:
    if token_counter is len:
        return _count_messages
    try:
        params = list(inspect.signature(token_counter).parameters.values())
    except (TypeError, ValueError):
        params = []
    annotation = params[0].annotation if params else None
    if annotation in (BaseMessage, "BaseMessage"):
        per_message: Callable[[BaseMessage], int] = token_counter
        return lambda ms: sum(per_message(m) for m in ms)

    def counter(messages: list[BaseMessage]) -> int:
        return int(token_counter(messages))

    return counter


def _count_messages(messages: list[BaseMessage]) -> int:
    return len(messages)


def _end_on(messages: list[BaseMessage], end_on: Sequence[TypeSpec] | TypeSpec | None) -> list[BaseMessage]:
    if end_on is None:
        return messages
    end = len(messages)
    while end and not _matches(messages[end - 1], end_on):
        end -= 1
    return messages[:end]


def _split_lines(text: str) -> list[str]:
    parts = text.split("\n")
    return [p + "\n" for p in parts[:-1]] + [parts[-1]] if len(parts) > 1 else parts


def _keep(
    messages: list[BaseMessage],
    max_tokens: int,
    counter: Callable[[list[BaseMessage]], int],
    allow_partial: bool,
    split: Callable[[str], list[str]],
    from_end: bool,
) -> list[BaseMessage]:
    """The most messages from the start (or end) that fit, plus a fitting part of the next when `allow_partial`."""

    def take(n: int) -> list[BaseMessage]:
        return messages[len(messages) - n :] if from_end else messages[:n]

    lo, hi = 0, len(messages)
    while lo < hi:  # the largest n whose n messages fit (counts grow with the number of messages)
        mid = (lo + hi + 1) // 2
        if counter(take(mid)) <= max_tokens:
            lo = mid
        else:
            hi = mid - 1
    kept = take(lo)
    if allow_partial and lo < len(messages):
        nxt = messages[len(messages) - lo - 1] if from_end else messages[lo]
        part = _partial(nxt, kept, max_tokens, counter, split, from_end)
        if part is not None:
            kept = [part, *kept] if from_end else [*kept, part]
    return kept


def _partial(
    message: BaseMessage,
    kept: list[BaseMessage],
    max_tokens: int,
    counter: Callable[[list[BaseMessage]], int],
    split: Callable[[str], list[str]],
    from_end: bool,
) -> BaseMessage | None:
    """The message cut to as many of its blocks (or text pieces) as fit next to `kept`."""
    content = message.content
    pieces: list[Any] = split(content) if isinstance(content, str) else list(content)
    if isinstance(content, list) and len(pieces) == 1 and isinstance(pieces[0], dict) and "text" in pieces[0]:
        pieces = [{**pieces[0], "text": t} for t in split(pieces[0]["text"])]
    best: BaseMessage | None = None
    for n in range(1, len(pieces)):
        body = pieces[len(pieces) - n :] if from_end else pieces[:n]
        candidate = message.model_copy(update={"content": "".join(body) if isinstance(content, str) else body})
        together = [candidate, *kept] if from_end else [*kept, candidate]
        if counter(together) > max_tokens:
            break
        best = candidate
    return best
