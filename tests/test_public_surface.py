"""The public surface: LangGraph's import paths with `graphrt` in their place, tuple `__all__` everywhere."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import graphrt

PROMISED: dict[str, tuple[str, ...]] = {
    "graphrt.graph": ("StateGraph", "START", "END", "MessagesState", "add_messages", "CompiledStateGraph"),
    "graphrt.graph.message": ("add_messages", "MessagesState", "REMOVE_ALL_MESSAGES"),
    "graphrt.func": ("entrypoint", "task"),
    "graphrt.types": (
        "Command",
        "Send",
        "interrupt",
        "Interrupt",
        "RetryPolicy",
        "StateSnapshot",
        "Overwrite",
        "StreamWriter",
        "PregelTask",
        "StateUpdate",
        "All",
        "StreamMode",
        "Durability",
        "CachePolicy",
        "CacheKey",
        "TaskPayload",
        "TaskResultPayload",
        "CheckpointPayload",
        "CheckpointTask",
        "DebugPayload",
        "GraphOutput",
        "TimeoutPolicy",
        "StreamPart",
        "ValuesStreamPart",
        "UpdatesStreamPart",
        "MessagesStreamPart",
        "CustomStreamPart",
        "CheckpointStreamPart",
        "TasksStreamPart",
        "DebugStreamPart",
    ),
    "graphrt.typing": ("StateT", "StateT_co", "StateT_contra", "ContextT", "InputT", "OutputT"),
    "graphrt.warnings": (
        "LangGraphDeprecationWarning",
        "LangGraphDeprecatedSinceV05",
        "LangGraphDeprecatedSinceV10",
        "LangGraphDeprecatedSinceV11",
    ),
    "graphrt.config": ("RunnableConfig", "get_config", "get_store", "get_stream_writer"),
    "graphrt.runtime": ("Runtime", "get_runtime", "ExecutionInfo", "ServerInfo", "RunControl"),
    "graphrt.channels": (
        "BaseChannel",
        "LastValue",
        "AnyValue",
        "BinaryOperatorAggregate",
        "Topic",
        "EphemeralValue",
        "NamedBarrierValue",
        "UntrackedValue",
    ),
    "graphrt.errors": (
        "GraphRecursionError",
        "InvalidUpdateError",
        "GraphInterrupt",
        "NodeInterrupt",
        "ParentCommand",
        "EmptyInputError",
        "EmptyChannelError",
        "ThreadConflictError",
        "NodeError",
        "NodeTimeoutError",
        "GraphDrained",
    ),
    "graphrt.constants": ("START", "END"),
    "graphrt.messages.utils": ("trim_messages", "count_tokens_approximately", "filter_messages", "convert_to_messages"),
    "graphrt.messages.ai": ("AIMessage", "AIMessageChunk", "UsageMetadata"),
    "graphrt.messages.tool": ("ToolCall", "ToolMessage", "tool_call"),
    "graphrt.messages.base": ("BaseMessage",),
    "graphrt.messages.human": ("HumanMessage",),
    "graphrt.messages.system": ("SystemMessage",),
    "graphrt.messages.modifier": ("RemoveMessage",),
    "graphrt.messages": (
        "BaseMessage",
        "HumanMessage",
        "AIMessage",
        "SystemMessage",
        "ToolMessage",
        "RemoveMessage",
        "AnyMessage",
        "convert_to_messages",
        "AIMessageChunk",
        "HumanMessageChunk",
        "SystemMessageChunk",
        "ToolMessageChunk",
        "ChatMessage",
        "ChatMessageChunk",
        "FunctionMessage",
        "FunctionMessageChunk",
        "BaseMessageChunk",
        "ToolCallChunk",
        "trim_messages",
        "filter_messages",
        "merge_message_runs",
        "get_buffer_string",
        "messages_to_dict",
        "messages_from_dict",
        "message_to_dict",
        "message_chunk_to_message",
        "count_tokens_approximately",
    ),
    "graphrt.tools": (
        "tool",
        "BaseTool",
        "StructuredTool",
        "ToolException",
        "InjectedToolArg",
        "InjectedToolCallId",
        "InjectedState",
        "InjectedStore",
        "ToolRuntime",
    ),
    "graphrt.prebuilt": (
        "create_agent",
        "create_react_agent",
        "ToolNode",
        "tools_condition",
        "ToolRuntime",
        "InjectedState",
        "InjectedStore",
        "AgentState",
        "create_memory_tools",
    ),
    "graphrt.prebuilt.tool_node": ("ToolNode", "tools_condition", "InjectedState", "InjectedStore", "ToolRuntime"),
    "graphrt.prebuilt.chat_agent_executor": ("create_react_agent", "AgentState"),
    "graphrt.models": (
        "BaseChatModel",
        "ScriptedChatModel",
        "OutputParserError",
        "ScriptExhaustedError",
        "init_chat_model",
        "ChatOpenAI",
        "ChatAnthropic",
        "MissingAPIKeyError",
        "LangChainChatModel",
        "as_chat_model",
    ),
    "graphrt.pregel": ("Pregel",),
    "graphrt.checkpoint.base": ("BaseCheckpointSaver", "Checkpoint", "CheckpointTuple", "CheckpointMetadata"),
    "graphrt.checkpoint.memory": ("InMemorySaver", "MemorySaver"),
    "graphrt.checkpoint.serde.jsonplus": ("JsonPlusSerializer",),
    "graphrt.checkpoint.sqlite": ("SqliteSaver",),
    "graphrt.checkpoint.sqlite.aio": ("AsyncSqliteSaver",),
    "graphrt.store.base": (
        "BaseStore",
        "Item",
        "SearchItem",
        "GetOp",
        "PutOp",
        "SearchOp",
        "ListNamespacesOp",
        "MatchCondition",
        "InvalidNamespaceError",
    ),
    "graphrt.store.memory": ("InMemoryStore",),
    "graphrt.store.sqlite": ("SqliteStore",),
    "graphrt.store.sqlite.aio": ("AsyncSqliteStore",),
}


@pytest.mark.parametrize("module", sorted(PROMISED))
def test_promised_names_import(module: str) -> None:
    mod = importlib.import_module(module)
    missing = [name for name in PROMISED[module] if not hasattr(mod, name)]
    assert missing == []


def _public_modules() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(graphrt.__path__, "graphrt."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("module", _public_modules())
def test_every_public_module_has_tuple_all(module: str) -> None:
    mod = importlib.import_module(module)
    assert isinstance(getattr(mod, "__all__", None), tuple), f"{module} needs a tuple __all__"
    for name in mod.__all__:
        assert hasattr(mod, name), f"{module}.__all__ names {name!r}, which it lacks"
