"""Ready tools for long-term memory in the store (beyond LangGraph).

A namespace template such as `("memories", "{user_id}")` is filled, at each call, from the run's context
(`context=Context(user_id=...)`) and then from `config["configurable"]`. Two shapes of memory:

* a **collection**: many memories per user, each created, updated or deleted by the model
  (`create_memory_tools` gives a `manage_memory` and a `search_memory` tool);
* a **profile**: one document per user. The model fills it in through a tool (`create_profile_tool`), or
  a node extracts it from the conversation with `model.with_structured_output` (`update_profile`).

Memories are stored as `{"content": ...}`: a string, or the schema's fields as a dict.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Optional

from pydantic import BaseModel, TypeAdapter

from graphrt.config import RunnableConfig
from graphrt.messages import BaseMessage, SystemMessage
from graphrt.store.base import BaseStore
from graphrt.tools import StructuredTool, ToolRuntime

__all__ = (
    "create_manage_memory_tool",
    "create_memory_tools",
    "create_profile_tool",
    "create_search_memory_tool",
    "fill_namespace",
    "update_profile",
)

NamespaceTemplate = tuple[str, ...]


def fill_namespace(
    template: NamespaceTemplate, context: Any = None, config: RunnableConfig | None = None
) -> tuple[str, ...]:
    """`template` with each `{name}` replaced from `context` (attribute or key), then `config["configurable"]`.

    Raises:
        KeyError: a name is in neither, with what to pass to fix it.
    """
    configurable = (config or {}).get("configurable", {})
    out = []
    for part in template:
        try:
            out.append(part.format_map(_Lookup(context, configurable)))
        except KeyError as exc:
            name = exc.args[0]
            raise KeyError(
                f"Memory namespace {template} needs '{name}': pass it in the run's context "
                f"(context=...{name}=...) or in config['configurable']['{name}']."
            ) from None
    return tuple(out)


class _Lookup(dict[str, Any]):
    def __init__(self, context: Any, configurable: Mapping[str, Any]) -> None:
        super().__init__()
        self.context, self.configurable = context, configurable

    def __missing__(self, key: str) -> Any:
        if isinstance(self.context, Mapping) and key in self.context:
            return self.context[key]
        if self.context is not None and not isinstance(self.context, Mapping) and hasattr(self.context, key):
            return getattr(self.context, key)
        if key in self.configurable:
            return self.configurable[key]
        raise KeyError(key)


def _scope(
    template: NamespaceTemplate, runtime: ToolRuntime[Any, Any], fixed_store: BaseStore | None
) -> tuple[BaseStore, tuple[str, ...]]:
    store = fixed_store if fixed_store is not None else runtime.store
    if store is None:
        raise ValueError(
            "Memory tools need a store: compile the graph (or create_agent) with store=..., or pass store= to "
            "the memory tool factory."
        )
    return store, fill_namespace(template, runtime.context, runtime.config)


def _dump(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def create_manage_memory_tool(
    namespace: NamespaceTemplate = ("memories", "{user_id}"),
    *,
    schema: Any = str,
    store: BaseStore | None = None,
    name: str = "manage_memory",
    instructions: str = "Save facts about the user that will matter in later conversations.",
) -> StructuredTool:
    """A tool that creates, updates or deletes one memory in the collection `namespace`.

    The model calls it with `content` (a string, or a `schema` instance), `action` ("create", "update" or
    "delete") and, to update or delete, the memory's `id` (as `search_memory` shows it).
    """
    adapter: TypeAdapter[Any] = TypeAdapter(schema)

    def manage_memory(
        runtime: ToolRuntime[Any, Any],
        content: Any = None,
        action: Literal["create", "update", "delete"] = "create",
        id: str | None = None,
    ) -> str:
        target, ns = _scope(namespace, runtime, store)
        if action == "delete":
            if id is None:
                return "Error: give the id of the memory to delete."
            target.delete(ns, id)
            return f"Deleted memory {id}"
        if content is None:
            return f"Error: give the content of the memory to {action}."
        if action == "update" and (id is None or target.get(ns, id) is None):
            return f"Error: no memory with id {id!r} to update; create it instead."
        key = id if action == "update" and id is not None else str(uuid.uuid4())
        target.put(ns, key, {"content": _dump(adapter.validate_python(content))})
        return f"{'Updated' if action == 'update' else 'Created'} memory {key}"

    manage_memory.__annotations__["content"] = Optional[schema]  # noqa: UP045 - schema is a runtime value
    return StructuredTool.from_function(
        manage_memory,
        name=name,
        description=(
            f"Create, update or delete a memory in long-term storage. {instructions} To change or remove an "
            "existing memory, pass its id (search first to find it)."
        ),
    )


def create_search_memory_tool(
    namespace: NamespaceTemplate = ("memories", "{user_id}"),
    *,
    store: BaseStore | None = None,
    name: str = "search_memory",
) -> StructuredTool:
    """A tool that searches the memories in `namespace` (semantically when the store has an index)."""

    def search_memory(runtime: ToolRuntime[Any, Any], query: str = "", limit: int = 10, offset: int = 0) -> str:
        target, ns = _scope(namespace, runtime, store)
        items = target.search(ns, query=query or None, limit=limit, offset=offset)
        return json.dumps(
            [{"id": item.key, "content": item.value.get("content", item.value)} for item in items], ensure_ascii=False
        )

    return StructuredTool.from_function(
        search_memory,
        name=name,
        description="Search long-term memories about the user. Returns a JSON list of {id, content}.",
    )


def create_memory_tools(
    namespace: NamespaceTemplate = ("memories", "{user_id}"),
    *,
    schema: Any = str,
    store: BaseStore | None = None,
    instructions: str = "Save facts about the user that will matter in later conversations.",
) -> list[StructuredTool]:
    """`[manage_memory, search_memory]` over one namespace template: a memory collection in one line."""
    return [
        create_manage_memory_tool(namespace, schema=schema, store=store, instructions=instructions),
        create_search_memory_tool(namespace, store=store),
    ]


def create_profile_tool(
    schema: type[Any],
    namespace: NamespaceTemplate = ("profile", "{user_id}"),
    *,
    key: str = "profile",
    store: BaseStore | None = None,
    name: str = "update_profile",
) -> StructuredTool:
    """A tool that saves the user's profile: one `schema` document under `key`; fields the model leaves
    out keep their saved values."""
    adapter: TypeAdapter[Any] = TypeAdapter(schema)

    def update_profile_tool(profile: Any, runtime: ToolRuntime[Any, Any]) -> str:
        target, ns = _scope(namespace, runtime, store)
        saved = target.get(ns, key)
        given = (
            profile.model_dump(mode="json", exclude_unset=True) if isinstance(profile, BaseModel) else _dump(profile)
        )
        merged = {**(saved.value if saved else {}), **given}
        value = _dump(adapter.validate_python(merged))
        target.put(ns, key, value)
        return json.dumps(value, ensure_ascii=False)

    update_profile_tool.__annotations__["profile"] = schema
    return StructuredTool.from_function(
        update_profile_tool, name=name, description="Save what you learned about the user in their profile."
    )


def update_profile(
    model: Any,
    schema: type[Any],
    messages: Sequence[BaseMessage],
    *,
    store: BaseStore,
    namespace: tuple[str, ...],
    key: str = "profile",
    instructions: str = "Update the user's profile with anything new in this conversation.",
) -> Any:
    """Extract the user's profile from `messages` with `model.with_structured_output(schema)` and save it.

    The saved profile (if any) is shown to the model, so it updates rather than starts over. Returns the
    new profile (a `schema` value).
    """
    saved = store.get(namespace, key)
    current = json.dumps(saved.value, ensure_ascii=False) if saved else "(empty)"
    prompt = SystemMessage(f"{instructions}\n\nCurrent profile: {current}")
    profile = model.with_structured_output(schema).invoke([prompt, *messages])
    store.put(namespace, key, _dump(profile) if not isinstance(profile, dict) else profile)
    return profile
