"""Which parameters of a node or a tool the runtime fills in, and from what: one rule set for both.

A graph node and a tool are both user functions whose signature asks for run services (`config`, the
store, the stream writer, the runtime). This module decides, once per function, which parameter gets
which service. The engine (`pregel/_call.py`) fills a node's parameters from the running task; a tool
(`graphrt.tools`) fills them from its tool call, or from the running task when it is called inside one.

Markers say what they inject through a class attribute `__graphrt_inject__` (see `graphrt.tools`:
`InjectedToolArg`, `InjectedToolCallId`, `InjectedState`, `InjectedStore`, `ToolRuntime`; and
`graphrt.runtime.Runtime`), so this module imports none of them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin, get_type_hints

Source = Literal["config", "store", "writer", "runtime", "tool_runtime", "state", "tool_call_id", "given", "node_error"]
"""Where an injected value comes from. `given`: passed in by the caller as it is, never validated."""

NODE_NAMES: dict[str, Source] = {"config": "config", "store": "store", "writer": "writer", "runtime": "runtime"}
TOOL_NAMES: dict[str, Source] = {"config": "config", "runtime": "tool_runtime"}


@dataclass(frozen=True, slots=True)
class Injection:
    """One parameter the runtime fills in."""

    param: str
    source: Source
    field: str | None = None
    """For `InjectedState("key")`: the state key to pass instead of the whole state."""
    required: bool = True
    """False when the parameter has a default (the default applies when there is nothing to inject)."""


def type_hints(func: Callable[..., Any]) -> dict[str, Any]:
    """The function's (or callable object's) resolved annotations, with `Annotated` extras; {} if unresolvable."""
    target = func if inspect.isroutine(func) else type(func).__call__
    try:
        return get_type_hints(target, include_extras=True)
    except Exception:  # unresolvable forward references: treat those parameters as unannotated
        return {}


def _parts(annotation: Any) -> list[Any]:
    """The annotation and, for `Annotated[T, ...]` or `Optional[Annotated[...]]`, its pieces."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return [p for arg in get_args(annotation) for p in _parts(arg)] or [annotation]
    if origin is not None and type(None) in get_args(annotation):  # Optional[X] / X | None
        return [p for arg in get_args(annotation) if arg is not type(None) for p in _parts(arg)]
    return [annotation]


def _marker(part: Any) -> tuple[Source, str | None] | None:
    """What a marker (class, instance or subscripted generic) injects, if it is one."""
    for candidate in (part, get_origin(part), type(part)):
        source = getattr(candidate, "__graphrt_inject__", None) if candidate is not None else None
        if isinstance(source, str):
            field = getattr(part, "field", None) if not isinstance(part, type) else None
            return source, field if isinstance(field, str) else None  # type: ignore[return-value]
    return None


def marked_params(func: Callable[..., Any]) -> list[str]:
    """The parameters of `func` annotated with a graphrt injection marker (`InjectedState`, `ToolRuntime`, ...)."""
    return [name for name, hint in type_hints(func).items() if any(_marker(part) for part in _parts(hint))]


def _node_service(part: Any) -> Source | None:
    """Services a node asks for by annotation: Runtime, a store class, RunnableConfig, StreamWriter."""
    origin = get_origin(part) or part
    if isinstance(origin, type):
        names = {cls.__name__ for cls in origin.__mro__}
        if "BaseStore" in names:
            return "store"
        if origin.__name__ == "RunnableConfig":
            return "config"
        if origin.__name__ == "NodeError" and origin.__module__ == "graphrt.errors":
            return "node_error"
    if getattr(part, "__name__", None) == "StreamWriter":
        return "writer"
    return None


def injection_of(param: inspect.Parameter, annotation: Any, *, tool: bool) -> Injection | None:
    """What the runtime fills `param` with, or None when the caller supplies it.

    Nodes: a `Runtime` annotation, a store class, `RunnableConfig`, `StreamWriter`, `NodeError` (an error
    handler's failure), or one of the names
    `config`, `store`, `writer`, `runtime`. Tools (LangChain's rules): `ToolRuntime` or the name
    `runtime`, `InjectedState`, `InjectedStore`, `InjectedToolCallId`, other `InjectedToolArg`s, and
    `config`.
    """
    required = param.default is param.empty
    for part in _parts(annotation):
        found = _marker(part)
        if found is not None and (tool or found[0] == "runtime"):
            # A tool asking for the node `Runtime` gets the `ToolRuntime`, which has all it holds and more.
            source: Source = "tool_runtime" if tool and found[0] == "runtime" else found[0]
            return Injection(param.name, source, found[1], required)
        service = _node_service(part)
        if service == "config" or (service is not None and not tool):
            return Injection(param.name, service, None, required)
    by_name = (TOOL_NAMES if tool else NODE_NAMES).get(param.name)
    return Injection(param.name, by_name, None, required) if by_name is not None else None


def injections_of(
    func: Callable[..., Any], *, tool: bool, skip: str | None = None
) -> tuple[tuple[inspect.Parameter, Any, Injection | None], ...]:
    """Every named parameter of `func` with its annotation and what is injected into it (None: not injected).

    `skip` names a parameter that is never injected (a node's input).
    """
    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return ()
    hints = type_hints(func)
    out = []
    for p in params:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        annotation = hints.get(p.name, Any)
        found = None if p.name == skip else injection_of(p, annotation, tool=tool)
        out.append((p, annotation, found))
    return tuple(out)
