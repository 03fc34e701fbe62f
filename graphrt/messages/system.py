"""`langchain_core.messages.system`'s names."""

from graphrt.messages import (
    SystemMessage,
    SystemMessageChunk,
)

__all__ = (
    "SystemMessage",
    "SystemMessageChunk",
)
