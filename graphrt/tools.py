"""A small `@tool` decorator and tool objects with `langchain_core.tools`' names and behaviour.

A tool validates its arguments with a pydantic model built from the function's signature. Parameters the
caller injects (named `config` or `runtime`, or annotated with a class whose `__graphrt_injected__` is
true, such as `InjectedToolArg`) stay out of that schema, so a model never sees them.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Literal, TypedDict, Unpack, get_args, get_origin, get_type_hints, overload

import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field, create_model

from graphrt.config import RunnableConfig
from graphrt.messages import ToolCall, ToolMessage
from graphrt.types import Command

__all__ = ("BaseTool", "InjectedToolArg", "InjectedToolCallId", "StructuredTool", "tool")

ResponseFormat = Literal["content", "content_and_artifact"]
_INJECTED_NAMES = frozenset({"config", "runtime"})
_BLOCK_TYPES = frozenset({"text", "image_url", "image", "json", "search_result", "document", "file"})
_SECTIONS = frozenset({"args", "arguments", "parameters", "returns", "return", "raises", "yields", "examples"})


class InjectedToolArg:
    """Marks a parameter (`Annotated[T, InjectedToolArg]`) that the caller fills in, hidden from the model."""

    __graphrt_injected__ = True


class InjectedToolCallId(InjectedToolArg):
    """Marks the parameter that receives the id of the tool call being answered."""


class BaseTool:
    """A named, described callable with an argument schema; subclasses implement `_run` (and `_arun`)."""

    name: str
    description: str = ""
    args_schema: type[BaseModel]
    return_direct: bool = False
    """Whether an agent should stop and return this tool's output as its answer."""
    response_format: ResponseFormat = "content"
    """`"content_and_artifact"` when the tool returns `(content, artifact)`."""
    injected: tuple[str, ...] = ()
    """Parameters filled from the input as given (or from `config` / the tool call id), not validated."""
    required_injected: frozenset[str] = frozenset()
    call_id_param: str | None = None

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
        fields = self.args_schema.model_fields
        validated = self.args_schema.model_validate({k: v for k, v in args.items() if k in fields})
        # Only arguments actually given are passed, so the function's own defaults apply to the rest.
        kwargs = {key: getattr(validated, key) for key in args if key in fields}
        for name in self.injected:
            if name == self.call_id_param:
                if call_id is None:
                    raise ValueError(
                        "When tool includes an InjectedToolCallId argument, tool must always be invoked with "
                        "a full model ToolCall of the form: {'args': {...}, 'name': '...', 'type': "
                        f"'tool_call', 'id': '...'}} (tool '{self.name}', parameter '{name}')"
                    )
                kwargs[name] = call_id
            elif name == "config":
                kwargs[name] = config if config is not None else RunnableConfig()
            elif name in args:
                kwargs[name] = args[name]
            elif name in self.required_injected:
                raise TypeError(
                    f"Tool '{self.name}' needs the injected argument '{name}'; pass it in the input "
                    "(ToolNode and create_agent fill it in)."
                )
        return call_id, kwargs

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


def _is_tool_output(value: Any) -> bool:
    # A tool may answer with its own message(s) or a Command; those pass through untouched.
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
        schema = args_schema or _schema_from_signature(name, source, doc, arg_docs)
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
        injected, required = [], set()
        for param, annotation in _parameters(target):
            if _is_injected(param.name, annotation):
                injected.append(param.name)
                if param.default is param.empty:
                    required.add(param.name)
                if any(issubclass(_marker_type(part), InjectedToolCallId) for part in _parts(annotation)):
                    self.call_id_param = param.name
        self.injected, self.required_injected = tuple(injected), frozenset(required)

    def _run(self, **kwargs: Any) -> Any:
        if self.func is None:
            return super()._run(**kwargs)
        return self.func(**kwargs)

    async def _arun(self, **kwargs: Any) -> Any:
        if self.coroutine is not None:
            return await self.coroutine(**kwargs)
        return await super()._arun(**kwargs)


def _parameters(func: Callable[..., Any]) -> list[tuple[inspect.Parameter, Any]]:
    try:
        hints = get_type_hints(func, include_extras=True)
    except (NameError, TypeError):  # unresolvable forward references: treat those arguments as Any
        hints = {}
    skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    params = inspect.signature(func).parameters.values()
    return [(p, hints.get(p.name, Any)) for p in params if p.kind not in skip]


def _parts(annotation: Any) -> list[Any]:
    if get_origin(annotation) is Annotated:
        return list(get_args(annotation))
    return [annotation]


def _marker_type(part: Any) -> type:
    origin = get_origin(part)
    return part if isinstance(part, type) else origin if isinstance(origin, type) else type(part)


def _is_injected(name: str, annotation: Any) -> bool:
    marked = (getattr(_marker_type(part), "__graphrt_injected__", False) is True for part in _parts(annotation))
    return name in _INJECTED_NAMES or any(marked)


def _schema_from_signature(name: str, func: Callable[..., Any], doc: str, arg_docs: dict[str, str]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for param, annotation in _parameters(func):
        if not _is_injected(param.name, annotation):
            default = ... if param.default is param.empty else param.default
            fields[param.name] = (annotation, Field(default, description=arg_docs.get(param.name)))
    config = ConfigDict(arbitrary_types_allowed=True)
    return create_model(name, __config__=config, __doc__=doc or None, **fields)


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
    if runnable is not None:
        return make(runnable, name_or_callable)
    return functools.partial(make, name=name_or_callable)
