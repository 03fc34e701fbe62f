"""One rule set decides which parameters of nodes and tools the runtime fills in (`graphrt._inject`)."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Annotated, Any, TypedDict

import pytest

from graphrt._inject import injections_of
from graphrt.config import RunnableConfig
from graphrt.graph import START, StateGraph
from graphrt.runtime import Runtime
from graphrt.store.base import BaseStore
from graphrt.store.memory import InMemoryStore
from graphrt.tools import InjectedState, InjectedStore, InjectedToolArg, InjectedToolCallId, ToolRuntime, tool
from graphrt.types import StreamWriter

pytestmark = pytest.mark.timeout(30)


def shape(func: Any, *, tool: bool) -> dict[str, tuple[str, str | None] | None]:
    return {p.name: (found.source, found.field) if found else None for p, _a, found in injections_of(func, tool=tool)}


def f(
    a: int,
    config: RunnableConfig,
    store: BaseStore,
    writer: StreamWriter,
    runtime: Runtime[Any],
    cfg2: RunnableConfig,
    st: InMemoryStore,
    tr: ToolRuntime,
    state: Annotated[dict[str, Any], InjectedState],
    foo: Annotated[str, InjectedState("foo")],
    s2: Annotated[Any, InjectedStore()],
    call_id: Annotated[str, InjectedToolCallId],
    given: Annotated[str, InjectedToolArg],
) -> None: ...


def test_node_rules() -> None:
    assert shape(f, tool=False) == {
        "a": None,
        "config": ("config", None),
        "store": ("store", None),
        "writer": ("writer", None),
        "runtime": ("runtime", None),
        "cfg2": ("config", None),
        "st": ("store", None),
        "tr": None,
        "state": None,
        "foo": None,
        "s2": None,
        "call_id": None,
        "given": None,
    }


def test_tool_rules() -> None:
    # LangChain's rules for tools: markers, `config`, and the name `runtime` (a ToolRuntime).
    assert shape(f, tool=True) == {
        "a": None,
        "config": ("config", None),
        "store": None,
        "writer": None,
        "runtime": ("tool_runtime", None),
        "cfg2": ("config", None),
        "st": None,
        "tr": ("tool_runtime", None),
        "state": ("state", None),
        "foo": ("state", "foo"),
        "s2": ("store", None),
        "call_id": ("tool_call_id", None),
        "given": ("given", None),
    }


def test_defaults_make_an_injection_optional() -> None:
    def g(x: int, runtime: Runtime[Any] | None = None) -> None: ...

    (_x, _a, none), (_p, _b, found) = injections_of(g, tool=False)
    assert none is None and found is not None and found.source == "runtime" and not found.required
    assert inspect.signature(g).parameters["runtime"].default is None


class State(TypedDict):
    out: str


@dataclass
class Ctx:
    user: str


def test_a_tool_called_inside_a_node_gets_the_task_store_and_runtime() -> None:
    store = InMemoryStore()
    store.put(("u",), "k", {"v": 1})

    @tool
    def lookup(key: str, runtime: ToolRuntime[Ctx], s: Annotated[Any, InjectedStore()]) -> str:
        """Looks a key up."""
        item = runtime.store.get(("u",), key)  # type: ignore[union-attr]
        return f"{runtime.context.user}:{item.value if item else None}:{s is store}"

    def node(state: State, store: BaseStore) -> State:
        return {"out": lookup.invoke({"key": "k"})}

    builder = StateGraph(State, context_schema=Ctx)
    builder.add_node(node)
    builder.add_edge(START, "node")
    graph = builder.compile(store=store)
    assert graph.invoke({"out": ""}, context=Ctx("ann")) == {"out": "ann:{'v': 1}:True"}
    with pytest.raises(TypeError, match="needs the injected argument 'runtime'"):
        lookup.invoke({"key": "k"})
