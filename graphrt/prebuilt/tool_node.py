"""`ToolNode` runs the tool calls of the last AI message; `tools_condition` routes to it.

Tool calls of one message run in parallel (worker threads in sync code, one task each in async code).
Values a tool asks for but the model must not supply (`ToolRuntime`, `InjectedState`, `InjectedStore`)
are filled in here; anything the model put under those names is dropped first, so it cannot forge them.
"""

from __future__ import annotations

import contextvars
import dataclasses
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import anyio
from pydantic import BaseModel, ValidationError

from graphrt._context import running_task
from graphrt.config import RunnableConfig
from graphrt.errors import GraphBubbleUp, is_invalid_resume
from graphrt.messages import AIMessage, AnyMessage, ToolCall, ToolMessage, convert_to_messages
from graphrt.prebuilt._tool_errors import (
    INVALID_TOOL_NAME_ERROR_TEMPLATE,
    ErrorHandler,
    ToolInvocationError,
    default_handle_tool_errors,
    error_content,
    handled_types,
)
from graphrt.runtime import Runtime
from graphrt.tools import BaseTool, InjectedState, InjectedStore, StructuredTool, ToolRuntime, to_tool
from graphrt.types import Command

__all__ = ("InjectedState", "InjectedStore", "ToolNode", "ToolRuntime", "tools_condition")

InputKind = Literal["list", "dict", "tool_calls"]


class ToolNode:
    """A graph node that executes the tool calls of the latest `AIMessage`.

    Input: a state with a `messages` key (answer: `{"messages": [ToolMessage, ...]}`), a list of messages
    (answer: a list of `ToolMessage`s), or a list of tool-call dicts. A tool returning a `Command` makes the
    answer a list of `Command`s.

    `handle_tool_errors` decides which tool errors become an error `ToolMessage` the model can react to
    (the others propagate): the default `default_handle_tool_errors` (every error: invalid arguments with
    LangGraph's "Error invoking tool ..." text, others as `True` words them), `True` (every error, as
    "Error: <repr>\\n Please fix your mistakes."), `False` (none), a string (every error, with that text), an
    exception type or a tuple of them (those, with the `True` text), or a function `(e) -> str` (the types
    its argument is annotated with, with its return value). A call to an unknown tool always gets an error
    message; interrupts always propagate. Tools may be graphrt tools, functions, or LangChain tools (run
    through their own `invoke`).
    """

    def __init__(
        self,
        tools: Sequence[BaseTool | Callable[..., Any]],
        *,
        name: str = "tools",
        tags: list[str] | None = None,
        handle_tool_errors: ErrorHandler = default_handle_tool_errors,
        messages_key: str = "messages",
    ) -> None:
        self.name = name
        self.tags = tags
        self.handle_tool_errors = handle_tool_errors
        self.messages_key = messages_key
        self._handled = handled_types(handle_tool_errors)
        self._tools_by_name: dict[str, BaseTool] = {}
        for item in tools:
            as_tool = to_tool(item)
            self._tools_by_name[as_tool.name] = as_tool
        self._needs_state = any(
            i.source in ("state", "tool_runtime") for t in self._tools_by_name.values() for i in t.injected
        )

    @property
    def tools_by_name(self) -> dict[str, BaseTool]:
        """The tools by name."""
        return self._tools_by_name

    def __call__(self, input: Any, config: RunnableConfig, runtime: Runtime[Any]) -> Any:
        """Run the tool calls (in parallel worker threads when there are several) and combine the answers."""
        calls, kind = self._parse_input(input)
        jobs = [_Job(call, input, config, runtime, self) for call in calls]
        if len(jobs) <= 1:  # one call (the usual turn) runs inline: a thread would only add a handoff
            outputs = [self._run_one(job, kind) for job in jobs]
        else:
            workers = config.get("max_concurrency") or len(jobs)
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = [pool.submit(contextvars.copy_context().run, self._run_one, job, kind) for job in jobs]
                outputs = [future.result() for future in futures]
        return self._combine(outputs, kind)

    async def _acall(self, input: Any, config: RunnableConfig, runtime: Runtime[Any]) -> Any:
        calls, kind = self._parse_input(input)
        outputs: list[Any] = [None] * len(calls)

        errors: list[BaseException | None] = [None] * len(calls)

        async def run(i: int, call: ToolCall) -> None:
            try:
                outputs[i] = await self._arun_one(_Job(call, input, config, runtime, self), kind)
            except Exception as exc:  # raised below, the first in call order, like the sync path
                errors[i] = exc

        async with anyio.create_task_group() as group:
            for i, call in enumerate(calls):
                group.start_soon(run, i, call)
        for error in errors:
            if error is not None:
                raise error
        return self._combine(outputs, kind)

    @property
    def __graphrt_acall__(self) -> Callable[..., Any]:
        """The async twin the engine awaits under `ainvoke`/`astream` (see `pregel/_call.py`)."""
        return self._acall

    def invoke(self, input: Any, config: RunnableConfig | None = None) -> Any:
        """Run outside a graph (or inside a node): the run's store and context when called in a graph task."""
        runtime, cfg = _runtime_and_config(config)
        return self(input, cfg, runtime)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None) -> Any:
        """Async twin of `invoke`."""
        runtime, cfg = _runtime_and_config(config)
        return await self._acall(input, cfg, runtime)

    def _parse_input(self, input: Any) -> tuple[list[ToolCall], InputKind]:
        if isinstance(input, list) and input and isinstance(input[-1], dict) and input[-1].get("type") == "tool_call":
            return list(input), "tool_calls"
        kind: InputKind = "list" if isinstance(input, list) else "dict"
        if isinstance(input, list):
            messages = input
        elif isinstance(input, dict):
            messages = input.get(self.messages_key) or []
        else:
            messages = getattr(input, self.messages_key, None) or []
        if not messages:
            raise ValueError("No message found in input")
        for message in reversed(messages):
            if isinstance(message, AIMessage):
                return list(message.tool_calls), kind
        raise ValueError("No AIMessage found in input")

    def _prepare(self, job: _Job) -> tuple[BaseTool | None, dict[str, Any]]:
        call = job.call
        found = self._tools_by_name.get(call["name"])
        if found is None:
            return None, {}
        if not found.injected:
            return found, {**call, "type": "tool_call"}
        injected = {injection.param for injection in found.injected}
        args = {k: v for k, v in call["args"].items() if k not in injected}
        for injection in found.injected:
            if injection.source == "tool_runtime":
                args[injection.param] = job.tool_runtime()
            elif injection.source == "store":
                if job.runtime.store is None:
                    raise ValueError(
                        "Cannot inject store into tools with InjectedStore annotations - please compile your "
                        f"graph with a store (tool '{found.name}', parameter '{injection.param}')."
                    )
                args[injection.param] = job.runtime.store
            elif injection.source == "state":
                _inject_state(args, injection.param, injection.field, job.state, injection.required, found.name)
        return found, {**call, "args": args, "type": "tool_call"}

    def _run_one(self, job: _Job, kind: InputKind) -> Any:
        call, config = job.call, job.config
        found, prepared = self._prepare(job)
        if found is None:
            return self._unknown_tool(call)
        if isinstance(found, StructuredTool) and found.func is None:
            raise TypeError(
                f"Tool '{found.name}' is async only (no sync function); run the graph with ainvoke/astream."
            )
        try:
            try:
                response = found.invoke(prepared, config)
            except ValidationError as exc:
                if is_invalid_resume(exc):
                    raise  # an answer that did not match an interrupt's schema, not bad tool arguments
                raise ToolInvocationError(call["name"], exc, call["args"]) from exc
            return self._normalize(response, call, kind)
        except GraphBubbleUp:
            raise
        except Exception as exc:
            return self._handle(exc, call)

    async def _arun_one(self, job: _Job, kind: InputKind) -> Any:
        call, config = job.call, job.config
        found, prepared = self._prepare(job)
        if found is None:
            return self._unknown_tool(call)
        try:
            try:
                response = await found.ainvoke(prepared, config)
            except ValidationError as exc:
                if is_invalid_resume(exc):
                    raise  # an answer that did not match an interrupt's schema, not bad tool arguments
                raise ToolInvocationError(call["name"], exc, call["args"]) from exc
            return self._normalize(response, call, kind)
        except GraphBubbleUp:
            raise
        except Exception as exc:
            return self._handle(exc, call)

    def _handle(self, exc: Exception, call: ToolCall) -> ToolMessage:
        if not isinstance(exc, self._handled) or is_invalid_resume(exc):
            raise exc
        content = error_content(exc, self.handle_tool_errors)
        return ToolMessage(content, name=call["name"], tool_call_id=call["id"], status="error")

    def _unknown_tool(self, call: ToolCall) -> ToolMessage:
        content = INVALID_TOOL_NAME_ERROR_TEMPLATE.format(
            requested_tool=call["name"], available_tools=", ".join(self._tools_by_name)
        )
        return ToolMessage(content, name=call["name"], tool_call_id=call["id"], status="error")

    def _normalize(self, response: Any, call: ToolCall, kind: InputKind) -> Any:
        if isinstance(response, Command):
            return self._check_command(response, call, kind)
        if isinstance(response, ToolMessage):
            return response
        if isinstance(response, list) and all(isinstance(r, Command | ToolMessage) for r in response):
            return [
                self._check_command(r, call, kind, require=False) if isinstance(r, Command) else r for r in response
            ]
        raise TypeError(f"Tool {call['name']} returned unexpected type: {type(response)}")

    def _check_command(
        self, command: Command[Any], call: ToolCall, kind: InputKind, require: bool = True
    ) -> Command[Any]:
        update = command.update
        if isinstance(update, dict):
            if kind == "list":
                raise ValueError(
                    f"Tools can provide a dict in Command.update only when using dict with '{self.messages_key}' "
                    f"key as ToolNode input, got: {update} for tool '{call['name']}'"
                )
            messages = convert_to_messages(update.get(self.messages_key, []))
        elif isinstance(update, list):
            messages = convert_to_messages(update)
        else:
            return command
        # The answering ToolMessage carries the tool's name, as a plain answer does.
        named = [
            m.model_copy(update={"name": call["name"]})
            if isinstance(m, ToolMessage) and m.tool_call_id == call["id"]
            else m
            for m in messages
        ]
        matched = any(m is not o for m, o in zip(named, messages, strict=True))
        if require and command.graph is None and not matched:
            raise ValueError(
                f"Expected to have a matching ToolMessage in Command.update for tool '{call['name']}', got: "
                f"{messages}. Every tool call (LLM requesting to call a tool) in the message history MUST have a "
                "corresponding ToolMessage. You can fix it by modifying the tool to return `Command(update="
                '{"messages": [ToolMessage("Success", tool_call_id=tool_call_id), ...]}, ...)`.'
            )
        if not matched:
            return command
        new_update = {**update, self.messages_key: named} if isinstance(update, dict) else named
        return dataclasses.replace(command, update=new_update)

    def _combine(self, outputs: list[Any], kind: InputKind) -> Any:
        flat = [item for out in outputs for item in (out if isinstance(out, list) else [out])]
        if not any(isinstance(item, Command) for item in flat):
            return flat if kind == "list" else {self.messages_key: flat}
        # A node may return a list of Commands; plain answers travel as Commands that only update.
        if kind == "list":
            return [item if isinstance(item, Command) else [item] for item in flat]
        return [item if isinstance(item, Command) else Command(update={self.messages_key: [item]}) for item in flat]


@dataclasses.dataclass(slots=True)
class _Job:
    """One tool call with what its injected values come from; the `ToolRuntime` is built only if asked for."""

    call: ToolCall
    input: Any
    config: RunnableConfig
    runtime: Runtime[Any]
    node: ToolNode

    @property
    def state(self) -> Any:
        """The graph state the node was given; for bare tool calls (an agent `Send`s each call alone), the state
        of the graph the node runs in as of this step, read from its channels, as LangGraph does ({} outside one)."""
        given = self.input
        if not (isinstance(given, list) and given and isinstance(given[-1], dict)):
            return given
        return _graph_state()

    def tool_runtime(self) -> ToolRuntime[Any, Any]:
        return ToolRuntime(
            state=self.state,
            context=self.runtime.context,
            config=self.config,
            stream_writer=self.runtime.stream_writer,
            tool_call_id=self.call.get("id"),
            store=self.runtime.store,
            tools=list(self.node.tools_by_name.values()),
        )


def _inject_state(args: dict[str, Any], param: str, field: str | None, state: Any, required: bool, name: str) -> None:
    if isinstance(state, list):
        state = {"messages": state}
    if field is None:
        args[param] = state
    elif isinstance(state, dict) and field in state:
        args[param] = state[field]
    elif not isinstance(state, dict) and hasattr(state, field):
        args[param] = getattr(state, field)
    elif required:
        raise KeyError(f"Tool '{name}' asks for state key '{field}' (InjectedState), which the state lacks.")


def _graph_state() -> dict[str, Any]:
    """The state keys of the graph whose task is running (channels the builder reserves are left out)."""
    task = running_task()
    if task is None:
        return {}
    return {
        name: chan.get()
        for name, chan in task.channels.items()
        if not name.startswith("__") and ":" not in name and chan.is_available()
    }


def _runtime_and_config(config: RunnableConfig | None) -> tuple[Runtime[Any], RunnableConfig]:
    task = running_task()
    if task is None:
        return Runtime(), config or RunnableConfig()
    return task.runtime, config if config is not None else task.config


def tools_condition(state: list[AnyMessage] | dict[str, Any] | BaseModel, messages_key: str = "messages") -> str:
    """Route to `"tools"` when the last message has tool calls, else to `"__end__"`."""
    if isinstance(state, list):
        last = state[-1] if state else None
    elif isinstance(state, dict):
        messages = state.get(messages_key, [])
        last = messages[-1] if messages else None
    else:
        messages = getattr(state, messages_key, [])
        last = messages[-1] if messages else None
    if last is None:
        raise ValueError(f"No messages found in input state to tool_edge: {state}")
    return "tools" if getattr(last, "tool_calls", None) else "__end__"
