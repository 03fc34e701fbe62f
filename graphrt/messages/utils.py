"""What `langchain_core.messages.utils` offers, for code that imports it from there."""

from graphrt.messages import (
    AnyMessage,
    MessageLikeRepresentation,
    convert_to_messages,
    count_tokens_approximately,
    filter_messages,
    get_buffer_string,
    merge_message_runs,
    message_chunk_to_message,
    messages_from_dict,
    messages_to_dict,
    trim_messages,
)

__all__ = (
    "AnyMessage",
    "MessageLikeRepresentation",
    "convert_to_messages",
    "count_tokens_approximately",
    "filter_messages",
    "get_buffer_string",
    "merge_message_runs",
    "message_chunk_to_message",
    "messages_from_dict",
    "messages_to_dict",
    "trim_messages",
)
