"""Checkpoint ids, channel versions and timestamps: their formats (LangGraph's) and their ordering."""

from __future__ import annotations

import random
import re
import threading
import time
import types
import uuid
from datetime import UTC, datetime

import pytest

from graphrt.checkpoint.base import _types
from graphrt.checkpoint.base import id as id_module
from graphrt.checkpoint.base._types import next_string_version, utc_now_iso
from graphrt.checkpoint.base.id import uuid6, uuid6_str


def _timestamp(checkpoint_id: str) -> int:
    """The 60-bit timestamp of a v6 UUID (100-ns ticks since 1582-10-15)."""
    value = uuid.UUID(checkpoint_id).int
    return ((value >> 80) << 12) | ((value >> 64) & 0x0FFF)


def test_uuid6_str_is_a_canonical_version_6_uuid_of_now() -> None:
    before = time.time_ns() // 100 + 0x01B21DD213814000
    made = uuid6_str()
    after = time.time_ns() // 100 + 0x01B21DD213814000
    parsed = uuid.UUID(made)
    assert str(parsed) == made
    assert parsed.version == 6 and parsed.variant == uuid.RFC_4122
    assert before <= _timestamp(made) <= after + 1000


def test_uuid6_str_ids_strictly_increase_and_share_the_order_of_uuid6() -> None:
    ids = [uuid6_str() if i % 3 else str(uuid6()) for i in range(20_000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert [uuid.UUID(i) for i in ids] == sorted(uuid.UUID(i) for i in ids)


def test_uuid6_str_increases_when_the_clock_stands_still_or_steps_back(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [time.time_ns()]
    monkeypatch.setattr(id_module, "time", types.SimpleNamespace(time_ns=lambda: now[0]))
    ids = []
    for _ in range(50):
        ids.append(uuid6_str())
        now[0] -= 1_000_000  # a millisecond back each time
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    ticks = [_timestamp(i) for i in ids]
    assert ticks == list(range(ticks[0], ticks[0] + 50))


def test_uuid6_str_randomizes_sequence_and_node() -> None:
    tails = {uuid6_str()[19:] for _ in range(100)}
    assert len(tails) == 100
    assert all(t[0] in "89ab" for t in tails)  # RFC 4122 variant bits, then 14 random bits


def test_uuid6_str_ids_from_threads_are_unique_and_increase_per_thread() -> None:
    made: list[list[str]] = [[] for _ in range(4)]

    def work(out: list[str]) -> None:
        for _ in range(2_000):
            out.append(uuid6_str())

    threads = [threading.Thread(target=work, args=(out,)) for out in made]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(out == sorted(out) for out in made)
    assert len({i for out in made for i in out}) == 8_000


_VERSION = re.compile(r"^(\d{32})\.(.{16,})$")


def _major(version: str) -> int:
    found = _VERSION.match(version)
    assert found is not None, version
    return int(found[1])


def test_next_string_version_counts_from_its_argument() -> None:
    first = next_string_version(None)
    second = next_string_version(first)
    assert (_major(first), _major(second)) == (1, 2)
    # Given an older version (not the last one made), it counts from that one.
    assert _major(next_string_version(first)) == 2
    assert _major(next_string_version("".join(first))) == 2  # an equal string that is another object
    assert _major(next_string_version(f"{41:032}.5")) == 42
    assert _major(next_string_version(7)) == 8
    assert _major(next_string_version(7.0)) == 8


def test_next_string_versions_sort_in_the_order_they_were_made() -> None:
    made = [next_string_version(None)]
    for _ in range(2_000):
        made.append(next_string_version(made[-1]))
    assert made == sorted(made) and len(set(made)) == len(made)


def test_next_string_version_fraction_is_langgraphs(monkeypatch: pytest.MonkeyPatch) -> None:
    for fraction in (0.5, 1e-05, 0.8444218515250481, 0.0, 2**-53):
        monkeypatch.setattr(random, "random", lambda fraction=fraction: fraction)
        assert next_string_version(None) == f"{1:032}.{fraction:016}"
    monkeypatch.undo()
    for _ in range(1_000):
        state = random.getstate()
        made = next_string_version(3)
        random.setstate(state)
        assert made == f"{4:032}.{random.random():016}"


@pytest.mark.parametrize(
    "ns",
    [
        1_700_000_000_000_000_000,  # a whole second: no microseconds part
        1_700_000_000_000_000_999,  # less than a microsecond past it
        1_700_000_000_123_456_789,
        1_700_000_001_000_001_000,  # the next second
        1_700_000_000_999_999_999,  # back again
        951_782_400_000_007_000,  # 2000-02-29
    ],
)
def test_utc_now_iso_is_datetime_isoformat(monkeypatch: pytest.MonkeyPatch, ns: int) -> None:
    monkeypatch.setattr(
        _types, "time", types.SimpleNamespace(time_ns=lambda: ns, gmtime=time.gmtime, strftime=time.strftime)
    )
    expected = datetime.fromtimestamp(ns // 1000 / 1_000_000, UTC).replace(microsecond=ns // 1000 % 1_000_000)
    assert utc_now_iso() == expected.isoformat()


def test_utc_now_iso_is_now() -> None:
    before = datetime.now(UTC)
    made = datetime.fromisoformat(utc_now_iso())
    assert made.tzinfo is not None and made.utcoffset() == UTC.utcoffset(None)
    assert before <= made <= datetime.now(UTC)
