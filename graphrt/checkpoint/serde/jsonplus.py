"""`JsonPlusSerializer`: checkpoint values as type-tagged JSON, written by orjson.

Plain JSON values are stored as is. Every other supported value becomes a tagged dict,
``{"__gr__": tag, "v": payload}``, so it comes back with its exact type:

- graphrt messages (``msg:AIMessage``), pydantic models (``pyd:module:QualName``), dataclasses
  (``dc:...``), enums (``enum:...``) and named tuples (``nt:...``), rebuilt only when the class is
  importable *and* of the tagged kind, without running `__init__` or validators;
- `datetime`, `date`, `time` (keeping IANA zone keys), `timedelta`, `UUID`, `Decimal`, `bytes`,
  `bytearray`, `tuple`, `set`, `frozenset`, `deque`, `OrderedDict`, `complex`, `re.Pattern`,
  `pathlib` paths, `ipaddress` values, ints beyond 64 bits, NaN and the infinities;
- `Send`, `Interrupt` and `Command` from `graphrt.types`; store `Item` and `SearchItem`;
- numpy arrays and scalars of plain (non-object, non-structured) dtypes;
- types taught with `register_type()`.

Exceptions are stored as their `repr()` and load back as that string, as in LangGraph (a failed
task's error in a snapshot).

A dict whose keys are not all `str`, or that holds the ``"__gr__"`` key itself, is stored as a list
of pairs, so any dict round-trips. Any other type fails at write time with `SerializationError`,
unless the serializer was built with `pickle_fallback=True`.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Iterable
from typing import Any, Literal

from graphrt.checkpoint.serde._registry import Allowlist, decoder_for, register_type
from graphrt.checkpoint.serde._walk import dumps_json, loads_json, locate, make_revive
from graphrt.checkpoint.serde.base import SerializationError, SerializerProtocol

__all__ = ("JsonPlusSerializer", "register_type")

_EMPTY = b""


class JsonPlusSerializer(SerializerProtocol):
    """Stores values as type-tagged JSON; the default serializer of every graphrt saver.

    Args:
        pickle_fallback: Pickle values that hold a type the serializer does not know, instead of
            raising `SerializationError`; and load pickled values. Off by default: unpickling
            data from a database lets whoever can write to it run code.
        allowed_json_modules: Accepted for LangGraph compatibility; has no effect (graphrt never
            writes LangChain's JSON constructor format).
        allowed_msgpack_modules: Which classes may be rebuilt by import path (pydantic models,
            dataclasses, enums, named tuples): `True` (the default) for any importable one, `None`
            for graphrt's own types only, or `(module, name)` pairs / classes to allow.
    """

    def __init__(
        self,
        *,
        pickle_fallback: bool = False,
        allowed_json_modules: Iterable[tuple[str, ...]] | Literal[True] | None = None,
        allowed_msgpack_modules: Iterable[tuple[str, ...] | type] | Literal[True] | None = True,
    ) -> None:
        self.pickle_fallback = pickle_fallback
        self._allowed_json_modules = allowed_json_modules
        self._allowlist: Allowlist = _normalize_allowlist(allowed_msgpack_modules)
        self._revive = make_revive(self._decoder_for)

    def _decoder_for(self, tag: Any) -> Any:
        return decoder_for(tag, self._allowlist)

    def with_msgpack_allowlist(self, extra_allowlist: Iterable[tuple[str, ...] | type]) -> JsonPlusSerializer:
        """Return a serializer that may also rebuild the given classes (`self` if all are allowed)."""
        if self._allowlist is True:
            return self
        extra = _normalize_allowlist(extra_allowlist)
        base = frozenset() if self._allowlist is False else self._allowlist
        if extra is True or extra is False or extra <= base:
            return self
        clone = copy.copy(self)
        clone._allowlist = base | extra
        clone._revive = make_revive(clone._decoder_for)
        return clone

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        """Serialize `obj` to `(type, bytes)`; raises `SerializationError` naming an unknown type."""
        if obj is None:
            return "null", _EMPTY
        cls = type(obj)
        if cls is bytes:
            return "bytes", obj
        if cls is bytearray:
            return "bytearray", bytes(obj)
        try:
            return "json", dumps_json(obj)
        except SerializationError as exc:
            if self.pickle_fallback:
                return "pickle", pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
            raise SerializationError(exc.type_name, path=locate(obj), reason=exc.reason) from None
        except RecursionError:
            if self.pickle_fallback:
                return "pickle", pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
            raise ValueError(
                "Cannot serialize a value that contains itself (a reference cycle) or is nested hundreds "
                "of levels deep; break the cycle, or opt into pickle with JsonPlusSerializer(pickle_fallback=True)."
            ) from None

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        """Rebuild a value from what `dumps_typed` returned; raises `DeserializationError` for tags
        it refuses to rebuild."""
        type_, payload = data
        if type_ == "json":
            return loads_json(payload, self._revive)
        if type_ == "null":
            return None
        if type_ == "bytes":
            return bytes(payload)
        if type_ == "bytearray":
            return bytearray(payload)
        if type_ == "pickle" and self.pickle_fallback:
            return pickle.loads(payload)
        hint = (
            " Pickled values are loaded only by JsonPlusSerializer(pickle_fallback=True); enable it "
            "only if you trust everyone who can write to the checkpoint database."
            if type_ == "pickle"
            else ""
        )
        raise NotImplementedError(f"Unknown serialization type: {type_}.{hint}")


def _normalize_allowlist(allowlist: Iterable[tuple[str, ...] | type] | Literal[True] | None) -> Allowlist:
    if allowlist is True:
        return True
    if not allowlist:
        return False
    paths: set[str] = set()
    for entry in allowlist:
        if isinstance(entry, type):
            paths.add(f"{entry.__module__}:{entry.__qualname__}")
        elif len(entry) == 1 and ":" in entry[0]:
            paths.add(entry[0])
        else:
            *module, name = entry
            paths.add(f"{'.'.join(module)}:{name}")
    return frozenset(paths)
