"""What a model is told about tools and output schemas, in one provider-neutral shape.

`tool_spec` accepts what LangChain's `bind_tools` accepts: graphrt (or LangChain) tools, plain functions,
pydantic models, TypedDicts, and dicts in OpenAI's, Anthropic's or plain JSON-schema form. Each provider
client turns a `ToolSpec` into its own wire format.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, TypeAdapter, ValidationError
from typing_extensions import is_typeddict

__all__ = ("OutputParserError", "OutputSchema", "ToolChoice", "ToolSpec", "normalize_tool_choice", "tool_spec")

ToolChoice = Literal["auto", "any", "none"] | tuple[Literal["tool"], str] | None
"""Neutral tool choice: let the model decide, force some tool, forbid tools, or force one tool by name."""


class OutputParserError(ValueError):
    """A model's answer could not be read as the requested structured output."""

    def __init__(self, message: str, *, llm_output: str | None = None) -> None:
        super().__init__(message)
        self.llm_output = llm_output


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool as a model sees it."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    """JSON schema of the arguments (an object schema)."""


def tool_spec(tool: Any) -> ToolSpec:
    """Describe a tool, function, pydantic model, TypedDict or schema dict for a model.

    Raises:
        TypeError: `tool` is none of those.
        ValueError: a dict schema has no name (`title` or `name`).
    """
    if isinstance(tool, ToolSpec):
        return tool
    if isinstance(tool, dict):
        return _from_dict(tool)
    if isinstance(tool, type) and issubclass(tool, BaseModel):
        return ToolSpec(tool.__name__, _doc(tool), _clean(tool.model_json_schema()))
    if isinstance(tool, type) and is_typeddict(tool):
        return ToolSpec(tool.__name__, _doc(tool), _clean(TypeAdapter(tool).json_schema()))
    schema: Any = getattr(tool, "tool_call_schema", None) or getattr(tool, "args_schema", None)
    if isinstance(getattr(tool, "name", None), str) and hasattr(schema, "model_json_schema"):
        # A graphrt tool, or a LangChain one (same attributes).
        return ToolSpec(tool.name, getattr(tool, "description", "") or "", _clean(schema.model_json_schema()))
    if inspect.isfunction(tool) or inspect.ismethod(tool):
        from graphrt.tools import tool as make_tool

        return tool_spec(make_tool(tool))
    raise TypeError(
        f"Cannot describe {tool!r} as a tool: pass a graphrt tool, a function with a docstring, a pydantic model, "
        "a TypedDict, or a dict (OpenAI function, Anthropic tool or JSON schema with a 'title')."
    )


def _doc(cls: type) -> str:
    doc = cls.__doc__ or ""
    # pydantic gives models without a docstring BaseModel's own; that says nothing about this schema.
    return "" if doc == BaseModel.__doc__ else inspect.cleandoc(doc)


def _clean(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema without its top-level title/description (they travel as the tool's name and description)."""
    cleaned = {k: v for k, v in schema.items() if k not in ("title", "description")}
    properties = cleaned.get("properties")
    if isinstance(properties, dict):
        cleaned["properties"] = {
            name: {k: v for k, v in prop.items() if k != "title"} if isinstance(prop, dict) else prop
            for name, prop in properties.items()
        }
    cleaned.setdefault("type", "object")
    cleaned.setdefault("properties", {})
    return cleaned


def _from_dict(tool: dict[str, Any]) -> ToolSpec:
    if tool.get("type") == "function" and isinstance(tool.get("function"), dict):
        tool = tool["function"]
    if "name" in tool and ("parameters" in tool or "input_schema" in tool):
        params: Any = tool.get("parameters", tool.get("input_schema"))
        return ToolSpec(str(tool["name"]), str(tool.get("description", "")), dict(params))
    if "name" in tool and "properties" not in tool:
        return ToolSpec(str(tool["name"]), str(tool.get("description", "")), {"type": "object", "properties": {}})
    title = tool.get("title")
    if not isinstance(title, str) or not title:
        raise ValueError(
            "A JSON schema used as a tool or output schema needs a 'title' (its name), e.g. "
            "{'title': 'Profile', 'type': 'object', 'properties': {...}}"
        )
    return ToolSpec(title, str(tool.get("description", "")), _clean(tool))


def normalize_tool_choice(choice: Any, tools: tuple[ToolSpec, ...]) -> ToolChoice:
    """Map LangChain's `tool_choice` values to `ToolChoice`.

    Accepts None/"auto", "any"/"required"/True (must call a tool; True needs exactly one tool), "none",
    a tool's name, or OpenAI's `{"type": "function", "function": {"name": ...}}` / Anthropic's
    `{"type": "tool", "name": ...}`.

    Raises:
        ValueError: the choice names a tool that is not bound, or is not understood.
    """
    if choice is None or choice == "auto":
        return None if choice is None else "auto"
    if choice in ("any", "required"):
        return "any"
    if choice == "none":
        return "none"
    if choice is True:
        if len(tools) != 1:
            raise ValueError(f"tool_choice=True needs exactly one bound tool, got {len(tools)}.")
        return ("tool", tools[0].name)
    name: Any = choice
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name") if "function" in choice else choice.get("name")
    names = [t.name for t in tools]
    if isinstance(name, str) and name in names:
        return ("tool", name)
    raise ValueError(f"tool_choice {choice!r} is not one of 'auto', 'any', 'required', 'none' or a bound tool {names}.")


class OutputSchema:
    """A structured-output schema and how to read a model's tool-call arguments as it."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema
        self.spec = tool_spec(schema)
        self.kind: Literal["pydantic", "typeddict", "json"] = (
            "pydantic"
            if isinstance(schema, type) and issubclass(schema, BaseModel)
            else "typeddict"
            if isinstance(schema, type) and is_typeddict(schema)
            else "json"
        )

    def parse(self, args: Any) -> Any:
        """The arguments as the schema's type (a model instance, or a dict for TypedDict/JSON schema)."""
        try:
            if self.kind == "pydantic":
                return self.schema.model_validate(args)
            if self.kind == "typeddict":
                return TypeAdapter(self.schema).validate_python(args)
        except ValidationError as exc:
            raise OutputParserError(
                f"The model's answer does not fit the output schema '{self.spec.name}': {exc}", llm_output=repr(args)
            ) from exc
        if not isinstance(args, dict):
            raise OutputParserError(
                f"The model's answer for output schema '{self.spec.name}' is not an object: {args!r}",
                llm_output=repr(args),
            )
        return args
