"""`Pregel`: the compiled-graph facade — invoke/stream (sync and async) and the state methods."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import (
    aclosing,
    asynccontextmanager,
    closing,
    contextmanager,
)
from dataclasses import dataclass, replace
from typing import Any

from graphrt._context import RunContext, RunScope, TaskContext, running_task
from graphrt._log import print_debug
from graphrt.cache.base import BaseCache
from graphrt.checkpoint._ownership import held_owner
from graphrt.checkpoint.base import BaseCheckpointSaver, CheckpointTuple, get_checkpoint_metadata
from graphrt.checkpoint.base._types import config_thread
from graphrt.checkpoint.base.id import uuid6_str
from graphrt.config import RunnableConfig
from graphrt.errors import EmptyInputError, GraphInterrupt, InvalidUpdateError
from graphrt.pregel import _algo, _nested, _state
from graphrt.pregel._algo import LoopState
from graphrt.pregel._builder import graph_spec
from graphrt.pregel._cache import UnitCache, namespaces_of
from graphrt.pregel._drivers import drive_async, drive_sync
from graphrt.pregel._io import Committer, Event, RunIO, Sink, ThreadWriter
from graphrt.pregel._loop import RunPlan, run_loop
from graphrt.pregel._parts import Parts, check_version
from graphrt.pregel._runnable import RunnableMixin
from graphrt.pregel._spec import INTERRUPT, GraphSpec, PregelNode, Task
from graphrt.pregel._units import UnitRunner
from graphrt.runtime import RunControl
from graphrt.store.base import BaseStore
from graphrt.types import All, Command, Durability, StateSnapshot, StateUpdate, StreamMode

__all__ = ("Pregel",)

DEFAULT_RECURSION_LIMIT = int(os.environ.get("LANGGRAPH_DEFAULT_RECURSION_LIMIT", "10007"))
"""LangGraph 1.2's default (it was 25 before); the same environment variable overrides it."""
_counter = itertools.count()

_TO_METADATA = ("thread_id", "checkpoint_id", "checkpoint_ns", "task_id", "run_id", "assistant_id", "graph_id")
"""`configurable` keys a run also puts in its `config["metadata"]` (when set, and not there already), as
LangGraph does: nodes, and the `messages` stream's metadata, see the thread they run on."""
STREAM_MODES = ("values", "updates", "custom", "messages", "checkpoints", "tasks", "debug")


@dataclass(frozen=True, slots=True)
class RunOptions:
    """The options of one invoke/stream call, as given."""

    stream_mode: StreamMode | Sequence[StreamMode]
    context: Any = None
    print_mode: StreamMode | Sequence[StreamMode] = ()
    output_keys: str | Sequence[str] | None = None
    interrupt_before: All | Sequence[str] | None = None
    interrupt_after: All | Sequence[str] | None = None
    durability: Durability | None = None
    debug: bool | None = None
    for_invoke: bool = False
    """invoke/ainvoke: only the final values are needed."""
    subgraphs: bool = False
    """The caller reads nested runs' events too."""
    v2: bool = False
    """`version="v2"`: typed stream parts, and a `GraphOutput` from invoke."""
    control: RunControl | None = None
    """Asked to drain, the run stops at its next step boundary (raising `GraphDrained`)."""

    def __post_init__(self) -> None:
        # Checked before the run claims or writes anything.
        for given in (self.stream_mode, self.print_mode):
            for mode in (given,) if isinstance(given, str) else given or ():
                if mode not in STREAM_MODES:
                    raise ValueError(f"Unknown stream_mode {mode!r}: use one of {', '.join(STREAM_MODES)}.")


@dataclass(slots=True)
class _Run:
    """One prepared run: the loop, its plan, and the I/O the drivers perform."""

    st: LoopState
    plan: RunPlan
    io: RunIO
    modes: tuple[str, ...]
    single_mode: str | None
    print_modes: frozenset[str] = frozenset()
    nested: bool = False
    """Runs inside a task of another run: an interrupt is raised to that task, not returned."""
    parts: Parts | None = None
    """Builds `version="v2"` parts (None: plain chunks)."""


class Pregel(RunnableMixin):
    """A compiled graph: run it with `invoke`/`stream` (or their async twins) and inspect its threads."""

    def __init__(
        self,
        spec: GraphSpec | None = None,
        *,
        checkpointer: BaseCheckpointSaver[Any] | bool | None = None,
        store: BaseStore | None = None,
        name: str = "LangGraph",
        debug: bool = False,
        config: RunnableConfig | None = None,
        context_schema: Any = None,
        cache: BaseCache[Any] | None = None,
        nodes: Mapping[str, Any] | None = None,
        channels: Mapping[str, Any] | None = None,
        input_channels: str | Sequence[str] | None = None,
        output_channels: str | Sequence[str] | None = None,
        stream_channels: str | Sequence[str] | None = None,
        interrupt_before_nodes: All | Sequence[str] = (),
        interrupt_after_nodes: All | Sequence[str] = (),
        stream_mode: StreamMode | None = None,
        step_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        """A compiled graph from a `GraphSpec` (what `StateGraph.compile()` does), or LangGraph's low-level
        form: `Pregel(nodes={name: NodeBuilder...}, channels={...}, input_channels=..., output_channels=...)`.
        """
        if spec is None:
            if nodes is None or input_channels is None or output_channels is None:
                raise TypeError("Pregel() needs nodes=, channels=, input_channels= and output_channels=.")
            _check_low_level_options(kwargs)
            spec = graph_spec(
                nodes,
                channels,
                input_channels,
                output_channels,
                stream_channels,
                interrupt_before_nodes,
                interrupt_after_nodes,
            )
        if stream_mode is not None:
            self.default_stream_mode = stream_mode
        if step_timeout is not None:
            self.step_timeout = step_timeout
        self.spec = spec
        self.cache = cache
        self.checkpointer = checkpointer
        self.store = store
        self.name = name
        self.debug = debug
        self.config = config
        self.context_schema = context_schema

    @property
    def nodes(self) -> Mapping[str, PregelNode]:
        return self.spec.nodes

    @property
    def channels(self) -> Mapping[str, Any]:
        return self.spec.channels

    # ------------------------------------------------------------ graph-specific hooks

    def output_values(self, st: LoopState) -> Any:
        """The graph's output as read from the channels."""
        return _algo.read_values(st.values, self.spec.output_channels)

    def values_keys(self) -> str | tuple[str, ...]:
        return self.spec.values_channels or self.spec.output_channels

    def stream_values(self, st: LoopState) -> Any:
        """A `values` stream chunk: the whole state (not filtered by the output schema)."""
        return _algo.read_values(st.values, self.values_keys())

    def updates_chunk(self, task: Task) -> Any:
        """What a finished task contributes to the `updates` stream."""
        writes = {c: v for c, v in task.writes if c in self.spec.stream_channels}
        return writes or None

    def map_update(self, update: Any) -> list[tuple[str, Any]]:
        """Channel writes for `Command(update=...)` given as input."""
        if isinstance(update, dict):
            return [(k, v) for k, v in update.items() if k in self.spec.channels]
        if isinstance(update, list | tuple):
            return [(k, v) for k, v in update if k in self.spec.channels]
        raise TypeError(f"Command(update=...) expects a dict or a list of (key, value) pairs, got {update!r}")

    # ------------------------------------------------------------ running

    step_timeout: float | None = None
    """Seconds each step's tasks may take (set it on the compiled graph, as in LangGraph): a step still running
    then fails with `TimeoutError`; what its finished tasks wrote is kept, so a retry runs only the rest."""

    def with_config(self, config: RunnableConfig | None = None, **kwargs: Any) -> Pregel:
        """A copy of this graph that merges `config` into every run's config."""
        import copy

        new = copy.copy(self)
        new.config = _merge(self.config, {**(config or {}), **kwargs})  # type: ignore[arg-type]
        return new

    def _config(self, config: RunnableConfig | None) -> RunnableConfig:
        merged = _merge(self.config, config)
        merged.setdefault("recursion_limit", DEFAULT_RECURSION_LIMIT)
        if merged["recursion_limit"] < 1:
            raise ValueError("recursion_limit must be at least 1")
        configurable = merged["configurable"] = dict(merged.get("configurable") or {})
        metadata = merged["metadata"] = dict(merged.get("metadata") or {})
        for key in _TO_METADATA:
            if key not in metadata and (value := configurable.get(key)):
                metadata[key] = value
        return merged

    def _lookup(self, config: RunnableConfig) -> RunnableConfig:
        """Only the `configurable` part: savers echo the config they are given in what they return."""
        return {"configurable": self._config(config)["configurable"]}

    @property
    def saver(self) -> BaseCheckpointSaver[Any] | None:
        """The checkpointer object this graph saves to when run at the root (None for `True`/`False`)."""
        return self.checkpointer if isinstance(self.checkpointer, BaseCheckpointSaver) else None

    def _thread_config(self, config: RunnableConfig) -> RunnableConfig:
        if self.checkpointer is True:
            raise RuntimeError("checkpointer=True cannot be used for root graphs.")
        configurable = config.get("configurable", {})
        if self.saver is not None and "thread_id" not in configurable:
            raise ValueError(
                "Checkpointer requires one or more of the following 'configurable' keys: thread_id, "
                "checkpoint_ns, checkpoint_id"
            )
        return config

    def _prepare(
        self,
        input: Any,
        config: RunnableConfig,
        loaded: tuple[CheckpointTuple | None, str | None],
        options: RunOptions,
        scope: RunScope,
        parent: TaskContext | None,
        asynchronous: bool = False,
    ) -> _Run:
        saved, head = loaded
        saver = scope.saver
        if isinstance(input, Command) and input.resume is not None and saver is None:
            raise RuntimeError("Cannot use Command(resume=...) without checkpointer")
        resuming = saved is not None and (input is None or isinstance(input, Command))
        if input is None and not resuming:
            raise EmptyInputError(f"Received no input for {self.spec.input_channels}")
        modes, single = _modes(options.stream_mode)
        print_mode = options.print_mode
        printed = frozenset((print_mode,) if isinstance(print_mode, str) else print_mode)
        if self.debug if options.debug is None else options.debug:
            printed |= {"values", "updates"}
        own = frozenset() if parent is not None and options.for_invoke else frozenset(modes) | printed
        if "debug" in own:
            own |= {"tasks", "checkpoints"}
        durability = options.durability or "async"
        if parent is None:
            sink = Sink(own, subgraphs=options.subgraphs)
            scope = replace(scope, sink=sink, committer=_committer(saver, durability, asynchronous))
        else:
            sink = Sink(own, ns=scope.ns_path, forward=parent.run.scope.sink)  # type: ignore[arg-type]
            scope = replace(scope, sink=sink)
        all_modes = frozenset(m for m in _ALL_MODES if sink.wants(m))
        # invoke needs only the final values, unless a subgraph-streaming caller reads every step's, or they are
        # printed (`debug`, `print_mode`): then each step's values of the output channels, as LangGraph prints.
        printing_values = options.for_invoke and parent is None and "values" in printed
        at_end = options.for_invoke and "values" not in (all_modes - own) and not printing_values
        outputs = at_end or printing_values
        # Output channels that clear by themselves (ephemeral ones, in low-level graphs) are read at each step
        # that writes them, not at the end, as LangGraph returns the last values chunk.
        hold_back = at_end and self.spec.output_set.isdisjoint(self.spec.step_notified)
        run = RunContext(
            config=config,
            store=self.store if self.store is not None or parent is None else parent.run.store,
            context=_coerce_context(self.context_schema, options.context)
            if options.context is not None or parent is None
            else parent.run.context,
            stream_writer=(lambda chunk: sink.emit("custom", chunk)) if sink.wants("custom") else _drop,
            scope=scope,
            resuming=resuming,
            message_sink=(lambda item: sink.emit("messages", item)) if sink.wants("messages") else None,
            # A nested run sees its caller's control, unless it was given its own (which it then obeys).
            control=options.control or (RunControl() if parent is None else parent.run.control),
        )
        st = _algo.restore_state(
            self.spec,
            run,
            saved,
            (lambda v: saver.get_next_version(v, None)) if saver else _algo.increment,
            checkpoint_ns=scope.ns,
            fresh_id=f"run-{next(_counter)}",
            track_saved=saver is not None,
        )
        config_of = _config_of(config)
        plan = RunPlan(
            input=input,
            modes=all_modes,
            checkpointing=saver is not None,
            save_at_exit_only=durability == "exit",
            interrupt_before=_names(options.interrupt_before, self.spec.interrupt_before),
            interrupt_after=_names(options.interrupt_after, self.spec.interrupt_after),
            recursion_limit=config["recursion_limit"],
            resuming=resuming,
            map_update=self.map_update,
            output=_select(self.output_values if outputs else self.stream_values, options.output_keys),
            values_set=_values_set(self, options, outputs),
            values_at_end=hold_back,
            updates_chunk=_updates_of(self.updates_chunk, options.output_keys),
            previous_step=saved.metadata.get("step", -1) if saved else -2,
            # Without a saver the ids are never seen outside the run (task ids derive from them).
            new_checkpoint_id=uuid6_str if saver else (lambda: f"run-{next(_counter)}"),
            base_metadata=get_checkpoint_metadata(config, {}) if saver else {},  # type: ignore[arg-type]
            forking=_forks(config, saved, head, input, resuming),
            config_of=config_of,
            parent_config=config_of(saved.config["configurable"]["checkpoint_id"]) if saved else None,
            saved=saved,
            parents=dict(scope.parents),
            caching=self.cache is not None and any(n.cache is not None for n in self.spec.nodes.values()),
            streamed_message_ids=run.streamed_message_ids,
            control=run.control if parent is None else options.control,
            root=parent is None,
        )
        writer = None
        if saver is not None:
            base: RunnableConfig = {"configurable": {"thread_id": scope.thread_id, "checkpoint_ns": scope.ns}}
            writer = ThreadWriter(saver, saved.config if saved else base, head, committer=scope.committer)
        io = RunIO(
            sink,
            writer,
            nested=parent is not None,
            # Tokens and custom chunks reach a streaming caller while the task that makes them still runs.
            live=parent is None
            and not options.for_invoke
            and (options.subgraphs or not all_modes.isdisjoint(("messages", "custom"))),
            max_concurrency=config.get("max_concurrency"),
            step_timeout=self.step_timeout,
            cache=self.cache,
            label=_run_label(config, saver),
        )
        run.units = UnitRunner(_algo.read_saved_writes(st.pending_writes) if resuming else {}, io)
        return _Run(st, plan, io, modes, single, printed, parent is not None, self._parts() if options.v2 else None)

    @contextmanager
    def _owned(self, config: RunnableConfig | None) -> Iterator[str | None]:
        """Hold the thread for a root run or a state update, before anything is read or written.

        A second run on the thread is refused (or waits, with `multitask_strategy="enqueue"`); see
        `BaseCheckpointSaver.claim_thread`. A nested run works under its root's claim. Yields the claim's
        owner token when this call made the claim (None when it holds none of its own): a run's last saves
        may then drop the claim in their own transaction.
        """
        if self.saver is None or running_task() is not None:
            yield None
            return
        cfg = self._thread_config(self._config(config))
        thread_id, _ = config_thread(cfg)
        before = held_owner(self.saver, thread_id)
        with self.saver.claim_thread(cfg):
            yield held_owner(self.saver, thread_id) if before is None else None

    @asynccontextmanager
    async def _aowned(self, config: RunnableConfig | None) -> AsyncIterator[str | None]:
        """Async twin of `_owned`."""
        if self.saver is None or running_task() is not None:
            yield None
            return
        cfg = self._thread_config(self._config(config))
        thread_id, _ = config_thread(cfg)
        before = held_owner(self.saver, thread_id)
        async with self.saver.aclaim_thread(cfg):
            yield held_owner(self.saver, thread_id) if before is None else None

    def _load(self, saver: Any, config: RunnableConfig) -> tuple[CheckpointTuple | None, str | None]:
        """The checkpoint the run starts from, and the thread's newest one (what a concurrent run would move)."""
        if saver is None:
            return None, None
        saved = saver.get_tuple(config)
        if not _names_a_checkpoint(config, saved):
            return saved, _id_of(saved)
        return saved, saver.get_head_id(config)

    async def _aload(self, saver: Any, config: RunnableConfig) -> tuple[CheckpointTuple | None, str | None]:
        """Async twin of `_load`."""
        if saver is None:
            return None, None
        saved = await saver.aget_tuple(config)
        if not _names_a_checkpoint(config, saved):
            return saved, _id_of(saved)
        return saved, await saver.aget_head_id(config)

    def _scope(self, config: RunnableConfig | None) -> tuple[RunnableConfig, RunScope, TaskContext | None]:
        """The run's config and scope: the root of a thread, or a child of the task this call runs in."""
        parent = running_task()
        if parent is None:
            cfg = self._thread_config(self._config(config))
            thread_id = cfg["configurable"].get("thread_id")
            ns = cfg["configurable"].get("checkpoint_ns", "")
            return cfg, RunScope(thread_id, ns, saver=self.saver), None
        cfg, scope = _nested.child_scope(self, parent, config)
        return self._config(cfg), scope, parent

    def _start(self, input: Any, config: RunnableConfig | None, options: RunOptions) -> _Run:
        cfg, scope, parent = self._scope(config)
        if scope.committer is not None and scope.committer.pending(scope.ns):
            scope.committer.wait(scope.ns)  # this namespace's earlier saves are read now
        loaded = self._load(scope.saver, cfg)
        if parent is not None:
            input = _nested.child_input(input, loaded[0], parent, persistent=self.checkpointer is True)
        return self._prepare(input, cfg, loaded, options, scope, parent)

    async def _astart(self, input: Any, config: RunnableConfig | None, options: RunOptions) -> _Run:
        cfg, scope, parent = self._scope(config)
        if scope.committer is not None and scope.committer.pending(scope.ns):
            await scope.committer.await_(scope.ns)  # this namespace's earlier saves are read now
        loaded = await self._aload(scope.saver, cfg)
        if parent is not None:
            input = _nested.child_input(input, loaded[0], parent, persistent=self.checkpointer is True)
        return self._prepare(input, cfg, loaded, options, scope, parent, asynchronous=True)

    def stream(
        self,
        input: Any,
        config: RunnableConfig | None = None,
        *,
        context: Any = None,
        stream_mode: StreamMode | Sequence[StreamMode] | None = None,
        print_mode: StreamMode | Sequence[StreamMode] = (),
        output_keys: str | Sequence[str] | None = None,
        interrupt_before: All | Sequence[str] | None = None,
        interrupt_after: All | Sequence[str] | None = None,
        durability: Durability | None = None,
        subgraphs: bool = False,
        debug: bool | None = None,
        version: str = "v1",
        control: RunControl | None = None,
    ) -> Iterator[Any]:
        """Run the graph, yielding chunks in `stream_mode` (a list of modes yields `(mode, chunk)`)."""
        options = RunOptions(
            self.default_stream_mode if stream_mode is None else stream_mode,
            context,
            print_mode,
            output_keys,
            interrupt_before,
            interrupt_after,
            durability,
            debug,
            subgraphs=subgraphs,
            v2=check_version("stream", version),
            control=control,
        )
        with self._owned(config) as owner:
            run = self._start(input, config, options)
            committer = _root_committer(run)
            # Closed before the claim is released, so held-back writes are saved by the owner.
            with _committed(committer, owner), closing(drive_sync(run_loop(run.st, run.plan), run.io)) as events:
                for ns, event, chunk in events:
                    if committer is not None and not ns and _interrupts(chunk):
                        run.io.writer.flush()  # type: ignore[union-attr]
                        committer.wait()  # what the caller may read on seeing an interrupt is saved
                    yield from _shape(run, ns, event, chunk, subgraphs)
        _raise_if_nested_interrupt(run)

    async def astream(
        self,
        input: Any,
        config: RunnableConfig | None = None,
        *,
        context: Any = None,
        stream_mode: StreamMode | Sequence[StreamMode] | None = None,
        print_mode: StreamMode | Sequence[StreamMode] = (),
        output_keys: str | Sequence[str] | None = None,
        interrupt_before: All | Sequence[str] | None = None,
        interrupt_after: All | Sequence[str] | None = None,
        durability: Durability | None = None,
        subgraphs: bool = False,
        debug: bool | None = None,
        version: str = "v1",
        control: RunControl | None = None,
    ) -> AsyncIterator[Any]:
        """Async twin of `stream`."""
        options = RunOptions(
            self.default_stream_mode if stream_mode is None else stream_mode,
            context,
            print_mode,
            output_keys,
            interrupt_before,
            interrupt_after,
            durability,
            debug,
            subgraphs=subgraphs,
            v2=check_version("astream", version),
            control=control,
        )
        async with self._aowned(config) as owner:
            run = await self._astart(input, config, options)
            committer = _root_committer(run)
            async with (
                _acommitted(committer, owner),
                aclosing(drive_async(run_loop(run.st, run.plan), run.io)) as events,
            ):
                async for ns, event, chunk in events:
                    if committer is not None and not ns and _interrupts(chunk):
                        run.io.writer.flush()  # type: ignore[union-attr]
                        await committer.await_()  # what the caller may read on seeing an interrupt is saved
                    for item in _shape(run, ns, event, chunk, subgraphs):
                        yield item
        _raise_if_nested_interrupt(run)

    default_stream_mode: StreamMode = "values"

    def invoke(
        self,
        input: Any,
        config: RunnableConfig | None = None,
        *,
        context: Any = None,
        stream_mode: StreamMode = "values",
        print_mode: StreamMode | Sequence[StreamMode] = (),
        output_keys: str | Sequence[str] | None = None,
        interrupt_before: All | Sequence[str] | None = None,
        interrupt_after: All | Sequence[str] | None = None,
        durability: Durability | None = None,
        version: str = "v1",
        control: RunControl | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run the graph to the end and return its output (with `__interrupt__` when interrupted)."""
        options = _invoke_options(
            "invoke",
            kwargs,
            stream_mode,
            context,
            print_mode,
            output_keys,
            interrupt_before,
            interrupt_after,
            durability,
            version,
            control,
        )
        with self._owned(config) as owner:
            run = self._start(input, config, options)
            events = drive_sync(run_loop(run.st, run.plan), run.io)
            if run.nested:
                for _ in events:
                    pass
                return self._nested_result(run, options)
            with _committed(_root_committer(run), owner):
                return _collect(run, events, stream_mode)

    async def ainvoke(
        self,
        input: Any,
        config: RunnableConfig | None = None,
        *,
        context: Any = None,
        stream_mode: StreamMode = "values",
        print_mode: StreamMode | Sequence[StreamMode] = (),
        output_keys: str | Sequence[str] | None = None,
        interrupt_before: All | Sequence[str] | None = None,
        interrupt_after: All | Sequence[str] | None = None,
        durability: Durability | None = None,
        version: str = "v1",
        control: RunControl | None = None,
        **kwargs: Any,
    ) -> Any:
        """Async twin of `invoke`."""
        options = _invoke_options(
            "ainvoke",
            kwargs,
            stream_mode,
            context,
            print_mode,
            output_keys,
            interrupt_before,
            interrupt_after,
            durability,
            version,
            control,
        )
        async with self._aowned(config) as owner:
            run = await self._astart(input, config, options)
            async with _acommitted(_root_committer(run), owner):
                events = [event async for event in drive_async(run_loop(run.st, run.plan), run.io)]
        if run.nested:
            return self._nested_result(run, options)
        return _collect(run, iter(events), stream_mode)

    def _nested_result(self, run: _Run, options: RunOptions) -> Any:
        """What a nested invoke returns to the task it runs in: the output, or its interrupt raised."""
        _raise_if_nested_interrupt(run)
        output = _select(self.output_values, options.output_keys)(run.st)
        return output if run.parts is None else run.parts.result(output, ())

    def _parts(self) -> Parts:
        """How `version="v2"` parts show this graph's values (a `StateGraph` maps them to its schemas)."""
        return Parts()

    # ------------------------------------------------------------ thread state

    def clear_cache(self, nodes: Sequence[str] | None = None) -> None:
        """Drop the cached results of `nodes` (every node when None) from the graph's cache."""
        self._cache_or_raise().clear(namespaces_of(self._units(), nodes))

    async def aclear_cache(self, nodes: Sequence[str] | None = None) -> None:
        """Async twin of `clear_cache`."""
        await self._cache_or_raise().aclear(namespaces_of(self._units(), nodes))

    def _cache_or_raise(self) -> BaseCache[Any]:
        if self.cache is None:
            raise ValueError("No cache is set for this graph. Cannot clear cache.")
        return self.cache

    def _units(self) -> dict[str, UnitCache | None]:
        return {name: node.cache for name, node in self.spec.nodes.items()}

    def get_state(self, config: RunnableConfig, *, subgraphs: bool = False) -> StateSnapshot:
        """The thread's state at the checkpoint named in `config` (its newest if none is named).

        A config with a subgraph's `checkpoint_ns` reads that subgraph's state. With `subgraphs=True`, each
        task running a subgraph carries the subgraph's snapshot in `state` (otherwise, its config).
        """
        graph, saver = self._target(config)
        return graph._snapshot(saver, config, subgraphs)

    async def aget_state(self, config: RunnableConfig, *, subgraphs: bool = False) -> StateSnapshot:
        """Async twin of `get_state`."""
        graph, saver = self._target(config)
        return await graph._asnapshot(saver, config, subgraphs)

    def _snapshot(
        self, saver: Any, config: RunnableConfig, subgraphs: bool, above: dict[str, Any] | None = None
    ) -> StateSnapshot:
        """`above`: for a subgraph's snapshot, the checkpoint id of each namespace above it (`checkpoint_map`)."""
        saved = saver.get_tuple(self._lookup(config))
        snapshot = _mapped(_state.state_of(self, saved, config, live=_state.is_live(config), saver=saver), above)
        children = self._children(snapshot)
        if subgraphs:
            for i, (child, child_config) in children.items():
                state = child._snapshot(saver, child_config, True, _checkpoint_map(snapshot, above))
                if state.metadata is not None:
                    children[i] = (child, state)
        return _with_children(snapshot, children)

    async def _asnapshot(
        self, saver: Any, config: RunnableConfig, subgraphs: bool, above: dict[str, Any] | None = None
    ) -> StateSnapshot:
        saved = await saver.aget_tuple(self._lookup(config))
        snapshot = _mapped(_state.state_of(self, saved, config, live=_state.is_live(config), saver=saver), above)
        children = self._children(snapshot)
        if subgraphs:
            for i, (child, child_config) in children.items():
                state = await child._asnapshot(saver, child_config, True, _checkpoint_map(snapshot, above))
                if state.metadata is not None:
                    children[i] = (child, state)
        return _with_children(snapshot, children)

    def get_subgraphs(self, *, namespace: str | None = None, recurse: bool = False) -> Iterator[tuple[str, Pregel]]:
        """The compiled graphs used as nodes: `(name, graph)`, deeper ones as `outer|inner` when `recurse`."""
        for name, node in self.spec.nodes.items():
            child = node.subgraph
            if child is None:
                continue
            if namespace is None or namespace == name:
                yield name, child
            if recurse:
                for sub, graph in child.get_subgraphs(recurse=True):
                    if namespace is None or namespace == f"{name}|{sub}":
                        yield f"{name}|{sub}", graph

    async def aget_subgraphs(
        self, *, namespace: str | None = None, recurse: bool = False
    ) -> AsyncIterator[tuple[str, Pregel]]:
        """Async `get_subgraphs`."""
        for found in self.get_subgraphs(namespace=namespace, recurse=recurse):
            yield found

    def _target(self, config: RunnableConfig) -> tuple[Pregel, Any]:
        """The graph whose state `config` names (this one, or a subgraph by its `checkpoint_ns`) and the saver."""
        saver = _state.require_saver(self)
        ns = config.get("configurable", {}).get("checkpoint_ns", "")
        if not ns:
            return self, saver
        path = _nested.recast(ns)
        found = dict(self.get_subgraphs(namespace=path, recurse=True))
        if path not in found:
            raise ValueError(f"Subgraph {path} not found")
        return found[path], saver

    def _children(self, snapshot: StateSnapshot) -> dict[int, tuple[Pregel, Any]]:
        """For each snapshot task that runs a subgraph: the subgraph and the config of its namespace."""
        if not snapshot.tasks:
            return {}
        configurable = snapshot.config["configurable"]
        ns = configurable.get("checkpoint_ns", "")
        out: dict[int, tuple[Pregel, Any]] = {}
        for i, task in enumerate(snapshot.tasks):
            child = self.spec.nodes[task.name].subgraph if task.name in self.spec.nodes else None
            if child is None:
                continue
            task_ns = f"{ns}|{task.name}:{task.id}" if ns else f"{task.name}:{task.id}"
            out[i] = (child, _nested.child_state_config(configurable.get("thread_id"), task_ns, child))
        return out

    def get_state_history(
        self,
        config: RunnableConfig,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[StateSnapshot]:
        """The thread's snapshots, newest first (a subgraph's, for a config with its `checkpoint_ns`)."""
        graph, saver = self._target(config)
        config = self._config(config)
        config["configurable"].setdefault("checkpoint_ns", "")
        for saved in saver.list(config, filter=filter, before=before, limit=limit):
            snapshot = _state.state_of(graph, saved, config, live=False, saver=saver)
            yield _with_children(snapshot, graph._children(snapshot))  # a subgraph task's state: its config

    async def aget_state_history(
        self,
        config: RunnableConfig,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[StateSnapshot]:
        """Async twin of `get_state_history`."""
        graph, saver = self._target(config)
        config = self._config(config)
        config["configurable"].setdefault("checkpoint_ns", "")
        async for saved in saver.alist(config, filter=filter, before=before, limit=limit):
            snapshot = _state.state_of(graph, saved, config, live=False, saver=saver)
            yield _with_children(snapshot, graph._children(snapshot))  # a subgraph task's state: its config

    def update_state(
        self,
        config: RunnableConfig,
        values: dict[str, Any] | Any | None,
        as_node: str | None = None,
        task_id: str | None = None,
    ) -> RunnableConfig:
        """Write `values` to the thread as if node `as_node` had returned them; returns the new config."""
        return self.bulk_update_state(config, [[StateUpdate(values, as_node, task_id)]])

    async def aupdate_state(
        self,
        config: RunnableConfig,
        values: dict[str, Any] | Any | None,
        as_node: str | None = None,
        task_id: str | None = None,
    ) -> RunnableConfig:
        """Async twin of `update_state`."""
        return await self.abulk_update_state(config, [[StateUpdate(values, as_node, task_id)]])

    def bulk_update_state(self, config: RunnableConfig, supersteps: Sequence[Sequence[StateUpdate]]) -> RunnableConfig:
        """Apply supersteps of updates in order: one checkpoint per superstep (to a subgraph's namespace too)."""
        graph, saver = self._target(config)
        _state.check_supersteps(supersteps)
        config = self._thread_config(self._config(config))
        with self._owned(config):
            for superstep in supersteps:
                saved, head = self._load(saver, config)
                updates = [(u.values, u.as_node) for u in superstep]
                checkpoint, metadata, versions = _state.plan_update(graph, saved, config, updates, saver)
                parent = saved.config if saved else _state.thread_only(config)
                config = {**config, **saver.put_guarded(parent, checkpoint, metadata, versions, expected_head=head)}
        return {"configurable": config["configurable"]}

    async def abulk_update_state(
        self, config: RunnableConfig, supersteps: Sequence[Sequence[StateUpdate]]
    ) -> RunnableConfig:
        """Async twin of `bulk_update_state`."""
        graph, saver = self._target(config)
        _state.check_supersteps(supersteps)
        config = self._thread_config(self._config(config))
        async with self._aowned(config):
            for superstep in supersteps:
                saved, head = await self._aload(saver, config)
                updates = [(u.values, u.as_node) for u in superstep]
                checkpoint, metadata, versions = _state.plan_update(graph, saved, config, updates, saver)
                parent = saved.config if saved else _state.thread_only(config)
                new = await saver.aput_guarded(parent, checkpoint, metadata, versions, expected_head=head)
                config = {**config, **new}
        return {"configurable": config["configurable"]}


def _drop(_chunk: Any) -> None:
    return None


def _committer(saver: Any, durability: str, asynchronous: bool) -> Committer | None:
    """A root run's background writer: with `durability="async"` on a saver whose commits wait for I/O."""
    if saver is None or durability != "async" or not getattr(saver, "background_saves", False):
        return None
    return Committer(saver, asynchronous=asynchronous)


def _root_committer(run: _Run) -> Committer | None:
    return None if run.nested or run.io.writer is None else run.io.writer.committer


def _interrupts(chunk: Any) -> bool:
    return type(chunk) is dict and INTERRUPT in chunk


@contextmanager
def _committed(committer: Committer | None, owner: str | None) -> Iterator[None]:
    """A root run's queued saves are committed when the block ends, however it ends (before the thread
    claim is released; the last group drops the claim `owner` too); a failed background commit is raised
    here if nothing else is."""
    if committer is None:
        yield
        return
    try:
        yield
    except BaseException as exc:
        committer.close(exc, release_owner=owner)
        raise
    committer.close(release_owner=owner)


@asynccontextmanager
async def _acommitted(committer: Committer | None, owner: str | None) -> AsyncIterator[None]:
    """Async twin of `_committed` (the wait survives the caller's cancellation)."""
    if committer is None:
        yield
        return
    import anyio

    try:
        yield
    except BaseException as exc:
        with anyio.CancelScope(shield=True):
            await committer.aclose(exc, release_owner=owner)
        raise
    await committer.aclose(release_owner=owner)


_ALL_MODES = STREAM_MODES


def _checkpoint_map(snapshot: StateSnapshot, above: dict[str, Any] | None) -> dict[str, Any]:
    """The checkpoint id of each namespace from the root down to `snapshot`'s own."""
    configurable = snapshot.config["configurable"]
    return {**(above or {}), configurable.get("checkpoint_ns", ""): configurable.get("checkpoint_id")}


def _mapped(snapshot: StateSnapshot, above: dict[str, Any] | None) -> StateSnapshot:
    """A subgraph's snapshot whose config carries `checkpoint_map`, as LangGraph's `get_state(subgraphs=True)`
    gives it (the root's, `above` None, has none)."""
    if above is None or snapshot.metadata is None:
        return snapshot
    configurable = {**snapshot.config["configurable"], "checkpoint_map": _checkpoint_map(snapshot, above)}
    return snapshot._replace(config={**snapshot.config, "configurable": configurable})


def _with_children(snapshot: StateSnapshot, children: dict[int, tuple[Pregel, Any]]) -> StateSnapshot:
    """The snapshot with each subgraph task's `state` filled in (a snapshot, or the subgraph's config)."""
    if not children:
        return snapshot
    tasks = list(snapshot.tasks)
    for i, (_, state) in children.items():
        tasks[i] = tasks[i]._replace(state=state)
    return snapshot._replace(tasks=tuple(tasks))


def _raise_if_nested_interrupt(run: _Run) -> None:
    """A nested run that stopped at an interrupt or a breakpoint interrupts the task it runs in."""
    if run.nested and run.plan.status not in ("", "done"):
        raise GraphInterrupt(tuple(run.plan.interrupts))


def _forks(config: RunnableConfig, saved: CheckpointTuple | None, head: str | None, input: Any, resuming: bool) -> bool:
    """Replaying a named checkpoint (time travel) writes a `fork` checkpoint first, as LangGraph does, except when the
    named checkpoint is the thread's newest and an `update_state` or a fork made it (that is a fork already).

    A `Command(resume=...)` is not time travel: at the thread's newest checkpoint it resumes it, as a config without
    an id does; at an older one it is refused (its interrupts were answered, or the thread moved on).
    """
    if not (resuming and saved is not None and "checkpoint_id" in config["configurable"]):
        return False
    named = saved.config["configurable"]["checkpoint_id"]
    if isinstance(input, Command) and input.resume is not None:
        if named == head:
            return False
        raise InvalidUpdateError(
            f"Command(resume=...) names checkpoint {named!r} of thread "
            f"{config['configurable'].get('thread_id')!r}, which is not the thread's newest ({head!r}): an older "
            "checkpoint's interrupts can't be answered again. Resume the newest one (a config without "
            "'checkpoint_id'), or branch from the older one: graph.update_state(its_config, values) or "
            "graph.invoke(None, its_config) runs it again, and its interrupts can then be answered."
        )
    return not (named == head and saved.metadata.get("source") in ("update", "fork"))


def _select(read: Any, output_keys: str | Sequence[str] | None) -> Any:
    """The output reader, narrowed to `output_keys` when the caller named some."""
    if output_keys is None:
        return read
    if isinstance(output_keys, str):
        return lambda st: st.values.get(output_keys)
    keys = tuple(output_keys)
    return lambda st: {k: st.values[k] for k in keys if k in st.values}


def _updates_of(default: Callable[[Task], Any], output_keys: str | Sequence[str] | None) -> Callable[[Task], Any]:
    """What a task's `updates` chunk shows: with `output_keys`, the value it wrote to that one key (None when it
    wrote none) or its writes to those keys (None when none), as in LangGraph."""
    if output_keys is None:
        return default
    if isinstance(output_keys, str):
        key = output_keys
        return lambda task: next((v for c, v in task.writes if c == key), None)
    keys = frozenset(output_keys)
    return lambda task: {c: v for c, v in task.writes if c in keys} or None


def _values_set(graph: Pregel, options: RunOptions, outputs: bool) -> frozenset[str]:
    """The channels whose update makes a new values chunk (`outputs`: the chunks show the output channels)."""
    if options.output_keys is not None:
        keys = options.output_keys
        return frozenset((keys,) if isinstance(keys, str) else keys)
    if outputs:
        return graph.spec.output_set
    keys = graph.values_keys()
    return frozenset((keys,) if isinstance(keys, str) else keys)


def _coerce_context(schema: Any, context: Any) -> Any:
    """A dict context becomes the graph's `context_schema` when that is a dataclass or pydantic model."""
    import dataclasses

    if not isinstance(context, dict) or not isinstance(schema, type):
        return context
    if dataclasses.is_dataclass(schema) or hasattr(schema, "model_validate"):
        return schema(**context)
    return context


def _config_of(config: RunnableConfig) -> Any:
    configurable = config["configurable"]
    thread_id, ns = configurable.get("thread_id"), configurable.get("checkpoint_ns", "")

    def config_of(checkpoint_id: str) -> dict[str, Any]:
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}

    return config_of


def _merge(base: RunnableConfig | None, extra: RunnableConfig | None) -> RunnableConfig:
    out: dict[str, Any] = dict(base or {})
    for key, value in (extra or {}).items():
        if key in ("configurable", "metadata") and isinstance(value, dict):
            out[key] = {**out.get(key, {}), **value}
        elif key == "tags" and isinstance(value, list):
            out[key] = [*out.get(key, []), *value]
        elif value is not None:
            out[key] = value
    return out  # type: ignore[return-value]


def _run_label(config: RunnableConfig, saver: Any) -> str:
    """How log lines name a run: its thread (and namespace), if it saves checkpoints."""
    if saver is None:
        return ""
    configurable = config["configurable"]
    ns = configurable.get("checkpoint_ns")
    return f"thread '{configurable['thread_id']}'" + (f" ns '{ns}'" if ns else "")


def _names_a_checkpoint(config: RunnableConfig, saved: CheckpointTuple | None) -> bool:
    """The config names a (possibly older) checkpoint, so the thread's head must be looked up apart."""
    return saved is not None and "checkpoint_id" in config["configurable"]


def _id_of(saved: CheckpointTuple | None) -> str | None:
    return saved.config["configurable"]["checkpoint_id"] if saved else None


def _names(given: All | Sequence[str] | None, default: All | tuple[str, ...]) -> All | tuple[str, ...]:
    if given is None:
        return default
    return "*" if given == "*" else tuple(given)


_DERIVED_OPTIONS = frozenset({"auto_validate", "stream_eager", "trigger_to_nodes"})
"""LangGraph `Pregel(...)` options graphrt derives or does not need (validation always runs)."""


def _check_low_level_options(kwargs: dict[str, Any]) -> None:
    """`Pregel(nodes=...)` options that would change the run are refused, never dropped."""
    if kwargs.get("retry_policy") or kwargs.get("cache_policy"):
        raise NotImplementedError(
            "Pregel(retry_policy=/cache_policy=) is not supported yet: set them on each node "
            "(NodeBuilder.add_retry_policies / add_cache_policy)."
        )
    unknown = sorted(set(kwargs) - _DERIVED_OPTIONS - {"retry_policy", "cache_policy"})
    if unknown:
        raise TypeError(f"Pregel() got unexpected keyword arguments {unknown}.")


def _invoke_options(
    method: str,
    kwargs: dict[str, Any],
    stream_mode: StreamMode,
    context: Any,
    print_mode: StreamMode | Sequence[StreamMode],
    output_keys: str | Sequence[str] | None,
    interrupt_before: All | Sequence[str] | None,
    interrupt_after: All | Sequence[str] | None,
    durability: Durability | None,
    version: str,
    control: RunControl | None,
) -> RunOptions:
    """The options of an invoke/ainvoke call; its extra keywords are checked as `stream` options."""
    debug = _invoke_debug(method, kwargs)
    options = (stream_mode, context, print_mode, output_keys, interrupt_before, interrupt_after, durability, debug)
    return RunOptions(*options, True, v2=check_version(method, version), control=control)


def _invoke_debug(method: str, kwargs: dict[str, Any]) -> bool | None:
    """The `stream` options `invoke` passes on (LangGraph passes its extra keywords to `stream`): `debug` is
    honoured, `subgraphs` changes nothing in the output; anything else is a `TypeError`."""
    debug: bool | None = kwargs.pop("debug", None)
    kwargs.pop("subgraphs", None)
    if kwargs:
        raise TypeError(f"{method}() got an unexpected keyword argument {next(iter(kwargs))!r}")
    return debug


def _modes(stream_mode: StreamMode | Sequence[StreamMode] | None) -> tuple[tuple[str, ...], str | None]:
    if isinstance(stream_mode, str):
        modes: tuple[str, ...] = (stream_mode,)
        single: str | None = stream_mode
    else:
        # An empty list streams nothing (the run still runs and saves), as in LangGraph.
        modes, single = ("values",) if stream_mode is None else tuple(stream_mode), None
    return modes, single


def _shape(run: _Run, ns: tuple[str, ...], mode: str, chunk: Any, subgraphs: bool) -> Iterator[Any]:
    """Turn an internal event into what `stream` yields for the requested modes (and print print modes)."""
    for out_mode, out in _as_modes(run, mode, chunk):
        if out_mode in run.print_modes and not ns:
            print_debug(out_mode, out)
        if out_mode not in run.modes:
            continue
        if run.parts is not None:
            yield run.parts.part(ns, out_mode, out)
        elif run.single_mode is not None:
            yield (ns, out) if subgraphs else out
        else:
            yield (ns, out_mode, out) if subgraphs else (out_mode, out)


def _as_modes(run: _Run, mode: str, chunk: Any) -> Iterator[tuple[str, Any]]:
    """An internal `tasks`/`checkpoints` event also feeds `debug`, wrapped with step, time and type."""
    from datetime import UTC, datetime

    if mode == "tasks":
        step = chunk.pop("__step", run.st.step)
        yield "tasks", chunk
        kind = "task_result" if "result" in chunk else "task"
        yield "debug", {"step": step, "timestamp": datetime.now(UTC).isoformat(), "type": kind, "payload": chunk}
    elif mode == "checkpoints":
        yield "checkpoints", chunk
        ts = datetime.now(UTC).isoformat()
        yield "debug", {"step": chunk["metadata"]["step"], "timestamp": ts, "type": "checkpoint", "payload": chunk}
    else:
        yield mode, chunk


def _collect(run: _Run, events: Iterator[Event], stream_mode: str) -> Any:
    """`invoke`'s return: the last values chunk (plus pending interrupts), or every chunk of another mode
    (with `version="v2"`: a `GraphOutput`, or every part of the mode)."""
    latest: Any = None
    chunks: list[Any] = []
    for _ns, mode, chunk in events:
        for out_mode, out in _as_modes(run, mode, chunk):
            if out_mode in run.print_modes:
                print_debug(out_mode, out)
            if out_mode != stream_mode:
                continue
            if stream_mode != "values":
                chunks.append(out if run.parts is None else run.parts.part((), out_mode, out))
            elif isinstance(out, dict) and INTERRUPT in out:
                latest = {k: v for k, v in out.items() if k != INTERRUPT}
            else:
                latest = out
    if stream_mode != "values":
        return chunks
    if run.parts is not None:
        return run.parts.result(latest, run.plan.interrupts)
    if run.plan.interrupts:
        base = latest if isinstance(latest, dict) else {}
        return {**base, INTERRUPT: list(run.plan.interrupts)}
    return latest
