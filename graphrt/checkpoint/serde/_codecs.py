"""Codecs for the standard-library and graphrt value types the serializer knows by name.

A tagged value is stored as ``{"__gr__": tag, "v": payload}``. An encoder takes the value and the
walker (to encode nested values) and returns that dict; a decoder takes the payload, whose nested
values are already decoded, and returns the value.
"""

from __future__ import annotations

import ipaddress
import pathlib
import re
from base64 import b64decode, b64encode
from collections import OrderedDict, deque
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, Final
from uuid import UUID
from zoneinfo import ZoneInfo

from graphrt.types import Command, Interrupt, Send

__all__ = (
    "BUILTIN_DECODERS",
    "BUILTIN_ENCODERS",
    "MARK",
    "VALUE",
    "Decoder",
    "Encoder",
    "Walk",
    "encode_big_int",
    "encode_special_float",
)

MARK: Final = "__gr__"
"""Key that marks a dict as a tagged value; a user's dict holding this key is stored escaped."""
VALUE: Final = "v"
"""Key of a tagged value's payload."""

Walk = Callable[[Any], Any]
"""Turns any supported value into plain JSON data (dict with str keys, list, str, int, float, bool, None)."""
Encoder = Callable[[Any, Walk], Any]
"""Encodes one value of a known type, normally to its tagged dict."""
Decoder = Callable[[Any], Any]
"""Rebuilds a value from its decoded payload."""


def encode_big_int(o: int) -> dict[str, Any]:
    """Tag an int orjson cannot write (outside the 64-bit range) as its decimal digits."""
    return {MARK: "int", VALUE: str(o)}


def encode_special_float(o: float) -> dict[str, Any]:
    """Tag NaN and the infinities, which JSON cannot hold (orjson would write `null`)."""
    return {MARK: "float", VALUE: repr(o)}


def _enc_tuple(o: tuple[Any, ...], walk: Walk) -> dict[str, Any]:
    return {MARK: "tuple", VALUE: [x if type(x) is str else walk(x) for x in o]}


def _enc_set(o: set[Any], walk: Walk) -> dict[str, Any]:
    return {MARK: "set", VALUE: [x if type(x) is str else walk(x) for x in o]}


def _enc_frozenset(o: frozenset[Any], walk: Walk) -> dict[str, Any]:
    return {MARK: "frozenset", VALUE: [x if type(x) is str else walk(x) for x in o]}


def _enc_deque(o: deque[Any], walk: Walk) -> dict[str, Any]:
    return {MARK: "deque", VALUE: [[walk(x) for x in o], o.maxlen]}


def _enc_ordered_dict(o: OrderedDict[Any, Any], walk: Walk) -> dict[str, Any]:
    return {MARK: "odict", VALUE: [[walk(k), walk(v)] for k, v in o.items()]}


def _enc_bytes(o: bytes, walk: Walk) -> dict[str, Any]:
    return {MARK: "bytes", VALUE: b64encode(o).decode("ascii")}


def _enc_bytearray(o: bytearray, walk: Walk) -> dict[str, Any]:
    return {MARK: "bytearray", VALUE: b64encode(o).decode("ascii")}


def _clock_payload(o: datetime | time) -> str | list[Any]:
    """ISO text for naive and fixed-offset values; `[local ISO, zone key, fold]` for IANA zones.

    Keeping the zone key (not just the offset) keeps the value's behaviour under arithmetic across
    DST changes. Other tzinfo implementations (pytz, dateutil) are stored as their fixed offset.
    """
    tz = o.tzinfo
    if type(tz) is timezone and not _iso_keeps(tz):
        # ISO text can't hold a sub-second offset or a zone name (and Python 3.11 drops the former).
        fixed_offset = tz.utcoffset(None)
        named = repr(tz) != repr(timezone(fixed_offset))
        fixed = [fixed_offset.days, fixed_offset.seconds, fixed_offset.microseconds, tz.tzname(None) if named else None]
        return [o.replace(tzinfo=None).isoformat(), fixed, o.fold]
    if tz is None or type(tz) is timezone:
        return o.isoformat() if not o.fold else [o.isoformat(), None, 1]
    if type(tz) is ZoneInfo and tz.key is not None:
        return [o.replace(tzinfo=None).isoformat(), tz.key, o.fold]
    offset = o.utcoffset()
    return o.replace(tzinfo=None if offset is None else timezone(offset), fold=0).isoformat()


def _iso_keeps(tz: timezone) -> bool:
    """Whether ISO text round-trips this fixed offset exactly: whole seconds and the default name."""
    offset = tz.utcoffset(None)
    return offset.microseconds == 0 and repr(tz) == repr(timezone(offset))


def _enc_datetime(o: datetime, walk: Walk) -> dict[str, Any]:
    return {MARK: "datetime", VALUE: _clock_payload(o)}


def _enc_time(o: time, walk: Walk) -> dict[str, Any]:
    return {MARK: "time", VALUE: _clock_payload(o)}


def _enc_date(o: date, walk: Walk) -> dict[str, Any]:
    return {MARK: "date", VALUE: o.isoformat()}


def _enc_timedelta(o: timedelta, walk: Walk) -> dict[str, Any]:
    return {MARK: "timedelta", VALUE: [o.days, o.seconds, o.microseconds]}


def _enc_complex(o: complex, walk: Walk) -> dict[str, Any]:
    return {MARK: "complex", VALUE: [walk(o.real), walk(o.imag)]}


def _enc_pattern(o: re.Pattern[Any], walk: Walk) -> dict[str, Any]:
    return {MARK: "regex", VALUE: [walk(o.pattern), o.flags]}


def _enc_send(o: Send, walk: Walk) -> dict[str, Any]:
    return {MARK: "send", VALUE: [o.node, walk(o.arg)]}


def _enc_interrupt(o: Interrupt, walk: Walk) -> dict[str, Any]:
    schema = o.response_schema
    if schema is None:
        return {MARK: "interrupt", VALUE: [walk(o.value), o.id]}
    # A surfaced interrupt holds JSON Schema; a class (set only by hand) is saved as its schema.
    return {MARK: "interrupt", VALUE: [walk(o.value), o.id, walk(_json_schema(schema))]}


def _enc_command(o: Command[Any], walk: Walk) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    if o.graph is not None:
        payload["graph"] = o.graph
    if o.update is not None:
        payload["update"] = walk(o.update)
    if o.resume is not None:
        payload["resume"] = walk(o.resume)
    if o.goto != ():
        payload["goto"] = walk(o.goto)
    return {MARK: "command", VALUE: payload}


def _by_str(tag: str) -> Encoder:
    def encode(o: Any, walk: Walk) -> dict[str, Any]:
        return {MARK: tag, VALUE: str(o)}

    return encode


def _dec_clock(kind: type[datetime] | type[time]) -> Decoder:
    def decode(payload: Any) -> Any:
        if type(payload) is str:
            return kind.fromisoformat(payload)
        text, key, fold = payload
        value = kind.fromisoformat(text)
        if type(key) is list:
            days, seconds, microseconds, name = key
            delta = timedelta(days=days, seconds=seconds, microseconds=microseconds)
            fixed = timezone(delta) if name is None else timezone(delta, name)
            return value.replace(tzinfo=fixed, fold=fold)
        return value.replace(tzinfo=ZoneInfo(key) if key is not None else value.tzinfo, fold=fold)

    return decode


def _dec_int(payload: str) -> int:
    return int(payload)


def _dec_float(payload: str) -> float:
    if payload not in ("nan", "inf", "-inf"):
        raise ValueError(f"{payload!r} is not nan, inf or -inf")
    return float(payload)


def _dec_pairs(payload: list[list[Any]]) -> dict[Any, Any]:
    return {k: v for k, v in payload}


def _dec_deque(payload: list[Any]) -> deque[Any]:
    items, maxlen = payload
    return deque(items, maxlen)


def _dec_ordered_dict(payload: list[list[Any]]) -> OrderedDict[Any, Any]:
    return OrderedDict((k, v) for k, v in payload)


def _dec_timedelta(payload: list[int]) -> timedelta:
    days, seconds, microseconds = payload
    return timedelta(days, seconds, microseconds)


def _dec_complex(payload: list[float]) -> complex:
    return complex(*payload)


def _dec_pattern(payload: list[Any]) -> re.Pattern[Any]:
    pattern, flags = payload
    return re.compile(pattern, flags)


def _dec_send(payload: list[Any]) -> Send:
    node, arg = payload
    return Send(node, arg)


def _dec_interrupt(payload: list[Any]) -> Interrupt:
    value, id_, *schema = payload
    return Interrupt(value, id_, response_schema=schema[0] if schema else None)


def _json_schema(schema: dict[str, Any] | type) -> dict[str, Any]:
    if isinstance(schema, dict):
        return schema
    from pydantic import TypeAdapter

    return TypeAdapter(schema).json_schema()


def _dec_command(payload: dict[str, Any]) -> Command[Any]:
    return Command(**payload)


_BY_STR: dict[type[Any], str] = {
    UUID: "uuid",
    Decimal: "decimal",
    pathlib.PurePosixPath: "pureposixpath",
    pathlib.PureWindowsPath: "purewindowspath",
    pathlib.PosixPath: "posixpath",
    pathlib.WindowsPath: "windowspath",
    ipaddress.IPv4Address: "ipv4address",
    ipaddress.IPv6Address: "ipv6address",
    ipaddress.IPv4Network: "ipv4network",
    ipaddress.IPv6Network: "ipv6network",
    ipaddress.IPv4Interface: "ipv4interface",
    ipaddress.IPv6Interface: "ipv6interface",
}

BUILTIN_ENCODERS: Final[dict[type[Any], Encoder]] = {
    tuple: _enc_tuple,
    set: _enc_set,
    frozenset: _enc_frozenset,
    deque: _enc_deque,
    OrderedDict: _enc_ordered_dict,
    bytes: _enc_bytes,
    bytearray: _enc_bytearray,
    datetime: _enc_datetime,
    date: _enc_date,
    time: _enc_time,
    timedelta: _enc_timedelta,
    complex: _enc_complex,
    re.Pattern: _enc_pattern,
    Send: _enc_send,
    Interrupt: _enc_interrupt,
    Command: _enc_command,
    **{cls: _by_str(tag) for cls, tag in _BY_STR.items()},
}
"""Encoders by exact type; subclasses are not covered (an `IntEnum` is not an `int` here)."""

BUILTIN_DECODERS: Final[dict[str, Decoder]] = {
    "int": _dec_int,
    "float": _dec_float,
    "dict": _dec_pairs,
    "tuple": tuple,
    "set": set,
    "frozenset": frozenset,
    "deque": _dec_deque,
    "odict": _dec_ordered_dict,
    "bytes": b64decode,
    "bytearray": lambda payload: bytearray(b64decode(payload)),
    "datetime": _dec_clock(datetime),
    "time": _dec_clock(time),
    "date": date.fromisoformat,
    "timedelta": _dec_timedelta,
    "complex": _dec_complex,
    "regex": _dec_pattern,
    "send": _dec_send,
    "interrupt": _dec_interrupt,
    "command": _dec_command,
    **{tag: cls for cls, tag in _BY_STR.items()},
}
"""Decoders by tag, for every tag above plus `int`/`float` (out-of-range ints, NaN and infinities) and
`dict` (a dict with non-str keys or a key that collides with the tag marker)."""
