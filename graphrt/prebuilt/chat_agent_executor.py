"""`create_react_agent`: LangGraph's older agent factory, the same loop as `create_agent`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from pydantic import BaseModel

from graphrt.checkpoint.base import BaseCheckpointSaver
from graphrt.graph.message import add_messages
from graphrt.graph.state import CompiledStateGraph
from graphrt.managed import RemainingSteps
from graphrt.messages import AnyMessage, SystemMessage
from graphrt.prebuilt._agent import AgentSpec, AgentState, build_agent, system_prompt_of
from graphrt.prebuilt.tool_node import ToolNode
from graphrt.store.base import BaseStore
from graphrt.tools import BaseTool

__all__ = (
    "AgentState",
    "AgentStatePydantic",
    "AgentStateWithStructuredResponse",
    "AgentStateWithStructuredResponsePydantic",
    "create_react_agent",
    "create_tool_calling_executor",
)


class AgentStatePydantic(BaseModel):
    """`AgentState` as a pydantic model (for a `state_schema` that extends it)."""

    messages: Annotated[Sequence[AnyMessage], add_messages]
    remaining_steps: RemainingSteps = 25


class AgentStateWithStructuredResponse(AgentState):
    """`AgentState` with the `structured_response` that `response_format` fills in."""

    structured_response: Any  # type: ignore[misc]  # required here (NotRequired in AgentState)


class AgentStateWithStructuredResponsePydantic(AgentStatePydantic):
    """`AgentStatePydantic` with the `structured_response` that `response_format` fills in."""

    structured_response: Any = None


def create_react_agent(
    model: str | Any,
    tools: Sequence[BaseTool | Callable[..., Any]] | ToolNode,
    *,
    prompt: str | SystemMessage | Callable[[Any], Any] | None = None,
    response_format: Any = None,
    pre_model_hook: Any = None,
    post_model_hook: Any = None,
    state_schema: type[Any] | None = None,
    context_schema: type[Any] | None = None,
    checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
    store: BaseStore | None = None,
    interrupt_before: list[str] | None = None,
    interrupt_after: list[str] | None = None,
    debug: bool = False,
    version: str = "v2",
    name: str | None = None,
) -> CompiledStateGraph[Any]:
    """LangGraph's `create_react_agent`: an `agent` node and a `tools` node in a loop.

    `prompt` is a string or `SystemMessage` put before the conversation, or a function from the state to the
    model's input messages. `response_format` (a schema, or `(prompt, schema)`) adds a
    `generate_structured_response` node that fills `structured_response` after the loop.

    `pre_model_hook` is a node run before every model call (trimming or summarizing the history): it returns
    `messages` to change the conversation in the state (start with `RemoveMessage(id=REMOVE_ALL_MESSAGES)` to
    replace it) and/or `llm_input_messages`, which the model sees instead of `messages` without the state's
    conversation changing. `post_model_hook` is a node run after every model call (guardrails, human review);
    the tool calls of the last answer that are still unanswered after it go to the tools.
    """
    if version not in ("v1", "v2"):
        raise ValueError(f"Invalid version {version!r}: use 'v1' or 'v2'.")
    structured_prompt, schema = response_format if isinstance(response_format, tuple) else (None, response_format)
    spec = AgentSpec(
        model=model,
        tools=tools,
        prompt=system_prompt_of(prompt),
        response_format=schema,
        structured_prompt=structured_prompt,
        state_schema=state_schema or AgentState,
        context_schema=context_schema,
        name=name,
        model_node="agent",
        separate_structured_node=True,
        send_each_call=version == "v2",
        step_guard=True,
        pre_model_hook=pre_model_hook,
        post_model_hook=post_model_hook,
    )
    return build_agent(spec).compile(
        checkpointer=checkpointer,
        store=store,
        interrupt_before=interrupt_before,
        interrupt_after=interrupt_after,
        debug=debug,
        name=name,
    )


create_tool_calling_executor = create_react_agent
"""LangGraph's other old name for `create_react_agent`."""
