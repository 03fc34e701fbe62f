"""What a StateGraph node does in a task: call the user's function, turn its return into writes, route."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graphrt.constants import END
from graphrt.errors import ParentCommand
from graphrt.graph._schema import updates_of
from graphrt.pregel._spec import TASKS, Call, Task
from graphrt.types import Command, Send

if TYPE_CHECKING:
    from graphrt.channels.base import BaseChannel


def branch_channel(node: str) -> str:
    return f"branch:to:{node}"


@dataclass(frozen=True, slots=True)
class Branch:
    """A conditional edge: `path(state)` names where to go next, optionally through `ends`."""

    path: Call
    ends: Mapping[Hashable, str] | None
    name: str

    def destinations(self, result: Any) -> list[str | Send]:
        results = result if isinstance(result, list | tuple) else [result]
        out: list[str | Send] = []
        for r in results:
            if isinstance(r, Send):
                out.append(r)
            elif self.ends is not None:
                try:
                    out.append(self.ends[r])
                except KeyError:
                    # LangGraph raises KeyError here; keep the class, say what to fix.
                    raise KeyError(
                        f"Branch '{self.name}' returned {r!r}, which is not in its path_map "
                        f"({sorted(map(str, self.ends))}). Return one of those keys."
                    ) from None
            else:
                out.append(r)
        return out


def goto_writes(targets: Sequence[str | Send]) -> list[tuple[str, Any]]:
    """Writes that schedule `targets` for the next step (END schedules nothing)."""
    writes: list[tuple[str, Any]] = []
    for target in targets:
        if isinstance(target, Send):
            writes.append((TASKS, target))
        elif target != END:
            writes.append((branch_channel(target), None))
    return writes


@dataclass(frozen=True, slots=True)
class StateView:
    """How to read the state a branch sees: the channels plus this task's own writes."""

    keys: tuple[str, ...]
    coerce: Callable[[dict[str, Any]], Any] | None

    def read(self, task: Task) -> Any:
        channels: Mapping[str, BaseChannel[Any, Any, Any]] = task.ctx.channels
        pending: dict[str, list[Any]] = {}
        for name, value in task.writes:
            if name in channels:
                pending.setdefault(name, []).append(value)
        values = {}
        for key in self.keys:
            chan = channels[key]
            if key in pending:
                chan = chan.copy()
                chan.update(pending[key])
            if chan.is_available():
                values[key] = chan.get()
        return self.coerce(values) if self.coerce is not None else values


@dataclass(frozen=True, slots=True)
class StateNodeProc:
    """A StateGraph node: run the function, write its update and the static edges, then route."""

    call: Call | None
    """None for START, whose input is the graph input itself."""
    keys: frozenset[str]
    edges: tuple[tuple[str, Any], ...]
    branches: tuple[Branch, ...]
    view: StateView
    name: str
    subgraph: Any = None
    """A compiled graph run as this node (nested in the task, natively sync or async)."""

    def run(self, task: Task) -> None:
        if self.subgraph is not None:
            out = self.subgraph.invoke(task.input)
        else:
            out = task.input if self.call is None else self.call.invoke(task.input, task.ctx)
        self._write(task, out)
        for branch in self.branches:
            result = branch.path.invoke(self.view.read(task), task.ctx)
            task.writes.extend(goto_writes(branch.destinations(result)))

    async def arun(self, task: Task) -> None:
        if self.subgraph is not None:
            out = await self.subgraph.ainvoke(task.input)
        else:
            out = task.input if self.call is None else await self.call.ainvoke(task.input, task.ctx)
        self._write(task, out)
        for branch in self.branches:
            result = await branch.path.ainvoke(self.view.read(task), task.ctx)
            task.writes.extend(goto_writes(branch.destinations(result)))

    def write_update(self, task: Task, values: Any) -> None:
        """Write `values` as if the node had returned them (`update_state(..., as_node=...)`)."""
        self._write(task, values)
        for branch in self.branches:
            result = branch.path.invoke(self.view.read(task), task.ctx)
            task.writes.extend(goto_writes(branch.destinations(result)))

    def write_command(self, task: Task, command: Command[Any]) -> None:
        """Write `command` as if the node had returned it (a `Command.PARENT` from a nested run)."""
        self._write(task, command)

    def _write(self, task: Task, out: Any) -> None:
        writes = task.writes
        if isinstance(out, Command):
            self._write_command(task, out)
        elif isinstance(out, list | tuple) and out and all(isinstance(o, Command) for o in out):
            for command in out:
                self._write_command(task, command)
        else:
            writes.extend(updates_of(out, self.keys, node=self.name))
        writes.extend(self.edges)

    def _write_command(self, task: Task, command: Command[Any]) -> None:
        if command.graph == Command.PARENT:
            raise ParentCommand(command)
        if command.update is not None:
            update = command.update
            if isinstance(update, list | tuple) and all(isinstance(u, tuple) and len(u) == 2 for u in update):
                task.writes.extend((k, v) for k, v in update if k in self.keys)
            else:
                task.writes.extend(updates_of(update, self.keys, node=self.name))
        goto: Any = command.goto
        targets: list[str | Send] = list(goto) if isinstance(goto, list | tuple) else ([goto] if goto else [])
        task.writes.extend(goto_writes(targets))
