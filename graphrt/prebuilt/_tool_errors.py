"""What `ToolNode` does when a tool fails: which errors become a `ToolMessage`, and with what text."""

from __future__ import annotations

import inspect
import types
from collections.abc import Callable
from typing import Any, Union, get_args, get_origin, get_type_hints

from pydantic import ValidationError

from graphrt.tools import ToolException

ErrorHandler = bool | str | Callable[..., str] | type[Exception] | tuple[type[Exception], ...]

INVALID_TOOL_NAME_ERROR_TEMPLATE = "Error: {requested_tool} is not a valid tool, try one of [{available_tools}]."
TOOL_CALL_ERROR_TEMPLATE = "Error: {error}\n Please fix your mistakes."
TOOL_INVOCATION_ERROR_TEMPLATE = (
    "Error invoking tool '{tool_name}' with kwargs {tool_kwargs} with error:\n"
    " {error}\n Please fix the error and try again."
)


class ToolInvocationError(ToolException):
    """The model called a tool with arguments that do not match its schema."""

    def __init__(self, tool_name: str, source: ValidationError, tool_kwargs: dict[str, Any]) -> None:
        details = "\n".join(
            f"{'.'.join(str(part) for part in err.get('loc', ()))}: {err.get('msg', 'Unknown error')}"
            for err in source.errors()
        )
        self.message = TOOL_INVOCATION_ERROR_TEMPLATE.format(
            tool_name=tool_name, tool_kwargs=tool_kwargs, error=details
        )
        self.tool_name, self.tool_kwargs, self.source = tool_name, tool_kwargs, source
        super().__init__(self.message)


def default_handle_tool_errors(e: Exception) -> str:
    """`ToolNode`'s default: every tool error becomes an error `ToolMessage`; invalid arguments with LangGraph's
    text for them (what its default answers), any other error as `handle_tool_errors=True` words it (LangGraph 1.x
    raises those instead: see the README)."""
    if isinstance(e, ToolInvocationError):
        return e.message
    return TOOL_CALL_ERROR_TEMPLATE.format(error=repr(e))


def handled_types(flag: ErrorHandler) -> tuple[type[Exception], ...]:
    """The exception types `flag` turns into error messages (() when it handles none)."""
    if flag is False:
        return ()
    if isinstance(flag, type) and issubclass(flag, Exception):
        return (flag,)
    if isinstance(flag, tuple):
        return flag
    if callable(flag) and not isinstance(flag, bool | str | type):
        return _types_from_annotation(flag)
    return (Exception,)


def _types_from_annotation(handler: Callable[..., str]) -> tuple[type[Exception], ...]:
    """A handler `def h(e: ValueError | KeyError) -> str` handles only those types; unannotated, all."""
    params = list(inspect.signature(handler).parameters.values())
    if not params:
        return (Exception,)
    first = params[1] if params[0].name in ("self", "cls") and len(params) == 2 else params[0]
    try:
        annotation = get_type_hints(handler).get(first.name)
    except Exception:
        annotation = None
    if annotation is None:
        return (Exception,)
    found = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else (annotation,)
    if not all(isinstance(t, type) and issubclass(t, Exception) for t in found):
        raise ValueError(
            "The error handler passed as handle_tool_errors must annotate its argument with Exception types, "
            f"e.g. `def handler(e: ValueError | TypeError) -> str`; got {annotation!r}."
        )
    return tuple(found)


def error_content(error: Exception, flag: ErrorHandler) -> str:
    """The text of the error `ToolMessage` for a handled `error`."""
    if isinstance(flag, str):
        return flag
    if callable(flag) and not isinstance(flag, bool | type | tuple):
        return str(flag(error))
    return TOOL_CALL_ERROR_TEMPLATE.format(error=repr(error))
