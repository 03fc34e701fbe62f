"""The low-level API: `NodeBuilder` nodes and channels given directly to `Pregel(nodes=..., channels=...)`.

A node subscribes to channels (they trigger it), reads channels (its input: one channel's value, or a dict),
runs its functions in sequence and writes the result to channels. `graph_spec` turns such nodes and
channels into the `GraphSpec` the loop runs, as `StateGraph.compile()` does for the Graph API.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphrt.channels.base import BaseChannel
from graphrt.channels.topic import Topic
from graphrt.pregel._cache import UnitCache
from graphrt.pregel._call import Call
from graphrt.pregel._spec import RESERVED, TASKS, GraphSpec, PregelNode, Task
from graphrt.pregel._write import ChannelWriteEntry
from graphrt.types import All, CachePolicy, Command, RetryPolicy, Send

__all__ = ("NodeBuilder", "graph_spec")


@dataclass(frozen=True, slots=True)
class _ChainProc:
    """Runs the node's functions in sequence on its input, then makes its writes."""

    calls: tuple[Call, ...]
    writes: tuple[ChannelWriteEntry, ...]

    def run(self, task: Task) -> None:
        value = task.input
        for call in self.calls:
            value = call.invoke(value, task.ctx)
        self._write(task, value)

    async def arun(self, task: Task) -> None:
        value = task.input
        for call in self.calls:
            value = await call.ainvoke(value, task.ctx)
        self._write(task, value)

    def write_command(self, task: Task, command: Any) -> None:
        self._write(task, command)

    def _write(self, task: Task, output: Any) -> None:
        if isinstance(output, Command):
            raise NotImplementedError(
                "A NodeBuilder node returned a Command: only StateGraph nodes and @entrypoint functions can; "
                "write to channels with write_to() instead."
            )
        for entry in self.writes:
            value = entry.value_for(output)
            if value is None and entry.skip_none:
                continue
            task.writes.append((TASKS, value) if isinstance(value, Send) else (entry.channel, value))


class NodeBuilder:
    """Builds a low-level node: `NodeBuilder().subscribe_only("a").do(fn).write_to("b")`."""

    def __init__(self) -> None:
        self._reads: str | list[str] = []
        self._triggers: list[str] = []
        self._funcs: list[Callable[..., Any]] = []
        self._writes: list[ChannelWriteEntry] = []
        self._tags: list[str] = []
        self._metadata: dict[str, Any] = {}
        self._retry: list[RetryPolicy] = []
        self._cache: CachePolicy | None = None

    def subscribe_only(self, channel: str) -> NodeBuilder:
        """Run when `channel` is updated, with its value (not a dict) as the input."""
        if self._reads:
            raise ValueError(
                f"subscribe_only({channel!r}) must be the node's only read: it already reads {self._reads!r}. "
                "Use subscribe_to() for several channels (the input is then a dict)."
            )
        self._reads = channel
        self._triggers.append(channel)
        return self

    def subscribe_to(self, *channels: str, read: bool = True) -> NodeBuilder:
        """Run when any of `channels` is updated; with `read`, they are in the input dict."""
        if isinstance(self._reads, str):
            raise ValueError(
                f"subscribe_to{channels!r} after subscribe_only({self._reads!r}): a node reads one channel's value "
                "or a dict of channels, not both."
            )
        if read:
            self._reads.extend(channels)
        self._triggers.extend(channels)
        return self

    def read_from(self, *channels: str) -> NodeBuilder:
        """Add `channels` to the input dict without being triggered by them."""
        if isinstance(self._reads, str):
            raise ValueError(
                f"read_from{channels!r} after subscribe_only({self._reads!r}): a node that reads one channel's "
                "value can't read more. Use subscribe_to() instead."
            )
        self._reads.extend(channels)
        return self

    def do(self, node: Callable[..., Any]) -> NodeBuilder:
        """Run `node` on the input (several `do`s run in sequence, each on the previous one's output)."""
        self._funcs.append(node)
        return self

    def write_to(self, *channels: str | ChannelWriteEntry, **kwargs: Any) -> NodeBuilder:
        """Write the output to `channels`; `name=value` writes a fixed value, `name=fn` writes `fn(output)`."""
        for channel in channels:
            self._writes.append(ChannelWriteEntry(channel) if isinstance(channel, str) else channel)
        for name, value in kwargs.items():
            entry = ChannelWriteEntry(name, mapper=value) if callable(value) else ChannelWriteEntry(name, value)
            self._writes.append(entry)
        return self

    def meta(self, *tags: str, **metadata: Any) -> NodeBuilder:
        self._tags.extend(tags)
        self._metadata.update(metadata)
        return self

    def add_retry_policies(self, *policies: RetryPolicy) -> NodeBuilder:
        self._retry.extend(policies)
        return self

    def add_cache_policy(self, policy: CachePolicy) -> NodeBuilder:
        self._cache = policy
        return self

    def build(self, name: str = "") -> PregelNode:
        """The node, named `name` (`Pregel` names it by its key in `nodes`)."""
        reads = self._reads if isinstance(self._reads, str) else tuple(self._reads)
        proc = _ChainProc(tuple(Call.of(f) for f in self._funcs), tuple(self._writes))
        cache = None
        if self._cache is not None:
            cache = UnitCache.of("node", name, self._funcs[0] if self._funcs else proc, self._cache)
        return PregelNode(
            name,
            tuple(self._triggers),
            reads,
            proc,
            retry_policy=tuple(self._retry),
            metadata=dict(self._metadata),
            tags=tuple(self._tags),
            cache=cache,
        )


def graph_spec(
    nodes: Mapping[str, NodeBuilder | PregelNode],
    channels: Mapping[str, BaseChannel[Any, Any, Any]] | None,
    input_channels: str | Sequence[str],
    output_channels: str | Sequence[str],
    stream_channels: str | Sequence[str] | None,
    interrupt_before: All | Sequence[str],
    interrupt_after: All | Sequence[str],
) -> GraphSpec:
    """The `GraphSpec` of a graph given as nodes and channels (`Pregel(nodes=..., channels=...)`)."""
    built = {
        name: node.build(name) if isinstance(node, NodeBuilder) else dataclasses.replace(node, name=name)
        for name, node in nodes.items()
    }
    chans: dict[str, BaseChannel[Any, Any, Any]] = {k: c.copy() for k, c in (channels or {}).items()}
    for key in chans:
        if key in RESERVED:
            raise ValueError(f"Channel name {key!r} is reserved: rename the channel.")
    chans[TASKS] = Topic(Send, accumulate=False)
    for key, channel in chans.items():
        channel.key = key
    _check(built, chans, input_channels, output_channels, stream_channels)
    user = tuple(k for k in chans if k != TASKS)
    streamed = (stream_channels,) if isinstance(stream_channels, str) else tuple(stream_channels or user)
    trigger_to_nodes: dict[str, list[str]] = {}
    for node in built.values():
        for trigger in node.triggers:
            trigger_to_nodes.setdefault(trigger, []).append(node.name)
    inputs = input_channels if isinstance(input_channels, str) else tuple(input_channels)
    outputs = output_channels if isinstance(output_channels, str) else tuple(output_channels)
    return GraphSpec(
        nodes=built,
        channels=chans,
        trigger_to_nodes={k: tuple(v) for k, v in trigger_to_nodes.items()},
        input_channels=inputs,
        output_channels=outputs,
        output_set=frozenset((outputs,) if isinstance(outputs, str) else outputs),
        stream_channels=frozenset(streamed),
        step_notified=frozenset(k for k, c in chans.items() if c.steps_without_writes),
        interrupt_before=_names(interrupt_before),
        interrupt_after=_names(interrupt_after),
        values_channels=streamed,
    )


def _names(nodes: All | Sequence[str]) -> All | tuple[str, ...]:
    return "*" if nodes == "*" else tuple(nodes)


def _check(
    nodes: Mapping[str, PregelNode],
    channels: Mapping[str, BaseChannel[Any, Any, Any]],
    input_channels: str | Sequence[str],
    output_channels: str | Sequence[str],
    stream_channels: str | Sequence[str] | None,
) -> None:
    """Every channel a node or the graph names exists (LangGraph's validation, with the name of the culprit)."""

    names = sorted(k for k in channels if k != TASKS)

    def known(given: str | Sequence[str] | None, where: str) -> None:
        for name in (given,) if isinstance(given, str) else (given or ()):
            if name not in channels:
                raise ValueError(f"{where} {name!r}, which is not in `channels` ({names}).")

    for node in nodes.values():
        known(node.triggers, f"Node {node.name!r} subscribes to")
        known(node.reads, f"Node {node.name!r} reads")
        for entry in getattr(node.proc, "writes", ()):
            known(entry.channel, f"Node {node.name!r} writes to")
    known(input_channels, "input_channels names")
    known(output_channels, "output_channels names")
    known(stream_channels, "stream_channels names")
    inputs = (input_channels,) if isinstance(input_channels, str) else tuple(input_channels)
    if not any(trigger in inputs for node in nodes.values() for trigger in node.triggers):
        raise ValueError(
            f"No node subscribes to an input channel, so nothing would run: subscribe a node to one of {inputs}."
        )
