"""Chat messages with `langchain_core.messages`' names, fields and behaviour, as pydantic v2 models.

The message classes and their streamed `*Chunk` pieces (`chunk + chunk` concatenates), the `AnyMessage`
union for state schemas, tool-call dicts, `convert_to_messages`, and the list functions (`trim_messages`,
`filter_messages`, `merge_message_runs`, `get_buffer_string`, `messages_to_dict`, ...). Messages are treated
as immutable values once built; graphrt never mutates one it was given.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal, NotRequired, TypeAlias, cast

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator
from typing_extensions import TypedDict  # pydantic needs this TypedDict before Python 3.12

from graphrt._message_merge import add_usage, merge_content, merge_dicts, merge_lists, parse_partial_json, pick_id

__all__ = (
    "AIMessage",
    "AIMessageChunk",
    "AnyMessage",
    "BaseMessage",
    "BaseMessageChunk",
    "ChatMessage",
    "ChatMessageChunk",
    "FunctionMessage",
    "FunctionMessageChunk",
    "HumanMessage",
    "HumanMessageChunk",
    "InvalidToolCall",
    "MessageLikeRepresentation",
    "RemoveMessage",
    "SystemMessage",
    "SystemMessageChunk",
    "ToolCall",
    "ToolCallChunk",
    "ToolMessage",
    "ToolMessageChunk",
    "UsageMetadata",
    "convert_to_messages",
    "count_tokens_approximately",
    "filter_messages",
    "get_buffer_string",
    "merge_message_runs",
    "message_chunk_to_message",
    "message_to_dict",
    "messages_from_dict",
    "messages_to_dict",
    "tool_call",
    "tool_call_chunk",
    "trim_messages",
)

MessageContent: TypeAlias = str | list[str | dict[Any, Any]]


class ToolCall(TypedDict):
    """A model's request to call a tool: `{"name", "args", "id", "type": "tool_call"}`."""

    name: str
    args: dict[str, Any]
    id: str | None
    type: NotRequired[Literal["tool_call"]]


class InvalidToolCall(TypedDict):
    """A tool call the model produced but that could not be parsed (e.g. arguments that are not JSON)."""

    type: NotRequired[Literal["invalid_tool_call"]]
    id: str | None
    name: str | None
    args: str | None
    error: str | None


class UsageMetadata(TypedDict):
    """Token counts reported by a model for one response."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_token_details: NotRequired[dict[str, Any]]
    output_token_details: NotRequired[dict[str, Any]]


def tool_call(*, name: str, args: dict[str, Any], id: str | None) -> ToolCall:
    """Build a `ToolCall` dict."""
    return ToolCall(name=name, args=args, id=id, type="tool_call")


class BaseMessage(BaseModel):
    """Base of every message: content plus LangChain's metadata fields.

    `HumanMessage("hi")` takes the content positionally, as LangChain does. Unknown keyword arguments are
    kept as extra fields (LangChain allows them too).
    """

    model_config = ConfigDict(extra="allow")

    content: str | list[str | dict[Any, Any]]
    """Text, or a list of strings and content blocks such as `{"type": "text", "text": ...}`."""
    additional_kwargs: dict[Any, Any] = Field(default_factory=dict)
    """Provider-specific payload that has no field of its own."""
    response_metadata: dict[Any, Any] = Field(default_factory=dict)
    """Response headers, token log-probabilities, model name and the like."""
    type: str
    """The message kind (`"human"`, `"ai"`, ...); fixed by each subclass."""
    name: str | None = None
    """Optional name of the speaker."""
    id: str | None = Field(default=None, coerce_numbers_to_str=True)
    """Unique id; `add_messages` assigns one when missing and uses it to replace or remove messages."""

    def __init__(self, content: MessageContent | None = None, **kwargs: Any) -> None:
        # pydantic's BaseModel.__init__, less a call: messages are built on every step.
        kwargs["content"] = content
        self.__pydantic_validator__.validate_python(kwargs, self_instance=self)

    @property
    def text(self) -> str:
        """The text of the message: the content itself, or its strings and `text` blocks joined."""
        content = self.content
        if isinstance(content, str):
            return content
        parts: list[str] = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif block.get("type") == "text" and isinstance(block.get("text"), str):
                parts.append(block["text"])
        return "".join(parts)

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        # Like LangChain, hide fields still at a plain default; default_factory fields are always shown.
        fields = type(self).model_fields
        for key, value in super().__repr_args__():
            info = fields.get(key) if key is not None else None
            if info is None or (info.repr and (info.default_factory is not None or _differs(value, info.default))):
                yield key, value

    def pretty_repr(self, html: bool = False) -> str:
        """The message under a banner such as `=== Human Message ===`; `html=True` bolds the title."""
        title = _title(self.type.title() + " Message", bold=html)
        if self.name is not None:
            title += f"\nName: {self.name}"
        return f"{title}\n\n{self.content}"

    def pretty_print(self) -> None:
        """Print `pretty_repr()`, with a bold title in an interactive session."""
        print(self.pretty_repr(html=hasattr(sys, "ps1")))


def _differs(value: Any, default: Any) -> bool:
    try:
        return bool(value != default)
    except Exception:  # e.g. arrays, whose `!=` is not a bool
        return True


def _title(title: str, *, bold: bool) -> str:
    padded = f" {title} "
    side = (80 - len(padded)) // 2
    left = "=" * side
    right = left + "=" if len(padded) % 2 else left
    if bold:
        padded = f"\033[1m{padded}\033[0m"
    return f"{left}{padded}{right}"


class HumanMessage(BaseMessage):
    """A message from the user."""

    type: Literal["human"] = "human"

    if TYPE_CHECKING:  # at run time BaseMessage.__init__ itself: messages are built on every step

        def __init__(self, content: MessageContent | None = None, **kwargs: Any) -> None: ...


class SystemMessage(BaseMessage):
    """Instructions for the model, usually first in the list."""

    type: Literal["system"] = "system"

    if TYPE_CHECKING:  # at run time BaseMessage.__init__ itself: messages are built on every step

        def __init__(self, content: MessageContent | None = None, **kwargs: Any) -> None: ...


class AIMessage(BaseMessage):
    """A model's reply, possibly asking for tool calls."""

    type: Literal["ai"] = "ai"

    if TYPE_CHECKING:  # at run time BaseMessage.__init__ itself: messages are built on every step

        def __init__(self, content: MessageContent | None = None, **kwargs: Any) -> None: ...

    tool_calls: list[ToolCall] = Field(default_factory=list)
    """Tool calls requested by the model; each gets `type: "tool_call"` when it lacks one."""
    invalid_tool_calls: list[InvalidToolCall] = Field(default_factory=list)
    """Tool calls the model produced that could not be parsed."""
    usage_metadata: UsageMetadata | None = None
    """Token counts, when the provider reports them."""

    @field_validator("tool_calls", mode="before")
    @classmethod
    def _tag_tool_calls(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [
                {**call, "type": "tool_call"} if isinstance(call, dict) and "type" not in call else call
                for call in value
            ]
        return value

    @field_validator("invalid_tool_calls", mode="before")
    @classmethod
    def _tag_invalid_tool_calls(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [
                {**call, "type": "invalid_tool_call"} if isinstance(call, dict) and "type" not in call else call
                for call in value
            ]
        return value

    def pretty_repr(self, html: bool = False) -> str:
        """The banner and content, then the tool calls and invalid tool calls with their arguments."""
        lines = [super().pretty_repr(html=html).strip()]
        if self.tool_calls:
            lines.append("Tool Calls:")
            for call in self.tool_calls:
                lines.extend(_call_lines(call))
        if self.invalid_tool_calls:
            lines.append("Invalid Tool Calls:")
            for invalid in self.invalid_tool_calls:
                lines.extend(_call_lines(invalid))
        return "\n".join(lines).strip()


def _call_lines(call: Mapping[str, Any]) -> list[str]:
    lines = [f"  {call.get('name', 'Tool')} ({call.get('id')})", f" Call ID: {call.get('id')}"]
    if call.get("error"):
        lines.append(f"  Error: {call.get('error')}")
    lines.append("  Args:")
    args = call.get("args")
    if isinstance(args, str):
        lines.append(f"    {args}")
    elif isinstance(args, dict):
        lines.extend(f"    {key}: {value}" for key, value in args.items())
    return lines


class ToolMessage(BaseMessage):
    """The result of one tool call, sent back to the model."""

    additional_kwargs: dict[Any, Any] = Field(default_factory=dict, repr=False)
    response_metadata: dict[Any, Any] = Field(default_factory=dict, repr=False)
    type: Literal["tool"] = "tool"

    if TYPE_CHECKING:  # at run time BaseMessage.__init__ itself: messages are built on every step

        def __init__(self, content: MessageContent | None = None, **kwargs: Any) -> None: ...

    tool_call_id: str = Field(coerce_numbers_to_str=True)
    """The `id` of the `ToolCall` this message answers."""
    artifact: Any = None
    """Full tool output not meant for the model (e.g. raw data behind a summary)."""
    status: Literal["success", "error"] = "success"
    """Whether the tool ran successfully."""

    @field_validator("content", mode="before")
    @classmethod
    def _stringify_content(cls, value: Any) -> Any:
        # Tools return anything; like LangChain, non-text content becomes its str().
        if isinstance(value, str):
            return value
        if isinstance(value, list):
            return [item if isinstance(item, str | dict) else str(item) for item in value]
        return str(value)


class ChatMessage(BaseMessage):
    """A message from a speaker with an arbitrary `role`."""

    type: Literal["chat"] = "chat"
    role: str
    """The speaker's role, e.g. "critic"."""

    if TYPE_CHECKING:  # at run time BaseMessage.__init__ itself: messages are built on every step

        def __init__(self, content: MessageContent | None = None, **kwargs: Any) -> None: ...


class FunctionMessage(BaseMessage):
    """The result of a legacy OpenAI function call (kept for compatibility; prefer `ToolMessage`)."""

    type: Literal["function"] = "function"
    name: str  # required here, unlike on other messages

    if TYPE_CHECKING:  # at run time BaseMessage.__init__ itself: messages are built on every step

        def __init__(self, content: MessageContent | None = None, **kwargs: Any) -> None: ...


class RemoveMessage(BaseMessage):
    """An instruction to `add_messages` to delete the message with this id; never kept in state."""

    type: Literal["remove"] = "remove"

    def __init__(self, id: str, **kwargs: Any) -> None:
        # An empty content is what validating a dumped RemoveMessage passes back in.
        if kwargs.pop("content", ""):
            raise ValueError("RemoveMessage does not support 'content' field.")
        super().__init__("", id=id, **kwargs)


class ToolCallChunk(TypedDict):
    """A piece of a streamed tool call; pieces with the same `index` concatenate (`args` is partial JSON)."""

    name: str | None
    args: str | None
    id: str | None
    index: int | None
    type: NotRequired[Literal["tool_call_chunk"]]


def tool_call_chunk(
    *, name: str | None = None, args: str | None = None, id: str | None = None, index: int | None = None
) -> ToolCallChunk:
    """Build a `ToolCallChunk` dict."""
    return ToolCallChunk(name=name, args=args, id=id, index=index, type="tool_call_chunk")


class BaseMessageChunk(BaseMessage):
    """A piece of a streamed message; `chunk + chunk` concatenates content and merges metadata."""

    if TYPE_CHECKING:  # at run time BaseMessage.__init__ itself: messages are built on every step

        def __init__(self, content: MessageContent | None = None, **kwargs: Any) -> None: ...

    def __add__(self, other: Any) -> Any:
        if isinstance(other, BaseMessageChunk):
            return self._merge([other])
        if isinstance(other, list | tuple) and all(isinstance(o, BaseMessageChunk) for o in other):
            return self._merge(list(other))
        return NotImplemented

    def _merge(self, others: list[BaseMessageChunk]) -> BaseMessageChunk:
        content, kwargs, metadata = self.content, self.additional_kwargs, self.response_metadata
        for other in others:
            content = merge_content(content, other.content)
            kwargs = merge_dicts(kwargs, other.additional_kwargs)
            metadata = merge_dicts(metadata, other.response_metadata)
        fields = {f: getattr(self, f) for f in type(self).model_fields if f not in _MERGED_FIELDS}
        fields.update(self.model_extra or {})
        fields["id"] = pick_id(self.id, *(o.id for o in others))
        fields.update(self._merge_own(others))
        return type(self)(content, additional_kwargs=kwargs, response_metadata=metadata, **fields)

    def _merge_own(self, others: list[BaseMessageChunk]) -> dict[str, Any]:
        """Fields of the subclass merged with those of `others` (the base merges none)."""
        return {}


_MERGED_FIELDS = frozenset({"content", "additional_kwargs", "response_metadata", "id", "type"})


class HumanMessageChunk(HumanMessage, BaseMessageChunk):
    """A piece of a streamed `HumanMessage`."""

    type: Literal["HumanMessageChunk"] = "HumanMessageChunk"  # type: ignore[assignment]

    if TYPE_CHECKING:  # at run time BaseMessage.__init__ itself: messages are built on every step

        def __init__(self, content: MessageContent | None = None, **kwargs: Any) -> None: ...


class SystemMessageChunk(SystemMessage, BaseMessageChunk):
    """A piece of a streamed `SystemMessage`."""

    type: Literal["SystemMessageChunk"] = "SystemMessageChunk"  # type: ignore[assignment]

    if TYPE_CHECKING:  # at run time BaseMessage.__init__ itself: messages are built on every step

        def __init__(self, content: MessageContent | None = None, **kwargs: Any) -> None: ...


class ChatMessageChunk(ChatMessage, BaseMessageChunk):
    """A piece of a streamed `ChatMessage`; only chunks of the same role concatenate."""

    type: Literal["ChatMessageChunk"] = "ChatMessageChunk"  # type: ignore[assignment]

    if TYPE_CHECKING:  # at run time BaseMessage.__init__ itself: messages are built on every step

        def __init__(self, content: MessageContent | None = None, **kwargs: Any) -> None: ...

    def _merge_own(self, others: list[BaseMessageChunk]) -> dict[str, Any]:
        if any(getattr(o, "role", self.role) != self.role for o in others):
            raise ValueError("Cannot concatenate ChatMessageChunks with different roles.")
        return {}


class FunctionMessageChunk(FunctionMessage, BaseMessageChunk):
    """A piece of a streamed `FunctionMessage`; only chunks of the same name concatenate."""

    type: Literal["FunctionMessageChunk"] = "FunctionMessageChunk"  # type: ignore[assignment]

    if TYPE_CHECKING:  # at run time BaseMessage.__init__ itself: messages are built on every step

        def __init__(self, content: MessageContent | None = None, **kwargs: Any) -> None: ...

    def _merge_own(self, others: list[BaseMessageChunk]) -> dict[str, Any]:
        if any(getattr(o, "name", self.name) != self.name for o in others):
            raise ValueError("Cannot concatenate FunctionMessageChunks with different names.")
        return {}


class ToolMessageChunk(ToolMessage, BaseMessageChunk):
    """A piece of a streamed `ToolMessage`; only chunks answering the same tool call concatenate."""

    type: Literal["ToolMessageChunk"] = "ToolMessageChunk"  # type: ignore[assignment]

    if TYPE_CHECKING:  # at run time BaseMessage.__init__ itself: messages are built on every step

        def __init__(self, content: MessageContent | None = None, **kwargs: Any) -> None: ...

    def _merge_own(self, others: list[BaseMessageChunk]) -> dict[str, Any]:
        artifact, status = self.artifact, self.status
        for other in others:
            if getattr(other, "tool_call_id", self.tool_call_id) != self.tool_call_id:
                raise ValueError("Cannot concatenate ToolMessageChunks with different names.")
            more = getattr(other, "artifact", None)
            artifact = _merge_values(artifact, more)
            if getattr(other, "status", "success") == "error":
                status = "error"
        return {"artifact": artifact, "status": status}


def _merge_values(left: Any, right: Any) -> Any:
    if left is None or right is None:
        return right if left is None else left
    if isinstance(left, list) and isinstance(right, list):
        return merge_lists(left, right)
    if isinstance(left, dict) and isinstance(right, dict):
        return merge_dicts(left, right)
    if isinstance(left, str) and isinstance(right, str):
        return left + right
    if left == right:
        return left
    raise TypeError(f"Cannot merge {type(left).__name__} and {type(right).__name__} values of message chunks.")


class AIMessageChunk(AIMessage, BaseMessageChunk):
    """A piece of a streamed `AIMessage`.

    Tool calls arrive as `tool_call_chunks` (partial JSON arguments, merged by `index`); `tool_calls` and
    `invalid_tool_calls` are derived from them, so they are complete once every chunk has been added.
    """

    type: Literal["AIMessageChunk"] = "AIMessageChunk"  # type: ignore[assignment]

    if TYPE_CHECKING:  # at run time BaseMessage.__init__ itself: messages are built on every step

        def __init__(self, content: MessageContent | None = None, **kwargs: Any) -> None: ...

    tool_call_chunks: list[ToolCallChunk] = Field(default_factory=list)
    """The streamed pieces of the tool calls."""
    chunk_position: Literal["last"] | None = None
    """`"last"` on the final chunk of a stream."""

    @field_validator("tool_call_chunks", mode="before")
    @classmethod
    def _tag_chunks(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{**c, "type": "tool_call_chunk"} if isinstance(c, dict) and "type" not in c else c for c in value]
        return value

    @model_validator(mode="after")
    def _derive_tool_calls(self) -> AIMessageChunk:
        if not self.tool_call_chunks:
            if self.tool_calls:
                self.tool_call_chunks = [
                    tool_call_chunk(name=c["name"], args=json.dumps(c["args"]), id=c["id"], index=None)
                    for c in self.tool_calls
                ]
            return self
        calls: list[ToolCall] = []
        invalid: list[InvalidToolCall] = []
        for chunk in self.tool_call_chunks:
            raw = chunk.get("args") or ""
            args = parse_partial_json(raw) if raw.strip() else {}
            if isinstance(args, dict):
                calls.append(ToolCall(name=chunk.get("name") or "", args=args, id=chunk.get("id"), type="tool_call"))
            else:
                invalid.append(
                    InvalidToolCall(
                        name=chunk.get("name"), args=raw, id=chunk.get("id"), error=None, type="invalid_tool_call"
                    )
                )
        self.tool_calls, self.invalid_tool_calls = calls, invalid
        return self

    def _merge_own(self, others: list[BaseMessageChunk]) -> dict[str, Any]:
        chunks: list[Any] | None = list(self.tool_call_chunks)
        usage: dict[str, Any] | None = dict(self.usage_metadata) if self.usage_metadata else None
        position = self.chunk_position
        for other in others:
            if isinstance(other, AIMessageChunk):
                chunks = merge_lists(chunks, list(other.tool_call_chunks))
                usage = add_usage(usage, dict(other.usage_metadata) if other.usage_metadata else None)
                position = other.chunk_position or position
        return {
            "tool_call_chunks": chunks or [],
            "usage_metadata": usage,
            "chunk_position": position,
            "tool_calls": [],
            "invalid_tool_calls": [],
        }


_CHUNK_OF: dict[type[BaseMessage], type[BaseMessage]] = {
    AIMessageChunk: AIMessage,
    HumanMessageChunk: HumanMessage,
    SystemMessageChunk: SystemMessage,
    ChatMessageChunk: ChatMessage,
    FunctionMessageChunk: FunctionMessage,
    ToolMessageChunk: ToolMessage,
}


def message_chunk_to_message(chunk: BaseMessage) -> BaseMessage:
    """The complete message a chunk stands for (`AIMessageChunk` -> `AIMessage`); other messages as they are."""
    target = _CHUNK_OF.get(type(chunk))
    if target is None:
        return chunk
    data = chunk.model_dump(exclude={"type", "tool_call_chunks", "chunk_position"})
    if isinstance(chunk, AIMessageChunk):
        data["tool_calls"] = chunk.tool_calls
        data["invalid_tool_calls"] = chunk.invalid_tool_calls
    return target(**data)


def _message_type(value: Any) -> str | None:
    found = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return found if isinstance(found, str) else None


AnyMessage: TypeAlias = Annotated[
    Annotated[AIMessage, Tag("ai")]
    | Annotated[HumanMessage, Tag("human")]
    | Annotated[SystemMessage, Tag("system")]
    | Annotated[ToolMessage, Tag("tool")]
    | Annotated[ChatMessage, Tag("chat")]
    | Annotated[FunctionMessage, Tag("function")]
    | Annotated[RemoveMessage, Tag("remove")]
    | Annotated[AIMessageChunk, Tag("AIMessageChunk")]
    | Annotated[HumanMessageChunk, Tag("HumanMessageChunk")]
    | Annotated[SystemMessageChunk, Tag("SystemMessageChunk")]
    | Annotated[ChatMessageChunk, Tag("ChatMessageChunk")]
    | Annotated[FunctionMessageChunk, Tag("FunctionMessageChunk")]
    | Annotated[ToolMessageChunk, Tag("ToolMessageChunk")],
    Field(discriminator=Discriminator(_message_type)),
]
"""Any concrete message; pydantic picks the class from the `type` key, so dicts validate too."""

MessageLikeRepresentation: TypeAlias = (
    BaseMessage | list[str] | tuple[str, str | list[str | dict[str, Any]]] | str | dict[str, Any]
)
"""What `convert_to_messages` accepts for one message."""

_KINDS: dict[str, type[BaseMessage]] = {
    "human": HumanMessage,
    "user": HumanMessage,
    "ai": AIMessage,
    "assistant": AIMessage,
    "system": SystemMessage,
    "developer": SystemMessage,
    "tool": ToolMessage,
    "function": FunctionMessage,
    "remove": RemoveMessage,
}


def convert_to_messages(
    messages: Iterable[MessageLikeRepresentation] | MessageLikeRepresentation,
) -> list[BaseMessage]:
    """Coerce message-like values to messages; message objects are returned as they are (same object).

    Accepts messages, `(role, content)` pairs, plain strings (human messages) and dicts with a `role` (or
    `type`) and `content` plus optional `id`, `name`, `tool_calls`, `tool_call_id` and any other message
    field. A single message, string or dict is accepted in place of a list.

    Raises:
        ValueError: a role is unknown, or a dict lacks `role`/`content`.
        NotImplementedError: a value is none of the above.
    """
    if type(messages) is list and _EXACT_TYPES.issuperset(map(type, messages)):
        # The usual input, a history of graphrt messages: a C-level type check, no per-item call.
        return cast(list[BaseMessage], messages.copy())
    if isinstance(messages, BaseMessage | str | dict):
        return [_to_message(messages)]
    return [_to_message(message) for message in messages]


_EXACT_TYPES: frozenset[type[BaseMessage]] = frozenset(
    (
        HumanMessage,
        AIMessage,
        SystemMessage,
        ToolMessage,
        ChatMessage,
        FunctionMessage,
        RemoveMessage,
        *_CHUNK_OF,
    )
)
"""The message classes defined here: values of exactly these types are messages as they are (and the classes
`messages_from_dict` finds by their `type`)."""


def _to_message(message: Any) -> BaseMessage:
    if isinstance(message, BaseMessage):
        return message
    if isinstance(message, str):
        return HumanMessage(message)
    if isinstance(message, dict):
        return _from_dict(message)
    if isinstance(message, Sequence):
        try:
            role, content = message
        except ValueError as exc:
            raise NotImplementedError("Message as a sequence must be (role string, template)") from exc
        return _create(role, content, {})
    if isinstance(message, BaseModel) and isinstance(getattr(message, "type", None), str):
        # Another library's message model (e.g. langchain_core's): rebuild it from its fields.
        return _from_dict(message.model_dump())
    raise NotImplementedError(f"Unsupported message type: {type(message)}")


def _from_dict(message: dict[str, Any]) -> BaseMessage:
    fields = dict(message)
    role = fields.pop("role") if "role" in fields else fields.pop("type", None)
    if role is None or "content" not in fields:
        raise ValueError(f"Message dict must contain 'role' and 'content' keys, got {message}")
    content = fields.pop("content")
    return _create(role, "" if content is None else content, fields)


def _create(role: Any, content: Any, fields: dict[str, Any]) -> BaseMessage:
    cls = _KINDS.get(role) if isinstance(role, str) else None
    if cls is None:
        raise ValueError(
            f"Unexpected message type: '{role}'. Use one of 'human', 'user', 'ai', 'assistant', 'tool', "
            "'system', 'developer', or 'remove'."
        )
    kwargs: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    known = cls.model_fields
    for key, value in fields.items():
        if value is None or key == "additional_kwargs":
            continue  # None means "not given", so the field keeps its default
        if key in known and key not in ("type", "content"):
            kwargs[key] = value
        else:
            extra[key] = value
    # Keys with no field of their own travel in additional_kwargs, as in LangChain.
    if extra or fields.get("additional_kwargs") or role == "developer":
        kwargs["additional_kwargs"] = {**extra, **(fields.get("additional_kwargs") or {})}
        if role == "developer":
            kwargs["additional_kwargs"]["__openai_role__"] = "developer"
    if cls is AIMessage and kwargs.get("tool_calls"):
        kwargs["tool_calls"] = [_from_openai_call(call) for call in kwargs["tool_calls"]]
    if cls is RemoveMessage:
        return RemoveMessage(**kwargs)
    return cls(content, **kwargs)


def _from_openai_call(call: Any) -> Any:
    # OpenAI's shape: {"id", "type": "function", "function": {"name", "arguments": "<json>"}}.
    if not (isinstance(call, dict) and "function" in call):
        return call
    args = call["function"]["arguments"]
    if isinstance(args, str):
        args = json.loads(args, strict=False)
    return ToolCall(name=call["function"]["name"], args=args, id=call["id"], type="tool_call")


# The list functions live in a private module; it imports the classes above, so it comes last.
from graphrt._message_utils import (  # noqa: E402
    count_tokens_approximately,
    filter_messages,
    get_buffer_string,
    merge_message_runs,
    message_to_dict,
    messages_from_dict,
    messages_to_dict,
    trim_messages,
)
