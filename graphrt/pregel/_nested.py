"""Nested runs: a graph invoked inside a task opens a child scope of that task.

The child shares the root's thread and event sink, saves under the task's namespace (`node:task_id`,
joined with `|` below the root; just `node` for `checkpointer=True`, so its state outlives one call), and
resumes its own saved checkpoint when the task it runs in is being re-executed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from graphrt._context import RunScope, TaskContext
from graphrt.config import RunnableConfig
from graphrt.errors import MultipleSubgraphsError
from graphrt.pregel._spec import INTERRUPT
from graphrt.types import Command

if TYPE_CHECKING:
    from graphrt.checkpoint.base import CheckpointTuple
    from graphrt.pregel.main import Pregel

_PER_RUN_KEYS = ("checkpoint_id", "checkpoint_ns", "checkpoint_map")


def child_scope(graph: Pregel, parent: TaskContext, config: RunnableConfig | None) -> tuple[RunnableConfig, RunScope]:
    """The config (before defaults) and scope of `graph` running inside the task `parent`."""
    outer = parent.run.scope
    if outer.saver is not None and graph.checkpointer is not False:
        if parent.nested_runs:
            raise MultipleSubgraphsError(parent.name)
        parent.nested_runs += 1
    ns = recast(parent.interrupt_ns) if graph.checkpointer is True else parent.interrupt_ns
    merged: dict[str, Any] = {**parent.run.config, **(config or {})}
    configurable = {
        **{k: v for k, v in parent.run.config.get("configurable", {}).items() if k not in _PER_RUN_KEYS},
        **{k: v for k, v in (config or {}).get("configurable", {}).items() if k not in _PER_RUN_KEYS},
    }
    configurable["checkpoint_ns"] = ns
    if outer.thread_id is not None:
        configurable["thread_id"] = outer.thread_id
    merged["configurable"] = configurable
    merged["metadata"] = dict(parent.run.config.get("metadata", {}))
    scope = RunScope(
        outer.thread_id,
        ns,
        parent=outer,
        parents={**outer.parents, outer.ns: parent.checkpoint_id},
        # A child compiled with `checkpointer=False` saves nothing; any other child saves with the parent's
        # saver (LangGraph ignores a saver object given to a child's compile as well).
        saver=None if graph.checkpointer is False else outer.saver,
        sink=outer.sink,
        task_ns=parent.interrupt_ns,
        committer=outer.committer,
    )
    return merged, scope  # type: ignore[return-value]


def child_input(input: Any, saved: CheckpointTuple | None, parent: TaskContext, *, persistent: bool) -> Any:
    """What the child run starts with: `input`, or a resume of its saved checkpoint.

    A re-executed task (its run is resuming) continues its child where it stopped, handing down the
    answers addressed to the child's interrupts. A `checkpointer=True` child keeps state across calls, so
    it only resumes when its saved checkpoint waits on an interrupt.
    """
    if saved is None or not parent.run.resuming:
        return input
    pending = {i.id for _, chan, value in saved.pending_writes or () if chan == INTERRUPT for i in value}
    if persistent and not pending:
        return input
    answers = {k: v for k, v in parent.resume.items() if k in pending}
    if answers:
        return Command(resume=answers)
    if pending and parent.has_null_resume:
        parent.has_null_resume = False
        return Command(resume=parent.null_resume)
    if not pending and parent.resume and saved.metadata.get("source") == "update":
        # `update_state` on the child replaced the checkpoint its interrupt was saved on: the task's
        # newest answer goes to the first interrupt that asks again (LangGraph's answer too).
        return Command(resume=list(parent.resume.values())[-1])
    return None


def recast(ns: str) -> str:
    """A namespace without task ids (`a:1|b:2` -> `a|b`): where a `checkpointer=True` child keeps its state."""
    return "|".join(part.split(":", 1)[0] for part in ns.split("|"))


def child_state_config(thread_id: Any, task_ns: str, child: Any) -> RunnableConfig:
    """The config naming the state of the subgraph `child` that a task (namespace `task_ns`) runs: what a snapshot's
    or a `checkpoints` chunk's task shows as its `state`, as LangGraph does (a sign the subgraph has checkpoints)."""
    child_ns = recast(task_ns) if child.checkpointer is True else task_ns
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": child_ns}}
