"""Codecs for types from modules the serializer does not import itself: numpy, graphrt's store.

An instance of such a type can only exist once its module is loaded, so encoders are looked up
through `sys.modules` and decoders import the module when a stored value needs it. Exceptions are
here too: like LangGraph, graphrt stores a task's error as its `repr()`, which loads back as a str.
"""

from __future__ import annotations

import sys
from base64 import b64decode, b64encode
from typing import Any, Final

from graphrt.checkpoint.serde._codecs import MARK, VALUE, Decoder, Encoder, Walk
from graphrt.checkpoint.serde.base import SerializationError

__all__ = ("OPTIONAL_DECODERS", "optional_encoder")

_STORE_MODULE: Final = "graphrt.store.base"


def optional_encoder(cls: type[Any]) -> Encoder | None:
    """The encoder for an exception, store item or numpy value, or None if `cls` is none of them."""
    if issubclass(cls, BaseException):
        return _encode_exception
    if cls.__module__ == _STORE_MODULE and cls.__qualname__ in ("Item", "SearchItem"):
        return _encode_item
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        if cls is numpy.ndarray:
            return _encode_array
        if issubclass(cls, numpy.generic):
            return _encode_numpy_scalar
    return None


def _encode_exception(o: BaseException, walk: Walk) -> str:
    return repr(o)


def _encode_item(o: Any, walk: Walk) -> dict[str, Any]:
    payload = {
        "namespace": walk(o.namespace),
        "key": o.key,
        "value": walk(o.value),
        "created_at": walk(o.created_at),
        "updated_at": walk(o.updated_at),
    }
    if hasattr(o, "score"):
        payload["score"] = o.score
        return {MARK: "searchitem", VALUE: payload}
    return {MARK: "item", VALUE: payload}


def _decode_item(payload: dict[str, Any]) -> Any:
    from graphrt.store.base import Item

    return Item(**payload)


def _decode_search_item(payload: dict[str, Any]) -> Any:
    from graphrt.store.base import SearchItem

    return SearchItem(**payload)


def _plain_dtype(dtype: Any, type_name: str) -> str:
    if dtype.hasobject or dtype.fields is not None:
        raise SerializationError(
            type_name,
            reason="Only numpy values of plain numeric, bool, text or date dtypes can be stored, not "
            f"{dtype}; convert it (e.g. with .tolist()) or opt into pickle with "
            "JsonPlusSerializer(pickle_fallback=True).",
        )
    return str(dtype.str)


def _encode_array(o: Any, walk: Walk) -> dict[str, Any]:
    dtype = _plain_dtype(o.dtype, "numpy.ndarray")
    data = b64encode(o.tobytes(order="C")).decode("ascii")
    return {MARK: "ndarray", VALUE: [dtype, list(o.shape), data]}


def _encode_numpy_scalar(o: Any, walk: Walk) -> dict[str, Any]:
    dtype = _plain_dtype(o.dtype, f"numpy.{type(o).__name__}")
    return {MARK: "npscalar", VALUE: [dtype, b64encode(o.tobytes()).decode("ascii")]}


def _checked_dtype(text: str) -> Any:
    import numpy

    dtype = numpy.dtype(text)
    if dtype.hasobject or dtype.fields is not None:  # object arrays would read raw pointers
        raise ValueError(f"dtype {text!r} is not a plain dtype")
    return dtype


def _decode_array(payload: list[Any]) -> Any:
    import numpy

    dtype, shape, data = payload
    return numpy.frombuffer(b64decode(data), dtype=_checked_dtype(dtype)).reshape(shape).copy()


def _decode_numpy_scalar(payload: list[Any]) -> Any:
    import numpy

    dtype, data = payload
    return numpy.frombuffer(b64decode(data), dtype=_checked_dtype(dtype))[0]


OPTIONAL_DECODERS: Final[dict[str, Decoder]] = {
    "item": _decode_item,
    "searchitem": _decode_search_item,
    "ndarray": _decode_array,
    "npscalar": _decode_numpy_scalar,
}
