"""Values LangGraph's `JsonPlusSerializer` saved, rebuilt as graphrt values, without LangGraph installed.

LangGraph writes MessagePack (type "msgpack") whose extension values are constructor calls:
(module, class, arguments[, method]); older databases hold JSON (type "json") with LangChain's
`{"lc": ..., "type": "constructor", "id": [...]}` objects. LangChain messages, `Send`, `Interrupt`,
`Command` and standard-library types map to their graphrt or Python equivalents. Any other class is
an *unknown type*: it is recorded by name (with where it was met) and never silently dropped; classes
of modules the user allows (`--allow-module`) are imported and rebuilt.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import importlib
import ipaddress
import json
import pathlib
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from graphrt import messages as gm
from graphrt.cli._msgpack import MsgpackError, unpackb
from graphrt.types import Command, Interrupt, Send

__all__ = ("Converter", "UnknownValue")

# How the arguments of an extension are applied (LangGraph's extension codes).
_SINGLE, _POSITIONAL, _KEYWORDS, _METHOD, _PYDANTIC_V1, _PYDANTIC_V2, _NUMPY = range(7)


class UnknownValue:
    """Stands in for a value whose type could not be rebuilt; the import refuses to write it."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<unknown {self.type_name}>"


_MESSAGE_TYPES: dict[str, tuple[type[gm.BaseMessage], str]] = {
    "HumanMessage": (gm.HumanMessage, "human"),
    "HumanMessageChunk": (gm.HumanMessage, "human"),
    "AIMessage": (gm.AIMessage, "ai"),
    "AIMessageChunk": (gm.AIMessage, "ai"),
    "SystemMessage": (gm.SystemMessage, "system"),
    "SystemMessageChunk": (gm.SystemMessage, "system"),
    "ToolMessage": (gm.ToolMessage, "tool"),
    "ToolMessageChunk": (gm.ToolMessage, "tool"),
    "RemoveMessage": (gm.RemoveMessage, "remove"),
}
"""LangChain message classes → graphrt's; graphrt has no chunk classes, so a chunk becomes its message."""

_CHUNK_ONLY_FIELDS = ("tool_call_chunks", "chunk_position")


def _message(name: str, fields: dict[str, Any]) -> gm.BaseMessage:
    cls, kind = _MESSAGE_TYPES[name]
    data = {k: v for k, v in fields.items() if k not in _CHUNK_ONLY_FIELDS}
    data["type"] = kind
    content = data.pop("content", "")
    return cls(content, **data)


def _interrupt(fields: dict[str, Any]) -> Interrupt:
    schema = fields.get("response_schema")
    found = Interrupt(fields.get("value"), **({"id": fields["id"]} if fields.get("id") else {}))
    found.response_schema = schema if isinstance(schema, dict) else None
    return found


def _command(fields: dict[str, Any]) -> Command[Any]:
    goto = fields.get("goto")
    return Command(graph=fields.get("graph"), update=fields.get("update"), resume=fields.get("resume"), goto=goto or ())


def _timezone(args: list[Any]) -> datetime.timezone:
    return datetime.timezone(*args)


_STDLIB: dict[tuple[str, str], Callable[..., Any]] = {
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "tuple"): tuple,
    ("collections", "deque"): collections.deque,
    ("datetime", "datetime"): datetime.datetime,
    ("datetime", "date"): datetime.date,
    ("datetime", "time"): datetime.time,
    ("datetime", "timedelta"): datetime.timedelta,
    ("datetime", "timezone"): datetime.timezone,
    ("uuid", "UUID"): uuid.UUID,
    ("decimal", "Decimal"): decimal.Decimal,
    ("pathlib", "Path"): pathlib.Path,
    ("pathlib", "PosixPath"): pathlib.PurePosixPath,
    ("pathlib", "PurePosixPath"): pathlib.PurePosixPath,
    ("pathlib", "WindowsPath"): pathlib.PureWindowsPath,
    ("pathlib", "PureWindowsPath"): pathlib.PureWindowsPath,
    ("re", "compile"): re.compile,
    ("ipaddress", "IPv4Address"): ipaddress.IPv4Address,
    ("ipaddress", "IPv6Address"): ipaddress.IPv6Address,
    ("ipaddress", "IPv4Network"): ipaddress.IPv4Network,
    ("ipaddress", "IPv6Network"): ipaddress.IPv6Network,
    ("ipaddress", "IPv4Interface"): ipaddress.IPv4Interface,
    ("ipaddress", "IPv6Interface"): ipaddress.IPv6Interface,
}
"""Standard-library classes LangGraph packs by constructor; rebuilt with the same call."""


class Converter:
    """Decodes LangGraph's typed values; collects the names of the types it could not rebuild.

    Args:
        allow_modules: Module prefixes whose classes may be imported and rebuilt (the user's own types).
    """

    def __init__(self, allow_modules: Sequence[str] = ()) -> None:
        self.allow_modules = tuple(allow_modules)
        self.unknown: dict[str, list[str]] = {}
        """Type name → where it was met (first few places)."""
        self.location = ""

    def _unknown(self, type_name: str) -> UnknownValue:
        places = self.unknown.setdefault(type_name, [])
        if len(places) < 3 and self.location not in places:
            places.append(self.location)
        return UnknownValue(type_name)

    def loads_typed(self, type_: str | None, data: bytes | None) -> Any:
        """The value LangGraph saved as `(type_, data)`."""
        if type_ in (None, "null", "empty"):
            return None
        raw = bytes(data or b"")
        if type_ == "msgpack":
            try:
                return unpackb(raw, ext_hook=self._ext)
            except MsgpackError as exc:
                return self._unknown(f"undecodable msgpack ({exc})")
        if type_ == "json":
            return json.loads(raw, object_hook=self._lc_object)
        if type_ == "bytes":
            return raw
        if type_ == "bytearray":
            return bytearray(raw)
        if type_ == "pickle":
            return self._unknown("pickle (LangGraph's pickle fallback; graphrt does not unpickle)")
        return self._unknown(f"serializer type {type_!r}")

    def _ext(self, code: int, data: bytes) -> Any:
        parts = unpackb(data, ext_hook=self._ext)
        if code == _NUMPY or not isinstance(parts, list) or len(parts) < 3:
            return self._unknown("numpy.ndarray" if code == _NUMPY else f"msgpack extension {code}")
        module, name, arg = parts[0], parts[1], parts[2]
        method = parts[3] if len(parts) > 3 else None
        return self.build(code, str(module), str(name), arg, method)

    def build(self, code: int, module: str, name: str, arg: Any, method: str | None) -> Any:
        """One constructor call LangGraph recorded, made with graphrt's (or Python's) class."""
        if name in _MESSAGE_TYPES and module.startswith(("langchain_core.messages", "langchain.schema")):
            return _message(name, arg if isinstance(arg, dict) else {})
        if module.startswith("langgraph."):
            if name == "Send":
                return Send(*arg) if isinstance(arg, list) else Send(arg["node"], arg["arg"])
            if name == "Interrupt":
                return _interrupt(arg)
            if name == "Command":
                return _command(arg)
        factory = _STDLIB.get((module, name))
        if factory is not None:
            if module == "datetime" and method:
                return getattr(factory, method)(arg)
            return _call(factory, code, arg)
        if self.allow_modules and module.startswith(self.allow_modules):
            return self._user(code, module, name, arg, method)
        return self._unknown(f"{module}.{name}")

    def _user(self, code: int, module: str, name: str, arg: Any, method: str | None) -> Any:
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            return self._unknown(f"{module}.{name} (allowed, but it cannot be imported here)")
        if code == _PYDANTIC_V2:
            return cls.model_construct(**arg)
        if code == _PYDANTIC_V1:
            return cls.construct(**arg)
        if code == _METHOD and method:
            return getattr(cls, method)(arg)
        return _call(cls, code, arg)

    def _lc_object(self, obj: dict[str, Any]) -> Any:
        """LangChain's JSON constructor objects (LangGraph's older "json" format)."""
        if obj.get("type") == "not_implemented" and "lc" in obj:
            return self._unknown(".".join(map(str, obj.get("id") or ["?"])))
        if obj.get("type") != "constructor" or "lc" not in obj or not isinstance(obj.get("id"), list):
            return obj
        ids = [str(i) for i in obj["id"]]
        module, name = ".".join(ids[:-1]), ids[-1]
        if obj["lc"] == 1:
            module = "langchain_core.messages" if name in _MESSAGE_TYPES else module
            return self.build(_KEYWORDS, module, name, obj.get("kwargs") or {}, None)
        if obj.get("method"):
            return self.build(_METHOD, module, name, (obj.get("args") or [None])[0], obj["method"])
        if obj.get("args"):
            return self.build(_POSITIONAL, module, name, obj["args"], None)
        return self.build(_KEYWORDS, module, name, obj.get("kwargs") or {}, None)


def _call(factory: Callable[..., Any], code: int, arg: Any) -> Any:
    if code == _POSITIONAL:
        return factory(*arg)
    if code in (_KEYWORDS, _PYDANTIC_V1, _PYDANTIC_V2):
        return factory(**arg)
    return factory(arg)
