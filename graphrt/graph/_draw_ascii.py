"""ASCII art for a graph: a small layered layout, drawn top to bottom with boxes and arrows.

The steps are the classic ones for layered drawings, each kept simple:

1. Break cycles: a depth-first search from the first node marks back edges; they are laid out reversed
   and drawn with the arrowhead pointing up (`^`) at their real target.
2. Rank each node by its longest path from the sources (networkx gives the topological order); the last
   node given (`__end__`) always sits in the bottom layer. An edge spanning several layers goes through
   one-character-wide dummy nodes, so every drawn segment joins adjacent layers.
3. Order each layer by barycentre sweeps, keeping the order with the fewest crossings.
4. Place boxes so each sits under the nodes it comes from, pushing apart (as a block) those that overlap,
   then slide each box's ports so that edges run straight where they can.
5. Draw: each segment that must move sideways or carries a label gets a row of its own in the gap
   between its two layers. Solid edges use `|`, `-` and `+`; conditional edges use `:` and `.`.

The output is deterministic: it depends only on the nodes' order and the edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx

__all__ = ("draw_ascii",)

GAP = 2
"""Blank columns between neighbours in a layer."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One piece of an edge, between a node in one layer and a node in the layer below."""

    upper: int
    lower: int
    conditional: bool
    label: str | None
    """Only on the piece next to the edge's real source."""
    arrow_down: bool
    """This piece ends the edge at the real target below it."""
    arrow_up: bool
    """This piece ends a reversed (cycle-closing) edge at the real target above it."""


@dataclass(slots=True)
class Layout:
    """Everything the drawing needs; handles below `real` are the real nodes, the rest are dummies."""

    names: list[str]
    real: int
    rank: list[int]
    dotted: dict[int, bool] = field(default_factory=dict)
    """For a dummy: whether its edge is conditional."""
    segments: list[Segment] = field(default_factory=list)
    loops: dict[int, str] = field(default_factory=dict)
    """Text drawn right of a box for its edges to itself."""
    layers: list[list[int]] = field(default_factory=list)
    width: list[int] = field(default_factory=list)
    left: list[int] = field(default_factory=list)
    top: dict[int, list[int]] = field(default_factory=dict)
    """Per handle: its incoming segments (indices), left to right."""
    bottom: dict[int, list[int]] = field(default_factory=dict)
    """Per handle: its outgoing segments (indices), left to right."""
    top_x: dict[int, int] = field(default_factory=dict)
    """Per segment: the column where it enters its lower node."""
    bottom_x: dict[int, int] = field(default_factory=dict)
    """Per segment: the column where it leaves its upper node."""

    def item_width(self, handle: int) -> int:
        return self.width[handle] + len(self.loops.get(handle, ""))


def draw_ascii(nodes: dict[str, str], edges: list[tuple[str, str, bool, str | None]]) -> str:
    """Draw nodes (id -> label, in order) and edges (source, target, conditional, label) as text."""
    if not nodes:
        return ""
    ids = list(nodes)
    index = {node_id: i for i, node_id in enumerate(ids)}
    pairs = [(index[s], index[t], cond, label) for s, t, cond, label in edges]
    end = index.get("__end__")
    back = _back_edges(len(ids), pairs)
    layout = Layout([nodes[i] for i in ids], len(ids), _ranks(len(ids), pairs, back, end))
    _split_edges(layout, pairs, back)
    layout.layers = _order_layers(layout)
    _size_boxes(layout)
    _place(layout)
    _fit_ports(layout)
    return _render(layout)


# ---------------------------------------------------------------- ranks and cycles


def _back_edges(count: int, edges: list[tuple[int, int, bool, str | None]]) -> set[int]:
    """Indices of the edges that close a cycle, found by depth-first search in node order."""
    succ: list[list[tuple[int, int]]] = [[] for _ in range(count)]
    for k, (s, t, _, _) in enumerate(edges):
        if s != t:
            succ[s].append((t, k))
    for out in succ:
        out.sort()
    state = [0] * count  # 0: not seen, 1: on the search path, 2: finished
    back: set[int] = set()
    for root in range(count):
        if state[root]:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            node, children = stack[-1]
            for child, k in children:
                if state[child] == 1:
                    back.add(k)
                elif state[child] == 0:
                    state[child] = 1
                    stack.append((child, iter(succ[child])))
                    break
            else:
                state[node] = 2
                stack.pop()
    return back


def _ranks(count: int, edges: list[tuple[int, int, bool, str | None]], back: set[int], end: int | None) -> list[int]:
    """Longest-path layer of each node once back edges are reversed; `end` goes to the bottom layer."""
    dag: nx.DiGraph[int] = nx.DiGraph()
    dag.add_nodes_from(range(count))
    for k, (s, t, _, _) in enumerate(edges):
        if s != t:
            dag.add_edge(*((t, s) if k in back else (s, t)))
    rank = [0] * count
    for node in nx.lexicographical_topological_sort(dag):
        rank[node] = max((rank[p] + 1 for p in dag.predecessors(node)), default=0)
    if end is not None:
        rank[end] = max(rank)
    return rank


def _split_edges(layout: Layout, edges: list[tuple[int, int, bool, str | None]], back: set[int]) -> None:
    """Turn each edge into segments between adjacent layers, adding dummy nodes where it spans more."""
    for k, (s, t, cond, label) in enumerate(edges):
        if s == t:
            arrow = " -.-> " if cond else " --> "
            text = layout.loops.get(s, "") + arrow + layout.names[s] + (f" ({label})" if label else "")
            layout.loops[s] = text
            continue
        reverse = k in back
        upper, lower = (t, s) if reverse else (s, t)
        chain = [upper]
        for r in range(layout.rank[upper] + 1, layout.rank[lower]):
            layout.names.append("")
            layout.rank.append(r)
            layout.dotted[len(layout.names) - 1] = cond
            chain.append(len(layout.names) - 1)
        chain.append(lower)
        last = len(chain) - 2
        for i in range(len(chain) - 1):
            at_source = i == last if reverse else i == 0
            layout.segments.append(
                Segment(
                    chain[i],
                    chain[i + 1],
                    cond,
                    label if at_source else None,
                    arrow_down=not reverse and i == last,
                    arrow_up=reverse and i == 0,
                )
            )


# ---------------------------------------------------------------- order within layers


def _order_layers(layout: Layout) -> list[list[int]]:
    """Layers left to right, by barycentre sweeps down and up; the order with fewest crossings wins."""
    layers: list[list[int]] = [[] for _ in range(max(layout.rank) + 1)]
    for handle, r in enumerate(layout.rank):
        layers[r].append(handle)
    ups: dict[int, list[int]] = {}
    downs: dict[int, list[int]] = {}
    for seg in layout.segments:
        ups.setdefault(seg.lower, []).append(seg.upper)
        downs.setdefault(seg.upper, []).append(seg.lower)
    best = [list(layer) for layer in layers]
    fewest = _crossings(best, layout.segments)
    for _ in range(4):
        for i in range(1, len(layers)):
            layers[i] = _by_barycentre(layers[i], layers[i - 1], ups)
        for i in range(len(layers) - 2, -1, -1):
            layers[i] = _by_barycentre(layers[i], layers[i + 1], downs)
        crossings = _crossings(layers, layout.segments)
        if crossings < fewest:
            best, fewest = [list(layer) for layer in layers], crossings
    return best


def _by_barycentre(layer: list[int], fixed: list[int], neighbours: dict[int, list[int]]) -> list[int]:
    pos = {h: i for i, h in enumerate(fixed)}

    def key(item: tuple[int, int]) -> float:
        i, handle = item
        near = neighbours.get(handle, ())
        return sum(pos[n] for n in near) / len(near) if near else float(i)

    return [h for _, h in sorted(enumerate(layer), key=key)]


def _crossings(layers: list[list[int]], segments: list[Segment]) -> int:
    pos = {h: i for layer in layers for i, h in enumerate(layer)}
    ends = [(pos[s.upper], pos[s.lower]) for s in segments]
    by_layer: dict[int, list[tuple[int, int]]] = {}
    rank = {h: r for r, layer in enumerate(layers) for h in layer}
    for seg, end in zip(segments, ends, strict=True):
        by_layer.setdefault(rank[seg.upper], []).append(end)
    count = 0
    for group in by_layer.values():
        for i, (a1, b1) in enumerate(group):
            count += sum(1 for a2, b2 in group[i + 1 :] if (a1 - a2) * (b1 - b2) < 0)
    return count


# ---------------------------------------------------------------- sizes and positions


def _size_boxes(layout: Layout) -> None:
    """Box widths and each node's ports in left-to-right order."""
    pos = {h: i for layer in layout.layers for i, h in enumerate(layer)}
    for k, seg in enumerate(layout.segments):
        layout.bottom.setdefault(seg.upper, []).append(k)
        layout.top.setdefault(seg.lower, []).append(k)
    for ports in layout.bottom.values():
        ports.sort(key=lambda k: (pos[layout.segments[k].lower], k))
    for ports in layout.top.values():
        ports.sort(key=lambda k: (pos[layout.segments[k].upper], k))
    for handle, name in enumerate(layout.names):
        if handle >= layout.real:
            layout.width.append(1)
            continue
        most = max(len(layout.top.get(handle, ())), len(layout.bottom.get(handle, ())))
        layout.width.append(max(len(name) + 4, 2 * most + 1))


def _spread(count: int, width: int) -> list[int]:
    """Offsets of `count` ports along a side of a box `width` wide, evenly spread, two columns apart."""
    if width == 1:
        return [0] * count
    if count == 1:
        return [width // 2]
    return [1 + ((2 * i + 1) * (width - 2)) // (2 * count) for i in range(count)]


def _place(layout: Layout) -> None:
    """Left columns of every box: under its upper neighbours, then over its lower ones, then under again.

    The first two passes also widen a box whose neighbours on that side are spread wider than it, so that
    a join or a fan-out gets straight edges.
    """
    layout.left = [0] * len(layout.names)
    x = 0
    for handle in layout.layers[0]:
        layout.left[handle] = x
        x += layout.item_width(handle) + GAP
    layers = layout.layers
    for down, widen in ((True, True), (False, True), (True, False)):
        order = range(1, len(layers)) if down else range(len(layers) - 2, -1, -1)
        for i in order:
            wanted = [_wanted_left(layout, h, from_above=down, widen=widen) for h in layers[i]]
            _pack(layout, layers[i], wanted)


def _wanted_left(layout: Layout, handle: int, *, from_above: bool, widen: bool) -> float:
    """Where `handle`'s box would put its ports right above/below those of its neighbours."""
    mine = layout.top.get(handle, []) if from_above else layout.bottom.get(handle, [])
    if not mine:
        return float(layout.left[handle])
    theirs = []
    for k in mine:
        seg = layout.segments[k]
        other = seg.upper if from_above else seg.lower
        ports = layout.bottom[other] if from_above else layout.top[other]
        theirs.append(layout.left[other] + _spread(len(ports), layout.width[other])[ports.index(k)])
    if widen and handle < layout.real and len(mine) > 1 and max(theirs) - min(theirs) + 3 > layout.width[handle]:
        layout.width[handle] = max(theirs) - min(theirs) + 3
        return float(min(theirs) - 1)
    offsets = _spread(len(mine), layout.width[handle])
    return sum(x - off for x, off in zip(theirs, offsets, strict=True)) / len(mine)


def _pack(layout: Layout, layer: list[int], wanted: list[float]) -> None:
    """Put each box as near its wanted column as it can go, moving overlapping runs of boxes as one block."""
    blocks: list[list[int]] = []  # each block: indices into `layer`

    def offsets(block: list[int]) -> list[int]:
        out, x = [], 0
        for i in block:
            out.append(x)
            x += layout.item_width(layer[i]) + GAP
        return out

    def start(block: list[int]) -> int:
        mean = sum(wanted[i] - off for i, off in zip(block, offsets(block), strict=True)) / len(block)
        return int(mean + 0.5) if mean >= 0 else -int(-mean + 0.5)

    for i in range(len(layer)):
        blocks.append([i])
        while len(blocks) > 1:
            prev = blocks[-2]
            prev_end = start(prev) + offsets(prev)[-1] + layout.item_width(layer[prev[-1]]) + GAP
            if prev_end <= start(blocks[-1]):
                break
            blocks[-2:] = [prev + blocks[-1]]
    for block in blocks:
        x = start(block)
        for i, off in zip(block, offsets(block), strict=True):
            layout.left[layer[i]] = x + off


def _fit_ports(layout: Layout) -> None:
    """Columns of each segment's two ends: straight down where both boxes allow it."""
    for handle in range(len(layout.names)):
        for side, out in ((layout.top, layout.top_x), (layout.bottom, layout.bottom_x)):
            ports = side.get(handle, [])
            for k, offset in zip(ports, _spread(len(ports), layout.width[handle]), strict=True):
                out[k] = layout.left[handle] + offset
    for layer in layout.layers:
        for handle in layer:
            ports = layout.top.get(handle, [])
            _fit(layout, handle, ports, layout.top_x, [layout.bottom_x[k] for k in ports])
        for handle in layer:
            ports = layout.bottom.get(handle, [])
            _fit(layout, handle, ports, layout.bottom_x, [layout.top_x[k] for k in ports])


def _fit(layout: Layout, handle: int, ports: list[int], out: dict[int, int], wanted: list[int]) -> None:
    """Move a box's ports toward `wanted` columns, inside the box and at least two columns apart."""
    width = layout.width[handle]
    if width == 1 or not ports:
        return
    lo, hi = layout.left[handle] + 1, layout.left[handle] + width - 2
    count = len(ports)
    previous = lo - 2
    for i, (k, want) in enumerate(zip(ports, wanted, strict=True)):
        x = min(max(want, lo + 2 * i), hi - 2 * (count - 1 - i))
        x = max(x, previous + 2)
        out[k] = previous = x


# ---------------------------------------------------------------- drawing


class _Canvas:
    """Characters at (row, column); unset cells are spaces."""

    def __init__(self) -> None:
        self.cells: dict[tuple[int, int], str] = {}

    def put(self, row: int, col: int, text: str) -> None:
        for i, ch in enumerate(text):
            self.cells[(row, col + i)] = ch

    def text(self) -> str:
        if not self.cells:
            return ""
        first_col = min(c for _, c in self.cells)
        rows: dict[int, dict[int, str]] = {}
        for (r, c), ch in self.cells.items():
            rows.setdefault(r, {})[c - first_col] = ch
        lines = []
        for row in range(min(rows), max(rows) + 1):
            chars = rows.get(row, {})
            line = [" "] * (max(chars, default=-1) + 1)
            for c, ch in chars.items():
                line[c] = ch
            lines.append("".join(line).rstrip())
        return "\n".join(lines)


def _render(layout: Layout) -> str:
    canvas = _Canvas()
    y = 0
    for i, layer in enumerate(layout.layers):
        for handle in layer:
            _draw_node(canvas, layout, handle, y)
        if i == len(layout.layers) - 1:
            break
        channel = [k for k, seg in enumerate(layout.segments) if layout.rank[seg.upper] == i]
        y = _draw_channel(canvas, layout, channel, y + 3)
    return canvas.text()


def _draw_node(canvas: _Canvas, layout: Layout, handle: int, y: int) -> None:
    x = layout.left[handle]
    if handle >= layout.real:
        for row in range(y, y + 3):
            canvas.put(row, x, ":" if layout.dotted[handle] else "|")
        return
    width = layout.width[handle]
    border = "+" + "-" * (width - 2) + "+"
    canvas.put(y, x, border)
    canvas.put(y + 1, x, "| " + layout.names[handle].center(width - 4) + " |" + layout.loops.get(handle, ""))
    canvas.put(y + 2, x, border)


def _draw_channel(canvas: _Canvas, layout: Layout, channel: list[int], y: int) -> int:
    """Draw the segments between two layers from row `y`; returns the first row of the layer below."""
    moving = [k for k in channel if layout.bottom_x[k] != layout.top_x[k] or layout.segments[k].label]
    # Segments going left take the upper rows from the left, those going right from the right: fewer crossings.
    left = sorted((k for k in moving if layout.top_x[k] < layout.bottom_x[k]), key=lambda k: layout.bottom_x[k])
    straight = [k for k in moving if layout.top_x[k] == layout.bottom_x[k]]
    right = sorted((k for k in moving if layout.top_x[k] > layout.bottom_x[k]), key=lambda k: -layout.bottom_x[k])
    track = {k: y + 1 + i for i, k in enumerate(left + straight + right)}
    bottom = y + 1 + len(track)
    for k in track:
        a, b, row = layout.bottom_x[k], layout.top_x[k], track[k]
        canvas.put(row, min(a, b), ("." if layout.segments[k].conditional else "-") * (abs(a - b) + 1))
    for k in channel:
        seg = layout.segments[k]
        vertical = ":" if seg.conditional else "|"
        a, b = layout.bottom_x[k], layout.top_x[k]
        turn = track.get(k, bottom)
        for row in range(y, turn):
            canvas.put(row, a, vertical)
        for row in range(turn + 1 if k in track else turn, bottom + 1):
            canvas.put(row, b, vertical)
        if k in track:
            canvas.put(turn, a, vertical if seg.conditional else "+")
            canvas.put(turn, b, "." if seg.conditional else "+")
            if a == b:
                canvas.put(turn, a, vertical)
        if seg.arrow_up:
            canvas.put(y, a, "^")
        if seg.arrow_down:
            canvas.put(bottom, b, "v")
    for k in track:
        _draw_label(canvas, layout, k, track[k])
    return bottom + 1


def _draw_label(canvas: _Canvas, layout: Layout, k: int, row: int) -> None:
    """Write a segment's label on its own row: inside its sideways run if it fits, else beside it."""
    seg = layout.segments[k]
    if not seg.label:
        return
    label, line = seg.label, "." if seg.conditional else "-"
    a, b = layout.bottom_x[k], layout.top_x[k]
    lo, hi = min(a, b), max(a, b)
    inside = lo + 1 + (hi - lo - 1 - len(label)) // 2
    if hi - lo - 1 >= len(label) + 2 and all(
        canvas.cells.get((row, c)) == line for c in range(inside - 1, inside + len(label) + 1)
    ):
        canvas.put(row, inside, label)
        return
    right, left = hi + 2, lo - 1 - len(label)
    for x in (left, right) if b < a else (right, left):
        if _free(canvas, row, x, len(label)):
            canvas.put(row, x, label)
            return
    while not _free(canvas, row, right, len(label)):
        right += 1
    canvas.put(row, right, label)


def _free(canvas: _Canvas, row: int, col: int, length: int) -> bool:
    """No character in the columns `col .. col + length` of `row`, nor right next to them."""
    return all((row, c) not in canvas.cells for c in range(col - 1, col + length + 1))
