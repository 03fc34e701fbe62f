"""Thread state methods of `Pregel`: get_state, get_state_history, update_state (and async twins)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from graphrt.checkpoint.base import CheckpointTuple
from graphrt.checkpoint.base.id import uuid6
from graphrt.config import RunnableConfig
from graphrt.constants import START
from graphrt.errors import InvalidUpdateError
from graphrt.pregel import _algo
from graphrt.pregel._algo import ERROR, INTERRUPT, NO_WRITES, NULL_TASK_ID, RESUME, LoopState, Task
from graphrt.pregel._context import RunContext
from graphrt.types import Interrupt, PregelTask, StateSnapshot, StateUpdate

if TYPE_CHECKING:
    from graphrt.pregel.main import Pregel


def _require_saver(graph: Pregel) -> Any:
    if graph.checkpointer is None:
        raise ValueError("No checkpointer set")
    return graph.checkpointer


class StateMixin:
    """Reading and writing a thread's saved state."""

    # ------------------------------------------------------------ reading

    def _state_of(  # type: ignore[misc]
        self: Pregel, saved: CheckpointTuple | None, config: RunnableConfig, *, live: bool
    ) -> StateSnapshot:
        """A snapshot of `saved`. `live` (the thread's current state): finished tasks' saved writes are
        applied to the values and those tasks leave `next`; otherwise values are the checkpoint's own."""
        if saved is None:
            return StateSnapshot({}, (), config, None, None, None, (), ())
        st = self._loop_state(saved, config)
        tasks = _algo.prepare_next_tasks(st, candidates=self.spec.nodes)
        by_task: dict[str, list[tuple[str, Any]]] = {}
        for task_id, chan, value in saved.pending_writes or []:
            by_task.setdefault(task_id, []).append((chan, value))
        null_writes = [(c, v) for c, v in by_task.get(NULL_TASK_ID, []) if c != RESUME]
        if null_writes:
            _algo.apply_writes(st, [_writes_task(null_writes)], bump_step=False)
        snapshot_tasks: list[PregelTask] = []
        interrupts: list[Interrupt] = []
        finished: list[Task] = []
        for task in tasks:
            writes = by_task.get(task.id, [])
            error = next((v for c, v in writes if c == ERROR), None)
            asked = tuple(i for c, v in writes if c == INTERRUPT for i in v)
            done = [(c, v) for c, v in writes if c not in (ERROR, INTERRUPT, RESUME)]
            result = None
            if done:
                task.writes = [(c, v) for c, v in done if c != NO_WRITES]
                result = self.updates_chunk(task)
                finished.append(task)
            elif asked:
                interrupts.extend(asked)
            exc = Exception(error) if isinstance(error, str) else error
            snapshot_tasks.append(PregelTask(task.id, task.name, task.path, exc, asked, None, result))
        if live and finished:
            _algo.apply_writes(st, finished, bump_step=False)
        return StateSnapshot(
            values=self.output_values(st),
            next=tuple(t.name for t in tasks if not (live and t in finished)),
            config=saved.config,
            metadata=saved.metadata,
            created_at=saved.checkpoint["ts"],
            parent_config=saved.parent_config,
            tasks=tuple(snapshot_tasks),
            interrupts=tuple(interrupts),
        )

    def _loop_state(self: Pregel, saved: CheckpointTuple, config: RunnableConfig) -> LoopState:  # type: ignore[misc]
        checkpoint = saved.checkpoint
        channels, live = _algo.restore_channels(self.spec, checkpoint)
        saver = self.checkpointer
        assert saver is not None
        st = LoopState(
            spec=self.spec,
            run=RunContext(config=config, store=self.store, checkpointer=saver),
            channels=channels,
            versions=dict(checkpoint["channel_versions"]),
            seen={k: dict(v) for k, v in checkpoint["versions_seen"].items()},
            step=saved.metadata.get("step", -1) + 1,
            stop=0,
            checkpoint_id=checkpoint["id"],
            next_version=lambda v: saver.get_next_version(v, None),
            live_ephemeral=live,
            checkpoint_ns=saved.config["configurable"].get("checkpoint_ns", ""),
        )
        st.refresh(channels)
        return st

    def get_state(self: Pregel, config: RunnableConfig, *, subgraphs: bool = False) -> StateSnapshot:  # type: ignore[misc]
        """The thread's state at the checkpoint named in `config` (its newest if none is named)."""
        saver = _require_saver(self)
        config = self._config(config)
        return self._state_of(saver.get_tuple(config), config, live=_is_live(config))

    async def aget_state(self: Pregel, config: RunnableConfig, *, subgraphs: bool = False) -> StateSnapshot:  # type: ignore[misc]
        """Async twin of `get_state`."""
        saver = _require_saver(self)
        config = self._config(config)
        return self._state_of(await saver.aget_tuple(config), config, live=_is_live(config))

    def get_state_history(  # type: ignore[misc]
        self: Pregel,
        config: RunnableConfig,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[StateSnapshot]:
        """The thread's snapshots, newest first."""
        saver = _require_saver(self)
        config = self._config(config)
        config["configurable"].setdefault("checkpoint_ns", "")
        for saved in saver.list(config, filter=filter, before=before, limit=limit):
            yield self._state_of(saved, config, live=False)

    async def aget_state_history(  # type: ignore[misc]
        self: Pregel,
        config: RunnableConfig,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[StateSnapshot]:
        """Async twin of `get_state_history`."""
        saver = _require_saver(self)
        config = self._config(config)
        config["configurable"].setdefault("checkpoint_ns", "")
        async for saved in saver.alist(config, filter=filter, before=before, limit=limit):
            yield self._state_of(saved, config, live=False)

    # ------------------------------------------------------------ writing

    def _as_node(self: Pregel, saved: CheckpointTuple | None, as_node: str | None) -> str:  # type: ignore[misc]
        if as_node is not None:
            if as_node not in self.spec.nodes:
                raise InvalidUpdateError(f"Node {as_node} does not exist")
            return as_node
        if saved is None:
            return START
        seen = saved.checkpoint["versions_seen"]
        last = sorted((v, n) for n, s in seen.items() if n in self.spec.nodes for v in s.values())
        if not last:
            return START
        if len(last) > 1 and last[-1][0] == last[-2][0] and last[-1][1] != last[-2][1]:
            raise InvalidUpdateError("Ambiguous update, specify as_node")
        return str(last[-1][1])

    def _apply_update(  # type: ignore[misc]
        self: Pregel, saved: CheckpointTuple | None, config: RunnableConfig, values: Any, as_node: str | None
    ) -> tuple[Any, Any, Any, Any]:
        """The checkpoint, metadata and versions an `update_state` writes (pure, no I/O)."""
        node_name = self._as_node(saved, as_node)
        if saved is None:
            saver = _require_saver(self)
            from graphrt.checkpoint.base import empty_checkpoint

            saved = CheckpointTuple(
                {"configurable": {"thread_id": config["configurable"]["thread_id"], "checkpoint_ns": ""}},
                empty_checkpoint(),
                {"step": -2},
            )
            del saver
        st = self._loop_state(saved, config)
        node = self.spec.nodes[node_name]
        task = _algo._new_task(st, node, None, (_algo.PULL, node_name), node.triggers)
        writer = getattr(node.proc, "write_update", None)
        if writer is None:
            raise InvalidUpdateError(f"Node {node_name} cannot take state updates")
        writer(task, values)
        updated = _algo.apply_writes(st, [task])
        checkpoint_id = str(uuid6())
        checkpoint = _algo.create_checkpoint(st, checkpoint_id, updated)
        step = saved.metadata.get("step", -1) + 1
        metadata = {"source": "update", "step": step, "parents": {}}
        return (
            checkpoint,
            metadata,
            {c: st.versions[c] for c in updated},
            saved.config["configurable"].get("checkpoint_id"),
        )

    def update_state(  # type: ignore[misc]
        self: Pregel,
        config: RunnableConfig,
        values: dict[str, Any] | Any | None,
        as_node: str | None = None,
        task_id: str | None = None,
    ) -> RunnableConfig:
        """Write `values` to the thread as if node `as_node` had returned them; returns the new config."""
        saver = _require_saver(self)
        config = self._thread_config(self._config(config))
        saved, head = self._load(config)
        checkpoint, metadata, versions, _ = self._apply_update(saved, config, values, as_node)
        parent = saved.config if saved else _thread_only(config)
        new: RunnableConfig = saver.put_guarded(parent, checkpoint, metadata, versions, expected_head=head)
        return new

    async def aupdate_state(  # type: ignore[misc]
        self: Pregel,
        config: RunnableConfig,
        values: dict[str, Any] | Any | None,
        as_node: str | None = None,
        task_id: str | None = None,
    ) -> RunnableConfig:
        """Async twin of `update_state`."""
        saver = _require_saver(self)
        config = self._thread_config(self._config(config))
        saved, head = await self._aload(config)
        checkpoint, metadata, versions, _ = self._apply_update(saved, config, values, as_node)
        parent = saved.config if saved else _thread_only(config)
        new: RunnableConfig = await saver.aput_guarded(parent, checkpoint, metadata, versions, expected_head=head)
        return new

    def bulk_update_state(  # type: ignore[misc]
        self: Pregel, config: RunnableConfig, supersteps: Sequence[Sequence[StateUpdate]]
    ) -> RunnableConfig:
        """Apply several updates in order, each as its own checkpoint."""
        if not supersteps:
            raise ValueError("No supersteps provided")
        for superstep in supersteps:
            if not superstep:
                raise ValueError("No updates provided")
            for update in superstep:
                config = self.update_state(config, update.values, update.as_node, update.task_id)
        return config

    async def abulk_update_state(  # type: ignore[misc]
        self: Pregel, config: RunnableConfig, supersteps: Sequence[Sequence[StateUpdate]]
    ) -> RunnableConfig:
        """Async twin of `bulk_update_state`."""
        if not supersteps:
            raise ValueError("No supersteps provided")
        for superstep in supersteps:
            if not superstep:
                raise ValueError("No updates provided")
            for update in superstep:
                config = await self.aupdate_state(config, update.values, update.as_node, update.task_id)
        return config


def _thread_only(config: RunnableConfig) -> RunnableConfig:
    c = config["configurable"]
    return {"configurable": {"thread_id": c["thread_id"], "checkpoint_ns": c.get("checkpoint_ns", "")}}


def _is_live(config: RunnableConfig) -> bool:
    return "checkpoint_id" not in config.get("configurable", {})


def _writes_task(writes: list[tuple[str, Any]]) -> Task:
    from graphrt.pregel._loop import _null_task

    return _null_task(writes)
