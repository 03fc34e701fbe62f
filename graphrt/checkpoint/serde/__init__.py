"""Checkpoint serialization: the serializer protocol and graphrt's type-tagged JSON serializer."""

from graphrt.checkpoint.serde.base import DeserializationError, SerializationError, SerializerProtocol
from graphrt.checkpoint.serde.jsonplus import JsonPlusSerializer, register_type

__all__ = (
    "DeserializationError",
    "JsonPlusSerializer",
    "SerializationError",
    "SerializerProtocol",
    "register_type",
)
