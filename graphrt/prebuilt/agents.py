"""`create_agent`: LangChain v1's agent factory (`langchain.agents.create_agent`) on graphrt."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from graphrt.checkpoint.base import BaseCheckpointSaver
from graphrt.graph.state import CompiledStateGraph
from graphrt.messages import SystemMessage
from graphrt.prebuilt._agent import AgentSpec, AgentState, build_agent, is_dynamic_model, system_prompt_of
from graphrt.prebuilt.tool_node import ToolNode
from graphrt.store.base import BaseStore
from graphrt.tools import BaseTool

__all__ = ("AgentState", "create_agent")


def create_agent(
    model: str | Any,
    tools: Sequence[BaseTool | Callable[..., Any]] | ToolNode | None = None,
    *,
    system_prompt: str | SystemMessage | None = None,
    middleware: Sequence[Any] = (),
    response_format: Any = None,
    state_schema: type[Any] | None = None,
    context_schema: type[Any] | None = None,
    checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
    store: BaseStore | None = None,
    interrupt_before: list[str] | None = None,
    interrupt_after: list[str] | None = None,
    debug: bool = False,
    name: str | None = None,
    cache: Any = None,
) -> CompiledStateGraph[Any]:
    """An agent that calls `model` with `tools` in a loop until the model answers without tool calls.

    The graph has a `model` node and (with tools) a `tools` node (`ToolNode`). `system_prompt` is put before
    the conversation on every model call, never stored. `model` is a chat model (`graphrt.models`) or a
    `"provider:model"` string for `init_chat_model`. With `response_format` (a pydantic model, TypedDict or
    JSON schema) the final answer is also parsed through `model.with_structured_output(...)` into the
    `structured_response` key. Tools reach `runtime.store` / `runtime.context` through `ToolRuntime`.

    Raises:
        NotImplementedError: `middleware` was given (graphrt has no agent middleware yet).
        TypeError: `model` is a function rather than a model (that is `create_react_agent`'s dynamic model).
    """
    if is_dynamic_model(model):
        raise TypeError(
            "create_agent takes a chat model or a 'provider:model' string, not a function: LangChain picks the "
            "model per call through middleware, which graphrt does not have yet. create_react_agent(model=...) "
            "accepts a function (state, runtime) -> chat model."
        )
    if middleware:
        raise NotImplementedError(
            "create_agent(middleware=...) is not supported by graphrt yet; build the loop with StateGraph, "
            "ToolNode and tools_condition to customise it."
        )
    spec = AgentSpec(
        model=model,
        tools=tools if tools is not None else [],
        prompt=system_prompt_of(system_prompt),
        response_format=_schema_of(response_format),
        structured_prompt=None,
        state_schema=state_schema or AgentState,
        context_schema=context_schema,
        name=name,
        model_node="model",
        separate_structured_node=False,
    )
    return build_agent(spec).compile(
        checkpointer=checkpointer,
        store=store,
        interrupt_before=interrupt_before,
        interrupt_after=interrupt_after,
        debug=debug,
        name=name,
        cache=cache,
    )


def _schema_of(response_format: Any) -> Any:
    """LangChain's `ToolStrategy(schema)` / `ProviderStrategy(schema)` wrappers carry the schema in `.schema`."""
    inner = getattr(response_format, "schema", None)
    if inner is not None and not isinstance(response_format, type | dict):
        return inner
    return response_format
