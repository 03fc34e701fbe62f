"""The `add_messages` reducer and `MessagesState`, the usual state of a chat graph."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from operator import attrgetter
from typing import Annotated, Any, Literal, TypeAlias, overload

from typing_extensions import TypedDict  # pydantic needs this TypedDict before Python 3.12

from graphrt._message_history import HistoryIds
from graphrt._message_ids import SOLE_ARGUMENT, copy_with_id, getrefcount, new_uuid4, set_id
from graphrt.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    BaseMessageChunk,
    ChatMessage,
    FunctionMessage,
    HumanMessage,
    MessageLikeRepresentation,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
    convert_to_messages,
    message_chunk_to_message,
)

__all__ = ("REMOVE_ALL_MESSAGES", "MessageGraph", "Messages", "MessagesState", "add_messages")

REMOVE_ALL_MESSAGES = "__remove_all__"
"""Id for `RemoveMessage` that clears every message before it: `RemoveMessage(id=REMOVE_ALL_MESSAGES)`."""

Messages: TypeAlias = list[MessageLikeRepresentation] | MessageLikeRepresentation
"""One message-like value or a list of them."""

Format: TypeAlias = Literal["langchain-openai"]

_APPENDABLE = frozenset((HumanMessage, AIMessage, SystemMessage, ToolMessage, ChatMessage, FunctionMessage))
"""Complete messages of graphrt's own classes (exact types: isinstance is slow on pydantic models)."""
_PLAIN_TYPES = _APPENDABLE | {RemoveMessage}
_get_id = attrgetter("id")


@overload
def add_messages(left: Messages, right: Messages, *, format: Format | None = None) -> list[AnyMessage]: ...


@overload
def add_messages(
    left: None = None, right: None = None, *, format: Format | None = None
) -> Callable[[Messages, Messages], list[AnyMessage]]: ...


def add_messages(
    left: Messages | None = None, right: Messages | None = None, *, format: Format | None = None
) -> list[AnyMessage] | Callable[[Messages, Messages], list[AnyMessage]]:
    """Merge `right` into `left` by message id: append new ids, replace known ids in place, apply removals.

    Both sides may be one message-like value or a list of them (see `convert_to_messages`). A message
    without an id gets a uuid4 string: itself, as in LangGraph, when nothing but its list refers to it
    (a message a node built and returned, which no one else can see change); otherwise on a copy, the
    message given staying unchanged. Like LangGraph, merging the same message object again gives it the
    same id.
    `RemoveMessage(id=...)` deletes the message with that id, and `RemoveMessage(id=REMOVE_ALL_MESSAGES)`
    drops everything before it (earlier history and earlier messages in `right`).

    The result is a new list; the messages `right` leaves alone are the very objects of `left`, so callers
    may compare by identity to find what changed. Neither list is modified. Appending to a history costs
    O(new messages): what was checked of recent histories is remembered (see `graphrt._message_history`).

    Called with neither list (`add_messages()` or `add_messages(format=...)`), returns the reducer itself,
    for use in `Annotated[list[AnyMessage], add_messages(...)]`.

    Raises:
        ValueError: a `RemoveMessage` names an id that is not in the list, or only one of `left` and
            `right` was given.
        NotImplementedError: `format="langchain-openai"`, which needs LangChain's converters.
    """
    _check_format(format)
    if left is None and right is None:
        return add_messages
    if left is None or right is None:
        given = "left" if left is not None else "right"
        raise ValueError(f"Must specify non-null arguments for both 'left' and 'right'. Only received: '{given}'.")
    update, update_ids = _coerce(right)
    # The common step appends new messages to the history (the channel's value fed back in, or read back
    # from a checkpoint): what was checked of it before is remembered, so only the update is looked at.
    if type(left) is list and _APPENDABLE.issuperset(map(type, update)):
        appended = _histories.append(left, update, update_ids)
        if appended is not None:
            return appended
    history, history_ids = _coerce(left)
    return _merge(history, history_ids, update, update_ids)


_histories = HistoryIds(_APPENDABLE)


def _check_format(format: object) -> None:
    if format is None:
        return
    if format == "langchain-openai":
        raise NotImplementedError(
            "add_messages(format='langchain-openai') is not supported by graphrt: it relies on LangChain's "
            "OpenAI message converters. Remove the format argument; messages are then kept as given."
        )
    raise ValueError(f"Unrecognized {format=}. Expected one of 'langchain-openai', None.")


def _coerce(value: Messages) -> tuple[list[BaseMessage], list[str]]:
    """The messages in `value`, each with an id, and their ids; complete messages are kept as they are."""
    items: list[Any] = value if isinstance(value, list) else [value]
    # A history is all complete messages: check it with C-level loops and no copies. isinstance is slow
    # on pydantic models, so exact types are compared; subclasses take the slower path to the same result.
    if _PLAIN_TYPES.issuperset(map(type, items)):
        ids: list[Any] = list(map(_get_id, items))
        if None not in ids:
            return items, ids
    items = [_with_id(item, getrefcount(item)) for item in items]
    return items, list(map(_get_id, items))


def _references(item: object, references: int) -> int:
    return references


def _unshared() -> int:
    """What `getrefcount` reports in `_coerce` for an item nothing but its list refers to (the interpreter
    decides how many references the loop itself holds, so it is measured by a loop of the same shape)."""
    if SOLE_ARGUMENT < 0:
        return -1  # no reference counts: never taken for unshared
    [references] = [_references(item, getrefcount(item)) for item in [object()]]
    return references


_UNSHARED = _unshared()


def _with_id(item: Any, references: int) -> BaseMessage:
    message: BaseMessage
    if type(item) in _PLAIN_TYPES:
        message = item  # a complete message already (the usual write)
    else:
        [message] = convert_to_messages([item])
        if isinstance(message, BaseMessageChunk):
            message = message_chunk_to_message(message)  # like LangGraph, state keeps complete messages
    if message.id is not None:
        return message
    if message is not item:
        set_id(message, new_uuid4())  # built here from a dict, a tuple or a chunk: ours to change
        return message
    if references <= _UNSHARED and type(item) in _PLAIN_TYPES:
        # Only the update's list refers to this message (a node built it and returned it): nobody else
        # can see it change, so it takes its id itself, as in LangGraph, where every message does. The
        # checkpoint then holds the very object the node wrote, which is serialized once for both. (Not
        # a subclass: it may be frozen or validate assignments.)
        hit = _given.get(id(item)) if _given else None  # a copy of it given an id before keeps it
        set_id(item, hit[1] if hit is not None and hit[0]() is item else new_uuid4())
        return item
    # The caller's object: give the id to a shallow copy instead, the same id each time this object is
    # merged (a branch reading the state a node's writes will make, then the step applying them).
    return copy_with_id(item, _id_of(item))


_given: dict[int, tuple[weakref.ref[Any], str]] = {}
"""The id given to each live message object merged without one, by the object's identity. As in
LangGraph, where the message itself keeps the id it was given, merging the same object again gives it
the same id; the entry goes when the object does."""


def _id_of(message: BaseMessage) -> str:
    hit = _given.get(id(message))
    if hit is not None and hit[0]() is message:
        return hit[1]
    key, fresh = id(message), new_uuid4()
    _given[key] = (weakref.ref(message, lambda ref: _forget(key, ref)), fresh)
    return fresh


def _forget(key: int, ref: weakref.ref[Any]) -> None:
    hit = _given.get(key)
    if hit is not None and hit[0] is ref:
        _given.pop(key, None)


def _merge(
    left: list[BaseMessage], left_ids: list[str], right: list[BaseMessage], right_ids: list[str]
) -> list[AnyMessage]:
    # Only the last REMOVE_ALL counts; it also discards whatever came before it in `right`.
    for index in range(len(right) - 1, -1, -1):
        message = right[index]
        if isinstance(message, RemoveMessage) and message.id == REMOVE_ALL_MESSAGES:
            left, left_ids, right, right_ids = [], [], right[index + 1 :], right_ids[index + 1 :]
            break
    # The usual update only appends new ids: then no index is needed, one membership scan suffices.
    if not any(isinstance(message, RemoveMessage) for message in right):
        new_ids = set(right_ids)
        if len(new_ids) == len(right_ids) and new_ids.isdisjoint(left_ids):
            appended: list[Any] = left + right
            return appended
    merged: list[Any] = list(left)
    position = dict(zip(left_ids, range(len(left_ids)), strict=True))
    removed: set[str] = set()
    for message, message_id in zip(right, right_ids, strict=True):
        found = position.get(message_id)
        if found is not None:
            if isinstance(message, RemoveMessage):
                removed.add(message_id)
            else:
                # A replacement after a removal of the same id revives it, in its old place.
                removed.discard(message_id)
                merged[found] = message
        elif isinstance(message, RemoveMessage):
            raise ValueError(f"Attempting to delete a message with an ID that doesn't exist ('{message_id}')")
        else:
            position[message_id] = len(merged)
            merged.append(message)
    if removed:
        merged = [message for message in merged if message.id not in removed]
    return merged


class MessagesState(TypedDict):
    """State with one `messages` key merged by `add_messages`; subclass it to add keys."""

    messages: Annotated[list[AnyMessage], add_messages]


class MessageGraph:
    """LangGraph's deprecated graph whose whole state is one message list: not supported (use `MessagesState`)."""

    def __init__(self) -> None:
        raise NotImplementedError(
            "MessageGraph (deprecated in LangGraph) is not supported: use StateGraph(MessagesState) and have nodes "
            'return {"messages": [...]}.'
        )
