"""`langchain_core.messages.ai`'s names."""

from graphrt.messages import (
    AIMessage,
    AIMessageChunk,
    UsageMetadata,
)

__all__ = (
    "AIMessage",
    "AIMessageChunk",
    "UsageMetadata",
)
