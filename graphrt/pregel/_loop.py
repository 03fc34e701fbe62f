"""The superstep loop: one generator that yields effects and receives their results.

`run_loop` decides everything (which tasks run, when to checkpoint, what to stream, when to stop) and
does no I/O. A driver (`_drivers.py`) performs each effect — runs tasks, saves, emits — and sends back
the result. The same loop therefore runs sync and async.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from graphrt.checkpoint.base import WRITES_IDX_MAP, CheckpointMetadata, CheckpointTuple
from graphrt.errors import (
    ErrorCode,
    GraphBubbleUp,
    GraphDrained,
    GraphInterrupt,
    GraphRecursionError,
    create_error_message,
)
from graphrt.pregel import _algo
from graphrt.pregel._algo import LoopState
from graphrt.pregel._cache import ReadCache, WriteCache, cacheable
from graphrt.pregel._nested import child_state_config
from graphrt.pregel._spec import ERROR, INTERRUPT, NO_WRITES, NULL_TASK_ID, RESUME, TASKS, Task
from graphrt.runtime import RunControl
from graphrt.types import Command, Interrupt, Send

# The effects a step yields are NamedTuples rather than frozen dataclasses: as immutable, and built
# at a third of the cost (a frozen dataclass sets each field through `object.__setattr__`).


class RunTasks(NamedTuple):
    """Effect: run these tasks (concurrently when several) and send back a `StepOutcome`.

    After each task the driver performs `after_task(task, error)`'s effects at once, so a finished
    task's writes are saved even if a sibling is still running or later crashes the process.
    """

    tasks: tuple[Task, ...]
    after_task: Callable[[Task, BaseException | None], Sequence[Effect]]


class SaveCheckpoint(NamedTuple):
    """Effect: save this checkpoint as the thread's new head; the driver sends back nothing."""

    checkpoint: Any
    metadata: CheckpointMetadata
    new_versions: dict[str, Any]


class SaveWrites(NamedTuple):
    """Effect: durably save a task's writes against the current checkpoint."""

    task_id: str
    writes: tuple[tuple[str, Any], ...]
    task_path: str = ""
    node: str = ""
    """The node that wrote them (named in errors instead of the task id)."""


class Emit(NamedTuple):
    """Effect: hand one chunk to the stream in `mode`."""

    mode: str
    chunk: Any


Effect = RunTasks | SaveCheckpoint | SaveWrites | Emit | ReadCache | WriteCache


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What running a step's tasks produced besides their writes."""

    interrupts: tuple[tuple[Task, tuple[Interrupt, ...]], ...] = ()
    error: BaseException | None = None
    failed: tuple[tuple[Task, BaseException], ...] = ()
    """The tasks that failed, in task order (empty when a signal such as a parent `Command` also left)."""


@dataclass(slots=True)
class RunPlan:
    """What this invocation asks for (input, resume, modes) and what it found (the saved checkpoint)."""

    input: Any
    modes: frozenset[str]
    checkpointing: bool
    """A checkpointer is present and durability allows per-step saves."""
    save_at_exit_only: bool
    interrupt_before: Any
    interrupt_after: Any
    recursion_limit: int
    resuming: bool
    """Continue the saved checkpoint (input None, or a Command) rather than start from new input."""
    map_update: Callable[[Any], list[tuple[str, Any]]]
    """Turns a `Command(update=...)` into channel writes (graph-specific)."""
    output: Callable[[LoopState], Any]
    """Reads the graph's output from the channels."""
    updates_chunk: Callable[[Task], Any]
    """The `updates` value of a finished task (graph-specific)."""
    previous_step: int = -2
    """Step of the checkpoint the run starts from (-2: none)."""
    new_checkpoint_id: Callable[[], str] = field(default=lambda: "")
    base_metadata: dict[str, Any] = field(default_factory=dict)
    config_of: Callable[[str], dict[str, Any]] = field(default=lambda checkpoint_id: {})
    """The config naming a checkpoint of this thread."""
    parent_config: dict[str, Any] | None = None
    """The config of the last saved checkpoint (the parent of the next)."""
    saved: CheckpointTuple | None = None
    """The checkpoint the run starts from."""
    values_at_end: bool = False
    """`invoke` needs only the last values: build that chunk once, when the run stops."""
    values_pending: bool = False
    streamed_message_ids: set[str] = field(default_factory=set)
    """Messages already streamed in `messages` mode (a node returning the history doesn't repeat them)."""
    values_set: frozenset[str] = frozenset()
    """Channels whose update makes a `values` chunk."""
    forking: bool = False
    """The run continues an explicitly named (older) checkpoint: a `fork` checkpoint is written first."""
    interrupts: list[Interrupt] = field(default_factory=list)
    status: str = ""
    """How the run stopped: "done", "interrupt_before", "interrupt_after" or "interrupted"."""
    parents: dict[str, str] = field(default_factory=dict)
    """`metadata["parents"]` of this scope's checkpoints."""
    dirty: set[str] = field(default_factory=set)
    """Channels changed since the last saved checkpoint (their versions go to the saver)."""
    caching: bool = False
    """The run has a cache: cached nodes are looked up before they run and stored after."""
    control: RunControl | None = None
    """The root run's `RunControl`: asked to drain, the run stops before its next step."""
    root: bool = True
    """Not a nested run (a subgraph, a `@task`)."""


def run_loop(st: LoopState, plan: RunPlan) -> Generator[Effect, Any, None]:
    """Run supersteps until no task is due, an interrupt, or the recursion limit."""
    yield from _first(st, plan)
    # As in LangGraph, a resumed run may take one step more than a run with new input.
    st.stop = st.step + plan.recursion_limit + (1 if plan.resuming else 0)
    after_task = _after_task_effects(st, plan)
    # The stream modes are fixed for the run: what a step must emit is decided once.
    task_events = "tasks" in plan.modes or "debug" in plan.modes
    while True:
        if st.step > st.stop:
            yield from _save_at_exit(st, plan)
            raise GraphRecursionError(
                create_error_message(
                    message=f"Recursion limit of {plan.recursion_limit} reached without hitting a stop "
                    "condition. You can increase the limit by setting the `recursion_limit` config key.",
                    error_code=ErrorCode.GRAPH_RECURSION_LIMIT,
                )
            )
        tasks = _algo.prepare_next_tasks(st)
        if not tasks:
            yield from _stop(st, plan, "done")
            return
        if plan.control is not None and plan.control.drain_requested:
            yield from _save_at_exit(st, plan)
            raise GraphDrained(plan.control.drain_reason or "shutdown")
        if plan.interrupt_before and _algo.should_interrupt(st, plan.interrupt_before, tasks):
            _algo.mark_interrupted(st)
            yield from _stop(st, plan, "interrupt_before")
            return
        if task_events:
            yield from _emit_task_starts(st, plan, tasks)
        todo = (yield from _replay(st, plan, tasks)) if st.pending_writes else tasks
        if plan.caching:
            todo = yield from _cache_hits(st, plan, todo, after_task)
        outcome: StepOutcome = yield RunTasks(tuple(todo), after_task)
        if outcome.failed:
            tasks, outcome = yield from _handle_failures(st, plan, tasks, outcome, after_task)
        if outcome.error is not None:
            yield from _save_at_exit(st, plan)
            raise outcome.error
        if outcome.interrupts:
            interrupted = {task.id for task, _ in outcome.interrupts}
            finished = [t for t in tasks if t.id not in interrupted and t.writes]
            asked = tuple(i for _, found in outcome.interrupts for i in found)
            yield from _stop(st, plan, "interrupted", asked, finished, outcome.interrupts)
            return
        updated = _algo.apply_writes(st, tasks)
        if st.pending_writes:
            st.pending_writes = []
        plan.dirty |= updated
        if updated and "values" in plan.modes:
            yield from _emit_values(st, plan, updated)
        yield from _boundary(st, plan, "loop")
        st.step += 1
        if plan.interrupt_after and _algo.should_interrupt(st, plan.interrupt_after, tasks):
            _algo.mark_interrupted(st)
            yield from _stop(st, plan, "interrupt_after")
            return


def _handle_failures(
    st: LoopState, plan: RunPlan, tasks: list[Task], outcome: StepOutcome, after_task: AfterTask
) -> Generator[Effect, Any, tuple[list[Task], StepOutcome]]:
    """When every failed task's node has an error handler, the handlers run in their place, in the same step, and
    the step applies their writes too. Otherwise the run fails."""
    unhandled = next((error for task, error in outcome.failed if task.node.error_handler is None), None)
    if unhandled is not None:
        return tasks, StepOutcome(outcome.interrupts, unhandled)
    handlers = [_algo.error_handler_task(st, task, error) for task, error in outcome.failed]
    # A resumed step's handler finds what it saved before: its writes, or the answers to its interrupt.
    todo = (yield from _replay(st, plan, handlers)) if st.pending_writes else handlers
    handled: StepOutcome = yield RunTasks(tuple(todo), after_task)
    # A failed task keeps what it wrote before failing (its node's update, when a conditional edge failed after
    # it), as in LangGraph.
    return [*tasks, *handlers], StepOutcome(outcome.interrupts + handled.interrupts, handled.error, handled.failed)


def _stop(
    st: LoopState,
    plan: RunPlan,
    status: str,
    asked: tuple[Interrupt, ...] = (),
    finished: Sequence[Task] = (),
    interrupted: Sequence[tuple[Task, Sequence[Interrupt]]] = (),
) -> Generator[Effect, Any, None]:
    """The run stops (done, or at an interrupt): last values, the save at exit, the interrupt chunks
    (`interrupted`: each task that called `interrupt()`, with what it asked)."""
    plan.status = status
    if asked:
        plan.values_pending = False  # the interrupt's own values chunk shows the state
    else:
        yield from _emit_last_values(st, plan)
    yield from _save_at_exit(st, plan)
    if status != "done":
        yield from _emit_interrupts(st, plan, asked, finished, interrupted)


def _first(st: LoopState, plan: RunPlan) -> Generator[Effect, Any, None]:
    """Apply the run's input: new input makes an `input` checkpoint; a resume applies Command writes."""
    command = plan.input if isinstance(plan.input, Command) else None
    if plan.resuming:
        if command is not None:
            null_writes = _command_writes(st, plan, command)
            if plan.forking:  # the fork carries them, as in LangGraph: nothing is stored on the named checkpoint
                st.pending_writes.extend((NULL_TASK_ID, c, v) for c, v in null_writes)
            elif null_writes:
                yield from _add_null_writes(st, plan, null_writes)
            for task_id, answers in _resume_answers(st, command.resume).items():
                if plan.checkpointing:
                    yield SaveWrites(task_id, ((RESUME, answers),))
                st.pending_writes.append((task_id, RESUME, answers))
        saved_null = _null_writes(st)
        if saved_null:
            plan.dirty |= _algo.apply_writes(st, [_algo.writes_task(saved_null)], bump_step=False)
        # A resumed run never stops again at the interrupt it is resuming from.
        _algo.mark_interrupted(st)
        st.updated = set(st.spec.trigger_to_nodes)
        if "values" in plan.modes:
            if plan.values_at_end:
                plan.values_pending = True
            else:
                yield Emit("values", plan.output(st))
        if plan.forking:
            # The fork starts a branch with new task ids: the named checkpoint's pending writes (applied above, or
            # of its tasks, which run again) are not the fork's.
            st.pending_writes = []
            yield from _boundary(st, plan, "fork")
            st.step += 1
        if not plan.forking and plan.saved is not None and ("checkpoints" in plan.modes or "debug" in plan.modes):
            yield Emit("checkpoints", _resumed_payload(st, plan, plan.saved))
        return
    # New input: what earlier Commands left on the checkpoint is applied first (as LangGraph does); its other
    # pending writes and its pending tasks are dropped, and the input goes to START.
    earlier = _null_writes(st)
    st.pending_writes = []
    if earlier:
        plan.dirty |= _algo.apply_writes(st, [_algo.writes_task(earlier)], bump_step=False)
    stale = _algo.prepare_next_tasks(st, candidates=st.spec.nodes) if plan.previous_step > -2 else []
    input_task = _algo.writes_task(_algo.start_writes(st.spec, plan.input))
    changed = _algo.apply_writes(st, [*stale, input_task])
    plan.dirty |= changed
    st.step = plan.previous_step + 1
    yield from _boundary(st, plan, "input")
    st.step += 1


def _add_null_writes(st: LoopState, plan: RunPlan, writes: list[tuple[str, Any]]) -> Generator[Effect, Any, None]:
    """A Command's writes join those earlier Commands left on the checkpoint, as in LangGraph.

    Savers key a write by task and position and keep the first write at a position, so the checkpoint's
    earlier writes are saved again ahead of the new ones (which then get new positions); a special write
    (a resume answer) replaces the earlier one and goes last.
    """
    writes = sorted(writes, key=lambda w: w[0] in WRITES_IDX_MAP)
    st.pending_writes = [w for w in st.pending_writes if w[0] != NULL_TASK_ID or w[1] not in WRITES_IDX_MAP]
    if plan.checkpointing:
        yield SaveWrites(NULL_TASK_ID, (*_null_writes(st), *writes))
    st.pending_writes.extend((NULL_TASK_ID, c, v) for c, v in writes)


def _null_writes(st: LoopState) -> list[tuple[str, Any]]:
    """The checkpoint's writes from earlier Commands (not their special writes, such as a resume answer)."""
    return [(c, v) for t, c, v in st.pending_writes if t == NULL_TASK_ID and c not in WRITES_IDX_MAP]


def _command_writes(st: LoopState, plan: RunPlan, command: Command[Any]) -> list[tuple[str, Any]]:
    """A Command given as input: its update, goto and resume as writes against the current checkpoint."""
    writes: list[tuple[str, Any]] = []
    if command.update is not None:
        writes.extend(plan.map_update(command.update))
    gotos = command.goto if isinstance(command.goto, (list, tuple)) else [command.goto]
    targets = [g for g in gotos if g]
    if targets:
        if st.spec.route is not None:
            writes.extend(st.spec.route(targets))
        else:
            writes.extend((TASKS, g) for g in targets if isinstance(g, Send))
    if command.resume is not None and not _pending_interrupts(st):
        # Resuming a static breakpoint: the answer waits for the first interrupt() call.
        writes.append((RESUME, command.resume))
    return writes


def _pending_interrupts(st: LoopState) -> dict[str, str]:
    """Interrupt id -> id of the task that raised it, for this checkpoint's interrupts not yet answered.

    A task that failed after it was answered (e.g. an answer that did not match the interrupt's
    `response_schema`) may be answered again: a new answer replaces the saved one.
    """
    failed = {task_id for task_id, chan, _ in st.pending_writes if chan == ERROR}
    answered = {t: a for t, a in _answers(st).items() if t not in failed}
    return {
        i.id: task_id
        for task_id, chan, value in st.pending_writes
        if chan == INTERRUPT
        for i in value
        if i.id not in answered.get(task_id, {})
    }


def _answers(st: LoopState) -> dict[str, dict[str, Any]]:
    """Each task's saved answers (`{interrupt_id: answer}`), the latest save winning."""
    out: dict[str, dict[str, Any]] = {}
    for task_id, chan, value in st.pending_writes:
        if chan == RESUME and task_id != NULL_TASK_ID and isinstance(value, dict):
            out[task_id] = value
    return out


def _resume_answers(st: LoopState, resume: Any) -> dict[str, dict[str, Any]]:
    """The full answers (`{interrupt_id: answer}`) of each interrupted task after this resume.

    `Command(resume=v)` answers the one pending interrupt; `{interrupt_id: v, ...}` answers those. An
    interrupt raised in a nested run is answered the same way: its task passes the answer down.
    """
    if resume is None:
        return {}
    pending = _pending_interrupts(st)
    if not pending:
        return {}
    if isinstance(resume, dict) and resume and all(k in pending for k in resume):
        chosen = dict(resume)
    elif len(pending) == 1:
        chosen = {next(iter(pending)): resume}
    else:
        raise RuntimeError(
            "When there are multiple pending interrupts, you must specify the interrupt id when resuming. "
            "Docs: https://docs.langchain.com/oss/python/langgraph/interrupts#handling-multiple-interrupts."
        )
    earlier = _answers(st)
    answers: dict[str, dict[str, Any]] = {}
    for interrupt_id, answer in chosen.items():
        task_id = pending[interrupt_id]
        answers.setdefault(task_id, dict(earlier.get(task_id, {})))[interrupt_id] = answer
    return answers


def _replay(st: LoopState, plan: RunPlan, tasks: list[Task]) -> Generator[Effect, Any, list[Task]]:
    """The tasks still to run; those that finished before the interrupt or crash take their saved writes and are
    streamed again in `updates`, marked as not re-run."""
    todo = _replay_saved_writes(st, tasks)
    if "updates" in plan.modes and todo is not tasks:
        for task in tasks:
            if task not in todo and not task.node.hidden:
                yield Emit("updates", {task.name: plan.updates_chunk(task), "__metadata__": {"cached": True}})
    return todo


def _replay_saved_writes(st: LoopState, tasks: list[Task]) -> list[Task]:
    """Tasks whose writes were saved before (finished before an interrupt or crash) are not run again."""
    if not st.pending_writes:
        return tasks
    saved = _algo.read_saved_writes(st.pending_writes)
    null = saved.get(NULL_TASK_ID)
    todo = []
    for task in tasks:
        found = saved.get(task.id)
        if found is not None and found.writes is not None:
            task.writes = list(found.writes)
            continue
        if found is not None and isinstance(found.resume, dict):
            task.ctx.resume = dict(found.resume)
        if null is not None and null.resume is not None:
            task.ctx.null_resume, task.ctx.has_null_resume = null.resume, True
        todo.append(task)
    return todo


def _cache_hits(
    st: LoopState, plan: RunPlan, todo: list[Task], after_task: AfterTask
) -> Generator[Effect, Any, list[Task]]:
    """Tasks of cached nodes whose writes are in the cache take them from there instead of running.

    A hit is saved and streamed like a finished task, its `updates` chunk marked `cached: True`.
    """
    try:
        keyed = [task for task in todo if task.node.cache is not None]
        for task in keyed:
            task.cache_key = task.node.cache.key(task.input)  # type: ignore[union-attr]
    except Exception:
        yield from _save_at_exit(st, plan)
        raise
    if not keyed:
        return todo
    hits = yield ReadCache(tuple(task.cache_key for task in keyed))  # type: ignore[misc]
    if not hits:
        return todo
    rest = []
    for task in todo:
        found = hits.get(task.cache_key) if task.cache_key is not None else None
        if found is None:
            rest.append(task)
            continue
        task.writes = list(found)
        yield from after_task(task, None, cached=True)
    return rest


class AfterTask(Protocol):
    """What the loop does once a task finished (or was found in the cache): its effects."""

    def __call__(self, task: Task, error: BaseException | None, *, cached: bool = False) -> list[Effect]: ...


def _after_task_effects(st: LoopState, plan: RunPlan) -> AfterTask:
    """Effects of one finished task: save its writes (or its interrupt or error), cache them, stream its update.

    The writes are also kept in `st.pending_writes` for a save at exit (durability="exit"); saved at once,
    they are read back from the saver when a run resumes. A task `cached` (found in the cache) streams only
    its `updates` chunk, marked as cached, as LangGraph does.
    """
    checkpointing = plan.checkpointing
    save_now = plan.checkpointing and not plan.save_at_exit_only
    updates = "updates" in plan.modes
    task_results = "tasks" in plan.modes or "debug" in plan.modes
    messages = "messages" in plan.modes

    def after(task: Task, error: BaseException | None, *, cached: bool = False) -> list[Effect]:
        effects: list[Effect] = []
        if checkpointing:
            writes = _saved_writes(task, error)
            if save_now:
                effects.append(SaveWrites(task.id, writes, _path_str(task), task.name))
            else:
                st.pending_writes.extend([(task.id, c, v) for c, v in writes])
        if cached:
            if updates and not task.node.hidden:
                effects.append(Emit("updates", {task.name: plan.updates_chunk(task), "__metadata__": {"cached": True}}))
            return effects
        if error is None and task.cache_key is not None and cacheable(task.writes):
            effects.append(WriteCache(task.cache_key, tuple(task.writes)))
        if error is not None:
            if task_results and not task.node.hidden and not isinstance(error, GraphBubbleUp):
                # A failed task's result names its error, before the run raises it (as LangGraph streams it).
                effects.append(Emit("tasks", {**_task_result_payload(task, frozenset()), "error": error}))
        elif not task.node.hidden:
            if updates:
                effects.append(Emit("updates", {task.name: plan.updates_chunk(task)}))
            if task_results:
                effects.append(Emit("tasks", _task_result_payload(task, st.spec.stream_channels)))
            if messages:
                effects.extend(_message_chunks(task, plan))
        return effects

    return after


def _saved_writes(task: Task, error: BaseException | None) -> tuple[tuple[str, Any], ...]:
    """What a finished task leaves for a resumed run: its writes, or its interrupt or error."""
    if isinstance(error, GraphInterrupt):
        asked: tuple[tuple[str, Any], ...] = ((INTERRUPT, tuple(error.interrupts)),)
        return (*asked, (RESUME, dict(task.ctx.resume))) if task.ctx.resume else asked
    if error is not None:
        return ((ERROR, repr(error)),)
    return tuple(task.writes) if task.writes else ((NO_WRITES, None),)


def _message_chunks(task: Task, plan: RunPlan) -> list[Effect]:
    """`messages` mode for messages a node returned: `(message, metadata)`, each message id once per run.

    (Token streaming from chat models comes with the model integration.)
    """
    from graphrt.messages import BaseMessage

    chunks: list[Effect] = []
    metadata: dict[str, Any] | None = None
    given = task.input.values() if isinstance(task.input, dict) else ()
    passed_through = {m.id for v in given if isinstance(v, list) for m in v if isinstance(m, BaseMessage)}
    for _, value in task.writes:
        for message in value if isinstance(value, list) else (value,):
            if not isinstance(message, BaseMessage):
                continue
            if message.id is not None:
                if message.id in plan.streamed_message_ids or message.id in passed_through:
                    continue
                plan.streamed_message_ids.add(message.id)
            if metadata is None:
                metadata = {"ls_integration": "langgraph", **task.ctx.config.get("metadata", {})}
            chunks.append(Emit("messages", (message, metadata)))
    return chunks


def _path_str(task: Task) -> str:
    return "|".join(map(str, task.path))


def _task_result_payload(task: Task, streamed: frozenset[str]) -> dict[str, Any]:
    writes = {c: v for c, v in task.writes if c in streamed}
    return {
        "id": task.id,
        "name": task.name,
        "error": None,
        "result": writes,
        "interrupts": [],
        "__step": task.ctx.step,
    }


def _emit_task_starts(st: LoopState, plan: RunPlan, tasks: list[Task]) -> Generator[Effect, Any, None]:
    if "tasks" in plan.modes or "debug" in plan.modes:
        for task in tasks:
            if not task.node.hidden:
                payload = {"id": task.id, "name": task.name, "input": task.input, "triggers": task.triggers}
                yield Emit("tasks", {**payload, "__step": task.ctx.step})


def _emit_values(st: LoopState, plan: RunPlan, updated: set[str]) -> Generator[Effect, Any, None]:
    if "values" not in plan.modes or updated.isdisjoint(plan.values_set):
        return
    if plan.values_at_end:
        plan.values_pending = True
    else:
        yield Emit("values", plan.output(st))


def _emit_last_values(st: LoopState, plan: RunPlan) -> Generator[Effect, Any, None]:
    """The run stops: the values chunk that `values_at_end` held back, if the state changed."""
    if plan.values_pending:
        plan.values_pending = False
        yield Emit("values", plan.output(st))


def _emit_interrupts(
    st: LoopState,
    plan: RunPlan,
    interrupts: tuple[Interrupt, ...],
    finished: Sequence[Task] = (),
    interrupted: Sequence[tuple[Task, Sequence[Interrupt]]] = (),
) -> Generator[Effect, Any, None]:
    """Stream the interrupts as LangGraph does: per interrupted task (`interrupted`, in task order) an `updates`
    chunk and a `values` chunk with what it asked (the state before the step) and, in `tasks` mode, its result;
    then, for a root run, one last `values` chunk with the writes of the step's finished tasks applied."""
    plan.interrupts.extend(interrupts)
    show_values = "values" in plan.modes and bool(interrupts)
    values = plan.output(st) if show_values else None
    task_events = "tasks" in plan.modes or "debug" in plan.modes
    groups: Sequence[tuple[Task | None, Sequence[Interrupt]]] = interrupted or [(None, interrupts)]
    for task, asked in groups:
        group = tuple(asked)
        if "updates" in plan.modes:
            yield Emit("updates", {INTERRUPT: group})
        if show_values:
            yield Emit("values", {**values, INTERRUPT: group} if isinstance(values, dict) else {INTERRUPT: group})
        if task_events and task is not None and not task.node.hidden:
            payload = _task_result_payload(task, st.spec.stream_channels)
            payload["interrupts"] = [_interrupt_payload(i) for i in group]
            yield Emit("tasks", payload)
    if show_values and finished and plan.root:
        after = _algo.preview(st, finished)
        if not after.updated.isdisjoint(plan.values_set):
            yield Emit("values", plan.output(after))


def _boundary(st: LoopState, plan: RunPlan, source: str) -> Generator[Effect, Any, None]:
    """A step boundary: the state becomes a new checkpoint, saved now unless durability="exit".

    The id is assigned even when nothing is saved: the next step's task ids derive from it, and a
    save at exit must use it so that resumed tasks find their writes.
    """
    st.checkpoint_id = plan.new_checkpoint_id()
    if plan.checkpointing and not plan.save_at_exit_only:
        yield from _checkpoint(st, plan, source, st.step)


def _save_at_exit(st: LoopState, plan: RunPlan) -> Generator[Effect, Any, None]:
    """The run stops: save what was not saved yet (everything, with durability="exit")."""
    if not (plan.checkpointing and plan.dirty):
        return
    # When no step finished, the run still stands on the checkpoint it resumed, and what changed the state is
    # a Command's writes, saved by `_first` among that checkpoint's pending writes, which every read applies
    # (as in LangGraph): saving the checkpoint again with them applied would apply them twice. Its tasks'
    # writes are still saved below.
    if plan.saved is None or st.checkpoint_id != plan.saved.config["configurable"]["checkpoint_id"]:
        yield from _checkpoint(st, plan, "loop", st.step - 1)
    if plan.save_at_exit_only:
        by_task: dict[str, list[tuple[str, Any]]] = {}
        for task_id, chan, value in st.pending_writes:
            by_task.setdefault(task_id, []).append((chan, value))
        for task_id, writes in by_task.items():
            yield SaveWrites(task_id, tuple(writes))


def _checkpoint(st: LoopState, plan: RunPlan, source: str, step: int) -> Generator[Effect, Any, None]:
    """Save the current state as checkpoint `st.checkpoint_id`, and stream it when asked."""
    dirty, versions = plan.dirty, st.versions
    checkpoint = _algo.create_checkpoint(st, st.checkpoint_id, dirty)
    metadata: CheckpointMetadata = {**plan.base_metadata, "source": source, "step": step, "parents": plan.parents}  # type: ignore[typeddict-item]
    try:  # a C loop: wide states
        new_versions = dict(zip(dirty, map(versions.__getitem__, dirty), strict=True))
    except KeyError:  # not expected: a changed channel always has a version
        new_versions = {c: versions[c] for c in dirty if c in versions}
    plan.dirty = set()
    yield SaveCheckpoint(checkpoint, metadata, new_versions)
    # Only a `checkpoints` chunk shows a checkpoint's config (and its parent's): built only then.
    if "checkpoints" in plan.modes or "debug" in plan.modes:
        config = plan.config_of(checkpoint["id"])
        yield Emit("checkpoints", _checkpoint_payload(st, plan, config, metadata))
        plan.parent_config = config


def _interrupt_payload(interrupt: Interrupt) -> dict[str, Any]:
    return {"value": interrupt.value, "id": interrupt.id, "response_schema": interrupt.response_schema}


def _resumed_payload(st: LoopState, plan: RunPlan, saved: CheckpointTuple) -> dict[str, Any]:
    """The checkpoint a resumed run starts from, streamed first as LangGraph 1.x streams it (each step streams
    the checkpoint it starts from): its tasks are the ones about to run, with what they saved (a result, an error,
    the interrupts they raised)."""
    tasks = _algo.prepare_next_tasks(st, candidates=st.spec.nodes)
    config = plan.config_of(st.checkpoint_id)
    found = _algo.read_saved_writes(st.pending_writes)
    return _payload(st, plan, config, saved.metadata, saved.parent_config, tasks, found)


def _checkpoint_payload(
    st: LoopState, plan: RunPlan, config: dict[str, Any], metadata: CheckpointMetadata
) -> dict[str, Any]:
    st.step += 1  # the tasks this checkpoint schedules belong to the next step
    try:
        tasks = _algo.prepare_next_tasks(st)  # in the order the next step runs them (LangGraph's)
    finally:
        st.step -= 1
    return _payload(st, plan, config, metadata, plan.parent_config, tasks, None)


def _payload(
    st: LoopState,
    plan: RunPlan,
    config: dict[str, Any],
    metadata: Any,
    parent_config: Any,
    tasks: Sequence[Task],
    saved: dict[str, _algo.SavedTask] | None,
) -> dict[str, Any]:
    """A `checkpoints` chunk: the checkpoint, and the tasks it schedules (with what they `saved`, if resumed)."""
    thread_id = config["configurable"].get("thread_id")
    return {
        "config": config,
        "metadata": metadata,
        "values": plan.output(st),
        "next": [t.name for t in tasks],
        "parent_config": parent_config,
        "tasks": [_task_payload(plan, t, saved, thread_id) for t in tasks],
    }


def _task_payload(
    plan: RunPlan, task: Task, saved: dict[str, _algo.SavedTask] | None, thread_id: Any
) -> dict[str, Any]:
    """A task of a `checkpoints` chunk as LangGraph shows it: its saved error, or its result (if it finished) and
    its interrupts; `state` names a subgraph's state."""
    node = task.node
    state = None if node.subgraph is None else child_state_config(thread_id, task.ctx.interrupt_ns, node.subgraph)
    found = saved.get(task.id) if saved is not None else None
    if found is not None and found.error is not None:
        return {"id": task.id, "name": task.name, "error": found.error, "state": state}
    entry: dict[str, Any] = {"id": task.id, "name": task.name}
    if found is not None and found.writes:
        task.writes.extend(found.writes)  # a task made for this chunk only
        result = plan.updates_chunk(task)
        if result:
            entry["result"] = result
    entry["interrupts"] = tuple(_interrupt_payload(i) for i in found.interrupts) if found is not None else ()
    entry["state"] = state
    return entry
