"""`langchain_core.messages.tool`'s names."""

from graphrt.messages import (
    InvalidToolCall,
    ToolCall,
    ToolCallChunk,
    ToolMessage,
    ToolMessageChunk,
    tool_call,
    tool_call_chunk,
)

__all__ = (
    "InvalidToolCall",
    "ToolCall",
    "ToolCallChunk",
    "ToolMessage",
    "ToolMessageChunk",
    "tool_call",
    "tool_call_chunk",
)
