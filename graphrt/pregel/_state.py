"""Reading and writing a thread's saved state: snapshots and `update_state` plans (no I/O here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from graphrt._context import RunContext
from graphrt.checkpoint.base import Checkpoint, CheckpointMetadata, CheckpointTuple, empty_checkpoint
from graphrt.checkpoint.base.id import uuid6_str
from graphrt.config import RunnableConfig
from graphrt.constants import END, START
from graphrt.errors import InvalidUpdateError
from graphrt.pregel import _algo
from graphrt.pregel._algo import LoopState
from graphrt.pregel._spec import NULL_TASK_ID, PULL, Task
from graphrt.types import Interrupt, PregelTask, StateSnapshot, StateUpdate

if TYPE_CHECKING:
    from graphrt.pregel.main import Pregel


def require_saver(graph: Pregel) -> Any:
    if graph.saver is None:
        raise ValueError("No checkpointer set")
    return graph.saver


def state_of(
    graph: Pregel, saved: CheckpointTuple | None, config: RunnableConfig, *, live: bool, saver: Any = None
) -> StateSnapshot:
    """A snapshot of `saved`. `live` (the thread's current state): finished tasks' saved writes are
    applied to the values and those tasks leave `next`; otherwise values are the checkpoint's own."""
    if saved is None:
        return StateSnapshot({}, (), config, None, None, None, (), ())
    st = loop_state(graph, saved, config, saver)
    tasks, by_task, _ = current_tasks(graph, st, saved)
    snapshot_tasks: list[PregelTask] = []
    interrupts: list[Interrupt] = []
    finished: list[Task] = []
    for task in tasks:
        found = by_task.get(task.id, _algo.SavedTask())
        result = None
        if found.writes is not None:
            result = graph.updates_chunk(task)
            finished.append(task)
        else:
            interrupts.extend(found.interrupts)
        # A saved error reads back as its repr, as in LangGraph; a task that finished after a resume no longer
        # shows the interrupt it was resumed from.
        asked = found.interrupts if found.writes is None else ()
        snapshot = PregelTask(task.id, task.name, task.path, found.error, asked, None, result)
        snapshot_tasks.append(snapshot)
    if live and finished:
        _algo.apply_writes(st, finished, bump_step=False)
    return StateSnapshot(
        values=graph.stream_values(st),  # the whole state, not only the output schema's keys
        next=tuple(t.name for t in tasks if not (live and t in finished)),
        config=saved.config,
        metadata=saved.metadata,
        created_at=saved.checkpoint["ts"],
        parent_config=saved.parent_config,
        tasks=tuple(snapshot_tasks),
        interrupts=tuple(interrupts),
    )


def current_tasks(
    graph: Pregel, st: LoopState, saved: CheckpointTuple
) -> tuple[list[Task], dict[str, _algo.SavedTask], set[str]]:
    """The tasks of `saved` (the state `st` restored from it), after the writes earlier Commands left on it are
    applied: the finished ones carry their saved writes. Returns them, what was saved per task, and the
    channels the Commands' writes changed."""
    tasks = _algo.prepare_next_tasks(st, candidates=graph.spec.nodes)
    by_task = _algo.read_saved_writes(saved.pending_writes or [])
    changed: set[str] = set()
    null = by_task.get(NULL_TASK_ID)
    if null is not None and null.writes:
        changed = _algo.apply_writes(st, [_algo.writes_task(list(null.writes))], bump_step=False)
    for task in tasks:
        found = by_task.get(task.id)
        if found is not None and found.writes is not None:
            task.writes = list(found.writes)
    return tasks, by_task, changed


def loop_state(graph: Pregel, saved: CheckpointTuple, config: RunnableConfig, saver: Any = None) -> LoopState:
    """The loop state of a saved checkpoint, for reading it or planning an update."""
    saver = saver or require_saver(graph)
    return _algo.restore_state(
        graph.spec,
        RunContext(config=config, store=graph.store),
        saved,
        lambda v: saver.get_next_version(v, None),
        checkpoint_ns=saved.config["configurable"].get("checkpoint_ns", ""),
    )


def resolve_as_node(graph: Pregel, saved: CheckpointTuple | None, as_node: str | None) -> str:
    if as_node is not None:
        if as_node not in graph.spec.nodes:
            raise InvalidUpdateError(f"Node {as_node} does not exist")
        return as_node
    if saved is None:
        return START
    seen = saved.checkpoint["versions_seen"]
    last = sorted((v, n) for n, s in seen.items() if n in graph.spec.nodes for v in s.values())
    if not last:
        return START
    if len(last) > 1 and last[-1][0] == last[-2][0] and last[-1][1] != last[-2][1]:
        raise InvalidUpdateError("Ambiguous update, specify as_node")
    return str(last[-1][1])


def plan_update(
    graph: Pregel,
    saved: CheckpointTuple | None,
    config: RunnableConfig,
    updates: Sequence[tuple[Any, str | None]],
    saver: Any = None,
) -> tuple[Checkpoint, CheckpointMetadata, dict[str, Any]]:
    """The checkpoint, metadata and versions that one superstep of `(values, as_node)` updates writes.

    Each update is applied as if its node had returned `values` (its edges and branches fire too);
    all of them land in one checkpoint with source "update". `(None, END)`, alone, ends the checkpoint's
    current tasks instead (`_end_current_tasks`). Pure: no I/O.
    """
    if saved is None:
        saved = CheckpointTuple(thread_only(config), empty_checkpoint(), {"step": -1})
    st = loop_state(graph, saved, config, saver)
    if any(values is None and as_node == END for values, as_node in updates):
        if len(updates) > 1:
            raise InvalidUpdateError("Cannot apply multiple updates when clearing state")
        updated = _end_current_tasks(graph, st, saved)
    else:
        updated = _apply_updates(graph, st, saved, updates)
    checkpoint = _algo.create_checkpoint(st, uuid6_str(), updated)
    metadata: CheckpointMetadata = {"source": "update", "step": saved.metadata.get("step", -1) + 1, "parents": {}}
    return checkpoint, metadata, {c: st.versions[c] for c in updated}


def _apply_updates(
    graph: Pregel, st: LoopState, saved: CheckpointTuple, updates: Sequence[tuple[Any, str | None]]
) -> set[str]:
    """Each update written as if its node had returned it, in one step; returns the channels that changed."""
    tasks = []
    for values, as_node in updates:
        node = graph.spec.nodes[resolve_as_node(graph, saved, as_node)]
        task = _algo.new_task(st, node, None, (PULL, node.name), node.triggers)
        writer = getattr(node.proc, "write_update", None)
        if writer is None:
            raise InvalidUpdateError(f"Node {node.name} cannot take state updates")
        writer(task, values)
        tasks.append(task)
    return _algo.apply_writes(st, tasks)


def _end_current_tasks(graph: Pregel, st: LoopState, saved: CheckpointTuple) -> set[str]:
    """`update_state(config, None, as_node=END)`, as in LangGraph: the checkpoint's tasks end without the
    unfinished ones running. A Command's writes and the finished tasks' writes are applied; the other tasks'
    triggers are consumed, so nothing is left to run and no interrupt is pending."""
    tasks, _, changed = current_tasks(graph, st, saved)
    return changed | _algo.apply_writes(st, tasks)


def check_supersteps(supersteps: Sequence[Sequence[StateUpdate]]) -> None:
    """`bulk_update_state` input: at least one superstep, none empty (LangGraph's messages)."""
    if not supersteps:
        raise ValueError("No supersteps provided")
    if any(not superstep for superstep in supersteps):
        raise ValueError("No updates provided")


def thread_only(config: RunnableConfig) -> RunnableConfig:
    c = config["configurable"]
    return {"configurable": {"thread_id": c["thread_id"], "checkpoint_ns": c.get("checkpoint_ns", "")}}


def is_live(config: RunnableConfig) -> bool:
    return "checkpoint_id" not in config.get("configurable", {})
