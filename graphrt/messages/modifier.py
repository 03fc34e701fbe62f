"""`langchain_core.messages.modifier`'s names."""

from graphrt.messages import (
    RemoveMessage,
)

__all__ = ("RemoveMessage",)
