"""Time-ordered checkpoint ids: version-6 UUIDs whose string form sorts by creation time."""

from __future__ import annotations

import random
import threading
import time
import uuid

__all__ = ("uuid6",)

# 100-ns intervals between the Gregorian epoch (1582-10-15) and the Unix epoch.
_GREGORIAN_OFFSET = 0x01B21DD213814000

_lock = threading.Lock()
_last_timestamp = 0


def _next_timestamp() -> int:
    """The current time in 100-ns ticks, strictly greater than any earlier call in this process.

    Two ids made within one clock tick (or after the clock stepped back) still sort in creation
    order, because the second one borrows the next tick.
    """
    global _last_timestamp
    now = time.time_ns() // 100 + _GREGORIAN_OFFSET
    _lock.acquire()  # not `with`: this runs once per checkpoint, and the context manager costs more
    try:
        if now <= _last_timestamp:
            now = _last_timestamp + 1
        _last_timestamp = now
    finally:
        _lock.release()
    return now


def uuid6(node: int | None = None, clock_seq: int | None = None) -> uuid.UUID:
    """Make a version-6 UUID: a v1 UUID with its timestamp fields most-significant first.

    Ids from one process are strictly increasing, both as UUIDs and as their canonical strings,
    so checkpoint ids double as a creation order.

    Args:
        node: The low 48 bits; random when omitted.
        clock_seq: The 14-bit sequence field; random when omitted (LangGraph passes the step).
    """
    timestamp = _next_timestamp()
    if clock_seq is None:
        clock_seq = random.getrandbits(14)
    if node is None:
        node = random.getrandbits(48)
    value = ((timestamp >> 12) & 0xFFFFFFFFFFFF) << 80
    value |= 0x6000 << 64  # version 6
    value |= (timestamp & 0x0FFF) << 64
    value |= 0x8000 << 48  # RFC 4122 variant
    value |= (clock_seq & 0x3FFF) << 48
    value |= node & 0xFFFFFFFFFFFF
    return uuid.UUID(int=value)


def uuid6_str() -> str:
    """`str(uuid6())` without building a `uuid.UUID`: the id of a new checkpoint.

    Same layout (version 6, RFC 4122 variant, random 14-bit sequence and 48-bit node) and the same
    guarantee: strings made in one process are strictly increasing.
    """
    timestamp = _next_timestamp()
    rand = random.getrandbits(62)  # the sequence field (14 bits) above the node (48 bits)
    value = (timestamp >> 12) << 80 | (0x6000 | (timestamp & 0x0FFF)) << 64 | 0x8000 << 48 | rand
    digits = f"{value:032x}"
    return f"{digits[:8]}-{digits[8:12]}-{digits[12:16]}-{digits[16:20]}-{digits[20:]}"
