from graphrt.prebuilt.agents import create_agent
from graphrt.prebuilt.chat_agent_executor import AgentState, create_react_agent
from graphrt.prebuilt.memory_tools import (
    create_manage_memory_tool,
    create_memory_tools,
    create_profile_tool,
    create_search_memory_tool,
    fill_namespace,
    update_profile,
)
from graphrt.prebuilt.tool_node import InjectedState, InjectedStore, ToolNode, ToolRuntime, tools_condition

__all__ = (
    "AgentState",
    "InjectedState",
    "InjectedStore",
    "ToolNode",
    "ToolRuntime",
    "create_agent",
    "create_manage_memory_tool",
    "create_memory_tools",
    "create_profile_tool",
    "create_react_agent",
    "create_search_memory_tool",
    "fill_namespace",
    "tools_condition",
    "update_profile",
)
