"""`LangChainTool`: a `langchain_core` tool (`@tool` from `langchain_core.tools`, a `StructuredTool`, a toolkit's
tools) run by graphrt's `ToolNode` and agents, when `langchain_core` is installed."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from graphrt._inject import marked_params
from graphrt.config import RunnableConfig
from graphrt.messages import BaseMessage
from graphrt.models._langchain import from_langchain
from graphrt.tools import BaseTool

__all__ = ("LangChainTool", "is_langchain_tool")


def is_langchain_tool(item: Any) -> bool:
    """Whether `item` is a `langchain_core` tool (False when `langchain_core` is not installed)."""
    if not _from_langchain_core(item):
        return False
    try:
        from langchain_core.tools import BaseTool as LangChainBaseTool
    except ImportError:
        return False
    return isinstance(item, LangChainBaseTool)


class LangChainTool(BaseTool):
    """Wraps a `langchain_core` tool: its name, description and call schema, each call through its own
    `invoke`/`ainvoke` (so its validation, injected arguments and output formatting are LangChain's), its
    `ToolMessage` answers converted to graphrt's.

    A LangChain tool cannot take graphrt's `InjectedState`/`InjectedStore`/`ToolRuntime` parameters: write such a
    tool with `graphrt.tools.tool`.
    """

    def __init__(self, tool: Any) -> None:
        schema = tool.tool_call_schema
        if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
            raise TypeError(
                f"LangChain tool '{tool.name}' has no pydantic (v2) argument schema ({schema!r}); graphrt runs "
                "LangChain tools whose schema is a pydantic model, or write it with graphrt.tools.tool"
            )
        func = getattr(tool, "func", None) or getattr(tool, "coroutine", None)
        marked = marked_params(func) if callable(func) else []
        if marked:
            raise TypeError(
                f"LangChain tool '{tool.name}' has graphrt-injected parameters ({', '.join(marked)}), which LangChain "
                "cannot fill in: make it with graphrt.tools.tool instead of langchain_core.tools.tool"
            )
        self.tool = tool
        self.name = str(tool.name)
        self.description = str(tool.description or "")
        self.args_schema = schema
        self.return_direct = bool(getattr(tool, "return_direct", False))

    def invoke(self, input: Any, config: RunnableConfig | None = None) -> Any:
        return _ours(self.tool.invoke(input, config))

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None) -> Any:
        return _ours(await self.tool.ainvoke(input, config))

    def __repr__(self) -> str:
        return f"LangChainTool({self.tool!r})"


def _ours(output: Any) -> Any:
    """A LangChain message (or list of them) as graphrt's; anything else as it is."""
    if isinstance(output, list):
        return [_ours(item) for item in output]
    return from_langchain(output) if _is_langchain_message(output) else output


def _is_langchain_message(output: Any) -> bool:
    if isinstance(output, BaseMessage) or not _from_langchain_core(output):
        return False
    from langchain_core.messages import BaseMessage as LangChainMessage

    return isinstance(output, LangChainMessage)


def _from_langchain_core(item: Any) -> bool:
    """Whether `item`'s class is, or derives from, a `langchain_core` class (decided without importing it)."""
    return any(cls.__module__.startswith("langchain_core.") for cls in type(item).__mro__)
