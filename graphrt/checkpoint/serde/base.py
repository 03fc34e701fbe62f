"""The serializer protocols savers depend on, and the errors a serializer raises."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = (
    "CipherProtocol",
    "DeserializationError",
    "SerializationError",
    "SerializerCompat",
    "SerializerProtocol",
    "UntypedSerializerProtocol",
    "maybe_add_typed_methods",
)

_HOW_TO_FIX = (
    "Register it with graphrt.checkpoint.serde.jsonplus.register_type(), make it a dataclass or a "
    "pydantic model, or opt into pickle with JsonPlusSerializer(pickle_fallback=True)."
)


class UntypedSerializerProtocol(Protocol):
    """A serializer without type strings: `dumps(obj) -> bytes` and `loads(data) -> obj`."""

    def dumps(self, obj: Any) -> bytes: ...

    def loads(self, data: bytes) -> Any: ...


@runtime_checkable
class SerializerProtocol(Protocol):
    """Turns values into `(type, bytes)` pairs and back; what every checkpoint saver stores.

    The type string tells `loads_typed` how to read the bytes, so savers store both side by side.
    """

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]: ...

    def loads_typed(self, data: tuple[str, bytes]) -> Any: ...


class SerializerCompat(SerializerProtocol):
    """Gives an untyped serializer the typed methods, tagging values with their class name."""

    def __init__(self, serde: UntypedSerializerProtocol) -> None:
        self.serde = serde

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        return type(obj).__name__, self.serde.dumps(obj)

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        return self.serde.loads(data[1])


def maybe_add_typed_methods(serde: SerializerProtocol | UntypedSerializerProtocol) -> SerializerProtocol:
    """Return `serde` itself if it is typed, else wrap it in `SerializerCompat`."""
    if isinstance(serde, SerializerProtocol):
        return serde
    return SerializerCompat(serde)


class CipherProtocol(Protocol):
    """Encrypts and decrypts serialized bytes; `encrypt` names the cipher it used."""

    def encrypt(self, plaintext: bytes) -> tuple[str, bytes]: ...

    def decrypt(self, ciphername: str, ciphertext: bytes) -> bytes: ...


class SerializationError(TypeError):
    """A value holds a type the serializer does not know, so it cannot be saved.

    Raised by `dumps_typed` before anything is written. `type_name` is the offending type's qualified
    name and `path` says where in the value it sits (`"['messages'][3].extra"`; empty for the value
    itself). Savers add the channel's name as a note.
    """

    type_name: str
    """Qualified name of the type that could not be serialized, e.g. `"myapp.state.Profile"`."""
    path: str
    """Where the type sits inside the value, e.g. `"['items'][0]"`; empty for the value itself."""

    def __init__(self, type_name: str, *, path: str = "", reason: str = "") -> None:
        self.type_name = type_name
        self.path = path
        self.reason = reason
        where = f" (found at {path})" if path else ""
        super().__init__(f"Type is not serializable: {type_name}{where}. {reason or _HOW_TO_FIX}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_error, (type(self), self.args, self.__dict__))


def _rebuild_error(cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]) -> BaseException:
    """Unpickle an error without calling `__init__`, whose signature subclasses may change."""
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class DeserializationError(ValueError):
    """Stored data names a type this process will not or cannot rebuild.

    graphrt rebuilds classes from stored data only when they are importable and are dataclasses,
    pydantic models, enums, named tuples, graphrt messages or registered types; it never calls any
    other callable a stored tag names.
    """

    tag: str
    """The stored type tag that could not be read, e.g. `"dc:os:system"`."""

    def __init__(self, tag: str, problem: str) -> None:
        self.tag = tag
        self.problem = problem
        super().__init__(f"Cannot load a value tagged {tag!r}: {problem}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_error, (type(self), self.args, self.__dict__))
