"""A small MessagePack decoder (read only), so reading LangGraph's checkpoints needs no extra package.

Extension values are handed to a callback with their type code and raw bytes; LangGraph packs a
constructor call (module, class, arguments) into each one.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ("MsgpackError", "unpackb")

ExtHook = Callable[[int, bytes], Any]


class MsgpackError(ValueError):
    """The bytes are not valid MessagePack."""


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _timestamp(data: bytes) -> datetime:
    """The standard timestamp extension (type -1)."""
    if len(data) == 4:
        seconds, nanos = struct.unpack(">I", data)[0], 0
    elif len(data) == 8:
        value = struct.unpack(">Q", data)[0]
        seconds, nanos = value & 0x3_FFFF_FFFF, value >> 34
    elif len(data) == 12:
        nanos, seconds = struct.unpack(">Iq", data)
    else:
        raise MsgpackError(f"bad timestamp extension of {len(data)} bytes")
    return _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)


class _Reader:
    def __init__(self, data: bytes, ext_hook: ExtHook) -> None:
        self.data, self.pos, self.ext_hook = data, 0, ext_hook

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise MsgpackError("truncated MessagePack data")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def read(self) -> Any:
        b = self.take(1)[0]
        if b <= 0x7F:
            return b
        if b >= 0xE0:
            return b - 0x100
        if 0xA0 <= b <= 0xBF:
            return self.text(b & 0x1F)
        if 0x90 <= b <= 0x9F:
            return self.array(b & 0x0F)
        if 0x80 <= b <= 0x8F:
            return self.map(b & 0x0F)
        return self.tagged(b)

    def tagged(self, b: int) -> Any:
        simple = {0xC0: None, 0xC2: False, 0xC3: True}
        if b in simple:
            return simple[b]
        sized: dict[int, tuple[str, Callable[[int], Any]]] = {
            0xC4: (">B", self.take),
            0xC5: (">H", self.take),
            0xC6: (">I", self.take),
            0xD9: (">B", self.text),
            0xDA: (">H", self.text),
            0xDB: (">I", self.text),
            0xDC: (">H", self.array),
            0xDD: (">I", self.array),
            0xDE: (">H", self.map),
            0xDF: (">I", self.map),
        }
        if b in sized:
            fmt, reader = sized[b]
            return reader(self.unpack(fmt))
        numbers = {0xCA: ">f", 0xCB: ">d", 0xCC: ">B", 0xCD: ">H", 0xCE: ">I", 0xCF: ">Q"}
        numbers.update({0xD0: ">b", 0xD1: ">h", 0xD2: ">i", 0xD3: ">q"})
        if b in numbers:
            return self.unpack(numbers[b])
        fixext = {0xD4: 1, 0xD5: 2, 0xD6: 4, 0xD7: 8, 0xD8: 16}
        if b in fixext:
            return self.ext(fixext[b])
        ext_sizes = {0xC7: ">B", 0xC8: ">H", 0xC9: ">I"}
        if b in ext_sizes:
            return self.ext(self.unpack(ext_sizes[b]))
        raise MsgpackError(f"invalid MessagePack byte 0x{b:02x} at offset {self.pos - 1}")

    def text(self, n: int) -> str:
        try:
            return self.take(n).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MsgpackError(f"invalid UTF-8 in a MessagePack string: {exc}") from None

    def array(self, n: int) -> list[Any]:
        return [self.read() for _ in range(n)]

    def map(self, n: int) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for _ in range(n):
            key = self.read()
            out[tuple(key) if isinstance(key, list) else key] = self.read()
        return out

    def ext(self, n: int) -> Any:
        code = self.unpack(">b")
        data = self.take(n)
        return _timestamp(data) if code == -1 else self.ext_hook(code, data)


def unpackb(data: bytes, *, ext_hook: ExtHook) -> Any:
    """Decode one MessagePack value; `ext_hook(code, data)` builds extension values.

    Raises:
        MsgpackError: Invalid or truncated data, or bytes left after the value.
    """
    reader = _Reader(bytes(data), ext_hook)
    value = reader.read()
    if reader.pos != len(reader.data):
        raise MsgpackError(f"{len(reader.data) - reader.pos} extra bytes after the MessagePack value")
    return value
