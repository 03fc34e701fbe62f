"""`langchain_core.messages.base`'s names."""

from graphrt.messages import (
    BaseMessage,
    BaseMessageChunk,
    message_to_dict,
    messages_to_dict,
)

__all__ = (
    "BaseMessage",
    "BaseMessageChunk",
    "message_to_dict",
    "messages_to_dict",
)
