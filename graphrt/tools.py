"""A small `@tool` decorator and tool objects with `langchain_core.tools`' names and behaviour.

A tool validates its arguments with a pydantic model built from the function's signature. Parameters the
runtime injects stay out of that schema, so a model never sees them: `runtime: ToolRuntime`,
`Annotated[..., InjectedState]`, `Annotated[..., InjectedStore()]`, `Annotated[str, InjectedToolCallId]`,
other `InjectedToolArg`s and `config`. Graph nodes and tools decide this with the same rules
(`graphrt._inject`). `ToolNode` fills injected values in; a tool called directly inside a graph task
takes the store and a `ToolRuntime` from that task.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    ClassVar,
    Generic,
    Literal,
    TypedDict,
    Unpack,
    get_args,
    get_origin,
    overload,
)

import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field, create_model
from typing_extensions import TypeVar

from graphrt._inject import Injection, injections_of
from graphrt.config import RunnableConfig
from graphrt.messages import ToolCall, ToolMessage
from graphrt.types import Command

if TYPE_CHECKING:
    from graphrt.store.base import BaseStore

__all__ = (
    "BaseTool",
    "InjectedState",
    "InjectedStore",
    "InjectedToolArg",
    "InjectedToolCallId",
    "StructuredTool",
    "ToolException",
    "ToolRuntime",
    "tool",
)

ResponseFormat = Literal["content", "content_and_artifact"]
ContextT = TypeVar("ContextT", default=None)
StateT = TypeVar("StateT", default=dict[str, Any])
_BLOCK_TYPES = frozenset({"text", "image_url", "image", "json", "search_result", "document", "file"})
_SECTIONS = frozenset({"args", "arguments", "parameters", "returns", "return", "raises", "yields", "examples"})


class ToolException(Exception):
    """An error a tool raises on purpose; `ToolNode` turns it into an error `ToolMessage` for the model."""


class InjectedToolArg:
    """Marks a parameter (`Annotated[T, InjectedToolArg]`) that the caller fills in, hidden from the model."""

    __graphrt_inject__: ClassVar[str] = "given"


class InjectedToolCallId(InjectedToolArg):
    """Marks the parameter that receives the id of the tool call being answered."""

    __graphrt_inject__: ClassVar[str] = "tool_call_id"


class InjectedState(InjectedToolArg):
    """Marks a parameter that receives the graph state (`Annotated[dict, InjectedState]`) or one key of it
    (`Annotated[list, InjectedState("messages")]`)."""

    __graphrt_inject__: ClassVar[str] = "state"

    def __init__(self, field: str | None = None) -> None:
        self.field = field


class InjectedStore(InjectedToolArg):
    """Marks a parameter that receives the graph's store (`Annotated[BaseStore, InjectedStore()]`)."""

    __graphrt_inject__: ClassVar[str] = "store"


@dataclass
class ToolRuntime(Generic[ContextT, StateT]):
    """What a tool can reach of its run, injected into a parameter annotated `ToolRuntime` (or named `runtime`).

    `ToolRuntime[Context]` types `context` as the graph's `context_schema`.
    """

    __graphrt_inject__: ClassVar[str] = "tool_runtime"

    state: StateT
    """The graph state the tool node was given."""
    context: ContextT
    """The `context=` of the run."""
    config: RunnableConfig
    """The config of the task running the tool."""
    stream_writer: Callable[[Any], None]
    """Writes to the `custom` stream mode."""
    tool_call_id: str | None
    """The id of the tool call being answered."""
    store: BaseStore | None
    """The store given to `compile(store=...)` / `create_agent(store=...)`."""
    tools: list[BaseTool] = field(default_factory=list)
    """The tools of the tool node running this one."""


class BaseTool:
    """A named, described callable with an argument schema; subclasses implement `_run` (and `_arun`)."""

    name: str
    description: str = ""
    args_schema: type[BaseModel]
    return_direct: bool = False
    """Whether an agent should stop and return this tool's output as its answer."""
    response_format: ResponseFormat = "content"
    """`"content_and_artifact"` when the tool returns `(content, artifact)`."""
    injected: tuple[Injection, ...] = ()
    """Parameters the runtime fills in (from the input as given, `config`, the tool call id, or the running
    graph task); never validated, never in the schema."""

    @property
    def args(self) -> dict[str, Any]:
        """JSON schemas of the arguments the model fills in, by name."""
        properties: dict[str, Any] = self.args_schema.model_json_schema().get("properties", {})
        return properties

    @property
    def tool_call_schema(self) -> type[BaseModel]:
        """The schema a model sees: the arguments minus injected ones (that is `args_schema` here)."""
        return self.args_schema

    def invoke(self, input: str | dict[str, Any] | ToolCall, config: RunnableConfig | None = None) -> Any:
        """Run the tool; given a `ToolCall` dict, return a `ToolMessage` answering it."""
        call_id, kwargs = self._parse_input(input, config)
        return self._format_output(self._run(**kwargs), call_id)

    async def ainvoke(self, input: str | dict[str, Any] | ToolCall, config: RunnableConfig | None = None) -> Any:
        """Async twin of `invoke`: a sync tool runs in a worker thread."""
        call_id, kwargs = self._parse_input(input, config)
        return self._format_output(await self._arun(**kwargs), call_id)

    def _run(self, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not support sync invocation.")

    async def _arun(self, **kwargs: Any) -> Any:
        # anyio copies context variables into the worker, so get_config() and friends still work there.
        return await anyio.to_thread.run_sync(functools.partial(self._run, **kwargs))

    def _parse_input(self, input: Any, config: RunnableConfig | None) -> tuple[str | None, dict[str, Any]]:
        call_id: str | None = None
        if isinstance(input, dict) and input.get("type") == "tool_call":
            call_id, args = input["id"], input["args"]
        elif isinstance(input, dict):
            args = input
        elif isinstance(input, str):
            args = self._args_from_string(input)
        else:
            raise TypeError(f"Tool '{self.name}' takes a dict of arguments, a string or a ToolCall, got {input!r}")
        fields = _field_names(self.args_schema)
        validated = self.args_schema.model_validate({k: v for k, v in args.items() if k in fields})
        # Only arguments actually given are passed, so the function's own defaults apply to the rest.
        kwargs = {key: getattr(validated, key) for key in args if key in fields}
        for injection in self.injected:
            found, value = self._injected_value(injection, args, call_id, config)
            if found:
                kwargs[injection.param] = value
        return call_id, kwargs

    def _injected_value(
        self, injection: Injection, args: dict[str, Any], call_id: str | None, config: RunnableConfig | None
    ) -> tuple[bool, Any]:
        name = injection.param
        if injection.source == "tool_call_id":
            if call_id is None:
                raise ValueError(
                    "When tool includes an InjectedToolCallId argument, tool must always be invoked with "
                    "a full model ToolCall of the form: {'args': {...}, 'name': '...', 'type': "
                    f"'tool_call', 'id': '...'}} (tool '{self.name}', parameter '{name}')"
                )
            return True, call_id
        if injection.source == "config":
            return True, config if config is not None else RunnableConfig()
        if name in args:
            return True, args[name]
        from_task = _from_current_task(self, injection, call_id, config)
        if from_task is not None:
            return True, from_task
        if injection.required:
            raise TypeError(
                f"Tool '{self.name}' needs the injected argument '{name}'; pass it in the input "
                "(ToolNode and create_agent fill it in)."
            )
        return False, None

    def _args_from_string(self, text: str) -> dict[str, Any]:
        names = list(self.args_schema.model_fields)
        if len(names) > 1:
            raise ValueError(
                f"Tool '{self.name}' takes {len(names)} arguments ({', '.join(names)}); "
                "pass them as a dict, not a string."
            )
        return {names[0]: text} if names else {}

    def _format_output(self, result: Any, call_id: str | None) -> Any:
        content, artifact = result, None
        if self.response_format == "content_and_artifact":
            if not (isinstance(result, tuple) and len(result) == 2):
                raise ValueError(
                    f"Tool '{self.name}' has response_format='content_and_artifact' and must return a "
                    f"(content, artifact) tuple, got {type(result).__name__}"
                )
            content, artifact = result
        if call_id is None or _is_tool_output(content):
            return content
        return ToolMessage(_message_content(content), artifact=artifact, tool_call_id=call_id, name=self.name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, description={self.description!r})"


@functools.cache
def _field_names(schema: type[BaseModel]) -> frozenset[str]:
    # Reading `model_fields` costs more than a tool call's own work; a schema's fields never change.
    return frozenset(schema.model_fields)


def _from_current_task(tool: BaseTool, injection: Injection, call_id: str | None, config: RunnableConfig | None) -> Any:
    """The store or a `ToolRuntime` of the graph task this tool is called in (None outside a graph run)."""
    if injection.source not in ("store", "tool_runtime"):
        return None
    from graphrt._context import running_task

    task = running_task()
    if task is None:
        return None
    if injection.source == "store":
        return task.run.store
    return ToolRuntime(
        state=None,
        context=task.run.context,
        config=config if config is not None else task.config,
        stream_writer=task.run.stream_writer,
        tool_call_id=call_id,
        store=task.run.store,
        tools=[tool],
    )


def _is_tool_output(value: Any) -> bool:
    # A tool may answer with its own message(s) or a Command; those pass through untouched.
    if type(value) is str:
        return False  # the usual answer, decided before the (slow, on pydantic models) isinstance checks
    if isinstance(value, list) and value:
        return all(isinstance(item, ToolMessage | Command) for item in value)
    return isinstance(value, ToolMessage | Command)


def _message_content(value: Any) -> str | list[Any]:
    if isinstance(value, str):
        return value
    if isinstance(value, Sequence) and all(
        isinstance(item, str) or (isinstance(item, dict) and item.get("type") in _BLOCK_TYPES) for item in value
    ):
        return list(value)
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


class StructuredTool(BaseTool):
    """A tool made from a function (sync, async, or both) and an argument schema."""

    def __init__(
        self,
        *,
        name: str,
        description: str,
        args_schema: type[BaseModel],
        func: Callable[..., Any] | None = None,
        coroutine: Callable[..., Awaitable[Any]] | None = None,
        return_direct: bool = False,
        response_format: ResponseFormat = "content",
    ) -> None:
        self.name, self.description, self.args_schema = name, description, args_schema
        self.func, self.coroutine = func, coroutine
        self.return_direct, self.response_format = return_direct, response_format
        target = func if func is not None else coroutine
        if target is not None:
            self._inspect_injected(target)

    @classmethod
    def from_function(
        cls,
        func: Callable[..., Any] | None = None,
        coroutine: Callable[..., Awaitable[Any]] | None = None,
        name: str | None = None,
        description: str | None = None,
        return_direct: bool = False,
        args_schema: type[BaseModel] | None = None,
        response_format: ResponseFormat = "content",
        parse_docstring: bool = False,
    ) -> StructuredTool:
        """Build a tool from a function; the schema comes from its signature and docstring."""
        source = func if func is not None else coroutine
        if source is None:
            raise ValueError("Function and/or coroutine must be provided")
        name = name or source.__name__
        doc = inspect.getdoc(source) or ""
        summary, arg_docs = _parse_docstring(doc) if parse_docstring else (doc, {})
        if description is None:
            if not (source.__doc__ or "").strip():
                raise ValueError("Function must have a docstring if description not provided.")
            description = summary if parse_docstring else (source.__doc__ or "").strip()
        # As LangChain's: with `parse_docstring`, the schema is described by the summary alone.
        schema = args_schema or _schema_from_signature(name, source, summary if parse_docstring else doc, arg_docs)
        return cls(
            name=name,
            description=description,
            args_schema=schema,
            func=func,
            coroutine=coroutine,
            return_direct=return_direct,
            response_format=response_format,
        )

    def _inspect_injected(self, target: Callable[..., Any]) -> None:
        self.injected = tuple(found for _p, _a, found in injections_of(target, tool=True) if found is not None)

    def _run(self, **kwargs: Any) -> Any:
        if self.func is None:
            return super()._run(**kwargs)
        return self.func(**kwargs)

    async def _arun(self, **kwargs: Any) -> Any:
        if self.coroutine is not None:
            return await self.coroutine(**kwargs)
        return await super()._arun(**kwargs)


def _schema_from_signature(name: str, func: Callable[..., Any], doc: str, arg_docs: dict[str, str]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for param, annotation, injected in injections_of(func, tool=True):
        if injected is None:
            default = ... if param.default is param.empty else param.default
            described = arg_docs.get(param.name) or _annotated_description(annotation)
            fields[param.name] = (annotation, Field(default, description=described))
    config = ConfigDict(arbitrary_types_allowed=True)
    return create_model(name, __config__=config, __doc__=doc or None, **fields)


def _annotated_description(annotation: Any) -> str | None:
    """LangChain's rule: the first string in `Annotated[T, "..."]` describes the argument (the docstring's
    `Args:` entry, with `parse_docstring=True`, comes first)."""
    if get_origin(annotation) is not Annotated:
        return None
    return next((extra for extra in get_args(annotation)[1:] if isinstance(extra, str)), None)


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its summary and the descriptions under `Args:`."""
    summary: list[str] = []
    args: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    arg_indent = -1
    for line in doc.splitlines():
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        if indent == 0 and stripped.endswith(":") and stripped[:-1].lower() in _SECTIONS:
            section, current = stripped[:-1].lower(), None
        elif section is None:
            summary.append(line)
        elif section in ("args", "arguments", "parameters") and stripped:
            head, colon, text = stripped.partition(":")
            if colon and (current is None or indent <= arg_indent):
                # "name: text" or "name (type): text" starts an argument; deeper lines continue it.
                current, arg_indent = head.split("(")[0].strip(), indent
                args[current] = text.strip()
            elif current is not None:
                args[current] = f"{args[current]} {stripped}".strip()
    # Like LangChain, the summary's lines and paragraphs are joined into one line.
    return " ".join(line.strip() for line in summary if line.strip()), args


class _ToolOptions(TypedDict, total=False):
    description: str | None
    return_direct: bool
    args_schema: type[BaseModel] | None
    response_format: ResponseFormat
    parse_docstring: bool


@overload
def tool(name_or_callable: Callable[..., Any], /) -> StructuredTool: ...
@overload
def tool(name_or_callable: str, runnable: Callable[..., Any], /, **options: Unpack[_ToolOptions]) -> StructuredTool: ...
@overload
def tool(
    name_or_callable: str | None = None, /, **options: Unpack[_ToolOptions]
) -> Callable[[Callable[..., Any]], StructuredTool]: ...
def tool(
    name_or_callable: str | Callable[..., Any] | None = None,
    runnable: Callable[..., Any] | None = None,
    /,
    **options: Unpack[_ToolOptions],
) -> StructuredTool | Callable[[Callable[..., Any]], StructuredTool]:
    """Turn a function into a tool: `@tool`, `@tool("name")`, `@tool(parse_docstring=True)`, `tool(name, fn)`.

    Options are `StructuredTool.from_function`'s. An async function becomes the tool's coroutine; a sync
    one also works under `ainvoke`, in a worker thread.
    """

    def make(func: Callable[..., Any], name: str | None = None) -> StructuredTool:
        if inspect.iscoroutinefunction(func):
            return StructuredTool.from_function(coroutine=func, name=name, **options)
        return StructuredTool.from_function(func, name=name, **options)

    if callable(name_or_callable):
        return make(name_or_callable)
    if name_or_callable is not None and not isinstance(name_or_callable, str):
        raise TypeError(
            f"tool() takes a function (or a name, then a function), got {type(name_or_callable).__name__}"
            + (": it is a LangChain tool already, pass it as it is" if _is_langchain(name_or_callable) else "")
        )
    if runnable is not None:
        return make(runnable, name_or_callable)
    return functools.partial(make, name=name_or_callable)


def to_tool(item: Any) -> BaseTool:
    """`item` as a graphrt tool: a graphrt tool itself, a LangChain tool wrapped (`_langchain_tools`), a function
    through `tool`.

    Raises:
        TypeError: `item` is none of those.
    """
    if isinstance(item, BaseTool):
        return item
    if _is_langchain(item):
        from graphrt._langchain_tools import LangChainTool

        return LangChainTool(item)
    if callable(item):
        made: StructuredTool = tool(item)
        return made
    raise TypeError(
        f"A tool must be a graphrt tool (graphrt.tools.tool), a LangChain tool or a function with a docstring, "
        f"got {type(item).__name__}"
    )


def _is_langchain(item: Any) -> bool:
    from graphrt._langchain_tools import is_langchain_tool

    return is_langchain_tool(item)
