"""Message ids: a fresh uuid4 string, and a message given an id, itself or on a copy (all on hot paths).

`add_messages` gives every message a node returns without an id one, and a chat model gives each reply
its run id; both happen once per message, so they skip the `uuid.UUID` object and pydantic's `model_copy`
and `__setattr__`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, Final, TypeVar

from pydantic import BaseModel

__all__ = ("SOLE_ARGUMENT", "copy_with_id", "getrefcount", "new_uuid4", "set_id")

M = TypeVar("M", bound=BaseModel)

_BATCH = 64
"""uuids made per call to `os.urandom` (a system call costing as much as formatting several uuids)."""

_fresh: list[str] = []
"""uuids made and not handed out yet; `list.pop` is atomic, so threads may share it."""

if hasattr(os, "register_at_fork"):
    # A forked child must not hand out the uuids its parent will.
    os.register_at_fork(after_in_child=_fresh.clear)


def new_uuid4() -> str:
    """A random (version 4, RFC 4122 variant) UUID string: what `str(uuid.uuid4())` returns."""
    try:
        return _fresh.pop()
    except IndexError:
        _fresh.extend(_make_uuid4s(_BATCH))
        return _fresh.pop()


def _make_uuid4s(count: int) -> list[str]:
    """`count` uuid4 strings from one `os.urandom` call."""
    h = os.urandom(16 * count).hex()
    # Version nibble 4; variant bits 10 (the nibble after the third dash is 8, 9, a or b).
    return [
        f"{h[i : i + 8]}-{h[i + 8 : i + 12]}-4{h[i + 13 : i + 16]}-{_VARIANT[h[i + 16]]}{h[i + 17 : i + 20]}-"
        + h[i + 20 : i + 32]
        for i in range(0, 32 * count, 32)
    ]


_VARIANT = {f"{n:x}": f"{8 | n & 3:x}" for n in range(16)}


def set_id(message: Any, id: str) -> None:
    """Set a message's `id` field in place: what `message.id = id` does, without pydantic's `__setattr__`."""
    message.__dict__["id"] = id
    message.__pydantic_fields_set__.add("id")


def copy_with_id(message: M, id: str) -> M:
    """A shallow copy of `message` with `id` set: what `model_copy(update={"id": id})` makes."""
    cls = type(message)
    copy: M = cls.__new__(cls)
    set_attr = object.__setattr__
    set_attr(copy, "__dict__", {**message.__dict__, "id": id})
    set_attr(copy, "__pydantic_fields_set__", message.__pydantic_fields_set__ | {"id"})
    extra = message.__pydantic_extra__
    set_attr(copy, "__pydantic_extra__", None if extra is None else dict(extra))
    private = message.__pydantic_private__
    set_attr(copy, "__pydantic_private__", None if private is None else dict(private))
    return copy


def _no_reference_counts(value: object) -> int:
    return sys.maxsize  # as if something else referred to every object


getrefcount: Final[Callable[[object], int]] = getattr(sys, "getrefcount", _no_reference_counts)
"""`sys.getrefcount`, or, on an interpreter without reference counts (PyPy), a stand-in under which no
object is ever taken for unshared."""


def _references(argument: object) -> int:
    return getrefcount(argument)


SOLE_ARGUMENT: Final = _references(object()) if hasattr(sys, "getrefcount") else -1
"""What `sys.getrefcount(argument)` reports, in the function it was passed to, for an object nothing else
refers to (a value just returned by another call and passed on): such an object may be changed in place,
since no one else can see it change. The interpreter decides how many references a call holds, so it is
measured."""
