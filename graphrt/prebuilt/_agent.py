"""The tool-calling agent loop that `create_agent` and `create_react_agent` both build.

model node -> (tool calls?) -> tools node -> model node ... -> END. The model node calls the chat model
on the prompt plus the conversation; the tools node is a `ToolNode`. With a response format the final
answer is also turned into a `structured_response` through the model's `with_structured_output`.
create_react_agent's hooks add a `pre_model_hook` node before every model call (its `llm_input_messages`
replace the conversation as the model's input, without changing the state) and a `post_model_hook` node
after every model call (the loop then routes on what is left unanswered).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from itertools import chain, compress
from operator import attrgetter, itemgetter
from typing import Annotated, Any, NotRequired, Required, TypedDict, get_type_hints, is_typeddict

from pydantic import BaseModel, create_model

from graphrt.constants import END, START
from graphrt.graph import StateGraph
from graphrt.graph.message import add_messages
from graphrt.managed import RemainingSteps
from graphrt.messages import AIMessage, AnyMessage, BaseMessage, SystemMessage, ToolMessage, convert_to_messages
from graphrt.prebuilt.tool_node import ToolNode
from graphrt.runtime import Runtime
from graphrt.tools import BaseTool
from graphrt.types import Send


class AgentState(TypedDict):
    """The state of an agent: the conversation, and the structured answer when a response format is set."""

    messages: Required[Annotated[list[AnyMessage], add_messages]]
    remaining_steps: NotRequired[RemainingSteps]
    structured_response: NotRequired[Any]


Prompt = Callable[[Any], Sequence[Any]]


@dataclass(frozen=True, slots=True)
class AgentSpec:
    """Everything the agent graph is built from (both factories fill one in)."""

    model: Any
    tools: Sequence[BaseTool | Callable[..., Any]] | ToolNode
    prompt: Prompt | Callable[[Any], Awaitable[Sequence[Any]]]
    response_format: Any
    structured_prompt: str | None
    state_schema: Any
    context_schema: Any
    name: str | None
    model_node: str
    """"model" (create_agent) or "agent" (create_react_agent)."""
    separate_structured_node: bool
    """create_react_agent makes the structured response in its own node, create_agent in the model node."""
    send_each_call: bool = True
    """Each tool call runs as its own `tools` task (LangGraph's v2); False: one task runs them all (v1)."""
    step_guard: bool = False
    """create_react_agent: near the recursion limit, a model answer that calls tools is replaced by "Sorry, need
    more steps to process this request." (read from the state's `remaining_steps`), instead of the run failing."""
    pre_model_hook: Any = None
    """create_react_agent: a node run before every model call."""
    post_model_hook: Any = None
    """create_react_agent: a node run after every model call."""


def resolve_model(model: Any) -> Any:
    """A chat model from a model object (a LangChain chat model is wrapped) or a "provider:model" string."""
    if isinstance(model, str):
        from graphrt.models import init_chat_model

        return init_chat_model(model)
    from graphrt.models._langchain import LangChainChatModel, _is_langchain_model

    if _is_langchain_model(model):  # LangChain messages in and out: converted at the model's edge
        return LangChainChatModel(model)
    if not callable(getattr(model, "invoke", None)):
        raise TypeError(
            f"An agent needs a chat model (an object with invoke/ainvoke and bind_tools) or a 'provider:model' "
            f"string such as 'anthropic:claude-3-5-haiku-latest', or (create_react_agent) a function "
            f"(state, runtime) -> chat model; got {type(model).__name__}."
        )
    return model


def is_dynamic_model(model: Any) -> bool:
    """Whether `model` is a function that picks the chat model at each call (LangGraph's dynamic model)."""
    return callable(model) and not callable(getattr(model, "invoke", None))


def system_prompt_of(prompt: str | SystemMessage | Callable[..., Any] | None) -> Prompt:
    """The function that turns the state into the model's input messages."""
    if prompt is None:
        return _messages_of
    if isinstance(prompt, str | SystemMessage):
        system = SystemMessage(prompt) if isinstance(prompt, str) else prompt
        return lambda state: [system, *_messages_of(state)]
    if callable(prompt):
        return prompt
    raise ValueError(f"Got unexpected type for `prompt`: {type(prompt)}")


def _messages_of(state: Any) -> list[Any]:
    messages = state.get("messages") if isinstance(state, dict) else getattr(state, "messages", None)
    if messages is None:
        raise ValueError(f"Expected input to call_model to have 'messages' key, but got {state}")
    return list(messages)


_TYPE, _CALL_ID, _TOOL_CALLS, _ID = (
    attrgetter("type"),
    attrgetter("tool_call_id"),
    attrgetter("tool_calls"),
    itemgetter("id"),
)


class HistoryCheck:
    """Checks that every tool call in the history has its ToolMessage (models reject a history without one).

    This runs before every model call, on a history that mostly repeats the last one checked, so the last
    history that passed is remembered (a shallow copy, with the ids of the tool calls answered in it) and a
    history that starts with it costs only its new messages; the node keeps that one history alive.
    Messages are told apart by their `type` string, with C-level loops, no Python code per message.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: tuple[list[Any], frozenset[Any]] = ([], frozenset())

    def __call__(self, messages: list[Any]) -> None:
        """Raise ValueError naming the first unanswered tool calls, if any."""
        prefix, answered = self._last  # one read: a node may run in several threads at once
        if prefix and len(messages) >= len(prefix) and messages[: len(prefix)] == prefix:
            new = messages[len(prefix) :]
        else:
            new, answered = messages, frozenset()
        types = list(map(_TYPE, new))
        answered = answered.union(map(_CALL_ID, compress(new, map("tool".__eq__, types))))
        asked = chain.from_iterable(map(_TOOL_CALLS, compress(new, map("ai".__eq__, types))))
        if not answered.issuperset(map(_ID, asked)):
            _raise_unanswered(messages)
        self._last = (list(messages), answered)


def _raise_unanswered(messages: Sequence[Any]) -> None:
    answered = {m.tool_call_id for m in messages if m.type == "tool"}
    missing = [c for m in messages if m.type == "ai" for c in m.tool_calls if c["id"] not in answered]
    raise ValueError(
        "Found AIMessages with tool_calls that do not have a corresponding ToolMessage. Here are the first few "
        f"of those tool calls: {missing[:3]}.\n\nEvery tool call (LLM requesting to call a tool) in the message "
        "history MUST have a corresponding ToolMessage (result of a tool invocation to return to the LLM) - "
        "this is required by most LLM providers."
    )


class ModelNode:
    """Calls the chat model on the prompt; adds the answer (and, inline, the structured response)."""

    def __init__(self, spec: AgentSpec, model: Any, tools: list[BaseTool]) -> None:
        self.spec = spec
        self.bound = model.bind_tools(tools) if tools and model is not None else model
        self.model = model
        self.name = spec.model_node
        self._check_history = HistoryCheck()
        self._direct = frozenset(t.name for t in tools if t.return_direct)

    def _model_state(self, state: Any) -> Any:
        """The state the prompt sees: with a pre-model hook, its `llm_input_messages` (when set) as `messages`."""
        if self.spec.pre_model_hook is None:
            return state
        if isinstance(state, dict):
            llm_input = state.get("llm_input_messages")
            return {**state, "messages": llm_input} if llm_input else state
        llm_input = getattr(state, "llm_input_messages", None)
        return state.model_copy(update={"messages": llm_input}) if llm_input else state

    def _inputs(self, state: Any, messages: Sequence[Any]) -> list[BaseMessage]:
        self._check_history(_messages_of(state))
        return convert_to_messages(list(messages))

    def _answer(self, state: Any, response: Any) -> AIMessage:
        if not isinstance(response, AIMessage):
            raise TypeError(f"The chat model returned {type(response).__name__}, expected an AIMessage.")
        if self.spec.step_guard and self._out_of_steps(state, response):
            return AIMessage(id=response.id, content="Sorry, need more steps to process this request.")
        return response.model_copy(update={"name": self.spec.name}) if self.spec.name else response

    def _out_of_steps(self, state: Any, answer: AIMessage) -> bool:
        """Whether the tools `answer` calls (and the model call after them) no longer fit in the run's steps."""
        remaining: int | None = (
            state.get("remaining_steps") if isinstance(state, dict) else getattr(state, "remaining_steps", None)
        )
        if remaining is None or not answer.tool_calls:
            return False
        if all(call["name"] in self._direct for call in answer.tool_calls):
            return remaining < 1  # the tools end the run: only their step is needed
        return remaining < 2

    def _structured(self, model: Any = None) -> tuple[Any, list[BaseMessage]]:
        prefix: list[BaseMessage] = [SystemMessage(self.spec.structured_prompt)] if self.spec.structured_prompt else []
        return (model or self.model).with_structured_output(self.spec.response_format), prefix

    # The node asks for no config or runtime: the engine then builds neither (the model finds the running
    # task itself when it streams tokens).
    def __call__(self, state: Any) -> dict[str, Any]:
        return self._call(state, self.bound, self.model)

    async def _acall(self, state: Any) -> dict[str, Any]:
        return await self._acall_with(state, self.bound, self.model)

    def _call(self, state: Any, bound: Any, model: Any) -> dict[str, Any]:
        state = self._model_state(state)
        prompt = self.spec.prompt(state)
        messages = self._inputs(state, prompt)  # type: ignore[arg-type]
        answer = self._answer(state, bound.invoke(messages))
        out: dict[str, Any] = {"messages": [answer]}
        if self._inline_structured(answer):
            structured, prefix = self._structured(model)
            out["structured_response"] = structured.invoke([*prefix, *messages, answer])
        return out

    async def _acall_with(self, state: Any, bound: Any, model: Any) -> dict[str, Any]:
        state = self._model_state(state)
        prompt = self.spec.prompt(state)
        if isinstance(prompt, Awaitable):
            prompt = await prompt
        messages = self._inputs(state, prompt)
        answer = self._answer(state, await bound.ainvoke(messages))
        out: dict[str, Any] = {"messages": [answer]}
        if self._inline_structured(answer):
            structured, prefix = self._structured(model)
            out["structured_response"] = await structured.ainvoke([*prefix, *messages, answer])
        return out

    @property
    def __graphrt_acall__(self) -> Callable[..., Any]:
        return self._acall

    def _inline_structured(self, answer: AIMessage) -> bool:
        return (
            self.spec.response_format is not None and not answer.tool_calls and not self.spec.separate_structured_node
        )


class DynamicModelNode(ModelNode):
    """The model node when a function picks the model at each call: `(state, runtime) -> chat model`.

    As in LangGraph, the function binds the tools itself (`model.bind_tools(tools)`); it may be a coroutine
    function, and then the agent runs only under `ainvoke`/`astream`.
    """

    def __init__(self, spec: AgentSpec, tools: list[BaseTool]) -> None:
        super().__init__(spec, None, tools)
        self._async_choice = inspect.iscoroutinefunction(spec.model)

    def choose(self, state: Any, runtime: Runtime[Any]) -> Any:
        if self._async_choice:
            raise RuntimeError(
                "Async model callable provided but agent invoked synchronously. Use agent.ainvoke() or "
                "agent.astream(), or provide a sync model callable."
            )
        return resolve_model(self.spec.model(self._model_state(state), runtime))

    async def achoose(self, state: Any, runtime: Runtime[Any]) -> Any:
        chosen = self.spec.model(self._model_state(state), runtime)
        return resolve_model(await chosen if inspect.isawaitable(chosen) else chosen)

    def __call__(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any]:  # type: ignore[override]
        model = self.choose(state, runtime)
        return self._call(state, model, model)

    async def _acall(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any]:  # type: ignore[override]
        model = await self.achoose(state, runtime)
        return await self._acall_with(state, model, model)


class StructuredResponseNode:
    """create_react_agent's `generate_structured_response` node."""

    name = "generate_structured_response"

    def __init__(self, model_node: ModelNode) -> None:
        self.model_node = model_node

    def __call__(self, state: Any) -> dict[str, Any]:
        return self._respond(state, None)

    async def _acall(self, state: Any) -> dict[str, Any]:
        return await self._arespond(state, None)

    def _respond(self, state: Any, model: Any) -> dict[str, Any]:
        structured, prefix = self.model_node._structured(model)
        return {"structured_response": structured.invoke([*prefix, *_messages_of(state)])}

    async def _arespond(self, state: Any, model: Any) -> dict[str, Any]:
        structured, prefix = self.model_node._structured(model)
        return {"structured_response": await structured.ainvoke([*prefix, *_messages_of(state)])}

    @property
    def __graphrt_acall__(self) -> Callable[..., Any]:
        return self._acall


class DynamicStructuredResponseNode(StructuredResponseNode):
    """`generate_structured_response` asking the model function which model answers."""

    model_node: DynamicModelNode

    def __call__(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any]:  # type: ignore[override]
        return self._respond(state, self.model_node.choose(state, runtime))

    async def _acall(self, state: Any, runtime: Runtime[Any]) -> dict[str, Any]:  # type: ignore[override]
        return await self._arespond(state, await self.model_node.achoose(state, runtime))


def build_agent(spec: AgentSpec) -> StateGraph[Any]:
    """The agent's `StateGraph`, ready to compile."""
    tool_node = spec.tools if isinstance(spec.tools, ToolNode) else ToolNode(list(spec.tools))
    tools = list(tool_node.tools_by_name.values())
    dynamic = is_dynamic_model(spec.model)
    model_node = DynamicModelNode(spec, tools) if dynamic else ModelNode(spec, resolve_model(spec.model), tools)
    state_schema = spec.state_schema or AgentState
    builder: StateGraph[Any] = StateGraph(state_schema, context_schema=spec.context_schema)
    entry = spec.model_node
    if spec.pre_model_hook is not None:
        builder.add_node(spec.model_node, model_node, input_schema=_with_llm_input(state_schema))
        builder.add_node("pre_model_hook", spec.pre_model_hook)
        builder.add_edge("pre_model_hook", spec.model_node)
        entry = "pre_model_hook"
    else:
        builder.add_node(spec.model_node, model_node)
    builder.add_edge(START, entry)
    after_model = END
    if spec.response_format is not None and spec.separate_structured_node:
        structured = (
            DynamicStructuredResponseNode if isinstance(model_node, DynamicModelNode) else StructuredResponseNode
        )
        builder.add_node(StructuredResponseNode.name, structured(model_node))
        builder.add_edge(StructuredResponseNode.name, END)
        after_model = StructuredResponseNode.name
    answered = spec.model_node
    if spec.post_model_hook is not None:
        builder.add_node("post_model_hook", spec.post_model_hook)
        builder.add_edge(spec.model_node, "post_model_hook")
        answered = "post_model_hook"
    if not tools:
        builder.add_edge(answered, after_model)
        return builder
    builder.add_node("tools", tool_node)

    def route_model(state: Any) -> str | list[Send]:
        last = _messages_of(state)[-1]
        if not (isinstance(last, AIMessage) and last.tool_calls):
            return after_model
        if spec.send_each_call:
            return [Send("tools", [call]) for call in last.tool_calls]
        return "tools"

    def route_post_hook(state: Any) -> str | list[Send]:
        """After the post-model hook: the last answer's tool calls still unanswered, else on as without tools."""
        messages = _messages_of(state)
        answered_ids = {m.tool_call_id for m in messages if isinstance(m, ToolMessage)}
        last_ai = next((m for m in reversed(messages) if isinstance(m, AIMessage)), None)
        pending = [c for c in (last_ai.tool_calls if last_ai else ()) if c["id"] not in answered_ids]
        if pending:
            return [Send("tools", [call]) for call in pending]
        return entry if isinstance(messages[-1], ToolMessage) else after_model

    if spec.post_model_hook is not None:
        builder.add_conditional_edges("post_model_hook", route_post_hook, ["tools", entry, after_model])
    else:
        builder.add_conditional_edges(spec.model_node, route_model, ["tools", after_model])
    direct = {t.name for t in tools if t.return_direct}
    if not direct:
        builder.add_edge("tools", entry)
        return builder

    def route_tools(state: Any) -> str:
        for message in reversed(_messages_of(state)):
            if not isinstance(message, ToolMessage):
                break
            if message.name in direct:
                return END
        return entry

    builder.add_conditional_edges("tools", route_tools, [entry, END])
    return builder


def _with_llm_input(state_schema: Any) -> Any:
    """The model node's input with a pre-model hook: the state plus the hook's `llm_input_messages`."""
    if isinstance(state_schema, type) and issubclass(state_schema, BaseModel):
        return create_model(
            "CallModelInputSchema", __base__=state_schema, llm_input_messages=(list[AnyMessage] | None, None)
        )
    if is_typeddict(state_schema):
        return TypedDict(  # type: ignore[operator]
            "CallModelInputSchema",
            {**get_type_hints(state_schema, include_extras=True), "llm_input_messages": NotRequired[list[AnyMessage]]},
        )
    raise TypeError(
        f"create_react_agent(pre_model_hook=...) needs a TypedDict or pydantic state_schema, got "
        f"{state_schema!r}: the model node's input adds `llm_input_messages` to it."
    )
