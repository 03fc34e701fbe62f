"""The MessagePack reader against bytes ormsgpack (LangGraph's encoder) wrote for the same values."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from graphrt.cli._msgpack import MsgpackError, unpackb

PINNED: list[tuple[Any, str]] = [
    (0, "00"),
    (127, "7f"),
    (128, "cc80"),
    (255, "ccff"),
    (256, "cd0100"),
    (65535, "cdffff"),
    (65536, "ce00010000"),
    (2**32, "cf0000000100000000"),
    (2**63, "cf8000000000000000"),
    (-1, "ff"),
    (-32, "e0"),
    (-33, "d0df"),
    (-128, "d080"),
    (-129, "d1ff7f"),
    (-32768, "d18000"),
    (-32769, "d2ffff7fff"),
    (-(2**31) - 1, "d3ffffffff7fffffff"),
    (-(2**63), "d38000000000000000"),
    (1.5, "cb3ff8000000000000"),
    ("a" * 31, "bf" + "61" * 31),
    ("b" * 32, "d920" + "62" * 32),
    ("c" * 256, "da0100" + "63" * 256),
    ("é", "a2c3a9"),
    (b"\x00" * 3, "c403000000"),
    (b"\x01" * 256, "c50100" + "01" * 256),
    (list(range(15)), "9f" + "".join(f"{i:02x}" for i in range(15))),
    (list(range(16)), "dc0010" + "".join(f"{i:02x}" for i in range(16))),
    (
        {str(i): i for i in range(16)},
        "de0010" + "".join(f"a{len(str(i)):x}{str(i).encode().hex()}{i:02x}" for i in range(16)),
    ),
    (None, "c0"),
    (True, "c3"),
    (False, "c2"),
    ({"n": [1, {"x": None}]}, "81a16e920181a178c0"),
]


def no_ext(code: int, data: bytes) -> Any:
    raise AssertionError("no extension expected")


@pytest.mark.parametrize(("value", "hexdata"), PINNED)
def test_values_read_back(value: Any, hexdata: str) -> None:
    got = unpackb(bytes.fromhex(hexdata), ext_hook=no_ext)
    assert got == value and type(got) is type(value)


def test_float32_extensions_and_timestamps() -> None:
    assert unpackb(bytes.fromhex("ca3fc00000"), ext_hook=no_ext) == 1.5
    assert unpackb(bytes.fromhex("d40105"), ext_hook=lambda code, data: (code, data)) == (1, b"\x05")
    assert unpackb(bytes.fromhex("c702070102"), ext_hook=lambda code, data: (code, data)) == (7, b"\x01\x02")
    assert unpackb(bytes.fromhex("d6ff00000001"), ext_hook=no_ext) == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert unpackb(bytes.fromhex("92" + "a178" + "a178"), ext_hook=no_ext) == ["x", "x"]


@pytest.mark.parametrize(
    ("hexdata", "message"),
    [
        ("c1", "invalid MessagePack byte 0xc1 at offset 0"),
        ("a3616263ff", "1 extra bytes after the MessagePack value"),
        ("a36162", "truncated MessagePack data"),
        ("a2c328", "invalid UTF-8 in a MessagePack string"),
    ],
)
def test_bad_data_is_a_clear_error(hexdata: str, message: str) -> None:
    with pytest.raises(MsgpackError, match=message):
        unpackb(bytes.fromhex(hexdata), ext_hook=no_ext)
