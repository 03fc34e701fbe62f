"""Message ids: a fresh uuid4 string, and a message's copy carrying an id (both on hot paths).

`add_messages` gives every message a node returns without an id one, and a chat model gives each reply
its run id; both happen once per message, so they skip the `uuid.UUID` object and pydantic's `model_copy`.
"""

from __future__ import annotations

import os
from typing import TypeVar

from pydantic import BaseModel

__all__ = ("copy_with_id", "new_uuid4")

_VERSION_MASK = ~((0xF000 << 64) | (0xC000 << 48))
_VERSION_BITS = (0x4000 << 64) | (0x8000 << 48)

M = TypeVar("M", bound=BaseModel)


def new_uuid4() -> str:
    """A random (version 4, RFC 4122 variant) UUID string: what `str(uuid.uuid4())` returns."""
    h = "%032x" % (int.from_bytes(os.urandom(16)) & _VERSION_MASK | _VERSION_BITS)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
