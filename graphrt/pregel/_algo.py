"""Pure superstep decisions: which tasks run next, how their writes apply, ids and versions.

Nothing here does I/O, starts threads or reads config dicts. The loop (`_loop.py`) calls these with the
run's `LoopState` and the compiled `GraphSpec`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import TYPE_CHECKING, Any

from graphrt._context import RunContext, TaskContext
from graphrt.channels.base import MISSING, BaseChannel
from graphrt.channels.binop import BinaryOperatorAggregate
from graphrt.channels.ephemeral_value import EphemeralValue
from graphrt.channels.last_value import LastValue
from graphrt.checkpoint.base._types import utc_now_iso
from graphrt.errors import EmptyChannelError, InvalidUpdateError
from graphrt.managed.base import StepWindow
from graphrt.pregel._spec import (
    ERROR,
    INPUT,
    INTERRUPT,
    NO_WRITES,
    NULL_TASK_ID,
    PULL,
    PUSH,
    RESUME,
    TASKS,
    GraphSpec,
    PregelNode,
    Task,
)
from graphrt.types import All, Send

if TYPE_CHECKING:
    from graphrt.checkpoint.base import Checkpoint, CheckpointTuple

logger = logging.getLogger("graphrt")

_ONE_VALUE: frozenset[type] = frozenset((LastValue, EphemeralValue, BinaryOperatorAggregate))
"""Channels whose `value` attribute is at once their value (MISSING: empty) and their checkpoint."""


@dataclass(slots=True)
class LoopState:
    """The mutable state of one run: channels, versions, and where we are."""

    spec: GraphSpec
    run: RunContext
    channels: dict[str, BaseChannel[Any, Any, Any]]
    versions: dict[str, Any]
    seen: dict[str, dict[str, Any]]
    step: int
    stop: int
    checkpoint_id: str
    next_version: Callable[[Any], Any]
    updated: set[str] = field(default_factory=set)
    """Channels updated by the last applied step: only their subscribers can be due."""
    live_ephemeral: frozenset[str] = frozenset()
    """Step-notified channels that may hold a value and must be cleared by a step that skips them."""
    pending_writes: list[tuple[str, str, Any]] = field(default_factory=list)
    """Writes against the current checkpoint: saved ones loaded with it (tasks finished before an interrupt
    or crash), and this run's, held for the save at exit when durability="exit"."""
    checkpoint_ns: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    """Mirror of every available channel's value, refreshed for the channels a step changes."""
    saved: dict[str, Any] = field(default_factory=dict)
    """Mirror of every channel's `checkpoint()` value (what a checkpoint stores), refreshed likewise."""
    state: dict[str, Any] = field(default_factory=dict)
    """Mirror of the `spec.state_keys` channels that have values (a whole-state read is one dict copy)."""
    max_version: Any = None
    """The largest version in `versions` (None: not known yet), so a step need not scan them all."""
    track_saved: bool = True
    """Keep `saved` up to date (only a run with a checkpointer needs it)."""
    seen_copies: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Frozen copies of `seen` for checkpoints; only nodes in `seen_dirty` are copied again."""
    seen_dirty: set[str] = field(default_factory=set)

    def mirror(self, plain: dict[str, Any]) -> None:
        """Mirror `plain` LastValue channels just given these (available) values."""
        self.values.update(plain)
        if self.track_saved:
            self.saved.update(plain)
        state, state_keys = self.state, self.spec.state_keys
        if state_keys.issuperset(plain):
            state.update(plain)
        else:
            state.update({k: v for k, v in plain.items() if k in state_keys})

    def refresh(self, changed: Iterable[str]) -> None:
        """Re-read `changed` channels into the mirrors, so a step costs what it changed, not the state size."""
        values, saved, channels, track = self.values, self.saved, self.channels, self.track_saved
        state, state_keys = self.state, self.spec.state_keys
        for key in changed:
            chan = channels[key]
            if type(chan) in _ONE_VALUE:  # value, read value and saved value are one
                value = chan.value  # type: ignore[attr-defined]
                if value is MISSING:
                    if key in values:  # the three mirrors hold such a channel together or not at all
                        del values[key]
                        saved.pop(key, None)
                        state.pop(key, None)
                else:
                    values[key] = value
                    if key in state_keys:
                        state[key] = value
                    if track:
                        saved[key] = value
                continue
            if chan.is_available():
                values[key] = value = chan.get()
                if key in state_keys:
                    state[key] = value
            else:
                values.pop(key, None)
                state.pop(key, None)
            if track:
                snapshot = chan.checkpoint()
                if snapshot is MISSING:
                    saved.pop(key, None)
                else:
                    saved[key] = snapshot


@dataclass(frozen=True, slots=True)
class SavedTask:
    """What the writes saved against a checkpoint say about one task."""

    writes: tuple[tuple[str, Any], ...] | None = None
    """Its channel writes when it finished (possibly none); None when it did not."""
    error: Any = None
    """The repr of the error it failed with."""
    interrupts: tuple[Any, ...] = ()
    """The interrupts it is waiting on."""
    resume: Any = None
    """Its last saved answers: `{interrupt_id: answer}` for a task, the bare answer for the null task."""


def read_saved_writes(pending: Iterable[tuple[str, str, Any]]) -> dict[str, SavedTask]:
    """Group a checkpoint's pending writes by task id (the null task's writes are its `writes`)."""
    grouped: dict[str, list[tuple[str, Any]]] = {}
    for task_id, chan, value in pending:
        grouped.setdefault(task_id, []).append((chan, value))
    out = {}
    for task_id, writes in grouped.items():
        done = tuple((c, v) for c, v in writes if c not in (ERROR, INTERRUPT, RESUME, NO_WRITES))
        finished = task_id == NULL_TASK_ID or any(c not in (ERROR, INTERRUPT, RESUME) for c, _ in writes)
        out[task_id] = SavedTask(
            writes=done if finished else None,
            error=next((v for c, v in writes if c == ERROR), None),
            interrupts=tuple(i for c, v in writes if c == INTERRUPT for i in v),
            resume=next((v for c, v in reversed(writes) if c == RESUME), None),
        )
    return out


def make_task_id(checkpoint_id: str, ns: str, step: int, name: str, kind: str, key: object) -> str:
    """Deterministic task id: the same task of the same checkpoint gets the same id on every resume."""
    h = blake2b(f"{checkpoint_id}|{ns}|{step}|{name}|{kind}|{key}".encode(), digest_size=16).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def increment(current: int | None) -> int:
    """Version scheme used without a checkpointer."""
    return 1 if current is None else current + 1


def read_values(values: Mapping[str, Any], select: str | Sequence[str]) -> Any:
    """The value of one channel, or a dict of the selected channels that have values, from the mirror."""
    if isinstance(select, str):
        if select not in values:
            raise EmptyChannelError()
        return values[select]
    try:
        return dict(zip(select, map(values.__getitem__, select), strict=True))  # a C loop when all are set
    except KeyError:
        return {key: values[key] for key in select if key in values}


def _is_triggered(
    node: PregelNode,
    channels: Mapping[str, BaseChannel[Any, Any, Any]],
    versions: Mapping[str, Any],
    seen: Mapping[str, Any] | None,
) -> bool:
    """A node is due when one of its trigger channels holds a value newer than the node last saw."""
    for chan in node.triggers:
        version = versions.get(chan)
        if (
            version is not None
            and (seen is None or (s := seen.get(chan)) is None or version > s)
            and channels[chan].is_available()
        ):
            return True
    return False


def prepare_next_tasks(st: LoopState, *, candidates: Iterable[str] | None = None) -> list[Task]:
    """The tasks of the next step: `Send` packets first (PUSH), then triggered nodes (PULL), in name order."""
    spec, channels = st.spec, st.channels
    tasks: list[Task] = []
    sends = channels[TASKS]
    if sends.is_available():
        for idx, packet in enumerate(sends.get()):
            if not isinstance(packet, Send):
                raise InvalidUpdateError(f"Invalid packet type, expected Send, got {packet!r}")
            if packet.node not in spec.nodes:
                # LangGraph ignores a Send to a node the graph doesn't have; say so instead of silence.
                logger.warning("Ignoring %r: the graph has no node '%s'", packet, packet.node)
                continue
            node = spec.nodes[packet.node]
            tasks.append(new_task(st, node, packet.arg, (PUSH, idx), (PUSH,)))
    # Known updates: triggered nodes in name order; otherwise every node in the graph's order (LangGraph's).
    names: Iterable[str]
    if candidates is not None:
        names = candidates
    else:
        to_nodes = spec.trigger_to_nodes
        fired = to_nodes.keys() & st.updated  # most updated channels are state keys that trigger nothing
        names = sorted({n for c in fired for n in to_nodes[c]})
    for name in names:
        node = spec.nodes[name]
        if not _is_triggered(node, channels, st.versions, st.seen.get(name)):
            continue
        if node.reads_state:
            value: Any = st.state.copy()
        else:
            try:
                value = read_values(st.values, node.reads)
            except EmptyChannelError:
                continue
        if node.managed:
            window = StepWindow(st.step, st.stop)
            for key, managed in node.managed:
                value[key] = managed.get(window)
        if node.mapper is not None:
            value = node.mapper(value)
        # A task's triggers are all its node's, sorted (as LangGraph shows them); consuming one that did not fire
        # (an incomplete barrier) changes nothing.
        triggers = node.triggers if len(node.triggers) == 1 else tuple(sorted(node.triggers))
        tasks.append(new_task(st, node, value, (PULL, name), triggers))
    return tasks


def new_task(st: LoopState, node: PregelNode, value: Any, path: tuple[Any, ...], triggers: tuple[str, ...]) -> Task:
    task_id = make_task_id(st.checkpoint_id, st.checkpoint_ns, st.step, node.name, path[0], path[1])
    ns = f"{st.checkpoint_ns}|{node.name}:{task_id}" if st.checkpoint_ns else f"{node.name}:{task_id}"
    ctx = TaskContext(
        st.run,
        node.name,
        task_id,
        st.step,
        triggers,
        path,
        interrupt_ns=ns,
        checkpoint_id=st.checkpoint_id,
        channels=st.channels,
        node_metadata=node.metadata,
        stop=st.stop,
    )
    return Task(node.name, value, node, task_id, path, triggers, ctx)


def error_handler_task(st: LoopState, failed: Task, error: BaseException) -> Task:
    """The task of a failed task's error handler: same step and input, ordered right after the failed task."""
    from graphrt.errors import NodeError

    node = st.spec.nodes[failed.node.error_handler]  # type: ignore[index]
    task = new_task(st, node, failed.input, (*failed.path, "error_handler"), (PUSH,))
    task.ctx.node_error = NodeError(failed.name, error)
    return task


class _NoProc:
    def run(self, task: Task) -> None:
        return None

    async def arun(self, task: Task) -> None:
        return None

    def write_command(self, task: Task, command: Any) -> None:
        return None


_INPUT_NODE = PregelNode(INPUT, (), (), _NoProc(), hidden=True)


def writes_task(writes: list[tuple[str, Any]]) -> Task:
    """A stand-in task carrying writes that no node made (the input, a Command, saved null writes)."""
    ctx = TaskContext(None, INPUT, NULL_TASK_ID, -1, (), (INPUT,))  # type: ignore[arg-type]
    return Task(INPUT, None, _INPUT_NODE, NULL_TASK_ID, (INPUT,), (), ctx, writes)


def apply_writes(st: LoopState, tasks: Sequence[Task], *, bump_step: bool = True) -> set[str]:
    """Apply a step's writes to the channels; returns the channels that changed.

    Order matters and is fixed: tasks by path, then each task's writes in the order it made them.
    """
    spec, channels, versions = st.spec, st.channels, st.versions
    ordered = sorted(tasks, key=_path_key) if len(tasks) > 1 else tasks
    # Record what each PULL task has seen, so the same versions don't trigger it again.
    for task in ordered:
        if task.path[0] == PULL:
            st.seen_dirty.add(task.name)
            seen = st.seen.get(task.name)
            if seen is None:
                seen = st.seen[task.name] = {}
            for chan in task.node.triggers:
                if chan in versions:
                    seen[chan] = versions[chan]
    if st.max_version is None and versions:
        st.max_version = max(versions.values())
    next_version = st.next_version(st.max_version)
    changed: set[str] = set()
    # Consume the channels that triggered tasks (barriers reset); other channels' consume() is a no-op.
    consumers = spec.consumers
    if consumers:
        for task in ordered:
            for chan in task.triggers:
                if chan in consumers and channels[chan].consume():
                    versions[chan] = next_version
                    changed.add(chan)
    # Single writes to LastValue channels (most state keys) just set the value, mirrored in bulk below;
    # every other channel's writes are grouped and applied once.
    plain, by_channel = _split_writes(ordered, spec.last_values)
    for chan, value in plain.items():
        channels[chan].value = value  # type: ignore[attr-defined]
        versions[chan] = next_version
    updated: set[str] = set()
    for chan, values in by_channel.items():
        channel = channels.get(chan)
        if channel is None:
            continue  # not a channel of this graph
        if not channel.update(values):
            continue
        versions[chan] = next_version
        changed.add(chan)
        # An unavailable channel (a deferred trigger before finish) can't trigger anything yet.
        if channel.is_available():
            updated.add(chan)
    if bump_step:
        # Ephemeral channels that were not written this step are cleared.
        for chan in st.live_ephemeral:
            if chan not in by_channel and channels[chan].update(()):
                versions[chan] = next_version
                changed.add(chan)
        # Not `by_channel.keys() & step_notified`: against a frozenset that walks all of step_notified.
        st.live_ephemeral = spec.step_notified.intersection(by_channel)
        # Nothing left to trigger: tell channels the graph is finishing (deferred nodes wake up).
        if (
            spec.finishers
            and not plain.keys() & spec.trigger_to_nodes.keys()
            and not updated & spec.trigger_to_nodes.keys()
            and TASKS not in updated
        ):
            for chan in spec.finishers:
                if channels[chan].finish():
                    versions[chan] = next_version
                    updated.add(chan)
    if changed or updated:
        st.refresh(changed | updated)
    if plain:
        st.mirror(plain)
        updated.update(plain)
    if changed or updated:
        st.max_version = next_version
    st.updated = updated
    return updated


def _split_writes(
    tasks: Sequence[Task], last_values: frozenset[str]
) -> tuple[dict[str, Any], dict[str, Sequence[Any]]]:
    """(plain, grouped): the one value of each LastValue channel written once, and every other channel's
    writes in task order then write order."""
    if len(tasks) == 1:
        writes = tasks[0].writes
        unique = dict(writes)
        if len(unique) == len(writes):  # the usual node writes each key once
            other = [c for c in unique if c not in last_values]  # e.g. the node's edge to the next node
            return unique, {c: (unique.pop(c),) for c in other}
    by_channel: dict[str, list[Any]] = {}
    for task in tasks:
        for chan, value in task.writes:
            found = by_channel.get(chan)
            if found is None:
                by_channel[chan] = [value]
            else:
                found.append(value)
    plain = {c: v[0] for c, v in by_channel.items() if len(v) == 1 and c in last_values}
    if plain:
        for chan in plain:
            del by_channel[chan]
    return plain, by_channel  # type: ignore[return-value]


def _path_key(task: Task) -> tuple[Any, ...]:
    return task.path


def preview(st: LoopState, tasks: Sequence[Task]) -> LoopState:
    """A copy of `st` with `tasks`' writes applied (for showing state mid-step; `st` is unchanged)."""
    copy = LoopState(
        spec=st.spec,
        run=st.run,
        channels={k: c.copy() for k, c in st.channels.items()},
        versions=st.versions.copy(),
        seen={k: dict(v) for k, v in st.seen.items()},
        step=st.step,
        stop=st.stop,
        checkpoint_id=st.checkpoint_id,
        next_version=st.next_version,
        values=st.values.copy(),
        saved=st.saved.copy(),
        state=st.state.copy(),
    )
    apply_writes(copy, tasks, bump_step=False)
    return copy


def should_interrupt(st: LoopState, nodes: All | tuple[str, ...], tasks: Sequence[Task]) -> bool:
    """Interrupt before/after `nodes` if one of them is in `tasks` and state moved since the last interrupt."""
    if not nodes:
        return False
    seen = st.seen.get(INTERRUPT, {})
    moved = any(seen.get(c) is None or v > seen[c] for c, v in st.versions.items())
    if not moved:
        return False
    return any((nodes == "*" and not t.node.hidden) or t.name in nodes for t in tasks)


def mark_interrupted(st: LoopState) -> None:
    """Remember the versions at this interrupt, so resuming does not stop at the same place again."""
    st.seen[INTERRUPT] = st.versions.copy()
    st.seen_dirty.add(INTERRUPT)


def seen_snapshot(st: LoopState) -> dict[str, dict[str, Any]]:
    """`versions_seen` for a checkpoint, copying only what changed since the last one."""
    copies, seen = st.seen_copies, st.seen
    if st.seen_dirty:
        for name in st.seen_dirty:
            if name in seen:
                copies[name] = dict(seen[name])
        st.seen_dirty = set()
    if len(copies) != len(seen):  # nodes restored from a checkpoint, or seen changed without a mark
        for name in seen.keys() - copies.keys():
            copies[name] = dict(seen[name])
    return copies.copy()


def create_checkpoint(st: LoopState, checkpoint_id: str, updated: Iterable[str]) -> Checkpoint:
    """The checkpoint of the current state (values are shared, not copied: savers serialize them)."""
    return {
        "v": 4,
        "id": checkpoint_id,
        "ts": utc_now_iso(),
        # .copy(), not dict(): dict() copies entry by entry once a key was ever deleted (mirrors drop keys)
        "channel_values": st.saved.copy(),
        "channel_versions": st.versions.copy(),
        "versions_seen": seen_snapshot(st),
        "updated_channels": sorted(updated),
    }


def restore_state(
    spec: GraphSpec,
    run: RunContext,
    saved: CheckpointTuple | None,
    next_version: Callable[[Any], Any],
    *,
    checkpoint_ns: str = "",
    fresh_id: str = "",
    track_saved: bool = True,
) -> LoopState:
    """The loop state of a saved checkpoint (its pending writes included), or of a new thread."""
    checkpoint = saved.checkpoint if saved else None
    channels, live = restore_channels(spec, checkpoint)
    st = LoopState(
        spec=spec,
        run=run,
        channels=channels,
        versions=dict(checkpoint["channel_versions"]) if checkpoint else {},
        seen={k: dict(v) for k, v in checkpoint["versions_seen"].items()} if checkpoint else {},
        step=(saved.metadata.get("step", -1) + 1) if saved else 0,
        stop=0,
        checkpoint_id=checkpoint["id"] if checkpoint else fresh_id,
        next_version=next_version,
        live_ephemeral=live,
        pending_writes=list(saved.pending_writes or []) if saved else [],
        checkpoint_ns=checkpoint_ns,
        track_saved=track_saved,
    )
    st.refresh(channels if checkpoint else spec.initially_set)  # a new thread: the rest are empty
    return st


def restore_channels(
    spec: GraphSpec, checkpoint: Checkpoint | None
) -> tuple[dict[str, BaseChannel[Any, Any, Any]], frozenset[str]]:
    """Fresh channels restored from `checkpoint`, and the step-notified ones that hold a value."""
    if checkpoint is None:
        return {k: c.copy() for k, c in spec.channels.items()}, frozenset()
    values = checkpoint["channel_values"]
    channels = {k: c.from_checkpoint(values.get(k, MISSING)) for k, c in spec.channels.items()}
    live = frozenset(k for k in spec.step_notified if channels[k].is_available())
    return channels, live


def start_writes(spec: GraphSpec, input: Any) -> list[tuple[str, Any]]:
    """Writes that deliver a graph input to the START node."""
    if isinstance(spec.input_channels, str):
        return [(spec.input_channels, input)]
    if not isinstance(input, dict):
        raise InvalidUpdateError(f"Expected dict input, got {input!r}")
    return [(k, v) for k, v in input.items() if k in spec.input_channels]
