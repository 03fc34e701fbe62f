"""What `add_messages` checked of recent histories, so that appending to one costs O(new messages).

A thread's history comes back to `add_messages` at every step: the list it returned the step before, or
the same messages read back from a checkpoint (a saver hands out the same objects for the same stored
messages). Checking it again each time (every message of a known kind with an id, no id twice, none in
the update) would cost O(history) per step. `HistoryIds` remembers, per history, the messages checked
and their ids; a list that starts with the very same objects (or equal messages, compared in C) only has its
other messages checked.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from itertools import islice
from operator import attrgetter
from typing import Any

__all__ = ("HistoryIds",)

_get_id = attrgetter("id")

_BACKTRACK = 16
"""How far back from the end a history is searched for the last message it shares with a remembered one
(a history read back from a checkpoint differs from the list last returned only in its newest messages)."""


class _Checked:
    """Messages found to be of the allowed kinds, each with an id, no id twice; and their ids."""

    __slots__ = ("ids", "items", "known")

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.ids: list[Any] = []
        self.known: set[Any] = set()

    def truncate(self, size: int) -> None:
        """Forget every message after the first `size`."""
        if size < len(self.items):
            self.known.difference_update(islice(self.ids, size, None))
            del self.items[size:], self.ids[size:]

    def extend(self, messages: list[Any], kinds: frozenset[type], ids: list[Any] | None = None) -> bool:
        """Append `messages` (whose ids are `ids`, when known) if they pass the checks; else change nothing."""
        if not kinds.issuperset(map(type, messages)):
            return False
        if ids is None:
            ids = list(map(_get_id, messages))
        new = set(ids)
        if None in new or len(new) != len(ids) or not self.known.isdisjoint(new):
            return False
        self.items += messages
        self.ids += ids
        self.known |= new
        return True


class HistoryIds:
    """The checked messages of recent histories, by the identity of their first message; thread-safe.

    Holds up to `size` histories (strong references, so an identity can't be reused while it is listed),
    dropping the least recently used. Messages are values: a message changed in place (say, its `id`
    reassigned) after it was checked is not noticed; replace it in the list instead, which is.
    """

    def __init__(self, kinds: frozenset[type], size: int = 32) -> None:
        self._kinds = kinds
        self._size = size
        self._histories: OrderedDict[int, _Checked] = OrderedDict()
        self._lock = threading.Lock()  # parallel nodes may reduce at once

    def append(self, history: list[Any], update: list[Any], update_ids: list[Any]) -> list[Any] | None:
        """`[*history, *update]` if that is all a merge does, else None.

        That is: every message of both lists is of an allowed kind and has an id, and no id appears twice.
        """
        with self._lock:
            checked = self._checked(history)
            if checked is None or not checked.extend(update, self._kinds, update_ids):
                return None
            if checked.items:
                key = id(checked.items[0])
                self._histories[key] = checked
                self._histories.move_to_end(key)
                if len(self._histories) > self._size:
                    self._histories.popitem(last=False)
        return [*history, *update]

    def _checked(self, history: list[Any]) -> _Checked | None:
        """The checked messages of exactly `history`, or None if it fails the checks."""
        if not history:
            return _Checked()
        first = history[0]
        checked = self._histories.get(id(first))
        if checked is None or not checked.items or checked.items[0] is not first:
            checked = _Checked()
            return checked if checked.extend(history, self._kinds) else None
        shared = _shared_prefix(checked.items, history)
        checked.truncate(shared)
        if shared < len(history) and not checked.extend(history[shared:], self._kinds):
            return None
        return checked


def _shared_prefix(known: list[Any], history: list[Any]) -> int:
    """How many leading messages `history` shares with `known` (the same objects, or equal messages)."""
    end = min(len(known), len(history))
    stop = max(end - _BACKTRACK, 0)
    while end > stop and known[end - 1] is not history[end - 1]:
        end -= 1
    # `==` passes over identical items in C without calling `__eq__`, several times faster than comparing
    # identities one by one; an equal message has the same class and id, which is all that was checked.
    if end and _head(known, end) == _head(history, end):
        return end
    # A difference further up (a message replaced in place): find the first one.
    for size, (a, b) in enumerate(zip(known, history, strict=False)):
        if a is not b:
            return size
    return min(len(known), len(history))


def _head(items: list[Any], size: int) -> list[Any]:
    """The first `size` items: `items` itself when that is all of it (no copy)."""
    return items if len(items) == size else items[:size]
