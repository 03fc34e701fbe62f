"""`StateGraph`: build a graph of nodes that read and update a shared state, then compile it to Pregel."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Final, Generic, TypeVar, cast

from typing_extensions import is_typeddict

from graphrt.cache.base import BaseCache
from graphrt.channels.base import BaseChannel
from graphrt.channels.ephemeral_value import EphemeralValue
from graphrt.channels.last_value import LastValueAfterFinish
from graphrt.channels.named_barrier_value import NamedBarrierValue, NamedBarrierValueAfterFinish
from graphrt.channels.topic import Topic
from graphrt.checkpoint.base import BaseCheckpointSaver
from graphrt.constants import END, START
from graphrt.graph._node import Branch, StateNodeProc, StateView, branch_channel, goto_writes
from graphrt.graph._schema import SchemaInfo, inspect_schema, updates_of
from graphrt.graph._validate import validate_graph
from graphrt.pregel._cache import UnitCache
from graphrt.pregel._parts import Parts
from graphrt.pregel._spec import TASKS, Call, GraphSpec, PregelNode
from graphrt.pregel.main import Pregel
from graphrt.store.base import BaseStore
from graphrt.types import All, CachePolicy, Command, RetryPolicy, Send, TimeoutPolicy

__all__ = ("CompiledStateGraph", "StateGraph")

logger = logging.getLogger(__name__)
StateT = TypeVar("StateT")
RESERVED_CHARS = (":", "|")


@dataclass(slots=True)
class NodeSpec:
    """A node as added to the builder."""

    name: str
    action: Callable[..., Any]
    input_schema: Any
    retry_policy: tuple[RetryPolicy, ...]
    metadata: dict[str, Any]
    defer: bool
    destinations: tuple[str, ...] | dict[str, str] | None
    ends: tuple[str, ...] = field(default=())
    cache_policy: CachePolicy | None = None
    error_handler: str | None = None
    """The node that runs in this node's place when it fails (once its retries are spent)."""
    is_error_handler: bool = False
    timeout: TimeoutPolicy | None = None


@dataclass(slots=True)
class NodeDefaults:
    """`set_node_defaults`: what nodes get unless `add_node` says otherwise."""

    retry_policy: tuple[RetryPolicy, ...] = ()
    cache_policy: CachePolicy | None = None
    error_handler: Callable[..., Any] | None = None
    timeout: TimeoutPolicy | None = None


DEFAULT_ERROR_HANDLER: Final = "__default_error_handler__"


_NOT_YET: Final = {
    "trace_policy": "graphrt does not trace to LangSmith",
}
"""LangGraph 1.2's `add_node` options graphrt does not have yet, with what to do instead."""


def _refuse_node_options(kwargs: dict[str, Any]) -> None:
    """`add_node` keywords left over once the known ones are taken (none are expected)."""
    for name, value in kwargs.items():
        if name in _NOT_YET:
            if value is None:
                continue
            raise NotImplementedError(f"add_node({name}=...) (LangGraph 1.2) is not supported yet; {_NOT_YET[name]}.")
        raise TypeError(f"add_node() got an unexpected keyword argument {name!r}")


class StateGraph(Generic[StateT]):
    """A graph whose nodes read the state and return updates to it; each key may have a reducer."""

    def __init__(
        self,
        state_schema: type[StateT] | Any,
        context_schema: Any = None,
        *,
        input_schema: Any = None,
        output_schema: Any = None,
        **kwargs: Any,
    ) -> None:
        input_schema = input_schema if input_schema is not None else kwargs.pop("input", None)
        output_schema = output_schema if output_schema is not None else kwargs.pop("output", None)
        if kwargs.get("config_schema") is not None and context_schema is None:
            context_schema = kwargs.pop("config_schema")
        self.state_schema = state_schema
        self.context_schema = context_schema
        self.input_schema = input_schema if input_schema is not None else state_schema
        self.output_schema = output_schema if output_schema is not None else state_schema
        self.nodes: dict[str, NodeSpec] = {}
        self.edges: set[tuple[str, str]] = set()
        self.waiting_edges: set[tuple[tuple[str, ...], str]] = set()
        self.branches: dict[str, dict[str, Branch]] = {}
        self.schemas: dict[Any, SchemaInfo] = {}
        self.compiled = False
        self._node_defaults = NodeDefaults()
        self._localns = _caller_locals()
        for schema in (state_schema, self.input_schema, self.output_schema):
            _refuse_root_value(schema)
            self._add_schema(schema)

    def _add_schema(self, schema: Any, localns: dict[str, Any] | None = None) -> SchemaInfo:
        if schema not in self.schemas:
            self.schemas[schema] = inspect_schema(schema, {**self._localns, **(localns or {})})
        return self.schemas[schema]

    # ------------------------------------------------------------ building

    def add_node(
        self,
        node: str | Callable[..., Any],
        action: Callable[..., Any] | None = None,
        *,
        defer: bool = False,
        metadata: dict[str, Any] | None = None,
        input_schema: Any = None,
        retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
        cache_policy: CachePolicy | None = None,
        destinations: dict[str, str] | tuple[str, ...] | None = None,
        error_handler: Callable[..., Any] | None = None,
        timeout: float | timedelta | TimeoutPolicy | None = None,
        **kwargs: Any,
    ) -> StateGraph[StateT]:
        """Add a node; its name defaults to the function's name.

        `error_handler` runs in the node's place, in the same step, when the node fails once its retries are
        spent: it gets the node's input (and a `NodeError` parameter, by annotation), its update is applied and
        the node's own edges do not fire (route with a `Command`). It is the node `__error_handler__<name>`.

        `timeout` (seconds, a `timedelta` or a `TimeoutPolicy`) bounds each attempt of an async node: one still
        running then is cancelled and fails with `NodeTimeoutError` (retried by its retry policy). A sync node
        with a timeout is refused when the graph is compiled.

        LangGraph's deprecated `input=` and `retry=` still work (as `input_schema` and `retry_policy`). LangGraph
        1.2's `trace_policy` raises `NotImplementedError`; any other keyword is a `TypeError` (LangGraph ignores
        unknown keywords).
        """
        input_schema = kwargs.pop("input", None) if input_schema is None else input_schema
        retry_policy = kwargs.pop("retry", None) if retry_policy is None else retry_policy
        _refuse_node_options(kwargs)
        time_limit = _timeout_policy(timeout)
        if not isinstance(node, str):
            action, node = node, _name_of(node)
        if isinstance(action, Pregel):
            action = _GraphNode(action)
        if action is None:
            raise ValueError(f"Node `{node}` needs an action: add_node('{node}', function).")
        if self.compiled:
            logger.warning(
                "Adding a node to a graph that has already been compiled. This will not be reflected in "
                "the compiled graph."
            )
        if node in self.nodes:
            raise ValueError(f"Node `{node}` already present.")
        if node in (START, END):
            raise ValueError(f"Node `{node}` is reserved.")
        for char in RESERVED_CHARS:
            if char in node:
                raise ValueError(f"'{char}' is a reserved character and is not allowed in the node names.")
        localns = _caller_locals()
        if input_schema is None:
            input_schema = _first_param_schema(action, {**self._localns, **localns})
        if input_schema is not None:
            self._add_schema(input_schema, localns)
        output_schema = _return_schema(action, {**self._localns, **localns})
        if output_schema is not None:
            self._add_schema(output_schema, localns)
        if cache_policy is not None and not isinstance(cache_policy, CachePolicy):
            raise TypeError(
                f"Node `{node}`: cache_policy must be a graphrt.types.CachePolicy, got {type(cache_policy).__name__}."
            )
        policies = (
            ()
            if retry_policy is None
            else ((retry_policy,) if isinstance(retry_policy, RetryPolicy) else tuple(retry_policy))
        )
        handler = None
        if error_handler is not None:
            handler = f"__error_handler__{node}"
            if handler in self.nodes:
                raise ValueError(f"Auto-generated error handler node `{handler}` already exists.")
            self.nodes[handler] = NodeSpec(
                handler, error_handler, input_schema, (), {}, False, None, is_error_handler=True
            )
        self.nodes[node] = NodeSpec(
            node,
            action,
            input_schema,
            policies,
            dict(metadata or {}),
            defer,
            tuple(destinations) if isinstance(destinations, list) else destinations,
            cache_policy=cache_policy,
            error_handler=handler,
            timeout=time_limit,
        )
        return self

    def set_node_defaults(
        self,
        *,
        retry_policy: RetryPolicy | Sequence[RetryPolicy] | None = None,
        cache_policy: CachePolicy | None = None,
        error_handler: Callable[..., Any] | None = None,
        timeout: float | timedelta | TimeoutPolicy | None = None,
    ) -> StateGraph[StateT]:
        """Policies for every node that `add_node` gave none, applied when the graph is compiled.

        `retry_policy` and `timeout` apply to error handlers too; `cache_policy` and `error_handler` only to the
        other nodes (a handler that fails fails the run). The default handler is the node
        `__default_error_handler__`. Subgraphs do not inherit these.
        """
        defaults = self._node_defaults
        if timeout is not None:
            defaults.timeout = _timeout_policy(timeout)
        if retry_policy is not None:
            defaults.retry_policy = (retry_policy,) if isinstance(retry_policy, RetryPolicy) else tuple(retry_policy)
        if cache_policy is not None:
            defaults.cache_policy = cache_policy
        if error_handler is not None:
            defaults.error_handler = error_handler
        return self

    def _compiled_nodes(self) -> dict[str, NodeSpec]:
        """The nodes with `set_node_defaults` applied (and the default error handler, when there is one)."""
        defaults = self._node_defaults
        if not (defaults.retry_policy or defaults.cache_policy or defaults.error_handler or defaults.timeout):
            return self.nodes
        nodes: dict[str, NodeSpec] = {}
        for name, spec in self.nodes.items():
            changed = replace(
                spec, retry_policy=spec.retry_policy or defaults.retry_policy, timeout=spec.timeout or defaults.timeout
            )
            if not spec.is_error_handler:
                changed.cache_policy = spec.cache_policy or defaults.cache_policy
                if spec.error_handler is None and defaults.error_handler is not None:
                    changed.error_handler = DEFAULT_ERROR_HANDLER
            nodes[name] = changed
        if defaults.error_handler is not None:
            nodes[DEFAULT_ERROR_HANDLER] = NodeSpec(
                DEFAULT_ERROR_HANDLER,
                defaults.error_handler,
                None,
                defaults.retry_policy,
                {},
                False,
                None,
                is_error_handler=True,
                timeout=defaults.timeout,
            )
        return nodes

    def add_edge(self, start_key: str | list[str], end_key: str) -> StateGraph[StateT]:
        """Run `end_key` after `start_key`; a list of starts waits for all of them (a join)."""
        if self.compiled:
            logger.warning("Adding an edge to a graph that has already been compiled.")
        if isinstance(start_key, str):
            if start_key == END:
                raise ValueError("END cannot be a start node")
            if end_key == START:
                raise ValueError("START cannot be an end node")
            self.edges.add((start_key, end_key))
            return self
        for start in start_key:
            if start == END:
                raise ValueError("END cannot be a start node")
            if start not in self.nodes:
                raise ValueError(f"Need to add_node `{start}` first")
        if end_key == START:
            raise ValueError("START cannot be an end node")
        if end_key != END and end_key not in self.nodes:
            raise ValueError(f"Need to add_node `{end_key}` first")
        self.waiting_edges.add((tuple(start_key), end_key))
        return self

    def add_conditional_edges(
        self,
        source: str,
        path: Callable[..., Any],
        path_map: dict[Hashable, str] | list[str] | None = None,
    ) -> StateGraph[StateT]:
        """After `source`, call `path(state)`; it returns where to go (a name, a list, END, or `Send`s)."""
        name = getattr(path, "__name__", "condition")
        if name == "<lambda>":
            name = "condition"
        if name in self.branches.get(source, {}):
            raise ValueError(f"Branch with name `{name}` already exists for node `{source}`")
        ends: dict[Hashable, str] | None
        if isinstance(path_map, dict):
            ends = dict(path_map)
        elif isinstance(path_map, list):
            ends = {n: n for n in path_map}
        else:
            ends = None
        self.branches.setdefault(source, {})[name] = Branch(Call.of(path), ends, name)
        return self

    def add_sequence(self, nodes: Sequence[Callable[..., Any] | tuple[str, Callable[..., Any]]]) -> StateGraph[StateT]:
        """Add nodes that run one after another, in the given order."""
        if not nodes:
            raise ValueError("Sequence requires at least one node.")
        previous: str | None = None
        for item in nodes:
            name, action = item if isinstance(item, tuple) else (_name_of(item), item)
            if name in self.nodes:
                raise ValueError(
                    f"Node names must be unique: node with the name '{name}' already exists. If you need to use "
                    "two different runnables/callables with the same name (for example, using `lambda`), please "
                    "provide them as tuples (name, runnable/callable)."
                )
            self.add_node(name, action)
            if previous is not None:
                self.add_edge(previous, name)
            previous = name
        return self

    def set_entry_point(self, key: str) -> StateGraph[StateT]:
        return self.add_edge(START, key)

    def set_conditional_entry_point(
        self, path: Callable[..., Any], path_map: dict[Hashable, str] | list[str] | None = None
    ) -> StateGraph[StateT]:
        return self.add_conditional_edges(START, path, path_map)

    def set_finish_point(self, key: str) -> StateGraph[StateT]:
        return self.add_edge(key, END)

    def validate(self, interrupt: Sequence[str] = ()) -> StateGraph[StateT]:
        """Check the graph; every problem is reported at once in one ValueError."""
        validate_graph(self, interrupt)
        return self

    # ------------------------------------------------------------ compiling

    def compile(
        self,
        checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
        *,
        cache: BaseCache[Any] | None = None,
        store: BaseStore | None = None,
        interrupt_before: All | list[str] | None = None,
        interrupt_after: All | list[str] | None = None,
        debug: bool = False,
        name: str | None = None,
    ) -> CompiledStateGraph[StateT]:
        """Validate the graph and compile it into a runnable `CompiledStateGraph`."""
        interrupt = [n for group in (interrupt_before, interrupt_after) if group and group != "*" for n in group]
        self.validate(interrupt)
        self.compiled = True
        spec = self._spec(
            "*" if interrupt_before == "*" else tuple(interrupt_before or ()),
            "*" if interrupt_after == "*" else tuple(interrupt_after or ()),
        )
        return CompiledStateGraph(
            spec,
            builder=self,
            checkpointer=checkpointer,
            store=store,
            name=name or "LangGraph",
            debug=debug,
            context_schema=self.context_schema,
            cache=cache,
        )

    def _spec(self, interrupt_before: All | tuple[str, ...], interrupt_after: All | tuple[str, ...]) -> GraphSpec:
        channels: dict[str, BaseChannel[Any, Any, Any]] = {}
        for info in self.schemas.values():
            for key, chan in info.channels.items():
                channels.setdefault(key, chan)
        state_keys_in_order = tuple(channels)
        state_keys = frozenset(channels)
        state = self.schemas[self.state_schema]
        input_info = self.schemas[self.input_schema]
        output_info = self.schemas[self.output_schema]
        channels[START] = EphemeralValue(self.input_schema)
        channels[TASKS] = Topic(Send, accumulate=False)
        specs = self._compiled_nodes()
        for name, spec in specs.items():
            channels[branch_channel(name)] = (
                LastValueAfterFinish(Any) if spec.defer else EphemeralValue(Any, guard=False)
            )
        joins: dict[str, list[str]] = {}
        join_writes: dict[str, list[tuple[str, Any]]] = {}
        for starts, end in self.waiting_edges:
            join = f"join:{'+'.join(starts)}:{end}"
            deferred = end in self.nodes and self.nodes[end].defer
            channels[join] = (NamedBarrierValueAfterFinish if deferred else NamedBarrierValue)(str, set(starts))
            joins.setdefault(end, []).append(join)
            for s in starts:
                join_writes.setdefault(s, []).append((join, s))
        for key, chan in channels.items():
            chan.key = key
        view = StateView(tuple(state.keys), state.coerce, state.managed)
        nodes: dict[str, PregelNode] = {}
        nodes[START] = PregelNode(
            START,
            (START,),
            START,
            StartProc(input_info, state_keys, self._edges_from(START, join_writes), self._branches(START), view),
            hidden=True,
        )
        for name, spec in specs.items():
            info = self.schemas[spec.input_schema] if spec.input_schema is not None else state
            subgraph = spec.action.graph if isinstance(spec.action, _GraphNode) else None
            call = Call.of(spec.action)
            if spec.timeout is not None and subgraph is not None:
                raise NotImplementedError(
                    f"Node {name!r}: a timeout on a compiled graph added as a node is not supported yet (its sync "
                    "nodes can't be cancelled); give its own async nodes a timeout instead."
                )
            if spec.timeout is not None and not call.is_async:
                raise ValueError(
                    "Node timeouts are only supported for async nodes because sync Python execution cannot be "
                    f"safely cancelled in-process. Node {name!r} is sync."
                )
            proc = StateNodeProc(
                call,
                state_keys,
                self._edges_from(name, join_writes),
                self._branches(name),
                view,
                name,
                subgraph,
            )
            triggers = (branch_channel(name), *sorted(joins.get(name, ())))
            nodes[name] = PregelNode(
                name,
                triggers,
                tuple(info.keys),
                proc,
                info.coerce,
                spec.retry_policy,
                spec.metadata,
                reads_state=info is state,
                subgraph=subgraph,
                cache=None if spec.cache_policy is None else UnitCache.of("node", name, spec.action, spec.cache_policy),
                managed=info.managed,
                error_handler=spec.error_handler,
                timeout=None if spec.timeout is None else cast(float | None, spec.timeout.run_timeout),  # seconds
            )
        trigger_to_nodes: dict[str, list[str]] = {}
        for node in nodes.values():
            for t in node.triggers:
                trigger_to_nodes.setdefault(t, []).append(node.name)
        return GraphSpec(
            nodes=nodes,
            channels=channels,
            trigger_to_nodes={k: tuple(v) for k, v in trigger_to_nodes.items()},
            input_channels=START,
            output_channels=tuple(output_info.keys),
            output_set=frozenset(output_info.keys),
            # The whole state, as LangGraph streams and snapshots it: every schema's keys (private ones too).
            values_channels=tuple(state_keys_in_order),
            state_keys=frozenset(state.keys),
            stream_channels=state_keys,
            step_notified=frozenset(k for k, c in channels.items() if c.steps_without_writes),
            interrupt_before=interrupt_before,
            interrupt_after=interrupt_after,
            route=goto_writes,
        )

    def _edges_from(self, source: str, join_writes: dict[str, list[tuple[str, Any]]]) -> tuple[tuple[str, Any], ...]:
        writes: list[tuple[str, Any]] = [
            (branch_channel(end), None) for start, end in sorted(self.edges) if start == source and end != END
        ]
        writes.extend(join_writes.get(source, ()))
        return tuple(writes)

    def _branches(self, source: str) -> tuple[Branch, ...]:
        return tuple(self.branches.get(source, {}).values())


def _timeout_policy(value: float | timedelta | TimeoutPolicy | None) -> TimeoutPolicy | None:
    """A node's timeout as a policy in seconds; an idle timeout is refused (not supported yet)."""
    policy = TimeoutPolicy.coerce(value)
    if policy is not None and policy.idle_timeout is not None:
        raise NotImplementedError(
            "TimeoutPolicy(idle_timeout=...) (a limit renewed by progress) is not supported yet; use run_timeout "
            "(a hard limit per attempt)."
        )
    return policy


def _refuse_root_value(schema: Any) -> None:
    """A state that is one value (`StateGraph(int)`, `StateGraph(Annotated[list, add_messages])`) is refused."""
    if schema is None or schema is Any or _is_state_type(schema):
        return
    raise NotImplementedError(
        f"StateGraph({schema!r}): a state that is a single value (such as int, list, dict or "
        "Annotated[list, add_messages], and MessageGraph) is not supported yet. Use a TypedDict, dataclass or "
        "pydantic model with a key for it, e.g. `class State(TypedDict): messages: Annotated[list, add_messages]` "
        "(or MessagesState)."
    )


@dataclass(frozen=True, slots=True)
class StartProc:
    """The START node: the graph input becomes state writes, then the edges from START fire."""

    input_info: SchemaInfo
    keys: frozenset[str]
    edges: tuple[tuple[str, Any], ...]
    branches: tuple[Branch, ...]
    view: StateView

    def _input_writes(self, task: Any) -> None:
        value = task.input
        if isinstance(value, Command):
            # A Command as the input of a fresh run: its update is the input, its goto adds targets.
            if value.update is not None:
                task.writes.extend(updates_of(value.update, self.keys, node=START))
            goto: Any = value.goto
            task.writes.extend(goto_writes(list(goto) if isinstance(goto, list | tuple) else [goto] if goto else []))
            task.writes.extend(self.edges)
            return
        coerce = self.input_info.coerce
        if coerce is not None and isinstance(value, dict):
            coerce(value)  # validates the input (pydantic raises on bad input); only given keys are written
        allowed = frozenset(self.input_info.keys) if self.input_info.keys else self.keys
        if not isinstance(value, dict) and hasattr(type(value), "model_fields"):
            # A pydantic instance as input: every field, defaults included, as LangGraph writes it.
            task.writes.extend((k, getattr(value, k)) for k in type(value).model_fields if k in allowed)
        else:
            task.writes.extend(updates_of(value, allowed, node=START))
        task.writes.extend(self.edges)

    def run(self, task: Any) -> None:
        self._input_writes(task)
        for branch in self.branches:
            task.writes.extend(goto_writes(branch.destinations(branch.path.invoke(self.view.read(task), task.ctx))))

    async def arun(self, task: Any) -> None:
        self._input_writes(task)
        for branch in self.branches:
            result = await branch.path.ainvoke(self.view.read(task), task.ctx)
            task.writes.extend(goto_writes(branch.destinations(result)))

    def write_update(self, task: Any, values: Any) -> None:
        task.input = values
        self.run(task)

    def write_command(self, task: Any, command: Any) -> None:
        self.write_update(task, command)


class CompiledStateGraph(Pregel, Generic[StateT]):
    """A compiled `StateGraph`: run it with `invoke`/`stream` (default stream mode: `updates`)."""

    default_stream_mode = "updates"

    def __init__(self, spec: GraphSpec, *, builder: StateGraph[StateT], **kwargs: Any) -> None:
        super().__init__(spec, **kwargs)
        self.builder = builder

    def get_graph(self, config: Any = None, *, xray: int | bool = False) -> Any:
        """A drawable view of the graph (`draw_mermaid()`, `draw_ascii()`).

        `xray=True` draws the compiled graphs used as nodes expanded, at every depth; `xray=N` expands N levels
        (a negative N, like LangGraph's, expands every level). Like LangGraph, a node function that names a
        compiled graph (a closure variable or module global: the graph it calls) is expanded into that graph,
        and subgraphs compiled with `checkpointer=False` stay single nodes.
        """
        from graphrt.graph._draw import DrawableGraph
        from graphrt.graph._draw_xray import graph_named_by, splice

        if not isinstance(xray, int):  # bool is an int
            raise TypeError(f"get_graph(xray=...) takes True, False or a number of levels, not {xray!r}")
        graph = DrawableGraph.from_builder(
            self.builder, interrupt_before=self.spec.interrupt_before, interrupt_after=self.spec.interrupt_after
        )
        if xray:
            deeper = xray if isinstance(xray, bool) or xray < 0 else xray - 1
            for name, spec in self.builder.nodes.items():
                action = spec.action
                child = action.graph if isinstance(action, _GraphNode) else graph_named_by(action, CompiledStateGraph)
                if isinstance(child, CompiledStateGraph) and child is not self and child.checkpointer is not False:
                    splice(graph, name, child.get_graph(config, xray=deeper))
        return graph

    async def aget_graph(self, config: Any = None, *, xray: int | bool = False) -> Any:
        """`get_graph()` for async code (drawing does no I/O)."""
        return self.get_graph(config, xray=xray)

    def _parts(self) -> Parts:
        """v2 values are instances of the output schema, checkpoints' of the state schema (pydantic, dataclass)."""
        schemas = self.builder.schemas
        return Parts(_mapper(schemas[self.builder.output_schema]), _mapper(schemas[self.builder.state_schema]))

    def _input_type(self) -> Any:
        return self.builder.input_schema

    def _output_type(self) -> Any:
        return self.builder.output_schema


class _GraphNode:
    """A compiled graph added as a node: it gets the state as its input and its output is the update.

    It runs nested in the node's task (see `graphrt/pregel/_nested.py`): it saves with the parent's
    checkpointer under the task's namespace, and its interrupts and `Command.PARENT` reach the parent.
    """

    def __init__(self, graph: Pregel) -> None:
        self.graph = graph
        self.name = graph.name

    def __call__(self, state: Any) -> Any:
        return self.graph.invoke(state)


def _mapper(info: SchemaInfo) -> Callable[[dict[str, Any]], Any] | None:
    """Builds the schema's type from a dict of values, leaving out keys it has no field for (None: a dict schema)."""
    coerce = info.coerce
    if coerce is None:
        return None
    keys = frozenset(info.keys)
    return lambda values: coerce({k: v for k, v in values.items() if k in keys})


def _name_of(action: Callable[..., Any]) -> str:
    name = getattr(action, "name", None) or getattr(action, "__name__", None) or type(action).__name__
    return str(name)


def _caller_locals(depth: int = 2) -> dict[str, Any]:
    """The local namespace of the user function that called into the builder (for postponed annotations)."""
    import sys

    try:
        return dict(sys._getframe(depth).f_locals)
    except (AttributeError, ValueError):
        return {}


def _action_hints(action: Callable[..., Any], localns: dict[str, Any]) -> dict[str, Any]:
    import inspect
    from typing import get_type_hints

    if not inspect.isfunction(action):
        return {}
    for ns in (None, localns):
        try:
            return get_type_hints(action, localns=ns)
        except (TypeError, NameError):
            continue
    return {}


def _is_state_type(hint: Any) -> bool:
    """A TypedDict (`typing`'s or `typing_extensions`'), dataclass or pydantic model: a schema with keys."""
    from pydantic import BaseModel

    return isinstance(hint, type) and (
        is_typeddict(hint) or dataclasses.is_dataclass(hint) or issubclass(hint, BaseModel)
    )


def _first_param_schema(action: Callable[..., Any], localns: dict[str, Any]) -> Any:
    """The annotation of a node's first parameter, used as its input schema when it is a state type."""
    import inspect

    try:
        params = list(inspect.signature(action).parameters.values())
    except (TypeError, ValueError):
        return None
    if not params:
        return None
    hint = _action_hints(action, localns).get(params[0].name)
    return hint if _is_state_type(hint) else None


def _return_schema(action: Callable[..., Any], localns: dict[str, Any]) -> Any:
    """A node's return annotation, when it is a state type: its keys become channels (private state)."""
    hint = _action_hints(action, localns).get("return")
    return hint if _is_state_type(hint) else None
