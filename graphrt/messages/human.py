"""`langchain_core.messages.human`'s names."""

from graphrt.messages import (
    HumanMessage,
    HumanMessageChunk,
)

__all__ = (
    "HumanMessage",
    "HumanMessageChunk",
)
